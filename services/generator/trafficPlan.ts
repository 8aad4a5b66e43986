import { cdrEventType, encodeCdrEvent, frameConfluent } from '../platform/schemas/index.ts';
import type { CdrEvent } from '../core/index.ts';
import { Prng } from './prng.ts';
import { TrafficGenerator, type AttackScenario, type ScenarioName } from './trafficGenerator.ts';

/**
 * What `cdr produce` sends, as a pure deterministic sequence: generated CDRs plus a chosen fraction of
 * duplicates (an earlier record re-sent byte for byte), malformed records (each of several kinds a
 * real producer gets wrong) and late records (identifier window already closed). Tests use the same
 * plan to know exactly what ingest must store.
 */
export interface PlanOptions {
  readonly count: number;
  readonly seed: number;
  readonly scenario: ScenarioName;
  /** Fractions of `count`, each in [0, 1). */
  readonly duplicates: number;
  readonly malformed: number;
  readonly late: number;
  /** Event time of the first record; later ones follow at `eventsPerSecond`. */
  readonly startTime: number;
  readonly eventsPerSecond: number;
  /** Share of records written as plain Avro rather than Confluent-framed. */
  readonly plainShare?: number;
  /** When set, event times are spread uniformly over [startTime - spreadMs, startTime]. */
  readonly spreadMs?: number;
  /** The generator's subscriber pool size (default 20,000), or `fresh`: a new subscriber for every event (OTP-like). */
  readonly subscribers?: number | 'fresh';
  /** The generator's `subscriberGapMs` (default 0: off). */
  readonly subscriberGapMs?: number;
  /** Labels only: records are not encoded (their `value` is empty), the same sequence otherwise (`firstAttackIndex`). */
  readonly labelsOnly?: boolean;
}

export type PlannedKind = 'unique' | 'duplicate' | 'malformed' | 'late';

export interface PlannedMessage {
  readonly kind: PlannedKind;
  readonly key: string;
  readonly value: Buffer;
  /** Present for decodable records. */
  readonly cdrId?: string;
  readonly eventTime?: number;
  /** For tests only: the event as generated (never logged). */
  readonly event?: CdrEvent;
  /** The attack pattern a `unique` record belongs to (the generator's label); absent for ordinary traffic. */
  readonly attack?: AttackScenario;
}

export const MALFORMED_KINDS = ['garbage', 'truncated', 'unknown_schema', 'bad_currency', 'future_time', 'empty_recipient'] as const;

const MONTH_MS = 30 * 24 * 3600 * 1000;
const EMPTY = Buffer.alloc(0);

export function* planTraffic(opts: PlanOptions): Generator<PlannedMessage> {
  const gen = new TrafficGenerator({
    seed: opts.seed,
    scenario: opts.scenario,
    startTime: opts.startTime,
    ratePerSecond: opts.eventsPerSecond,
    ...(opts.spreadMs ? { timeSpreadMs: opts.spreadMs } : {}),
    ...(opts.subscribers === 'fresh' ? { freshSubscribers: true } : opts.subscribers !== undefined ? { subscribers: opts.subscribers } : {}),
    ...(opts.subscriberGapMs ? { subscriberGapMs: opts.subscriberGapMs } : {}),
  });
  const rnd = new Prng(opts.seed ^ 0x5eed);
  const recent: PlannedMessage[] = [];
  let malformedIndex = 0;
  for (let i = 0; i < opts.count; i++) {
    const r = rnd.next();
    if (r < opts.duplicates && recent.length > 0) {
      const { attack: _attack, ...original } = recent[rnd.int(0, recent.length - 1)]!;
      yield { ...original, kind: 'duplicate' };
      continue;
    }
    if (r < opts.duplicates + opts.malformed) {
      yield malformedMessage(gen.next(), MALFORMED_KINDS[malformedIndex++ % MALFORMED_KINDS.length]!, rnd, i);
      continue;
    }
    const labeled = gen.nextLabeled();
    let event = labeled.event;
    let kind: PlannedKind = 'unique';
    if (r < opts.duplicates + opts.malformed + opts.late) {
      // 14 to 100 months back: identifiers expired, traffic data still within its 10 years.
      event = { ...event, event_time: event.event_time - rnd.int(14, 100) * MONTH_MS };
      event.submitted_at = event.event_time;
      event.delivered_at = event.delivered_at === null ? null : event.event_time + 1500;
      kind = 'late';
    }
    const plain = rnd.next() < (opts.plainShare ?? 0.1);
    const msg: PlannedMessage = {
      kind,
      key: event.cdr_id,
      value: opts.labelsOnly ? EMPTY : encodeCdrEvent(event, plain ? 'plain' : 'confluent'),
      cdrId: event.cdr_id,
      eventTime: event.event_time,
      event,
      // A record moved months back is history to the fraud rules, not part of an attack they could see.
      ...(labeled.attack && kind === 'unique' ? { attack: labeled.attack.scenario } : {}),
    };
    recent.push(msg);
    if (recent.length > 2000) recent.shift();
    yield msg;
  }
}

function malformedMessage(event: CdrEvent, kind: (typeof MALFORMED_KINDS)[number], rnd: Prng, i: number): PlannedMessage {
  const key = `malformed-${i}`;
  switch (kind) {
    case 'garbage': {
      const bytes = Buffer.alloc(rnd.int(1, 64));
      for (let b = 0; b < bytes.length; b++) bytes[b] = rnd.int(1, 255);
      bytes[0] = 0x03; // odd first byte: a negative string length in plain Avro, never a valid record
      return { kind: 'malformed', key, value: bytes };
    }
    case 'truncated': {
      const full = encodeCdrEvent(event);
      return { kind: 'malformed', key, value: full.subarray(0, Math.max(6, Math.floor(full.length / 2))) };
    }
    case 'unknown_schema':
      return { kind: 'malformed', key, value: frameConfluent(999, cdrEventType.toBuffer(event)) };
    case 'bad_currency':
      return { kind: 'malformed', key, value: encodeCdrEvent({ ...event, currency: 'euro' }) };
    case 'future_time':
      return { kind: 'malformed', key, value: encodeCdrEvent({ ...event, event_time: Date.UTC(2200, 0, 1) }) };
    case 'empty_recipient':
      return { kind: 'malformed', key, value: encodeCdrEvent({ ...event, recipient: '   ' }) };
  }
}

/**
 * The position (0-based) of the plan's first record that belongs to an attack, looking at most `within` records ahead;
 * undefined if none is there. `cdr produce` says it when a run held no attack: scenarios that date their attacks in event
 * time (range_scan, account_anomaly, fraud_mix) need minutes of it, which a short or unpaced run does not cover.
 */
export function firstAttackIndex(opts: PlanOptions, within: number): number | undefined {
  let i = 0;
  // Not encoded: encoding is what costs, and a search of 500,000 records after a run kept the command waiting seconds.
  for (const m of planTraffic({ ...opts, count: within, labelsOnly: true })) {
    if (m.kind === 'unique' && m.attack !== undefined) return i;
    i++;
  }
  return undefined;
}
