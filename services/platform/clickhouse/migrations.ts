import type { Logger } from 'pino';
import type { Storage } from './storage.ts';

/**
 * Versioned, idempotent schema migrations, applied at start-up in order. Each statement is written with
 * IF NOT EXISTS so a migration interrupted half-way can simply run again. Applied versions are recorded
 * in `schema_migrations`. With CLICKHOUSE_CLUSTER set, tables are created ON CLUSTER with Replicated engines.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: (ctx: DdlContext) => string[];
}

export interface DdlContext {
  readonly t: (name: string) => string;
  readonly on: string;
  readonly engine: (kind: 'MergeTree' | 'ReplacingMergeTree' | 'SummingMergeTree', table: string, args?: string) => string;
  /** True when tables are created ON CLUSTER (Replicated engines; no node-local engines such as EmbeddedRocksDB). */
  readonly clustered: boolean;
  readonly options: MigrationOptions;
}

export interface MigrationOptions {
  /** How long a stored cdr_id is remembered for duplicate detection (at least cdr.raw's retention plus a day). */
  readonly dedupHorizonSeconds: number;
}

export const DEFAULT_MIGRATION_OPTIONS: MigrationOptions = { dedupHorizonSeconds: 96 * 3600 };

/** The duplicate horizon for a raw-topic retention: that retention plus a day, and never under 96 hours. */
export function dedupHorizonSecondsFor(rawRetentionHours: number): number {
  return Math.max(96, rawRetentionHours + 24) * 3600;
}

/** How many recent insert blocks each table remembers for insert deduplication (exactly-once replays). */
export const DEDUP_WINDOW_BLOCKS = 10_000;

const utc = "DateTime64(3, 'UTC')";

/**
 * Tables that hold identifiers, tokens or client IPs: a part replaced by a merge or a mutation goes a second later, by
 * a cleanup that looks every second (migration 11 says why). Given at creation too, so a new table starts with it: a
 * table altered later keeps the cleanup schedule it had (up to ~40 s) until its first round.
 */
const PROMPT_CLEANUP = 'old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1, cleanup_delay_period_random_add = 0';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'streaming core: keys, identity vault, subscriber index, 10-year cdr, ingest batches',
    statements: ({ t, on, engine }) => [
      // Wrapped month keys. One partition per month so destroying a key is an exact partition drop.
      `CREATE TABLE IF NOT EXISTS ${t('month_keys')}${on} (
        month Date, key_id String, wrapped_key String, created_at ${utc}
      ) ENGINE = ${engine('MergeTree', 'month_keys')} PARTITION BY toYYYYMM(month) ORDER BY (month, key_id)
      SETTINGS ${PROMPT_CLEANUP}, non_replicated_deduplication_window = 1000`,
      // Tombstones of destroyed month keys: a month here can never get a key again (late records stay anonymous).
      `CREATE TABLE IF NOT EXISTS ${t('destroyed_months')}${on} (
        month Date, destroyed_at ${utc}, reason LowCardinality(String)
      ) ENGINE = ${engine('ReplacingMergeTree', 'destroyed_months')} ORDER BY month`,
      // Identifiers, encrypted under their month's vault key. Expiry = DROP PARTITION + key destruction.
      `CREATE TABLE IF NOT EXISTS ${t('identity_vault')}${on} (
        month Date, token String, id_type LowCardinality(String), sealed String, valid Bool, first_seen ${utc}
      ) ENGINE = ${engine('ReplacingMergeTree', 'identity_vault')} PARTITION BY toYYYYMM(month) ORDER BY token
      SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW_BLOCKS}, ${PROMPT_CLEANUP}`,
      // token -> the records it appears in, for the identifier window only.
      `CREATE TABLE IF NOT EXISTS ${t('subscriber_index')}${on} (
        month Date, token String, role Enum8('sender' = 1, 'recipient' = 2), event_time ${utc}, cdr_id String, account_id LowCardinality(String)
      ) ENGINE = ${engine('ReplacingMergeTree', 'subscriber_index')} PARTITION BY toYYYYMM(month) ORDER BY (token, event_time, cdr_id, role)
      SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW_BLOCKS}, ${PROMPT_CLEANUP}`,
      // Identifier-free traffic metadata for 10 years after the year. Token columns die with the identifiers;
      // client_ip (usage data) after 3 years. Column TTLs are the backstop; the retention pass clears them explicitly.
      `CREATE TABLE IF NOT EXISTS ${t('cdr')}${on} (
        cdr_id String,
        account_id LowCardinality(String),
        event_time ${utc},
        submitted_at ${utc},
        delivered_at Nullable(${utc}),
        channel LowCardinality(String),
        direction LowCardinality(String),
        sender_type LowCardinality(String),
        recipient_type LowCardinality(String),
        sender_token String TTL toStartOfMonth(event_time) + INTERVAL 13 MONTH,
        recipient_token String TTL toStartOfMonth(event_time) + INTERVAL 13 MONTH,
        sender_valid Bool,
        recipient_valid Bool,
        sender_country LowCardinality(String),
        provider_id LowCardinality(String),
        mcc LowCardinality(String),
        mnc LowCardinality(String),
        destination_country LowCardinality(String),
        ported Bool,
        status LowCardinality(String),
        error_code LowCardinality(String),
        segments UInt32,
        size_bytes UInt32,
        duration_ms UInt64,
        price Int64,
        cost Int64,
        currency LowCardinality(String),
        client_ip String TTL toDateTime(event_time) + INTERVAL 3 YEAR,
        late Bool,
        schema_id UInt32,
        src_topic LowCardinality(String),
        src_partition UInt32,
        src_offset UInt64,
        ingested_at ${utc}
      ) ENGINE = ${engine('ReplacingMergeTree', 'cdr')}
      PARTITION BY toYYYYMM(event_time)
      ORDER BY (account_id, event_time, cdr_id)
      TTL toStartOfYear(event_time) + INTERVAL 11 YEAR
      SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW_BLOCKS}, ${PROMPT_CLEANUP}, min_compressed_bytes_to_fsync_after_merge = 1`,
      // Batch intents: the exact offset range of each ingest batch is recorded before its writes, so a
      // restart after a crash replays the very same batch and insert deduplication drops what already landed.
      `CREATE TABLE IF NOT EXISTS ${t('ingest_batches')}${on} (
        consumer_group String, topic String, partition UInt32, from_offset UInt64, to_offset UInt64, created_at ${utc}
      ) ENGINE = ${engine('MergeTree', 'ingest_batches')} ORDER BY (consumer_group, topic, partition, from_offset)
      TTL toDateTime(created_at) + INTERVAL 30 DAY`,
    ],
  },
  {
    version: 2,
    name: 'retention: retention log, legal holds, held records, hold keys',
    statements: ({ t, on, engine }) => [
      // One row per retention action: the proof of what was deleted when. Kept as long as the data it accounts for.
      `CREATE TABLE IF NOT EXISTS ${t('retention_log')}${on} (
        run_id String, run_at ${utc}, pass_now ${utc}, class LowCardinality(String), month String,
        rows UInt64, keys_destroyed UInt32, holds_honoured UInt32, verified Bool, detail String
      ) ENGINE = ${engine('MergeTree', 'retention_log')} ORDER BY (run_at, run_id, class, month)
      TTL toDateTime(run_at) + INTERVAL 11 YEAR`,
      // Legal holds. Versioned rows (ReplacingMergeTree on version): placed, then released, then purged.
      // The held identifier is sealed under the hold's own key; never stored in clear.
      `CREATE TABLE IF NOT EXISTS ${t('legal_holds')}${on} (
        hold_id String, case_reference String, reason String, id_type LowCardinality(String), identifier_sealed String,
        from_time ${utc}, to_time ${utc}, state LowCardinality(String), placed_at ${utc}, placed_by String,
        released_at Nullable(${utc}), released_by String, purged_at Nullable(${utc}), version UInt64
      ) ENGINE = ${engine('ReplacingMergeTree', 'legal_holds', 'version')} ORDER BY hold_id`,
      // The lifecycle of every hold, append-only.
      `CREATE TABLE IF NOT EXISTS ${t('legal_hold_events')}${on} (
        hold_id String, at ${utc}, event LowCardinality(String), actor String, detail String
      ) ENGINE = ${engine('MergeTree', 'legal_hold_events')} ORDER BY (hold_id, at)`,
      // Each hold's key, wrapped under the master key; one partition per hold so purge destroys it exactly.
      `CREATE TABLE IF NOT EXISTS ${t('hold_keys')}${on} (
        hold_id String, wrapped_key String, created_at ${utc}
      ) ENGINE = ${engine('MergeTree', 'hold_keys')} PARTITION BY hold_id ORDER BY hold_id SETTINGS ${PROMPT_CLEANUP}`,
      // Copies of the records a hold preserves, identifiers sealed under the hold key. Partition per hold.
      `CREATE TABLE IF NOT EXISTS ${t('held_records')}${on} (
        hold_id String, cdr_id String, event_time ${utc}, account_id String, channel LowCardinality(String),
        direction LowCardinality(String), sender_type LowCardinality(String), recipient_type LowCardinality(String),
        sender_sealed String, recipient_sealed String, status LowCardinality(String), duration_ms UInt64,
        provider_id LowCardinality(String), destination_country LowCardinality(String), mcc LowCardinality(String), mnc LowCardinality(String),
        segments UInt32, copied_at ${utc}
      ) ENGINE = ${engine('ReplacingMergeTree', 'held_records')} PARTITION BY hold_id ORDER BY (cdr_id) SETTINGS ${PROMPT_CLEANUP}`,
    ],
  },
  {
    version: 3,
    name: 'crypto-shredding: remove dropped parts of key and identifier tables within seconds, not 8 minutes',
    statements: ({ t, on }) =>
      ['month_keys', 'identity_vault', 'subscriber_index', 'hold_keys', 'held_records'].map(
        (table) => `ALTER TABLE ${t(table)}${on} MODIFY SETTING old_parts_lifetime = 1`,
      ),
  },
  {
    version: 4,
    name: 'subscriber index written by the engine from each cdr insert (materialized view)',
    statements: ({ t, on }) => [
      // Ingest used to serialise two index rows per record in Node and insert them separately; the engine
      // derives them from the cdr block it is already writing (benchmarks/RESULTS.md: less CPU on both sides).
      // Late records (identifier window closed) carry no tokens and get no index rows, as before. A cdr insert
      // replayed after a crash is deduplicated in cdr and the view still re-runs into the index, which
      // deduplicates by itself (deduplicate_blocks_in_dependent_materialized_views), so a crash between the
      // two writes loses nothing and doubles nothing (tests/integration/ingestCrash.test.ts).
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${t('subscriber_index_from_cdr')}${on} TO ${t('subscriber_index')} AS
        SELECT toStartOfMonth(event_time) AS month, token, role, event_time, cdr_id, account_id
        FROM ${t('cdr')}
        ARRAY JOIN [sender_token, recipient_token] AS token, ['sender', 'recipient'] AS role
        WHERE sender_token != '' AND recipient_token != ''`,
    ],
  },
  {
    version: 5,
    name: 'any-partition duplicates: cdr_ids keyed by cdr_id (written by the engine from each cdr insert); batch decisions',
    statements: ({ t, on, engine, clustered, options }) => [
      // Where each cdr_id was first stored, for duplicate detection whatever the partition. A key-value table
      // (RocksDB): a batch's 5,000 lookups take ~15 ms against 20M keys, where a MergeTree ordered by cdr_id took
      // ~240 ms (docs/decisions/0015-duplicates-across-partitions.md). Entries expire after the horizon. RocksDB
      // tables are local to a node, so a cluster uses a replicated MergeTree instead (slower lookups).
      clustered
        ? `CREATE TABLE IF NOT EXISTS ${t('cdr_ids')}${on} (cdr_id String, src_topic String, src_partition UInt32, src_offset UInt64, stored_at ${utc} DEFAULT now64(3))
           ENGINE = ${engine('ReplacingMergeTree', 'cdr_ids')} ORDER BY cdr_id TTL toDateTime(stored_at) + INTERVAL ${options.dedupHorizonSeconds} SECOND
           SETTINGS index_granularity = 256`
        : `CREATE TABLE IF NOT EXISTS ${t('cdr_ids')} (cdr_id String, src_topic String, src_partition UInt32, src_offset UInt64)
           ENGINE = EmbeddedRocksDB(${options.dedupHorizonSeconds}) PRIMARY KEY cdr_id`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${t('cdr_ids_from_cdr')}${on} TO ${t('cdr_ids')} AS
        SELECT cdr_id, src_topic, src_partition, src_offset FROM ${t('cdr')}`,
      // What was stored before this migration, within the horizon.
      `INSERT INTO ${t('cdr_ids')} (cdr_id, src_topic, src_partition, src_offset)
        SELECT cdr_id, src_topic, src_partition, src_offset FROM ${t('cdr')}
        WHERE ingested_at >= now64(3, 'UTC') - INTERVAL ${options.dedupHorizonSeconds} SECOND`,
      // The handler's decisions for a batch, recorded with its offset range, so a replay decides the same.
      `ALTER TABLE ${t('ingest_batches')}${on} ADD COLUMN IF NOT EXISTS decisions String DEFAULT ''`,
    ],
  },
  {
    version: 6,
    name: 'retention log records who ran each pass',
    statements: ({ t, on }) => [`ALTER TABLE ${t('retention_log')}${on} ADD COLUMN IF NOT EXISTS actor String DEFAULT ''`],
  },
  {
    version: 7,
    name: 'internal API: audit trail with signed checkpoints, disclosure requests, confidential holds',
    statements: ({ t, on, engine }) => [
      // Append-only, hash-chained (core/audit/auditChain.ts). Identifiers never: a keyed token of the subject under
      // the month key of subject_month, unlinkable once that key is destroyed. Usage data: whole months go 36 months on.
      `CREATE TABLE IF NOT EXISTS ${t('audit_log')}${on} (
        chain LowCardinality(String), seq UInt64, at ${utc}, prev_at Nullable(${utc}),
        actor String, roles String, action LowCardinality(String), method LowCardinality(String), route String, status UInt16,
        outcome LowCardinality(String), authority String, case_reference String, legal_basis String, request_id String,
        subject_type LowCardinality(String), subject_token String, subject_month String, rows UInt64, confidential Bool,
        client_ip String, detail String, prev_hash String, hash String
      ) ENGINE = ${engine('MergeTree', 'audit_log')} PARTITION BY toYYYYMM(at) ORDER BY (chain, seq)
      TTL toStartOfMonth(at) + INTERVAL 36 MONTH`,
      // Signed statements "entry seq of chain has this hash", written after each burst of entries and periodically.
      `CREATE TABLE IF NOT EXISTS ${t('audit_checkpoints')}${on} (
        chain LowCardinality(String), seq UInt64, hash String, at ${utc}, kind LowCardinality(String), key_id String, signature String
      ) ENGINE = ${engine('MergeTree', 'audit_checkpoints')} PARTITION BY toYYYYMM(at) ORDER BY (chain, seq, at)
      TTL toStartOfMonth(at) + INTERVAL 36 MONTH`,
      // Law-enforcement requests and data-subject exports: what was asked, by whom, the outcome. No identifier: a token
      // like the audit's; the signed receipt (digests of the answer) is sealed under the same month key.
      `CREATE TABLE IF NOT EXISTS ${t('disclosure_requests')}${on} (
        request_id String, kind LowCardinality(String), requested_at ${utc}, requested_by String, authority String,
        case_reference String, legal_basis String, confidential Bool, id_type LowCardinality(String), from_time ${utc}, to_time ${utc},
        answer_format LowCardinality(String), status LowCardinality(String), record_count UInt64, months String,
        subject_token String, subject_month String, receipt_sealed String, finished_at Nullable(${utc}), version UInt64
      ) ENGINE = ${engine('ReplacingMergeTree', 'disclosure_requests', 'version')} PARTITION BY toYYYYMM(requested_at) ORDER BY request_id
      TTL toStartOfMonth(requested_at) + INTERVAL 36 MONTH`,
      `ALTER TABLE ${t('legal_holds')}${on} ADD COLUMN IF NOT EXISTS confidential Bool DEFAULT false`,
    ],
  },
  {
    version: 8,
    name: 'billing: rated records, plans, statements, adjustments, re-rating runs',
    statements: ({ t, on, engine }) => [
      // One row per CDR and rating revision (0 = as first rated; a re-rate writes its run time). Reads take FINAL, so a
      // record published twice (at-least-once from ingest, any partition) counts once and the newest revision wins.
      // Identifier-free traffic data (number ranges, never numbers or tokens): kept as `cdr` is.
      `CREATE TABLE IF NOT EXISTS ${t('billing_rated')}${on} (
        account_id String, event_time ${utc}, cdr_id String, revision UInt64,
        channel LowCardinality(String), direction LowCardinality(String), status LowCardinality(String),
        destination_country LowCardinality(String), recipient_range String, recipient_number_type LowCardinality(String),
        provider_id String, segments UInt32, duration_ms UInt64,
        event_price Int64, event_cost Int64, event_currency LowCardinality(String),
        rated Bool, unrated_reason LowCardinality(String), currency LowCardinality(String), amount_micros Int64, cost_micros Int64,
        billable_seconds UInt64, plan_id String, plan_version UInt32, basis String,
        rated_at ${utc}, src_partition Int32, src_offset String
      ) ENGINE = ${engine('ReplacingMergeTree', 'billing_rated', 'revision')} PARTITION BY toYYYYMM(event_time)
      ORDER BY (account_id, event_time, cdr_id)
      TTL toStartOfYear(event_time) + INTERVAL 11 YEAR`,
      // Figures a re-rate replaced: the original stays on record with the run that replaced it.
      `CREATE TABLE IF NOT EXISTS ${t('billing_rated_history')}${on} (
        rerate_id String, account_id String, event_time ${utc}, cdr_id String, revision UInt64,
        rated Bool, currency LowCardinality(String), amount_micros Int64, cost_micros Int64, plan_id String, plan_version UInt32
      ) ENGINE = ${engine('MergeTree', 'billing_rated_history')} PARTITION BY toYYYYMM(event_time) ORDER BY (account_id, event_time, cdr_id, revision)
      TTL toStartOfYear(event_time) + INTERVAL 11 YEAR`,
      `CREATE TABLE IF NOT EXISTS ${t('billing_plans')}${on} (
        plan_id String, version UInt32, active_from ${utc}, active_to Nullable(${utc}), currency LowCardinality(String),
        digest String, body String, source String, loaded_at ${utc}
      ) ENGINE = ${engine('ReplacingMergeTree', 'billing_plans')} ORDER BY (plan_id, version)`,
      `CREATE TABLE IF NOT EXISTS ${t('billing_rerates')}${on} (
        rerate_id String, at ${utc}, actor String, from_time ${utc}, to_time ${utc}, account_id String, plan_id String,
        records UInt64, changed UInt64, before String, after String
      ) ENGINE = ${engine('MergeTree', 'billing_rerates')} ORDER BY (at, rerate_id)`,
      // Closed statements: frozen bodies with their digests. A month is closed once; nothing here is ever updated.
      `CREATE TABLE IF NOT EXISTS ${t('billing_statements')}${on} (
        month String, account_id String, closed_at ${utc}, closed_by String, body String, digest String
      ) ENGINE = ${engine('MergeTree', 'billing_statements')} ORDER BY (month, account_id)`,
      `CREATE TABLE IF NOT EXISTS ${t('billing_closures')}${on} (
        month String, closed_at ${utc}, closed_by String, accounts UInt64, digest String
      ) ENGINE = ${engine('MergeTree', 'billing_closures')} ORDER BY month`,
      // What changed in a closed month after it closed, carried by the statement of a later month.
      `CREATE TABLE IF NOT EXISTS ${t('billing_adjustments')}${on} (
        adjustment_id String, account_id String, currency LowCardinality(String), concerns_month String, applies_to_month String,
        records Int64, segments Int64, amount_micros Int64, cost_micros Int64, reason String, created_at ${utc}
      ) ENGINE = ${engine('MergeTree', 'billing_adjustments')} ORDER BY (account_id, applies_to_month, adjustment_id)`,
    ],
  },
  {
    version: 9,
    name: 'billing: daily aggregates as views over the rated records',
    statements: ({ t, on }) => [
      // Views, not summing tables: the figures are always the sum over billing_rated FINAL (ADR 0024).
      `CREATE VIEW IF NOT EXISTS ${t('billing_usage_daily')}${on} AS
       SELECT account_id, toDate(event_time, 'UTC') AS day, channel, destination_country, status, currency,
              count() AS records, sum(segments) AS segments, sum(duration_ms) AS duration_ms, sum(billable_seconds) AS billable_seconds,
              sum(amount_micros) AS amount_micros, sum(cost_micros) AS cost_micros
       FROM ${t('billing_rated')} FINAL WHERE rated
       GROUP BY account_id, day, channel, destination_country, status, currency`,
      `CREATE VIEW IF NOT EXISTS ${t('billing_provider_daily')}${on} AS
       SELECT provider_id, toDate(event_time, 'UTC') AS day, destination_country, currency,
              count() AS records, sum(segments) AS segments, sum(billable_seconds) AS billable_seconds, sum(cost_micros) AS cost_micros
       FROM ${t('billing_rated')} FINAL WHERE rated
       GROUP BY provider_id, day, destination_country, currency`,
    ],
  },
  {
    version: 10,
    name: 'fraud: alerts',
    statements: ({ t, on, engine }) => [
      // One row per alert change; the newest (version) is the alert's state. Keys: account, country, range, token at
      // most — never an identifier. Identifier-free traffic data: kept as cdr is.
      `CREATE TABLE IF NOT EXISTS ${t('fraud_alerts')}${on} (
        alert_id String, version UInt64, rule LowCardinality(String), severity LowCardinality(String), state LowCardinality(String),
        account_id String, destination_country LowCardinality(String), range String, token String, token_role LowCardinality(String), risk_score UInt8,
        started_at ${utc}, ended_at ${utc}, detected_at ${utc}, evidence String, changed_at ${utc}
      ) ENGINE = ${engine('ReplacingMergeTree', 'fraud_alerts', 'version')} PARTITION BY toYYYYMM(started_at) ORDER BY alert_id
      TTL toStartOfYear(started_at) + INTERVAL 11 YEAR`,
    ],
  },
  {
    version: 11,
    name: 'retention you can prove: superseded parts of identifier tables go within seconds; one key per month',
    statements: ({ t, on }) => [
      // A part replaced by a merge or a mutation ("outdated") stays on disk until the engine's cleanup thread removes
      // it: by default 8 minutes after it was replaced, and the thread itself may sleep up to 5 minutes. For tables
      // that hold identifiers, tokens or client IPs that is a copy the retention pass cannot vouch for, so they are
      // removed a second after they are replaced, by a cleanup that looks every second, and the pass waits for it
      // (docs/retention.md, "Superseded parts"). Merged cdr parts are fsynced, so removing their sources this early
      // cannot lose rows on a power cut.
      ...['month_keys', 'identity_vault', 'subscriber_index', 'hold_keys', 'held_records', 'cdr'].map(
        (table) => `ALTER TABLE ${t(table)}${on} MODIFY SETTING ${PROMPT_CLEANUP}`,
      ),
      `ALTER TABLE ${t('cdr')}${on} MODIFY SETTING min_compressed_bytes_to_fsync_after_merge = 1`,
      // One key per month: every creator inserts with the insert deduplication token `month-key:<month>`, so the
      // engine keeps the first insert and drops the others; everyone then reads the one key that landed.
      `ALTER TABLE ${t('month_keys')}${on} MODIFY SETTING non_replicated_deduplication_window = 1000`,
    ],
  },
  {
    version: 12,
    name: 'retention: signed, hash-chained destruction record',
    statements: ({ t, on, engine }) => [
      // One row per retention action and one per pass (core/retention/destructionRecord.ts). Each row is signed and
      // names the hash of the one before, so an edit is detected; inserts are deduplicated by seq (a second writer of
      // the same seq is dropped and retries with the next). Kept as long as the traffic data it accounts for.
      `CREATE TABLE IF NOT EXISTS ${t('retention_records')}${on} (
        seq UInt64, prev_hash String, destroyed_at ${utc}, pass_now ${utc}, run_id String, actor String,
        class LowCardinality(String), month String, key_ids Array(String), rows UInt64, keys_destroyed UInt32, holds_honoured UInt32,
        verified Bool, verification String, verification_sha256 String, signer_key_id String, hash String, signature String
      ) ENGINE = ${engine('MergeTree', 'retention_records')} ORDER BY seq
      TTL toStartOfYear(destroyed_at) + INTERVAL 11 YEAR
      SETTINGS non_replicated_deduplication_window = 1000`,
    ],
  },
  {
    version: 13,
    name: 'retention: fraud alert tokens go with their month; the traffic copies in billing and fraud tables go with cdr',
    statements: ({ t, on }) => [
      // The retention pass now drops these tables' partitions past startOfYear + 11 years and clears fraud_alerts.token
      // with its month's identifiers (a mutation): superseded parts go within seconds, as for cdr (migration 11).
      ...['billing_rated', 'billing_rated_history', 'fraud_alerts'].map(
        (table) => `ALTER TABLE ${t(table)}${on} MODIFY SETTING ${PROMPT_CLEANUP}, min_compressed_bytes_to_fsync_after_merge = 1`,
      ),
      // The backstop, as on cdr's token columns: a velocity alert's token is a subscriber's pseudonym of that month.
      // Not materialised on the parts already written: the retention pass clears those tokens, and records it.
      `ALTER TABLE ${t('fraud_alerts')}${on} MODIFY COLUMN token String TTL toStartOfMonth(started_at) + INTERVAL 13 MONTH SETTINGS materialize_ttl_after_modify = 0`,
    ],
  },
  {
    version: 14,
    name: 'retention: a month’s billing documents go with its traffic data',
    statements: ({ t, on }) => [
      // The retention pass deletes the statements, closes, adjustments and re-rate runs of months past startOfYear + 11
      // years by a mutation; the parts it replaces go within seconds, so the pass can say they are gone (migration 11).
      ...['billing_statements', 'billing_closures', 'billing_adjustments', 'billing_rerates'].map(
        (table) => `ALTER TABLE ${t(table)}${on} MODIFY SETTING ${PROMPT_CLEANUP}`,
      ),
    ],
  },
  {
    version: 15,
    name: 'billing and fraud: replayed batches deduplicated by their insert tokens, as ingest’s are',
    statements: ({ t, on }) => [
      // Without a window a MergeTree keeps no block ids, so the consumer loop's insert tokens did nothing here: a replayed
      // batch (a crash or rebalance before its commit) was written again, one physical copy per replay, hidden only by
      // FINAL (found from outside: 3 rows of billing_rated twice after a broker kill).
      ...['billing_rated', 'fraud_alerts'].map(
        (table) => `ALTER TABLE ${t(table)}${on} MODIFY SETTING non_replicated_deduplication_window = ${DEDUP_WINDOW_BLOCKS}`,
      ),
    ],
  },
  {
    version: 16,
    name: 'records keep which of their nullable fields were absent (null), not only the 0 or "" stored in their place',
    statements: ({ t, on }) => [
      // A mask (core/pseudonym NULL_FIELD) rather than Nullable columns: adding a column with a default is a metadata
      // change, while making a column Nullable rewrites it in every part of ten years of data. Rows before it read 0.
      ...['cdr', 'held_records'].map((table) => `ALTER TABLE ${t(table)}${on} ADD COLUMN IF NOT EXISTS null_fields UInt8 DEFAULT 0`),
    ],
  },
  {
    version: 17,
    name: 'billing: the daily views sum money in Int128, as the API does (no total wraps past Int64)',
    statements: ({ t, on }) => [
      `CREATE OR REPLACE VIEW ${t('billing_usage_daily')}${on} AS
       SELECT account_id, toDate(event_time, 'UTC') AS day, channel, destination_country, status, currency,
              count() AS records, sum(segments) AS segments, sum(duration_ms) AS duration_ms, sum(billable_seconds) AS billable_seconds,
              sum(toInt128(amount_micros)) AS amount_micros, sum(toInt128(cost_micros)) AS cost_micros
       FROM ${t('billing_rated')} FINAL WHERE rated
       GROUP BY account_id, day, channel, destination_country, status, currency`,
      `CREATE OR REPLACE VIEW ${t('billing_provider_daily')}${on} AS
       SELECT provider_id, toDate(event_time, 'UTC') AS day, destination_country, currency,
              count() AS records, sum(segments) AS segments, sum(billable_seconds) AS billable_seconds, sum(toInt128(cost_micros)) AS cost_micros
       FROM ${t('billing_rated')} FINAL WHERE rated
       GROUP BY provider_id, day, destination_country, currency`,
    ],
  },
  {
    version: 18,
    name: 'disclosures: the other parties of the records a law-enforcement answer gave out',
    statements: ({ t, on, engine }) => [
      // A data-subject export lists what was disclosed about the person, also as the other party of someone else's
      // records. No identifier: a keyed token of each party, as the audit's subject token (same key, same month), so it
      // can be found while that month key lives and is unlinkable after. Kept as the audit trail is.
      `CREATE TABLE IF NOT EXISTS ${t('disclosure_parties')}${on} (
        request_id String, at ${utc}, party_type LowCardinality(String), party_token String, party_month String, records UInt32
      ) ENGINE = ${engine('MergeTree', 'disclosure_parties')} PARTITION BY toYYYYMM(at) ORDER BY (party_month, party_token, request_id)
      TTL toStartOfMonth(at) + INTERVAL 36 MONTH`,
    ],
  },
  {
    version: 19,
    name: 'fraud: what the detector has learned of each account (warm-up, usual destinations, baselines), kept across restarts',
    statements: ({ t, on, engine }) => [
      // One row per consumer group, the newest kept: account ids, countries and counts, no token or identifier. Without
      // it every restart blinded the account rules for 30 min to 2 h (found from outside).
      `CREATE TABLE IF NOT EXISTS ${t('fraud_learned')}${on} (
        group_id String, saved_at ${utc}, accounts UInt32, state String CODEC(ZSTD(3))
      ) ENGINE = ${engine('ReplacingMergeTree', 'fraud_learned', 'saved_at')} ORDER BY group_id`,
    ],
  },
  {
    version: 20,
    name: "billing: a re-rate's replaced row says whether its figures changed (not only its plan version)",
    statements: ({ t, on }) => [
      // Rows written before say true: the reason `rerate` stays as it was given for them.
      `ALTER TABLE ${t('billing_rated_history')}${on} ADD COLUMN IF NOT EXISTS figures_changed Bool DEFAULT true`,
    ],
  },
  {
    version: 21,
    name: 'disclosure receipts sealed under every key whose identifiers they digest',
    statements: ({ t, on }) => [
      // The shares of a receipt's sealing key, one under each key (core/disclosure/receiptSeal.ts). Rows before: '', their
      // receipt sealed under the request month's key alone.
      `ALTER TABLE ${t('disclosure_requests')}${on} ADD COLUMN IF NOT EXISTS receipt_keys String DEFAULT ''`,
    ],
  },
  {
    version: 22,
    name: 'cdr: fewer merges (merge_selector_base 25)',
    statements: ({ t, on }) => [
      // The engine merges a part set once it adds up to ~base × its largest part (default 5), so each row is rewritten
      // ~log_base(parts) times: 25 rewrites cdr's rows less often, the engine's merge threads ~18% less work per
      // record ingested (benchmarks/results/cdr-merges-2026-12-08.md, ADR 0046). On cdr only: the same on subscriber_index left
      // the month being written with three times the parts, and the law-enforcement request, which reads every part of
      // that month, slower (fewer-merges-2026-12-07.md). Metadata only; ClickHouse ≥ 24.11.
      `ALTER TABLE ${t('cdr')}${on} MODIFY SETTING merge_selector_base = 25`,
    ],
  },
];

export function ddlContext(storage: Storage, options: MigrationOptions = DEFAULT_MIGRATION_OPTIONS): DdlContext {
  return {
    t: (name) => storage.table(name),
    on: storage.onCluster(),
    clustered: storage.cluster !== undefined,
    options,
    engine: (kind, table, args = '') => {
      if (!storage.cluster) return `${kind}(${args})`;
      const path = `'/clickhouse/tables/{shard}/${storage.database}/${table}', '{replica}'`;
      return `Replicated${kind}(${path}${args ? `, ${args}` : ''})`;
    },
  };
}

export async function applyMigrations(
  storage: Storage,
  log?: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
  options: MigrationOptions = DEFAULT_MIGRATION_OPTIONS,
): Promise<number[]> {
  await storage.command(
    `CREATE TABLE IF NOT EXISTS ${storage.table('schema_migrations')}${storage.onCluster()} (version UInt32, name String, applied_at ${utc}) ENGINE = ${ddlContext(storage).engine('ReplacingMergeTree', 'schema_migrations')} ORDER BY version`,
  );
  const done = new Set(
    (await storage.query<{ version: number }>(`SELECT version FROM ${storage.table('schema_migrations')} FINAL`)).map((r) => Number(r.version)),
  );
  const applied: number[] = [];
  const ctx = ddlContext(storage, options);
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    for (const sql of m.statements(ctx)) await storage.command(sql);
    await storage.insert('schema_migrations', [{ version: m.version, name: m.name, applied_at: Date.now() }]);
    log?.info({ version: m.version, migration: m.name }, 'schema migration applied');
    applied.push(m.version);
  }
  return applied;
}
