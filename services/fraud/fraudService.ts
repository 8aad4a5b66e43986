import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import {
  FraudDetector,
  monthKeyOf,
  PipelineError,
  RecentIds,
  RULE_NAMES,
  type Alert,
  type AlertChange,
  type FraudConfig,
  type FraudEvent,
  type LearnedState,
} from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import type { FraudConfigSection, KafkaConfig } from '../platform/config/index.ts';
import type { ComponentHealth } from '../platform/http/index.ts';
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
import { destroyedAmong } from '../platform/keys/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import { decodePseudonymised, encodeWith, FRAUD_ALERT_SCHEMA_ID } from '../platform/schemas/index.ts';
import { rowOf } from './alertStore.ts';
import { EventLoopSlice } from '../platform/runtime/index.ts';

/** How often the detector's learned state is saved (wall clock), after a stored batch: what a crash can lose of it. */
export const LEARNED_SAVE_EVERY_MS = 5 * 60_000;
/**
 * Records per fraud batch: about what a fetch holds (4 MiB per partition of ~150-200-byte events), so a fetch is one
 * batch or two. Not more: the loop heartbeats between batches, and a batch of a loaded `cdr start` must end well
 * within the session timeout (found in review).
 */
const FRAUD_BATCH_RECORDS = 25_000;
/** A fetch waits at the broker up to FRAUD_FETCH_WAIT_MS for this much: what ingest publishes side by side, together. */
const FRAUD_FETCH_MIN_BYTES = 1024 * 1024;
const FRAUD_FETCH_WAIT_MS = 1_000;
/** How long a stop waits for the last save of the learned state (a store that hangs must not hold the stop). */
const LEARNED_SAVE_AT_STOP_MS = 10_000;

/**
 * The fraud service: cdr.pseudonymised → the streaming rules (core/fraud/fraudDetector.ts) → alert changes to
 * `fraud_alerts` (ClickHouse) and `fraud.alerts` (Avro). It never sees an identifier.
 *
 * A `BatchHandler` on the shared consumer loop in its own group. The detector's windows live in memory; what must
 * survive a restart is the alerts: a new process adopts the alerts that were open (`fraud_alerts`), so an attack that
 * goes on continues its alert instead of opening a second one, and one that ended is closed when event time passes
 * its close delay. A batch retried after a failed write is not counted twice: each partition remembers the last offset
 * its events were observed up to, and the changes not yet stored are carried into the retry.
 */
export interface FraudDeps {
  readonly kafka: Kafka;
  readonly brokers: readonly string[];
  readonly storage: Storage;
  readonly config: { readonly kafka: KafkaConfig; readonly fraud: FraudConfigSection };
  readonly rules: FraudConfig;
  /** Alerts open when the last process stopped, and those it closed recently (AlertStore.recentlyClosed). */
  readonly adopted: readonly Alert[];
  /** What the detector of the last process had learned (`AlertStore.learned`), taken up before the first record. */
  readonly learned?: LearnedState;
  /** Where the detector's learned state is kept; none: not kept (tests of the rules alone). */
  readonly learnedStore?: { saveLearned(groupId: string, state: LearnedState, at: number): Promise<void> };
  /** How often (wall clock) the learned state is saved after a stored batch; default LEARNED_SAVE_EVERY_MS. */
  readonly learnedSaveEveryMs?: number;
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly clock?: () => number;
  readonly onFatal?: (err: PipelineError) => void;
  /**
   * As ingest's: give the event loop a turn every this many ms while preparing (set where the API shares the
   * process). Another partition's batch may then be observed between two of this batch's records: the detector
   * already sees partitions in whatever order their batches come, and one account's records share a partition
   * (they are keyed by account), so each account's own order is kept.
   */
  readonly sliceMs?: number;
}

export interface FraudStats {
  records: number;
  /** Records too late to judge (cdr_fraud_records_late_total). */
  late: number;
  alerts: number;
  open: number;
  batches: number;
  lag: number;
}

interface PartitionState {
  readonly partition: number;
  observedUpTo: number;
  /** The changes of this partition's batch in flight, in order: carried into a retry, cleared once durable. */
  pending: AlertChange[];
  /** Those of them made for other accounts (closes by the sweep, and what an abandoned batch left): see `unstored`. */
  readonly foreign: Set<AlertChange>;
}

export function fraudEventOf(e: ReturnType<typeof decodePseudonymised>): FraudEvent {
  return {
    cdr_id: e.cdr_id,
    account_id: e.account_id,
    event_time: e.event_time,
    channel: e.channel,
    direction: e.direction,
    status: e.status,
    destination_country: e.destination_country,
    mcc: e.mcc,
    mnc: e.mnc,
    recipient_range: e.recipient_range,
    recipient_number_type: e.recipient_number_type,
    recipient_type: e.recipient_type,
    recipient_token: e.recipient_token,
    sender_token: e.sender_token,
    sender_type: e.sender_type,
    duration_ms: e.duration_ms,
  };
}

export class FraudService implements BatchHandler<PartitionState> {
  readonly loop: ConsumerLoop<PartitionState>;
  readonly detector: FraudDetector;
  private readonly seen = new RecentIds(400_000);
  private readonly counts = { records: 0, late: 0, alerts: 0 };
  /**
   * Alerts open as stored and published: adopted at start, then moved by durable changes only — as the
   * `cdr_fraud_open_alerts` gauge is. The detector's memory runs ahead by a batch in flight, which could show more
   * alerts open than were ever raised.
   */
  private openDurable = 0;
  /**
   * Changes the detector handed out with a batch that was not stored, and that no retry of that batch will carry: the
   * next batch of any partition stores them. The detector has moved on and will not make them again — a replay of the
   * batch's records is skipped (`seen`) — so without this a close handed out with a given-up batch whose partition then
   * left (a rebalance; the store away) was lost, and the alert stayed `open` in `fraud_alerts` until a restart; an
   * `opened` was lost the same way (found in review, 2026-12-06). Filled when a batch is given up (its other accounts'
   * changes, which need no wait for a retry) and when a partition's state is dropped (all it still held).
   */
  private readonly unstored: AlertChange[] = [];
  /** The changes whose storing was counted (the gauge, the counters, the log line). */
  private readonly counted = new WeakSet<AlertChange>();
  private readonly clock: () => number;
  /** Wall time of the last save of the learned state, and the save under way. */
  private lastLearnedSave = 0;
  private savingLearned: Promise<void> | undefined;

  constructor(private readonly deps: FraudDeps) {
    this.clock = deps.clock ?? Date.now;
    for (const rule of RULE_NAMES) {
      for (const severity of ['warning', 'critical']) deps.metrics.fraudAlerts.inc({ rule, severity }, 0);
      deps.metrics.fraudAlertEscalations.inc({ rule }, 0);
      deps.metrics.fraudOpenAlerts.inc({ rule }, 0);
    }
    this.detector = new FraudDetector(deps.rules);
    if (deps.learned)
      try {
        this.detector.restoreLearned(deps.learned);
      } catch (err) {
        deps.log.warn({ err }, 'the fraud detector’s learned state cannot be taken up: starting without it (its rules warm up again)');
      }
    this.lastLearnedSave = this.clock();
    this.detector.adopt(deps.adopted, this.clock());
    const adoptedOpen = deps.adopted.filter((a) => a.state === 'open');
    for (const a of adoptedOpen) deps.metrics.fraudOpenAlerts.inc({ rule: a.rule });
    this.openDurable = adoptedOpen.length;
    const { kafka, fraud } = deps.config;
    this.loop = new ConsumerLoop({
      kafka: deps.kafka,
      brokers: deps.brokers,
      clientId: `${kafka.clientId}-fraud`,
      storage: deps.storage,
      log: deps.log,
      handler: this,
      onLag: (partition, lag) => deps.metrics.fraudLag.set({ partition: String(partition) }, lag),
      onUnstable: (partition, records) => deps.metrics.consumerPastStableOffset.set({ consumer: 'fraud', partition: String(partition) }, records),
      ...(deps.onFatal ? { onFatal: deps.onFatal } : {}),
      clock: this.clock,
      settings: loopSettingsFor(kafka, {
        groupId: fraud.groupId,
        topic: kafka.topics.pseudonymised,
        connector: 'cdr-fraud',
        // A whole fetch is one batch, judged in event-time order (prepare); the fetch waits up to a second for 1 MiB,
        // so that what ingest publishes side by side (one raw partition's batch after another's) arrives together.
        // Fraud's alerts come up to a second later for it at low traffic.
        maxBatchRecords: FRAUD_BATCH_RECORDS,
        minBytes: FRAUD_FETCH_MIN_BYTES,
        maxWaitTimeInMs: FRAUD_FETCH_WAIT_MS,
        sessionTimeoutMs: fraud.sessionTimeoutMs,
      }),
    });
    deps.metrics.watchLagAge('fraud', () => this.loop.status().lagAgeMs);
  }

  get stats(): FraudStats {
    const s = this.loop.status();
    return { ...this.counts, open: this.openDurable, batches: s.batches, lag: s.lag };
  }

  status(): LoopStatus {
    return this.loop.status();
  }

  health(): ComponentHealth {
    return loopHealth(this.loop.status(), { ...this.counts, open_alerts: this.openDurable });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.deps.log.info(
      {
        topic: this.deps.config.kafka.topics.pseudonymised,
        group: this.deps.config.fraud.groupId,
        adopted: this.deps.adopted.filter((a) => a.state === 'open').length,
        adopted_closed: this.deps.adopted.filter((a) => a.state === 'closed').length,
        learned_accounts: this.deps.learned?.accounts.length ?? 0,
      },
      'fraud started',
    );
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), LEARNED_SAVE_AT_STOP_MS)));
    const save = async (): Promise<'saved'> => {
      await this.savingLearned;
      await this.saveLearned('stop');
      return 'saved';
    };
    const saved = await Promise.race([save(), deadline]);
    clearTimeout(timer);
    if (saved === 'late') this.deps.log.warn({ waitedMs: LEARNED_SAVE_AT_STOP_MS }, 'the fraud detector’s learned state was not saved at the stop in time');
    // Said, not lost silently: the next process adopts these alerts as last stored and closes or continues them.
    if (this.unstored.length > 0)
      this.deps.log.warn({ changes: this.unstored.length }, 'fraud alert changes not stored at the stop: the next process adopts those alerts as last stored');
    this.deps.log.info({ ...this.stats }, 'fraud stopped');
  }

  /**
   * Keeps what the detector has learned (warm-up, usual destinations, baselines) for the next process: every minute
   * after a stored batch and at the stop. A failure is logged and tried again next time: the state is statistics, and
   * one a minute old is as good.
   */
  private async saveLearned(why: 'interval' | 'stop'): Promise<void> {
    if (!this.deps.learnedStore) return;
    this.lastLearnedSave = this.clock();
    try {
      await this.deps.learnedStore.saveLearned(this.deps.config.fraud.groupId, this.detector.learned(), this.lastLearnedSave);
    } catch (err) {
      this.deps.log.warn({ err, why }, 'could not keep what the fraud detector has learned; trying again later');
    }
  }

  /**
   * A velocity alert's token is a subscriber's pseudonym of the month the alert started in; once the retention pass has
   * destroyed that month's identifiers (a tombstone in `destroyed_months`), the alert is written and published without
   * it — an alert open across the cutoff, or a retention drill, must not put the token back. Asked of the database
   * right before the write, as ingest does for its keys; only when a change carries a token.
   */
  private async withoutDestroyedTokens(changes: readonly AlertChange[]): Promise<readonly AlertChange[]> {
    const months = [...new Set(changes.filter((c) => c.alert.key.token).map((c) => monthKeyOf(c.alert.started_at)))];
    const destroyed = new Set(await destroyedAmong(this.deps.storage, months));
    if (destroyed.size === 0) return changes;
    return changes.map((c) =>
      c.alert.key.token && destroyed.has(monthKeyOf(c.alert.started_at)) ? { ...c, alert: { ...c.alert, key: { ...c.alert.key, token: '' } } } : c,
    );
  }

  async openPartition(partition: number, firstOffset: number): Promise<PartitionState> {
    return { partition, observedUpTo: firstOffset - 1, pending: [], foreign: new Set() };
  }

  /**
   * The partition went elsewhere (or the loop re-opened or stopped it): what its batch in flight had not stored goes to
   * the next batch of any partition. A prepare that failed (the store away) returned no result to give up, so this is
   * where its changes would otherwise be dropped. If another process now reads the partition, both may store a change
   * of its alerts; a duplicate is harmless (same version), a loss is not.
   */
  closePartition(_partition: number, state: PartitionState): void {
    this.unstored.push(...state.pending);
    state.pending = [];
    state.foreign.clear();
  }

  async prepare(messages: readonly KafkaMessage[], ctx: BatchContext<PartitionState>): Promise<BatchResult> {
    const dead: DeadLetter[] = [];
    const state = ctx.state;
    // What an earlier attempt of this batch made, what given-up batches left, then this attempt's own.
    const left = this.unstored.splice(0);
    for (const c of left) state.foreign.add(c);
    const changes: AlertChange[] = [...state.pending, ...left];
    const made = changes.length;
    let examined = 0;
    let last = state.observedUpTo;
    let late = 0;
    /** The accounts of the records observed: their alerts are the ones this batch moved. */
    const accounts = new Set<string>();
    const slice = new EventLoopSlice(this.deps.sliceMs ?? Number.POSITIVE_INFINITY);
    // Decoded first, then judged in event-time order. One account's records share a partition, in the order ingest
    // published them; ingest reads the raw partitions (keyed by cdr_id) side by side, so in a backlog or a back-dated
    // load an account's records come as one raw partition's span after another's, each hours long: all but the first
    // were behind the account's newest record by more than the late tolerance, and never judged (found from outside,
    // 2026-12-06: 6,002 of 13,968). Sorted within the batch (and the fetch waits a moment for what ingest publishes
    // close together: the loop settings in the constructor), they are judged in order.
    const events: FraudEvent[] = [];
    for (const message of messages) {
      if (slice.spent()) await slice.pause();
      const offset = Number(message.offset);
      if (offset <= state.observedUpTo) continue;
      last = Math.max(last, offset);
      try {
        events.push(fraudEventOf(decodePseudonymised(message.value)));
      } catch (err) {
        const error =
          err instanceof PipelineError && err.disposition === 'dead-letter'
            ? err
            : new PipelineError('decode_failed', 'pseudonymised event could not be read', { cause: err });
        dead.push({ message, error, stage: 'VALUE_CONVERTER' });
      }
    }
    // Stable: records of one time keep their partition order.
    events.sort((a, b) => a.event_time - b.event_time);
    // The wall clock for the detector: read once per slice of work, not per record.
    let wall = this.clock();
    for (const event of events) {
      if (slice.spent()) {
        await slice.pause();
        wall = this.clock();
      }
      // A record published twice (ingest publishes at least once) is counted once.
      if (this.seen.has(event.cdr_id)) continue;
      this.seen.add(event.cdr_id);
      accounts.add(event.account_id);
      // Counted around the call itself: the detector is shared by the partitions, whose batches interleave at pauses.
      const notJudgedBefore = this.detector.lateIgnored;
      changes.push(...this.detector.observe(event, wall));
      if (this.detector.lateIgnored > notJudgedBefore) late++;
      else examined++;
    }
    // Each alert these records moved, once, with its latest state: stored with this batch's offsets, so a stop or a crash
    // loses none of its activity (the windows refill from live traffic; the alert does not).
    changes.push(...this.detector.flushUpdates(accounts));
    for (let i = made; i < changes.length; i++) if (!accounts.has(changes[i]!.alert.key.account_id)) state.foreign.add(changes[i]!);
    state.observedUpTo = last;
    state.pending = changes;
    const now = this.clock();
    const written = await this.withoutDestroyedTokens(changes);
    const rows = written.map((c) => rowOf(c, now));
    // `updated` changes of an open alert reach the topic at most once a minute of its event time (`storeOnly`).
    const published = written
      .filter((c) => c.storeOnly !== true)
      .map((c) => ({
        key: c.alert.alert_id,
        value: encodeWith(FRAUD_ALERT_SCHEMA_ID, {
          alert_id: c.alert.alert_id,
          change: c.change,
          rule: c.alert.rule,
          severity: c.alert.severity,
          state: c.alert.state,
          account_id: c.alert.key.account_id,
          destination_country: c.alert.key.destination_country ?? '',
          range: c.alert.key.range ?? '',
          token: c.alert.key.token ?? '',
          token_role: c.alert.key.token_role ?? '',
          risk_score: c.alert.risk_score,
          started_at: c.alert.started_at,
          ended_at: c.alert.ended_at,
          detected_at: c.alert.detected_at,
          evidence: JSON.stringify(c.alert.evidence),
        }),
        headers: { alert_id: c.alert.alert_id, change: c.change },
      }));
    const { metrics } = this.deps;
    return {
      deadLetters: dead,
      publish: published.length > 0 ? [{ topic: this.deps.config.kafka.topics.fraudAlerts, messages: published }] : [],
      writes: [insertPlan({ table: 'fraud_alerts', label: 'fraud_alerts', rows, identity: (r) => `${r.alert_id}|${r.version}` })],
      // Given up uncommitted: other accounts' changes go to the next batch of any partition (idempotent: the loop may
      // call each attempt's callback; the first moves them). A retry of this batch keeps its own.
      onAbandoned: () => {
        if (state.foreign.size === 0) return;
        this.unstored.push(...state.pending.filter((c) => state.foreign.has(c)));
        state.pending = state.pending.filter((c) => !state.foreign.has(c));
        state.foreign.clear();
      },
      onDurable: () => {
        state.pending = [];
        state.foreign.clear();
        // A partition dropped while this batch was in flight put its changes in `unstored` too: stored now, not again.
        if (this.unstored.length > 0) {
          const stored = new Set(changes);
          const rest = this.unstored.filter((c) => !stored.has(c));
          this.unstored.splice(0, this.unstored.length, ...rest);
        }
        this.counts.records += examined;
        this.counts.late += late;
        metrics.fraudRecords.inc(examined);
        metrics.fraudWindows.set(this.detector.windowCount);
        if (this.savingLearned === undefined && this.clock() - this.lastLearnedSave >= (this.deps.learnedSaveEveryMs ?? LEARNED_SAVE_EVERY_MS))
          this.savingLearned = this.saveLearned('interval').finally(() => (this.savingLearned = undefined));
        metrics.fraudRecordsLate.inc(late);
        for (const c of changes) {
          // Counted once, whichever batch stores it first: a change may be stored twice (a duplicate row is harmless).
          if (this.counted.has(c)) continue;
          this.counted.add(c);
          if (c.change === 'opened') {
            this.counts.alerts++;
            this.openDurable++;
            metrics.fraudAlerts.inc({ rule: c.alert.rule, severity: c.alert.severity });
            metrics.fraudOpenAlerts.inc({ rule: c.alert.rule });
          } else if (c.change === 'escalated') metrics.fraudAlertEscalations.inc({ rule: c.alert.rule });
          else if (c.change === 'closed') {
            this.openDurable--;
            metrics.fraudOpenAlerts.dec({ rule: c.alert.rule });
          }
          // An open alert is `updated` at nearly every batch of its traffic: at info those lines were two thirds of
          // pipeline.log (found from outside). What an operator acts on — opened, escalated, closed — stays at info.
          const level = c.change === 'updated' ? 'debug' : 'info';
          this.deps.log[level](
            { alert_id: c.alert.alert_id, rule: c.alert.rule, change: c.change, severity: c.alert.severity, account_id: c.alert.key.account_id },
            'fraud alert',
          );
        }
      },
    };
  }
}
