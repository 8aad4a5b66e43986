/**
 * A kill -9 between the engine's deduplication record and its part's rename (dedupLogRepair.ts) on the real engine:
 * the data directory is brought to exactly the state such a kill leaves — the block id in `deduplication_logs/`, the
 * part still named `tmp_insert_*` — and the batch replayed with its token. The engine alone drops the replay (the rows
 * are lost for good); the pipeline's store repairs the log on open, and the replay is written once.
 *
 * The state is made by renaming the part back because a real kill has to land between two adjacent system calls. By
 * hand, `strace -f -e inject=rename:signal=SIGKILL:when=1 node …` lands it there every time, and leaves the same
 * files (docs/decisions/0031-deduplication-log-repair.md).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineHeld, repairDedupLogs } from '../../../services/platform/clickhouse/dedupLogRepair.ts';

const CHILD = join(import.meta.dirname, '../../support/fixtures/dedupChild.ts');

interface ChildReport {
  rows: number;
  total: number;
  tokens: string[];
  repair?: { tables: number; dropped: number; unreadable: string[] };
}

function child(mode: 'ours' | 'engine-only', dataDir: string, ...tokens: string[]): ChildReport {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, mode, dataDir, ...tokens], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `dedupChild ${mode} failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildReport;
}

/** The probe table's directory: the one table under store/ whose deduplication log names its parts. */
function probeTableDir(dataDir: string): string {
  const store = join(dataDir, 'clickhouse', 'store');
  for (const prefix of readdirSync(store))
    for (const uuid of readdirSync(join(store, prefix))) {
      const dir = join(store, prefix, uuid);
      if (existsSync(join(dir, 'deduplication_logs'))) return dir;
    }
  throw new Error('no table with a deduplication log');
}

/** The last ADD record's part (the last insert's): the part a kill before its rename would have left as tmp_insert_. */
function lastAddedPart(tableDir: string): string {
  const logs = readdirSync(join(tableDir, 'deduplication_logs')).sort();
  const lines = readFileSync(join(tableDir, 'deduplication_logs', logs[logs.length - 1]!), 'utf8')
    .trim()
    .split('\n');
  const adds = lines.map((l) => l.split('\t')).filter((f) => f[0] === '1');
  return adds[adds.length - 1]![1]!;
}

const sum = (from: number, to: number): number => ((from + to) * (to - from + 1)) / 2;

describe('deduplication log repaired after a crash between the record and the part', () => {
  const root = mkdtempSync(join(tmpdir(), 'cdr-dedup-repair-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const dataDir = join(root, 'data');
  const control = join(root, 'control');

  it('brings a store to the state a kill between the two leaves', () => {
    const first = child('ours', dataDir, 'batch-a', 'batch-b');
    assert.deepEqual({ rows: first.rows, tokens: first.tokens }, { rows: 20, tokens: ['batch-a', 'batch-b'] });
    const tableDir = probeTableDir(dataDir);
    const part = lastAddedPart(tableDir);
    assert.ok(existsSync(join(tableDir, part)), `${part} is on disk`);
    renameSync(join(tableDir, part), join(tableDir, `tmp_insert_${part}`));
    cpSync(dataDir, control, { recursive: true });
  });

  it('shows the loss on the engine alone: the replay is taken for a duplicate and never written', () => {
    // If a ClickHouse release orders the record after the rename, this fails: then the repair can go (ADR 0031).
    const replay = child('engine-only', control, 'batch-b');
    assert.deepEqual({ rows: replay.rows, tokens: replay.tokens }, { rows: 10, tokens: ['batch-a'] });
  });

  it('writes the replay once when the pipeline opens the store, and still drops a replay of a committed block', () => {
    const replay = child('ours', dataDir, 'batch-b', 'batch-a', 'batch-b');
    assert.equal(replay.repair?.dropped, 1, 'one block id without its part dropped');
    assert.deepEqual(replay.repair?.unreadable, []);
    assert.deepEqual({ rows: replay.rows, tokens: replay.tokens }, { rows: 20, tokens: ['batch-a', 'batch-b'] });
    assert.equal(replay.total, 2 * sum(0, 9));
  });

  it('repairs nothing on a clean open, and keeps deduplicating', () => {
    const again = child('ours', dataDir, 'batch-a', 'batch-b', 'batch-c');
    assert.equal(again.repair?.dropped, 0);
    assert.ok((again.repair?.tables ?? 0) >= 1);
    assert.deepEqual({ rows: again.rows, tokens: again.tokens }, { rows: 30, tokens: ['batch-a', 'batch-b', 'batch-c'] });
  });

  it('leaves the logs alone while a live process holds the engine, whatever pid its status file names', async () => {
    const tableDir = probeTableDir(control);
    const part = lastAddedPart(tableDir);
    // The control store: its replay was dropped, so the stale block id is there.
    assert.ok(!existsSync(join(tableDir, part)));
    const logs = join(tableDir, 'deduplication_logs');
    const before = readdirSync(logs).map((f) => readFileSync(join(logs, f), 'utf8'));
    // Another process opens the engine and keeps it open (as a `cdr start` would).
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const { Session } = require('chdb'); new Session(${JSON.stringify(join(control, 'clickhouse'))}).query('SELECT 1'); console.log('open'); setInterval(() => {}, 1000);`,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.once('data', () => resolve());
        holder.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
      });
      // The pid in its status file is no proof (a restarted container reuses pids; another namespace sees other
      // pids): point it at a process that is gone. The kernel's lock table still shows the holder.
      writeFileSync(join(control, 'clickhouse', 'status'), 'PID: 999999999\nStarted at: 2026-12-02 00:00:00\n');
      assert.equal(engineHeld(join(control, 'clickhouse')), true);
      const report = repairDedupLogs(join(control, 'clickhouse'));
      assert.deepEqual({ dropped: report.dropped, skipped: report.skipped }, { dropped: 0, skipped: 'the engine is open in a live process' });
      assert.deepEqual(
        readdirSync(logs).map((f) => readFileSync(join(logs, f), 'utf8')),
        before,
      );
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    // Once it is gone (killed: its status file stays), the same store is repaired.
    assert.equal(engineHeld(join(control, 'clickhouse')), false);
    assert.equal(repairDedupLogs(join(control, 'clickhouse')).dropped, 1);
  });

  it('leaves a log with a torn last line alone (appending would glue a record onto it), and says so', () => {
    const store = join(root, 'torn', 'clickhouse');
    const table = join(store, 'store', 'abc', 'abc12345-0000-4000-8000-000000000000');
    mkdirSync(join(table, 'deduplication_logs'), { recursive: true });
    mkdirSync(join(table, 'all_1_1_0'));
    const torn = '1\tall_1_1_0\tall_1_2\n1\tall_2_2_0\tall_3_4\n1\tall_3_3_0\tall_5_6';
    writeFileSync(join(table, 'deduplication_logs', 'deduplication_log_1.txt'), torn);
    const report = repairDedupLogs(store);
    assert.deepEqual({ dropped: report.dropped, unreadable: report.unreadable }, { dropped: 0, unreadable: [table] });
    assert.equal(readFileSync(join(table, 'deduplication_logs', 'deduplication_log_1.txt'), 'utf8'), torn);
    // The same log whole: the two blocks without a part are dropped.
    writeFileSync(join(table, 'deduplication_logs', 'deduplication_log_1.txt'), `${torn}\n`);
    assert.equal(repairDedupLogs(store).dropped, 2);
    assert.match(readFileSync(join(table, 'deduplication_logs', 'deduplication_log_1.txt'), 'utf8'), /\n2\tall_2_2_0\tall_3_4\n2\tall_3_3_0\tall_5_6\n$/);
  });
});
