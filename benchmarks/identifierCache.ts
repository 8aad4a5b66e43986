/**
 * `node --import tsx benchmarks/identifierCache.ts`: what ingest's identifier cache costs and saves, per admission
 * policy and size, on both data sets (issue 15). Each variant runs in its own process (a clean heap): the benchmark
 * traffic (benchPlan, BENCH_CACHE_RECORDS records, default 300,000) is decoded in chunks of 5,000 as ingest decodes it
 * and pseudonymised under real month keys; the time of the pseudonymise calls (wall, one thread: GC included) per
 * record, and the heap at the end. `… identifierCache.ts <cache|otp> <capacity> <always|second-sight>` runs one.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { planTraffic } from '../services/generator/trafficPlan.ts';
import { decodeCdrEvent } from '../services/platform/schemas/index.ts';
import { deriveMonthKey, type MonthKey } from '../services/core/pseudonym/monthKeys.ts';
import { monthKeyOf } from '../services/core/retention/retentionCalendar.ts';
import { Pseudonymiser } from '../services/core/pseudonym/pseudonymise.ts';
import { benchPlan, type BenchDataset } from './lib/kafkaUtil.ts';

const N = Number(process.env['BENCH_CACHE_RECORDS'] ?? 300_000);

function runOne(dataset: BenchDataset, capacity: number, admission: 'always' | 'second-sight'): string {
  const now = Date.now();
  const p = new Pseudonymiser(capacity, admission);
  const keys = new Map<string, MonthKey>();
  const plan = planTraffic(benchPlan(N, 20_260_401, now - 7_200_000, dataset));
  let n = 0;
  let busyMs = 0;
  for (;;) {
    const chunk = [];
    for (let i = 0; i < 5_000; i++) {
      const r = plan.next();
      if (r.done) break;
      chunk.push(decodeCdrEvent(r.value.value));
    }
    if (chunk.length === 0) break;
    const t0 = performance.now();
    for (const { event, schemaId } of chunk) {
      const month = monthKeyOf(event.event_time);
      let key = keys.get(month);
      if (!key) keys.set(month, (key = deriveMonthKey(month, 'bench', randomBytes(32))));
      p.pseudonymise(event, month, key, schemaId, { topic: 'bench', partition: 0, offset: String(n++) }, now);
    }
    busyMs += performance.now() - t0;
  }
  const heap = process.memoryUsage();
  return `| ${dataset} | ${capacity.toLocaleString('en')} | ${admission} | ${((busyMs * 1000) / n).toFixed(1)} | ${Math.round(heap.heapUsed / 2 ** 20)} / ${Math.round(heap.heapTotal / 2 ** 20)} | ${p.cachedIdentifiers.toLocaleString('en')} |`;
}

const [dataset, capacity, admission] = process.argv.slice(2);
if (dataset) {
  if ((dataset !== 'cache' && dataset !== 'otp') || (admission !== 'always' && admission !== 'second-sight'))
    throw new Error('usage: <cache|otp> <capacity> <always|second-sight>');
  console.log(runOne(dataset, Number(capacity), admission));
} else {
  console.log(`${N.toLocaleString('en')} records per variant, each in its own process`);
  console.log('| data set | capacity | admission | pseudonymise µs/record (GC included) | heap used / total MiB at end | cached at end |');
  console.log('| --- | ---: | --- | ---: | ---: | ---: |');
  const self = fileURLToPath(import.meta.url);
  for (const d of ['cache', 'otp'])
    for (const [c, a] of [
      ['100000', 'second-sight'],
      ['100000', 'always'],
      ['200000', 'always'],
      ['20000', 'always'],
    ] as const)
      process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', self, d, c, a], { encoding: 'utf8', env: process.env }));
}
