import { accessSync, constants, realpathSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { dirname, join, resolve } from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouseConfig } from '../config/index.ts';
import { PipelineError } from '../../core/index.ts';
import type { RowShape } from '../../core/index.ts';
import { storageError } from './errors.ts';
import { rowBinary, rowBinaryStrings, RowBinaryValueError } from './rowBinary.ts';
import { encodeRows, isEncodedRows, type EncodedRows } from './encodedRows.ts';
import { repairDedupLogs, type DedupRepairReport } from './dedupLogRepair.ts';
import { entriesOrNone, processAlive } from './leftovers.ts';
import { makeDirectories } from '../config/directories.ts';

/**
 * The ClickHouse handle every service uses. Embedded chDB (in-process, one process per data directory)
 * by default; a ClickHouse server over HTTP when CLICKHOUSE_URL is set. The same @clickhouse/client API
 * either way, so no other code knows which one it talks to.
 */
export interface Storage {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly cluster: string | undefined;
  readonly embedded: boolean;
  /** The embedded engine's directory (its tables' files live under it); undefined for a server. */
  readonly path: string | undefined;
  /**
   * This process's hold on the embedded engine's directory: the same for every storage of the process while any of
   * them has it open (no other process can write it meanwhile: the engine locks it), a new one once all were closed
   * and it is opened again (another process may have written it in between). Undefined for a server.
   */
  readonly lease: string | undefined;
  /** `db.table`, quoted. */
  table(name: string): string;
  /** ` ON CLUSTER x` or ''. */
  onCluster(): string;
  query<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]>;
  command(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<void>;
  /**
   * `query` with many strings: `sql` names them `{ids:Array(String)}` (in an `IN`). A server gets them as that query
   * parameter. The embedded engine reads them from a spool file as RowBinary instead — a parameter of 20,000 ids is
   * escaped in JavaScript and parsed by the engine as text, ~2 µs per id (benchmarks/results/ab-id-lookups-2026-12-05.md).
   */
  queryByIds<T>(sql: string, ids: readonly string[]): Promise<T[]>;
  /**
   * Inserts rows, as JSONEachRow objects, or with `shape` (the hot tables) as RowBinary into the embedded engine and
   * as JSONCompactEachRow tuples into a server: no JSON for the engine to parse (benchmarks/RESULTS.md). Rows already
   * serialised (`EncodedRows`, in `shapedInsertFormat`, with `shape` naming their columns) go in as they are.
   */
  insert<T extends object>(table: string, rows: readonly T[] | EncodedRows, settings?: ClickHouseSettings, shape?: RowShape<T>): Promise<void>;
  /** How `insert` with a shape reaches the engine: `RowBinary` (embedded, through a spool file) or `JSONCompactEachRow` (a server). */
  readonly shapedInsertFormat: 'RowBinary' | 'JSONCompactEachRow';
  /** What opening the embedded engine repaired in its deduplication logs (dedupLogRepair.ts); undefined otherwise. */
  readonly dedupRepair?: DedupRepairReport;
  close(): Promise<void>;
}

/**
 * Removes a partition and its files now. DROP PARTITION only marks parts outdated; their files stay on
 * disk until the engine's cleanup runs (seconds to minutes, later under load). Detaching and then
 * dropping the detached parts deletes the files before this returns: what crypto-shredding needs.
 * `partition` is a SQL partition expression (`ID '202401'` or `'hold-…'`), built by the caller from
 * values it validated.
 */
export async function destroyPartition(storage: Storage, table: string, partition: string): Promise<void> {
  const t = `${storage.table(table)}${storage.onCluster()}`;
  await storage.command(`ALTER TABLE ${t} DETACH PARTITION ${partition}`, undefined, { mutations_sync: '2' });
  await storage.command(`ALTER TABLE ${t} DROP DETACHED PARTITION ${partition}`, undefined, { allow_drop_detached: 1 });
}

export type { RowShape };

/** The part of chdb/connection's ChdbConnection this module uses beyond @clickhouse/client's contract. */
interface ChdbRawInserter {
  readonly chdb: {
    rawInsert(params: {
      table: string;
      values: Buffer;
      format: 'JSONEachRow' | 'JSONCompactEachRow';
      columns?: readonly string[];
      settings?: Record<string, string | number | boolean>;
    }): Promise<unknown>;
    queryAsync(sql: string): Promise<unknown>;
  };
}

/**
 * RowBinary into the embedded engine, through a spool file the engine reads with `file()`. chDB's raw insert takes
 * text formats only, and with reason: its inline path splits the payload on an empty line, so binary data holding two
 * newline bytes in a row (an offset of 2570, say) is misread or wedges the session (measured; docs/decisions/0028).
 * A file has no such limit: `INSERT INTO t (…) SETTINGS … SELECT * FROM file(path, RowBinary)` reads the bytes as
 * written, with the insert's own column types (the engine takes the structure from the table, so a value is never
 * converted on the way: a shape whose types disagree with the table fails its test), in one block, and honours `insert_deduplication_token` as a plain insert does (a replay with the
 * same token writes nothing — tests/integration/platform/rowBinary.test.ts). The spool lives in shared memory
 * (/dev/shm) when there is one, so rows never touch a disk outside the engine's own files; each file is removed as
 * soon as its insert returns, and whatever a crash left is removed at the next open (`sweepSpools`).
 */
interface BinaryInserter {
  insert(table: string, columns: readonly string[], settingsSql: string, payload: Buffer): Promise<void>;
  /** Runs `read` with a spool file of `payload` (the SQL literal of its path), removed when `read` is done. */
  withFile<T>(payload: Buffer, read: (pathLiteral: string) => Promise<T>): Promise<T>;
  /** Removes this process's spool directory and the data directory's, if empty (never a file in use). */
  close(): void;
}

/** How a `queryByIds` query names its ids. */
export const IDS_PARAMETER = '{ids:Array(String)}';

const SHARED_SPOOL_PARENT = '/dev/shm';
const SPOOL_PREFIX = 'cdr-pipeline-spool-';

/** The spool directory for a data directory: in /dev/shm if it is there and writable, else beside the engine's files. */
function spoolBaseFor(enginePath: string): string {
  const name = `${SPOOL_PREFIX}${createHash('sha256').update(resolve(enginePath)).digest('hex').slice(0, 16)}`;
  try {
    accessSync(SHARED_SPOOL_PARENT, constants.W_OK);
    return join(SHARED_SPOOL_PARENT, name);
  } catch {
    return join(dirname(enginePath), 'insert-spool');
  }
}

/**
 * A spool directory left by a process of another data directory is only looked at once it has been still this long: a
 * process in another pid namespace that shares /dev/shm looks gone to `kill(pid, 0)`, but its directory changes with
 * every insert (seconds apart), so a live one is never this old.
 */
export const FOREIGN_SPOOL_MIN_AGE_MS = 15 * 60_000;

/**
 * Removes the spool directories of processes that are gone: this data directory's at once (its engine is locked to
 * this process), every other data directory's in shared memory once still for FOREIGN_SPOOL_MIN_AGE_MS — a data
 * directory that is never opened again (a killed test's, a crashed run's in a temporary directory) would otherwise
 * hold its leftovers in RAM until the machine restarts. Never throws: another user's entries are skipped.
 */
export function sweepSpools(ownBase: string, now = Date.now(), parent = SHARED_SPOOL_PARENT): void {
  const removeGone = (base: string, minAgeMs: number): void => {
    for (const entry of entriesOrNone(base)) {
      if (entry === String(process.pid) || processAlive(Number(entry))) continue;
      try {
        if (minAgeMs > 0 && now - statSync(join(base, entry)).mtimeMs < minAgeMs) continue;
        rmSync(join(base, entry), { recursive: true, force: true });
      } catch {
        // Not ours to remove, or gone already.
      }
    }
  };
  removeGone(ownBase, 0);
  if (dirname(ownBase) !== parent) return;
  for (const name of entriesOrNone(parent).filter((n) => n.startsWith(SPOOL_PREFIX))) {
    const base = join(parent, name);
    if (base === ownBase) continue;
    removeGone(base, FOREIGN_SPOOL_MIN_AGE_MS);
    try {
      rmdirSync(base); // only when empty
    } catch {
      // Still in use, or not ours.
    }
  }
}

/** Read with one thread and squash into one block (ingest batches are far below these sizes). */
export const ONE_BLOCK = [
  'max_threads = 1',
  'max_insert_threads = 1',
  'max_block_size = 1048576',
  'max_insert_block_size = 1048576',
  'min_insert_block_size_rows = 1048576',
  'min_insert_block_size_bytes = 1073741824',
].join(', ');

function spoolError(cause: unknown): PipelineError {
  const code = (cause as NodeJS.ErrnoException).code ?? 'error';
  return new PipelineError('storage_unavailable', `the insert spool could not be written (${code})`, { cause });
}

/** Spool files are numbered per process: several storages of one process may share the directory. */
let spoolSequence = 0;

function openBinaryInserter(enginePath: string, command: (sql: string) => Promise<void>): BinaryInserter {
  const base = spoolBaseFor(enginePath);
  const dir = join(base, String(process.pid));
  makeDirectories(dir, 0o700);
  // What a process that is gone left behind (a crash between writing a file and removing it) goes now.
  sweepSpools(base);
  const withFile = async <T>(payload: Buffer, read: (pathLiteral: string) => Promise<T>): Promise<T> => {
    const file = join(dir, `${spoolSequence++}.rowbinary`);
    try {
      await writeFile(file, payload, { mode: 0o600 });
    } catch (err) {
      // The directory removed under us (a tmp cleaner) is made again; a full or read-only spool is an outage of
      // the store as far as the caller can tell: retried, not dead-lettered.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw spoolError(err);
      makeDirectories(dir, 0o700);
      await writeFile(file, payload, { mode: 0o600 }).catch((again: unknown) => {
        throw spoolError(again);
      });
    }
    try {
      return await read(literal(file));
    } finally {
      await rm(file, { force: true });
    }
  };
  return {
    withFile,
    insert(table, columns, settingsSql, payload) {
      // One thread and one block: the block a replay produces is the block the first run produced, so the
      // deduplication token (which names blocks) matches.
      const settings = `${settingsSql ? `${settingsSql}, ` : ''}${ONE_BLOCK}`;
      return withFile(payload, (file) => command(`INSERT INTO ${table} (${columns.join(', ')}) SETTINGS ${settings} SELECT * FROM file(${file}, 'RowBinary')`));
    },
    close() {
      for (const d of [dir, base]) {
        try {
          rmdirSync(d); // only when empty: another storage of this process may still be writing here
        } catch {
          return;
        }
      }
    },
  };
}

/**
 * JSONCompactEachRow bytes (already serialised) into a server: the INSERT goes as the query, the bytes as the request
 * body. (`client.insert` takes such bytes only for CSV-like formats: it refuses a byte stream for a JSON format.)
 */
export async function insertJsonCompactBytes(
  client: ClickHouseClient,
  quotedTable: string,
  columns: readonly string[],
  body: Buffer,
  settings?: ClickHouseSettings,
): Promise<void> {
  const result = await client.exec({
    query: `INSERT INTO ${quotedTable} (${columns.map(identifier).join(', ')}) FORMAT JSONCompactEachRow`,
    values: Readable.from([body]),
    ...(settings ? { clickhouse_settings: settings } : {}),
  });
  // The answer has no body to speak of; read it to the end so the connection is free again.
  result.stream.resume();
  await finished(result.stream);
}

/** JSONEachRow bytes: exactly what @clickhouse/client sends for the same objects (JSON.stringify per row). */
export function jsonEachRow(rows: readonly object[]): Buffer {
  const lines = new Array<string>(rows.length + 1);
  for (let i = 0; i < rows.length; i++) lines[i] = JSON.stringify(rows[i]);
  lines[rows.length] = '';
  return Buffer.from(lines.join('\n'));
}

/** JSONCompactEachRow bytes: one JSON array per row, values in `shape.columns` order. */
export function jsonCompactEachRow<T>(rows: readonly T[], shape: RowShape<T>): Buffer {
  return encodeRows(rows, shape, 'JSONCompactEachRow');
}

/** A column or setting name for SQL text: the names come from code, never from input, and are checked anyway. */
function identifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new PipelineError('invariant_broken', `not a plain SQL name: ${name}`);
  return name;
}

/** A setting's value as a SQL literal. */
function literal(v: string | number | boolean): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new PipelineError('config_invalid', 'an insert setting must be a finite number');
    return String(v);
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The body of an INSERT's own SETTINGS clause (`k = v, …`), '' for none. */
function settingsClause(settings: ClickHouseSettings | undefined): string {
  return Object.entries(insertSettings(settings))
    .map(([k, v]) => `${identifier(k)} = ${literal(v)}`)
    .join(', ');
}

/** Settings as literals for an INSERT's own SETTINGS clause; objects (map settings) are not used for inserts. */
function insertSettings(settings: ClickHouseSettings | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(settings ?? {})) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (v !== undefined) throw new PipelineError('config_invalid', `insert setting ${k} must be a string, number or boolean`);
  }
  return out;
}

/** Open storages of this process per embedded engine directory, and the lease they share (`Storage.lease`). */
const leases = new Map<string, { open: number; lease: string }>();
let leaseSequence = 0;

/** One key per directory however it is named (a symbolic link, a relative path). */
function leaseKey(enginePath: string): string {
  try {
    return realpathSync(enginePath);
  } catch {
    return resolve(enginePath);
  }
}

function takeLease(enginePath: string): string {
  const key = leaseKey(enginePath);
  const held = leases.get(key);
  if (held) {
    held.open++;
    return held.lease;
  }
  const lease = `${key}#${++leaseSequence}`;
  leases.set(key, { open: 1, lease });
  return lease;
}

function returnLease(enginePath: string): void {
  const key = leaseKey(enginePath);
  const held = leases.get(key);
  if (held && --held.open <= 0) leases.delete(key);
}

export async function openStorage(config: ClickHouseConfig, dataDir: string): Promise<Storage> {
  let client: ClickHouseClient;
  let rawInserter: ChdbRawInserter | undefined;
  let binaryInserter: BinaryInserter | undefined;
  let embedded = false;
  let enginePath: string | undefined;
  let lease: string | undefined;
  let dedupRepair: DedupRepairReport | undefined;
  if (config.url) {
    client = createClient({ url: config.url, username: config.user, password: config.password, request_timeout: 300_000 });
  } else {
    const path = join(dataDir, 'clickhouse');
    makeDirectories(path);
    // Before the engine loads them: block ids a crash left without their part would drop a replay (dedupLogRepair.ts).
    dedupRepair = repairDedupLogs(path);
    // Loaded lazily: a server deployment never loads the native engine.
    const { createChdbConnection } = await import('chdb/connection');
    try {
      const connection = createChdbConnection({ path });
      rawInserter = connection;
      client = createClient({ connection } as Parameters<typeof createClient>[0]);
    } catch (cause) {
      throw inUseOr(cause, path);
    }
    embedded = true;
    enginePath = path;
    const engine = rawInserter;
    binaryInserter = openBinaryInserter(path, async (sql) => {
      await engine.chdb.queryAsync(sql);
    });
    // Last before the storage exists: a throw above leaves no lease counted that nothing would return.
    lease = takeLease(path);
  }
  const database = config.database;
  const cluster = config.cluster;
  const shapedInsertFormat = binaryInserter ? 'RowBinary' : 'JSONCompactEachRow';
  /** Rows serialised elsewhere (ingest's prepare workers), in this storage's shaped format. */
  const insertEncoded = async (
    table: string,
    rows: EncodedRows,
    settings: ClickHouseSettings | undefined,
    columns: readonly string[] | undefined,
  ): Promise<void> => {
    if (rows.count === 0) return;
    if (rows.rejected !== undefined) throw new PipelineError('record_rejected', `insert into ${table}: ${rows.rejected}`);
    if (rows.format !== shapedInsertFormat || columns === undefined || columns.length === 0) {
      throw new PipelineError('invariant_broken', `insert into ${table}: ${rows.format} rows need their columns and a storage that takes ${rows.format}`);
    }
    const body = Buffer.from(rows.body.buffer, rows.body.byteOffset, rows.body.byteLength);
    try {
      if (binaryInserter) {
        await binaryInserter.insert(storage.table(table), columns.map(identifier), settingsClause(settings), body);
      } else {
        await insertJsonCompactBytes(client, storage.table(table), columns, body, settings);
      }
    } catch (cause) {
      throw storageError(cause, `insert into ${table}`, true);
    }
  };
  let closed = false;
  const storage: Storage = {
    client,
    database,
    cluster,
    embedded,
    path: enginePath,
    lease,
    shapedInsertFormat,
    ...(dedupRepair ? { dedupRepair } : {}),
    table: (name) => `\`${database}\`.\`${name}\``,
    onCluster: () => (cluster ? ` ON CLUSTER \`${cluster}\`` : ''),
    async query<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]> {
      try {
        const rs = await client.query({ query: sql, format: 'JSONEachRow', query_params: params, clickhouse_settings: settings });
        return await rs.json<T>();
      } catch (cause) {
        throw storageError(cause, 'query', false);
      }
    },
    async queryByIds<T>(sql: string, ids: readonly string[]): Promise<T[]> {
      if (!sql.includes(IDS_PARAMETER)) throw new PipelineError('invariant_broken', `queryByIds: the query names no ${IDS_PARAMETER}`);
      if (!binaryInserter || ids.length === 0) return storage.query<T>(sql, { ids: [...ids] });
      const read = (file: string): Promise<T[]> => storage.query<T>(sql.replaceAll(IDS_PARAMETER, `(SELECT id FROM file(${file}, 'RowBinary', 'id String'))`));
      return binaryInserter.withFile(rowBinaryStrings(ids), read);
    },
    async command(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<void> {
      try {
        await client.command({ query: sql, query_params: params, clickhouse_settings: settings });
      } catch (cause) {
        throw storageError(cause, 'command', false);
      }
    },
    async insert<T extends object>(table: string, rows: readonly T[] | EncodedRows, settings?: ClickHouseSettings, shape?: RowShape<T>): Promise<void> {
      if (isEncodedRows(rows)) return insertEncoded(table, rows, settings, shape?.columns);
      if (rows.length === 0) return;
      try {
        if (binaryInserter && shape) {
          await binaryInserter.insert(
            storage.table(table),
            shape.columns.map(identifier),
            settingsClause(settings),
            rowBinary(rows, shape.columns, shape.types, shape.tuple),
          );
        } else if (rawInserter) {
          // Embedded: the serialised rows go to chDB's raw insert, which parses them on its own threads and
          // takes the settings in the INSERT's SETTINGS clause, so they apply to this statement only. (Through
          // @clickhouse/client, chDB turns settings into session-wide SETs and re-copies the body as a string;
          // benchmarks/RESULTS.md measured 28.9 vs 19.8 CPU-µs per cdr row.)
          await rawInserter.chdb.rawInsert(
            shape
              ? {
                  table: `${database}.${table}`,
                  values: jsonCompactEachRow(rows, shape),
                  format: 'JSONCompactEachRow',
                  columns: shape.columns,
                  settings: insertSettings(settings),
                }
              : { table: `${database}.${table}`, values: jsonEachRow(rows), format: 'JSONEachRow', settings: insertSettings(settings) },
          );
        } else if (shape) {
          const [first, ...rest] = shape.columns;
          if (first === undefined) throw new PipelineError('invariant_broken', `insert into ${table}: a row shape without columns`);
          await client.insert({
            table: `${database}.${table}`,
            values: rows.map((r) => shape.tuple(r)),
            format: 'JSONCompactEachRow',
            columns: [first, ...rest],
            clickhouse_settings: settings,
          });
        } else {
          await client.insert({ table: `${database}.${table}`, values: rows, format: 'JSONEachRow', clickhouse_settings: settings });
        }
      } catch (cause) {
        // A value that does not fit its column: refused for its data, as the engine refuses unparsable text (the
        // consumer loop splits the batch to find the record and dead-letters it alone).
        if (cause instanceof RowBinaryValueError) throw new PipelineError('record_rejected', `insert into ${table}: ${cause.message}`, { cause });
        throw storageError(cause, `insert into ${table}`, true);
      }
    },
    async close(): Promise<void> {
      try {
        await client.close();
        binaryInserter?.close();
      } finally {
        if (lease !== undefined && enginePath !== undefined && !closed) returnLease(enginePath);
        closed = true;
      }
    },
  };
  try {
    await client.ping();
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${database}\`${storage.onCluster()}` });
  } catch (cause) {
    if (lease !== undefined && enginePath !== undefined && !closed) returnLease(enginePath);
    closed = true;
    if (embedded) throw inUseOr(cause, join(dataDir, 'clickhouse'));
    throw storageError(cause, 'connect', false);
  }
  return storage;
}

/** chDB allows one process per data directory; say so plainly instead of a lock error. */
function inUseOr(cause: unknown, path: string): PipelineError {
  const text = `${cause instanceof Error ? cause.message : String(cause)} ${cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : ''}`;
  if (/Cannot lock file|already running/i.test(text)) {
    return new PipelineError(
      'config_invalid',
      `the embedded ClickHouse data directory ${path} is in use by another process (a running \`cdr start\`?). Stop it, use its HTTP API, or set CDR_DATA_DIR / CLICKHOUSE_URL`,
      { cause },
    );
  }
  // chDB 3.4 throws only "Failed to create connection for path …" (the lock message goes to the console), for a held
  // directory as for an unwritable one: name both.
  if (/Failed to create connection for path/i.test(text)) {
    return new PipelineError(
      'config_invalid',
      `the embedded ClickHouse data directory ${path} could not be opened: in use by another process (a running \`cdr start\`? stop it or use its HTTP API) or not writable; or set CDR_DATA_DIR / CLICKHOUSE_URL`,
      { cause },
    );
  }
  return storageError(cause, 'open', false);
}

/**
 * The same storage with settings applied to every query (not inserts): the API's session runs each read under a
 * time and memory limit (`max_execution_time`, `max_memory_usage`), so no request can occupy the engine.
 */
export function withQueryLimits(storage: Storage, limits: ClickHouseSettings): Storage {
  return {
    ...storage,
    table: (name) => storage.table(name),
    onCluster: () => storage.onCluster(),
    query: <T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings) => storage.query<T>(sql, params, { ...limits, ...settings }),
    // Ingest's and billing's lookups, never the API's reads: no limits needed.
    queryByIds: <T>(sql: string, ids: readonly string[]) => storage.queryByIds<T>(sql, ids),
    command: (sql, params, settings) => storage.command(sql, params, settings),
    insert: (table, rows, settings, shape) => storage.insert(table, rows, settings, shape),
    shapedInsertFormat: storage.shapedInsertFormat,
    close: () => storage.close(),
  };
}
