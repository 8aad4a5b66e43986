import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { PipelineError, rate, type PlanBook, type PseudonymisedValue } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import type { BillingConfig, KafkaConfig } from '../platform/config/index.ts';
import {
  ConsumerLoop,
  insertPlan,
  loopHealth,
  loopSettingsFor,
  type BatchContext,
  type BatchHandler,
  type BatchResult,
  type DeadLetter,
  type LoopStatus,
} from '../platform/kafka/index.ts';
import type { ComponentHealth } from '../platform/http/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import { chTime } from '../platform/identity/index.ts';
import { decodePseudonymised } from '../platform/schemas/index.ts';
import { EventLoopSlice } from '../platform/runtime/index.ts';
import { inputOf, RATED_SHAPE, ratedRowOf, ratingInputOf, type RatedRow } from './ratedRow.ts';

/**
 * The billing service: cdr.pseudonymised → rate each record (core/billing/rating.ts) → `billing_rated` in ClickHouse.
 * It never sees an identifier: the pseudonymised event carries tokens, number ranges and types only.
 *
 * A `BatchHandler` on the shared consumer loop (platform/kafka/consumerLoop.ts), which gives it the same
 * exactly-once effect as ingest: batch intents and insert deduplication tokens make a replayed batch write nothing
 * new. Records published twice by ingest (its publishing is at-least-once) or sent twice on any partition are
 * counted `duplicate` when an earlier copy is already stored, and `billing_rated` is a ReplacingMergeTree read
 * with FINAL, so a copy that slips past the lookup (two copies in flight at once) still counts once.
 */
export interface BillingDeps {
  readonly kafka: Kafka;
  readonly brokers: readonly string[];
  readonly storage: Storage;
  readonly config: { readonly kafka: KafkaConfig; readonly billing: BillingConfig };
  readonly plans: () => PlanBook;
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly clock?: () => number;
  readonly onFatal?: (err: PipelineError) => void;
  /** As ingest's: give the event loop a turn every this many ms while preparing (set where the API shares the process). */
  readonly sliceMs?: number;
}

export interface BillingStats {
  rated: number;
  unrated: number;
  duplicate: number;
  dlq: number;
  batches: number;
  lag: number;
}

interface PartitionState {
  readonly partition: number;
}

export class BillingService implements BatchHandler<PartitionState> {
  readonly loop: ConsumerLoop<PartitionState>;
  private readonly counts = { rated: 0, unrated: 0, duplicate: 0, dlq: 0 };
  private readonly clock: () => number;

  constructor(private readonly deps: BillingDeps) {
    this.clock = deps.clock ?? Date.now;
    for (const outcome of ['rated', 'unrated', 'duplicate']) deps.metrics.billingRecords.inc({ outcome }, 0);
    const { kafka, billing } = deps.config;
    this.loop = new ConsumerLoop({
      kafka: deps.kafka,
      brokers: deps.brokers,
      clientId: `${kafka.clientId}-billing`,
      storage: deps.storage,
      log: deps.log,
      handler: this,
      batchSeconds: deps.metrics.billingBatchSeconds,
      onLag: (partition, lag) => deps.metrics.billingLag.set({ partition: String(partition) }, lag),
      onUnstable: (partition, records) => deps.metrics.consumerPastStableOffset.set({ consumer: 'billing', partition: String(partition) }, records),
      ...(deps.onFatal ? { onFatal: deps.onFatal } : {}),
      clock: this.clock,
      settings: loopSettingsFor(kafka, {
        groupId: billing.groupId,
        topic: kafka.topics.pseudonymised,
        connector: 'cdr-billing',
        maxBatchRecords: billing.maxBatchRecords,
        sessionTimeoutMs: billing.sessionTimeoutMs,
      }),
    });
    deps.metrics.watchLagAge('billing', () => this.loop.status().lagAgeMs);
  }

  get stats(): BillingStats {
    const s = this.loop.status();
    return { ...this.counts, batches: s.batches, lag: s.lag };
  }

  status(): LoopStatus {
    return this.loop.status();
  }

  health(): ComponentHealth {
    return loopHealth(this.loop.status(), { ...this.counts });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.deps.log.info({ topic: this.deps.config.kafka.topics.pseudonymised, group: this.deps.config.billing.groupId }, 'billing started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    this.deps.log.info({ ...this.stats }, 'billing stopped');
  }

  async openPartition(partition: number): Promise<PartitionState> {
    return { partition };
  }

  onRejected(): void {
    this.counts.dlq++;
  }

  async prepare(messages: readonly KafkaMessage[], ctx: BatchContext<PartitionState>): Promise<BatchResult> {
    const now = ctx.at;
    const dead: DeadLetter[] = [];
    const events: { message: KafkaMessage; event: PseudonymisedValue }[] = [];
    const slice = new EventLoopSlice(this.deps.sliceMs ?? Number.POSITIVE_INFINITY);
    for (const message of messages) {
      if (slice.spent()) await slice.pause();
      try {
        events.push({ message, event: decodePseudonymised(message.value) });
      } catch (err) {
        const error =
          err instanceof PipelineError && err.disposition === 'dead-letter'
            ? err
            : new PipelineError('decode_failed', 'pseudonymised event could not be read', { cause: err });
        dead.push({ message, error, stage: 'VALUE_CONVERTER' });
      }
    }
    const { elsewhere: storedElsewhere, here: storedHere } = await this.storedBefore(events, ctx);
    const book = this.deps.plans();
    const rows: RatedRow[] = [];
    const seen = new Set<string>();
    let duplicates = 0;
    let unrated = 0;
    for (const { message, event } of events) {
      if (slice.spent()) await slice.pause();
      if (seen.has(event.cdr_id) || storedElsewhere.has(event.cdr_id)) {
        duplicates++;
        continue;
      }
      seen.add(event.cdr_id);
      const rating = rate(book, ratingInputOf(inputOf(event)));
      if (!rating.rated) unrated++;
      rows.push(ratedRowOf(event, rating, 0, now, ctx.partition, message.offset));
    }
    // A replay whose every row is in the store at its own position was written (and counted) by the attempt whose
    // commit was lost: the loop does not publish its dead letters again, and it is not counted again.
    const alreadyDurable = ctx.attempt === 'replay' && rows.length > 0 && rows.every((r) => storedHere.has(r.cdr_id));
    const { metrics } = this.deps;
    return {
      deadLetters: dead,
      publish: [],
      alreadyDurable,
      writes: [insertPlan({ table: 'billing_rated', label: 'billing_rated', rows, identity: (r) => `${r.cdr_id}|${r.revision}`, shape: RATED_SHAPE })],
      onDurable: () => {
        if (alreadyDurable) return;
        metrics.billingRecords.inc({ outcome: 'rated' }, rows.length - unrated);
        metrics.billingRecords.inc({ outcome: 'unrated' }, unrated);
        metrics.billingRecords.inc({ outcome: 'duplicate' }, duplicates);
        this.counts.rated += rows.length - unrated;
        this.counts.unrated += unrated;
        this.counts.duplicate += duplicates;
        this.counts.dlq += dead.length;
      },
    };
  }

  /**
   * The cdr_ids of this batch already rated: from another position (an earlier copy: `elsewhere`), or from this very
   * position (this batch's own earlier attempt: `here`; it is written again, and the insert token makes that a no-op).
   */
  private async storedBefore(
    events: readonly { message: KafkaMessage; event: PseudonymisedValue }[],
    ctx: BatchContext<PartitionState>,
  ): Promise<{ elsewhere: Set<string>; here: Set<string> }> {
    const out = { elsewhere: new Set<string>(), here: new Set<string>() };
    if (events.length === 0) return out;
    const byId = new Map(events.map((e) => [e.event.cdr_id, e]));
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const { event } of events) {
      first = Math.min(first, event.event_time);
      last = Math.max(last, event.event_time);
    }
    const { storage } = this.deps;
    const found = await storage.query<{ cdr_id: string; src_partition: number; src_offset: string }>(
      `SELECT cdr_id, src_partition, src_offset FROM ${storage.table('billing_rated')}
       WHERE account_id IN {accounts:Array(String)} AND event_time >= {first:DateTime64(3, 'UTC')} AND event_time <= {last:DateTime64(3, 'UTC')}
         AND cdr_id IN {ids:Array(String)}`,
      {
        accounts: [...new Set(events.map((e) => e.event.account_id))],
        first: chTime(first),
        last: chTime(last),
        ids: [...byId.keys()],
      },
    );
    // At its own position on a first attempt (offsets no recorded batch holds): the record read again after the group
    // was rewound past what was committed — a copy, counted `duplicate` (found from outside: counted `rated` again).
    const reread = ctx.attempt === 'first';
    for (const r of found) {
      const mine = byId.get(r.cdr_id);
      if (!mine) continue;
      if (!reread && Number(r.src_partition) === ctx.partition && String(r.src_offset) === mine.message.offset) out.here.add(r.cdr_id);
      else out.elsewhere.add(r.cdr_id);
    }
    return out;
  }
}
