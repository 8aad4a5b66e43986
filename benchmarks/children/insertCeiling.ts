/**
 * Benchmark child, ceiling 2: how fast embedded ClickHouse (chDB) takes rows equivalent to ingest's into the
 * project's real `cdr` table (openStorage + applyMigrations, fresh data directory; the subscriber_index view
 * of migration 4 fires on every insert, as in ingest), per insert path/format:
 *
 *   project          storage.insert() exactly as ingest calls it (CDR_SHAPE: JSONCompactEachRow tuples →
 *                    chDB raw insert, settings in the statement); timed including serialisation
 *   client-json      @clickhouse/client JSONEachRow from JS objects through chdb/connection (ingest's path
 *                    before this commit: stream → string, `SET …; INSERT … FORMAT`)
 *   raw-json         chDB raw insert of a pre-serialised JSONEachRow Buffer (connection.chdb.rawInsert)
 *   raw-jsoncompact  chDB raw insert, JSONCompactEachRow written by hand (no per-row JSON.stringify of objects)
 *   raw-tsv          chDB raw insert, TabSeparated
 *
 * Every batch has unique cdr_ids and its own insert_deduplication_token, as ingest's batches do. For the raw
 * variants serialisation is timed separately (`serialiseSeconds`) from the insert call (`insertSeconds`).
 * Input: env BENCH_CEILING (JSON, CeilingParams). Output: IPC {type:'result', ...}.
 */
import { join } from 'node:path';
import { loadConfig } from '../../services/platform/config/config.ts';
import { openStorage } from '../../services/platform/clickhouse/storage.ts';
import { applyMigrations } from '../../services/platform/clickhouse/migrations.ts';
import { CDR_SHAPE } from '../../services/core/pseudonym/pseudonymise.ts';
import { cpuSecondsBetween, selfUsage, type ChildUsage } from '../lib/proc.ts';
import { CDR_COLUMNS, templateRows, toJsonCompact, toJsonEachRow, toTsv, uniqueBatch } from '../lib/rows.ts';

export type CeilingVariant = 'project' | 'client-json' | 'raw-json' | 'raw-jsoncompact' | 'raw-tsv';

export interface CeilingParams {
  dataDir: string;
  rowsPerCase: number;
  batchSizes: number[];
  variants: CeilingVariant[];
  templateSize?: number;
}

export interface CeilingCase {
  variant: CeilingVariant;
  batch: number;
  rows: number;
  insertSeconds: number;
  serialiseSeconds: number;
  /** CPU seconds of this process during the insert calls (engine threads included; background merges between calls not). */
  insertCpuSeconds: number;
  rowsPerSecond: number;
  /** Including serialisation (the raw variants), i.e. what a pipeline doing both would get. */
  rowsPerSecondWithSerialise: number;
}

export interface CeilingResult {
  type: 'result';
  clickhouseVersion: string;
  cases: CeilingCase[];
  storedRows: number;
  usage: ChildUsage;
}

interface RawInsertParams {
  table: string;
  values: Buffer;
  format: 'JSONEachRow' | 'JSONCompactEachRow' | 'TSV';
  columns?: readonly string[];
  settings?: Record<string, string | number | boolean>;
}
interface ChdbConnectionLike {
  chdb: { rawInsert(p: RawInsertParams): Promise<unknown> };
  close(): Promise<void>;
}

const params = JSON.parse(process.env['BENCH_CEILING'] ?? '{}') as CeilingParams;
const config = loadConfig({ CLICKHOUSE_DATABASE: 'ceiling', CDR_LOG_LEVEL: 'warn' });
const storage = await openStorage(config.clickhouse, params.dataDir);
// A second session on the same data directory, for chDB's raw insert (sessions on one path coexist).
const chdbConnection = (await import('chdb/connection')) as unknown as { createChdbConnection: (o: { path: string }) => ChdbConnectionLike };
const conn = chdbConnection.createChdbConnection({ path: join(params.dataDir, 'clickhouse') });
try {
  await applyMigrations(storage);
  const version = (await storage.query<{ v: string }>('SELECT version() AS v'))[0]?.v ?? '?';
  const template = templateRows(params.templateSize ?? 20_000);
  const cases: CeilingCase[] = [];
  let batchNo = 0;
  for (const batch of params.batchSizes) {
    for (const variant of params.variants) {
      const batches = Math.max(1, Math.round(params.rowsPerCase / batch));
      let insertSeconds = 0;
      let serialiseSeconds = 0;
      let insertCpu = 0;
      for (let b = 0; b < batches; b++) {
        const n = batchNo++;
        const rows = uniqueBatch(template.rows, n, batch);
        const token = `bench/${variant}/${batch}/${n}`;
        let payload: Buffer | undefined;
        let format: RawInsertParams['format'] = 'JSONEachRow';
        if (variant.startsWith('raw-')) {
          const s0 = performance.now();
          if (variant === 'raw-json') payload = Buffer.from(toJsonEachRow(rows));
          else if (variant === 'raw-jsoncompact') {
            payload = Buffer.from(toJsonCompact(rows));
            format = 'JSONCompactEachRow';
          } else {
            payload = Buffer.from(toTsv(rows));
            format = 'TSV';
          }
          serialiseSeconds += (performance.now() - s0) / 1000;
        }
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        if (payload) {
          await conn.chdb.rawInsert({
            table: `${storage.database}.cdr`,
            values: payload,
            format,
            ...(format === 'JSONEachRow' ? {} : { columns: CDR_COLUMNS }),
            settings: { insert_deduplication_token: token },
          });
        } else if (variant === 'project') {
          await storage.insert('cdr', rows, { insert_deduplication_token: token, deduplicate_blocks_in_dependent_materialized_views: 1 }, CDR_SHAPE);
        } else {
          await storage.client.insert({
            table: `${storage.database}.cdr`,
            values: rows,
            format: 'JSONEachRow',
            clickhouse_settings: { insert_deduplication_token: token },
          });
        }
        insertSeconds += (performance.now() - t0) / 1000;
        insertCpu += cpuSecondsBetween(c0, process.cpuUsage());
      }
      const rows = batches * batch;
      cases.push({
        variant,
        batch,
        rows,
        insertSeconds,
        serialiseSeconds,
        insertCpuSeconds: insertCpu,
        rowsPerSecond: rows / insertSeconds,
        rowsPerSecondWithSerialise: rows / (insertSeconds + serialiseSeconds),
      });
    }
  }
  const storedRows = Number((await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table('cdr')}`))[0]?.n ?? 0);
  const result: CeilingResult = { type: 'result', clickhouseVersion: version, cases, storedRows, usage: selfUsage() };
  process.send?.(result);
} finally {
  await conn.close();
  await storage.close();
}
process.exit(0);
