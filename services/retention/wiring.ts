import type { Runtime } from '../shared/src/runtime/runtime.ts';
import { requireStorage } from '../shared/src/runtime/runtime.ts';
import { LegalHolds } from './legalHolds.ts';
import { RetentionPass } from './retentionPass.ts';

/** Builds the legal-hold store and the retention pass from an opened runtime. */
export function createRetention(rt: Runtime, onKeyDestroyed?: (month: string) => void): { holds: LegalHolds; pass: RetentionPass } {
  const { storage, keyRing, masterKey } = requireStorage(rt);
  const holds = new LegalHolds(storage, keyRing, masterKey);
  const pass = new RetentionPass({ storage, keyRing, holds, metrics: rt.metrics, log: rt.log, ...(onKeyDestroyed ? { onKeyDestroyed } : {}) });
  return { holds, pass };
}
