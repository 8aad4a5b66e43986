import type { Storage } from '../platform/clickhouse/index.ts';
import type { Runtime } from '../platform/runtime/index.ts';
import { requireStorage } from '../platform/runtime/index.ts';
import { LegalHolds } from '../platform/holds/index.ts';
import { RetentionPass, type RetentionAuditSink } from './retentionPass.ts';

/**
 * Builds the legal-hold store and the retention pass from an opened runtime. `storage`: a separate ClickHouse
 * session for them (cdr start), so a pass's synchronous mutation does not hold up ingest's inserts, which an
 * embedded chDB session runs one at a time. `audit`: where each pass is recorded.
 */
export interface RetentionWiring {
  readonly onKeyDestroyed?: (month: string) => void;
  readonly storage?: Storage;
  readonly audit?: RetentionAuditSink;
}

export function createRetention(rt: Runtime, opts: RetentionWiring = {}): { holds: LegalHolds; pass: RetentionPass } {
  const opened = requireStorage(rt);
  const { keyRing, masterKey } = opened;
  const storage = opts.storage ?? opened.storage;
  const holds = new LegalHolds(storage, keyRing, masterKey);
  const pass = new RetentionPass({
    storage,
    keyRing,
    holds,
    metrics: rt.metrics,
    log: rt.log,
    ...(opts.onKeyDestroyed ? { onKeyDestroyed: opts.onKeyDestroyed } : {}),
    ...(opts.audit ? { audit: opts.audit } : {}),
  });
  return { holds, pass };
}
