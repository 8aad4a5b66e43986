/**
 * Legal holds: placed and released by the API, honoured and purged by the retention pass.
 */
export { HoldError, LegalHolds } from './legalHolds.ts';
export type { HoldIdentifierInput, HoldState, LegalHold, PlaceHoldInput } from './legalHolds.ts';
