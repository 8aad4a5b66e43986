import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouseConfig } from '../config/index.ts';
import { PipelineError } from '../../core/index.ts';
import type { RowShape } from '../../core/index.ts';
import { storageError } from './errors.ts';

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
  /** `db.table`, quoted. */
  table(name: string): string;
  /** ` ON CLUSTER x` or ''. */
  onCluster(): string;
  query<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]>;
  command(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<void>;
  /**
   * Inserts rows, as JSONEachRow objects, or with `shape` as JSONCompactEachRow tuples: half the bytes
   * and cheaper for the engine to parse (benchmarks/RESULTS.md), for the hot tables.
   */
  insert<T extends object>(table: string, rows: readonly T[], settings?: ClickHouseSettings, shape?: RowShape<T>): Promise<void>;
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
  };
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
  const lines = new Array<string>(rows.length + 1);
  for (let i = 0; i < rows.length; i++) lines[i] = JSON.stringify(shape.tuple(rows[i]!));
  lines[rows.length] = '';
  return Buffer.from(lines.join('\n'));
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

export async function openStorage(config: ClickHouseConfig, dataDir: string): Promise<Storage> {
  let client: ClickHouseClient;
  let rawInserter: ChdbRawInserter | undefined;
  let embedded = false;
  let enginePath: string | undefined;
  if (config.url) {
    client = createClient({ url: config.url, username: config.user, password: config.password, request_timeout: 300_000 });
  } else {
    const path = join(dataDir, 'clickhouse');
    mkdirSync(path, { recursive: true });
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
  }
  const database = config.database;
  const cluster = config.cluster;
  const storage: Storage = {
    client,
    database,
    cluster,
    embedded,
    path: enginePath,
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
    async command(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<void> {
      try {
        await client.command({ query: sql, query_params: params, clickhouse_settings: settings });
      } catch (cause) {
        throw storageError(cause, 'command', false);
      }
    },
    async insert<T extends object>(table: string, rows: readonly T[], settings?: ClickHouseSettings, shape?: RowShape<T>): Promise<void> {
      if (rows.length === 0) return;
      try {
        if (rawInserter) {
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
        throw storageError(cause, `insert into ${table}`, true);
      }
    },
    async close(): Promise<void> {
      await client.close();
    },
  };
  try {
    await client.ping();
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${database}\`${storage.onCluster()}` });
  } catch (cause) {
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
    command: (sql, params, settings) => storage.command(sql, params, settings),
    insert: (table, rows, settings, shape) => storage.insert(table, rows, settings, shape),
    close: () => storage.close(),
  };
}
