import type { Storage } from '../platform/clickhouse/index.ts';
import type { Runtime } from '../platform/runtime/index.ts';
import { requireStorage } from '../platform/runtime/index.ts';
import { LegalHolds } from '../platform/holds/index.ts';
import { RetentionPass } from './retentionPass.ts';

/**
 * Builds the legal-hold store and the retention pass from an opened runtime. `ownStorage`: a separate
 * ClickHouse session for them (cdr start), so a pass's synchronous mutation does not hold up ingest's
 * inserts, which an embedded chDB session runs one at a time.
 */
export function createRetention(rt: Runtime, onKeyDestroyed?: (month: string) => void, ownStorage?: Storage): { holds: LegalHolds; pass: RetentionPass } {
  const opened = requireStorage(rt);
  const { keyRing, masterKey } = opened;
  const storage = ownStorage ?? opened.storage;
  const holds = new LegalHolds(storage, keyRing, masterKey);
  const pass = new RetentionPass({ storage, keyRing, holds, metrics: rt.metrics, log: rt.log, ...(onKeyDestroyed ? { onKeyDestroyed } : {}) });
  return { holds, pass };
}
