/**
 * The storage insert path against the real engine (embedded chDB, or CLICKHOUSE_URL): rows arrive intact
 * (quotes, newlines, non-ASCII, nulls), a deduplication token applies to its own statement only, and a
 * refused insert is a typed storage error naming the table.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../services/platform/config/config.ts';
import { insertJsonCompactBytes, jsonEachRow, openStorage, type RowShape, type Storage } from '../../../services/platform/clickhouse/storage.ts';
import { encodeRows, type EncodedRows } from '../../../services/platform/clickhouse/encodedRows.ts';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';

/** A storage on a fresh data directory (or CLICKHOUSE_URL) and database, with one table; `close` removes them. */
async function openProbe(table: string, definition: string): Promise<{ storage: Storage; dataDir: string; close: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdr-storage-'));
  const config = loadConfig({
    CLICKHOUSE_DATABASE: `cdr_storage_${randomBytes(4).toString('hex')}`,
    ...(process.env['CLICKHOUSE_URL'] ? { CLICKHOUSE_URL: process.env['CLICKHOUSE_URL'] } : {}),
  });
  const storage = await openStorage(config.clickhouse, dataDir);
  await storage.command(`CREATE TABLE ${storage.table(table)} ${definition}`);
  return {
    storage,
    dataDir,
    close: async () => {
      await storage.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('storage.insert', () => {
  let storage: Storage;
  let close: () => Promise<void>;
  const table = 'insert_probe';

  before(async () => {
    ({ storage, close } = await openProbe(
      table,
      `(id UInt32, text String, at DateTime64(3, 'UTC'), maybe Nullable(Int64), ok Bool)
      ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100`,
    ));
  });
  after(() => close());

  const count = async (): Promise<number> => Number((await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table(table)}`))[0]!.n);

  it('serialises exactly as JSONEachRow: one JSON object per line', () => {
    const rows = [
      { a: 1, b: 'x\ny' },
      { a: 2, b: null },
    ];
    assert.equal(jsonEachRow(rows).toString(), '{"a":1,"b":"x\\ny"}\n{"a":2,"b":null}\n');
    assert.equal(jsonEachRow([]).toString(), '');
  });

  it('stores strings, timestamps, nulls and booleans intact', async () => {
    const at = Date.UTC(2026, 10, 29, 7, 30, 15, 123);
    const texts = ['quote " and \\ backslash', 'line\nbreak\ttab', 'ünïcödé 東京 📞', ''];
    await storage.insert(
      table,
      texts.map((text, i) => ({ id: i + 1, text, at, maybe: i % 2 ? null : -42, ok: i % 2 === 0 })),
      { insert_deduplication_token: 'probe/intact' },
    );
    const back = await storage.query<{ id: number; text: string; at: string; maybe: string | null; ok: boolean }>(
      `SELECT id, text, toUnixTimestamp64Milli(at) AS at, maybe, ok FROM ${storage.table(table)} WHERE id <= 4 ORDER BY id`,
    );
    assert.deepEqual(
      back.map((r) => r.text),
      texts,
    );
    assert.ok(back.every((r) => Number(r.at) === at));
    assert.deepEqual(
      back.map((r) => (r.maybe === null ? null : Number(r.maybe))),
      [-42, null, -42, null],
    );
    assert.deepEqual(
      back.map((r) => r.ok),
      [true, false, true, false],
    );
  });

  it('a deduplication token applies to its own insert only', async () => {
    const before = await count();
    await storage.insert(table, [{ id: 100, text: 'a', at: 0, maybe: null, ok: true }], { insert_deduplication_token: 'probe/t1' });
    // Different content, same token: dropped as a replay of t1.
    await storage.insert(table, [{ id: 101, text: 'b', at: 0, maybe: null, ok: true }], { insert_deduplication_token: 'probe/t1' });
    assert.equal(await count(), before + 1);
    // No token: must not inherit t1 from the statement before (chDB sessions keep SET values).
    await storage.insert(table, [{ id: 101, text: 'b', at: 0, maybe: null, ok: true }]);
    await storage.insert(table, [{ id: 102, text: 'c', at: 0, maybe: null, ok: true }], { insert_deduplication_token: 'probe/t2' });
    assert.equal(await count(), before + 3);
  });

  it("inserts tuples in a row shape's column order (JSONCompactEachRow)", async () => {
    const shape: RowShape<{ id: number; text: string; ok: boolean; at: number; maybe: number | null }> = {
      columns: ['ok', 'text', 'id', 'at', 'maybe'],
      types: ['Bool', 'String', 'UInt32', 'DateTime64', 'Nullable(DateTime64)'],
      tuple: (r) => [r.ok, r.text, r.id, r.at, r.maybe],
    };
    await storage.insert(
      table,
      [
        { id: 300, text: 'shaped "row"\n', ok: true, at: 5, maybe: 7 },
        { id: 301, text: '', ok: false, at: 6, maybe: null },
      ],
      { insert_deduplication_token: 'probe/shape' },
      shape,
    );
    const back = await storage.query<{ id: number; text: string; ok: boolean; at: string; maybe: string | null }>(
      `SELECT id, text, ok, toUnixTimestamp64Milli(at) AS at, maybe FROM ${storage.table(table)} WHERE id >= 300 ORDER BY id`,
    );
    assert.deepEqual(
      back.map((r) => [r.id, r.text, r.ok, Number(r.at), r.maybe === null ? null : Number(r.maybe)]),
      [
        [300, 'shaped "row"\n', true, 5, 7],
        [301, '', false, 6, null],
      ],
    );
  });

  it('an insert refused for its data is record_rejected (dead-letter), names the table, and writes nothing', async () => {
    const before = await count();
    await assert.rejects(
      storage.insert(table, [
        { id: 200, text: 'ok', at: 0, maybe: null, ok: true },
        { id: 'not a number', text: 'x', at: 0, maybe: null, ok: true },
      ]),
      (err: unknown) => err instanceof PipelineError && err.code === 'record_rejected' && err.message.includes(`insert into ${table}`),
    );
    assert.equal(await count(), before);
  });

  describe("rows serialised elsewhere (ingest's prepare workers)", () => {
    type Probe = { id: number; text: string; ok: boolean; at: number; maybe: number | null };
    const shape: RowShape<Probe> = {
      columns: ['ok', 'text', 'id', 'at', 'maybe'],
      types: ['Bool', 'String', 'UInt32', 'DateTime64', 'Nullable(DateTime64)'],
      tuple: (r) => [r.ok, r.text, r.id, r.at, r.maybe],
    };
    const readBack = async (from: number, to: number): Promise<unknown[][]> =>
      (
        await storage.query<{ id: number; text: string; ok: boolean; at: string; maybe: string | null }>(
          `SELECT id, text, ok, toUnixTimestamp64Milli(at) AS at, maybe FROM ${storage.table(table)} WHERE id BETWEEN {from:UInt32} AND {to:UInt32} ORDER BY id`,
          { from, to },
        )
      ).map((r) => [r.id, r.text, r.ok, Number(r.at), r.maybe === null ? null : Number(r.maybe)]);

    it('takes EncodedRows in its own format, deduplicated by their token like rows as objects', async () => {
      const rows: Probe[] = [
        { id: 400, text: 'encoded "✓"\n\u0000 東京', ok: true, at: 8, maybe: null },
        { id: 401, text: '', ok: false, at: 9, maybe: -3 },
      ];
      const format = storage.shapedInsertFormat;
      const encoded: EncodedRows = { kind: 'encoded', format, body: encodeRows(rows, shape, format), count: 2, digest: 'probe' };
      await storage.insert(table, encoded, { insert_deduplication_token: 'probe/encoded' }, shape);
      await storage.insert(table, encoded, { insert_deduplication_token: 'probe/encoded' }, shape);
      assert.deepEqual(await readBack(400, 401), [
        [400, 'encoded "✓"\n\u0000 東京', true, 8, null],
        [401, '', false, 9, -3],
      ]);
    });

    it('refuses EncodedRows marked rejected (record_rejected) or in the other format (invariant_broken), writing nothing', async () => {
      const before = await count();
      const format = storage.shapedInsertFormat;
      const other = format === 'RowBinary' ? 'JSONCompactEachRow' : 'RowBinary';
      const row: Probe[] = [{ id: 410, text: 'x', ok: true, at: 1, maybe: null }];
      await assert.rejects(
        storage.insert(
          table,
          { kind: 'encoded', format, body: new Uint8Array(0), count: 1, digest: '', rejected: 'a value of column id does not fit UInt32' },
          {},
          shape,
        ),
        (err: unknown) => err instanceof PipelineError && err.code === 'record_rejected' && err.message.includes(table),
      );
      await assert.rejects(
        storage.insert(table, { kind: 'encoded', format: other, body: encodeRows(row, shape, other), count: 1, digest: '' }, {}, shape),
        (err: unknown) => err instanceof PipelineError && err.code === 'invariant_broken',
      );
      assert.equal(await count(), before);
    });

    it('sends JSONCompactEachRow bytes as the body of an INSERT (the path to a ClickHouse server)', async () => {
      const rows: Probe[] = [
        { id: 500, text: 'over "HTTP"\n', ok: true, at: 10, maybe: 4 },
        { id: 501, text: 'ünï', ok: false, at: 11, maybe: null },
      ];
      await insertJsonCompactBytes(storage.client, storage.table(table), shape.columns, encodeRows(rows, shape, 'JSONCompactEachRow'));
      assert.deepEqual(await readBack(500, 501), [
        [500, 'over "HTTP"\n', true, 10, 4],
        [501, 'ünï', false, 11, null],
      ]);
    });
  });
});

describe('storage.queryByIds', () => {
  let storage: Storage;
  let dataDir: string;
  let close: () => Promise<void>;
  const table = 'ids_probe';

  before(async () => {
    ({ storage, dataDir, close } = await openProbe(table, `(id String, n UInt32) ENGINE = MergeTree ORDER BY id`));
  });
  after(() => close());

  const sql = (): string => `SELECT id, n FROM ${storage.table(table)} WHERE id IN {ids:Array(String)} ORDER BY n`;

  it('finds exactly the ids asked for, whatever their bytes, as the query parameter does', async () => {
    // Every printable ASCII character (quotes and backslashes included), the escapes a text parameter needs, non-ASCII,
    // a string longer than 127 bytes (two-byte length), and the empty string.
    const odd = ["it's", 'back\\slash', 'tab\there', 'new\nline', 'nul\u0000byte', 'ünï-€-😀', 'x'.repeat(300), '', "'); DROP TABLE x; --"];
    const printable = Array.from({ length: 95 }, (_, i) => `p${String.fromCharCode(32 + i)}`);
    const stored = [...odd, ...printable, ...Array.from({ length: 3_000 }, (_, i) => `cdr-${i}`)];
    await storage.insert(
      table,
      stored.map((id, n) => ({ id, n })),
    );
    const asked = [...odd, ...printable, ...Array.from({ length: 30_000 }, (_, i) => `cdr-${i * 7}`), 'absent', "absent'"];
    const got = await storage.queryByIds<{ id: string; n: number }>(sql(), asked);
    const expected = stored.map((id, n) => ({ id, n })).filter((r) => asked.includes(r.id));
    assert.equal(got.length, expected.length);
    assert.deepEqual(
      got.map((r) => [r.id, Number(r.n)]),
      expected.map((r) => [r.id, r.n]),
    );
    // The same answer as the ids sent as a query parameter.
    const byParameter = await storage.query<{ id: string; n: number }>(sql(), { ids: asked });
    assert.deepEqual(got, byParameter);
  });

  it('answers nothing for no ids, and refuses a query that does not name them', async () => {
    assert.deepEqual(await storage.queryByIds(sql(), []), []);
    await assert.rejects(storage.queryByIds(`SELECT 1 AS one`, ['a']), (err: unknown) => err instanceof PipelineError && err.code === 'invariant_broken');
  });

  it('leaves no spool file behind (the ids are not kept anywhere)', async () => {
    if (!storage.embedded) return;
    const { readdirSync, existsSync } = await import('node:fs');
    await storage.queryByIds(sql(), ['cdr-1', 'cdr-2']);
    const spools = ['/dev/shm', join(dataDir, 'insert-spool')].filter((d) => existsSync(d));
    const left = spools.flatMap((d) =>
      readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.rowbinary') && f.includes(String(process.pid))),
    );
    assert.deepEqual(left, []);
  });
});
