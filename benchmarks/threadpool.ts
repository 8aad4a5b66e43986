/**
 * `node --import tsx benchmarks/threadpool.ts`: does a statement on one embedded-engine session wait for libuv pool
 * threads held by another session's queued statements? (bin/threadpool.cjs.) Runs itself as a child per pool size
 * (BENCH_POOL_SIZES, default "4,16"; 4 is libuv's default): session A is handed 6 CPU-bound statements at once (one
 * runs, the others wait their session's turn), then a `SELECT 1` on session B is timed; 5 rounds each. Each chdb
 * statement holds a pool thread while it waits, so with 4 threads B's statement cannot start before one of A's ends.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';

const ROUNDS = 5;
const QUEUED = 6;

if (process.env['BENCH_POOL_CHILD'] !== '1') {
  for (const size of (process.env['BENCH_POOL_SIZES'] ?? '4,16').split(',')) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename], {
      env: { ...process.env, BENCH_POOL_CHILD: '1', UV_THREADPOOL_SIZE: size },
      encoding: 'utf8',
    });
    process.stdout.write(r.stdout);
    if (r.status !== 0) process.stderr.write(r.stderr);
  }
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-pool-'));
  const a = new Session(dir);
  const b = new Session(dir);
  try {
    const heavy = (): Promise<unknown> => a.queryAsync('SELECT sum(cityHash64(number)) FROM numbers(30000000) SETTINGS max_threads = 1');
    await b.queryAsync('SELECT 1');
    let t = performance.now();
    await heavy();
    const alone = performance.now() - t;
    const waits: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const queued = Array.from({ length: QUEUED }, heavy);
      await new Promise((r) => setTimeout(r, 50));
      t = performance.now();
      await b.queryAsync('SELECT 1');
      waits.push(Math.round(performance.now() - t));
      await Promise.all(queued);
    }
    console.log(
      `UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE']}: one statement of A alone ${Math.round(alone)} ms; ` +
        `SELECT 1 on B with ${QUEUED} of A's queued: ${waits.join(', ')} ms`,
    );
  } finally {
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
