/**
 * Benchmark child: our IngestService as its own process, wired exactly like services/ingest/main.ts
 * (config from the environment → openRuntime → IngestService), without the metrics HTTP app, which is
 * not on the ingest path. The parent (benchmarks/run.ts, quick.ts) decides when the run is over by
 * watching the consumer group's committed offsets; this process only reports its own resource usage.
 *
 * IPC (process.send):
 *   child → parent  {type:'ready', t, cpu}                           after ingest.start() resolved
 *   child → parent  {type:'insert', partition, minOffset, maxOffset, rows, t}   (BENCH_REPORT_INSERTS=1)
 *                    one per completed INSERT into `cdr`: from then on those rows answer SELECTs
 *   parent → child  {type:'stop'}
 *   child → parent  {type:'done', t, cpu, usage, stats}               then the child stops and exits
 *
 * `cpu` is process.cpuUsage() (all threads of the process: JS, libuv pool, chDB's engine threads).
 */
import { loadConfig } from '../services/platform/config/config.ts';
import type { Storage } from '../services/platform/clickhouse/storage.ts';
import { isEncodedRows, rowCountOf } from '../services/platform/clickhouse/encodedRows.ts';
import { openRuntime, requireStorage } from '../services/platform/runtime/runtime.ts';
import { createIngest } from '../services/ingest/createIngest.ts';
import { readProcStatus, selfUsage, type ChildUsage } from './lib/proc.ts';

export interface ReadyMessage {
  type: 'ready';
  t: number;
  cpu: NodeJS.CpuUsage;
}
export interface InsertMessage {
  type: 'insert';
  partition: number;
  minOffset: number;
  maxOffset: number;
  rows: number;
  t: number;
}
export interface DoneMessage {
  type: 'done';
  t: number;
  cpu: NodeJS.CpuUsage;
  usage: ChildUsage;
  /** V8 heaps of the main thread at the end (MiB): what of the RSS is JavaScript. */
  heap: { usedMiB: number; totalMiB: number; externalMiB: number; rssAnonMiB?: number; rssFileMiB?: number };
  stats: Record<string, number>;
}
export type IngestChildMessage = ReadyMessage | InsertMessage | DoneMessage;

const send = (m: IngestChildMessage): void => {
  process.send?.(m);
};

const config = loadConfig();
const rt = await openRuntime(config, { startLocalKafka: false });
const opened = requireStorage(rt);
const reportInserts = process.env['BENCH_REPORT_INSERTS'] === '1';

/** Same storage; when asked, tells the parent when each `cdr` insert has returned (rows queryable from then). */
const storage: Storage = reportInserts
  ? {
      ...opened.storage,
      async insert(table, rows, settings, shape) {
        await opened.storage.insert(table, rows, settings, shape);
        if (table !== 'cdr' || rowCountOf(rows) === 0) return;
        const t = Date.now();
        let min = Number.MAX_SAFE_INTEGER;
        let max = -1;
        let partition = -1;
        if (isEncodedRows(rows)) {
          // Serialised by a prepare worker, which notes the offsets it holds.
          if (!rows.offsets) return;
          ({ min, max, partition } = rows.offsets);
        } else {
          for (const r of rows as readonly { src_partition: number; src_offset: string }[]) {
            const o = Number(r.src_offset);
            if (o < min) min = o;
            if (o > max) max = o;
            partition = r.src_partition;
          }
        }
        send({ type: 'insert', partition, minOffset: min, maxOffset: max, rows: rowCountOf(rows), t });
      },
    }
  : opened.storage;

const ingest = createIngest(rt, { storage });

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  const cpu = process.cpuUsage();
  const m = process.memoryUsage();
  const st = readProcStatus('self');
  const heap = {
    usedMiB: m.heapUsed / 2 ** 20,
    totalMiB: m.heapTotal / 2 ** 20,
    externalMiB: m.external / 2 ** 20,
    ...(st.rssAnonKiB !== undefined ? { rssAnonMiB: st.rssAnonKiB / 1024 } : {}),
    ...(st.rssFileKiB !== undefined ? { rssFileMiB: st.rssFileKiB / 1024 } : {}),
  };
  send({ type: 'done', t: Date.now(), cpu, usage: selfUsage(), heap, stats: { ...ingest.stats } });
  try {
    await ingest.stop();
    await rt.close();
  } finally {
    process.exit(0);
  }
};
process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stop') void stop();
});
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());

await ingest.start();
send({ type: 'ready', t: Date.now(), cpu: process.cpuUsage() });
