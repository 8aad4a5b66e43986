/**
 * `node --import tsx benchmarks/billing.ts`: billing beside ingest, and billing's queries over a large store.
 *
 * 1. Throughput: BENCH_BILLING_RECORDS generated CDRs (default 200,000; 20k-subscriber pool) go to cdr.raw of the local
 *    broker (started like `cdr start` does, unless KAFKA_BROKERS is set); ingest consumes them to the end, then billing
 *    consumes cdr.pseudonymised to the end, then fraud does, one after the other in this process, so each phase's
 *    records/s and CPU per record (process.cpuUsage: JS, libuv and the embedded engine's threads) are its own.
 * 2. Queries: BENCH_BILLING_FILL rated records (default 10,000,000; 200 accounts over 13 months, ~3,800 per account
 *    and month) written straight into billing_rated with INSERT … SELECT, then BENCH_BILLING_QUERIES (default 100)
 *    usage queries for one random account-month (group_by day, and day,channel,country,provider) and statements.
 *    BENCH_INGEST_RATE (default 0): meanwhile a `cdr produce` child sends that many records/s and this process's
 *    ingest stores them into the same engine, as `cdr start` runs them side by side.
 * 3. Month closes: every ended month of the fill is closed in order (BENCH_BILLING_CLOSE=0 skips this), 1,000 late
 *    records then land in the oldest closed month, and the current (open) month's statement — which carries the
 *    pending adjustments of every closed month — is read BENCH_BILLING_QUERIES times (at most 50). The fill spans
 *    BENCH_BILLING_SPAN_DAYS (default 395: 13 months; 1830 gives the ~60 closed months of a five-year operator).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BillingStore } from '../services/billing/billingStore.ts';
import { nextMonth } from '../services/core/index.ts';
import { createBilling } from '../services/billing/createBilling.ts';
import { createFraud } from '../services/fraud/createFraud.ts';
import { produceTraffic } from '../services/generator/producer.ts';
import { createIngest } from '../services/ingest/createIngest.ts';
import { loadConfig } from '../services/platform/config/index.ts';
import { createLogger } from '../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStore } from '../services/platform/runtime/index.ts';
import { fmt, fmtInt, load1, percentileSorted } from './lib/stats.ts';
import { startBackgroundIngest } from './lib/backgroundIngest.ts';

const RECORDS = Number(process.env['BENCH_BILLING_RECORDS'] ?? 200_000);
const FILL = Number(process.env['BENCH_BILLING_FILL'] ?? 10_000_000);
const QUERIES = Number(process.env['BENCH_BILLING_QUERIES'] ?? 100);
const DAY = 86_400_000;
const INGEST_RATE = Number(process.env['BENCH_INGEST_RATE'] ?? 0);
const SPAN_DAYS = Number(process.env['BENCH_BILLING_SPAN_DAYS'] ?? 395);
const CLOSE = process.env['BENCH_BILLING_CLOSE'] !== '0';

const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-billing-'));
const id = randomBytes(3).toString('hex');
const config = loadConfig({
  ...(process.env['KAFKA_BROKERS'] ? { KAFKA_BROKERS: process.env['KAFKA_BROKERS'] } : {}),
  CDR_DATA_DIR: dir,
  CDR_MASTER_KEY: randomBytes(32).toString('base64'),
  CDR_LOG_LEVEL: 'warn',
  CDR_TOPIC_RAW: `bench${id}.cdr.raw`,
  CDR_TOPIC_PSEUDONYMISED: `bench${id}.cdr.pseudonymised`,
  CDR_TOPIC_DLQ: `bench${id}.cdr.dlq`,
  CDR_TOPIC_FRAUD_ALERTS: `bench${id}.fraud.alerts`,
  CDR_INGEST_GROUP: `bench${id}-ingest`,
  CDR_BILLING_GROUP: `bench${id}-billing`,
  CDR_FRAUD_GROUP: `bench${id}-fraud`,
});
const log = (s: string) => console.log(`[bench:billing ${new Date().toISOString().slice(11, 19)}] ${s}`);
const rt = await openRuntime(config, { startLocalKafka: true, log: createLogger('warn') });

async function phase(name: string, run: () => Promise<number>): Promise<{ perSecond: number; cpuUsPerRecord: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuUsPerRecord = (cpu.user + cpu.system) / n;
  log(
    `${name}: ${fmtInt(n)} records in ${fmt(seconds)} s = ${fmtInt(n / seconds)} records/s; CPU ${fmt(cpuUsPerRecord)} µs per record (${fmt(cpuUsPerRecord)} CPU-s per 1M)`,
  );
  return { perSecond: n / seconds, cpuUsPerRecord };
}

const waitUntil = async (done: () => boolean): Promise<void> => {
  while (!done()) await new Promise((r) => setTimeout(r, 100));
};

try {
  const kafka = requireKafka(rt);
  log(`load ${fmt(load1(), 2)}; producing ${fmtInt(RECORDS)} CDRs`);
  await produceTraffic(kafka, {
    topic: config.kafka.topics.raw,
    count: RECORDS,
    rate: 0,
    duplicates: 0,
    malformed: 0,
    late: 0,
    seed: 5,
    scenario: 'normal',
    startTime: Date.now() - 3_600_000,
    eventsPerSecond: 1000,
  });
  const ingest = createIngest(rt);
  await phase('ingest', async () => {
    await ingest.start();
    await waitUntil(() => ingest.stats.stored + ingest.stats.dlq + ingest.stats.duplicate + ingest.stats.late >= RECORDS);
    await ingest.stop();
    return ingest.stats.stored + ingest.stats.late;
  });
  const stored = ingest.stats.stored + ingest.stats.late;
  const { service: billing } = await createBilling(rt);
  await phase('billing', async () => {
    await billing.start();
    await waitUntil(() => billing.stats.rated + billing.stats.unrated >= stored);
    await billing.stop();
    return billing.stats.rated + billing.stats.unrated;
  });

  const { service: fraud } = await createFraud(rt);
  await phase('fraud', async () => {
    await fraud.start();
    await waitUntil(() => fraud.stats.records >= stored);
    await fraud.stop();
    return fraud.stats.records;
  });

  const storage = requireStore(rt);
  const now = Date.now();
  const span = SPAN_DAYS * DAY;
  let t0 = performance.now();
  for (let done = 0; done < FILL; done += 2_000_000) {
    const n = Math.min(2_000_000, FILL - done);
    await storage.command(`INSERT INTO ${storage.table('billing_rated')}
      (account_id, event_time, cdr_id, revision, channel, direction, status, destination_country, recipient_range, recipient_number_type, provider_id,
       segments, duration_ms, event_price, event_cost, event_currency, rated, unrated_reason, currency, amount_micros, cost_micros, billable_seconds,
       plan_id, plan_version, basis, rated_at, src_partition, src_offset)
      SELECT concat('acct-', toString(number % 200)), fromUnixTimestamp64Milli(toInt64(${now - span} + intDiv((${done} + number) * ${span}, ${FILL}))),
        concat('fill-', toString(${done} + number)), 0, ['sms', 'voice', 'whatsapp'][1 + number % 3], 'mt', 'delivered', ['MY', 'SG', 'ID', 'TH'][1 + number % 4],
        '6017', 'mobile', concat('p', toString(number % 5)), 1 + number % 3, (number % 3 = 1) * 60000, 1000, 500, 'EUR', true, '', ['EUR', 'USD', 'MYR'][1 + number % 3],
        1000 + number % 997, 500 + number % 499, 0, 'bench', 1, 'event', now64(3), 0, toString(${done} + number)
      FROM numbers(${n})`);
    log(`filled ${fmtInt(done + n)} rated records`);
  }
  log(`filler: ${fmtInt(FILL)} rated records in ${fmt((performance.now() - t0) / 1000)} s`);
  const store = new BillingStore(storage);
  const background = INGEST_RATE > 0 ? await startBackgroundIngest(rt, INGEST_RATE, log) : undefined;
  const months: string[] = [];
  for (let m = 1; m <= 12; m++) months.push(new Date(now - m * 30 * DAY).toISOString().slice(0, 7));
  for (const groupBy of [['day'], ['day', 'channel', 'country', 'provider']] as const) {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < QUERIES; i++) {
      const month = months[i % months.length]!;
      const from = Date.parse(`${month}-01T00:00:00Z`);
      const to = new Date(from + 32 * DAY).toISOString().slice(0, 7);
      t0 = performance.now();
      const r = await store.usage({ accountId: `acct-${(i * 37) % 200}`, from, to: Date.parse(`${to}-01T00:00:00Z`), groupBy });
      times.push(performance.now() - t0);
      rows += r.length;
    }
    times.sort((a, b) => a - b);
    log(
      `usage, one account-month, group_by=${groupBy.join(',')}: p50 ${fmt(percentileSorted(times, 50))} ms, p99 ${fmt(percentileSorted(times, 99))} ms, max ${fmt(times[times.length - 1])} ms (${fmtInt(rows / QUERIES)} rows per answer)`,
    );
  }
  const times: number[] = [];
  for (let i = 0; i < Math.min(QUERIES, 50); i++) {
    t0 = performance.now();
    await store.statement(`acct-${(i * 13) % 200}`, months[i % months.length]!);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  log(`statement of one account-month (open): p50 ${fmt(percentileSorted(times, 50))} ms, p99 ${fmt(percentileSorted(times, 99))} ms`);
  if (CLOSE) {
    const current = new Date(now).toISOString().slice(0, 7);
    const ended: string[] = [];
    for (let m = new Date(now - span).toISOString().slice(0, 7); m < current; m = nextMonth(m)) ended.push(m);
    const closeTimes: number[] = [];
    for (const m of ended) {
      t0 = performance.now();
      await store.close(m, 'bench');
      closeTimes.push(performance.now() - t0);
    }
    log(
      `closed ${ended.length} months in order: first ${fmt(closeTimes[0])} ms, last ${fmt(closeTimes[closeTimes.length - 1])} ms, all ${fmt(closeTimes.reduce((a, b) => a + b, 0) / 1000)} s`,
    );
    await storage.command(`INSERT INTO ${storage.table('billing_rated')}
      (account_id, event_time, cdr_id, revision, channel, direction, status, destination_country, recipient_range, recipient_number_type, provider_id,
       segments, duration_ms, event_price, event_cost, event_currency, rated, unrated_reason, currency, amount_micros, cost_micros, billable_seconds,
       plan_id, plan_version, basis, rated_at, src_partition, src_offset)
      SELECT concat('acct-', toString(number % 200)), toDateTime64('${ended[0]}-15 00:00:00', 3, 'UTC'), concat('late-', toString(number)), 0, 'sms', 'mt',
        'delivered', 'MY', '6017', 'mobile', 'p0', 1, 0, 1000, 500, 'EUR', true, '', 'EUR', 1000, 500, 0, 'bench', 1, 'event', now64(3), 0, '0'
      FROM numbers(1000)`);
    const openTimes: number[] = [];
    let adjustments = 0;
    for (let i = 0; i < Math.min(QUERIES, 50); i++) {
      t0 = performance.now();
      const s = await store.statement(`acct-${(i * 13) % 200}`, current);
      openTimes.push(performance.now() - t0);
      adjustments += s?.adjustments.length ?? 0;
    }
    openTimes.sort((a, b) => a - b);
    log(
      `statement of the open month after ${ended.length} closes: p50 ${fmt(percentileSorted(openTimes, 50))} ms, p99 ${fmt(percentileSorted(openTimes, 99))} ms (${fmt(adjustments / openTimes.length, 1)} pending adjustments each)`,
    );
  }
  if (background) {
    const b = await background.stop();
    log(`background ingest during the queries: ${fmtInt(b.stored)} records stored in ${fmt(b.seconds)} s = ${fmtInt(b.perSecond)} records/s`);
  }
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
