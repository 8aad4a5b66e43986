/**
 * `npm test`: picks the test environment, then runs every test file with Node's built-in runner.
 * Environment choice (docs/architecture.md, tests: README): explicit KAFKA_BROKERS / CLICKHOUSE_URL first; else, where a
 * Docker engine answers and CDR_TEST_DOCKER=1, testcontainers; else the local Kafka broker (Maven jars,
 * started here, stopped at the end) and embedded ClickHouse (chDB, one data directory per test file).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalBroker, type LocalBroker } from '../infra/kafka/localBroker.ts';

// A path, not a URL's pathname: a checkout path with a space stays a space (cwd, the preload in NODE_OPTIONS).
const root = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

// Arguments: paths (or parts of them) to run; `--except P` leaves out files whose path contains P (said on stderr).
const args = process.argv.slice(2);
const except = args.flatMap((a, i) => (args[i - 1] === '--except' ? [a] : []));
const filter = args.filter((a, i) => a !== '--except' && args[i - 1] !== '--except');
const files = testFiles(join(root, 'tests'))
  .map((f) => relative(root, f))
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .filter((f) => {
    const left = except.some((x) => f.includes(x));
    if (left) process.stderr.write(`left out of this run (--except): ${f}\n`);
    return !left;
  });

// The test processes start as `cdr start` does (bin/threadpool.cjs): libuv's pool at 16 threads unless the caller set a
// size, and stdin on /dev/null (bin/detach-stdin.cjs: the engine reads fd 0 as INSERT data, and node:test gives each
// file's process a socket there). Through NODE_OPTIONS, so that the file processes node:test spawns, and theirs, load
// it first, before any thread exists; not in this process, where loader threads already run.
const env: NodeJS.ProcessEnv = { ...process.env };
env['NODE_OPTIONS'] = [env['NODE_OPTIONS'], `--require ${JSON.stringify(join(root, 'bin', 'threadpool.cjs'))}`].filter(Boolean).join(' ');
const cleanups: (() => Promise<void>)[] = [];

async function dockerEnvironment(): Promise<boolean> {
  if (env['CDR_TEST_DOCKER'] !== '1') return false;
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return false;
  const { startContainers } = await import('../tests/support/containers.ts');
  const c = await startContainers();
  env['KAFKA_BROKERS'] = c.kafkaBrokers;
  env['CLICKHOUSE_URL'] = c.clickhouseUrl;
  cleanups.push(() => c.stop());
  return true;
}

let tmp: string | undefined;
const unitOnly = files.every((f) => f.startsWith('tests/unit/'));
if (unitOnly) {
  process.stderr.write('test environment: unit tests only, no broker\n');
} else if (!env['KAFKA_BROKERS'] && !(await dockerEnvironment())) {
  tmp = mkdtempSync(join(tmpdir(), 'cdr-test-kafka-'));
  const t0 = Date.now();
  const broker: LocalBroker = await startLocalBroker({ dataDir: tmp, port: 0 });
  process.stderr.write(
    `test environment: local Kafka ${broker.version} on ${broker.brokers.join(',')} (ready in ${Date.now() - t0} ms), embedded ClickHouse\n`,
  );
  env['KAFKA_BROKERS'] = broker.brokers.join(',');
  cleanups.push(() => broker.stop());
} else {
  process.stderr.write(`test environment: KAFKA_BROKERS=${env['KAFKA_BROKERS']} CLICKHOUSE_URL=${env['CLICKHOUSE_URL'] ?? '(embedded)'}\n`);
}

// Unit and integration files two at a time; then the integrity files (kill -9, broker loss, rebalances), also two at a
// time: each drives its faults on its own broker, cluster or child processes — none stops the shared test broker — so
// one's faults never reach another, and most of their time is spent waiting (session timeouts, broker restarts).
const concurrency = env['CDR_TEST_CONCURRENCY'] ?? '2';
// Bounds, so that a test file that never ends — or whose tests pass but which never exits, a handle left open — fails
// the run in minutes with its name, not at CI's 90-minute limit. With the runner's process isolation,
// `--test-timeout` bounds each file's process (CDR_TEST_TIMEOUT_S; the longest file, billing's kill -9, takes ~2 min);
// a whole group still running after CDR_TEST_GROUP_TIMEOUT_S is ended too, as a backstop for the runner itself.
const testTimeoutMs = Number(env['CDR_TEST_TIMEOUT_S'] ?? 900) * 1000;
const groupTimeoutMs = Number(env['CDR_TEST_GROUP_TIMEOUT_S'] ?? 2700) * 1000;
let interrupted = false;
const run = (group: readonly string[], n: string): Promise<number> =>
  group.length === 0 || interrupted
    ? Promise.resolve(interrupted ? 130 : 0)
    : new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${n}`, `--test-timeout=${testTimeoutMs}`, ...group], {
          cwd: root,
          env,
          stdio: 'inherit',
          // Its own process group: the watchdog ends the runner and every test file it started, and nothing else.
          detached: true,
        });
        const watchdog = setTimeout(() => {
          process.stderr.write(
            `\ntest run: this group of files was still running after ${groupTimeoutMs / 1000} s (CDR_TEST_GROUP_TIMEOUT_S); ending it:\n  ${group.join('\n  ')}\n`,
          );
          try {
            if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }, groupTimeoutMs);
        // Ctrl-C reaches the terminal's process group only: pass it on, so the files stop and the broker is stopped after.
        const forward = (signal: NodeJS.Signals): void => {
          interrupted = true;
          try {
            if (child.pid !== undefined) process.kill(-child.pid, signal);
          } catch {
            // Already gone.
          }
        };
        process.on('SIGINT', forward);
        process.on('SIGTERM', forward);
        child.on('exit', (c, sig) => {
          clearTimeout(watchdog);
          process.off('SIGINT', forward);
          process.off('SIGTERM', forward);
          resolve(c ?? (sig ? 1 : 0));
        });
      });
const integrity = files.filter((f) => f.startsWith('tests/integrity/'));
const first = await run(
  files.filter((f) => !f.startsWith('tests/integrity/')),
  concurrency,
);
const second = await run(integrity, env['CDR_TEST_INTEGRITY_CONCURRENCY'] ?? '2');
const code = first !== 0 ? first : second;
// node's summary counts a test cancelled by its suite's failing before/after hook under `# cancelled`, not `# fail`:
// say plainly that the run failed (found reading a summary that said `# fail 0`).
if (code !== 0)
  process.stderr.write(
    `\ntest run: FAILED (exit ${code}): a test failed, was cancelled (a failing before/after hook cancels its suite) or timed out; see "not ok" above\n`,
  );
for (const c of cleanups.reverse()) {
  try {
    await c();
  } catch (err) {
    process.stderr.write(`cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
if (tmp) rmSync(tmp, { recursive: true, force: true });
process.exit(code);
