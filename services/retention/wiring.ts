import type { Storage } from '../platform/clickhouse/index.ts';
import type { Runtime } from '../platform/runtime/index.ts';
import { requireStorage } from '../platform/runtime/index.ts';
import { LegalHolds } from '../platform/holds/index.ts';
import { checkTopicPolicy, pipelineTopics } from '../platform/kafka/index.ts';
import type { KafkaConfig } from '../platform/config/index.ts';
import type { AnswerSigner } from '../core/index.ts';
import { DestructionLog } from './destructionLog.ts';
import { RetentionPass, type RetentionAuditSink } from './retentionPass.ts';

/**
 * Builds the legal-hold store and the retention pass from an opened runtime. `storage`: a separate ClickHouse
 * session for them (cdr start), so a pass's synchronous mutation does not hold up ingest's inserts, which an
 * embedded chDB session runs one at a time. `audit`: where each pass is recorded. `signer`: the key that signs the
 * destruction record (the audit trail's). With Kafka in the runtime, each pass checks and corrects the topics that
 * carry identifiers and reports them.
 */
export interface RetentionWiring {
  readonly signer: AnswerSigner;
  readonly onKeyDestroyed?: (month: string) => void;
  readonly storage?: Storage;
  readonly audit?: RetentionAuditSink;
  /** See RetentionDeps (tests shorten them). */
  readonly settleMs?: number;
  readonly cleanupTimeoutMs?: number;
}

export function createRetention(
  rt: Runtime & { config: { kafka?: KafkaConfig } },
  opts: RetentionWiring,
): { holds: LegalHolds; pass: RetentionPass; record: DestructionLog } {
  const opened = requireStorage(rt);
  const { keyRing, masterKey } = opened;
  const storage = opts.storage ?? opened.storage;
  const holds = new LegalHolds(storage, keyRing, masterKey);
  const record = new DestructionLog(storage, opts.signer);
  const kafka = rt.kafka;
  const kafkaConfig = rt.config.kafka;
  const topics =
    kafka && kafkaConfig
      ? async (correct: boolean) => {
          const admin = kafka.admin();
          await admin.connect();
          try {
            return await checkTopicPolicy(admin, pipelineTopics(kafkaConfig), { correct });
          } finally {
            await admin.disconnect();
          }
        }
      : undefined;
  const pass = new RetentionPass({
    storage,
    keyRing,
    holds,
    record,
    metrics: rt.metrics,
    log: rt.log,
    ...(topics ? { topics } : {}),
    ...(opts.onKeyDestroyed ? { onKeyDestroyed: opts.onKeyDestroyed } : {}),
    ...(opts.audit ? { audit: opts.audit } : {}),
    ...(opts.settleMs !== undefined ? { settleMs: opts.settleMs } : {}),
    ...(opts.cleanupTimeoutMs !== undefined ? { cleanupTimeoutMs: opts.cleanupTimeoutMs } : {}),
  });
  return { holds, pass, record };
}
