/**
 * Finding one identifier's records and restoring both parties' identifiers (an audited path).
 */
export {
  chTime,
  countLive,
  indexPage,
  isoFromCh,
  lookupLive,
  monthKeyDestroyed,
  openTokens,
  pageLive,
  positionOf,
  restoreHits,
  restoredRecord,
} from './identityLookup.ts';
export type { IndexHit, IndexPage } from './identityLookup.ts';
export type { LiveLookupResult, PagePosition, RecordMetadataRow, RestoredRecord } from './identityLookup.ts';
