/**
 * Ingest under way in the same process while a benchmark measures something else (a law-enforcement request, a
 * billing query): the embedded deployment runs them side by side (`cdr start`), so their latencies are worth most
 * with ingest busy. A `cdr produce` child sends generated traffic at a fixed rate to the runtime's cdr.raw; this
 * process's ingest stores it into the same engine the queries read. `stop()` ends both and says what was achieved.
 * BENCH_BACKGROUND=all: billing and fraud consume the pseudonymised records too, each on its own engine session, as
 * `cdr start` runs all three beside the API (default `ingest`: ingest alone, comparable with earlier results).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBilling } from '../../services/billing/createBilling.ts';
import { createFraud } from '../../services/fraud/createFraud.ts';
import { createIngest } from '../../services/ingest/createIngest.ts';
import type { IngestService } from '../../services/ingest/ingestService.ts';
import { openStorage, type Storage } from '../../services/platform/clickhouse/index.ts';
import type { PipelineRuntime } from '../../services/platform/runtime/index.ts';
import { REPO_ROOT } from './proc.ts';

export interface BackgroundIngest {
  readonly ingest: IngestService;
  /** Records ingest has stored (or stored late) since start. */
  stored(): number;
  /** Stops the producer (only the child this module started) and ingest; the achieved ingest rate. */
  stop(): Promise<{ seconds: number; stored: number; perSecond: number }>;
}

export async function startBackgroundIngest(rt: PipelineRuntime, rate: number, log: (s: string) => void): Promise<BackgroundIngest> {
  // As `cdr start` builds it: the API shares this process's event loop.
  const ingest = createIngest(rt, { sharesEventLoop: true });
  await ingest.start();
  const others: { stop(): Promise<void> }[] = [];
  const sessions: Storage[] = [];
  if ((process.env['BENCH_BACKGROUND'] ?? 'ingest') === 'all') {
    const billingStorage = await openStorage(rt.config.clickhouse, rt.config.dataDir);
    const fraudStorage = await openStorage(rt.config.clickhouse, rt.config.dataDir);
    sessions.push(billingStorage, fraudStorage);
    const { service: billing } = await createBilling(rt, { storage: billingStorage, sharesEventLoop: true });
    const { service: fraud } = await createFraud(rt, { storage: fraudStorage, sharesEventLoop: true });
    await billing.start();
    await fraud.start();
    others.push(billing, fraud);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-producer-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/cdr.cjs', 'produce', '--count', String(Math.round(rate * 3_600)), '--rate', String(rate), '--seed', String(Date.now() % 100_000), '--quiet'],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        KAFKA_BROKERS: rt.brokers.join(','),
        CDR_TOPIC_RAW: rt.config.kafka.topics.raw,
        CDR_DATA_DIR: dir,
        CDR_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const stored = (): number => ingest.stats.stored + ingest.stats.late;
  const t0 = performance.now();
  const start = stored();
  // Until the first records are stored: the measurement that follows then runs with ingest really busy.
  while (stored() === start) {
    if (child.exitCode !== null) throw new Error(`the background producer exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log(
    `background ${others.length > 0 ? 'ingest, billing and fraud' : 'ingest'}: producing ${rate.toLocaleString('en')} records/s into ${rt.config.kafka.topics.raw}; first stored after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const from = { t: performance.now(), n: stored() };
  return {
    ingest,
    stored,
    async stop() {
      const seconds = (performance.now() - from.t) / 1000;
      const n = stored() - from.n;
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await ingest.stop();
      for (const o of others) await o.stop();
      for (const session of sessions) await session.close();
      rmSync(dir, { recursive: true, force: true });
      return { seconds, stored: n, perSecond: n / seconds };
    },
  };
}
