/**
 * The embedded engine reads the host process's stdin as data for an INSERT (chdb-io/chdb-core#239; bin/detach-stdin.cjs).
 * A child process with bytes waiting on its stdin opens the engine through the project's storage and inserts a row: with
 * stdin detached first, as every entry point does (bin/threadpool.cjs), the insert succeeds and stores exactly its row;
 * without it, the engine refuses the same insert. The control shows the defect is still there to guard against.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../../..');
const SCRIPT = `
import { statSync, fstatSync } from 'node:fs';
import { openStorage } from ${JSON.stringify(path.join(root, 'services/platform/clickhouse/index.ts'))};
const storage = await openStorage({ url: undefined, database: 'default', user: 'default', password: '', cluster: undefined }, process.argv[1]);
const onDevNull = fstatSync(0).rdev === statSync('/dev/null').rdev;
try {
  await storage.command('CREATE TABLE IF NOT EXISTS stdin_probe (a UInt32) ENGINE = MergeTree ORDER BY a');
  await storage.insert('stdin_probe', [{ a: 1 }]);
  const rows = await storage.query('SELECT a FROM stdin_probe ORDER BY a');
  console.log(JSON.stringify({ onDevNull, rows: rows.map((r) => Number(r.a)) }));
} catch (err) {
  console.log(JSON.stringify({ onDevNull, error: String(err.message ?? err).slice(0, 300) }));
} finally {
  await storage.close();
}
`;

function run(preload: string[]): { onDevNull: boolean; rows?: number[]; error?: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-stdin-'));
  try {
    const env = { ...process.env, NODE_OPTIONS: '' };
    const child = spawnSync(process.execPath, [...preload, '--import', 'tsx', '--input-type=module', '-e', SCRIPT, dir], {
      cwd: root,
      env,
      // Rows nobody wrote, waiting on the child's stdin.
      input: '9999\n{"a":9999}\n',
      encoding: 'utf8',
      timeout: 120_000,
    });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    assert.ok(line.startsWith('{'), `child said: ${child.stdout}\n${child.stderr}`);
    return JSON.parse(line) as { onDevNull: boolean; rows?: number[]; error?: string };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The environment without what the test runner adds for its own children. */
function withoutRunner(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, NODE_OPTIONS: '' };
  for (const name of ['NODE_TEST_CONTEXT', 'KAFKA_BROKERS', 'CLICKHOUSE_URL', 'CDR_MASTER_KEY', 'CDR_MASTER_KEY_FILE', 'CDR_DATA_DIR']) delete out[name];
  return out;
}

describe('stdin detached before the embedded engine opens', () => {
  it('with bin/threadpool.cjs loaded first, an insert stores exactly its own row whatever waits on stdin', () => {
    const out = run(['--require', path.join(root, 'bin/threadpool.cjs')]);
    assert.deepEqual(out, { onDevNull: true, rows: [1] });
  });

  it('`node bin/cdr.js …` run directly (no bin/cdr.cjs) detaches it too: a command that writes succeeds', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cdr-stdin-cli-'));
    try {
      const child = spawnSync(process.execPath, [path.join(root, 'bin/cdr.js'), 'retention', 'run', '--dry-run', '--data-dir', path.join(dir, 'data')], {
        cwd: root,
        // Without the runner's broker: with one, a first open that failed on stdin was retried without Kafka, and the
        // retry found stdin drained and passed.
        env: { ...withoutRunner(process.env), CDR_DEV_KEY_DIR: path.join(dir, 'keys') },
        input: '9999\n{"a":9999}\n',
        encoding: 'utf8',
        timeout: 120_000,
      });
      // Before 2026-12-06 this exited 1: "insert into schema_migrations failed: Code: 48 … external data (from stdin …)".
      assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`);
      assert.doesNotMatch(child.stderr, /Code: 48|external data/);
      assert.equal((JSON.parse(child.stdout) as { dry_run: boolean }).dry_run, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without it, the engine takes stdin as the insert’s data and refuses it (the defect guarded against)', () => {
    const out = run([]);
    assert.equal(out.onDevNull, false);
    assert.match(out.error ?? JSON.stringify(out), /external data \(from stdin or infile\)|9999/);
  });
});
