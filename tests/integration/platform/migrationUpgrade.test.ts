/**
 * Migrations on a store that already holds data: a store at version 15 with cdr and held_records rows, then the rest
 * applied. Migration 16 (null_fields) is a metadata-only ADD COLUMN: old rows read 0 (their absent fields as they
 * were stored), new rows go in with the new column through RowBinary, and both read back side by side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../services/platform/config/config.ts';
import { openStorage, type Storage } from '../../../services/platform/clickhouse/storage.ts';
import { applyMigrations, MIGRATIONS } from '../../../services/platform/clickhouse/migrations.ts';
import { CDR_SHAPE, Pseudonymiser } from '../../../services/core/pseudonym/pseudonymise.ts';
import { deriveMonthKey } from '../../../services/core/pseudonym/monthKeys.ts';
import { restoredRecord, type RecordMetadataRow } from '../../../services/platform/identity/identityLookup.ts';
import type { CdrEvent } from '../../../services/core/cdr/cdrEvent.ts';

const t = Date.UTC(2026, 10, 15, 9);
const event: CdrEvent = {
  cdr_id: 'new-1',
  account_id: 'acct-1',
  sender: 'BRAND',
  recipient: '+60123456789',
  sender_type: 'alphanumeric',
  event_time: t,
  submitted_at: t,
  delivered_at: null,
  channel: 'voice',
  direction: 'mt',
  provider_id: 'op-1',
  mcc: null,
  mnc: null,
  destination_country: 'MY',
  ported: false,
  status: 'delivered',
  error_code: null,
  segments: 1,
  size_bytes: 0,
  duration_ms: null,
  price: 0,
  cost: 0,
  currency: '',
  client_ip: null,
};

describe('migrations over a populated store (16: null_fields; 22: cdr merges)', () => {
  let storage: Storage;
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cdr-upgrade-'));
    const config = loadConfig({ CLICKHOUSE_DATABASE: `cdr_up_${randomBytes(4).toString('hex')}` });
    storage = await openStorage(config.clickhouse, dataDir);
    assert.deepEqual(
      await applyMigrations(
        storage,
        undefined,
        MIGRATIONS.filter((m) => m.version <= 15),
      ),
      [...Array(15).keys()].map((i) => i + 1),
    );
    // Rows as the release before wrote them: no null_fields column yet.
    await storage.command(
      `INSERT INTO ${storage.table('cdr')} (cdr_id, account_id, event_time, submitted_at, channel, direction, sender_type, recipient_type, sender_token, recipient_token,
         provider_id, mcc, mnc, destination_country, status, error_code, segments, size_bytes, duration_ms, currency, client_ip, src_topic, src_offset, ingested_at)
       VALUES ('old-1', 'acct-1', '2026-11-10 10:00:00.000', '2026-11-10 10:00:00.000', 'voice', 'mt', 'alphanumeric', 'msisdn', 'tok-s', 'tok-r',
         'op-1', '', '', 'MY', 'delivered', '', 1, 0, 0, '', '', 'cdr.raw', 1, '2026-11-10 10:00:01.000')`,
    );
    await storage.command(
      `INSERT INTO ${storage.table('held_records')} (hold_id, cdr_id, event_time, account_id, channel, direction, sender_type, recipient_type,
         sender_sealed, recipient_sealed, status, duration_ms, provider_id, destination_country, mcc, mnc, segments, copied_at)
       VALUES ('hold-1', 'old-1', '2026-11-10 10:00:00.000', 'acct-1', 'voice', 'mt', 'alphanumeric', 'msisdn', 's', 'r', 'delivered', 0, 'op-1', 'MY', '', '', 1,
         '2026-11-11 00:00:00.000')`,
    );
    assert.deepEqual(await applyMigrations(storage), [16, 17, 18, 19, 20, 21, 22]);
  });

  after(async () => {
    await storage?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('cdr merges less eagerly (22: merge_selector_base 25); the tables the law-enforcement request reads keep the default', async () => {
    const settings = async (table: string): Promise<string> => {
      const rows = await storage.query<{ engine_full: string }>(`SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}`, {
        db: storage.database,
        name: table,
      });
      assert.equal(rows.length, 1, table);
      return rows[0]!.engine_full;
    };
    assert.match(await settings('cdr'), /merge_selector_base = 25/);
    for (const table of ['subscriber_index', 'identity_vault']) assert.doesNotMatch(await settings(table), /merge_selector_base/, table);
  });

  it('old rows read null_fields 0: an absent duration stays the 0 it was stored as; empty codes read null', async () => {
    for (const table of ['cdr', 'held_records']) {
      const rows = await storage.query<RecordMetadataRow>(`SELECT * FROM ${storage.table(table)} FINAL WHERE cdr_id = 'old-1'`);
      assert.equal(rows.length, 1, table);
      assert.equal(Number(rows[0]!.null_fields), 0, table);
      const r = restoredRecord(rows[0]!, 'BRAND', '+60123456789', 'live');
      assert.deepEqual([r.duration_ms, r.mcc, r.mnc, r.destination_country], [0, null, null, 'MY'], table);
    }
  });

  it('new rows go in through RowBinary with the mask, beside the old ones, and read back null', async () => {
    const key = deriveMonthKey('2026-11', 'k', Buffer.alloc(32, 7));
    const row = new Pseudonymiser().pseudonymise(event, '2026-11', key, 1, { topic: 'cdr.raw', partition: 0, offset: '2' }, t).row;
    await storage.insert('cdr', [row], { insert_deduplication_token: 'upgrade/new' }, CDR_SHAPE);
    const rows = await storage.query<RecordMetadataRow>(`SELECT * FROM ${storage.table('cdr')} FINAL ORDER BY cdr_id`);
    assert.deepEqual(
      rows.map((r) => r.cdr_id),
      ['new-1', 'old-1'],
    );
    const r = restoredRecord(rows[0]!, 'BRAND', '+60123456789', 'live');
    assert.deepEqual([r.duration_ms, r.mcc, r.mnc, r.destination_country], [null, null, null, 'MY']);
  });
});
