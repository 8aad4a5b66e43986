/**
 * Benchmark child, the anchor: ClickHouse's own Kafka table engine inside embedded chDB (its own process,
 * its own data directory). Kafka table (format AvroConfluent, schemas from the benchmark's mini registry)
 * → materialized view that applies a keyed hash to sender and recipient → the project's real `cdr` table
 * (openStorage + applyMigrations). Measures from the moment the view is attached (consumption starts)
 * until count() of `cdr` reaches the expected number of records.
 *
 * Input: env BENCH_ANCHOR (JSON, see AnchorParams). Output over IPC: {type:'result', ...AnchorResult}.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../services/platform/config/config.ts';
import { openStorage } from '../../services/platform/clickhouse/storage.ts';
import { applyMigrations } from '../../services/platform/clickhouse/migrations.ts';
import { cpuSecondsBetween, selfUsage, sleep, type ChildUsage } from '../lib/proc.ts';

export interface AnchorParams {
  brokers: string;
  topic: string;
  group: string;
  registryUrl: string;
  records: number;
  dataDir: string;
  /** Extra Kafka engine SETTINGS, e.g. "kafka_num_consumers = 2, kafka_max_block_size = 262144". */
  settings: string;
  /** Token function: 'hmac' = HMAC-SHA-256 truncated to 128 bits (what ingest computes), 'siphash' = sipHash128Keyed. */
  hash: 'hmac' | 'siphash';
  timeoutMs: number;
}

export interface AnchorResult {
  type: 'result';
  clickhouseVersion: string;
  records: number;
  seconds: number;
  firstRowSeconds: number | undefined;
  /** Rate over the records after the first quarter (excludes consumer-group join and the first blocks). */
  steadyRecordsPerSecond: number | undefined;
  cpuSeconds: number;
  usage: ChildUsage;
  settings: string;
  hash: string;
}

const params = JSON.parse(process.env['BENCH_ANCHOR'] ?? '{}') as AnchorParams;
const config = loadConfig({ CLICKHOUSE_DATABASE: 'anchor', CDR_LOG_LEVEL: 'warn' });
const storage = await openStorage(config.clickhouse, params.dataDir);
try {
  await applyMigrations(storage);
  // The anchor writes cdr only, as in earlier reports: without the subscriber_index view of migration 4,
  // which ours pays for on every cdr insert (conservative: the anchor does less work than ours).
  await storage.command(`DROP VIEW IF EXISTS ${storage.table('subscriber_index_from_cdr')}`);
  const version = (await storage.query<{ v: string }>('SELECT version() AS v'))[0]?.v ?? '?';
  const t = (name: string): string => storage.table(name);
  const key = randomBytes(32).toString('hex');
  const k0 = randomBytes(8).readBigUInt64LE();
  const k1 = randomBytes(8).readBigUInt64LE();
  const token = (expr: string): string =>
    params.hash === 'siphash'
      ? `lower(hex(sipHash128Keyed((toUInt64(${k0}), toUInt64(${k1})), ${expr})))`
      : `lower(hex(substring(HMAC('SHA256', ${expr}, unhex('${key}')), 1, 16)))`;
  const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  await storage.command(`CREATE TABLE ${t('cdr_queue')} (
      cdr_id String, account_id String, sender String, recipient String, sender_type String,
      event_time DateTime64(3, 'UTC'), submitted_at DateTime64(3, 'UTC'), delivered_at Nullable(DateTime64(3, 'UTC')),
      channel String, direction String, provider_id String, mcc Nullable(String), mnc Nullable(String),
      destination_country Nullable(String), ported Bool, status String, error_code Nullable(String),
      segments Int32, size_bytes Int32, duration_ms Nullable(Int64), price Int64, cost Int64, currency String, client_ip Nullable(String)
    ) ENGINE = Kafka SETTINGS kafka_broker_list = ${q(params.brokers)}, kafka_topic_list = ${q(params.topic)},
      kafka_group_name = ${q(params.group)}, kafka_format = 'AvroConfluent',
      format_avro_schema_registry_url = ${q(params.registryUrl)}${params.settings ? `, ${params.settings}` : ''}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await storage.command(`CREATE MATERIALIZED VIEW ${t('cdr_queue_mv')} TO ${t('cdr')} AS
    SELECT cdr_id, account_id, event_time, submitted_at, delivered_at, channel, direction, sender_type,
      multiIf(channel = 'email', 'email', channel = 'push', 'other', 'msisdn') AS recipient_type,
      ${token(`concat(sender_type, ':', sender)`)} AS sender_token,
      ${token(`concat(recipient_type, ':', recipient)`)} AS recipient_token,
      true AS sender_valid, true AS recipient_valid, '' AS sender_country,
      provider_id, ifNull(mcc, '') AS mcc, ifNull(mnc, '') AS mnc, upper(ifNull(destination_country, '')) AS destination_country,
      ported, status, ifNull(error_code, '') AS error_code, toUInt32(segments) AS segments, toUInt32(size_bytes) AS size_bytes,
      toUInt64(ifNull(duration_ms, 0)) AS duration_ms, price, cost, currency, ifNull(client_ip, '') AS client_ip,
      false AS late, toUInt32(1) AS schema_id, _topic AS src_topic, toUInt32(_partition) AS src_partition, _offset AS src_offset,
      now64(3) AS ingested_at
    FROM ${t('cdr_queue')}`);
  let firstRowSeconds: number | undefined;
  let quarter: { at: number; n: number } | undefined;
  let n = 0;
  for (;;) {
    n = Number((await storage.query<{ n: string }>(`SELECT count() AS n FROM ${t('cdr')}`))[0]?.n ?? 0);
    const dt = (performance.now() - t0) / 1000;
    if (n > 0 && firstRowSeconds === undefined) firstRowSeconds = dt;
    if (n >= params.records / 4 && n < params.records && quarter === undefined) quarter = { at: dt, n };
    if (n >= params.records) break;
    if (dt * 1000 > params.timeoutMs) throw new Error(`Kafka engine stored ${n} of ${params.records} records before the timeout`);
    await sleep(100);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpuSecondsBetween(cpu0, process.cpuUsage());
  const usage = selfUsage();
  await storage.command(`DROP TABLE ${t('cdr_queue_mv')}`);
  await storage.command(`DROP TABLE ${t('cdr_queue')}`);
  const steadyRecordsPerSecond = quarter && seconds > quarter.at ? (n - quarter.n) / (seconds - quarter.at) : undefined;
  const result: AnchorResult = {
    type: 'result',
    clickhouseVersion: version,
    records: n,
    seconds,
    firstRowSeconds,
    steadyRecordsPerSecond,
    cpuSeconds,
    usage,
    settings: params.settings,
    hash: params.hash,
  };
  process.send?.(result);
} finally {
  await storage.close();
}
process.exit(0);
