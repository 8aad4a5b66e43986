/**
 * Finding one identifier's records and restoring both parties' identifiers (an audited path).
 */
export { chTime, isoFromCh, lookupLive, openTokens, restoredRecord } from './identityLookup.ts';
export type { LiveLookupResult, RecordMetadataRow, RestoredRecord } from './identityLookup.ts';
