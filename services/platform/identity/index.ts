/**
 * Finding one identifier's records and restoring both parties' identifiers (an audited path).
 */
export { chTime, countLive, isoFromCh, lookupLive, monthKeyDestroyed, openTokens, pageLive, positionOf, restoredRecord } from './identityLookup.ts';
export type { LiveLookupResult, PagePosition, RecordMetadataRow, RestoredRecord } from './identityLookup.ts';
