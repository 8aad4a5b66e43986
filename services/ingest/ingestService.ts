import { createHash } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { decodeCdrEvent, encodeWith, PSEUDONYMISED_SCHEMA_ID } from '../platform/schemas/cdrCodec.ts';
import type { CdrEvent } from '../core/cdr/cdrEvent.ts';
import { validateCdr } from '../core/cdr/validate.ts';
import type { Storage } from '../platform/clickhouse/storage.ts';
import type { PipelineConfig } from '../platform/config/config.ts';
import { PipelineError, classifyError } from '../core/errors/pipelineError.ts';
import { RecentIds } from '../core/dedup/recentIds.ts';
import type { PipelineMetrics } from '../platform/observability/metrics.ts';
import type { MonthKeyRing } from '../platform/keys/monthKeyRing.ts';
import type { MonthKey } from '../core/pseudonym/monthKeys.ts';
import { CDR_SHAPE, Pseudonymiser, type CdrRow, type VaultRow } from '../core/pseudonym/pseudonymise.ts';
import { identifiersExpired, monthKeyOf } from '../core/retention/retentionCalendar.ts';
import { ThreadPublisher, type OutgoingMessage } from '../platform/kafka/publisher.ts';

/**
 * The ingest service: cdr.raw → decode → validate → normalise → pseudonymise → ClickHouse (vault, then cdr,
 * from which the engine derives the subscriber index) + cdr.pseudonymised, bad records → cdr.dlq.
 *
 * Delivery guarantee (docs/guarantees.md): every batch's exact offset range is recorded in
 * `ingest_batches` before anything is written. Writes carry insert-deduplication tokens derived from that
 * range and the batch content. Offsets are committed to Kafka only after every write is acknowledged.
 * After a crash, the first batch of a partition is rebuilt to the recorded range, so its inserts are
 * byte-identical and ClickHouse drops the blocks that had already landed: exactly-once effect in ClickHouse,
 * at-least-once on cdr.pseudonymised and cdr.dlq (consumers dedupe by cdr_id / offset).
 */

export interface IngestDeps {
  readonly kafka: Kafka;
  /** The same brokers as `kafka`'s, for the publisher thread's own client. */
  readonly brokers: readonly string[];
  readonly storage: Storage;
  readonly keyRing: MonthKeyRing;
  readonly config: PipelineConfig;
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly clock?: () => number;
}

export interface IngestStats {
  stored: number;
  duplicate: number;
  dlq: number;
  late: number;
  batches: number;
  lag: number;
  partitions: number;
}

interface BatchIntent {
  readonly from: number;
  readonly to: number;
}

interface PartitionState {
  recent: RecentIds;
  /** Set after a restart when the last recorded batch may not have completed: rebuild exactly that range. */
  replay: BatchIntent | null;
  /** Messages held while a replay range is being re-assembled across fetches. */
  buffer: KafkaMessage[];
  lag: number;
}

interface Decoded {
  readonly message: KafkaMessage;
  readonly event: CdrEvent;
  readonly schemaId: number;
}

interface DeadLetter {
  readonly message: KafkaMessage;
  readonly error: PipelineError;
  readonly stage: string;
}

const RETRY_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

export class IngestService {
  private readonly consumer: Consumer;
  private readonly publisher: ThreadPublisher;
  private readonly partitions = new Map<number, PartitionState>();
  private readonly loading = new Map<number, Promise<PartitionState>>();
  private readonly pseudonymiser = new Pseudonymiser();
  /** (month, token) pairs whose vault row this process has written recently. */
  private readonly vaultWritten = new RecentIds(400_000);
  private readonly clock: () => number;
  private running = false;
  readonly stats: IngestStats = { stored: 0, duplicate: 0, dlq: 0, late: 0, batches: 0, lag: 0, partitions: 0 };

  constructor(private readonly deps: IngestDeps) {
    this.clock = deps.clock ?? Date.now;
    const ic = deps.config.ingest;
    this.consumer = deps.kafka.consumer({
      groupId: ic.groupId,
      maxBytesPerPartition: ic.maxBytesPerPartition,
      maxBytes: ic.maxBytesPerPartition * 4,
      sessionTimeout: ic.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(ic.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: 250,
      retry: { retries: 10 },
    });
    this.publisher = new ThreadPublisher({ brokers: deps.brokers, clientId: deps.config.kafka.clientId, log: deps.log });
  }

  private get topic(): string {
    return this.deps.config.kafka.topics.raw;
  }

  async start(): Promise<void> {
    await this.publisher.start();
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    } catch (err) {
      // Not running yet, so stop() would do nothing: end the publisher thread here, or it keeps the process alive.
      await this.publisher.close();
      throw err;
    }
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      // A rebalance may hand a partition to someone else; reload state when it comes back.
      this.partitions.clear();
    });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.min(4, this.deps.config.kafka.partitions),
      eachBatch: (payload) => this.onBatch(payload),
    });
    this.deps.log.info({ topic: this.topic, group: this.deps.config.ingest.groupId }, 'ingest started');
  }

  /** Stops after the batch in progress finishes (or is abandoned uncommitted if storage is down); idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.consumer.disconnect();
    await this.publisher.close();
    this.deps.log.info({ ...this.stats }, 'ingest stopped');
  }

  /** A month key was destroyed in this process: drop anything derived from it. */
  forgetMonth(month: string): void {
    this.deps.keyRing.forget(month);
    this.pseudonymiser.forgetMonth(month);
  }

  private async partitionState(partition: number, firstOffset: number): Promise<PartitionState> {
    const known = this.partitions.get(partition);
    if (known) return known;
    let p = this.loading.get(partition);
    if (!p) {
      p = this.loadPartitionState(partition, firstOffset).finally(() => this.loading.delete(partition));
      this.loading.set(partition, p);
    }
    const state = await p;
    this.partitions.set(partition, state);
    this.stats.partitions = this.partitions.size;
    return state;
  }

  private async loadPartitionState(partition: number, firstOffset: number): Promise<PartitionState> {
    const { storage, config, log } = this.deps;
    const intents = await storage.query<{ from_offset: string; to_offset: string }>(
      `SELECT from_offset, to_offset FROM ${storage.table('ingest_batches')}
       WHERE consumer_group = {g:String} AND topic = {t:String} AND partition = {p:UInt32}
       ORDER BY from_offset DESC LIMIT 1`,
      { g: config.ingest.groupId, t: this.topic, p: partition },
    );
    const last = intents[0];
    let replay: BatchIntent | null = null;
    if (last && Number(last.from_offset) === firstOffset) {
      replay = { from: Number(last.from_offset), to: Number(last.to_offset) };
      log.info({ partition, from: replay.from, to: replay.to }, 'replaying the last recorded batch of this partition');
    } else if (last && Number(last.from_offset) < firstOffset && Number(last.to_offset) >= firstOffset) {
      // Only possible when the start of the recorded batch is gone from Kafka (topic retention ran while
      // ingest was down): it cannot be rebuilt, so carry on from what Kafka still has, and say so loudly.
      log.error({ partition, firstOffset, from: last.from_offset, to: last.to_offset }, 'the unfinished batch starts before the oldest offset Kafka still holds; continuing without replay');
    }
    // Rebuild the duplicate window from what this partition already stored before the first offset we will process.
    const perPartition = Math.max(1, Math.floor(config.ingest.dedupWindow / Math.max(1, config.kafka.partitions)));
    const recent = new RecentIds(perPartition * 2);
    if (config.ingest.dedupWindow > 0) {
      const ids = await storage.query<{ cdr_id: string }>(
        `SELECT cdr_id FROM ${storage.table('cdr')}
         WHERE src_topic = {t:String} AND src_partition = {p:UInt32} AND src_offset < {o:UInt64}
         ORDER BY src_offset DESC LIMIT {n:UInt32}`,
        { t: this.topic, p: partition, o: firstOffset, n: perPartition },
      );
      for (let i = ids.length - 1; i >= 0; i--) recent.add(ids[i]!.cdr_id);
    }
    return { recent, replay, buffer: [], lag: 0 };
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const isRunning = (): boolean => payload.isRunning();
    const isStale = (): boolean => payload.isStale();
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const partition = batch.partition;
    const state = await this.partitionState(partition, Number(batch.messages[0]!.offset));
    state.lag = Number(batch.offsetLag());
    this.deps.metrics.ingestLag.set({ partition: String(partition) }, state.lag);
    this.stats.lag = [...this.partitions.values()].reduce((s, p) => s + p.lag, 0);

    let messages = batch.messages;
    if (state.replay) {
      const replay = state.replay;
      state.buffer.push(...messages.filter((m) => Number(m.offset) >= replay.from && Number(m.offset) <= replay.to));
      const last = state.buffer[state.buffer.length - 1];
      if (!last || Number(last.offset) < replay.to) {
        // Not all of the recorded range has arrived yet: keep it, move the fetch position on, commit nothing.
        if (last) payload.resolveOffset(last.offset);
        return;
      }
      const ok = await this.processChunk(partition, state, state.buffer, replay, payload, false);
      if (!ok) return;
      state.buffer = [];
      state.replay = null;
      messages = messages.filter((m) => Number(m.offset) > replay.to);
    }
    const max = this.deps.config.ingest.maxBatchRecords;
    for (let i = 0; i < messages.length && isRunning() && !isStale(); i += max) {
      const chunk = messages.slice(i, i + max);
      const intent = { from: Number(chunk[0]!.offset), to: Number(chunk[chunk.length - 1]!.offset) };
      const ok = await this.processChunk(partition, state, chunk, intent, payload, true);
      if (!ok) return;
      await payload.heartbeat();
    }
  }

  /** Processes one batch with retries; false when abandoned because the consumer is stopping. */
  private async processChunk(partition: number, state: PartitionState, chunk: KafkaMessage[], intent: BatchIntent, payload: EachBatchPayload, recordIntent: boolean): Promise<boolean> {
    const { metrics, log } = this.deps;
    for (let attempt = 0; ; attempt++) {
      const endTimer = metrics.ingestBatchSeconds.startTimer();
      try {
        if (recordIntent && attempt === 0) await this.recordIntent(partition, intent);
        await this.writeChunk(partition, state, chunk, intent);
        await this.consumer.commitOffsets([{ topic: this.topic, partition, offset: String(intent.to + 1) }]);
        payload.resolveOffset(String(intent.to));
        endTimer();
        this.stats.batches++;
        return true;
      } catch (err) {
        const e = classifyError(err, 'storage');
        if (e.disposition === 'stop') throw e;
        const delay = RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
        log.warn({ partition, from: intent.from, to: intent.to, attempt, err: e.message }, 'batch failed; retrying the same batch');
        if (!payload.isRunning() || payload.isStale()) return false;
        await sleep(delay);
        try {
          await payload.heartbeat();
        } catch {
          // A failed heartbeat means a rebalance is coming; the retry loop notices through isStale.
        }
        if (!payload.isRunning() || payload.isStale()) return false;
      }
    }
  }

  private async recordIntent(partition: number, intent: BatchIntent): Promise<void> {
    const { storage, config } = this.deps;
    await storage.insert('ingest_batches', [
      { consumer_group: config.ingest.groupId, topic: this.topic, partition, from_offset: String(intent.from), to_offset: String(intent.to), created_at: this.clock() },
    ]);
  }

  private async writeChunk(partition: number, state: PartitionState, chunk: KafkaMessage[], intent: BatchIntent): Promise<void> {
    const { config, storage, keyRing, metrics } = this.deps;
    const now = this.clock();
    const good: Decoded[] = [];
    const dead: DeadLetter[] = [];
    const duplicates: string[] = [];
    const seenInChunk = new Set<string>();
    for (const message of chunk) {
      let decoded: { event: CdrEvent; schemaId: number };
      try {
        decoded = decodeCdrEvent(message.value);
      } catch (err) {
        dead.push({ message, error: asRecordError(err), stage: 'VALUE_CONVERTER' });
        continue;
      }
      try {
        validateCdr(decoded.event, { now, maxFutureSkewMs: config.ingest.maxFutureSkewMs });
      } catch (err) {
        dead.push({ message, error: asRecordError(err), stage: 'TRANSFORMATION' });
        continue;
      }
      const id = decoded.event.cdr_id;
      if (state.recent.has(id) || seenInChunk.has(id)) {
        duplicates.push(id);
        continue;
      }
      seenInChunk.add(id);
      good.push({ message, event: decoded.event, schemaId: decoded.schemaId });
    }

    // What was derived from the keys of months whose window has closed leaves memory now, even when the
    // retention pass that destroys those keys runs in another process (the ring never hands them out again).
    this.pseudonymiser.forgetExpired(now);
    // Month keys for the months of this chunk (created on first use, null when the window has closed).
    const keys = new Map<string, MonthKey | null>();
    for (const d of good) {
      const month = monthKeyOf(d.event.event_time);
      if (!keys.has(month)) keys.set(month, null);
    }
    for (const month of keys.keys()) keys.set(month, await keyRing.keyForWriting(month, now));

    const rows: CdrRow[] = [];
    const vault: VaultRow[] = [];
    const published: OutgoingMessage[] = [];
    const vaultInChunk = new Set<string>();
    let late = 0;
    for (const d of good) {
      const month = monthKeyOf(d.event.event_time);
      const key = identifiersExpired(d.event.event_time, now) ? null : (keys.get(month) ?? null);
      const rec = this.pseudonymiser.pseudonymise(d.event, month, key, d.schemaId, { topic: this.topic, partition, offset: d.message.offset }, now);
      if (rec.row.late) late++;
      rows.push(rec.row);
      for (const v of rec.vault) {
        const vk = `${v.month}/${v.token}`;
        if (vaultInChunk.has(vk) || this.vaultWritten.has(vk)) continue;
        vaultInChunk.add(vk);
        vault.push(v);
      }
      published.push({ key: d.event.account_id, value: encodeWith(PSEUDONYMISED_SCHEMA_ID, rec.published), headers: { cdr_id: d.event.cdr_id } });
    }

    // Kafka first: a record is in ClickHouse only if it was already published, so a replay that finds it
    // stored never has to publish it again. The publisher thread resolves once the broker acknowledged all.
    try {
      await this.publisher.send([
        { topic: config.kafka.topics.dlq, messages: dead.map((d) => this.deadLetterMessage(partition, d)) },
        { topic: config.kafka.topics.pseudonymised, messages: published },
      ]);
    } catch (err) {
      throw classifyError(err, 'broker');
    }

    const base = `${config.ingest.groupId}/${this.topic}/${partition}/${intent.from}-${intent.to}`;
    // Tokens name the range and what is in it (not when it was processed), so a replay of the same range
    // with the same content is dropped, and a replay whose content differs is written rather than lost.
    const digest = digestOf(rows, (r) => `${r.cdr_id}|${r.sender_token}|${r.recipient_token}`);
    await storage.insert('identity_vault', vault, { insert_deduplication_token: `${base}/vault/${digestOf(vault, (v) => `${v.month}/${v.token}`)}` });
    // The subscriber index is written by the engine from this insert (migration 4); on a replay the view runs
    // again and the index deduplicates on its own, so a crash between the cdr and index parts loses nothing.
    await storage.insert('cdr', rows, { insert_deduplication_token: `${base}/cdr/${digest}`, deduplicate_blocks_in_dependent_materialized_views: 1 }, CDR_SHAPE);

    for (const r of rows) state.recent.add(r.cdr_id);
    for (const k of vaultInChunk) this.vaultWritten.add(k);
    metrics.ingestRecords.inc({ outcome: 'stored' }, rows.length - late);
    metrics.ingestRecords.inc({ outcome: 'late' }, late);
    metrics.ingestRecords.inc({ outcome: 'duplicate' }, duplicates.length);
    metrics.ingestRecords.inc({ outcome: 'dlq' }, dead.length);
    metrics.pseudonymisedPublished.inc(published.length);
    this.stats.stored += rows.length - late;
    this.stats.late += late;
    this.stats.duplicate += duplicates.length;
    this.stats.dlq += dead.length;
  }

  /** The original bytes with Kafka Connect's error headers. The reason names the rule, never a value. */
  private deadLetterMessage(partition: number, d: DeadLetter): OutgoingMessage {
    const original = d.message.headers ?? {};
    const headers: Record<string, string | Buffer> = {};
    for (const [k, v] of Object.entries(original)) if (Buffer.isBuffer(v) || typeof v === 'string') headers[k] = v;
    Object.assign(headers, {
      '__connect.errors.topic': this.topic,
      '__connect.errors.partition': String(partition),
      '__connect.errors.offset': d.message.offset,
      '__connect.errors.connector.name': 'cdr-ingest',
      '__connect.errors.task.id': '0',
      '__connect.errors.stage': d.stage,
      '__connect.errors.class.name': 'io.cdrpipeline.Ingest',
      '__connect.errors.exception.class.name': `PipelineError:${d.error.code}`,
      '__connect.errors.exception.message': d.error.message,
    });
    return { key: d.message.key, value: d.message.value, headers };
  }
}

function asRecordError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  return new PipelineError('decode_failed', 'record could not be processed', { cause: err });
}

function digestOf<T>(rows: readonly T[], keyOf: (row: T) => string): string {
  const h = createHash('sha1');
  for (const r of rows) h.update(keyOf(r)).update('\n');
  return h.digest('hex').slice(0, 20);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
