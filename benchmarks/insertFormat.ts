/**
 * `node --import tsx benchmarks/insertFormat.ts`: what the engine spends per cdr row by insert format (issue 15).
 * The same pseudonymised rows (benchmarks/lib/rows.ts), pre-serialised, go into two databases of one embedded engine,
 * batch by batch in turn (so background merges and machine load fall on both alike):
 *
 *   JSONCompactEachRow  chDB's raw insert (the path before 2026-12-02)
 *   RowBinary           a spool file read by `INSERT … SELECT * FROM file(…, 'RowBinary')` (storage.ts since then),
 *                       with the insert's one-block settings
 *
 * into the real `cdr` table with its two views (subscriber index, cdr_ids), and into a Null-engine table (parsing
 * alone). CPU = user + system of this process (engine threads included) during the insert calls; serialisation is
 * timed apart. BENCH_INSERT_BATCHES (default 40) batches of BENCH_INSERT_BATCH (default 5,000) rows.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../services/platform/config/config.ts';
import { jsonCompactEachRow, ONE_BLOCK, openStorage } from '../services/platform/clickhouse/storage.ts';
import { applyMigrations } from '../services/platform/clickhouse/migrations.ts';
import { rowBinary } from '../services/platform/clickhouse/rowBinary.ts';
import { CDR_SHAPE } from '../services/core/pseudonym/pseudonymise.ts';
import { templateRows, uniqueBatch } from './lib/rows.ts';
import { median } from './lib/stats.ts';

interface RawEngine {
  chdb: {
    rawInsert(p: {
      table: string;
      values: Buffer;
      format: 'JSONCompactEachRow';
      columns: readonly string[];
      settings: Record<string, string | number>;
    }): Promise<unknown>;
    queryAsync(sql: string): Promise<unknown>;
  };
  close(): Promise<void>;
}

const BATCHES = Number(process.env['BENCH_INSERT_BATCHES'] ?? 40);
const BATCH = Number(process.env['BENCH_INSERT_BATCH'] ?? 5_000);

const dir = mkdtempSync(join(tmpdir(), 'cdr-bench-format-'));
const spool = join(process.platform === 'linux' ? '/dev/shm' : tmpdir(), `cdr-bench-format-${process.pid}.rowbinary`);
const json = await openStorage(loadConfig({ CLICKHOUSE_DATABASE: 'fmt_json' }).clickhouse, dir);
const binary = await openStorage(loadConfig({ CLICKHOUSE_DATABASE: 'fmt_binary' }).clickhouse, dir);
const chdbConnection = (await import('chdb/connection')) as unknown as { createChdbConnection: (o: { path: string }) => RawEngine };
const engine = chdbConnection.createChdbConnection({ path: join(dir, 'clickhouse') });
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
try {
  await applyMigrations(json);
  await applyMigrations(binary);
  const types: Record<string, string> = { DateTime64: "DateTime64(3, 'UTC')", 'Nullable(DateTime64)': "Nullable(DateTime64(3, 'UTC'))" };
  const nullColumns = CDR_SHAPE.columns.map((c, i) => `${c} ${types[CDR_SHAPE.types[i]!] ?? CDR_SHAPE.types[i]}`).join(', ');
  for (const db of ['fmt_json', 'fmt_binary']) await engine.chdb.queryAsync(`CREATE TABLE ${db}.cdr_null (${nullColumns}) ENGINE = Null`);

  const template = templateRows(20_000);
  const batches = Array.from({ length: BATCHES }, (_, i) => uniqueBatch(template.rows, i, BATCH));
  const serialise = { json: [] as number[], binary: [] as number[] };
  const payloads = batches.map((rows) => {
    let t0 = performance.now();
    const j = jsonCompactEachRow(rows, CDR_SHAPE);
    serialise.json.push(((performance.now() - t0) * 1000) / rows.length);
    t0 = performance.now();
    const b = rowBinary(rows, CDR_SHAPE.columns, CDR_SHAPE.types, CDR_SHAPE.tuple);
    serialise.binary.push(((performance.now() - t0) * 1000) / rows.length);
    return { j, b };
  });

  const cpuPerRow = { cdr: { json: 0, binary: 0 }, null: { json: 0, binary: 0 } };
  for (const table of ['cdr', 'cdr_null'] as const) {
    for (let i = 0; i < BATCHES; i++) {
      const { j, b } = payloads[i]!;
      const settings = { insert_deduplication_token: `fmt/${i}`, deduplicate_blocks_in_dependent_materialized_views: 1 };
      let c0 = cpu();
      await engine.chdb.rawInsert({ table: `fmt_json.${table}`, values: j, format: 'JSONCompactEachRow', columns: CDR_SHAPE.columns, settings });
      const key = table === 'cdr' ? 'cdr' : 'null';
      cpuPerRow[key].json += cpu() - c0;
      c0 = cpu();
      writeFileSync(spool, b);
      await engine.chdb.queryAsync(
        `INSERT INTO fmt_binary.${table} (${CDR_SHAPE.columns.join(', ')}) SETTINGS insert_deduplication_token = 'fmt/${i}', deduplicate_blocks_in_dependent_materialized_views = 1, ${ONE_BLOCK} SELECT * FROM file('${spool}', 'RowBinary')`,
      );
      cpuPerRow[key].binary += cpu() - c0;
    }
  }
  const per = (s: number): string => ((s / (BATCHES * BATCH)) * 1e6).toFixed(1);
  const bytes = (k: 'j' | 'b'): number => Math.round(payloads.reduce((n, p) => n + p[k].length, 0) / (BATCHES * BATCH));
  console.log(
    `${BATCHES} batches of ${BATCH.toLocaleString('en')} cdr rows, engine ${String(((await json.query<{ v: string }>('SELECT version() AS v'))[0] ?? { v: '?' }).v)}`,
  );
  console.log('| format | bytes/row | JS serialise µs/row (median batch) | engine CPU-µs/row, cdr + 2 views | engine CPU-µs/row, Null table (parse only) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(
    `| JSONCompactEachRow (raw insert) | ${bytes('j')} | ${median(serialise.json).toFixed(2)} | ${per(cpuPerRow.cdr.json)} | ${per(cpuPerRow.null.json)} |`,
  );
  console.log(
    `| RowBinary (spool file) | ${bytes('b')} | ${median(serialise.binary).toFixed(2)} | ${per(cpuPerRow.cdr.binary)} | ${per(cpuPerRow.null.binary)} |`,
  );
} finally {
  await engine.close();
  await json.close();
  await binary.close();
  rmSync(spool, { force: true });
  rmSync(dir, { recursive: true, force: true });
}
