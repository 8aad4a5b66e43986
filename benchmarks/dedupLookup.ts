/**
 * `node --import tsx benchmarks/dedupLookup.ts`: why `cdr_ids` is a RocksDB table (docs/decisions/0015). Fills an
 * EmbeddedRocksDB table and a MergeTree ordered by cdr_id (index_granularity 256) with the same BENCH_DEDUP_KEYS ids
 * (default 20,000,000) in a fresh embedded ClickHouse, then times lookups of 5,000 ids — 95% absent, as in ingest,
 * where most records are new — the way ingest asks (`WHERE cdr_id IN {ids:Array(String)}`). Prints medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStorage } from '../services/platform/clickhouse/index.ts';
import { median } from './lib/stats.ts';

const KEYS = Number(process.env['BENCH_DEDUP_KEYS'] ?? 20_000_000);
const LOOKUPS = 5_000;
const ROUNDS = 7;

const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-dedup-'));
const storage = await openStorage({ url: undefined, user: 'default', password: '', database: 'bench', cluster: undefined }, dir);
try {
  await storage.command(`CREATE TABLE bench.ids_rocks (cdr_id String, p UInt32, o UInt64) ENGINE = EmbeddedRocksDB(345600) PRIMARY KEY cdr_id`);
  await storage.command(
    `CREATE TABLE bench.ids_merge (cdr_id String, p UInt32, o UInt64) ENGINE = ReplacingMergeTree ORDER BY cdr_id SETTINGS index_granularity = 256`,
  );
  for (const table of ['ids_rocks', 'ids_merge']) {
    const t0 = performance.now();
    await storage.command(`INSERT INTO bench.${table} SELECT concat('cdr-', toString(cityHash64(number))), 1, number FROM numbers(${KEYS})`);
    console.log(`${table}: ${KEYS.toLocaleString('en')} ids inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const existing = (await storage.query<{ cdr_id: string }>(`SELECT cdr_id FROM bench.ids_merge ORDER BY rand() LIMIT ${ROUNDS * LOOKUPS}`)).map(
    (r) => r.cdr_id,
  );
  for (const table of ['ids_rocks', 'ids_merge']) {
    const times: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ids = Array.from({ length: LOOKUPS }, (_, i) => (i % 20 === 0 ? existing[r * LOOKUPS + i]! : `cdr-new-${r}-${i}-${Math.random()}`));
      const t0 = performance.now();
      await storage.query(`SELECT cdr_id, p, o FROM bench.${table} WHERE cdr_id IN {ids:Array(String)}`, { ids });
      times.push(performance.now() - t0);
    }
    console.log(
      `${table}: ${LOOKUPS} lookups, median ${median(times).toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})`,
    );
  }
} finally {
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
}
