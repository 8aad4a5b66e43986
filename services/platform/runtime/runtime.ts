import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { applyMigrations, dedupHorizonSecondsFor, MIGRATIONS, openStorage, type Storage } from '../clickhouse/index.ts';
import {
  unknownCdrVariableWarnings,
  type BaseConfig,
  type ClickHouseConfig,
  type KafkaConfig,
  type MasterKeyConfig,
  type PipelineConfig,
} from '../config/index.ts';
import {
  checkTopicPolicy,
  classifyKafkaError,
  kafkaSettingsRefused,
  createKafka,
  ensureTopics,
  kafkaClientSecurity,
  pipelineTopics,
  recordLimitsOf,
  unpatchedKafkajsFiles,
} from '../kafka/index.ts';
import type { LocalBroker } from '../../../infra/kafka/localBroker.ts';
import type { ComponentHealth } from '../http/index.ts';
import { createLogger, createMetrics, logDestination, type PipelineMetrics } from '../observability/index.ts';
import { loadMasterKey, MonthKeyRing } from '../keys/index.ts';
import { PipelineError } from '../../core/index.ts';
import { keepPrivate, permissionWarning } from './privacy.ts';

/**
 * The shared wiring behind every composition root: config → logger, metrics, Kafka (external or the
 * local broker), ClickHouse (server or embedded, migrated), master key and month key ring.
 * Each piece is opened only when asked for, and closed in reverse order.
 */
export interface RuntimeOptions {
  readonly needKafka?: boolean;
  readonly needStorage?: boolean;
  /** Start the local broker when KAFKA_BROKERS is unset (cdr start); otherwise require KAFKA_BROKERS or a running local one. */
  readonly startLocalKafka?: boolean;
  readonly log?: Logger;
}

/** The sections the runtime uses; a process that needs no Kafka (or no storage) may leave that section out. */
export type RuntimeConfig = BaseConfig & { readonly kafka?: KafkaConfig; readonly clickhouse?: ClickHouseConfig; readonly masterKey?: MasterKeyConfig };

export interface Runtime<C extends RuntimeConfig = RuntimeConfig> {
  readonly config: C;
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly kafka: Kafka | undefined;
  readonly brokers: readonly string[];
  readonly localBroker: LocalBroker | undefined;
  readonly storage: Storage | undefined;
  readonly keyRing: MonthKeyRing | undefined;
  readonly masterKeySource: string | undefined;
  /** Only for wrapping keys (month keys, hold keys); never log or export it. */
  readonly masterKey: Buffer | undefined;
  /**
   * The local broker's state for `/healthz` (undefined without one): `degraded` while its JVM is gone and being started
   * again. Found from outside: with the broker killed, an idle `cdr start` said 200 "ok" for the whole outage.
   */
  brokerHealth(): ComponentHealth | undefined;
  close(): Promise<void>;
}

export function requireKafka(rt: Runtime<RuntimeConfig>): Kafka {
  if (!rt.kafka) throw new Error('runtime opened without Kafka');
  return rt.kafka;
}

/** Storage alone, for services that never touch identifiers (no key ring, no master key needed). */
export function requireStore(rt: Runtime<RuntimeConfig>): Storage {
  if (!rt.storage) throw new Error('runtime opened without storage');
  return rt.storage;
}

export function requireStorage(rt: Runtime<RuntimeConfig>): { storage: Storage; keyRing: MonthKeyRing; masterKey: Buffer } {
  if (!rt.storage || !rt.keyRing || !rt.masterKey) throw new Error('runtime opened without storage');
  return { storage: rt.storage, keyRing: rt.keyRing, masterKey: rt.masterKey };
}

export async function openRuntime<C extends RuntimeConfig>(config: C, opts: RuntimeOptions = {}): Promise<Runtime<C>> {
  const log = opts.log ?? createLogger(config.logLevel, logDestination(config.logFile));
  // A misspelt CDR_ variable is otherwise ignored without a word (its default applies).
  for (const warning of unknownCdrVariableWarnings()) log.warn(warning);
  const metrics = createMetrics();
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'error while closing');
      }
    }
    closers.length = 0;
  };
  try {
    // Local data (the embedded engine, the local broker) holds identifiers: private to the process owner.
    const localData =
      (opts.needStorage !== false && !config.clickhouse?.url) || (opts.needKafka !== false && !config.kafka?.brokers && opts.startLocalKafka === true);
    if (localData) keepPrivate(resolve(config.dataDir));
    let kafka: Kafka | undefined;
    let brokers: readonly string[] = [];
    let localBroker: LocalBroker | undefined;
    /** Since when the supervised local broker is gone, and how many starts failed since. */
    let brokerDown: { since: number; attempts: number } | undefined;
    if (opts.needKafka !== false) {
      if (!config.kafka) throw new PipelineError('invariant_broken', 'openRuntime: Kafka needed but the kafka configuration section was not loaded');
      if (config.kafka.brokers) {
        brokers = config.kafka.brokers;
      } else if (opts.startLocalKafka) {
        // Development tooling (infra/kafka), loaded only when asked for: container images do not carry it.
        const { startLocalBroker } = await import('../../../infra/kafka/localBroker.ts');
        localBroker = await startLocalBroker({ dataDir: resolve(config.dataDir, 'kafka'), port: config.kafka.localPort });
        const lb = localBroker;
        closers.push(() => lb.stop());
        brokers = localBroker.brokers;
        log.info({ brokers, pid: localBroker.pid }, 'local Kafka broker started');
        // Its JVM killed or crashed: started again on the same port and data (found from outside: after a kill -9 of
        // the broker, `cdr start` ran on with /healthz 503 for ever). The consumers reconnect by themselves.
        localBroker.supervise((event) => {
          if (event.kind === 'exited') {
            brokerDown = { since: Date.now(), attempts: 0 };
            log.error({ pid: event.pid }, 'the local Kafka broker exited unexpectedly: starting it again');
          } else if (event.kind === 'restarted') {
            brokerDown = undefined;
            log.warn({ pid: event.pid, down_ms: event.downMs }, 'the local Kafka broker runs again');
          } else {
            if (brokerDown) brokerDown = { since: brokerDown.since, attempts: event.attempt };
            log.error({ err: event.error, attempt: event.attempt, retry_in_ms: event.retryInMs }, 'the local Kafka broker did not start again');
          }
        });
      } else {
        brokers = [`127.0.0.1:${config.kafka.localPort}`];
      }
      kafka = createKafka(brokers, config.kafka.clientId, log, recordLimitsOf(config.kafka), kafkaClientSecurity(config.kafka.security));
      const unpatched = unpatchedKafkajsFiles();
      if (unpatched.length > 0)
        log.warn(
          { files: unpatched },
          "kafkajs is not patched (npm install ran without its postinstall script): a producer batch of ~125,000 records or a record with thousands of headers will stall ingest, and so will the loss of a group coordinator's broker; run `npx patch-package` (docs/decisions/0036-kafkajs-patched.md)",
        );
      const admin = kafka.admin();
      try {
        await admin.connect();
        const plans = pipelineTopics(config.kafka);
        const created = await ensureTopics(admin, plans);
        if (created.length > 0) log.info({ topics: created }, 'topics created');
        // Existing topics too: a record on cdr.raw / cdr.dlq stays no longer than CDR_RAW_RETENTION_HOURS (topicPolicy.ts).
        // Never throws; what it cannot check or correct (no DescribeConfigs/AlterConfigs permission) is logged.
        for (const r of await checkTopicPolicy(admin, plans, { correct: true })) {
          const fields = { topic: r.topic, policy_ms: r.policy_ms, retention_ms: r.retention_ms, segment_ms: r.segment_ms, max_age_ms: r.max_age_ms };
          if (r.corrected.length > 0) log.info({ ...fields, corrected: r.corrected, previous: r.previous }, 'topic settings corrected to the retention policy');
          if (r.error !== undefined || !r.compliant) log.warn({ ...fields, reasons: r.reasons, error: r.error }, 'topic settings exceed the retention policy');
        }
      } catch (err) {
        // A refused login is configuration (exit 2), a broker away is transient: say which — and, for brokers the
        // operator named, which variable named them (found from outside: only the first broker's ECONNREFUSED was said).
        const settings = kafkaSettingsRefused(err);
        if (settings !== undefined) throw new PipelineError('config_invalid', `Kafka: ${settings}`, { cause: err });
        const classified = classifyKafkaError(err);
        if (config.kafka.brokers && classified.code === 'broker_unavailable')
          throw new PipelineError(
            'broker_unavailable',
            `no Kafka broker answers at ${config.kafka.brokers.join(', ')} (KAFKA_BROKERS): ${classified.message}`,
            { cause: err },
          );
        throw classified;
      } finally {
        await admin.disconnect();
      }
    }
    let storage: Storage | undefined;
    let keyRing: MonthKeyRing | undefined;
    let masterKeySource: string | undefined;
    let masterKey: Buffer | undefined;
    if (opts.needStorage !== false) {
      if (!config.clickhouse)
        throw new PipelineError('invariant_broken', 'openRuntime: storage needed but the clickhouse configuration section was not loaded');
      storage = await openStorage(config.clickhouse, config.dataDir);
      const st = storage;
      closers.push(() => st.close());
      const repaired = storage.dedupRepair;
      if (repaired && repaired.dropped > 0)
        log.warn(
          { blockIds: repaired.dropped },
          'dropped insert-deduplication records a crash left without their data part; the replay of that batch will be written',
        );
      if (repaired && repaired.unreadable.length > 0)
        log.warn({ tables: repaired.unreadable }, "could not read these tables' insert-deduplication logs; left them as they are");
      const applied = await applyMigrations(storage, log, MIGRATIONS, { dedupHorizonSeconds: dedupHorizonSecondsFor(config.kafka?.rawRetentionHours ?? 72) });
      if (applied.length > 0) log.info({ versions: applied }, 'migrations applied');
      // A process that never touches identifiers (billing, fraud) loads no masterKey section and never holds the key.
      if (config.masterKey) {
        const master = loadMasterKey(config.masterKey, config.dataDir, !config.clickhouse.url);
        const exposed = master.path ? permissionWarning(master.path, 'the master key file') : undefined;
        if (exposed) log.warn({ path: master.path }, exposed);
        masterKeySource = master.source;
        masterKey = master.key;
        if (master.movedFrom) log.warn({ from: master.movedFrom, to: master.path }, 'moved the development master key out of the data directory');
        if (master.source === 'generated-dev')
          log.warn(
            { path: master.path },
            'using a development master key (kept outside the data directory; whoever holds it and a copy of the data re-identifies every live month); set CDR_MASTER_KEY_FILE in production',
          );
        keyRing = new MonthKeyRing(storage, master.key);
        const ring = keyRing;
        ring.startRefresh(config.masterKey.refreshMs, (err: unknown) => log.warn({ err }, 'could not re-read destroyed months'));
        closers.push(() => Promise.resolve(ring.stopRefresh()));
        try {
          await keyRing.verifyMasterKey(
            master.source === 'file' ? `CDR_MASTER_KEY_FILE ${master.path}` : master.source === 'env' ? 'CDR_MASTER_KEY' : `the development key ${master.path}`,
          );
        } catch (err) {
          // A development key made just now cannot be the one the stored data was written with: not left behind, where
          // the next start would take it (found from outside: a run with another CDR_DEV_KEY_DIR left a new key there).
          if (master.generated && master.path) rmSync(master.path, { force: true });
          throw err;
        }
      }
    }
    const brokerHealth = (): ComponentHealth | undefined => {
      if (!localBroker) return undefined;
      const down = brokerDown;
      if (!down) return { status: 'ok', detail: { pid: localBroker.pid } };
      const failed = down.attempts > 0 ? `; ${down.attempts} start(s) failed so far` : '';
      return {
        status: 'degraded',
        reasons: [`the local Kafka broker is down since ${new Date(down.since).toISOString()} and is being started again${failed}`],
        detail: { down_since: new Date(down.since).toISOString() },
      };
    };
    return { config, log, metrics, kafka, brokers, localBroker, storage, keyRing, masterKeySource, masterKey, brokerHealth, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A runtime opened with every configuration section (`cdr start`, tests). */
export type PipelineRuntime = Runtime<PipelineConfig>;
