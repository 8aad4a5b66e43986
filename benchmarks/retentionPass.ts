/**
 * How long one retention pass takes on a table of a few million rows (embedded ClickHouse).
 * Fills cdr / identity_vault / subscriber_index / month_keys directly with SQL (ingest is measured
 * elsewhere), spread over 24 months ending now, then runs a dry pass and a real pass at the real now
 * and a second (idempotent) pass.
 *
 *   node --import tsx benchmarks/retentionPass.ts [rows=3000000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { signerFromPrivateKey } from '../services/platform/signing/index.ts';
import { loadConfig } from '../services/platform/config/config.ts';
import { createLogger } from '../services/platform/observability/logger.ts';
import { generateMonthKey, wrapMonthKey } from '../services/core/pseudonym/monthKeys.ts';
import { addMonthsUtc, monthKeyOf, startOfMonthUtc } from '../services/core/retention/retentionCalendar.ts';
import { openRuntime, requireStorage } from '../services/platform/runtime/runtime.ts';
import { createRetention } from '../services/retention/wiring.ts';

const rows = Number(process.argv[2] ?? 3_000_000);
const dataDir = mkdtempSync(join(tmpdir(), 'cdr-bench-retention-'));
const masterKey = randomBytes(32);
const config = loadConfig({ CDR_DATA_DIR: dataDir, CDR_MASTER_KEY: masterKey.toString('base64'), CDR_LOG_LEVEL: 'warn' });
const rt = await openRuntime(config, { needKafka: false, log: createLogger('warn') });
try {
  const { storage } = requireStorage(rt);
  // Data: the last 24 months. The pass runs 12 months ahead, so the 12 months whose tokens still exist
  // today (the column TTL already cleared older ones, as it would in production) expire in this pass.
  const realNow = Date.now();
  const start = addMonthsUtc(startOfMonthUtc(realNow), -23);
  const span = realNow - start;
  const now = addMonthsUtc(startOfMonthUtc(realNow), 12);
  const t0 = Date.now();
  // The index is filled explicitly below from the stored (TTL-cleared) tokens, as before migration 4; the
  // view would index the tokens as inserted, before the column TTL cleared the old ones.
  await storage.command(`DETACH TABLE ${storage.table('subscriber_index_from_cdr')}`);
  // Tokens are random hex; the column TTL would clear old ones at insert, so the oldest months start without tokens (as in production).
  await storage.command(
    `INSERT INTO ${storage.table('cdr')} (cdr_id, account_id, event_time, submitted_at, channel, direction, sender_type, recipient_type, sender_token, recipient_token, provider_id, destination_country, status, segments, price, cost, currency, client_ip, src_topic, src_partition, src_offset, ingested_at)
    SELECT toString(generateUUIDv4()), concat('acct-', toString(number % 500)), fromUnixTimestamp64Milli(toInt64(${start} + (number * ${Math.floor(span / rows)}))),
           fromUnixTimestamp64Milli(toInt64(${start} + (number * ${Math.floor(span / rows)}))), 'sms', 'mt', 'alphanumeric', 'msisdn',
           hex(sipHash128(number, 's')), hex(sipHash128(number, 'r')), 'op-my-maxis', 'MY', 'delivered', 1, 25000, 12000, 'EUR', '192.0.2.1', 'cdr.raw', 0, number, now64(3)
    FROM numbers(${rows})`,
    undefined,
    { max_partitions_per_insert_block: '1000' },
  );
  for (const role of ['sender', 'recipient']) {
    await storage.command(
      `INSERT INTO ${storage.table('subscriber_index')} (month, token, role, event_time, cdr_id, account_id)
      SELECT toStartOfMonth(event_time), ${role}_token, '${role}', event_time, cdr_id, account_id FROM ${storage.table('cdr')} WHERE ${role}_token != ''`,
      undefined,
      { max_partitions_per_insert_block: '1000' },
    );
  }
  await storage.command(`ATTACH TABLE ${storage.table('subscriber_index_from_cdr')}`);
  await storage.command(
    `INSERT INTO ${storage.table('identity_vault')} (month, token, id_type, sealed, valid, first_seen)
    SELECT month, token, 'msisdn', base64Encode(token), true, min(event_time) FROM ${storage.table('subscriber_index')} GROUP BY month, token`,
    undefined,
    { max_partitions_per_insert_block: '1000' },
  );
  const keys = [];
  for (let m = start; m <= realNow; m = addMonthsUtc(m, 1))
    keys.push({
      month: `${monthKeyOf(m)}-01`,
      key_id: randomBytes(8).toString('hex'),
      wrapped_key: wrapMonthKey(masterKey, monthKeyOf(m), generateMonthKey()),
      created_at: m,
    });
  await storage.insert('month_keys', keys);
  const fill = Date.now() - t0;
  const count = async (t: string): Promise<number> => Number((await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table(t)}`))[0]?.n ?? 0);
  const sizes = {
    cdr: await count('cdr'),
    subscriber_index: await count('subscriber_index'),
    identity_vault: await count('identity_vault'),
    month_keys: await count('month_keys'),
  };
  const { pass } = createRetention(rt, { signer: signerFromPrivateKey(generateKeyPairSync('ed25519').privateKey, 'file', 'bench') });
  let t = Date.now();
  const dry = await pass.run({ now, dryRun: true });
  const dryMs = Date.now() - t;
  t = Date.now();
  const real = await pass.run({ now, dryRun: false });
  const realMs = Date.now() - t;
  t = Date.now();
  const again = await pass.run({ now, dryRun: false });
  const againMs = Date.now() - t;
  const summary = {
    rows_requested: rows,
    fill_ms: fill,
    sizes,
    dry_run_ms: dryMs,
    pass_ms: realMs,
    second_pass_ms: againMs,
    second_pass_actions: again.actions.length,
    actions: real.actions.map((a) => `${a.class} ${a.month} rows=${a.rows} keys=${a.keys_destroyed} verified=${a.verified}`),
    dry_actions: dry.actions.length,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await rt.close();
  rmSync(dataDir, { recursive: true, force: true });
}
