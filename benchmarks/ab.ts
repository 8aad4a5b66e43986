/**
 * A/B of our ingest under different settings (environment variables and node flags), interleaved so that
 * background load hits every variant alike:
 *
 *   BENCH_AB_VARIANTS='[{"name":"base"},{"name":"semi64","nodeFlags":["--max-semi-space-size=64"]},
 *                       {"name":"batch5k","env":{"CDR_INGEST_MAX_BATCH":"5000"}}]' \
 *   BENCH_RECORDS=1000000 BENCH_RUNS=3 node --import tsx benchmarks/ab.ts
 *
 * A variant with "root" runs the ingest child from another checkout, to compare commits:
 *   git worktree add /tmp/cdr-base <commit> && ln -s "$PWD/node_modules" /tmp/cdr-base/node_modules
 *   BENCH_AB_VARIANTS='[{"name":"before","root":"/tmp/cdr-base"},{"name":"after"}]' node --import tsx benchmarks/ab.ts
 *
 * Own broker (same settings as run.ts), one pre-filled topic, then BENCH_RUNS rounds of every variant.
 * Prints a Markdown table of medians (records/s, last-75% records/s, CPU-s per 1M, peak RSS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFilledBench, type FilledBench } from './lib/kafkaUtil.ts';
import { runOurs, type OursResult } from './lib/phases.ts';
import { fmt, fmtInt, load1, median } from './lib/stats.ts';

interface Variant {
  name: string;
  env?: Record<string, string>;
  nodeFlags?: string[];
  /** A checkout of another commit (`git worktree add /tmp/base <commit>` + node_modules link) to run instead of this one. */
  root?: string;
}

const variants = JSON.parse(process.env['BENCH_AB_VARIANTS'] ?? '[{"name":"base"}]') as Variant[];
const N = Number(process.env['BENCH_RECORDS'] ?? 1_000_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);
const log = (s: string): void => console.log(`[bench:ab ${new Date().toISOString().slice(11, 19)}] ${s}`);

const workDir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-ab-'));
let bench: FilledBench | undefined;
const results = new Map<string, (OursResult & { load: number })[]>();
try {
  bench = await startFilledBench(workDir, PARTITIONS, N, Date.now() - 2 * 3_600_000);
  const { broker, admin, fill } = bench;
  log(`pre-filled ${N.toLocaleString('en')} records in ${fill.seconds.toFixed(1)} s`);
  const ctx = { brokers: broker.brokers, brokerPid: broker.pid, workDir, admin, partitions: PARTITIONS };
  for (let r = 1; r <= RUNS; r++) {
    for (const v of variants) {
      const l = load1();
      const res = await runOurs(ctx, {
        topic: 'bench.raw',
        records: N,
        nodeFlags: v.nodeFlags ?? [],
        extraEnv: v.env ?? {},
        ...(v.root ? { root: v.root } : {}),
      });
      log(
        `run ${r} ${v.name.padEnd(12)} load ${l.toFixed(2)}: ${fmtInt(res.recordsPerSecond)} records/s (last 75% ${fmtInt(res.steadyRecordsPerSecond)}), ${fmt((res.cpuSeconds / N) * 1e6)} CPU-s/1M, RSS ${fmtInt(res.peakRssMiB)} MiB${res.heap ? ` (JS heap at end ${fmtInt(res.heap.usedMiB)} used / ${fmtInt(res.heap.totalMiB)} MiB, external ${fmtInt(res.heap.externalMiB)}; RSS at end ${fmtInt(res.heap.rssAnonMiB)} anonymous + ${fmtInt(res.heap.rssFileMiB)} file-backed)` : ''}`,
      );
      const threads = Object.entries(res.threadCpu)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([name, sec]) => `${name} ${fmt((sec / N) * 1e6)}`)
        .join(', ');
      log(`  CPU-s per 1M by thread: ${threads}`);
      const list = results.get(v.name) ?? [];
      list.push({ ...res, load: l });
      results.set(v.name, list);
    }
  }
} finally {
  await bench?.close();
  rmSync(workDir, { recursive: true, force: true });
}
console.log('\n| variant | settings | records/s (median) | last 75% | CPU-s per 1M | peak RSS MiB | load1 at starts |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | --- |');
for (const v of variants) {
  const rs = results.get(v.name) ?? [];
  const settings =
    [...(v.root ? [`code from ${v.root}`] : []), ...Object.entries(v.env ?? {}).map(([k, x]) => `${k}=${x}`), ...(v.nodeFlags ?? [])].join(' ') || 'defaults';
  console.log(
    `| ${v.name} | ${settings} | ${fmtInt(median(rs.map((x) => x.recordsPerSecond)))} | ${fmtInt(median(rs.map((x) => x.steadyRecordsPerSecond ?? Number.NaN)))} | ${fmt(median(rs.map((x) => (x.cpuSeconds / N) * 1e6)))} | ${fmtInt(median(rs.map((x) => x.peakRssMiB)))} | ${rs.map((x) => x.load.toFixed(1)).join(', ')} |`,
  );
}
