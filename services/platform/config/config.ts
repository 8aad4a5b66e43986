import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { availableParallelism } from 'node:os';
import { alignmentDistance, PipelineError } from '../../core/index.ts';

/**
 * Configuration from environment variables, parsed and validated once at start-up into a frozen typed object.
 * Defaults make the embedded single-machine mode work with no variable set.
 *
 * The variables come in sections (kafka, clickhouse, masterKey, ingest, api, audit, billing, fraud, retention); a process parses only
 * the sections it uses (`loadConfig(env, ['clickhouse', 'masterKey', 'retention'])`), so a retention process
 * does not refuse to start over an ingest setting. Every bad variable of those sections is reported at once,
 * in one message that names each variable and what it accepts.
 */

/** Kafka compression codecs the pipeline reads (all of them) and may write (CDR_KAFKA_COMPRESSION). */
export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
/**
 * CDR_KAFKA_PUBLISHER: `auto` takes librdkafka where it is installed and loads (through the project's batch binding
 * where it was built, ADR 0043), kafkajs otherwise; `native-package` takes librdkafka through the package's own binding.
 */
export const PUBLISHER_CHOICES = ['auto', 'native', 'native-package', 'kafkajs'] as const;
export type PublisherChoice = (typeof PUBLISHER_CHOICES)[number];
/** CDR_NATIVE_SEALER: `auto` takes the native sealer where it is built and passes its self-test, JavaScript otherwise (ADR 0040). */
export const SEALER_CHOICES = ['auto', 'native', 'js'] as const;
export type SealerChoice = (typeof SEALER_CHOICES)[number];
export type CompressionName = (typeof COMPRESSION_NAMES)[number];

/** A number written in the digits `pattern` allows, between `min` and `max`. */
const decimal = (text: z.ZodString, pattern: RegExp, message: string, min: number, max: number) =>
  text.regex(pattern, { message }).transform(Number).pipe(z.number().min(min).max(max));
/**
 * A whole number written in decimal digits: not `0x10`, `1e3` or `Infinity`, which a number coercion took (found from
 * outside: `CDR_INGEST_MAX_BATCH=0x10` ran with 16; `1e99` was named twice).
 */
const intVar = (min: number, max: number) => decimal(z.string().trim(), /^[+-]?\d+$/, 'expected a whole number in decimal digits', min, max);
const name = () => z.string().trim().min(1);
const optionalString = z.string().trim().min(1).optional();
/** Kafka's rule for a topic name: 1-249 of letters, digits, `.`, `_` and `-`, not `.` or `..` (found from outside: a bad
 * one failed at topic creation, after the broker started, naming no variable). */
const topicName = () =>
  name().refine((v) => /^[A-Za-z0-9._-]{1,249}$/.test(v) && v !== '.' && v !== '..', {
    message: "not a Kafka topic name (1-249 letters, digits, '.', '_' or '-')",
  });
// Labels of letters, digits, `-` and `_` (container names such as `proj_api_1` resolve, though RFC 1123 has no `_`).
const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
/**
 * An address to listen on: an IPv6 address, an IPv4 one, or a host name. Checked with the other variables, so a
 * malformed one (`999.1.1.1`) is named beside them; whether it is an address of this machine is known only when
 * listening (found from outside: it was reported alone, on the run after the others were fixed). Digits and dots are
 * an IPv4 address as the resolver reads it (`127.1` and `0` pass, `300.1` does not), without a part led by 0, which it
 * would read as octal (`010.0.0.1` is 8.0.0.1).
 */
const listenHost = () =>
  name().refine((v) => (v.includes(':') ? ipaddr.IPv6.isValid(v) : /^[\d.]+$/.test(v) ? ipaddr.IPv4.isValid(v) && !/(?:^|\.)0\d/.test(v) : HOST_NAME.test(v)), {
    message: 'not an IP address or host name',
  });

const baseSchema = z.object({
  /** Embedded ClickHouse, the local Kafka broker, the development master key and tokens, `pipeline.log`. */
  CDR_DATA_DIR: name().default('.data'),
  CDR_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where the JSON log lines go: a file, `-` for stdout, `stderr`; unset: `cdr start` → `<data dir>/pipeline.log`, services → stderr. */
  CDR_LOG_FILE: optionalString,
});

const sectionSchemas = {
  kafka: z.object({
    KAFKA_BROKERS: optionalString,
    KAFKA_CLIENT_ID: name().default('cdr-pipeline'),
    CDR_LOCAL_KAFKA_PORT: intVar(1, 65535).default(19092),
    /** The local broker's controller port (infra/kafka/kafka.sh reads it); checked here with the rest (found from outside: `abc` reached Java). */
    KAFKA_CONTROLLER_PORT: decimal(
      z.string(),
      /^\d+$/,
      'expected a port in decimal digits, as written (no spaces or sign: kafka.sh reads it so)',
      1,
      65535,
    ).optional(),
    CDR_TOPIC_RAW: topicName().default('cdr.raw'),
    CDR_TOPIC_PSEUDONYMISED: topicName().default('cdr.pseudonymised'),
    CDR_TOPIC_DLQ: topicName().default('cdr.dlq'),
    CDR_TOPIC_FRAUD_ALERTS: topicName().default('fraud.alerts'),
    CDR_TOPIC_PARTITIONS: intVar(1, 1024).default(4),
    CDR_RAW_RETENTION_HOURS: intVar(1, 24 * 30).default(72),
    CDR_KAFKA_COMPRESSION: z.enum(COMPRESSION_NAMES).default('lz4'),
    CDR_KAFKA_PUBLISHER: z.enum(PUBLISHER_CHOICES).default('auto'),
    CDR_MAX_RECORD_BYTES: intVar(1024, 64 * 1024 * 1024).default(1024 * 1024),
    CDR_CONSUMER_STALL_MS: intVar(1_000, 24 * 3600 * 1000).default(60_000),
    // Longer than a routing layer's own transactions may last (exactly-once writers commit at their checkpoints, often
    // minutes apart); a producer that died inside one holds the partition for up to the broker's 15 min.
    CDR_OPEN_TRANSACTION_ALARM_MS: intVar(1_000, 24 * 3600 * 1000).default(300_000),
    KAFKA_SSL: z.enum(['0', '1', '']).default('0'),
    KAFKA_SSL_CA_FILE: optionalString,
    KAFKA_SSL_CERT_FILE: optionalString,
    KAFKA_SSL_KEY_FILE: optionalString,
    KAFKA_SSL_REJECT_UNAUTHORIZED: z.enum(['0', '1']).default('1'),
    KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
    KAFKA_SASL_USERNAME: optionalString,
    KAFKA_SASL_PASSWORD: optionalString,
    KAFKA_SASL_PASSWORD_FILE: optionalString,
  }),
  clickhouse: z.object({
    CLICKHOUSE_URL: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL (the ClickHouse HTTP interface)' }).optional(),
    CLICKHOUSE_USER: z.string().default('default'),
    CLICKHOUSE_PASSWORD: z.string().default(''),
    CLICKHOUSE_DATABASE: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier')
      .default('cdr'),
    CLICKHOUSE_CLUSTER: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'must be a plain cluster name')
      .optional(),
  }),
  masterKey: z.object({
    CDR_MASTER_KEY: optionalString,
    CDR_MASTER_KEY_FILE: optionalString,
    // Where the development master key lives (never inside the data directory: a copy of that would re-identify).
    CDR_DEV_KEY_DIR: optionalString,
    XDG_CONFIG_HOME: optionalString,
    HOME: optionalString,
    // How often a long-running process re-reads the tombstones of destroyed months (drops their keys from memory).
    CDR_KEY_REFRESH_MS: intVar(100, 60_000).default(30_000),
  }),
  ingest: z.object({
    CDR_INGEST_GROUP: name().default('cdr-ingest'),
    // 20,000: the engine's per-insert cost is then spread over 4× the rows (benchmarks/results/ab-batch-size-2026-12-03.md).
    CDR_INGEST_MAX_BATCH: intVar(1, 1_000_000).default(20_000),
    CDR_INGEST_MAX_BYTES_PER_PARTITION: intVar(1024, 256 * 1024 * 1024).default(4 * 1024 * 1024),
    CDR_DEDUP_WINDOW: intVar(0, 50_000_000).default(1_000_000),
    CDR_INGEST_SESSION_TIMEOUT_MS: intVar(6_000, 300_000).default(30_000),
    // Memory bounds (docs/operations.md "Memory"): identifiers derived under a month key and vault rows known written.
    CDR_INGEST_IDENTIFIER_CACHE: intVar(0, 10_000_000).default(100_000),
    CDR_INGEST_VAULT_RECENT: intVar(0, 20_000_000).default(200_000),
    // cdr_ids remembered in a filter in front of the duplicate lookup (ADR 0045), ~1.25 bytes each; 0: none.
    CDR_INGEST_ID_FILTER: intVar(0, 1_000_000_000).default(8_000_000),
    CDR_MAX_FUTURE_SKEW_MS: intVar(0, 7 * 24 * 3600 * 1000).default(24 * 3600 * 1000),
    // Prepare worker threads (services/ingest/preparePool.ts); unset: one fewer than the cores, at least one.
    CDR_INGEST_WORKERS: intVar(0, 64).optional(),
    // The prepare workers' nice value (Linux); unset: 10 where the process serves the API too (`cdr start`), else 0.
    CDR_INGEST_WORKER_NICE: intVar(0, 19).optional(),
    CDR_NATIVE_SEALER: z.enum(SEALER_CHOICES).default('auto'),
    // A Confluent-compatible schema registry that cdr.raw's writer schemas are read from (services/platform/schemas/
    // schemaRegistry.ts). http(s) only, and no credentials in it: the URL is said in messages.
    CDR_SCHEMA_REGISTRY_URL: z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .refine((v) => !/^[a-z]+:\/\/[^/?#]*@/i.test(v), {
        message: 'put credentials in CDR_SCHEMA_REGISTRY_BASIC_AUTH, not in the URL (it is said in messages)',
      })
      .refine((v) => !/[?#]/.test(v), { message: "the registry's base URL, without a query or fragment (they would not be sent)" })
      .optional(),
    CDR_SCHEMA_REGISTRY_BASIC_AUTH: z
      .string()
      .regex(/^[^:]*:/, 'expected user:password')
      .optional(),
    // How long an id the registry said it does not hold stays absent before a new batch asks again (once).
    CDR_SCHEMA_REGISTRY_ABSENT_RECHECK_S: intVar(0, 86_400).default(60),
  }),
  api: z.object({
    CDR_API_HOST: listenHost().default('127.0.0.1'),
    CDR_API_PORT: intVar(0, 65535).default(8080),
    CDR_API_TOKENS_FILE: optionalString,
    CDR_API_RATE_LIMIT: intVar(1, 1_000_000).default(600),
    CDR_API_RATE_WINDOW_MS: intVar(1_000, 24 * 3600 * 1000).default(60_000),
    CDR_API_MAX_ANSWER_ROWS: intVar(1, 100_000_000).default(1_000_000),
    CDR_API_QUERY_TIMEOUT_S: intVar(1, 3600).default(120),
    CDR_API_QUERY_MAX_MEMORY_BYTES: intVar(16 * 1024 * 1024, 2 ** 40).default(2 * 1024 ** 3),
  }),
  audit: z.object({
    CDR_SIGNING_KEY_FILE: optionalString,
    CDR_AUDIT_CHAIN: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -')
      .optional(),
    CDR_AUDIT_ANCHOR_DIR: optionalString,
    CDR_AUDIT_CHECKPOINT_MS: intVar(1_000, 24 * 3600 * 1000).default(300_000),
  }),
  billing: z.object({
    CDR_BILLING_GROUP: name().default('cdr-billing'),
    CDR_BILLING_PLANS_FILE: optionalString,
    CDR_BILLING_MAX_BATCH: intVar(1, 1_000_000).default(5_000),
    CDR_BILLING_SESSION_TIMEOUT_MS: intVar(6_000, 300_000).default(30_000),
  }),
  fraud: z.object({
    CDR_FRAUD_GROUP: name().default('cdr-fraud'),
    CDR_FRAUD_RULES_FILE: optionalString,
    CDR_FRAUD_SESSION_TIMEOUT_MS: intVar(6_000, 300_000).default(30_000),
  }),
  retention: z.object({
    CDR_RETENTION_INTERVAL_MS: intVar(0, 7 * 24 * 3600 * 1000).default(3600 * 1000),
    CDR_ALLOW_CLOCK_OVERRIDE: z.enum(['0', '1', '']).default('0'),
  }),
};

export type SectionName = keyof typeof sectionSchemas;
export const SECTION_NAMES = Object.keys(sectionSchemas) as SectionName[];

export interface KafkaConfig {
  /** External brokers; undefined means "start the local broker". */
  readonly brokers: readonly string[] | undefined;
  readonly clientId: string;
  readonly localPort: number;
  readonly topics: { readonly raw: string; readonly pseudonymised: string; readonly dlq: string; readonly fraudAlerts: string };
  readonly partitions: number;
  readonly rawRetentionHours: number;
  /** The codec of everything the pipeline produces (every codec is read whatever this says). */
  readonly compression: CompressionName;
  /** Which client publishes: librdkafka where installed (`auto`), or one of them by name. */
  readonly publisher: PublisherChoice;
  /** Records larger than this (after decompression) are dead-lettered as a stub with a pointer, never processed. */
  readonly maxRecordBytes: number;
  /** A consumer that commits nothing for this long while records wait reports itself degraded. */
  readonly stallMs: number;
  /** Records behind a last stable offset that has not moved for this long make a consumer report itself degraded. */
  readonly openTransactionAlarmMs: number;
  /** TLS and SASL towards the brokers (file paths; platform/kafka reads them). Undefined: plain TCP, no authentication. */
  readonly security: KafkaSecurityConfig;
}

export interface KafkaSecurityConfig {
  readonly ssl: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string; readonly rejectUnauthorized: boolean } | undefined;
  readonly sasl:
    | { readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password?: string; readonly passwordFile?: string }
    | undefined;
}

export interface ClickHouseConfig {
  /** Server URL; undefined means embedded chDB in `<dataDir>/clickhouse`. */
  readonly url: string | undefined;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly cluster: string | undefined;
}

export interface MasterKeyConfig {
  readonly base64: string | undefined;
  readonly file: string | undefined;
  /** Directory of development master keys (one file per data directory), outside every data directory. */
  readonly devKeyDir: string | undefined;
  readonly refreshMs: number;
}

export interface IngestConfig {
  readonly groupId: string;
  readonly maxBatchRecords: number;
  readonly maxBytesPerPartition: number;
  readonly dedupWindow: number;
  /** Kafka consumer session timeout: how long a crashed member holds its partitions. */
  readonly sessionTimeoutMs: number;
  readonly maxFutureSkewMs: number;
  /** Most identifiers kept normalised, tokenised and sealed in memory, over all months (0: no cache). */
  readonly identifierCache: number;
  /** Most (month, token) vault rows remembered as written, so a known subscriber's row is not sent again (0: none). */
  readonly vaultRecent: number;
  /** cdr_ids a filter in front of the duplicate lookup remembers (embedded store only; 0: no filter, ADR 0045). */
  readonly idFilter: number;
  /** Worker threads doing the per-record work (0: the main thread does it). */
  readonly workers: number;
  /** Their nice value (0-19); undefined: the composition root decides (ADR 0034). */
  readonly workerNice: number | undefined;
  /** Who computes tokens and vault seals of new identifiers (ADR 0040). */
  readonly sealer: SealerChoice;
  /** Where cdr.raw's writer schemas are looked up by id (besides schemas/registry.json); undefined: nowhere else. */
  readonly schemaRegistry: { readonly url: string; readonly basicAuth: string | undefined; readonly absentRecheckMs: number } | undefined;
}

export interface ApiConfig {
  /** Where the process serves HTTP: the internal API, or only /healthz and /metrics for the other services. */
  readonly host: string;
  readonly port: number;
  readonly tokensFile: string | undefined;
  /** Requests per token (per client address before authentication) in each window. */
  readonly rateLimit: number;
  readonly rateWindowMs: number;
  /** The most records one law-enforcement answer or data-subject export may hold. */
  readonly maxAnswerRows: number;
  /** ClickHouse limits on every query of the API's own session. */
  readonly queryTimeoutSeconds: number;
  readonly queryMaxMemoryBytes: number;
}

export interface AuditConfig {
  /** Ed25519 private key (PKCS#8 PEM) that signs answers, audit checkpoints and reports; undefined: the development key. */
  readonly signingKeyFile: string | undefined;
  /** The audit chain this process writes (one writer per chain); undefined: the process's own default. */
  readonly chain: string | undefined;
  /** Where the newest signed checkpoint of each chain is also kept, outside the database; undefined: the data directory. */
  readonly anchorDir: string | undefined;
  readonly checkpointMs: number;
}

export interface BillingConfig {
  readonly groupId: string;
  /** The tariff plan file (YAML or JSON); undefined: config/billing-plans.yaml of the package. */
  readonly plansFile: string | undefined;
  readonly maxBatchRecords: number;
  /** How long a crashed billing member holds its partitions before the group moves them. */
  readonly sessionTimeoutMs: number;
}

export interface FraudConfigSection {
  readonly groupId: string;
  /** The rule thresholds file (YAML or JSON); undefined: config/fraud-rules.yaml of the package. */
  readonly rulesFile: string | undefined;
  /** How long a crashed fraud member holds its partitions before the group moves them. */
  readonly sessionTimeoutMs: number;
}

export interface RetentionConfig {
  readonly intervalMs: number;
  /** A real (non-dry) retention run may take another `now` (tests and retention drills only). */
  readonly allowClockOverride: boolean;
}

interface Sections {
  readonly kafka: KafkaConfig;
  readonly clickhouse: ClickHouseConfig;
  readonly masterKey: MasterKeyConfig;
  readonly ingest: IngestConfig;
  readonly api: ApiConfig;
  readonly audit: AuditConfig;
  readonly billing: BillingConfig;
  readonly fraud: FraudConfigSection;
  readonly retention: RetentionConfig;
}

export interface BaseConfig {
  /** Directory for the embedded ClickHouse, the local Kafka broker and the development master key. */
  readonly dataDir: string;
  readonly logLevel: z.infer<typeof baseSchema>['CDR_LOG_LEVEL'];
  /** CDR_LOG_FILE as given (a path, `-` for stdout, `stderr`); undefined: each process's default. */
  readonly logFile: string | undefined;
}

/** The configuration of a process that parsed the sections K. */
export type ConfigOf<K extends SectionName> = BaseConfig & Pick<Sections, K>;
/** Every section: `cdr start` and tests. */
export type PipelineConfig = ConfigOf<SectionName>;

type Problems = string[];

/**
 * A section's variables: all of them (`ok`), or, when any is bad, the ones that are good — so that the section's
 * checks across variables still run and their problems join the one message. Found from outside: a bad
 * CDR_KEY_REFRESH_MS hid a 5-byte CDR_MASTER_KEY, and a bad CDR_KAFKA_COMPRESSION hid a SASL mechanism without a login.
 */
function parseSection<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv,
  problems: Problems,
): { ok: true; e: z.infer<S> } | { ok: false; e: Partial<z.infer<S>> } {
  const r = schema.safeParse(env);
  if (r.success) return { ok: true, e: r.data };
  for (const i of r.error.issues) problems.push(`${i.path.join('.')}: ${i.message}`);
  const good: Record<string, unknown> = {};
  const fields: Record<string, z.ZodType> = schema.shape;
  for (const [name, field] of Object.entries(fields)) {
    const one = field.safeParse(env[name]);
    if (one.success) good[name] = one.data;
  }
  return { ok: false, e: good as Partial<z.infer<S>> };
}

/** `env`: what was given, so a check never asks to set a variable that was set, only wrongly (found in review). */
function kafkaSecurity(e: Partial<z.infer<(typeof sectionSchemas)['kafka']>>, problems: Problems, env: NodeJS.ProcessEnv): KafkaSecurityConfig {
  const files = { caFile: e.KAFKA_SSL_CA_FILE, certFile: e.KAFKA_SSL_CERT_FILE, keyFile: e.KAFKA_SSL_KEY_FILE };
  const anyFile = Object.values(files).some((f) => f !== undefined);
  if ((env['KAFKA_SSL_CERT_FILE'] === undefined) !== (env['KAFKA_SSL_KEY_FILE'] === undefined))
    problems.push('KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE: a client certificate needs both');
  const ssl =
    e.KAFKA_SSL === '1' || anyFile
      ? {
          ...(files.caFile ? { caFile: files.caFile } : {}),
          ...(files.certFile ? { certFile: files.certFile } : {}),
          ...(files.keyFile ? { keyFile: files.keyFile } : {}),
          rejectUnauthorized: e.KAFKA_SSL_REJECT_UNAUTHORIZED === '1',
        }
      : undefined;
  let sasl: KafkaSecurityConfig['sasl'];
  if (e.KAFKA_SASL_MECHANISM) {
    if (!e.KAFKA_SASL_USERNAME) problems.push('KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM');
    if ((e.KAFKA_SASL_PASSWORD === undefined) === (e.KAFKA_SASL_PASSWORD_FILE === undefined))
      problems.push('KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE: set exactly one with KAFKA_SASL_MECHANISM');
    sasl = {
      mechanism: e.KAFKA_SASL_MECHANISM,
      username: e.KAFKA_SASL_USERNAME ?? '',
      ...(e.KAFKA_SASL_PASSWORD !== undefined ? { password: e.KAFKA_SASL_PASSWORD } : {}),
      ...(e.KAFKA_SASL_PASSWORD_FILE !== undefined ? { passwordFile: e.KAFKA_SASL_PASSWORD_FILE } : {}),
    };
  } else if (env['KAFKA_SASL_MECHANISM'] === undefined && (e.KAFKA_SASL_USERNAME || e.KAFKA_SASL_PASSWORD || e.KAFKA_SASL_PASSWORD_FILE)) {
    problems.push('KAFKA_SASL_MECHANISM: set it (plain, scram-sha-256 or scram-sha-512) with the SASL username and password');
  }
  return { ssl, sasl };
}

const BUILDERS: { [K in SectionName]: (env: NodeJS.ProcessEnv, problems: Problems) => Sections[K] | undefined } = {
  kafka(env, problems) {
    const section = parseSection(sectionSchemas.kafka, env, problems);
    const security = kafkaSecurity(section.e, problems, env);
    const brokers = env['KAFKA_BROKERS']
      ?.split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
    if (env['KAFKA_BROKERS'] !== undefined) {
      // Each bad entry named (found from outside: `notahost,:::,h:99999` said only what was expected).
      const bad = (brokers ?? []).filter((b) => {
        const m = /^([^\s:]+):(\d+)$/.exec(b);
        return !m || Number(m[2]) < 1 || Number(m[2]) > 65535;
      });
      if (!brokers || brokers.length === 0) problems.push('KAFKA_BROKERS: expected host:port[,host:port...]');
      else if (bad.length > 0)
        problems.push(`KAFKA_BROKERS: expected host:port[,host:port...] with ports 1-65535; not so: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
    }
    // Only for the local broker (with KAFKA_BROKERS there is none to clash with).
    if (section.ok && !brokers?.length && section.e.KAFKA_CONTROLLER_PORT !== undefined && section.e.KAFKA_CONTROLLER_PORT === section.e.CDR_LOCAL_KAFKA_PORT)
      problems.push('KAFKA_CONTROLLER_PORT: must differ from CDR_LOCAL_KAFKA_PORT (the broker port)');
    if (!section.ok) return undefined;
    const e = section.e;
    return {
      brokers: brokers && brokers.length > 0 ? Object.freeze(brokers) : undefined,
      clientId: e.KAFKA_CLIENT_ID,
      localPort: e.CDR_LOCAL_KAFKA_PORT,
      topics: Object.freeze({ raw: e.CDR_TOPIC_RAW, pseudonymised: e.CDR_TOPIC_PSEUDONYMISED, dlq: e.CDR_TOPIC_DLQ, fraudAlerts: e.CDR_TOPIC_FRAUD_ALERTS }),
      partitions: e.CDR_TOPIC_PARTITIONS,
      rawRetentionHours: e.CDR_RAW_RETENTION_HOURS,
      compression: e.CDR_KAFKA_COMPRESSION,
      publisher: e.CDR_KAFKA_PUBLISHER,
      maxRecordBytes: e.CDR_MAX_RECORD_BYTES,
      stallMs: e.CDR_CONSUMER_STALL_MS,
      openTransactionAlarmMs: e.CDR_OPEN_TRANSACTION_ALARM_MS,
      security,
    };
  },
  clickhouse(env, problems) {
    const section = parseSection(sectionSchemas.clickhouse, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return { url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD, database: e.CLICKHOUSE_DATABASE, cluster: e.CLICKHOUSE_CLUSTER };
  },
  masterKey(env, problems) {
    const section = parseSection(sectionSchemas.masterKey, env, problems);
    const given = section.e;
    if (given.CDR_MASTER_KEY !== undefined && given.CDR_MASTER_KEY_FILE !== undefined) {
      problems.push('CDR_MASTER_KEY / CDR_MASTER_KEY_FILE: set one of them, not both (which key wraps the month keys must never be a guess)');
    }
    if (given.CDR_MASTER_KEY !== undefined && Buffer.from(given.CDR_MASTER_KEY, 'base64').length !== 32) {
      problems.push('CDR_MASTER_KEY: expected 32 bytes, base64-encoded');
    }
    if (!section.ok) return undefined;
    const e = section.e;
    const configHome = e.XDG_CONFIG_HOME ?? (e.HOME !== undefined ? `${e.HOME}/.config` : undefined);
    const devKeyDir = e.CDR_DEV_KEY_DIR ?? (configHome !== undefined ? `${configHome}/cdr-pipeline/dev-keys` : undefined);
    return { base64: e.CDR_MASTER_KEY, file: e.CDR_MASTER_KEY_FILE, devKeyDir, refreshMs: e.CDR_KEY_REFRESH_MS };
  },
  ingest(env, problems) {
    const section = parseSection(sectionSchemas.ingest, env, problems);
    if (env['CDR_SCHEMA_REGISTRY_BASIC_AUTH'] !== undefined && env['CDR_SCHEMA_REGISTRY_URL'] === undefined)
      problems.push('CDR_SCHEMA_REGISTRY_BASIC_AUTH: set without CDR_SCHEMA_REGISTRY_URL (credentials for no registry)');
    if (!section.ok) return undefined;
    const e = section.e;
    return {
      groupId: e.CDR_INGEST_GROUP,
      maxBatchRecords: e.CDR_INGEST_MAX_BATCH,
      maxBytesPerPartition: e.CDR_INGEST_MAX_BYTES_PER_PARTITION,
      dedupWindow: e.CDR_DEDUP_WINDOW,
      sessionTimeoutMs: e.CDR_INGEST_SESSION_TIMEOUT_MS,
      maxFutureSkewMs: e.CDR_MAX_FUTURE_SKEW_MS,
      identifierCache: e.CDR_INGEST_IDENTIFIER_CACHE,
      vaultRecent: e.CDR_INGEST_VAULT_RECENT,
      idFilter: e.CDR_INGEST_ID_FILTER,
      workers: e.CDR_INGEST_WORKERS ?? Math.max(1, availableParallelism() - 1),
      workerNice: e.CDR_INGEST_WORKER_NICE,
      sealer: e.CDR_NATIVE_SEALER,
      schemaRegistry:
        e.CDR_SCHEMA_REGISTRY_URL === undefined
          ? undefined
          : { url: e.CDR_SCHEMA_REGISTRY_URL, basicAuth: e.CDR_SCHEMA_REGISTRY_BASIC_AUTH, absentRecheckMs: e.CDR_SCHEMA_REGISTRY_ABSENT_RECHECK_S * 1000 },
    };
  },
  api(env, problems) {
    const section = parseSection(sectionSchemas.api, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return {
      host: e.CDR_API_HOST,
      port: e.CDR_API_PORT,
      tokensFile: e.CDR_API_TOKENS_FILE,
      rateLimit: e.CDR_API_RATE_LIMIT,
      rateWindowMs: e.CDR_API_RATE_WINDOW_MS,
      maxAnswerRows: e.CDR_API_MAX_ANSWER_ROWS,
      queryTimeoutSeconds: e.CDR_API_QUERY_TIMEOUT_S,
      queryMaxMemoryBytes: e.CDR_API_QUERY_MAX_MEMORY_BYTES,
    };
  },
  audit(env, problems) {
    const section = parseSection(sectionSchemas.audit, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return { signingKeyFile: e.CDR_SIGNING_KEY_FILE, chain: e.CDR_AUDIT_CHAIN, anchorDir: e.CDR_AUDIT_ANCHOR_DIR, checkpointMs: e.CDR_AUDIT_CHECKPOINT_MS };
  },
  billing(env, problems) {
    const section = parseSection(sectionSchemas.billing, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return {
      groupId: e.CDR_BILLING_GROUP,
      plansFile: e.CDR_BILLING_PLANS_FILE,
      maxBatchRecords: e.CDR_BILLING_MAX_BATCH,
      sessionTimeoutMs: e.CDR_BILLING_SESSION_TIMEOUT_MS,
    };
  },
  fraud(env, problems) {
    const section = parseSection(sectionSchemas.fraud, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return { groupId: e.CDR_FRAUD_GROUP, rulesFile: e.CDR_FRAUD_RULES_FILE, sessionTimeoutMs: e.CDR_FRAUD_SESSION_TIMEOUT_MS };
  },
  retention(env, problems) {
    const section = parseSection(sectionSchemas.retention, env, problems);
    if (!section.ok) return undefined;
    const e = section.e;
    return { intervalMs: e.CDR_RETENTION_INTERVAL_MS, allowClockOverride: e.CDR_ALLOW_CLOCK_OVERRIDE === '1' };
  },
};

/**
 * The environment with every variable set to nothing (empty, or only spaces) left out: such a variable reads as unset,
 * so its default applies. A compose file's `KAFKA_BROKERS: ${KAFKA_BROKERS:-}` or a script's `env KAFKA_BROKERS=` means
 * "none" (found from outside: `KAFKA_BROKERS=` stopped `cdr start` with "expected host:port" instead of starting the
 * local broker, which is what an unset one does). Before 2026-12-06 a blank number read as 0, which for some means
 * something else than the default (`CDR_RETENTION_INTERVAL_MS=` turned the scheduled retention pass off).
 */
export function withoutBlankVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value.trim() !== '') out[name] = value;
  return out;
}

/**
 * Parses the base variables and the given sections (default: all). Throws one `config_invalid` error naming
 * every bad variable of those sections. A variable set to nothing is unset (`withoutBlankVariables`).
 */
export function loadConfig<K extends SectionName = SectionName>(rawEnv: NodeJS.ProcessEnv = process.env, sections?: readonly K[]): ConfigOf<K> {
  const env = withoutBlankVariables(rawEnv);
  const problems: Problems = [];
  const base = parseSection(baseSchema, env, problems);
  const wanted = (sections ?? SECTION_NAMES) as readonly SectionName[];
  const out: Record<string, unknown> = {};
  for (const s of wanted) {
    const v = BUILDERS[s](env, problems);
    if (v) out[s] = Object.freeze(v);
  }
  for (const [what, names] of MUST_DIFFER) differ(env, names, what, problems, wanted);
  if (problems.length > 0 || !base.ok) {
    throw new PipelineError('config_invalid', `invalid configuration: ${problems.join('; ')}`);
  }
  const b = base.e;
  return Object.freeze({ dataDir: b.CDR_DATA_DIR, logLevel: b.CDR_LOG_LEVEL, logFile: b.CDR_LOG_FILE, ...out }) as ConfigOf<K>;
}

/**
 * Names that must differ (found from outside): two services in one consumer group split its partitions between them —
 * with `CDR_FRAUD_GROUP=cdr-billing` billing rated none of the records fraud took, with `cdr-ingest` half of cdr.raw
 * was never stored, and health named neither; two topics of one name fail at creation, after the broker started.
 */
const MUST_DIFFER: readonly (readonly [string, readonly string[]])[] = [
  ['consumer groups', ['CDR_INGEST_GROUP', 'CDR_BILLING_GROUP', 'CDR_FRAUD_GROUP']],
  ['topics', ['CDR_TOPIC_RAW', 'CDR_TOPIC_PSEUDONYMISED', 'CDR_TOPIC_DLQ', 'CDR_TOPIC_FRAUD_ALERTS']],
];

/** The value a variable takes (given, or its default); undefined when it is invalid (named elsewhere). */
function effectiveValue(env: NodeJS.ProcessEnv, name: string): unknown {
  const section = sectionOf(name);
  if (section === undefined) return undefined;
  const r = (sectionSchemas[section].shape as Record<string, z.ZodType>)[name]!.safeParse(env[name]);
  return r.success ? r.data : undefined;
}

/** The section whose schema reads a variable. */
function sectionOf(name: string): SectionName | undefined {
  return (Object.keys(sectionSchemas) as SectionName[]).find((s) => Object.hasOwn(sectionSchemas[s].shape, name));
}

/**
 * Compared: the variables of the sections this process loads, and any set explicitly — not the default of a service
 * the process does not run (found in review: a billing process with `CDR_BILLING_GROUP=cdr-fraud`, fraud running
 * elsewhere under another name, was refused against fraud's default).
 */
function differ(env: NodeJS.ProcessEnv, names: readonly string[], what: string, problems: Problems, wanted: readonly SectionName[]): void {
  const byValue = new Map<unknown, string[]>();
  for (const name of names) {
    const section = sectionOf(name);
    if (env[name] === undefined && (section === undefined || !wanted.includes(section))) continue;
    const v = effectiveValue(env, name);
    if (v !== undefined) byValue.set(v, [...(byValue.get(v) ?? []), name]);
  }
  for (const [v, same] of byValue)
    if (same.length > 1) problems.push(`${same.join(' / ')}: the same name (${JSON.stringify(v)}); the ${what} must differ (set or default)`);
}

/** `CDR_` variables read outside the section schemas (by the CLI, the dev set-up and the test runner). */
const OTHER_CDR_VARIABLES = new Set(['CDR_API_TOKEN', 'CDR_INGEST_WORKER_NICE']);

/** Every `CDR_` variable the project reads. */
export function knownCdrVariables(): Set<string> {
  const known = new Set<string>([...Object.keys(baseSchema.shape), ...OTHER_CDR_VARIABLES]);
  for (const schema of Object.values(sectionSchemas)) for (const name of Object.keys(schema.shape)) if (name.startsWith('CDR_')) known.add(name);
  return known;
}

/**
 * `CDR_` variables set in the environment that the project does not read — a misspelt one is otherwise silently
 * ignored, and its default applies (found from outside: `CDR_RAW_RETENTION_HOUR=1` left identifiers 72 h on
 * cdr.raw with no word) — each with the known name it most likely meant. Warned about, not refused: another tool's
 * `CDR_` variable must not stop the pipeline. `CDR_TEST_*` belongs to the test runner.
 */
export function unknownCdrVariables(env: NodeJS.ProcessEnv = process.env): { name: string; meant?: string }[] {
  const known = knownCdrVariables();
  return Object.keys(env)
    .filter((name) => name.startsWith('CDR_') && !name.startsWith('CDR_TEST_') && !known.has(name))
    .sort()
    .map((name) => {
      const meant = closestName(name, known);
      return meant ? { name, meant } : { name };
    });
}

/** The known name within a small edit distance (a typo, a missing or extra letter), if exactly one is closest. */
function closestName(name: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 6)) + 1;
  let tie = false;
  for (const k of known) {
    const d = alignmentDistance(name, k);
    if (d < bestDistance) [best, bestDistance, tie] = [k, d, false];
    else if (d === bestDistance) tie = true;
  }
  return tie ? undefined : best;
}

/** The warning line for each unknown `CDR_` variable (empty when there is none). */
export function unknownCdrVariableWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  return unknownCdrVariables(env).map(
    ({ name, meant }) => `${name} is set but no part of cdr-pipeline reads it${meant ? ` (did you mean ${meant}?)` : ''}; its setting has no effect`,
  );
}

/** A reader of a file a variable names, run for its checks: throws (naming the problem) when the file cannot be used. */
export type FileCheck = (path: string) => unknown;

/**
 * `loadConfig`, then the files the variables name read by their own readers (`checks`, by variable), every problem of
 * both in one `config_invalid` error — before anything starts (found from outside: each start named one file's
 * problem, after starting the broker and the engine). An unset variable is not checked here: its default (a shipped
 * file, a development key) is read where it is used. `requirements` adds what one process needs beyond the defaults
 * (the API as its own process: a tokens file), named in the same message.
 */
export function loadConfigAndFiles<K extends SectionName = SectionName>(
  env: NodeJS.ProcessEnv,
  sections: readonly K[] | undefined,
  checks: Readonly<Record<string, FileCheck>>,
  requirements: (env: NodeJS.ProcessEnv) => readonly string[] = () => [],
): ConfigOf<K> {
  const problems: string[] = [];
  let config: ConfigOf<K> | undefined;
  try {
    config = loadConfig(env, sections);
  } catch (err) {
    if (!(err instanceof PipelineError && err.code === 'config_invalid')) throw err;
    problems.push(err.message.replace(/^invalid configuration: /, ''));
  }
  for (const [name, check] of Object.entries(checks)) {
    // Trimmed as the configuration reads it (a trailing space in an env file names the same file).
    const path = env[name]?.trim();
    if (path === undefined || path === '') continue;
    try {
      check(path);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      problems.push(message.startsWith(name) ? message : `${name}: ${message}`);
    }
  }
  problems.push(...requirements(env));
  if (problems.length > 0 || config === undefined) throw new PipelineError('config_invalid', `invalid configuration: ${problems.join('; ')}`);
  return config;
}

/** A URL as it may be printed or logged: a password in its user info or its query is replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    return '<a URL that does not parse>';
  }
}
