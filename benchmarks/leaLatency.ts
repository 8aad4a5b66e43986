/**
 * `node --import tsx benchmarks/leaLatency.ts`: latency of a law-enforcement request over a store of BENCH_LEA_FILL
 * records (default 10,000,000) in a fresh embedded ClickHouse, through the API as `cdr start` builds it (its own
 * session, query limits, audit trail written before and after each answer, signing).
 *
 * The store: BENCH_LEA_FILL identifier-free filler records over the last 13 months (random tokens, 2,000 accounts,
 * written with INSERT … SELECT so the engine's views fill the subscriber index and cdr_ids as ingest's inserts do),
 * plus BENCH_LEA_SUBJECTS subscribers (default 200) with ~BENCH_LEA_PER_SUBJECT records each (default 50), written
 * through the real pseudonymisation (tests/support/seed.ts). Then BENCH_LEA_REQUESTS requests (default 200) for random
 * subjects, over 30 days and over the whole 13-month window, in the JSON form; prints p50, p99 and max per shape.
 * BENCH_INGEST_RATE (default 0): while the requests run, a local broker, a `cdr produce` child at that many records/s
 * and this process's ingest storing them into the same engine, as `cdr start` runs them side by side (half of ingest's
 * throughput on this machine is about 5,000/s). CDR_INGEST_WORKER_NICE, if set, is passed to that ingest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CdrEvent } from '../services/core/index.ts';
import { TrafficGenerator } from '../services/generator/index.ts';
import { loadConfig } from '../services/platform/config/index.ts';
import { createLogger } from '../services/platform/observability/index.ts';
import { openRuntime, requireStorage } from '../services/platform/runtime/index.ts';
import { storeDirectly } from '../tests/support/seed.ts';
import { auth, openTestApi } from '../tests/support/api.ts';
import { fmt, fmtInt, load1, percentileSorted } from './lib/stats.ts';
import { startBackgroundIngest } from './lib/backgroundIngest.ts';

const FILL = Number(process.env['BENCH_LEA_FILL'] ?? 10_000_000);
const SUBJECTS = Number(process.env['BENCH_LEA_SUBJECTS'] ?? 200);
const PER_SUBJECT = Number(process.env['BENCH_LEA_PER_SUBJECT'] ?? 50);
const REQUESTS = Number(process.env['BENCH_LEA_REQUESTS'] ?? 200);
const DAY = 86_400_000;
const INGEST_RATE = Number(process.env['BENCH_INGEST_RATE'] ?? 0);

const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-lea-'));
const id = randomBytes(3).toString('hex');
const config = loadConfig({
  CDR_DATA_DIR: dir,
  CDR_MASTER_KEY: randomBytes(32).toString('base64'),
  CDR_LOG_LEVEL: 'warn',
  ...(process.env['KAFKA_BROKERS'] ? { KAFKA_BROKERS: process.env['KAFKA_BROKERS'] } : {}),
  CDR_TOPIC_RAW: `bench${id}.cdr.raw`,
  CDR_TOPIC_PSEUDONYMISED: `bench${id}.cdr.pseudonymised`,
  CDR_TOPIC_DLQ: `bench${id}.cdr.dlq`,
  CDR_TOPIC_FRAUD_ALERTS: `bench${id}.fraud.alerts`,
  CDR_INGEST_GROUP: `bench${id}-ingest`,
  // Passed through for A/B runs of the prepare workers' priority beside the API (ADR 0034).
  ...(process.env['CDR_INGEST_WORKER_NICE'] ? { CDR_INGEST_WORKER_NICE: process.env['CDR_INGEST_WORKER_NICE'] } : {}),
});
const rt = await openRuntime(config, INGEST_RATE > 0 ? { startLocalKafka: true, log: createLogger('warn') } : { needKafka: false, log: createLogger('warn') });
const log = (s: string) => console.log(`[bench:lea ${new Date().toISOString().slice(11, 19)}] ${s}`);
try {
  const { storage } = requireStorage(rt);
  const now = Date.now();
  let t0 = performance.now();
  const span = 395 * DAY;
  for (let done = 0; done < FILL; done += 2_000_000) {
    const n = Math.min(2_000_000, FILL - done);
    await storage.command(`INSERT INTO ${storage.table('cdr')}
      (cdr_id, account_id, event_time, submitted_at, delivered_at, channel, direction, sender_type, recipient_type, sender_token, recipient_token,
       sender_valid, recipient_valid, sender_country, provider_id, mcc, mnc, destination_country, ported, status, error_code, segments, size_bytes,
       duration_ms, price, cost, currency, client_ip, late, schema_id, src_topic, src_partition, src_offset, ingested_at)
      SELECT concat('fill-', toString(${done} + number)), concat('acct-', toString(number % 2000)),
        fromUnixTimestamp64Milli(toInt64(${now - span} + intDiv((${done} + number) * ${span}, ${FILL}))) AS t, t, t,
        'sms', 'mt', 'alphanumeric', 'msisdn', lower(hex(MD5(concat('s', toString(number % 50000))))), lower(hex(MD5(concat('r', toString(${done} + number))))),
        true, true, 'MY', 'p1', '502', '12', 'MY', false, 'delivered', '', 1, 120, 0, 1000, 500, 'MYR', '', false, 1, 'bench', 0, ${done} + number, now64(3)
      FROM numbers(${n})`);
    log(`filled ${fmtInt(done + n)} records`);
  }
  log(`filler: ${fmtInt(FILL)} records in ${fmt((performance.now() - t0) / 1000)} s`);

  t0 = performance.now();
  const gen = new TrafficGenerator({ seed: 71, scenario: 'normal', startTime: now, ratePerSecond: 1 });
  const subjects = Array.from({ length: SUBJECTS }, (_, i) => `+601${String(20000000 + i * 37).padStart(8, '0')}`);
  const events: CdrEvent[] = [];
  for (const s of subjects) {
    for (let k = 0; k < PER_SUBJECT; k++) {
      const t = now - Math.floor(Math.random() * 390 * DAY);
      events.push({
        ...gen.next(),
        event_time: t,
        submitted_at: t,
        delivered_at: t + 1000,
        channel: 'sms',
        sender_type: 'alphanumeric',
        sender: 'BANK',
        recipient: s,
        destination_country: 'MY',
      });
    }
  }
  // Month keys are made as ingest makes them: each month's by the time its records were written.
  events.sort((a, b) => a.event_time - b.event_time);
  for (let i = 0; i < events.length; i += 5_000)
    await storeDirectly(rt, events.slice(i, i + 5_000), Math.max(...events.slice(i, i + 5_000).map((e) => e.event_time)) + 1);
  log(`subjects: ${SUBJECTS} × ~${PER_SUBJECT} records through pseudonymisation in ${fmt((performance.now() - t0) / 1000)} s`);
  const [{ n } = { n: '0' }] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('cdr')}`);
  log(`store: ${fmtInt(Number(n))} records in cdr`);

  const api = await openTestApi(rt);
  const background = INGEST_RATE > 0 ? await startBackgroundIngest(rt, INGEST_RATE, log) : undefined;
  try {
    for (const [shape, days] of [
      ['30 days', 30],
      ['the whole window (390 days)', 390],
    ] as const) {
      const times: number[] = [];
      let records = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const subject = subjects[Math.floor(Math.random() * subjects.length)]!;
        const t = performance.now();
        const res = await api.app.inject({
          method: 'POST',
          url: '/v1/lea/requests',
          headers: auth('lea-officer'),
          payload: {
            authority: 'bench',
            case_reference: `B-${i}`,
            legal_basis: 'bench',
            identifier: { type: 'msisdn', value: subject },
            from: new Date(now - days * DAY).toISOString(),
            to: new Date(now + 60_000).toISOString(),
          },
        });
        times.push(performance.now() - t);
        if (res.statusCode !== 201) throw new Error(`request failed: ${res.statusCode} ${res.body}`);
        records += (res.json<{ records: unknown[] }>().records ?? []).length;
      }
      times.sort((a, b) => a - b);
      log(
        `${shape}: ${REQUESTS} requests, ${fmt(records / REQUESTS)} records per answer: p50 ${fmt(percentileSorted(times, 50))} ms, p99 ${fmt(percentileSorted(times, 99))} ms, max ${fmt(times[times.length - 1])} ms (load1 ${fmt(load1(), 2)})`,
      );
    }
  } finally {
    if (background) {
      const b = await background.stop();
      log(`background ingest during the requests: ${fmtInt(b.stored)} records stored in ${fmt(b.seconds)} s = ${fmtInt(b.perSecond)} records/s`);
    }
    await api.close();
  }
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
