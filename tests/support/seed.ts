/**
 * Stores CDRs straight into ClickHouse the way ingest does (same pseudonymisation, same tables), without Kafka:
 * for tests of what reads the stored data (API routes, retention) that do not test ingest itself.
 */
import type { CdrEvent } from '../../services/core/cdr/cdrEvent.ts';
import { CDR_SHAPE, VAULT_SHAPE, Pseudonymiser, type VaultRow } from '../../services/core/pseudonym/pseudonymise.ts';
import { identifiersExpired, monthKeyOf } from '../../services/core/retention/retentionCalendar.ts';
import { requireStorage, type Runtime } from '../../services/platform/runtime/runtime.ts';

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
