/**
 * `node --expose-gc --import tsx benchmarks/fraudMemory.ts`: the fraud detector's heap under one-time-password traffic
 * (a new recipient with every record), in-process, no Kafka or ClickHouse. BENCH_FRAUD_RATE records per second of event
 * time (default 100) for BENCH_FRAUD_HOURS hours (default 6), 20 accounts, 97 number ranges; prints the heap the
 * detector holds after a full collection, and how many windows (`windowCount`, where the detector has it).
 *
 * For a before/after, copy this file and tests/support/fraudEvents.ts into a checkout of the earlier commit and run it
 * there.
 */
import { DEFAULT_FRAUD_CONFIG, FraudDetector } from '../services/core/index.ts';
import { smsFraudEvent } from '../tests/support/fraudEvents.ts';

const RATE = Number(process.env['BENCH_FRAUD_RATE'] ?? 100);
const HOURS = Number(process.env['BENCH_FRAUD_HOURS'] ?? 6);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const T0 = Date.UTC(2026, 10, 10);
const records = Math.round(RATE * 3600 * HOURS);
const detector = new FraudDetector(DEFAULT_FRAUD_CONFIG);
gc();
const before = process.memoryUsage().heapUsed;
const started = process.cpuUsage();
for (let i = 0; i < records; i++) {
  const e = smsFraudEvent({
    cdr_id: `c${i}`,
    account_id: `acct-${i % 20}`,
    event_time: T0 + Math.floor((i * 1000) / RATE),
    recipient_range: `601${i % 97}`,
    // A token per record, 32 hex characters like the pipeline's.
    recipient_token: (i * 2654435761).toString(16).padStart(32, '0').slice(-32),
    sender_token: '',
  });
  detector.observe(e);
}
const cpu = process.cpuUsage(started);
gc();
const held = (process.memoryUsage().heapUsed - before) / 1048576;
const windows = (detector as { windowCount?: number }).windowCount;
console.log(
  `${records.toLocaleString('en')} OTP-like records, ${RATE}/s of event time for ${HOURS} h: heap held ${held.toFixed(0)} MiB` +
    `${windows === undefined ? '' : `, ${windows.toLocaleString('en')} windows`}; ${((cpu.user + cpu.system) / records).toFixed(1)} CPU-µs per record; ` +
    `${detector.openAlerts().length} alerts open`,
);
