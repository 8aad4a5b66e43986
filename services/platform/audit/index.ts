/**
 * The audit trail: hash-chained entries, signed checkpoints, anchors outside the database, verification.
 */
export { AuditTrail, DB_CHECKPOINT_INTERVAL_MS, entryFromRow, publicKeyFromPem, readAnchors, readEntries, verifyAuditTrail } from './auditTrail.ts';
export type { AuditInput, AuditPageQuery, AuditTrailOptions, DisclosedParty } from './auditTrail.ts';
export { openProcessAudit } from './processAudit.ts';
