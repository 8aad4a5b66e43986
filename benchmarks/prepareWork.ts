/**
 * The prepare work alone (what one prepare worker thread does per batch: `BatchWork.screen` then `transform`),
 * in-process, no Kafka and no engine: CPU per record of the thread that sets ingest's pace, for A/B of hot-path
 * changes in seconds rather than the minutes of `ab.ts`. Batches of CDR_INGEST_MAX_BATCH's default (20,000), one
 * BatchWork kept across batches (its caches live on, as in a worker), every record chosen (no duplicates).
 *
 *   BENCH_DATASET=cache|otp BENCH_RECORDS=200000 BENCH_PASSES=5 node --import tsx benchmarks/prepareWork.ts
 *
 * Prints ns per record for each pass (the first pass warms the JIT and, on the cache-friendly set, the caches) and
 * the median of the others, with the GC time `PerformanceObserver` saw in the measured passes.
 */
import { randomBytes } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import { deriveMonthKey, monthKeyOf, type MonthKey } from '../services/core/index.ts';
import { BatchWork, type PackedValues } from '../services/ingest/batchWork.ts';
import { planTraffic } from '../services/generator/trafficPlan.ts';
import { benchDataset, benchPlan } from './lib/kafkaUtil.ts';
import { sealerFor } from '../services/platform/keys/nativeSealer.ts';
import type { SealerChoice } from '../services/platform/config/config.ts';
import pino from 'pino';

const N = Number(process.env['BENCH_RECORDS'] ?? 200_000);
const PASSES = Number(process.env['BENCH_PASSES'] ?? 5);
const BATCH = 20_000;
const dataset = benchDataset();
const now = Date.now();

/** The generator's values, packed in batches as the pool packs a fetch for a worker. */
function batchesOf(seed: number): PackedValues[] {
  const values = [...planTraffic(benchPlan(N, seed, now - 3_600_000, dataset))].map((m) => m.value);
  const out: PackedValues[] = [];
  for (let from = 0; from < values.length; from += BATCH) {
    const part = values.slice(from, from + BATCH);
    const total = part.reduce((s, v) => s + v.length, 0);
    const bytes = new Uint8Array(total);
    const ends = new Uint32Array(part.length);
    let at = 0;
    part.forEach((v, i) => {
      bytes.set(v, at);
      at += v.length;
      ends[i] = at;
    });
    out.push({ bytes, ends, nulls: [] });
  }
  return out;
}

const keys = new Map<string, MonthKey>();
function keyOf(month: string): MonthKey {
  let k = keys.get(month);
  if (!k) keys.set(month, (k = deriveMonthKey(month, 'bench', randomBytes(32))));
  return k;
}

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

// The sealer ingest would pick (CDR_NATIVE_SEALER, default auto: native where built; ADR 0040).
const sealer = sealerFor((process.env['CDR_NATIVE_SEALER'] ?? 'auto') as SealerChoice, pino({ level: 'silent' }));
const work = new BatchWork({ identifierCache: 100_000, vaultRecent: 200_000, maxFutureSkewMs: 86_400_000, format: 'RowBinary', ownsKeys: false, sealer });
let batchNo = 0;
let stored = 0;
async function pass(batches: readonly PackedValues[]): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (const values of batches) {
    const batch = ++batchNo;
    const screened = await work.screen({ batch, values, now });
    const months = new Set<string>();
    for (const t of screened.eventTimes) months.add(monthKeyOf(t));
    const out = await work.transform({
      batch,
      chosen: Uint32Array.from(screened.indices.keys()),
      offsets: Array.from(screened.indices, (i) => String(i)),
      topic: 'cdr.raw',
      partition: 0,
      now,
      keys: [...months].map((m) => [m, keyOf(m)] as const),
    });
    stored += out.cdr.count;
    work.written(batch);
  }
  await new Promise((r) => setImmediate(r));
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) * 1000) / N;
}

// The cache-friendly set repeats its subscribers across passes; the OTP-like set gets fresh numbers every pass.
const results: number[] = [];
let gcMeasured = 0;
for (let p = 0; p < PASSES; p++) {
  const batches = batchesOf(dataset === 'otp' ? 20260401 + p : 20260401);
  const gc0 = gcMs;
  const ns = await pass(batches);
  console.log(`pass ${p + 1}: ${ns.toFixed(0)} ns CPU per record${p === 0 ? ' (warm-up)' : ''}, GC ${(((gcMs - gc0) * 1e6) / N).toFixed(0)} ns per record`);
  if (p > 0) {
    results.push(ns);
    gcMeasured += gcMs - gc0;
  }
}
results.sort((a, b) => a - b);
const median = results[Math.floor(results.length / 2)]!;
console.log(
  `${dataset}, ${sealer} sealer: median ${median.toFixed(0)} ns CPU per record (${(median / 1000).toFixed(1)} CPU-s per 1M) over ${results.length} passes of ${N} records; GC ${((gcMeasured * 1e6) / (N * results.length)).toFixed(0)} ns per record; stored ${stored}`,
);
