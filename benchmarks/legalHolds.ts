/**
 * What legal holds cost the retention pass (embedded ClickHouse): `holds` active holds, each on its own subscriber
 * over the last 12 months, over a store of `records` CDRs spread across those months. Times placing them, one
 * `syncActive` (what every real retention pass runs first: nothing new to copy, so this is pure overhead), and placing
 * one hold whose range spans 2000-01..2036-12.
 *
 *   node --import tsx benchmarks/legalHolds.ts [holds=45] [records=20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CdrEvent } from '../services/core/cdr/cdrEvent.ts';
import { addMonthsUtc, startOfMonthUtc } from '../services/core/retention/retentionCalendar.ts';
import { TrafficGenerator } from '../services/generator/trafficGenerator.ts';
import { loadConfig } from '../services/platform/config/config.ts';
import { LegalHolds } from '../services/platform/holds/index.ts';
import { createLogger } from '../services/platform/observability/logger.ts';
import { openRuntime, requireStorage } from '../services/platform/runtime/runtime.ts';
import { storeDirectly } from '../tests/support/seed.ts';

const holdCount = Number(process.argv[2] ?? 45);
const records = Number(process.argv[3] ?? 20_000);
const dataDir = mkdtempSync(join(tmpdir(), 'cdr-bench-holds-'));
const config = loadConfig({ CDR_DATA_DIR: dataDir, CDR_MASTER_KEY: randomBytes(32).toString('base64'), CDR_LOG_LEVEL: 'warn' });
const rt = await openRuntime(config, { needKafka: false, log: createLogger('warn') });
const seconds = (t0: number): number => Math.round((performance.now() - t0) / 10) / 100;
try {
  const { storage, keyRing, masterKey } = requireStorage(rt);
  const now = Date.now();
  const from = addMonthsUtc(startOfMonthUtc(now), -11);
  const subjects = Array.from({ length: holdCount }, (_, i) => `+4479111${String(10_000 + i).slice(-5)}`);
  const gen = new TrafficGenerator({ seed: 7, scenario: 'normal', startTime: from, ratePerSecond: 1 });
  const events: CdrEvent[] = [];
  for (let i = 0; i < records; i++) {
    const e = gen.next();
    const t = from + Math.floor(((now - from - 60_000) * i) / records);
    // Every 50th record is one of the held subscribers'.
    const subject = i % 50 === 0 ? subjects[(i / 50) % subjects.length] : undefined;
    events.push({ ...e, event_time: t, submitted_at: t, ...(subject ? { recipient: subject, recipient_type: 'msisdn', destination_country: 'GB' } : {}) });
  }
  let t0 = performance.now();
  for (let i = 0; i < events.length; i += 5000) await storeDirectly(rt, events.slice(i, i + 5000), now);
  const seeded = seconds(t0);

  const holds = new LegalHolds(storage, keyRing, masterKey);
  t0 = performance.now();
  let copied = 0;
  for (const [i, s] of subjects.entries())
    copied += (await holds.place({ caseReference: `BENCH-${i}`, reason: 'bench', identifier: { type: 'msisdn', value: s }, from, to: now, actor: 'bench' }))
      .copied;
  const placed = seconds(t0);
  t0 = performance.now();
  const synced = await holds.syncActive();
  const sync = seconds(t0);
  t0 = performance.now();
  await holds.place({
    caseReference: 'BENCH-WIDE',
    reason: 'bench',
    identifier: { type: 'msisdn', value: subjects[0]! },
    from: Date.UTC(2000, 0, 1),
    to: Date.UTC(2037, 0, 1),
    actor: 'bench',
  });
  const wide = seconds(t0);
  process.stdout.write(
    `${JSON.stringify({ holds: holdCount, records, seeded_s: seeded, place_all_s: placed, copied, sync_active_s: sync, synced, place_2000_2036_s: wide })}\n`,
  );
} finally {
  await rt.close();
  rmSync(dataDir, { recursive: true, force: true });
}
