/**
 * RowBinary against the real engine and the real tables: the hot tables' shapes name each column's type as the
 * migrated table has it, and cdr / identity_vault rows inserted as RowBinary read back exactly as the same rows
 * inserted as JSONCompactEachRow (the path before, and the server path) — generated traffic from many countries plus
 * hand-made edge rows (empty and long strings, control characters, emoji, null delivery, a Kafka offset past 2^53,
 * negative amounts, the last millisecond of a leap day).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../services/platform/config/config.ts';
import { openStorage, type RowShape, type Storage } from '../../../services/platform/clickhouse/storage.ts';
import { applyMigrations } from '../../../services/platform/clickhouse/migrations.ts';
import { CDR_SHAPE, VAULT_SHAPE, Pseudonymiser, type CdrRow, type VaultRow } from '../../../services/core/pseudonym/pseudonymise.ts';
import { RATED_SHAPE } from '../../../services/billing/ratedRow.ts';
import { deriveMonthKey } from '../../../services/core/pseudonym/monthKeys.ts';
import { monthKeyOf } from '../../../services/core/retention/retentionCalendar.ts';
import { planTraffic } from '../../../services/generator/trafficPlan.ts';
import { decodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';

/** The RowBinary type a migrated column needs, from its ClickHouse type. */
function rowBinaryTypeOf(chType: string): string {
  const t = chType.replace(/^LowCardinality\((.*)\)$/, '$1');
  if (t === "DateTime64(3, 'UTC')") return 'DateTime64';
  if (t === "Nullable(DateTime64(3, 'UTC'))") return 'Nullable(DateTime64)';
  return t;
}

describe('RowBinary inserts into the real tables', () => {
  let storage: Storage;
  let dataDir: string;
  const now = Date.now();
  let generated: CdrRow[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cdr-rowbinary-'));
    const config = loadConfig({ CLICKHOUSE_DATABASE: `cdr_rb_${randomBytes(4).toString('hex')}` });
    storage = await openStorage(config.clickhouse, dataDir);
    await applyMigrations(storage);
    for (const t of ['cdr', 'identity_vault']) await storage.command(`CREATE TABLE ${storage.table(`${t}_json`)} AS ${storage.table(t)}`);
  });
  after(async () => {
    await storage.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is the embedded engine’s shaped insert format', () => {
    assert.equal(storage.shapedInsertFormat, 'RowBinary');
  });

  for (const [table, shape] of [
    ['cdr', CDR_SHAPE],
    ['identity_vault', VAULT_SHAPE],
    ['billing_rated', RATED_SHAPE],
  ] as const) {
    it(`${table}: the shape's columns and types are the table's`, async () => {
      const columns = await storage.query<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position`,
        { db: storage.database, t: table },
      );
      const types = new Map(columns.map((c) => [c.name, rowBinaryTypeOf(c.type)]));
      assert.deepEqual([...shape.columns].sort(), [...types.keys()].sort(), 'every column, no other');
      shape.columns.forEach((c, i) => assert.equal(shape.types[i], types.get(c), c));
    });
  }

  it('rows read back exactly as the same rows inserted as JSONCompactEachRow', async () => {
    const pseudonymiser = new Pseudonymiser();
    const rows: CdrRow[] = [];
    const vault = new Map<string, VaultRow>();
    let offset = 0;
    const keys = new Map<string, ReturnType<typeof deriveMonthKey>>();
    for (const m of planTraffic({
      count: 3_000,
      seed: 77,
      scenario: 'normal',
      duplicates: 0,
      malformed: 0,
      late: 0,
      startTime: now - 3_600_000,
      eventsPerSecond: 10,
      subscribers: 'fresh',
    })) {
      const { event, schemaId } = decodeCdrEvent(m.value);
      const month = monthKeyOf(event.event_time);
      const key = keys.get(month) ?? deriveMonthKey(month, 'k', randomBytes(32));
      keys.set(month, key);
      const rec = pseudonymiser.pseudonymise(event, month, key, schemaId, { topic: 'rb', partition: 3, offset: String(offset++) }, now);
      rows.push(rec.row);
      for (const v of rec.vault) vault.set(v.token, v);
    }
    const base = rows[0]!;
    const edges: CdrRow[] = [
      {
        ...base,
        cdr_id: 'edge-1',
        account_id: '',
        client_ip: '',
        error_code: '',
        delivered_at: null,
        price: -123_456_789_012,
        cost: 0,
        src_offset: '9007199254740993',
      },
      {
        ...base,
        cdr_id: `edge-2-${'長'.repeat(200)}`,
        account_id: 'acc\u0000nul\nnl\ttab"q\\b',
        client_ip: '2001:db8::1',
        error_code: '📞'.repeat(50),
        src_offset: '18446744073709551615',
      },
      {
        ...base,
        cdr_id: 'edge-3',
        event_time: Date.UTC(2028, 1, 29, 23, 59, 59, 999),
        submitted_at: Date.UTC(2028, 1, 29, 23, 59, 59, 999),
        delivered_at: Date.UTC(2028, 2, 1),
        duration_ms: 2 ** 40,
        segments: 0xffffffff,
        size_bytes: 0,
      },
    ];
    generated = rows.slice(0, 100);
    rows.push(...edges);
    const vaultRows = [...vault.values()];
    vaultRows.push({
      ...vaultRows[0]!,
      token: 'edge-token',
      sealed: 'x'.repeat(5000),
      month: '2028-02-01',
      first_seen: Date.UTC(2028, 1, 29, 23, 59, 59, 999),
    });

    const jsonInsert = async <T>(table: string, values: readonly T[], shape: RowShape<T>): Promise<void> => {
      const [first, ...rest] = shape.columns;
      await storage.client.insert({
        table: `${storage.database}.${table}`,
        values: values.map((r) => shape.tuple(r)),
        format: 'JSONCompactEachRow',
        columns: [first!, ...rest],
      });
    };
    await storage.insert('cdr', rows, { insert_deduplication_token: 'rb/cdr' }, CDR_SHAPE);
    await jsonInsert('cdr_json', rows, CDR_SHAPE);
    await storage.insert('identity_vault', vaultRows, { insert_deduplication_token: 'rb/vault' }, VAULT_SHAPE);
    await jsonInsert('identity_vault_json', vaultRows, VAULT_SHAPE);

    const read = async (table: string, order: string): Promise<unknown[]> => storage.query(`SELECT * FROM ${storage.table(table)} ORDER BY ${order}`);
    const binaryCdr = await read('cdr', 'cdr_id');
    assert.equal(binaryCdr.length, rows.length);
    assert.deepEqual(binaryCdr, await read('cdr_json', 'cdr_id'));
    const binaryVault = await read('identity_vault', 'token');
    assert.equal(binaryVault.length, vaultRows.length);
    assert.deepEqual(binaryVault, await read('identity_vault_json', 'token'));
    // And the index the engine derives from the cdr insert has a row per token-bearing party.
    const indexed = await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table('subscriber_index')}`);
    assert.ok(Number(indexed[0]!.n) >= rows.length, 'the subscriber index view ran on the RowBinary insert');
  });

  it('a replayed insert (same deduplication token) writes nothing, in cdr or in the views it feeds, whatever its bytes', async () => {
    const counts = async (): Promise<number[]> =>
      Promise.all(
        ['cdr', 'cdr_ids', 'subscriber_index'].map(async (t) =>
          Number((await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table(t)}`))[0]!.n),
        ),
      );
    const template = (await storage.query<CdrRow>(`SELECT * FROM ${storage.table('cdr')} WHERE cdr_id NOT LIKE 'edge-%' LIMIT 1000`)).map((r) => ({
      ...r,
      event_time: Date.parse(`${r.event_time as unknown as string}Z`),
      submitted_at: Date.parse(`${r.submitted_at as unknown as string}Z`),
      delivered_at: null,
      ingested_at: now,
    }));
    // 12,000 rows over two months, with offsets that hold two newline bytes in a row (2570 = 0x0a0a): what broke
    // chDB's inline raw insert.
    const batch: CdrRow[] = Array.from({ length: 12_000 }, (_, i) => {
      const r = template[i % template.length]!;
      return { ...r, cdr_id: `replay-${i}`, event_time: r.event_time - (i % 2) * 40 * 86_400_000, src_offset: String(2_560 + i) };
    });
    const before = await counts();
    const settings = { insert_deduplication_token: 'rb/replay', deduplicate_blocks_in_dependent_materialized_views: 1 as const };
    await storage.insert('cdr', batch, settings, CDR_SHAPE);
    const once = await counts();
    assert.deepEqual(
      once.map((n, i) => n - before[i]!),
      [12_000, 12_000, once[2]! - before[2]!],
    );
    assert.ok(once[2]! - before[2]! >= 12_000);
    await storage.insert('cdr', batch, settings, CDR_SHAPE);
    assert.deepEqual(await counts(), once, 'the replay wrote nothing');
    const offsets = await storage.query<{ o: string }>(`SELECT toString(src_offset) AS o FROM ${storage.table('cdr')} WHERE cdr_id = 'replay-10'`);
    assert.deepEqual(offsets, [{ o: '2570' }]);
  });

  it('a value that does not fit its column is record_rejected for that insert, which writes nothing', async () => {
    const before = await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table('cdr')}`);
    const rows: CdrRow[] = [...generated.slice(0, 10).map((r, i) => ({ ...r, cdr_id: `bad-batch-${i}` })), { ...generated[0]!, cdr_id: 'bad-1', segments: -1 }];
    await assert.rejects(
      storage.insert('cdr', rows, { insert_deduplication_token: 'rb/bad' }, CDR_SHAPE),
      (err: unknown) => err instanceof PipelineError && err.code === 'record_rejected' && /segments/.test(err.message),
    );
    const afterCount = await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table('cdr')}`);
    assert.equal(afterCount[0]!.n, before[0]!.n);
  });
});
