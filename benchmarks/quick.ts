/**
 * `npm run bench:quick`: a regression check in about two minutes. For each data set — `cache` (20,000 subscribers)
 * and `otp` (a new subscriber per record: high cardinality) — its own local broker (temp dir, 127.0.0.1, stopped at
 * the end), one topic pre-filled with BENCH_QUICK_RECORDS (100000) generator records, our IngestService end to end
 * once (child process); then the in-process stage micro-benchmarks (no ClickHouse insert matrix). Prints records/s and a JSON line; exits 1 if ingest fails or, when BENCH_QUICK_MIN_RATE is
 * set, if the rate falls below it. Numbers at this size include warm-up and are noisier than `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFilledBench, type BenchDataset, type FilledBench } from './lib/kafkaUtil.ts';
import { runOurs, type OursResult } from './lib/phases.ts';
import { fmt, fmtInt, load1 } from './lib/stats.ts';
import { runStagesInChild, type StagesReport } from './stages.ts';

const N = Number(process.env['BENCH_QUICK_RECORDS'] ?? 100_000);
const MIN_RATE = Number(process.env['BENCH_QUICK_MIN_RATE'] ?? 0);
const PARTITIONS = 4;
const log = (s: string): void => console.log(`[bench:quick] ${s}`);

const started = Date.now();
// Both data sets (lib/kafkaUtil.ts): the cache-friendly default and the high-cardinality one (a new subscriber per
// record), each in its own broker and topic. BENCH_QUICK_DATASETS narrows it (e.g. `otp`).
const DATASETS = (process.env['BENCH_QUICK_DATASETS'] ?? 'cache,otp').split(',').map((d) => d.trim()) as BenchDataset[];
let failure: unknown;
let stages: StagesReport | undefined;
const loadAtStart = load1();
const results: { dataset: BenchDataset; ours: OursResult }[] = [];
for (const dataset of DATASETS) {
  const workDir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-quick-'));
  let bench: FilledBench | undefined;
  try {
    bench = await startFilledBench(workDir, PARTITIONS, N, Date.now() - 3_600_000, dataset);
    const { broker, admin, fill } = bench;
    log(`[${dataset}] pre-filled ${N.toLocaleString('en')} records in ${fill.seconds.toFixed(1)} s (load ${load1().toFixed(2)})`);
    const ours = await runOurs({ brokers: broker.brokers, brokerPid: broker.pid, workDir, admin, partitions: PARTITIONS }, { topic: 'bench.raw', records: N });
    results.push({ dataset, ours });
    log(
      `[${dataset}] ingest: ${fmtInt(ours.recordsPerSecond)} records/s (last 75%: ${fmtInt(ours.steadyRecordsPerSecond)}/s), ${fmt((ours.cpuSeconds / N) * 1e6)} CPU-s per 1M, peak RSS ${fmtInt(ours.peakRssMiB)} MiB`,
    );
  } catch (err) {
    failure = err;
  } finally {
    await bench?.close();
    rmSync(workDir, { recursive: true, force: true });
  }
  if (failure) break;
}
const ours = results[0]?.ours;
if (!failure) {
  try {
    stages = await runStagesInChild({ records: 10_000, inserts: false, reps: 2, log: (s) => log(s) });
  } catch (err) {
    failure = err;
  }
}
const summary = {
  records: N,
  recordsPerSecond: ours ? Math.round(ours.recordsPerSecond) : null,
  steadyRecordsPerSecond: ours?.steadyRecordsPerSecond ? Math.round(ours.steadyRecordsPerSecond) : null,
  cpuSecondsPerMillion: ours ? Number(((ours.cpuSeconds / N) * 1e6).toFixed(1)) : null,
  peakRssMiB: ours ? Math.round(ours.peakRssMiB) : null,
  datasets: Object.fromEntries(
    results.map((r) => [
      r.dataset,
      {
        recordsPerSecond: Math.round(r.ours.recordsPerSecond),
        cpuSecondsPerMillion: Number(((r.ours.cpuSeconds / N) * 1e6).toFixed(1)),
        peakRssMiB: Math.round(r.ours.peakRssMiB),
      },
    ]),
  ),
  load1AtStart: Number(loadAtStart.toFixed(2)),
  stagesNsPerUnit: stages ? Object.fromEntries(stages.stages.map((s) => [s.stage, Math.round(s.nsPerUnit)])) : null,
  seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
};
console.log(JSON.stringify(summary));
if (failure) {
  console.error(failure);
  process.exitCode = 1;
} else if (MIN_RATE > 0 && results.some((r) => r.ours.recordsPerSecond < MIN_RATE)) {
  console.error(
    `[bench:quick] ${results.map((r) => `${r.dataset} ${fmtInt(r.ours.recordsPerSecond)}`).join(', ')} records/s: below BENCH_QUICK_MIN_RATE=${MIN_RATE}`,
  );
  process.exitCode = 1;
}
