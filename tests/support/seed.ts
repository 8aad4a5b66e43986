/**
 * Stores CDRs straight into ClickHouse the way ingest does (same pseudonymisation, same tables), without Kafka:
 * for tests of what reads the stored data (API routes, retention) that do not test ingest itself.
 */
import type { CdrEvent } from '../../services/core/cdr/cdrEvent.ts';
import { CDR_SHAPE, VAULT_SHAPE, Pseudonymiser, type VaultRow } from '../../services/core/pseudonym/pseudonymise.ts';
import { identifiersExpired, monthKeyOf } from '../../services/core/retention/retentionCalendar.ts';
import { requireStorage, type Runtime } from '../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../services/generator/index.ts';

export async function storeDirectly(rt: Runtime, events: readonly CdrEvent[], now = Date.now()): Promise<void> {
  const { storage, keyRing } = requireStorage(rt);
  const p = new Pseudonymiser();
  const rows = [];
  const vault = new Map<string, VaultRow>();
  let offset = 0;
  for (const e of events) {
    const month = monthKeyOf(e.event_time);
    const key = identifiersExpired(e.event_time, now) ? null : await keyRing.keyForWriting(month, now);
    const rec = p.pseudonymise(e, month, key, 1, { topic: 'seed', partition: 0, offset: String(offset++) }, now);
    rows.push(rec.row);
    for (const v of rec.vault) vault.set(`${v.month}/${v.token}`, v);
  }
  await storage.insert('identity_vault', [...vault.values()], {}, VAULT_SHAPE);
  await storage.insert('cdr', rows, { deduplicate_blocks_in_dependent_materialized_views: 1 }, CDR_SHAPE);
}

/** An SMS from the alphanumeric sender BANK to `subject` in Malaysia at `t`, the rest of it from `gen`. */
export function bankSms(gen: TrafficGenerator, subject: string, t: number): CdrEvent {
  return {
    ...gen.next(),
    event_time: t,
    submitted_at: t,
    delivered_at: t + 500,
    channel: 'sms',
    direction: 'mt',
    sender_type: 'alphanumeric',
    sender: 'BANK',
    recipient: subject,
    destination_country: 'MY',
  };
}

/** `count` such SMS to `subject`, the i-th `spacingMs` × (i + 1) before `now`, stored as ingest stores them. */
export async function seedBankSms(rt: Runtime, subject: string, opts: { count: number; spacingMs: number; seed: number; now: number }): Promise<void> {
  const gen = new TrafficGenerator({ seed: opts.seed, scenario: 'normal', startTime: opts.now, ratePerSecond: 1 });
  const events = Array.from({ length: opts.count }, (_, i) => bankSms(gen, subject, opts.now - opts.spacingMs * (i + 1)));
  await storeDirectly(rt, events, opts.now);
}

/**
 * One subscriber's `records` SMS from an alphanumeric sender, spread evenly over the 19 hours that end an hour before
 * `now`, stored in chunks of 25,000; then every MergeTree table merged (`OPTIMIZE … FINAL`), so that background
 * merges do not run while the answer is read. What a large law-enforcement answer is made of (leaStream.test.ts,
 * benchmarks/leaLarge.ts). Returns the time of the first record.
 */
/**
 * `records` SMS to `subject` over 19 hours, stored and merged. `counterparts` > 0: sent by that many people (mobile
 * numbers, mobile-originated) instead of a bank's sender id, so an answer gives out other parties (disclosure_parties).
 */
export async function seedOneSubjectMerged(rt: Runtime, subject: string, records: number, now = Date.now(), counterparts = 0): Promise<number> {
  const gen = new TrafficGenerator({ seed: 61, scenario: 'normal', startTime: now - 3_600_000, ratePerSecond: 100 });
  const start = now - 20 * 3_600_000;
  for (let done = 0; done < records;) {
    const chunk: CdrEvent[] = [];
    for (let i = 0; i < 25_000 && done < records; i++, done++) {
      const sms = bankSms(gen, subject, start + Math.floor((done * 19 * 3_600_000) / records));
      chunk.push(counterparts > 0 ? { ...sms, direction: 'mo', sender_type: 'msisdn', sender: `+60199${String(done % counterparts).padStart(6, '0')}` } : sms);
    }
    await storeDirectly(rt, chunk, now);
  }
  const { storage } = requireStorage(rt);
  const tables = await storage.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'`, {
    db: storage.database,
  });
  for (const { name } of tables) await storage.command(`OPTIMIZE TABLE ${storage.table(name)} FINAL`);
  return start;
}
