/**
 * `cdr start` as a newcomer runs it (the README's first command), on a data directory an older version left readable:
 * the whole pipeline comes up (local broker, embedded ClickHouse, ingest, API), stores synthetic traffic, answers
 * /healthz, warns about a tokens file others can read, stops cleanly on Ctrl-C — and leaves nothing in the data
 * directory (vault and index parts, broker segments of cdr.raw, logs, keys) readable by anyone but its owner.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../support/pipelineProbe.ts';
import { freePort } from '../../support/ports.ts';

const bin = join(import.meta.dirname, '../../../bin/cdr.cjs');

/** Every file and directory below `path` with its mode (symbolic links, always 0777 and never followed, left out). */
function walk(path: string, out: { path: string; mode: number }[] = []): { path: string; mode: number }[] {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return out;
  out.push({ path, mode: st.mode & 0o777 });
  if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name), out);
  return out;
}

describe('cdr start, end to end', () => {
  const root = mkdtempSync(join(tmpdir(), 'cdr-start-'));
  const dataDir = join(root, 'data');
  let child: ChildProcess | undefined;
  let frozenBroker: number | undefined;
  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    // Its watchdog ends it once cdr start is gone, but a frozen process only takes SIGKILL.
    if (frozenBroker !== undefined)
      try {
        process.kill(frozenBroker, 'SIGKILL');
      } catch {
        // Already gone.
      }
    rmSync(root, { recursive: true, force: true });
  });

  it('runs the pipeline, stops on Ctrl-C, and keeps its data directory private', async () => {
    // What an older version left: a readable directory and file.
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'old-notes.txt'), 'left by an older version\n', { mode: 0o644 });
    const token = 'start-test-admin-token';
    const tokensFile = join(root, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [{ name: 'ops', sha256: createHash('sha256').update(token).digest('hex'), roles: ['admin'] }] }), {
      mode: 0o644,
    });
    chmodSync(tokensFile, 0o644);
    const apiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CDR_LOCAL_KAFKA_PORT: String(await freePort([apiPort])),
      CDR_API_PORT: String(apiPort),
      CDR_API_TOKENS_FILE: tokensFile,
      CDR_LOG_LEVEL: 'info',
      // The development master key goes here, outside the data directory.
      CDR_DEV_KEY_DIR: join(root, 'keys'),
      // The server takes a real pass's `now` (a drill); the CLI asking it below need not (the server decides).
      CDR_ALLOW_CLOCK_OVERRIDE: '1',
    };
    for (const k of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'CDR_MASTER_KEY', 'CDR_MASTER_KEY_FILE', 'CDR_DATA_DIR']) delete env[k];
    let stderr = '';
    child = spawn(process.execPath, [bin, 'start', '--rate', '300', '--data-dir', dataDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));

    let health: { status: string; components?: { ingest?: { stored?: number } } } = { status: '' };
    // Not only a deadline: a cdr start that has exited fails the test at once, with what it printed.
    await waitFor(
      'cdr start to store traffic',
      async () => {
        if (child!.exitCode !== null || child!.signalCode !== null)
          throw new Error(`cdr start exited (${child!.exitCode ?? child!.signalCode}) before storing traffic:\n${stderr.slice(-3000)}`);
        try {
          health = (await (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).json()) as typeof health;
          return (health.components?.ingest?.stored ?? 0) > 200;
        } catch {
          return false;
        }
      },
      180_000,
      500,
    ).catch((err: unknown) => {
      const log = existsSync(join(dataDir, 'pipeline.log')) ? readFileSync(join(dataDir, 'pipeline.log'), 'utf8') : '(no pipeline.log)';
      throw new Error(
        `${(err as Error).message}; last /healthz: ${JSON.stringify(health)}; cdr start printed:\n${stderr.slice(-2000)}\npipeline.log ends:\n${log.slice(-4000)}`,
      );
    });
    assert.equal(health.status, 'ok');
    const dry = await fetch(`http://127.0.0.1:${apiPort}/v1/admin/retention/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"dry_run":true}',
    });
    assert.equal(dry.status, 200);

    // `cdr retention run` while `cdr start` holds the store: the pass runs there, through its API; stdout is the report.
    const cli = spawn(process.execPath, [bin, 'retention', 'run', '--dry-run', '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let cliOut = '';
    let cliErr = '';
    cli.stdout.on('data', (d: Buffer) => (cliOut += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (cliErr += d.toString()));
    const cliCode = await new Promise<number | null>((resolve) => cli.once('exit', (c) => resolve(c)));
    assert.equal(cliCode, 0, cliErr.slice(-2000));
    const report = JSON.parse(cliOut) as { dry_run: boolean; now: string; actions: unknown[] };
    assert.equal(report.dry_run, true);
    assert.ok(Array.isArray(report.actions));
    assert.match(cliErr, /asking its API/);
    // A real pass at a given `now` from a CLI without CDR_ALLOW_CLOCK_OVERRIDE: the running server allows it, and it
    // decides (before 2026-12-06 the CLI refused it on its own environment's setting). At the present instant nothing
    // of this fresh store is due.
    const drillAt = new Date().toISOString();
    const drill = spawnSync(process.execPath, [bin, 'retention', 'run', '--now', drillAt, '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: token, CDR_ALLOW_CLOCK_OVERRIDE: '0' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(drill.status, 0, drill.stderr.slice(-2000));
    const drillReport = JSON.parse(drill.stdout) as { dry_run: boolean; now: string };
    assert.deepEqual([drillReport.dry_run, drillReport.now], [false, drillAt]);
    assert.match(drill.stderr, /asking its API/);

    // `cdr audit verify --public-key K` beside it: the running API would check with its own key, so K would be ignored;
    // refused with exit 2 instead of a verdict that is no check against K.
    const { publicKey } = generateKeyPairSync('ed25519');
    const keyDir = mkdtempSync(join(tmpdir(), 'cdr-other-key-'));
    const keyFile = join(keyDir, 'someone-elses.pub.pem');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const verify = spawnSync(process.execPath, [bin, 'audit', 'verify', '--public-key', keyFile, '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: token },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(verify.status, 2, verify.stderr);
    assert.match(verify.stderr, /--public-key: the store is held by a running cdr start/);
    rmSync(keyDir, { recursive: true, force: true });
    // Nor with `--chain`: the running API checks its own chain's anchor only (found in review: `--chain nosuch` said ok).
    const chained = spawnSync(process.execPath, [bin, 'audit', 'verify', '--chain', 'nosuch', '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: token },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(chained.status, 2, chained.stderr);
    assert.match(chained.stderr, /--chain: the store is held by a running cdr start \(pid \d+\)/);

    // A token the running API refuses is a setting to fix (exit 2), not a broken trail (exit 1, as it was).
    const refused = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: 'not-a-token-of-this-api' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /401 .*CDR_API_TOKEN/);
    // A blank one is unset (this store has no development tokens to fall back on): named as missing, not sent.
    const blank = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data-dir', dataDir], {
      env: { ...env, CDR_API_TOKEN: '   ' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(blank.status, 2, blank.stderr);
    assert.match(blank.stderr, /set CDR_API_TOKEN to an auditor token/);

    // A second `cdr start` on the same data directory: refused before it starts anything, naming the running one (found
    // from outside: it was told to stop "the" broker with kafka.sh — the running pipeline's).
    const second = spawnSync(process.execPath, [bin, 'start', '--rate', '0', '--data-dir', dataDir], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(second.status, 2, second.stderr);
    assert.match(second.stderr, /CDR_DATA_DIR \(or --data-dir\): \S+ is in use by a running cdr start \(pid \d+\): stop that one first/);
    assert.match(second.stderr, /CDR_API_PORT: 127\.0\.0\.1:\d+ is in use by another program/);
    assert.doesNotMatch(second.stderr, /starting Kafka broker|kafka\.sh stop/);

    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr.slice(-2000));
    assert.match(stderr, /stopped\. stored=\d+/);
    assert.match(stderr, /synthetic traffic: 300\/s \(\w+\)/);
    // The banner names the publishing client; CI builds librdkafka and must see it used.
    assert.match(stderr, process.env['CDR_TEST_NATIVE_KAFKA'] === 'required' ? /\| publisher librdkafka\n/ : /\| publisher (librdkafka|kafkajs)/);
    // And the sealer (ADR 0040); CI installs with CDR_NATIVE_SEALER=native, which the child inherits.
    assert.match(
      stderr,
      process.env['CDR_NATIVE_SEALER'] === 'native'
        ? /\ningest: identifiers sealed by native \(CDR_NATIVE_SEALER\)\n/
        : /\ningest: identifiers sealed by (native|JavaScript)/,
    );
    assert.match(stderr, /warning: the API tokens file .* is readable by others than its owner \(mode 0644\)/);

    const entries = walk(dataDir);
    assert.ok(
      entries.some((e) => e.path.endsWith('pipeline.log')),
      'the log is in the data directory',
    );
    assert.ok(
      entries.some((e) => e.path.includes(join('kafka', 'kraft-logs'))),
      'the broker data is in the data directory',
    );
    assert.ok(entries.length > 50);
    assert.ok(!entries.some((e) => e.path.endsWith('master.key')), 'no master key inside the data directory');
    const keyFiles = readdirSync(join(root, 'keys'));
    assert.equal(keyFiles.length, 1, 'the development master key is in the configured key directory');
    assert.equal(statSync(join(root, 'keys', keyFiles[0]!)).mode & 0o777, 0o600);
    const exposed = entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path.slice(dataDir.length)} ${e.mode.toString(8)}`);
    assert.deepEqual(exposed, [], 'nothing readable by group or others');
  });

  it('stops its three consumers side by side, and within bounds, when its broker is frozen (a stop took 95 s to 6 min)', async () => {
    const dir = join(root, 'data-broker-dies');
    const apiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CDR_LOCAL_KAFKA_PORT: String(await freePort([apiPort])),
      CDR_API_PORT: String(apiPort),
      CDR_LOG_LEVEL: 'info',
      CDR_DEV_KEY_DIR: join(root, 'keys-broker-dies'),
    };
    for (const k of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'CDR_MASTER_KEY', 'CDR_MASTER_KEY_FILE', 'CDR_DATA_DIR', 'CDR_API_TOKENS_FILE']) delete env[k];
    let stderr = '';
    const run = spawn(process.execPath, [bin, 'start', '--rate', '300', '--data-dir', dir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child = run;
    run.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const healthOf = async (): Promise<{ components?: Record<string, { stored?: number }> }> =>
      (await (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).json()) as { components?: Record<string, { stored?: number }> };
    await waitFor(
      'cdr start to store traffic',
      async () => {
        if (run.exitCode !== null || run.signalCode !== null) throw new Error(`cdr start exited (${run.exitCode ?? run.signalCode}):\n${stderr.slice(-3000)}`);
        try {
          const c = (await healthOf()).components ?? {};
          return (c['ingest']?.stored ?? 0) > 500;
        } catch {
          return false;
        }
      },
      180_000,
      500,
    );
    const brokerPid = Number(readFileSync(join(dir, 'kafka', 'broker.pid'), 'utf8').trim());
    assert.ok(brokerPid > 0);
    const exited = new Promise<number | null>((resolve) => run.once('exit', (c) => resolve(c)));
    // Frozen rather than dead: connections stay open and every request times out — the slowest case (found from
    // outside: the synthetic traffic's send in progress held the stop ~4.5 min before the consumers began to stop).
    process.kill(brokerPid, 'SIGSTOP');
    frozenBroker = brokerPid;
    await new Promise((r) => setTimeout(r, 5_000));
    assert.equal(run.exitCode, null, `cdr start exited on its own when its broker froze:\n${stderr.slice(-2000)}`);
    const stopAt = Date.now();
    run.kill('SIGINT');
    // Bounded: the traffic's send gets 5 s, each consumer at most 30 s for kafkajs and then its publisher's close, side
    // by side. 150 s leaves room for a loaded machine; one after another, or waiting for the traffic, took 370 s.
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 150 s after Ctrl-C'), 150_000).unref())]);
    assert.equal(code, 0, `${code} after ${Math.round((Date.now() - stopAt) / 1000)} s:\n${stderr.slice(-2000)}`);
    assert.match(stderr, /stopped\. stored=\d+/);
    // Each consumer's stop begins before any of them has stopped: side by side, not one after another.
    const lines = readFileSync(join(dir, 'pipeline.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: number; msg: string; consumer?: string });
    const stopping = lines.filter((l) => l.msg === 'consumer stopping');
    const stopped = lines.filter((l) => /^(ingest|billing|fraud) stopped$/.test(l.msg));
    assert.deepEqual(stopping.map((l) => l.consumer).sort(), ['cdr-billing', 'cdr-fraud', 'cdr-ingest'], JSON.stringify(stopping));
    assert.equal(stopped.length, 3, JSON.stringify(stopped));
    const lastStart = Math.max(...stopping.map((l) => l.time));
    const firstEnd = Math.min(...stopped.map((l) => l.time));
    assert.ok(lastStart <= firstEnd, `a consumer's stop began ${lastStart - firstEnd} ms after another had stopped`);
  });
});
