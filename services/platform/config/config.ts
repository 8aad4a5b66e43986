import { z } from 'zod';
import { PipelineError } from '../../core/errors/pipelineError.ts';

/**
 * Configuration from environment variables, parsed and validated once at start-up into a frozen typed
 * object. Defaults make the embedded single-machine mode work with no variable set. A bad value stops
 * start-up with a message naming every offending variable.
 */

const intVar = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalString = z.string().trim().min(1).optional();

const envSchema = z.object({
  CDR_DATA_DIR: z.string().trim().min(1).default('.data'),
  CDR_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  KAFKA_BROKERS: optionalString,
  KAFKA_CLIENT_ID: z.string().trim().min(1).default('cdr-pipeline'),
  CDR_LOCAL_KAFKA_PORT: intVar(1, 65535).default(19092),
  CDR_TOPIC_RAW: z.string().trim().min(1).default('cdr.raw'),
  CDR_TOPIC_PSEUDONYMISED: z.string().trim().min(1).default('cdr.pseudonymised'),
  CDR_TOPIC_DLQ: z.string().trim().min(1).default('cdr.dlq'),
  CDR_TOPIC_FRAUD_ALERTS: z.string().trim().min(1).default('fraud.alerts'),
  CDR_TOPIC_PARTITIONS: intVar(1, 1024).default(4),
  CDR_RAW_RETENTION_HOURS: intVar(1, 24 * 30).default(72),
  CLICKHOUSE_URL: z.url().optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier').default('cdr'),
  CLICKHOUSE_CLUSTER: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be a plain cluster name').optional(),
  CDR_MASTER_KEY: optionalString,
  CDR_MASTER_KEY_FILE: optionalString,
  CDR_INGEST_GROUP: z.string().trim().min(1).default('cdr-ingest'),
  CDR_INGEST_MAX_BATCH: intVar(1, 1_000_000).default(5_000),
  CDR_INGEST_MAX_BYTES_PER_PARTITION: intVar(1024, 256 * 1024 * 1024).default(4 * 1024 * 1024),
  CDR_DEDUP_WINDOW: intVar(0, 50_000_000).default(1_000_000),
  CDR_INGEST_SESSION_TIMEOUT_MS: intVar(6_000, 300_000).default(30_000),
  CDR_MAX_FUTURE_SKEW_MS: intVar(0, 7 * 24 * 3600 * 1000).default(24 * 3600 * 1000),
  CDR_API_HOST: z.string().trim().min(1).default('127.0.0.1'),
  CDR_API_PORT: intVar(0, 65535).default(8080),
  CDR_API_TOKENS_FILE: optionalString,
  CDR_RETENTION_INTERVAL_MS: intVar(0, 7 * 24 * 3600 * 1000).default(3600 * 1000),
});

export interface PipelineConfig {
  /** Directory for the embedded ClickHouse, the local Kafka broker and the development master key. */
  readonly dataDir: string;
  readonly logLevel: z.infer<typeof envSchema>['CDR_LOG_LEVEL'];
  readonly kafka: {
    /** External brokers; undefined means "start the local broker". */
    readonly brokers: readonly string[] | undefined;
    readonly clientId: string;
    readonly localPort: number;
    readonly topics: { readonly raw: string; readonly pseudonymised: string; readonly dlq: string; readonly fraudAlerts: string };
    readonly partitions: number;
    readonly rawRetentionHours: number;
  };
  readonly clickhouse: {
    /** Server URL; undefined means embedded chDB in `<dataDir>/clickhouse`. */
    readonly url: string | undefined;
    readonly user: string;
    readonly password: string;
    readonly database: string;
    readonly cluster: string | undefined;
  };
  readonly masterKey: { readonly base64: string | undefined; readonly file: string | undefined };
  readonly ingest: {
    readonly groupId: string;
    readonly maxBatchRecords: number;
    readonly maxBytesPerPartition: number;
    readonly dedupWindow: number;
    /** Kafka consumer session timeout: how long a crashed member holds its partitions. */
    readonly sessionTimeoutMs: number;
    readonly maxFutureSkewMs: number;
  };
  readonly api: { readonly host: string; readonly port: number; readonly tokensFile: string | undefined };
  readonly retention: { readonly intervalMs: number };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new PipelineError('config_invalid', `invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const brokers = e.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
  if (e.KAFKA_BROKERS !== undefined && (!brokers || brokers.length === 0 || brokers.some((b) => !/^[^\s:]+:\d+$/.test(b)))) {
    throw new PipelineError('config_invalid', 'invalid configuration: KAFKA_BROKERS: expected host:port[,host:port...]');
  }
  if (e.CDR_MASTER_KEY !== undefined && Buffer.from(e.CDR_MASTER_KEY, 'base64').length !== 32) {
    throw new PipelineError('config_invalid', 'invalid configuration: CDR_MASTER_KEY: expected 32 bytes, base64-encoded');
  }
  return Object.freeze({
    dataDir: e.CDR_DATA_DIR,
    logLevel: e.CDR_LOG_LEVEL,
    kafka: Object.freeze({
      brokers: brokers ? Object.freeze(brokers) : undefined,
      clientId: e.KAFKA_CLIENT_ID,
      localPort: e.CDR_LOCAL_KAFKA_PORT,
      topics: Object.freeze({ raw: e.CDR_TOPIC_RAW, pseudonymised: e.CDR_TOPIC_PSEUDONYMISED, dlq: e.CDR_TOPIC_DLQ, fraudAlerts: e.CDR_TOPIC_FRAUD_ALERTS }),
      partitions: e.CDR_TOPIC_PARTITIONS,
      rawRetentionHours: e.CDR_RAW_RETENTION_HOURS,
    }),
    clickhouse: Object.freeze({ url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD, database: e.CLICKHOUSE_DATABASE, cluster: e.CLICKHOUSE_CLUSTER }),
    masterKey: Object.freeze({ base64: e.CDR_MASTER_KEY, file: e.CDR_MASTER_KEY_FILE }),
    ingest: Object.freeze({
      groupId: e.CDR_INGEST_GROUP,
      maxBatchRecords: e.CDR_INGEST_MAX_BATCH,
      maxBytesPerPartition: e.CDR_INGEST_MAX_BYTES_PER_PARTITION,
      dedupWindow: e.CDR_DEDUP_WINDOW,
      sessionTimeoutMs: e.CDR_INGEST_SESSION_TIMEOUT_MS,
      maxFutureSkewMs: e.CDR_MAX_FUTURE_SKEW_MS,
    }),
    api: Object.freeze({ host: e.CDR_API_HOST, port: e.CDR_API_PORT, tokensFile: e.CDR_API_TOKENS_FILE }),
    retention: Object.freeze({ intervalMs: e.CDR_RETENTION_INTERVAL_MS }),
  });
}
