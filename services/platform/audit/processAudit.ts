import { resolve } from 'node:path';
import type { AuditConfig } from '../config/index.ts';
import { requireStorage, type Runtime } from '../runtime/index.ts';
import { loadSigner } from '../signing/index.ts';
import { AuditTrail } from './auditTrail.ts';

/**
 * The audit trail of a process that is not the API (the retention job, a CLI command): its own chain (one writer per
 * chain), checkpoints signed with the configured key — or the development key in the data directory when the store
 * is embedded — and anchors in CDR_AUDIT_ANCHOR_DIR or the data directory.
 */
export async function openProcessAudit(
  rt: Runtime & { config: { audit: AuditConfig; clickhouse?: { url: string | undefined } } },
  defaultChain: string,
): Promise<AuditTrail> {
  const { storage, keyRing } = requireStorage(rt);
  const signer = loadSigner(rt.config.audit.signingKeyFile, rt.config.dataDir, !rt.config.clickhouse?.url);
  return AuditTrail.open({
    storage,
    keyRing,
    signer,
    chain: rt.config.audit.chain ?? defaultChain,
    anchorDir: rt.config.audit.anchorDir ?? resolve(rt.config.dataDir),
    checkpointMs: rt.config.audit.checkpointMs,
    log: rt.log,
  });
}
