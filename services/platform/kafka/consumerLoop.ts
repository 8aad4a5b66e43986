import type { ClickHouseSettings } from '@clickhouse/client';
import type { Admin, AdminConfig, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { Histogram } from 'prom-client';
import { PipelineError, type RowShape } from '../../core/index.ts';
import { digestOf, isEncodedRows, rowCountOf, type EncodedRows, type Storage } from '../clickhouse/index.ts';
import type { CompressionName, PublisherChoice } from '../config/config.ts';
import type { ComponentHealth } from '../http/index.ts';
import { deadLetterMessage, messageBytes, oversizeOf, type DeadLetter } from './deadLetters.ts';
import { classifyBatchFailure, classifyKafkaError } from './errors.ts';
import { PartitionWatch, alarmReasons, type PartitionAlarm, type PartitionOffsets } from './partitionWatch.ts';
import { createPublisher, type Publisher, type TopicMessages } from './publisher.ts';
import { messageCount } from './packedMessages.ts';
import type { KafkaClientSecurity } from './security.ts';

/**
 * The consume → transform → idempotent write → commit loop every consumer of the pipeline runs on (ingest
 * today; billing and fraud next). A service supplies a `BatchHandler`: per-partition state and a `prepare`
 * step that turns a batch of messages into dead letters, messages to publish and rows to insert. The loop does
 * the rest, the same way for everyone:
 *
 * 1. a record larger than `maxRecordBytes` (or replaced by a stand-in while decompressing, codecs.ts) is
 *    dead-lettered by the loop as a stub with a pointer; the handler never sees it;
 * 2. the handler prepares the batch; the batch's exact offset range is recorded (`ingest_batches`, keyed by
 *    consumer group) with the handler's decisions and the batch's clock, before anything is written;
 * 3. dead letters and the handler's messages are published (publisher thread, acks=-1, idempotent producer);
 * 4. each table's rows are inserted with an insert-deduplication token named after the range and the rows' content;
 * 5. the handler's in-memory effects are applied, the offset is committed.
 *
 * After a crash the first batch of a partition is rebuilt to the recorded range and prepared with the recorded
 * decisions and clock, so the handler produces the same rows and ClickHouse drops the blocks that had landed:
 * exactly-once effect in ClickHouse, at-least-once on the published topics (docs/guarantees.md;
 * tests/integrity/consumerLoop*.test.ts prove it for any handler).
 *
 * Errors follow the one error model (core/errors): transient failures retry the same batch with backoff while
 * the consumer heartbeats; `unexpected` ones a few times; a record the store refuses on its own is found by
 * splitting the batch and dead-lettered alone; a `stop` error stops the loop, which reports itself failed.
 *
 * Back-pressure: kafkajs does not fetch a partition again until its batch handler returns, and fetches at most
 * `maxBytesPerPartition`, so a slow store slows consumption instead of growing memory. Lag is the broker's
 * (high watermark − committed offset), polled on its own, so it is true even when no batch arrives.
 */

export interface ConsumerLoopSettings {
  readonly groupId: string;
  readonly topic: string;
  /** Records per batch: a fetch is cut into batches of at most this many. */
  readonly maxBatchRecords: number;
  /**
   * A fetch waits at the broker for this many bytes, or `maxWaitTimeInMs` (default 1 byte, 250 ms): a consumer that
   * wants what arrives close together in one batch (fraud reorders a batch by event time) waits a little longer.
   */
  readonly minBytes?: number;
  readonly maxWaitTimeInMs?: number;
  readonly maxBytesPerPartition: number;
  readonly sessionTimeoutMs: number;
  readonly partitionsConcurrently: number;
  /** Where dead letters go; a handler that dead-letters needs one. */
  readonly dlqTopic?: string;
  /** The consumer's name in logs and dead-letter headers (`__connect.errors.connector.name`). */
  readonly connector: string;
  /** Codec of what the loop publishes. */
  readonly compression?: CompressionName;
  /** Larger records (key + value + headers) are dead-lettered as stubs without reaching the handler. */
  readonly maxRecordBytes?: number;
  /** What one producer batch may decompress to (recordLimitsOf): records past it arrive as stand-ins (codecs.ts). */
  readonly maxBatchBytes?: number;
  /** How often the broker's lag is read (ms). */
  readonly lagPollMs?: number;
  /** TLS and SASL for the publisher's own client (the consumer's client comes in `kafka`). */
  readonly security?: KafkaClientSecurity;
  /** Which client publishes (CDR_KAFKA_PUBLISHER; default `auto`: librdkafka where installed, else kafkajs). */
  readonly publisher?: PublisherChoice;
  /** With records waiting, no committed batch for this long makes health `degraded` (ms). */
  readonly stallMs?: number;
  /** How long records may wait behind a last stable offset that does not move before health says so (default 5 min). */
  readonly openTransactionAlarmMs?: number;
  /** How long `stop` waits for the consumer to let go (default: the session timeout, at least 30 s). */
  readonly stopTimeoutMs?: number;
  /** A batch at one stage this long is wedged: the loop fails so the process restarts (default 10 minutes). */
  readonly stageDeadlineMs?: number;
}

export interface BatchRange {
  readonly from: number;
  readonly to: number;
}

export interface BatchContext<S> {
  readonly topic: string;
  readonly partition: number;
  readonly range: BatchRange;
  readonly state: S;
  /** The batch's clock (epoch ms): when it was first prepared. A replay gets the same value. */
  readonly at: number;
  /**
   * The decisions `prepare` returned the first time it saw this batch, when it sees it again (a retry, a replay after
   * a crash, a half of a split batch); undefined the first time. A handler whose result depends on outside state
   * (other partitions' records) records that dependence here so that it decides the same way every time.
   */
  readonly recorded: string | undefined;
  /**
   * Which attempt at the range this is. `first`: a new batch. `again`: another attempt at a batch this loop began (a
   * retry, a half of a split batch): no attempt before reached `onDurable`. `replay`: a recorded range this loop did
   * not begin (after a crash, or a partition given up and taken over): an earlier attempt may have written it,
   * published it and counted it, all before its commit was lost (see `BatchResult.alreadyDurable`). Its retries stay
   * `replay` while the first attempt found it written, and are `again` once that attempt published it.
   */
  readonly attempt: 'first' | 'again' | 'replay';
}

/** Rows for one table. The deduplication token names the batch range, `label` and a digest of `identity` over the rows. */
export interface InsertPlan<T extends object = object> {
  readonly table: string;
  readonly label: string;
  /** The rows, or the same rows already serialised (ingest's prepare workers; `identity` then gave their digest). */
  readonly rows: readonly T[] | EncodedRows;
  /** What makes a row this row (its content for deduplication purposes). */
  readonly identity: (row: T) => string;
  readonly shape?: RowShape<T>;
  readonly settings?: ClickHouseSettings;
}

/** An insert plan of any row type (build one with `insertPlan`, which keeps the row type checked). */
export type AnyInsertPlan = InsertPlan<object> & { readonly __rows: 'checked' };

/** Checks a plan against its own row type, then lets it join a batch's list of writes. */
export function insertPlan<T extends object>(plan: InsertPlan<T>): AnyInsertPlan {
  return plan as unknown as AnyInsertPlan;
}

export interface BatchResult {
  readonly deadLetters: readonly DeadLetter[];
  readonly publish: readonly TopicMessages[];
  readonly writes: readonly AnyInsertPlan[];
  /** Recorded with the batch's range the first time (see BatchContext.recorded); at most a few KB. */
  readonly decisions?: string;
  /** In-memory effects (state, counters), applied once everything of the batch is durable, before the commit. */
  readonly onDurable?: () => void;
  /** The batch was given up uncommitted (the consumer stops, or the partition moved): undo claims made by prepare. */
  readonly onAbandoned?: () => void;
  /**
   * Offsets of records the handler decoded whose identifier window has closed: should the store refuse one of them,
   * its dead letter is a stub without the original (deadLetters.ts, `identifiersExpired`).
   */
  readonly identifiersExpired?: ReadonlySet<string>;
  /**
   * Runs right before the writes (after the publish): a last check that what `prepare` relied on still holds. Throwing
   * a retryable error makes the loop prepare the batch again (ingest: a month key destroyed meanwhile).
   */
  readonly beforeWrite?: () => Promise<void>;
  /**
   * Set by a handler that found a `replay` already written whole by an earlier attempt (ingest: every row it stores is
   * in the store at this very position). That attempt published the batch before writing it, so the loop publishes
   * nothing of it again (its dead letters included) and reports none of its own dead letters to `onRejected`; the
   * writes are still sent (deduplicated) and the handler counts nothing again in `onDurable`. Without it a batch whose
   * commit was lost was published and counted twice (found from outside: after a broker kill the status line counted
   * 132,000 records for 128,400 produced, and 41 records were in `cdr.dlq` twice).
   */
  readonly alreadyDurable?: boolean;
}

export interface BatchHandler<S> {
  /** State of a partition this member starts consuming at `firstOffset` (not called again while it keeps the partition). */
  openPartition(partition: number, firstOffset: number): Promise<S>;
  /**
   * What to do with a batch. Must not change `ctx.state` (do that in `onDurable`): the loop may call it again for
   * the same messages, and with `ctx.recorded` and `ctx.at` it must then give the same result.
   */
  prepare(messages: readonly KafkaMessage[], ctx: BatchContext<S>): Promise<BatchResult>;
  /** The partition went to another member (or the loop stopped). */
  closePartition?(partition: number, state: S): void;
  /** The loop dead-lettered a record itself (too large, or refused by the store on its own), for the handler's counters. */
  onRejected?(message: KafkaMessage, error: PipelineError): void;
}

export type LoopState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface LoopStatus {
  readonly state: LoopState;
  readonly batches: number;
  /**
   * Records the group can read and has not committed, over the topic's partitions, as the broker sees it (polled): up
   * to each partition's last stable offset, the end a read-committed consumer reads to.
   */
  readonly lag: number;
  /** Records past the last stable offsets: in, or behind, producer transactions still open (not in `lag`). */
  readonly unstable: number;
  /** Partitions waiting past the stall threshold: behind an open transaction, or held here without a commit. */
  readonly partitionAlarms: readonly PartitionAlarm[];
  /** When `lag` was read from the broker; undefined before the first successful read. */
  readonly lagAt: number | undefined;
  /** How old `lag` is now, on the loop's clock (ms); undefined before the first successful read. */
  readonly lagAgeMs: number | undefined;
  /** How many partitions of the topic the group gave this member at its last join (with or without traffic since). */
  readonly partitions: number;
  /**
   * Whether it has joined its consumer group since it started (kafkajs's GROUP_JOIN): until then it consumes nothing,
   * and after an unclean stop the join waits for the old member's session to expire (tens of seconds).
   */
  readonly joined: boolean;
  readonly startedAt: number | undefined;
  readonly lastProgressAt: number | undefined;
  /** Why the loop failed or is retrying (a code and a sentence; never a record's value). */
  readonly problem: string | undefined;
  /** Milliseconds without a committed batch while records wait, once over the stall threshold; else 0. */
  readonly stalledMs: number;
  /**
   * Milliseconds since the lag was last read from the broker (or since the start), once over the stall threshold;
   * else 0. While it grows, `lag` says nothing about what waits: a broker that stopped answering looked idle.
   */
  readonly lagUnreadMs: number;
  /** What each batch in progress is waiting on, and since when (a batch that never finishes says where it is). */
  readonly inFlight: readonly BatchInFlight[];
}

/**
 * Loops of this process that store into an embedded engine, by consumer group: any other member of such a group is
 * another process, with another store.
 */
const EMBEDDED_MEMBERS_HERE = new Map<string, number>();

export interface BatchInFlight {
  readonly partition: number;
  /** `preparing`, `recording the batch`, `publishing`, `writing <table>`, `committing`, `waiting to retry`, … */
  readonly stage: string;
  readonly since: number;
}

export interface ConsumerLoopDeps<S> {
  readonly kafka: Kafka;
  /** The same brokers as `kafka`'s, for the publisher thread's own client. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly storage: Storage;
  readonly log: Logger;
  readonly settings: ConsumerLoopSettings;
  readonly handler: BatchHandler<S>;
  /** Observed per batch, from start to commit. */
  readonly batchSeconds?: Histogram;
  /** Per-partition lag, as read from the broker. */
  readonly onLag?: (partition: number, lag: number) => void;
  /** Per-partition records past the last stable offset (behind an open transaction), as read from the broker. */
  readonly onUnstable?: (partition: number, records: number) => void;
  /** Called once when the loop stops for good because of an error (the service decides whether the process exits). */
  readonly onFatal?: (err: PipelineError) => void;
  readonly clock?: () => number;
}

/** What the first attempt at a replayed range found: written whole before (`alreadyDurable`) or not; unset until then. */
interface ReplayVerdict {
  durable?: boolean;
}

/** A recorded batch: its range, its clock and the handler's decisions. */
interface RecordedBatch extends BatchRange {
  readonly at: number;
  readonly decisions: string;
}

interface PartitionEntry<S> {
  state: S;
  /** The offset this member committed last for the partition (the next record it owes). */
  committed: number;
  /** The offset of the next message kafkajs should hand us; anything else means the position moved under us. */
  expectedNext: number;
  /** Set when the last recorded batch may not have completed: rebuild exactly that range before anything else. */
  replay: RecordedBatch | null;
  /** Messages held while a replay range is re-assembled across fetches. */
  buffer: KafkaMessage[];
  /**
   * A batch was given up uncommitted since the last commit: records before the next fetch may not be stored, so
   * nothing is committed past them until a batch of them commits (`commitPastFiltered`).
   */
  owes: boolean;
}

const RETRY_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];
/** How long `stop` waits for kafkajs to let go (its in-flight batch, the group leave) before it goes on without it. */
const STOP_CONSUMER_MIN_MS = 30_000;
/**
 * Longer than any bounded wait a stage contains (a request to a ClickHouse server 300 s, a publish with its retries
 * ~5 min, a prepare worker 120 s): a batch at one stage this long waits on something that will not answer. The
 * embedded engine's calls have no bound of their own (chdb cannot cancel a native query), so for them this is the
 * only one. Retries do not count against it: each attempt starts its stage again.
 */
const STAGE_DEADLINE_MS = 10 * 60_000;
const INTENT_TABLE = 'ingest_batches';
/** The pause before the loop restarts a consumer kafkajs gave up on (a broker away: see `onCrash`). */
const CRASH_RESTART_MS = 5_000;

/** Thrown out of eachBatch to make kafkajs stop (not retry, not restart) after the loop decided to stop. */
class LoopStopped extends Error {
  override readonly name = 'LoopStopped';
  readonly retriable = false;
}

/** How old the consumer's topic metadata may get (kafkajs: 5 min): how soon partitions added to the topic are read. */
export const CONSUMER_METADATA_MAX_AGE_MS = 30_000;

export class ConsumerLoop<S> {
  private readonly consumer: Consumer;
  /** Lists offsets at READ_COMMITTED (kafkajs's only level before the patch): the last stable offsets. */
  private readonly admin: Admin;
  /** Lists offsets at READ_UNCOMMITTED (patches/kafkajs+2.2.4.patch): the high watermarks. */
  private readonly endAdmin: Admin;
  private readonly watch = new PartitionWatch();
  private unstable = 0;
  private readonly publisher: Publisher;
  private readonly partitions = new Map<number, PartitionEntry<S>>();
  private readonly clock: () => number;
  private state: LoopState = 'idle';
  private batches = 0;
  private startedAt: number | undefined;
  private lastProgressAt: number | undefined;
  private problem: string | undefined;
  /** Per partition: the stage its batch in progress is at (see BatchInFlight). */
  private readonly working = new Map<number, { stage: string; since: number }>();
  /** Commits past a filtered-out batch under way, by partition (commitPastFiltered). */
  private readonly skipping = new Map<number, Promise<void>>();
  /** Why kafkajs is restarting the consumer; cleared when it has joined the group again (with or without traffic). */
  private membershipProblem: string | undefined;
  private joined = false;
  /** Joins of the group since start (GROUP_JOIN): a retried commit past filtered offsets is valid within one only. */
  private joins = 0;
  /** Per partition, the offset the last commit past filtered offsets moved it to, in this membership. */
  private readonly committedPast = new Map<number, number>();
  /**
   * The partitions of the topic the group gave this member at its last join. Not `partitions.size`: an entry is built
   * at a partition's first batch, so an idle member that held partitions said `partitions: 0` (found from outside).
   */
  private assigned: readonly number[] = [];
  /** Set while members of other processes share this group although this process's store is embedded (checkSoleStore). */
  private sharedStoreProblem: string | undefined;
  private countedHere = false;
  private fatal: PipelineError | undefined;
  private lag = 0;
  private lagAt: number | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  /** When the records now waiting began to wait, at the earliest (the lag read before the one that first saw them). */
  private waitingSince: number | undefined;
  private lagPoll: Promise<void> = Promise.resolve();
  private groupCheck: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ConsumerLoopDeps<S>) {
    this.clock = deps.clock ?? Date.now;
    const s = deps.settings;
    this.consumer = deps.kafka.consumer({
      groupId: s.groupId,
      maxBytesPerPartition: s.maxBytesPerPartition,
      maxBytes: s.maxBytesPerPartition * 4,
      sessionTimeout: s.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(s.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: s.maxWaitTimeInMs ?? 250,
      ...(s.minBytes !== undefined ? { minBytes: s.minBytes } : {}),
      retry: { retries: 10 },
      // Partitions added to the topic are found when metadata is next read: kafkajs's 5 minutes left them unconsumed
      // for ~4 min (found from outside, 2026-12-06); 30 s is well within the stall threshold (CDR_CONSUMER_STALL_MS).
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
    });
    this.admin = deps.kafka.admin();
    const readUncommitted: AdminConfig & { readonly isolationLevel: number } = { isolationLevel: 0 };
    this.endAdmin = deps.kafka.admin(readUncommitted);
    this.publisher = createPublisher(
      { brokers: deps.brokers, clientId: deps.clientId, log: deps.log, compression: s.compression ?? 'none', security: s.security ?? {} },
      s.publisher,
    );
  }

  get topic(): string {
    return this.deps.settings.topic;
  }

  status(): LoopStatus {
    // The loop's own clock, which stamped lastProgressAt and startedAt: a stall is measured on one clock.
    const now = this.clock();
    // Since the last commit, or since records began to wait if they came later: an idle spell is no stall (found from
    // outside, 2026-12-06: the first burst after 72 s idle was "no batch committed for 72 s" 2 s after it arrived).
    const since = Math.max(this.lastProgressAt ?? 0, this.startedAt ?? now, this.waitingSince ?? 0);
    const stallMs = this.deps.settings.stallMs ?? 60_000;
    const stalledMs = this.state === 'running' && this.lag > 0 && now - since > stallMs ? now - since : 0;
    const lagSince = this.lagAt ?? this.startedAt ?? now;
    const lagUnreadMs = this.state === 'running' && now - lagSince > stallMs ? now - lagSince : 0;
    return {
      state: this.state,
      batches: this.batches,
      lag: this.lag,
      unstable: this.unstable,
      partitionAlarms:
        this.state === 'running'
          ? this.watch.alarms(now, { stallMs, openTransactionMs: this.deps.settings.openTransactionAlarmMs ?? 300_000 }, new Set(this.assigned))
          : [],
      lagAt: this.lagAt,
      lagAgeMs: this.lagAt === undefined ? undefined : Math.max(0, now - this.lagAt),
      partitions: this.assigned.length,
      joined: this.joined,
      startedAt: this.startedAt,
      lastProgressAt: this.lastProgressAt,
      problem:
        this.state === 'failed'
          ? this.problem
          : [this.membershipProblem, this.sharedStoreProblem, this.problem].filter((p) => p !== undefined).join('; ') || undefined,
      stalledMs,
      lagUnreadMs,
      inFlight: [...this.working].map(([partition, w]) => ({ partition, stage: w.stage, since: w.since })),
    };
  }

  private at(partition: number, stage: string): void {
    this.working.set(partition, { stage, since: this.clock() });
  }

  /** Joins the group and starts consuming; resolves once the consumer runs. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new PipelineError('invariant_broken', `consumer loop ${this.deps.settings.connector} was already started`);
    this.state = 'starting';
    const { settings, log } = this.deps;
    this.countHere(+1);
    try {
      await this.publisher.start();
      log.info({ connector: settings.connector, publisher: this.publisher.implementation }, 'publisher ready');
      await this.admin.connect();
      await this.endAdmin.connect();
      await this.consumer.connect();
      await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    } catch (err) {
      this.state = 'failed';
      this.countHere(-1);
      // Not running yet, so stop() would do nothing: end the publisher thread here, or it keeps the process alive.
      await this.publisher.close();
      await this.consumer.disconnect().catch(() => undefined);
      await this.admin.disconnect().catch(() => undefined);
      await this.endAdmin.disconnect().catch(() => undefined);
      throw classifyKafkaError(err);
    }
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joins++;
      this.committedPast.clear();
      // Back in the group: a restart's reason no longer holds, even if no record comes to clear it (seen with
      // `cdr start --rate 0`: degraded with "coordinator is loading" long after the join).
      this.membershipProblem = undefined;
      this.joined = true;
      this.onAssignment(e.payload.memberAssignment[this.topic] ?? []);
      this.groupCheck = this.checkSoleStore();
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => this.onCrash(e.payload.error, e.payload.restart));
    // A fetched batch of nothing but aborted records and transaction markers reaches no handler: kafkajs resolves its
    // offset itself and commits it only with autoCommit (off here). Left so, a transaction aborted as the last thing on
    // a partition held its committed offset below the end for good — lag 2 and health degraded (found from outside).
    // Likewise a batch of records followed by markers only: a committed transaction's records and its commit marker
    // come in one fetch, the batch commits past its last record, and the marker after it reaches no handler either —
    // lag 1 and health degraded until a new record came (found from outside, 2026-12-06). Committed past only when this
    // member owes nothing before it (`commitPastFiltered`).
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.topic !== this.topic) return;
      const partition = e.payload.partition;
      if (e.payload.batchSize !== 0) {
        const entry = this.partitions.get(partition);
        if (!entry || entry.expectedNext > Number(e.payload.lastOffset)) return;
      }
      this.queueCommitPast(partition, Number(e.payload.lastOffset), 1, this.joins);
    });
    this.state = 'running';
    this.startedAt = this.clock();
    // Read from the broker before the join, not after: after an unclean stop the join waits out the old member's
    // session (30-45 s), and the lag was absent from /metrics and 0 in /healthz meanwhile while records waited (found
    // from outside, 2026-12-06).
    this.scheduleLagPoll(0);
    await this.runConsumer();
    log.info({ topic: this.topic, group: settings.groupId, consumer: settings.connector }, 'consumer started');
  }

  /** Stops after the batch in progress finishes (or is abandoned uncommitted if the store is down); idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'idle' || this.state === 'stopped' || this.state === 'stopping') return;
    const failed = this.state === 'failed';
    this.state = 'stopping';
    this.deps.log.info({ consumer: this.deps.settings.connector }, 'consumer stopping');
    if (this.lagTimer) clearTimeout(this.lagTimer);
    await this.lagPoll;
    // Before the admin client disconnects: a check still asking the broker would connect it again, and its sockets
    // kept the process alive after the stop (a CI rehearsal hung on tests/integration/platform/consumerLoopStop.test.ts).
    await this.groupCheck;
    const deadlineMs = this.deps.settings.stopTimeoutMs ?? Math.max(STOP_CONSUMER_MIN_MS, this.deps.settings.sessionTimeoutMs);
    const deadline = Date.now() + deadlineMs;
    // The batches in progress finish and commit while kafkajs still runs: once its runner stops, commitOffsets
    // returns without committing, and the next owner would replay them (stored once, but published and counted
    // again). No new batch starts meanwhile (onBatch), and one that retries gives up (withRetries).
    if (!failed) {
      try {
        this.consumer.pause([{ topic: this.topic }]);
      } catch {
        // Not running any more: nothing to drain.
      }
      while (this.working.size > 0 && Date.now() < deadline) await sleep(20);
    }
    // kafkajs's disconnect waits for the batch in progress; one that never finishes (seen once in the integrity suite,
    // cause unknown) must not wedge the shutdown: go on without it. Nothing of that batch was committed, so whoever
    // owns the partition next replays it.
    let timer: NodeJS.Timeout | undefined;
    const disconnected = await Promise.race([
      this.consumer
        .disconnect()
        .then(() => true)
        .catch((err: unknown) => {
          this.deps.log.warn({ err }, 'consumer disconnect failed');
          return true;
        }),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
    if (!disconnected)
      this.deps.log.error(
        { consumer: this.deps.settings.connector, inFlight: this.status().inFlight.map((b) => ({ ...b, since: new Date(b.since).toISOString() })) },
        `consumer did not stop within ${deadlineMs / 1000} s; going on without it (its batch in progress stays uncommitted and is replayed by the next owner)`,
      );
    await this.admin.disconnect().catch(() => undefined);
    await this.endAdmin.disconnect().catch(() => undefined);
    await this.publisher.close();
    for (const [p, e] of this.partitions) this.deps.handler.closePartition?.(p, e.state);
    this.partitions.clear();
    this.assigned = [];
    this.sharedStoreProblem = undefined;
    this.countHere(-1);
    this.state = failed ? 'failed' : 'stopped';
  }

  /**
   * Whether a batch in progress should be given up (uncommitted, for the next owner): kafkajs stopped or moved the
   * partition, or this loop is stopping. A method, not a field read: TypeScript would narrow `state` across awaits.
   */
  private abandoning(payload: EachBatchPayload): boolean {
    return !payload.isRunning() || payload.isStale() || this.state === 'stopping';
  }

  /** Stops fetching (the batch in progress completes); `resume` continues where it stopped. */
  pause(): void {
    this.consumer.pause([{ topic: this.topic }]);
  }

  resume(): void {
    this.consumer.resume([{ topic: this.topic }]);
  }

  /** Reads the group's lag from the broker: high watermark − committed offset, per partition of the topic. */
  private scheduleLagPoll(delayMs: number): void {
    this.lagTimer = setTimeout(() => {
      this.failIfWedged();
      this.lagPoll = this.readLag().finally(() => {
        if (this.state === 'running' || this.state === 'starting')
          this.scheduleLagPoll(this.deps.settings.lagPollMs ?? Math.min(5_000, (this.deps.settings.stallMs ?? 60_000) / 2));
      });
    }, delayMs);
    this.lagTimer.unref();
  }

  /**
   * A batch stuck at one stage (seen in the integrity suite under load: an await inside a batch that never returned)
   * holds its partition forever, and kafkajs cannot stop around it. Failing the loop stops the service, whose
   * supervisor starts it again; the batch was not committed, so the partition's next owner replays it.
   */
  private failIfWedged(): void {
    if (this.state !== 'running') return;
    const limit = this.deps.settings.stageDeadlineMs ?? STAGE_DEADLINE_MS;
    const now = this.clock();
    for (const [partition, w] of this.working) {
      if (now - w.since <= limit) continue;
      this.fail(
        new PipelineError(
          'stuck',
          `partition ${partition}'s batch has been at '${w.stage}' for ${Math.round((now - w.since) / 1000)} s (limit ${Math.round(limit / 1000)} s); ` +
            'stopping so the service is restarted (the batch is uncommitted and will be replayed)',
        ),
      );
      return;
    }
  }

  private async readLag(): Promise<void> {
    try {
      const [stable, ends, committed] = await Promise.all([
        this.admin.fetchTopicOffsets(this.topic),
        this.endAdmin.fetchTopicOffsets(this.topic),
        this.admin.fetchOffsets({ groupId: this.deps.settings.groupId, topics: [this.topic] }),
      ]);
      const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
      const endOf = new Map(ends.map((e) => [e.partition, Number(e.high)]));
      const offsets: PartitionOffsets[] = stable.map((h) => ({
        partition: h.partition,
        // Nothing committed yet: everything the partition still holds is waiting (PartitionWatch counts from `low`).
        committed: byPartition.get(h.partition) ?? -1,
        low: Number(h.low),
        stable: Number(h.high),
        high: endOf.get(h.partition) ?? Number(h.high),
      }));
      const readAt = this.clock();
      let total = 0;
      let unstable = 0;
      for (const r of this.watch.observe(offsets, readAt)) {
        total += r.lag;
        unstable += r.unstable;
        this.deps.onLag?.(r.partition, r.lag);
        this.deps.onUnstable?.(r.partition, r.unstable);
      }
      this.unstable = unstable;
      // Records waiting that did not at the read before came after it: they wait since then at the earliest.
      if (total === 0) this.waitingSince = undefined;
      else if (this.lag === 0 && this.waitingSince === undefined) this.waitingSince = this.lagAt ?? readAt;
      this.lag = total;
      this.lagAt = readAt;
    } catch (err) {
      this.deps.log.debug({ err: (err as Error).message }, 'reading consumer lag failed; keeping the last value');
    }
  }

  private countHere(delta: 1 | -1): void {
    if (!this.deps.storage.embedded || this.countedHere === delta > 0) return;
    this.countedHere = delta > 0;
    const group = this.deps.settings.groupId;
    const n = (EMBEDDED_MEMBERS_HERE.get(group) ?? 0) + delta;
    if (n > 0) EMBEDDED_MEMBERS_HERE.set(group, n);
    else EMBEDDED_MEMBERS_HERE.delete(group);
  }

  /**
   * With an embedded engine the group must be this process's alone: a member elsewhere (a second `cdr start` with
   * another data directory on the same KAFKA_BROKERS) takes part of the partitions into its own store, and each store
   * — and the API answering from it — then holds part of the traffic, silently (found from outside). Checked at each
   * join: a member coming or going rebalances the group.
   */
  private async checkSoleStore(): Promise<void> {
    // Only while running: a join seen while stopping (or after a failure) must not use the admin client stop() closes.
    if (!this.deps.storage.embedded || this.state !== 'running') return;
    const { settings, log } = this.deps;
    try {
      const { groups } = await this.admin.describeGroups([settings.groupId]);
      const members = groups[0]?.members.length ?? 0;
      const here = EMBEDDED_MEMBERS_HERE.get(settings.groupId) ?? 1;
      const elsewhere = members - here;
      if (elsewhere <= 0) {
        this.sharedStoreProblem = undefined;
        return;
      }
      const hosts = [...new Set(groups[0]!.members.map((m) => m.clientHost.replace(/^\//, '')))].join(', ');
      this.sharedStoreProblem =
        `consumer group ${settings.groupId} has ${elsewhere} member(s) in other processes (hosts ${hosts}) but this ` +
        `process stores into an embedded ClickHouse: their partitions go to another store, and each holds part of the ` +
        `traffic. Give each embedded store its own groups (CDR_INGEST_GROUP, CDR_BILLING_GROUP, CDR_FRAUD_GROUP) or ` +
        `share one ClickHouse (CLICKHOUSE_URL)`;
      log.warn({ consumer: settings.connector, group: settings.groupId, members, here }, this.sharedStoreProblem);
    } catch (err) {
      log.debug({ consumer: settings.connector, err: (err as Error).message }, 'could not describe the consumer group; checked again at the next join');
    }
  }

  private onAssignment(assigned: readonly number[]): void {
    // A partition that waited unassigned (or under another member) is this member's to move from now on; one it held
    // before the join keeps its clock (kafkajs rejoins hand the same partitions back: a member rejoining again and
    // again must not hide a partition it never moves, found in review).
    const before = new Set(this.assigned);
    this.watch.heldFrom(
      assigned.filter((p) => !before.has(p)),
      this.clock(),
    );
    this.assigned = [...assigned];
    const keep = new Set(assigned);
    for (const [p, e] of this.partitions) {
      if (!keep.has(p)) {
        this.deps.handler.closePartition?.(p, e.state);
        this.partitions.delete(p);
        continue;
      }
      // Kept across the rebalance: check the position again at its next batch (keeps the handler's state if nobody
      // else moved the partition on in between).
      e.expectedNext = -1;
      e.buffer = [];
      e.replay = null;
    }
  }

  private onCrash(error: Error, restart: boolean): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    if (restart) {
      const e = classifyKafkaError(error);
      this.membershipProblem = `${e.code}: consumer restarting after: ${e.message}`;
      this.deps.log.warn({ consumer: this.deps.settings.connector, code: e.code, err: e.message }, 'consumer crashed; kafkajs restarts it');
      return;
    }
    const e = this.fatal ?? classifyKafkaError(error);
    // kafkajs gives up for good on some errors of a broker that is away or just back: KafkaJSGroupCoordinatorNotFound is
    // "non-retriable" to it, so it did not restart the consumer and the loop failed — `cdr start` exited 1 after a broker
    // restart on a loaded machine (CI, 2026-12-05: "Failed to find group coordinator"). The error model waits out a
    // broker away however long: restart the consumer here, after a pause, while the loop is not failed for a reason
    // of its own.
    if (this.fatal === undefined && e.code === 'broker_unavailable') {
      this.restartAfterCrash(e);
      return;
    }
    this.fail(e);
  }

  private restartAfterCrash(e: PipelineError): void {
    const { settings, log } = this.deps;
    this.membershipProblem = `${e.code}: consumer restarting after: ${e.message}`;
    this.joined = false;
    this.assigned = [];
    log.warn({ consumer: settings.connector, code: e.code, err: e.message }, 'consumer crashed and kafkajs gave up on it; restarting it in 5 s');
    setTimeout(() => {
      if (this.state !== 'running') return;
      this.consumer
        .connect()
        .then(() => this.runConsumer())
        .catch((err: unknown) => this.onCrash(err instanceof Error ? err : new Error(String(err)), false));
    }, CRASH_RESTART_MS).unref();
  }

  private runConsumer(): Promise<void> {
    return this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.deps.settings.partitionsConcurrently,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  private fail(e: PipelineError): void {
    if (this.state === 'failed') return;
    if (this.state === 'stopped') {
      // A batch that stop() gave up on, ending after all: the loop is stopped and stays so (and no restart is asked for).
      this.deps.log.warn({ consumer: this.deps.settings.connector, code: e.code }, 'a batch abandoned at stop ended in an error; ignored');
      return;
    }
    this.state = 'failed';
    this.problem = `${e.code}: ${e.message}`;
    this.deps.log.error({ consumer: this.deps.settings.connector, code: e.code, err: e }, 'consumer stopped by an error it cannot get past');
    this.deps.onFatal?.(e);
  }

  /**
   * The partition's entry, (re)built when this is its first batch here or the position moved under us; undefined
   * when abandoned (the consumer is stopping or lost the partition while the store was away).
   */
  private async entryFor(payload: EachBatchPayload, firstOffset: number): Promise<PartitionEntry<S> | undefined> {
    const partition = payload.batch.partition;
    const known = this.partitions.get(partition);
    if (known && known.expectedNext === firstOffset) return known;
    // Keep the handler's state only if the partition resumes exactly where this member committed it.
    let state: S | undefined;
    if (known && known.committed === firstOffset) state = known.state;
    else state = await this.withRetries(partition, payload, () => this.deps.handler.openPartition(partition, firstOffset));
    if (state === undefined) return undefined;
    const replay = await this.unfinishedBatch(payload, firstOffset);
    if (replay === undefined) return undefined;
    if (known && known.state !== state) this.deps.handler.closePartition?.(partition, known.state);
    const entry: PartitionEntry<S> = { state, committed: firstOffset, expectedNext: firstOffset, replay, buffer: [], owes: false };
    this.partitions.set(partition, entry);
    return entry;
  }

  /** The recorded batch that starts at `firstOffset` (its writes may be partial), null if none; undefined when abandoned. */
  private async unfinishedBatch(payload: EachBatchPayload, firstOffset: number): Promise<RecordedBatch | null | undefined> {
    const { storage, settings, log } = this.deps;
    const partition = payload.batch.partition;
    this.at(partition, 'reading the last recorded batch');
    const intents = await this.withRetries(partition, payload, () =>
      storage.query<{ from_offset: string; to_offset: string; at: string; decisions: string }>(
        `SELECT from_offset, to_offset, toUnixTimestamp64Milli(created_at) AS at, decisions FROM ${storage.table(INTENT_TABLE)}
         WHERE consumer_group = {g:String} AND topic = {t:String} AND partition = {p:UInt32}
         ORDER BY from_offset DESC, created_at DESC LIMIT 1`,
        { g: settings.groupId, t: this.topic, p: partition },
      ),
    );
    if (intents === undefined) return undefined;
    const last = intents[0];
    if (!last) return null;
    const from = Number(last.from_offset);
    const to = Number(last.to_offset);
    if (from === firstOffset) {
      log.info({ consumer: settings.connector, partition, from, to }, 'replaying the last recorded batch of this partition');
      return { from, to, at: Number(last.at), decisions: last.decisions };
    }
    if (from < firstOffset && to >= firstOffset) {
      // Only possible when the start of the recorded batch is gone from Kafka (topic retention ran while the
      // consumer was down): it cannot be rebuilt, so carry on from what Kafka still has, and say so loudly.
      log.error(
        { consumer: settings.connector, partition, firstOffset, from, to },
        'the unfinished batch starts before the oldest offset Kafka still holds; continuing without replay',
      );
    }
    return null;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    // While stopping, only the batches already in progress finish; this one is left uncommitted for the next owner.
    if (batch.messages.length === 0 || this.abandoning(payload)) return;
    try {
      await this.onBatchOfPartition(payload);
    } finally {
      this.working.delete(batch.partition);
    }
  }

  /**
   * Commits past a batch kafkajs filtered to nothing (aborted records, transaction markers), when nothing of this
   * partition is in progress or waiting to be replayed; the partition's next batch waits for it (onBatchOfPartition), so
   * the committed offset never goes back. A failure is tried again (below) until it is committed or moot.
   */
  private queueCommitPast(partition: number, lastOffset: number, attempt: number, join: number): void {
    // After the partition's commit of this kind still under way, never beside it: an older offset committed after a
    // newer one would move the group back (found in review).
    const before = this.skipping.get(partition) ?? Promise.resolve();
    const skip = before
      .then(() => this.commitPastFiltered(partition, lastOffset, attempt, join))
      .finally(() => {
        if (this.skipping.get(partition) === skip) this.skipping.delete(partition);
      });
    this.skipping.set(partition, skip);
  }

  private async commitPastFiltered(partition: number, lastOffset: number, attempt: number, join: number): Promise<void> {
    const entry = this.partitions.get(partition);
    if (this.state !== 'running' || this.working.has(partition) || !Number.isSafeInteger(lastOffset)) return;
    // A retry only within the membership it began in, for a partition still this member's: the group coordinator does
    // not check who owns a partition, and a late commit could move another member's position back.
    if (attempt > 1 && (join !== this.joins || !this.assigned.includes(partition))) return;
    // Only where everything handed out before is committed: not past a batch given up uncommitted (`owes`), a replay
    // being assembled, or records still to come. (A partition kept across a rebalance has `expectedNext` -1 and owes
    // nothing: its fetch starts at this member's own commit.)
    if (entry && (entry.owes || entry.replay !== null || entry.buffer.length > 0 || entry.expectedNext > lastOffset + 1)) return;
    // Never at or below what a commit of this kind already moved the partition to (in this membership): a retry of an
    // older one after a newer one succeeded would move the group back — for a partition with no entry (nothing but
    // aborted records and markers so far) nothing else stops it (found in review).
    if ((this.committedPast.get(partition) ?? -1) >= lastOffset + 1) return;
    const expected = entry?.expectedNext;
    try {
      await this.consumer.commitOffsets([{ topic: this.topic, partition, offset: String(lastOffset + 1) }]);
      if (join === this.joins) this.committedPast.set(partition, Math.max(this.committedPast.get(partition) ?? -1, lastOffset + 1));
      // Unless the partition moved on meanwhile (a rebalance re-checks the position: -1; a new entry).
      if (entry && this.partitions.get(partition) === entry && entry.expectedNext === expected) {
        entry.committed = lastOffset + 1;
        entry.expectedNext = lastOffset + 1;
      }
    } catch (err) {
      // kafkajs has moved its fetch position past these offsets: no batch comes for them again, and without a new record
      // the partition's lag would stay above 0 and health degraded. Tried again, with a growing wait, until it is
      // committed, a batch commits past it, or the partition is no longer this member's.
      const retryInMs = Math.min(30_000, 1_000 * 2 ** Math.min(attempt - 1, 5));
      this.deps.log.warn(
        { consumer: this.deps.settings.connector, partition, err, retry_in_ms: retryInMs },
        'could not commit past aborted records or transaction markers; trying again',
      );
      setTimeout(() => this.queueCommitPast(partition, lastOffset, attempt + 1, join), retryInMs).unref();
    }
  }

  private async onBatchOfPartition(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    await this.skipping.get(batch.partition);
    this.at(batch.partition, 'opening the partition');
    const entry = await this.entryFor(payload, Number(batch.messages[0]!.offset));
    if (!entry) return;

    let messages = batch.messages;
    if (entry.replay) {
      const replay = entry.replay;
      // A loop, not a spread: a fetched batch can hold more records than a call's arguments (a producer's 150,000-record
      // batch overflowed the stack in kafkajs itself, patches/kafkajs+2.2.4.patch).
      for (const m of messages) if (Number(m.offset) >= replay.from && Number(m.offset) <= replay.to) entry.buffer.push(m);
      const last = entry.buffer[entry.buffer.length - 1];
      if (!last || Number(last.offset) < replay.to) {
        // Not all of the recorded range has arrived yet: keep it, move the fetch position on, commit nothing.
        if (last) {
          payload.resolveOffset(last.offset);
          entry.expectedNext = Number(last.offset) + 1;
        }
        return;
      }
      const ok = await this.runBatch(payload, entry, entry.buffer, replay, replay);
      if (!ok) return;
      entry.buffer = [];
      entry.replay = null;
      messages = messages.filter((m) => Number(m.offset) > replay.to);
    }
    const max = this.deps.settings.maxBatchRecords;
    for (let i = 0; i < messages.length && !this.abandoning(payload); i += max) {
      const chunk = messages.slice(i, i + max);
      const range = { from: Number(chunk[0]!.offset), to: Number(chunk[chunk.length - 1]!.offset) };
      const ok = await this.runBatch(payload, entry, chunk, range, null);
      if (!ok) return;
      this.at(batch.partition, 'heartbeating');
      await payload.heartbeat();
    }
  }

  /**
   * One batch, with retries; false when abandoned because the consumer is stopping or lost the partition. `recorded`
   * is the replayed batch's record, or null for a new batch (recorded on its first attempt).
   */
  private async runBatch(
    payload: EachBatchPayload,
    entry: PartitionEntry<S>,
    messages: readonly KafkaMessage[],
    range: BatchRange,
    recorded: RecordedBatch | null,
  ): Promise<boolean> {
    const partition = payload.batch.partition;
    const endTimer = this.deps.batchSeconds?.startTimer();
    let record: RecordedBatch | null = recorded;
    const abandon: (() => void)[] = [];
    // Set once the batch's writes are durable: a retry then only commits again. Writing it again would store nothing
    // (the inserts are deduplicated) but would publish again and count the batch twice in the handler's `onDurable`
    // (found from outside: `cdr_ingest_records_total` over-counted after a broker freeze failed the commits).
    let written = false;
    // A replay's verdict from its first attempt. Once that attempt found the batch not yet durable it published it, and
    // counts it if it gets to; its retries are then `again`, so that a write that landed but reported a failure is not
    // taken for an earlier run's (it would be counted by no one).
    const replay: ReplayVerdict = {};
    // Given up (abandoned, or the group's error handed to kafkajs): the batch may be durable, even counted and
    // published, without its commit, and kafkajs may hand the same records to this member again without a rejoin
    // (after NOT_COORDINATOR_FOR_GROUP it fetches again from the last resolved offset).
    const giveUp = (): void => {
      for (const undo of abandon) undo();
      entry.owes = true;
      if (recorded === null) {
        // A new batch: its next fetch must be checked against the recorded range as a replay, not taken for a new
        // batch (found in tests/integrity/coordinatorLoss.test.ts: a batch stored once, counted and published twice).
        entry.expectedNext = -1;
      } else {
        // The replay: what earlier fetches buffered stays; this fetch's records come again (not twice in the buffer).
        entry.buffer = entry.buffer.filter((m) => Number(m.offset) < entry.expectedNext);
      }
    };
    let done: boolean | undefined;
    try {
      done = await this.withRetries(partition, payload, async () => {
        if (!written) {
          const at = record?.at ?? this.clock();
          const attempt = recorded !== null && replay.durable !== false ? 'replay' : record !== null ? 'again' : 'first';
          await this.writeBatch(partition, entry, messages, range, at, record?.decisions, { attempt, replay }, abandon, async (decisions) => {
            // The first prepare of a new batch: record its range, clock and decisions before anything is written.
            await this.recordIntent(partition, range, at, decisions);
            record = { ...range, at, decisions };
          });
          written = true;
        }
        this.at(partition, 'committing');
        await this.consumer.commitOffsets([{ topic: this.topic, partition, offset: String(range.to + 1) }]);
        return true;
      });
    } catch (err) {
      giveUp();
      throw err;
    }
    if (done !== true) {
      giveUp();
      return false;
    }
    payload.resolveOffset(String(range.to));
    entry.committed = range.to + 1;
    entry.expectedNext = range.to + 1;
    entry.owes = false;
    endTimer?.();
    this.batches++;
    this.lastProgressAt = this.clock();
    // A batch of another partition that finishes after the loop failed must not erase why it failed (health would
    // say "failed: unknown error"; seen once in CI, tests/integration/ingest/health.test.ts).
    if (this.state !== 'failed') this.problem = undefined;
    return true;
  }

  /**
   * Runs `work` until it succeeds, following the error model: retry transient failures with backoff (heartbeating
   * in between), stop on a `stop` error or after too many `unexpected` ones. Returns undefined when the consumer is
   * stopping or the partition was taken away meanwhile (nothing committed; the batch will be replayed).
   */
  private async withRetries<T>(partition: number, payload: EachBatchPayload, work: (attempt: number) => Promise<T>): Promise<T | undefined> {
    const { log, settings } = this.deps;
    // Attempts are counted per error code: a limited code (`unexpected`) gets its own allowance however many
    // storage or broker outages the same batch sat out before it.
    const failuresByCode = new Map<string, number>();
    for (let attempt = 0; ; attempt++) {
      try {
        return await work(attempt);
      } catch (err) {
        // The group moved on (rebalance, or this member was fenced): give the batch up uncommitted and let kafkajs
        // rejoin. Whoever owns the partition next replays the recorded range, so nothing is lost or doubled.
        if (err instanceof LoopStopped) throw err;
        const moved = membershipErrorIn(err);
        if (moved !== undefined) throw moved;
        const e = classifyBatchFailure(err);
        const failures = (failuresByCode.get(e.code) ?? 0) + 1;
        failuresByCode.set(e.code, failures);
        if (e.disposition !== 'retry' || failures >= e.maxAttempts) {
          const fatal = e.disposition === 'retry' ? new PipelineError(e.code, `${e.message} (gave up after ${failures} attempts)`, { cause: e }) : e;
          this.fatal = fatal;
          this.fail(fatal);
          throw new LoopStopped(fatal.message);
        }
        this.problem = `${e.code}: ${e.message}`;
        const delay = RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
        log.warn({ consumer: settings.connector, partition, attempt, code: e.code, err: e.message }, 'batch failed; retrying the same batch');
        if (this.abandoning(payload)) return undefined;
        this.at(partition, 'waiting to retry');
        await sleep(delay);
        try {
          this.at(partition, 'heartbeating');
          await payload.heartbeat();
        } catch (hb) {
          const moved = membershipErrorIn(hb);
          if (moved !== undefined) throw moved;
          // Any other heartbeat failure: the broker is away; the next attempt finds out.
        }
        if (this.abandoning(payload)) return undefined;
      }
    }
  }

  private async recordIntent(partition: number, range: BatchRange, at: number, decisions: string): Promise<void> {
    const { storage, settings } = this.deps;
    await storage.insert(INTENT_TABLE, [
      {
        consumer_group: settings.groupId,
        topic: this.topic,
        partition,
        from_offset: String(range.from),
        to_offset: String(range.to),
        created_at: at,
        decisions,
      },
    ]);
  }

  /**
   * Prepares, publishes and writes one batch. Records the loop refuses (too large) are dead-lettered here; the rest go
   * to the handler. When the store refuses the rows of a batch for their data, the batch is split in halves (each with
   * its own deterministic tokens, prepared with the same clock and decisions) until the record that fails alone is
   * found; it is dead-lettered and the rest written. A replay after a crash takes the same path to the same result.
   */
  private async writeBatch(
    partition: number,
    entry: PartitionEntry<S>,
    messages: readonly KafkaMessage[],
    range: BatchRange,
    at: number,
    recorded: string | undefined,
    { attempt, replay }: { attempt: BatchContext<S>['attempt']; replay: ReplayVerdict },
    abandon: (() => void)[],
    onFirstPrepare: (decisions: string) => Promise<void>,
  ): Promise<void> {
    const { handler, settings, storage } = this.deps;
    const tooLarge: DeadLetter[] = [];
    const forHandler: KafkaMessage[] = [];
    for (const m of messages) {
      const standIn = oversizeOf(m);
      const size = standIn ?? messageBytes(m);
      if (standIn !== undefined || size > (settings.maxRecordBytes ?? Number.POSITIVE_INFINITY)) {
        const limit = settings.maxRecordBytes ?? 0;
        // A stand-in within the record limit was cut by the batch's cap, not its own size: said so (found from outside:
        // "record of 900139 bytes is over the 1048576-byte limit" contradicted itself).
        const byBatch = standIn !== undefined && size <= limit;
        const message = byBatch
          ? `record of ${size} bytes (decompressed) came in a producer batch that decompresses past the ${settings.maxBatchBytes ?? 0}-byte limit per batch: not read (send smaller producer batches)`
          : `record of ${size} bytes (decompressed) is over the ${limit}-byte limit`;
        tooLarge.push({ message: m, error: new PipelineError('record_too_large', message), stage: 'VALUE_CONVERTER' });
      } else forHandler.push(m);
    }
    this.at(partition, 'preparing');
    const result = await handler.prepare(forHandler, { topic: this.topic, partition, range, state: entry.state, at, recorded, attempt });
    if (result.onAbandoned) abandon.push(result.onAbandoned);
    const decisions = recorded ?? result.decisions ?? '';
    this.at(partition, 'recording the batch');
    if (recorded === undefined) await onFirstPrepare(decisions);
    const alreadyDurable = attempt === 'replay' && result.alreadyDurable === true;
    if (attempt === 'replay') replay.durable ??= alreadyDurable;
    if (alreadyDurable) {
      this.deps.log.info(
        { consumer: settings.connector, partition, from: range.from, to: range.to },
        'the replayed batch was written before its commit was lost: not published or counted again',
      );
    } else {
      if (attempt === 'replay')
        this.deps.log.info(
          { consumer: settings.connector, partition, from: range.from, to: range.to },
          'the replayed batch was not written whole before: publishing it again (at least once; consumers de-duplicate)',
        );
      this.at(partition, 'publishing');
      await this.publish(partition, [...tooLarge, ...result.deadLetters], result.publish);
    }
    const base = `${settings.groupId}/${this.topic}/${partition}/${range.from}-${range.to}`;
    this.at(partition, 'checking keys');
    await result.beforeWrite?.();
    try {
      for (const w of result.writes) {
        if (rowCountOf(w.rows) === 0) continue;
        // Tokens name the range and what is in it (not when it was processed), so a replay of the same range with
        // the same content is dropped, and a replay whose content differs is written rather than lost.
        const token = `${base}/${w.label}/${isEncodedRows(w.rows) ? w.rows.digest : digestOf(w.rows, w.identity)}`;
        this.at(partition, `writing ${w.table}`);
        await storage.insert(w.table, w.rows, { ...w.settings, insert_deduplication_token: token }, w.shape);
      }
    } catch (err) {
      if (!(err instanceof PipelineError) || err.code !== 'record_rejected') throw err;
      result.onAbandoned?.();
      if (messages.length === 1) {
        this.deps.log.warn(
          { consumer: settings.connector, partition, offset: messages[0]!.offset, code: err.code },
          'the store refused one record; dead-lettering it',
        );
        const identifiersExpired = result.identifiersExpired?.has(messages[0]!.offset) === true;
        await this.publish(partition, [{ message: messages[0]!, error: err, stage: 'SINK', identifiersExpired }], []);
        handler.onRejected?.(messages[0]!, err);
        return;
      }
      const half = Math.ceil(messages.length / 2);
      const left = messages.slice(0, half);
      const right = messages.slice(half);
      const noRecord = async (): Promise<void> => undefined;
      // This attempt published the whole batch (a batch found durable is not refused): its halves are `again`.
      const halves = { attempt: 'again' as const, replay };
      await this.writeBatch(partition, entry, left, { from: range.from, to: Number(left[left.length - 1]!.offset) }, at, decisions, halves, abandon, noRecord);
      await this.writeBatch(partition, entry, right, { from: Number(right[0]!.offset), to: range.to }, at, decisions, halves, abandon, noRecord);
      return;
    }
    result.onDurable?.();
    if (!alreadyDurable) for (const d of tooLarge) handler.onRejected?.(d.message, d.error);
  }

  private async publish(partition: number, deadLetters: readonly DeadLetter[], publish: readonly TopicMessages[]): Promise<void> {
    const { settings } = this.deps;
    const batches: TopicMessages[] = [];
    if (deadLetters.length > 0) {
      if (!settings.dlqTopic) throw new PipelineError('invariant_broken', `${settings.connector} dead-lettered a record but has no DLQ topic`);
      const src = { topic: this.topic, partition, connector: settings.connector };
      batches.push({ topic: settings.dlqTopic, messages: deadLetters.map((d) => deadLetterMessage(src, d)) });
    }
    batches.push(...publish);
    if (batches.every((b) => messageCount(b) === 0)) return;
    await this.publisher.send(batches);
  }
}

/** kafkajs's "the group has moved on" errors (its own isRebalancing, plus a member the coordinator forgot). */
const MEMBERSHIP_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/**
 * The "group has moved on" error inside `err` (kafkajs wraps what its retrier gives up on, and so does our error
 * model): kafkajs's runner rejoins the group only for an error whose own `type` says so — given the wrapper it crashes
 * the consumer without restarting it (UNKNOWN_MEMBER_ID is not retriable), which stopped ingest for good when a broker
 * that was the group's coordinator died (tests/integrity/brokerLoss.test.ts, CI 2026-12-02).
 */
export function membershipErrorIn(err: unknown): Error | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && typeof e === 'object' && e !== null; i++) {
    if (e instanceof Error && MEMBERSHIP_ERRORS.has(String((e as { type?: unknown }).type))) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A consumer loop's status as a health component: ok only while it runs, is not retrying and is not stalled with
 * records waiting; degraded while starting, stopping, retrying or stalled; down once stopped or failed.
 */
export function loopHealth(s: LoopStatus, extra: Readonly<Record<string, unknown>> = {}): ComponentHealth {
  const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
  const detail = {
    ...extra,
    state: s.state,
    batches: s.batches,
    lag: s.lag,
    past_last_stable_offset: s.unstable,
    lag_read_at: iso(s.lagAt),
    partitions: s.partitions,
    last_progress_at: iso(s.lastProgressAt),
    in_flight: s.inFlight.map((b) => ({ partition: b.partition, stage: b.stage, since: iso(b.since) })),
  };
  switch (s.state) {
    case 'running': {
      const reasons: string[] = [];
      // Found from outside: after an unclean stop, health said ok with 0 partitions for ~40 s while the group waited
      // for the old member's session to expire; nothing was consumed.
      if (!s.joined) reasons.push('joining its consumer group: no partitions yet');
      if (s.problem) reasons.push(s.problem);
      if (s.stalledMs > 0) {
        // Where the oldest batch in progress is, if one is: what an operator needs first when nothing moves.
        const oldest = [...s.inFlight].sort((a, b) => a.since - b.since)[0];
        const where = oldest ? ` (partition ${oldest.partition}'s batch at '${oldest.stage}' since ${iso(oldest.since)})` : '';
        reasons.push(`no batch committed for ${Math.round(s.stalledMs / 1000)} s while ${s.lag} records wait${where}`);
      }
      // Found from outside: with the broker frozen, health stayed ok (the last lag read said nothing waited).
      if (s.lagUnreadMs > 0)
        reasons.push(`consumer lag not read from the broker for ${Math.round(s.lagUnreadMs / 1000)} s: what waits is unknown (is the broker answering?)`);
      // Per partition (found from outside, 2026-12-06): behind an open transaction, and — unless the member as a whole
      // is stalled, said above — a partition of its own that does not move while the others do.
      const alarms = s.stalledMs > 0 ? s.partitionAlarms.filter((a) => a.kind !== 'no_commit') : s.partitionAlarms;
      reasons.push(...alarmReasons(alarms));
      return reasons.length > 0 ? { status: 'degraded', reasons, detail } : { status: 'ok', detail };
    }
    case 'idle':
    case 'starting':
      return { status: 'degraded', reasons: ['starting'], detail };
    case 'stopping':
      return { status: 'degraded', reasons: ['stopping'], detail };
    case 'stopped':
      return { status: 'down', reasons: ['stopped'], detail };
    case 'failed':
      return { status: 'down', reasons: [`failed: ${s.problem ?? 'unknown error'}`], detail };
  }
}
