/**
 * ClickHouse: the storage handle (embedded chDB or a server), schema migrations, error classification.
 */
export { destroyPartition, jsonCompactEachRow, jsonEachRow, openStorage, withQueryLimits } from './storage.ts';
export type { Storage } from './storage.ts';
export { digestOf, isEncodedRows, rowCountOf } from './encodedRows.ts';
export type { EncodedRows } from './encodedRows.ts';
export { applyMigrations, ddlContext, DEDUP_WINDOW_BLOCKS, dedupHorizonSecondsFor, DEFAULT_MIGRATION_OPTIONS, MIGRATIONS } from './migrations.ts';
export type { DdlContext, Migration, MigrationOptions } from './migrations.ts';
export { clickhouseCodeOf, storageError } from './errors.ts';
