import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { FilterHold, MonthKey } from '../core/index.ts';
import { PipelineError, CDR_SHAPE, VAULT_SHAPE, CalendarMemo, cdrRowIdentity, vaultRowIdentity } from '../core/index.ts';
import { dedupHorizonSecondsFor, type Storage } from '../platform/clickhouse/index.ts';
import type { IngestConfig, KafkaConfig } from '../platform/config/index.ts';
import { sealerFor, type MonthKeyRing } from '../platform/keys/index.ts';
import {
  ConsumerLoop,
  insertPlan,
  loopHealth,
  loopSettingsFor,
  type BatchContext,
  type BatchHandler,
  type BatchResult,
  type LoopStatus,
} from '../platform/kafka/index.ts';
import type { DeadLetter } from '../platform/kafka/index.ts';
import type { ComponentHealth } from '../platform/http/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import { confluentSchemaIds, SchemaRegistryClient } from '../platform/schemas/index.ts';
import type { RecordFailure } from './batchWork.ts';
import { createPrepareWork, type PrepareWork } from './preparePool.ts';
import { storedIdsFor, type StoredIds } from './storedIds.ts';

/**
 * Ingest's inserts skip the Replacing engines' merge of each inserted block with itself (optimize_on_insert): a batch
 * holds no two rows with one sorting key (its cdr_ids and vault tokens are deduplicated before), and a copy in another
 * block was never collapsed on insert anyway (merges and the readers deal with those, as before). Measured: ~10% less engine CPU per cdr row
 * (results/insert-and-decode-2026-12-07.md).
 */
const INGEST_INSERT = { optimize_on_insert: 0 } as const;

/**
 * The ingest service: cdr.raw → decode → validate → normalise → pseudonymise → ClickHouse (vault, then cdr, from
 * which the engine derives the subscriber index) + cdr.pseudonymised, bad records → cdr.dlq.
 *
 * It is a `BatchHandler` on the shared consumer loop (platform/kafka/consumerLoop.ts), which owns batching,
 * batch intents, deduplication tokens, retries, publishing and commits: exactly-once effect in ClickHouse,
 * at-least-once on cdr.pseudonymised and cdr.dlq (consumers dedupe by cdr_id / offset). This file holds only
 * what is particular to ingest: duplicates by cdr_id whatever the partition, month keys, and the pseudonymisation.
 *
 * Duplicates: a record whose cdr_id was stored before (within the horizon of `cdr_ids`, filled by the engine from
 * every cdr insert) at another position, or that another in-flight batch of this process is storing, is counted
 * `duplicate` and neither stored nor published. The decision depends on other partitions, so it is recorded with
 * the batch's range (the consumer loop's `decisions`): a replay after a crash decides exactly as the first run did.
 */

export interface IngestDeps {
  readonly kafka: Kafka;
  /** The same brokers as `kafka`'s, for the publisher thread's own client. */
  readonly brokers: readonly string[];
  readonly storage: Storage;
  readonly keyRing: MonthKeyRing;
  /** Ingest's slice of the configuration: its own settings and the topics. */
  readonly config: { readonly kafka: KafkaConfig; readonly ingest: IngestConfig };
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly clock?: () => number;
  /** Called once if ingest stops for good (a `stop` error): the composition root decides how the process ends. */
  readonly onFatal?: (err: PipelineError) => void;
  /**
   * Give the event loop a turn every this many ms while preparing a batch: set where the process serves the API
   * too (`cdr start`), whose requests would otherwise wait a whole batch at each await. Unset: one piece per batch
   * (slicing cost a standalone ingest 2–8% CPU per record, benchmarks/results/queries-under-ingest-2026-12-02.md).
   */
  readonly sliceMs?: number;
  /** The prepare workers' nice value (0: as the process); createIngest picks it (ADR 0034). */
  readonly workerNice?: number;
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

/** Nothing per partition: duplicates are judged against the store, so a new owner of a partition rebuilds nothing. */
interface PartitionState {
  readonly partition: number;
}

/** A decoded, valid record as the main thread decides on it (the event itself stays with the prepare work). */
interface Candidate {
  /** Its position among the screened records. */
  readonly position: number;
  /** `topic/partition/` of its batch (one string per batch): with the message's offset, where it is in Kafka. */
  readonly at: string;
  readonly message: KafkaMessage;
  readonly cdrId: string;
  readonly eventTime: number;
}

export class IngestService implements BatchHandler<PartitionState> {
  readonly loop: ConsumerLoop<PartitionState>;
  /** Where the per-record work runs: worker threads, or this thread (CDR_INGEST_WORKERS=0). */
  private readonly work: PrepareWork;
  private readonly clock: () => number;
  /** Each record's month without a Date per record (a batch is mostly one month). */
  private readonly calendar = new CalendarMemo();
  private readonly counts = { stored: 0, duplicate: 0, dlq: 0, late: 0 };
  /**
   * cdr_id → the record of the in-flight batch of this process that is storing it (its position: `at` and offset; no
   * position string per record).
   */
  private readonly claims = new Map<string, Candidate>();
  /**
   * The claimed ids of each partition's batches in flight, one array per batch range (a retry or a replay of the range
   * replaces its earlier attempt's), released when a partition leaves this member.
   */
  private readonly claimsByPartition = new Map<number, Map<number, Attempt>>();
  /** Counts stored batches; a lookup remembers the count it started at. */
  private storedEpoch = 0;
  /** Lookups in flight, by the epoch they started at (with how many started then). */
  private readonly lookupsInFlight = new Map<number, number>();
  /** Ids stored at each epoch since the oldest lookup in flight began. */
  private readonly recentlyStored = new Map<number, ReadonlySet<string>>();

  /** The ids the store holds, as a filter that spares the lookup of ids never stored (ADR 0045); embedded store only. */
  private readonly storedIds: StoredIds | undefined;

  /** Where cdr.raw's writer schemas are looked up by id, if configured (CDR_SCHEMA_REGISTRY_URL). */
  private readonly schemaRegistry: SchemaRegistryClient | undefined;

  constructor(private readonly deps: IngestDeps) {
    this.clock = deps.clock ?? Date.now;
    const registry = deps.config.ingest.schemaRegistry;
    this.schemaRegistry = registry
      ? new SchemaRegistryClient({ url: registry.url, basicAuth: registry.basicAuth, reaskAbsentMs: registry.absentRecheckMs })
      : undefined;
    // Every outcome is served from the start (0 until it happens): a missing series is not a zero to a dashboard.
    for (const outcome of ['stored', 'duplicate', 'dlq', 'late'] as const) deps.metrics.ingestRecords.inc({ outcome }, 0);
    for (const field of ['error_code', 'client_ip'] as const) deps.metrics.ingestFieldsDropped.inc({ field }, 0);
    for (const result of ['looked_up', 'ruled_out'] as const) deps.metrics.ingestIdLookups.inc({ result }, 0);
    const { ingest: settings } = deps.config;
    this.work = createPrepareWork({
      threads: settings.workers,
      identifierCache: settings.identifierCache,
      vaultRecent: settings.vaultRecent,
      maxFutureSkewMs: settings.maxFutureSkewMs,
      format: deps.storage.shapedInsertFormat,
      sealer: sealerFor(settings.sealer, deps.log),
      log: deps.log,
      ...(deps.sliceMs !== undefined ? { sliceMs: deps.sliceMs } : {}),
      nice: deps.workerNice ?? 0,
    });
    // A month the ring learns was destroyed (here, or by another process: the ring re-reads the tombstones every
    // CDR_KEY_REFRESH_MS) leaves the prepare work too: its copies of the key are zeroed, its caches dropped.
    deps.keyRing.onDestroyed((month) => this.work.forgetMonth(month));
    const { kafka, ingest } = deps.config;
    this.loop = new ConsumerLoop({
      kafka: deps.kafka,
      brokers: deps.brokers,
      clientId: kafka.clientId,
      storage: deps.storage,
      log: deps.log,
      handler: this,
      batchSeconds: deps.metrics.ingestBatchSeconds,
      onLag: (partition, lag) => deps.metrics.ingestLag.set({ partition: String(partition) }, lag),
      onUnstable: (partition, records) => deps.metrics.consumerPastStableOffset.set({ consumer: 'ingest', partition: String(partition) }, records),
      ...(deps.onFatal ? { onFatal: deps.onFatal } : {}),
      clock: this.clock,
      settings: loopSettingsFor(kafka, {
        groupId: ingest.groupId,
        topic: kafka.topics.raw,
        connector: 'cdr-ingest',
        maxBatchRecords: ingest.maxBatchRecords,
        maxBytesPerPartition: ingest.maxBytesPerPartition,
        sessionTimeoutMs: ingest.sessionTimeoutMs,
      }),
    });
    deps.metrics.watchLagAge('ingest', () => this.loop.status().lagAgeMs);
    // Last: nothing after it can fail and leave the shared filter counting a user that never stops.
    this.storedIds = storedIdsFor(
      deps.storage,
      { capacity: settings.idFilter, horizonMs: dedupHorizonSecondsFor(deps.config.kafka.rawRetentionHours) * 1000 },
      deps.log,
    );
  }

  get stats(): IngestStats {
    const s = this.loop.status();
    return { ...this.counts, batches: s.batches, lag: s.lag, partitions: s.partitions };
  }

  /** The duplicate filter (ADR 0045): absent (a server, or CDR_INGEST_ID_FILTER=0), or whether it has read the store in. */
  get duplicateFilter(): { readonly ready: boolean } | undefined {
    const f = this.storedIds;
    return f === undefined ? undefined : { ready: f.ready };
  }

  status(): LoopStatus {
    return this.loop.status();
  }

  health(): ComponentHealth {
    return loopHealth(this.loop.status(), { ...this.counts });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.deps.log.info(
      {
        topic: this.deps.config.kafka.topics.raw,
        group: this.deps.config.ingest.groupId,
        prepareThreads: this.work.threads,
        ...(this.schemaRegistry ? { schemaRegistry: this.schemaRegistry.where } : {}),
      },
      'ingest started',
    );
  }

  /** Stops after the batch in progress finishes (or is abandoned uncommitted if storage is down); idempotent. */
  async stop(): Promise<void> {
    try {
      await this.loop.stop();
      await this.work.close();
    } finally {
      this.storedIds?.release();
    }
    this.deps.log.info({ ...this.stats }, 'ingest stopped');
  }

  /** A month key was destroyed in this process: drop anything derived from it. */
  forgetMonth(month: string): void {
    // The ring tells its listeners, the pseudonymiser among them (constructor).
    this.deps.keyRing.forget(month);
  }

  async openPartition(partition: number): Promise<PartitionState> {
    return { partition };
  }

  closePartition(partition: number): void {
    for (const attempt of this.claimsByPartition.get(partition)?.values() ?? []) {
      for (const id of attempt.ids) this.claims.delete(id);
      this.releaseHold(attempt);
    }
    this.claimsByPartition.delete(partition);
  }

  onRejected(): void {
    this.counts.dlq++;
    this.deps.metrics.ingestRecords.inc({ outcome: 'dlq' });
  }

  async prepare(messages: readonly KafkaMessage[], ctx: BatchContext<PartitionState>): Promise<BatchResult> {
    const { config, keyRing, metrics } = this.deps;
    const now = ctx.at;
    const values = messages.map((m) => m.value);
    // The writer schemas of ids this batch carries that the schema registry has not been asked about yet; a registry
    // that cannot answer holds the batch (retried), it dead-letters nothing.
    // A batch seen before reads the schema ids its first attempt read as unusable so again (recorded with it).
    const recorded = recordedDecisions(ctx.recorded);
    const registry = this.schemaRegistry ? await this.schemaRegistry.answersFor(confluentSchemaIds(values), recorded?.unreadable) : undefined;
    // Step one on the prepare work (a worker thread, preparePool.ts): decode, validate, sanitise.
    const screened = await this.work.screen(ctx.partition, values, now, registry);
    let transformed = false;
    try {
      const dead: DeadLetter[] = screened.failures.map((f) => deadLetterOf(messages, f));
      const candidates: Candidate[] = [];
      const at = `${ctx.topic}/${ctx.partition}/`;
      for (let p = 0; p < screened.indices.length; p++) {
        candidates.push({ position: p, at, message: messages[screened.indices[p]!]!, cdrId: screened.cdrIds[p]!, eventTime: screened.eventTimes[p]! });
      }

      const { good, duplicates, decisions: duplicateDecisions, attempt: claimed } = await this.dropDuplicates(candidates, ctx, recorded?.offsets);
      const decisions = decisionsText(duplicateDecisions, registry?.unreadable ?? []);
      const storedHere = ctx.attempt === 'replay' ? await this.storedAtTheirPositions(good, ctx) : new Set<string>();

      // Month keys for the months of this batch (created on first use, null when the window has closed).
      const keys = new Map<string, MonthKey | null>();
      for (const d of good) {
        const month = this.calendar.monthOf(d.eventTime);
        if (!keys.has(month)) keys.set(month, null);
      }
      for (const month of keys.keys()) keys.set(month, await keyRing.keyForWriting(month, now));

      // Step two: pseudonymise, Avro, the rows serialised for the store.
      transformed = true;
      const out = await this.work.transform(screened, {
        chosen: Uint32Array.from(good, (d) => d.position),
        offsets: good.map((d) => d.message.offset),
        topic: ctx.topic,
        partition: ctx.partition,
        now,
        keys,
      });
      for (const f of out.failures) dead.push(deadLetterOf(messages, f));

      // Packed by the worker (value, key, cdr_id header): no object per message on this thread (ADR 0044).
      const { positions: _positions, ...published } = out.published;
      const publishedCount = published.valueEnds.length;
      const stored = out.cdr.count;
      const late = out.late;
      // Every row of this replay is in the store at its own position: the attempt whose commit was lost wrote it (and
      // published and counted it before that). The loop then publishes nothing again and the counts stay as they are.
      const alreadyDurable = ctx.attempt === 'replay' && stored > 0 && writtenWhole(good, out.failures, messages, storedHere, stored);

      // Should the store refuse one of these alone, its dead letter must not carry identifiers past their window.
      // The calendar memo: windowClosed's month arithmetic per record (two Dates each) was ~2% of this thread.
      const expired = new Set<string>();
      for (const d of candidates) if (Number.isFinite(d.eventTime) && this.calendar.identifiersExpired(d.eventTime, now)) expired.add(d.message.offset);
      return {
        deadLetters: dead,
        identifiersExpired: expired,
        // Kafka first (the loop publishes before it writes): a record is in ClickHouse only if it was already
        // published, so a replay that finds it stored never has to publish it again.
        publish: [{ topic: config.kafka.topics.pseudonymised, packed: published }],
        writes: [
          insertPlan({ table: 'identity_vault', label: 'vault', rows: out.vault, identity: vaultRowIdentity, shape: VAULT_SHAPE, settings: INGEST_INSERT }),
          // The subscriber index is written by the engine from this insert (migration 4); on a replay the view runs
          // again and the index deduplicates on its own, so a crash between the cdr and index parts loses nothing.
          insertPlan({
            table: 'cdr',
            label: 'cdr',
            rows: out.cdr,
            identity: cdrRowIdentity,
            shape: CDR_SHAPE,
            settings: { ...INGEST_INSERT, deduplicate_blocks_in_dependent_materialized_views: 1 },
          }),
        ],
        decisions,
        alreadyDurable,
        // The retention pass may have destroyed a month this batch holds the key of (another process, or the pass of
        // this one, while the batch was being prepared and published): then nothing of it may be written with
        // identifiers. The tombstone is re-read from the database right before the writes; if it is there, the month is
        // forgotten and the batch prepared again (its records of that month stored as late, without tokens). The pass,
        // for its part, waits a moment after the tombstone and destroys again what a write already past this check
        // still put back.
        beforeWrite: async () => {
          const used = [...keys.entries()].filter(([, k]) => k !== null).map(([m]) => m);
          const destroyed = await keyRing.anyDestroyed(used);
          if (destroyed.length === 0) return;
          for (const m of destroyed) this.forgetMonth(m);
          throw new PipelineError(
            'key_destroyed',
            `the key of ${destroyed.join(', ')} was destroyed while this batch was in flight; preparing it again without`,
          );
        },
        onAbandoned: () => this.release(ctx, claimed),
        onDurable: () => {
          // Stored: cdr_ids now answers for these ids, the claims can go.
          this.stored(ctx, claimed);
          this.work.written(screened);
          if (alreadyDurable) return;
          metrics.ingestRecords.inc({ outcome: 'stored' }, stored - late);
          metrics.ingestRecords.inc({ outcome: 'late' }, late);
          metrics.ingestRecords.inc({ outcome: 'duplicate' }, duplicates);
          metrics.ingestRecords.inc({ outcome: 'dlq' }, dead.length);
          metrics.pseudonymisedPublished.inc(publishedCount);
          for (const [field, n] of Object.entries(screened.dropped)) if (n > 0) metrics.ingestFieldsDropped.inc({ field }, n);
          this.counts.stored += stored - late;
          this.counts.late += late;
          this.counts.duplicate += duplicates;
          this.counts.dlq += dead.length;
        },
      };
    } finally {
      if (!transformed) this.work.release(screened);
    }
  }

  /**
   * The offsets of a replayed batch's records the store holds at their own position (cdr_ids, written by the engine
   * from each cdr insert, so a row there means its cdr insert landed). One lookup per replayed batch, so once per
   * partition after a crash or a rebalance.
   */
  private async storedAtTheirPositions(good: readonly Candidate[], ctx: BatchContext<PartitionState>): Promise<Set<string>> {
    const here = new Set<string>();
    if (good.length === 0) return here;
    const offsets = new Map(good.map((d) => [d.cdrId, d.message.offset]));
    const found = await this.storedPositions([...offsets.keys()]);
    for (const r of found) {
      const offset = String(r.src_offset);
      if (r.src_topic === ctx.topic && Number(r.src_partition) === ctx.partition && offset === offsets.get(r.cdr_id)) here.add(offset);
    }
    return here;
  }

  /** Where each of these cdr_ids was stored (cdr_ids, filled by the engine from every cdr insert), if it was. */
  private storedPositions(ids: readonly string[]): Promise<{ cdr_id: string; src_topic: string; src_partition: number; src_offset: string }[]> {
    const { storage } = this.deps;
    return storage.queryByIds(`SELECT cdr_id, src_topic, src_partition, src_offset FROM ${storage.table('cdr_ids')} WHERE cdr_id IN {ids:Array(String)}`, ids);
  }

  /**
   * Splits the candidates into records to store and duplicates. A duplicate: the same cdr_id earlier in this batch,
   * or stored at another position (cdr_ids), or claimed by another in-flight batch of this process. The first time a
   * batch is prepared the cross-batch duplicates are looked up and returned as `decisions` (their offsets); a replay
   * uses the recorded decisions instead of looking again.
   */
  private async dropDuplicates(
    candidates: readonly Candidate[],
    ctx: BatchContext<PartitionState>,
    recordedOffsets: string | undefined,
  ): Promise<{ good: Candidate[]; duplicates: number; decisions: string; attempt: Attempt }> {
    const firsts = new Map<string, Candidate>();
    for (const d of candidates) if (!firsts.has(d.cdrId)) firsts.set(d.cdrId, d);
    // The filter (ADR 0045) learns every id before any row with it can be written (a write that fails after landing
    // leaves it stored too), and says which ids the store may hold: only those are looked up. The attempt holds the
    // filter's generation until its rows are written or it is given up (rows written late count from then).
    const filter = this.storedIds;
    const attempt: Attempt = { ids: [], hold: filter?.hold(), holdReleased: false };
    this.track(ctx, attempt);
    const maybe: string[] = [];
    for (const id of firsts.keys()) if (filter === undefined || filter.addAndTell(id)) maybe.push(id);
    const elsewhere = new Set<string>();
    if (recordedOffsets !== undefined) {
      for (const offset of recordedOffsets === '' ? [] : recordedOffsets.split(',')) elsewhere.add(offset);
    } else if (firsts.size > 0) {
      // Look the ids up in the store; records other batches of this process store while the lookup is in flight are
      // in `recentlyStored` (kept until no lookup that started before them is still running).
      const since = this.storedEpoch;
      this.lookupsInFlight.set(since, (this.lookupsInFlight.get(since) ?? 0) + 1);
      try {
        // Looked up only on a first attempt (a retry or a replay uses the recorded decisions): a record stored anywhere —
        // at its own position too — is a copy. At its own position it was read again: an operator rewound the group past
        // what was committed (found from outside: 100 records read again were stored, counted and published again; a
        // full rewind doubled cdr.pseudonymised, when a record stored at its own position was taken for this batch's).
        // Only ids the filter may have seen: one it never saw is not in cdr_ids.
        // Counted before the lookup: the filter said so whether the lookup then succeeds or is retried.
        this.deps.metrics.ingestIdLookups.inc({ result: 'looked_up' }, maybe.length);
        this.deps.metrics.ingestIdLookups.inc({ result: 'ruled_out' }, firsts.size - maybe.length);
        const stored = maybe.length === 0 ? [] : await this.storedPositions(maybe);
        for (const r of stored) {
          const d = firsts.get(r.cdr_id);
          if (d) elsewhere.add(d.message.offset);
        }
        // From here to the claims below there is no await: no other batch of this process can claim in between.
        for (const [epoch, ids] of this.recentlyStored) {
          if (epoch <= since) continue;
          for (const [id, d] of firsts) if (ids.has(id)) elsewhere.add(d.message.offset);
        }
        for (const [id, d] of firsts) {
          const claim = this.claims.get(id);
          if (claim !== undefined && !samePosition(claim, d)) elsewhere.add(d.message.offset);
        }
      } finally {
        const left = (this.lookupsInFlight.get(since) ?? 1) - 1;
        if (left > 0) this.lookupsInFlight.set(since, left);
        else this.lookupsInFlight.delete(since);
        this.pruneRecentlyStored();
      }
    }
    const good: Candidate[] = [];
    const claimed = attempt.ids;
    let duplicates = 0;
    for (const d of candidates) {
      const id = d.cdrId;
      // A later copy within the batch (not its id's first), or a first stored or claimed elsewhere.
      if (firsts.get(id) !== d || (elsewhere.size > 0 && elsewhere.has(d.message.offset))) {
        duplicates++;
        continue;
      }
      good.push(d);
      const claim = this.claims.get(id);
      if (claim === undefined) {
        this.claims.set(id, d);
        claimed.push(id);
      } else if (samePosition(claim, d)) claimed.push(id);
    }
    // Again: the partition may have left this member during the lookup (its claims are then tracked until it does again).
    this.track(ctx, attempt);
    return { good, duplicates, decisions: [...elsewhere].join(','), attempt };
  }

  /** An attempt at a range; an earlier one (its write failed, or its prepare threw) is replaced, not kept beside. */
  private track(ctx: BatchContext<PartitionState>, attempt: Attempt): void {
    let byPartition = this.claimsByPartition.get(ctx.partition);
    if (!byPartition) this.claimsByPartition.set(ctx.partition, (byPartition = new Map<number, Attempt>()));
    const earlier = byPartition.get(ctx.range.from);
    if (earlier !== undefined && earlier !== attempt) this.releaseHold(earlier);
    byPartition.set(ctx.range.from, attempt);
  }

  private releaseHold(attempt: Attempt): void {
    if (attempt.hold === undefined || attempt.holdReleased) return;
    attempt.holdReleased = true;
    this.storedIds?.releaseHold(attempt.hold);
  }

  /** Claims of a batch that was given up: nothing was stored. */
  private release(ctx: BatchContext<PartitionState>, attempt: Attempt): void {
    for (const id of attempt.ids) this.claims.delete(id);
    const byPartition = this.claimsByPartition.get(ctx.partition);
    if (byPartition?.get(ctx.range.from) === attempt) byPartition.delete(ctx.range.from);
    this.releaseHold(attempt);
  }

  /** Ranges whose claimed ids this process tracks for a partition (for tests: no attempt's ids linger). */
  claimedRanges(partition: number): number {
    return this.claimsByPartition.get(partition)?.size ?? 0;
  }

  /** Claims of a batch now stored: kept as recently stored for lookups that were in flight meanwhile. */
  private stored(ctx: BatchContext<PartitionState>, attempt: Attempt): void {
    const ids = attempt.ids;
    if (ids.length > 0) {
      this.storedEpoch++;
      if (this.lookupsInFlight.size > 0) this.recentlyStored.set(this.storedEpoch, new Set(ids));
    }
    this.release(ctx, attempt);
  }

  private pruneRecentlyStored(): void {
    const oldest = this.lookupsInFlight.size === 0 ? Number.POSITIVE_INFINITY : Math.min(...this.lookupsInFlight.keys());
    for (const epoch of this.recentlyStored.keys()) if (epoch <= oldest) this.recentlyStored.delete(epoch);
  }
}

/** One prepare of a batch range: the ids it claimed, and its hold on the duplicate filter's generation (ADR 0045). */
interface Attempt {
  readonly ids: string[];
  readonly hold: FilterHold | undefined;
  holdReleased: boolean;
}

/** Two records at the same place in Kafka (topic, partition, offset). */
function samePosition(a: Candidate, b: Candidate): boolean {
  return a === b || (a.message.offset === b.message.offset && a.at === b.at);
}

/** Whether every row a batch stores (its good records less those its transform failed) was found at its position. */
function writtenWhole(
  good: readonly Candidate[],
  failures: readonly RecordFailure[],
  messages: readonly KafkaMessage[],
  found: ReadonlySet<string>,
  stored: number,
): boolean {
  const failed = new Set(failures.map((f) => messages[f.index]?.offset));
  const rows = good.filter((d) => !failed.has(d.message.offset));
  return rows.length === stored && rows.every((d) => found.has(d.message.offset));
}

function deadLetterOf(messages: readonly KafkaMessage[], f: RecordFailure): DeadLetter {
  const message = messages[f.index];
  if (!message) throw new PipelineError('invariant_broken', `prepare work named record ${f.index} of a batch of ${messages.length}`);
  return { message, error: new PipelineError(f.code, f.message), stage: f.stage, identifiersExpired: f.identifiersExpired };
}

/** Where a batch's recorded decisions name the schema ids it read as unusable (after its duplicates' offsets). */
const UNREADABLE_IDS = ';unreadable=';

/**
 * The decisions recorded with a batch: the offsets of its records that were duplicates of others stored elsewhere,
 * then — when a schema registry is used — the schema ids it read as unusable (dead-lettered), so that a retry or a
 * replay reads them so again though the registry holds them by then (ids found absent are asked again after a minute).
 */
function decisionsText(duplicateOffsets: string, unreadable: readonly number[]): string {
  return unreadable.length === 0 ? duplicateOffsets : `${duplicateOffsets}${UNREADABLE_IDS}${unreadable.join(',')}`;
}

/** `decisionsText` read back; a batch recorded before 2026-12-07 has offsets only. */
function recordedDecisions(recorded: string | undefined): { offsets: string; unreadable: ReadonlySet<number> } | undefined {
  if (recorded === undefined) return undefined;
  const at = recorded.indexOf(UNREADABLE_IDS);
  if (at < 0) return { offsets: recorded, unreadable: new Set() };
  const ids = recorded.slice(at + UNREADABLE_IDS.length);
  return { offsets: recorded.slice(0, at), unreadable: new Set(ids === '' ? [] : ids.split(',').map(Number)) };
}
