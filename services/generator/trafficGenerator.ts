/**
 * Seeded, pure synthetic CDR traffic generator (no Kafka, no I/O).
 *
 * Same options (seed included) → the identical event sequence, on every machine. Events are
 * valid against `schemas/cdr-event-v1.avsc` and look like a routing layer's output: skewed
 * account activity, a zipf-skewed pool of end users whose identifiers are written in many
 * formats (E.164, spaced/dashed international, `00` IDD, bare country-code digits, national),
 * per-channel status/error/size/latency models, catalog prices, client IPs, ported numbers, and
 * optional fraud patterns (SMS pumping, IRSF, velocity spikes, range scans, account anomalies)
 * mixed into normal traffic. `nextLabeled()` says which events are fraud and which attack episode
 * they belong to, so a detector can be scored against the ground truth.
 *
 * Time: in rate mode (default) event_time starts at `startTime` and advances with Poisson
 * arrivals at `ratePerSecond` (monotone non-decreasing; optionally shaped by a UTC day curve,
 * `diurnal`). With `timeSpreadMs`, normal events are spread over [startTime - timeSpreadMs,
 * startTime] and fraud bursts are clustered in short windows inside that range.
 *
 * Stability: the original scenarios (normal, sms_pumping, irsf, velocity, mixed) produce exactly
 * the stream they always did for a given seed; everything added later (new scenarios' actors,
 * the campaign, the day curve) either runs only when asked for or draws from its own generator.
 */
import { CHANNELS, STATUSES } from '../core/index.ts';
import type { CdrEvent, Channel, SenderType, Status } from '../core/index.ts';
import {
  AGGREGATORS,
  BRANDS,
  CHANNEL_PRICING,
  DESTINATIONS,
  EMAIL_DOMAINS,
  ERROR_CODES,
  FIRST_NAMES,
  IDN_EMAIL_DOMAINS,
  IPV4_DOC_NETS,
  IPV6_DOC_PREFIX,
  IRSF_DESTINATIONS,
  LAST_NAMES,
  OTT_PROVIDERS,
  UNICODE_LOCAL_PARTS,
  VOICE_CARRIERS,
  applyTemplate,
} from './catalog.ts';
import type { CurrencyCode, Destination, NumberRange, Operator } from './catalog.ts';
import { Prng, WeightedPicker, hash32, permute32 } from './prng.ts';

export type ScenarioName = 'normal' | 'sms_pumping' | 'irsf' | 'velocity' | 'mixed' | 'range_scan' | 'account_anomaly' | 'fraud_mix';
export const SCENARIOS: readonly ScenarioName[] = ['normal', 'sms_pumping', 'irsf', 'velocity', 'mixed', 'range_scan', 'account_anomaly', 'fraud_mix'];

/** The attack patterns an event can be labelled with. */
export type AttackScenario = 'sms_pumping' | 'irsf' | 'velocity' | 'range_scan' | 'account_anomaly';
export const ATTACK_SCENARIOS: readonly AttackScenario[] = ['sms_pumping', 'irsf', 'velocity', 'range_scan', 'account_anomaly'];

/** Ground truth of one fraud event: the pattern and which of its bursts (1, 2, …) produced it. */
export interface AttackLabel {
  scenario: AttackScenario;
  episode: number;
}

/**
 * A scenario by name, accepting the hyphenated spellings (`sms-pumping`, `range-scan`,
 * `account-anomaly`, `fraud-mix`) and any letter case; undefined for an unknown name.
 */
export function scenarioOf(name: string): ScenarioName | undefined {
  const key = name.trim().toLowerCase().replace(/-/g, '_');
  return SCENARIOS.find((s) => s === key);
}

/** A legitimate surge (marketing campaign) for false-positive tests; its events are labelled normal. */
export interface CampaignOptions {
  /** Epoch ms UTC of the first possible campaign event. */
  at: number;
  /** Campaign events get event times spread over [at, at + durationMs). */
  durationMs: number;
  /** Number of campaign events, each to a different recipient. */
  count: number;
  /** ISO country of the recipients (must accept alphanumeric senders). Default 'MY'. */
  country?: string;
}

export interface GeneratorOptions {
  seed: number;
  scenario: ScenarioName;
  /** Epoch ms UTC. Rate mode: time of the first event. Spread mode: end of the spread window. */
  startTime: number;
  /**
   * Events per second of simulated time in rate mode (Poisson arrivals). Default 1000. The bursts
   * of range_scan, account_anomaly and fraud_mix are scheduled in event time (minutes), so they
   * span `ratePerSecond` × 60 events per minute; in spread mode they run on a virtual clock of
   * that many events per second.
   */
  ratePerSecond?: number;
  /** Number of customer accounts (`acct-0001`…). Default 50. */
  accounts?: number;
  /** Size of the end-user pool. Default 20000. */
  subscribers?: number;
  /**
   * Every event reaches a subscriber never seen before (no pool): one-time passwords and notifications to millions
   * of numbers a month — the high-cardinality data set of the benchmarks, where no per-identifier cache hits.
   */
  freshSubscribers?: boolean;
  /** If set (> 0), spread event_time uniformly over [startTime - timeSpreadMs, startTime]. */
  timeSpreadMs?: number;
  /**
   * Probability that `next()` re-emits a recent event unchanged (same cdr_id, same times), as a
   * routing layer retry would. Default 0, so cdr_ids are unique by default. Duplicates keep the
   * original event_time, so they break event_time monotonicity in rate mode.
   */
  duplicateRate?: number;
  /** Velocity and mixed scenarios: number of events before the first spike. Default 1000. */
  velocityOnset?: number;
  /**
   * Rate mode: the arrival rate follows a UTC day curve (about 25% of the mean at 02:00–05:00,
   * about 150% at 10:00–20:00) whose daily mean is `ratePerSecond`. Spread mode: event times are
   * drawn from the same curve. Default false.
   */
  diurnal?: boolean;
  /** Extra, legitimate campaign traffic interleaved into the stream. Default: none. */
  campaign?: CampaignOptions;
  /**
   * Rate mode, ordinary traffic: an end user takes part in at most one record per this many ms of event time (another
   * is drawn; the pool grows when every draw is busy). Default 0: off, the streams the tests pin. `cdr start` and `cdr
   * produce` space them (SUBSCRIBER_GAP_MS): unspaced, the zipf pool gave one number ~250 records a minute at 1,000
   * records/s — a per-token velocity alert no real subscriber would earn — and ordinary traffic raised ~80 a minute.
   */
  subscriberGapMs?: number;
}

/** The spacing of one end user's records in the traffic of `cdr start` and `cdr produce`: at most 10 a minute. */
export const SUBSCRIBER_GAP_MS = 6_000;

export interface GeneratedCdr {
  event: CdrEvent;
  kind: 'normal' | 'duplicate' | 'fraud';
  /** Set on fraud events only. */
  attack?: AttackLabel;
  /** Set (true) on the events of the `campaign` option, which are otherwise ordinary `normal` events. */
  campaign?: true;
}

/** Ground truth about the fraud actors of a generator instance (for tests and detector evaluation). */
export interface FraudActors {
  smsPumping: { accountId: string; senderId: string; countries: readonly string[] };
  irsf: { accountId: string; countries: readonly string[] };
  velocity: { accountId: string; senderId: string; baselineShare: number; spikeShare: number; factor: number };
  /** The scanner: an account that sends nothing but its scans in scenarios that include range_scan. */
  rangeScan: { accountId: string; senderId: string; country: string; blockPrefix: string; blockSize: number };
  /** An ordinary account that, in bursts, sends at 6–10× its rate to `countries` (never used otherwise). */
  accountAnomaly: { accountId: string; baselineShare: number; countries: readonly string[] };
}

/** The identifier writing styles produced for phone numbers. */
export type IdentifierFormat = 'e164' | 'international' | 'idd' | 'bare' | 'national';

/**
 * Classify how a phone identifier produced by this generator is written (heuristic, for tests
 * and diagnostics): `+60123456789` e164, `+60 12-345 6789` international, `0060123456789` idd,
 * `60123456789` bare (digits only, ≥ 8 digits, no leading 0), anything else national.
 * Returns null for shortcodes (≤ 7 bare digits) and for emails.
 */
export function identifierFormatOf(id: string): IdentifierFormat | null {
  const s = id.trim();
  if (s.includes('@')) return null;
  if (s.startsWith('+')) return /^\+\d+$/.test(s) ? 'e164' : 'international';
  if (/^00\d+$/.test(s)) return 'idd';
  if (/^[1-9]\d+$/.test(s)) return s.length >= 8 ? 'bare' : null;
  return 'national';
}

// ------------------------------------------------------------------------------------------
// constants and tables

const CH_SMS = 0;
const CH_MMS = 1;
const CH_EMAIL = 2;
const CH_VOICE = 3;
const CH_WHATSAPP = 4;
const CH_VIBER = 5;
const CH_RCS = 6;
const CH_PUSH = 7;
// CHANNELS order from cdrEvent.ts: sms, mms, email, voice, whatsapp, viber, rcs, push
const CHANNEL_LIST: readonly Channel[] = CHANNELS;

/** Share of traffic per channel: sms > whatsapp > email > voice > rcs > viber > mms > push. */
const CHANNEL_WEIGHTS: ReadonlyArray<readonly [number, number]> = [
  [CH_SMS, 52],
  [CH_WHATSAPP, 16],
  [CH_EMAIL, 12],
  [CH_VOICE, 8],
  [CH_RCS, 4.5],
  [CH_VIBER, 3.5],
  [CH_MMS, 2.5],
  [CH_PUSH, 1.5],
];

/** Probability of direction `mo` per channel index. */
const MO_PROB = [0.06, 0.03, 0, 0.15, 0.22, 0.05, 0.08, 0];

const ST_DELIVERED = 0;
const ST_FAILED = 1;
const ST_REJECTED = 2;
const ST_PENDING = 4;
const STATUS_LIST: readonly Status[] = STATUSES; // delivered, failed, rejected, expired, pending

/** Status weights [delivered, failed, rejected, expired, pending] per channel index (MT). */
const MT_STATUS_WEIGHTS: ReadonlyArray<readonly number[]> = [
  [86, 6, 2, 3, 3], // sms
  [82, 9, 2, 4, 3], // mms
  [93, 4, 1.5, 0.5, 1], // email
  [68, 29, 3, 0, 0], // voice: delivered = answered
  [91, 5, 2, 0, 2], // whatsapp
  [85, 10, 1, 2, 2], // viber
  [80, 12, 1, 3, 4], // rcs
  [88, 9, 1, 0, 2], // push
];
const MO_STATUS_WEIGHTS = [99, 1, 0, 0, 0];
const PUMPING_STATUS_WEIGHTS = [6, 46, 6, 26, 16];
/** A range scan mostly hits unallocated numbers: ~65% failed/rejected. */
const SCAN_STATUS_WEIGHTS = [25, 48, 17, 6, 4];
/** A legitimate campaign to fresh, valid numbers: ~95% delivered. */
const CAMPAIGN_STATUS_WEIGHTS = [95, 2.5, 0.5, 1, 1];
/** Error family index (after the 8 channels) for range-scan failures. */
const ERR_SCAN = 8;
/** Scanned numbers that fail are mostly unallocated: unknown subscriber / invalid destination. */
const SCAN_ERRORS: Readonly<Record<'failed' | 'rejected' | 'expired', ReadonlyArray<readonly [string | null, number]>>> = {
  failed: [
    ['MAP:1', 70],
    ['MAP:5', 12],
    ['MAP:27', 10],
    ['MAP:11', 8],
  ],
  rejected: [
    ['SMPP:0x0000000B', 75],
    ['POLICY:DEST_BLOCKED', 25],
  ],
  expired: [
    [null, 60],
    ['VP_EXPIRED', 40],
  ],
};

/** Skew of the end-user popularity distribution (zipf exponent, < 1 so the tail still matters). */
const ZIPF_S = 0.9;

/** Identifier format codes. */
const F_E164 = 0;
const F_INTL = 1;
const F_INTL_ALT = 2;
const F_IDD = 3;
const F_BARE = 4;
const F_NATIONAL = 5;

/** Delivery latency (ms) lognormal median / sigma per channel index. */
const LATENCY_MEDIAN = [2_200, 6_000, 1_800, 7_000, 700, 900, 1_200, 250];
const LATENCY_SIGMA = [0.9, 0.9, 1.0, 0.5, 0.8, 0.8, 0.8, 0.7];

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** A range scan: a few hundred numbers over a few minutes. */
const SCAN_BURST = { events: [250, 450], durationMs: [2 * MINUTE_MS, 5 * MINUTE_MS], factor: null } as const;
/** An account anomaly: 6–10× the account's rate for a few minutes. */
const ANOMALY_BURST = { events: null, durationMs: [3 * MINUTE_MS, 6 * MINUTE_MS], factor: [6, 10] } as const;

/**
 * Diurnal arrival-rate curve: [hour of day UTC, relative rate] knots, linear in between, scaled
 * below so that its mean over a day is exactly 1. Low 02:00–05:00 (~24%), plateau 10:00–20:00 (~145%).
 */
const DIURNAL_KNOTS: ReadonlyArray<readonly [number, number]> = [
  [0, 0.5],
  [2, 0.25],
  [5, 0.25],
  [10, 1.5],
  [20, 1.5],
  [24, 0.5],
];

/** Knot times (ms of day), normalised rates, and the integral of the rate up to each knot. */
const DIURNAL = ((): { at: Float64Array; rate: Float64Array; cum: Float64Array } => {
  const at = Float64Array.from(DIURNAL_KNOTS, ([h]) => h * 3_600_000);
  const raw = Float64Array.from(DIURNAL_KNOTS, ([, v]) => v);
  let area = 0;
  for (let i = 1; i < at.length; i++) area += ((raw[i - 1]! + raw[i]!) / 2) * (at[i]! - at[i - 1]!);
  const rate = raw.map((v) => (v * DAY_MS) / area);
  const cum = new Float64Array(at.length);
  for (let i = 1; i < at.length; i++) cum[i] = cum[i - 1]! + ((rate[i - 1]! + rate[i]!) / 2) * (at[i]! - at[i - 1]!);
  return { at, rate, cum };
})();

/** Relative arrival rate at epoch ms `t` (mean 1 over a UTC day). */
function diurnalRate(t: number): number {
  const { at, rate } = DIURNAL;
  const r = t - Math.floor(t / DAY_MS) * DAY_MS;
  let i = 0;
  while (i < at.length - 2 && r >= at[i + 1]!) i++;
  return rate[i]! + ((rate[i + 1]! - rate[i]!) * (r - at[i]!)) / (at[i + 1]! - at[i]!);
}

/** "Operational time" Λ(t) = ∫ rate: advances one ms per ms on average, faster by day, slower by night. */
function diurnalIntegral(t: number): number {
  const { at, rate, cum } = DIURNAL;
  const day = Math.floor(t / DAY_MS);
  const r = t - day * DAY_MS;
  let i = 0;
  while (i < at.length - 2 && r >= at[i + 1]!) i++;
  const x = r - at[i]!;
  const slope = (rate[i + 1]! - rate[i]!) / (at[i + 1]! - at[i]!);
  return day * DAY_MS + cum[i]! + rate[i]! * x + (slope * x * x) / 2;
}

/** Inverse of `diurnalIntegral` (solves the quadratic of the linear segment). */
function diurnalInverse(u: number): number {
  const { at, rate, cum } = DIURNAL;
  const day = Math.floor(u / DAY_MS);
  const r = u - day * DAY_MS;
  let i = 0;
  while (i < at.length - 2 && r >= cum[i + 1]!) i++;
  const rem = r - cum[i]!;
  const a = rate[i]!;
  const slope = (rate[i + 1]! - a) / (at[i + 1]! - at[i]!);
  // a·x + slope·x²/2 = rem, written to stay exact when slope is 0
  const x = (2 * rem) / (a + Math.sqrt(Math.max(0, a * a + 2 * slope * rem)));
  return day * DAY_MS + at[i]! + x;
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const HEX1: readonly string[] = Array.from({ length: 16 }, (_, i) => i.toString(16));

function hex8(x: number): string {
  return HEX[x >>> 24]! + HEX[(x >>> 16) & 255]! + HEX[(x >>> 8) & 255]! + HEX[x & 255]!;
}
function hex4(x: number): string {
  return HEX[(x >>> 8) & 255]! + HEX[x & 255]!;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function titleCase(s: string): string {
  let out = '';
  let up = true;
  for (const ch of s) {
    out += up ? ch.toUpperCase() : ch;
    up = ch === '.' || ch === '_' || ch === '-';
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// internal model

class PhoneNumber {
  private fE164: string | null = null;
  private fIntl: string | null = null;
  private fIntlAlt: string | null = null;
  private fIdd: string | null = null;
  private fBare: string | null = null;
  private fNational: string | null = null;

  constructor(
    readonly destIdx: number,
    readonly dest: Destination,
    readonly range: NumberRange,
    /** Index in `dest.operators` of the operator the range belongs to. */
    readonly rangeOp: number,
    readonly nsn: string,
  ) {}

  format(f: number): string {
    switch (f) {
      case F_INTL:
        return (this.fIntl ??= `+${this.dest.callingCode} ${applyTemplate(this.range.international, this.nsn)}`);
      case F_INTL_ALT:
        return (this.fIntlAlt ??= `+${this.dest.callingCode} ${applyTemplate(altInternationalTemplate(this.range), this.nsn)}`);
      case F_IDD:
        return (this.fIdd ??= `00${this.dest.callingCode}${this.nsn}`);
      case F_BARE:
        return (this.fBare ??= this.dest.callingCode + this.nsn);
      case F_NATIONAL:
        return (this.fNational ??= applyTemplate(this.range.national, this.nsn));
      default:
        return (this.fE164 ??= `+${this.dest.callingCode}${this.nsn}`);
    }
  }
}

const altTemplateCache = new Map<NumberRange, string>();
/**
 * Second international style, grouped like the national format when that is unambiguous
 * (`+60 12-345 6789`), otherwise the international grouping joined with dashes (`+44 7400-123456`).
 */
function altInternationalTemplate(range: NumberRange): string {
  let t = altTemplateCache.get(range);
  if (t === undefined) {
    const nat = range.national;
    if (nat.startsWith('0#') && !nat.includes('(')) t = nat.slice(1);
    else if (!nat.includes('(') && nat.includes('-')) t = nat;
    else t = range.international.replace(/ /g, '-');
    altTemplateCache.set(range, t);
  }
  return t;
}

class Subscriber extends PhoneNumber {
  /** Serving operator index (differs from rangeOp when ported). */
  servingOp = 0;
  ported = false;
  emailLocal = '';
  emailDomain = '';
  emailDomainAscii: string | null = null;
  /** Event time before which ordinary traffic does not pick this user again (`subscriberGapMs`). */
  busyUntil = Number.NEGATIVE_INFINITY;
  private eCanon: string | null = null;
  private eTitle: string | null = null;
  private eUpper: string | null = null;
  private eAscii: string | null = null;

  email(variant: number): string {
    switch (variant) {
      case 1:
        return (this.eTitle ??= `${titleCase(this.emailLocal)}@${titleCase(this.emailDomain)}`);
      case 2:
        return (this.eUpper ??= `${this.emailLocal.toUpperCase()}@${this.emailDomain}`);
      case 3:
        if (this.emailDomainAscii !== null) return (this.eAscii ??= `${this.emailLocal}@${this.emailDomainAscii}`);
        return (this.eCanon ??= `${this.emailLocal}@${this.emailDomain}`);
      default:
        return (this.eCanon ??= `${this.emailLocal}@${this.emailDomain}`);
    }
  }
}

interface Account {
  idx: number;
  id: string;
  senderId: string;
  emailSenders: string[];
  home: number;
  markets: WeightedPicker<number>;
  currency: CurrencyCode;
  ips: string[];
  apiShare: number;
  otpHeavy: boolean;
  priceFactor: number;
  share: number;
  numbers: (PhoneNumber | undefined)[];
  shortcodes: (string | undefined)[];
}

type PatternKind = AttackScenario;

/**
 * Burst schedule of the newer scenarios, in event time (the original scenarios count events
 * instead). Burst n (0-based) starts phaseMs + n·periodMs (+ U·jitterMs for n ≥ 1) after the start;
 * in spread mode "time" is a virtual clock on which event k sits at k / ratePerSecond.
 */
interface BurstPlan {
  /** Events per burst [min, max]: the burst ends when they are sent. Null: it ends after its duration. */
  readonly events: readonly [number, number] | null;
  /** Burst duration [min, max] (ms of event time). */
  readonly durationMs: readonly [number, number];
  /** Rate of the actor during the burst as a multiple of its normal rate [min, max]; null keeps `intensity`. */
  readonly factor: readonly [number, number] | null;
  readonly periodMs: number;
  readonly phaseMs: number;
  readonly jitterMs: number;
}

interface Pattern {
  kind: PatternKind;
  meanGap: number;
  meanBurst: number;
  /** Probability that an event drawn while the burst is active belongs to the pattern. */
  intensity: number;
  /** Mean ms between pattern events inside a burst (spread mode only). */
  burstGapMs: number;
  active: boolean;
  countdown: number;
  burstClock: number;
  /** Bursts started so far: the episode number of the current (or last) burst. */
  episode: number;
  /** Time-based schedule (newer scenarios) or null for the original count-based one. */
  plan: BurstPlan | null;
  /** Planned patterns: events left in the burst, schedule time the burst ends, the next one starts. */
  quota: number;
  burstEnd: number;
  nextStart: number;
}

/** State of the `campaign` option. */
interface Campaign {
  readonly rng: Prng;
  readonly account: Account;
  readonly destIdx: number;
  /** Every number range of the country, with the index of its operator. */
  readonly ranges: readonly { range: NumberRange; opIdx: number }[];
  readonly at: number;
  readonly durationMs: number;
  /** Numbers already used (the campaign never sends twice to one number). */
  readonly seen: Set<string>;
  left: number;
  /** Position in [0, 1) of the last scheduled event within the campaign window. */
  pos: number;
  /** Event time of the next campaign event. */
  nextAt: number;
  /** Id counter of campaign events: a range the main counter never reaches, so cdr_ids stay unique. */
  idCounter: number;
}

/** A base event generated ahead (rate mode with a campaign) and its label. */
interface Pending {
  event: CdrEvent;
  kind: GeneratedCdr['kind'];
  pattern: Pattern | null;
  episode: number;
}

interface SequentialBlock {
  destIdx: number;
  opIdx: number;
  range: NumberRange;
  head: string;
  tailDigits: number;
  counter: number;
}

/** Mutable scratch record the generation paths fill before `emit()` copies it into an event. */
interface Draft {
  account: Account;
  chIdx: number;
  mo: boolean;
  senderType: SenderType;
  sender: string;
  recipient: string;
  dest: Destination | null;
  op: Operator | null;
  ported: boolean;
  provider: string;
  status: number;
  segments: number;
  size: number;
  duration: number | null;
  price: number;
  cost: number;
  currency: string;
  ip: string | null;
  t: number;
  submitted: number;
  delivered: number | null;
  errFamily: number;
}

// ------------------------------------------------------------------------------------------

export class TrafficGenerator {
  readonly options: Readonly<
    Required<Omit<GeneratorOptions, 'timeSpreadMs' | 'campaign'>> & { timeSpreadMs: number; campaign: Readonly<CampaignOptions> | undefined }
  >;
  /** Not readonly: campaign events swap in their own generator so the base stream is untouched. */
  private rng: Prng;
  private readonly spread: boolean;
  private readonly meanGapMs: number;
  private clock: number;
  /** Diurnal rate mode: operational time (see `diurnalIntegral`) of the clock. */
  private opClock = 0;
  /** Diurnal spread mode: operational times of the window ends. */
  private spreadOpLo = 0;
  private spreadOpHi = 0;
  /** Non-duplicate events drawn so far (the virtual clock of planned bursts in spread mode). */
  private ticks = 0;
  private idCounter = 0;
  private readonly idKey: number;
  private readonly seedKey: number;

  private readonly destPicker: WeightedPicker<number>;
  private readonly pools: Subscriber[][];
  private readonly poolZipfC: Float64Array;
  /** Each pool's size as made (the zipf ranks are over these; `subscriberGapMs` may grow a pool to 5 times it). */
  private readonly poolZipfBase: Int32Array;
  private readonly accounts: Account[];
  /** Not readonly: scenarios with a range scan rebuild it without the scanner's account. */
  private accountPicker: WeightedPicker<number>;
  private readonly channelPicker: WeightedPicker<number>;
  private readonly mtStatus: WeightedPicker<number>[];
  private readonly moStatus: WeightedPicker<number>;
  private readonly pumpStatus: WeightedPicker<number>;
  private readonly scanStatus: WeightedPicker<number>;
  private readonly campaignStatus: WeightedPicker<number>;
  private readonly errors: WeightedPicker<string | null>[][];
  /** [destIdx * 8 + chIdx] → unit price / cost (micro-units). */
  private readonly unitPrice: Float64Array;
  private readonly unitCost: Float64Array;
  private readonly attackerIps: string[];

  private readonly patterns: Pattern[];
  private readonly pumpAccount: Account;
  private readonly pumpBlocks: SequentialBlock[];
  private readonly pumpBlockPicker: WeightedPicker<number>;
  private readonly irsfAccount: Account;
  private readonly irsfBlocks: SequentialBlock[];
  private readonly velocityAccount: Account;
  private readonly velocitySpikeShare: number;
  private readonly scanAccount: Account;
  private readonly scanBlock: SequentialBlock;
  private readonly anomalyAccount: Account;
  private readonly anomalyDests: readonly number[];
  /** Set in scenarios with an account anomaly: that account's normal traffic avoids `anomalyDests`. */
  private readonly anomalyGuard: Account | null;
  private readonly anomalyDestMask: Uint8Array;
  private readonly campaign: Campaign | null;
  private pending: Pending | null = null;

  private readonly draft: Draft;
  private lastKind: GeneratedCdr['kind'] = 'normal';
  /** Pattern (and its episode) of the last fraud event; null for other events. */
  private lastPattern: Pattern | null = null;
  private lastEpisode = 0;
  private lastCampaign = false;
  private readonly ring: CdrEvent[] = [];
  private ringPos = 0;

  constructor(opts: GeneratorOptions) {
    const o = {
      seed: opts.seed,
      scenario: opts.scenario,
      startTime: opts.startTime,
      ratePerSecond: opts.ratePerSecond ?? 1000,
      accounts: opts.accounts ?? 50,
      subscribers: opts.subscribers ?? 20_000,
      freshSubscribers: opts.freshSubscribers ?? false,
      timeSpreadMs: opts.timeSpreadMs ?? 0,
      duplicateRate: opts.duplicateRate ?? 0,
      velocityOnset: opts.velocityOnset ?? 1000,
      diurnal: opts.diurnal ?? false,
      campaign: opts.campaign === undefined ? undefined : { ...opts.campaign },
      subscriberGapMs: opts.subscriberGapMs ?? 0,
    };
    if (!SCENARIOS.includes(o.scenario)) throw new RangeError(`unknown scenario ${String(o.scenario)}`);
    if (!Number.isFinite(o.startTime)) throw new RangeError('startTime must be epoch milliseconds');
    if (!(o.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be > 0');
    if (!(Number.isInteger(o.accounts) && o.accounts >= 1)) throw new RangeError('accounts must be an integer ≥ 1');
    if (!(Number.isInteger(o.subscribers) && o.subscribers >= 1)) throw new RangeError('subscribers must be an integer ≥ 1');
    if (!(o.timeSpreadMs >= 0)) throw new RangeError('timeSpreadMs must be ≥ 0');
    if (!(o.duplicateRate >= 0 && o.duplicateRate < 1)) throw new RangeError('duplicateRate must be in [0, 1)');
    if (!(Number.isFinite(o.subscriberGapMs) && o.subscriberGapMs >= 0)) throw new RangeError('subscriberGapMs must be ≥ 0');
    const camp = o.campaign;
    if (camp !== undefined) {
      if (!Number.isFinite(camp.at)) throw new RangeError('campaign.at must be epoch milliseconds');
      if (!(Number.isFinite(camp.durationMs) && camp.durationMs > 0)) throw new RangeError('campaign.durationMs must be > 0');
      if (!(Number.isInteger(camp.count) && camp.count >= 0)) throw new RangeError('campaign.count must be an integer ≥ 0');
    }
    this.options = o;

    const rng = (this.rng = new Prng(o.seed));
    this.spread = o.timeSpreadMs > 0;
    this.meanGapMs = 1000 / o.ratePerSecond;
    this.clock = o.startTime;
    if (o.diurnal) {
      this.opClock = diurnalIntegral(o.startTime);
      this.spreadOpLo = diurnalIntegral(o.startTime - o.timeSpreadMs);
      this.spreadOpHi = diurnalIntegral(o.startTime + 1);
    }
    this.idKey = rng.nextU32();
    this.seedKey = rng.nextU32();

    // --- destinations and the subscriber pool
    this.destPicker = new WeightedPicker(DESTINATIONS.map((d, i) => [i, d.trafficWeight] as const));
    const totalW = this.destPicker.total;
    this.pools = DESTINATIONS.map((d, di) => {
      const n = Math.max(8, Math.round((o.subscribers * d.trafficWeight) / totalW));
      const pool: Subscriber[] = [];
      for (let k = 0; k < n; k++) pool.push(this.makeSubscriber(di));
      return pool;
    });
    this.poolZipfC = Float64Array.from(this.pools, (p) => Math.pow(p.length + 1, 1 - ZIPF_S) - 1);
    this.poolZipfBase = Int32Array.from(this.pools, (p) => p.length);

    // --- accounts
    const nonRisk = DESTINATIONS.map((d, i) => [i, d.irsfRisk ? 0 : d.trafficWeight] as const);
    const nonRiskPicker = new WeightedPicker(nonRisk);
    const order = rng.shuffle(Array.from({ length: o.accounts }, (_, i) => i));
    const rawShare = new Float64Array(o.accounts);
    order.forEach((acctIdx, rank) => {
      rawShare[acctIdx] = 1 / Math.pow(rank + 1, 1.1);
    });
    const shareTotal = rawShare.reduce((a, b) => a + b, 0);
    this.accounts = [];
    for (let i = 0; i < o.accounts; i++) {
      this.accounts.push(this.makeAccount(i, nonRiskPicker, rawShare[i]! / shareTotal));
    }
    this.accountPicker = new WeightedPicker(this.accounts.map((a) => [a.idx, a.share] as const));

    // --- channel / status / error tables
    this.channelPicker = new WeightedPicker(CHANNEL_WEIGHTS);
    this.mtStatus = MT_STATUS_WEIGHTS.map((ws) => new WeightedPicker(ws.map((w, s) => [s, w] as const)));
    this.moStatus = new WeightedPicker(MO_STATUS_WEIGHTS.map((w, s) => [s, w] as const));
    this.pumpStatus = new WeightedPicker(PUMPING_STATUS_WEIGHTS.map((w, s) => [s, w] as const));
    this.scanStatus = new WeightedPicker(SCAN_STATUS_WEIGHTS.map((w, s) => [s, w] as const));
    this.campaignStatus = new WeightedPicker(CAMPAIGN_STATUS_WEIGHTS.map((w, s) => [s, w] as const));
    this.errors = CHANNEL_LIST.map((ch) => {
      const fam = ERROR_CODES[ch];
      const none = new WeightedPicker<string | null>([[null, 1]]);
      // index by status code: delivered / pending have no error code
      return [none, new WeightedPicker(fam.failed), new WeightedPicker(fam.rejected), new WeightedPicker(fam.expired), none];
    });
    {
      const none = new WeightedPicker<string | null>([[null, 1]]);
      this.errors.push([none, new WeightedPicker(SCAN_ERRORS.failed), new WeightedPicker(SCAN_ERRORS.rejected), new WeightedPicker(SCAN_ERRORS.expired), none]);
    }
    this.unitPrice = new Float64Array(DESTINATIONS.length * 8);
    this.unitCost = new Float64Array(DESTINATIONS.length * 8);
    DESTINATIONS.forEach((d, di) => {
      CHANNEL_LIST.forEach((ch, ci) => {
        const p = CHANNEL_PRICING[ch];
        let price: number;
        let cost: number;
        if (ci === CH_VOICE) {
          price = d.voicePricePerMin;
          cost = d.voiceCostPerMin;
        } else {
          price = p.fixedPrice + p.priceFactor * d.smsPrice;
          cost = p.fixedCost + p.costFactor * d.smsCost;
        }
        this.unitPrice[di * 8 + ci] = price;
        this.unitCost[di * 8 + ci] = cost;
      });
    });
    this.attackerIps = [];
    for (let i = 0; i < 64; i++) this.attackerIps.push(this.randomIp(rng.chance(0.3)));

    // --- fraud actors (always set up so the stream of random draws does not depend on scenario
    //     beyond the pattern schedule)
    const byShare = [...this.accounts].sort((a, b) => b.share - a.share || a.idx - b.idx);
    this.pumpAccount = byShare[Math.min(byShare.length - 1, 2)]!;
    this.pumpAccount.otpHeavy = true;
    this.irsfAccount = byShare[Math.min(byShare.length - 1, 7)]!;
    const targetShare = 0.3 / 49;
    const candidates = byShare.filter((a) => a !== this.pumpAccount && a !== this.irsfAccount);
    let best: Account = candidates[candidates.length - 1] ?? byShare[byShare.length - 1]!;
    for (const a of candidates) if (Math.abs(a.share - targetShare) < Math.abs(best.share - targetShare)) best = a;
    this.velocityAccount = best;
    const p0 = best.share;
    this.velocitySpikeShare = Math.min(0.6, (49 * p0) / (1 - p0 || 1));

    const irsfIdx = IRSF_DESTINATIONS.map((iso) => DESTINATIONS.findIndex((d) => d.iso === iso));
    const pumpTargets = rng.shuffle([...irsfIdx]).slice(0, 3);
    this.pumpBlocks = [];
    for (const di of pumpTargets) for (let k = 0; k < 2; k++) this.pumpBlocks.push(this.makeBlock(di, 4));
    this.pumpBlockPicker = new WeightedPicker(this.pumpBlocks.map((_, i) => [i, i < 2 ? 5 : i < 4 ? 3 : 2] as const));
    const irsfTargets = rng.shuffle([...irsfIdx]).slice(0, 3);
    this.irsfBlocks = irsfTargets.map((di) => this.makeBlock(di, 3));

    // --- actors added later (range scan, account anomaly, campaign): drawn from a generator of their
    //     own, so the main stream, and with it every original scenario, is exactly what it was
    const aux = new Prng(hash32(this.seedKey ^ 0x5ca77e57));
    const taken = new Set<Account>([this.pumpAccount, this.irsfAccount, this.velocityAccount]);
    const free = byShare.filter((a) => !taken.has(a));
    // a small account, three quarters down the activity ranking
    this.scanAccount = free[Math.floor(free.length * 0.75)] ?? byShare[byShare.length - 1]!;
    taken.add(this.scanAccount);
    const scanDests = DESTINATIONS.map((d, i) => [i, d.irsfRisk || !d.alphanumericSenders || pumpTargets.includes(i) ? 0 : d.trafficWeight] as const);
    this.scanBlock = this.makeBlock(new WeightedPicker(scanDests).pick(aux), 4, aux);
    // an ordinary account: share near half the average
    const free2 = byShare.filter((a) => !taken.has(a));
    const anomalyTarget = 0.5 / o.accounts;
    let anomaly: Account = free2[0] ?? byShare[byShare.length - 1]!;
    for (const a of free2) if (Math.abs(a.share - anomalyTarget) < Math.abs(anomaly.share - anomalyTarget)) anomaly = a;
    this.anomalyAccount = anomaly;
    taken.add(anomaly);
    this.anomalyDests = this.pickAnomalyDests(anomaly, aux);
    this.anomalyDestMask = new Uint8Array(DESTINATIONS.length);
    for (const di of this.anomalyDests) this.anomalyDestMask[di] = 1;

    this.patterns = this.makePatterns(o.scenario, o.velocityOnset);
    const kinds = new Set(this.patterns.map((p) => p.kind));
    // the scanner is a throwaway account: it sends nothing but its scans
    if (kinds.has('range_scan') && free.length > 0) {
      this.accountPicker = new WeightedPicker(this.accounts.map((a) => [a.idx, a === this.scanAccount ? 0 : a.share] as const));
    }
    this.anomalyGuard = kinds.has('account_anomaly') ? anomaly : null;
    this.campaign = camp === undefined ? null : this.makeCampaign(camp, taken);

    this.draft = {
      account: this.accounts[0]!,
      chIdx: 0,
      mo: false,
      senderType: 'msisdn',
      sender: '',
      recipient: '',
      dest: null,
      op: null,
      ported: false,
      provider: '',
      status: 0,
      segments: 1,
      size: 0,
      duration: null,
      price: 0,
      cost: 0,
      currency: 'EUR',
      ip: null,
      t: 0,
      submitted: 0,
      delivered: null,
      errFamily: 0,
    };
  }

  /** Ground truth about who commits which fraud in this instance. */
  get fraudActors(): FraudActors {
    const p0 = this.velocityAccount.share;
    const s = this.velocitySpikeShare;
    return {
      smsPumping: {
        accountId: this.pumpAccount.id,
        senderId: this.pumpAccount.senderId,
        countries: [...new Set(this.pumpBlocks.map((b) => DESTINATIONS[b.destIdx]!.iso))],
      },
      irsf: { accountId: this.irsfAccount.id, countries: this.irsfBlocks.map((b) => DESTINATIONS[b.destIdx]!.iso) },
      velocity: {
        accountId: this.velocityAccount.id,
        senderId: this.velocityAccount.senderId,
        baselineShare: p0,
        spikeShare: s + (1 - s) * p0,
        factor: (s + (1 - s) * p0) / p0,
      },
      rangeScan: {
        accountId: this.scanAccount.id,
        senderId: this.scanAccount.senderId,
        country: DESTINATIONS[this.scanBlock.destIdx]!.iso,
        blockPrefix: `+${DESTINATIONS[this.scanBlock.destIdx]!.callingCode}${this.scanBlock.head}`,
        blockSize: Math.pow(10, this.scanBlock.tailDigits),
      },
      accountAnomaly: {
        accountId: this.anomalyAccount.id,
        baselineShare: this.anomalyAccount.share / this.accountPicker.total,
        countries: this.anomalyDests.map((di) => DESTINATIONS[di]!.iso),
      },
    };
  }

  /** Account ids, in index order. */
  get accountIds(): string[] {
    return this.accounts.map((a) => a.id);
  }

  /** Next event. */
  next(): CdrEvent {
    return this.pull();
  }

  /** Next event with its ground-truth label. */
  nextLabeled(): GeneratedCdr {
    const event = this.pull();
    const out: GeneratedCdr = { event, kind: this.lastKind };
    if (this.lastPattern !== null) out.attack = { scenario: this.lastPattern.kind, episode: this.lastEpisode };
    if (this.lastCampaign) out.campaign = true;
    return out;
  }

  /** The next `n` events. */
  take(n: number): CdrEvent[] {
    const out = new Array<CdrEvent>(n);
    for (let i = 0; i < n; i++) out[i] = this.pull();
    return out;
  }

  *[Symbol.iterator](): Iterator<CdrEvent> {
    for (;;) yield this.pull();
  }

  // ----------------------------------------------------------------------------------------
  // generation

  /**
   * The base stream (`generate`) merged with campaign events. In rate mode the next base event is
   * generated one step ahead, so a campaign event goes out exactly when its time comes before the
   * next base event's: the merged stream stays in event_time order and the base stream is
   * unchanged event for event. Spread mode has no order to keep: campaign events are interleaved
   * with about every other base event until they run out.
   */
  private pull(): CdrEvent {
    const c = this.campaign;
    if (c === null || c.left <= 0) return this.pending === null ? this.generate() : this.takePending();
    if (this.spread) return c.rng.next() < 0.5 ? this.emitCampaign(c) : this.generate();
    if (this.pending === null) {
      const event = this.generate();
      this.pending = { event, kind: this.lastKind, pattern: this.lastPattern, episode: this.lastEpisode };
    }
    // floor(clock) is the time of the newest base event, the pending one or (pending duplicate) the one before
    return c.nextAt < Math.floor(this.clock) ? this.emitCampaign(c) : this.takePending();
  }

  private takePending(): CdrEvent {
    const p = this.pending!;
    this.pending = null;
    this.lastKind = p.kind;
    this.lastPattern = p.pattern;
    this.lastEpisode = p.episode;
    this.lastCampaign = false;
    return p.event;
  }

  private emitCampaign(c: Campaign): CdrEvent {
    // own generator and own id range: the base stream must not notice the campaign
    const mainRng = this.rng;
    const mainIds = this.idCounter;
    this.rng = c.rng;
    this.idCounter = c.idCounter;
    let ev: CdrEvent;
    try {
      this.fillCampaign(c, c.nextAt);
      ev = this.emit();
    } finally {
      c.idCounter = this.idCounter;
      this.rng = mainRng;
      this.idCounter = mainIds;
    }
    c.left--;
    this.scheduleCampaign(c);
    this.lastKind = 'normal';
    this.lastPattern = null;
    this.lastCampaign = true;
    return ev;
  }

  private generate(): CdrEvent {
    const rng = this.rng;
    this.lastPattern = null;
    this.lastCampaign = false;
    if (this.options.duplicateRate > 0 && this.ring.length > 0 && rng.next() < this.options.duplicateRate) {
      const orig = this.ring[Math.floor(rng.next() * this.ring.length)]!;
      this.lastKind = 'duplicate';
      return { ...orig };
    }
    this.ticks++;

    let fraud: Pattern | null = null;
    const patterns = this.patterns;
    for (let i = 0; i < patterns.length; i++) {
      const p = patterns[i]!;
      if (p.plan !== null) this.tickPlanned(p);
      else if (!p.active) {
        if (--p.countdown <= 0) this.startBurst(p);
      } else if (--p.countdown <= 0) {
        p.active = false;
        p.countdown = Math.max(1, Math.round(rng.exponential(p.meanGap)));
      }
      if (p.active && fraud === null && rng.next() < p.intensity) fraud = p;
    }

    let ev: CdrEvent;
    if (fraud === null) {
      const t = this.normalTime();
      const acct = this.accounts[this.accountPicker.pick(rng)]!;
      this.fillNormal(acct, -1, t, -1, true);
      ev = this.emit();
      this.lastKind = 'normal';
    } else {
      const t = this.spread ? this.burstTime(fraud) : this.normalTime();
      switch (fraud.kind) {
        case 'sms_pumping':
          this.fillPumping(t);
          break;
        case 'irsf':
          this.fillIrsf(t);
          break;
        case 'velocity':
          this.fillNormal(this.velocityAccount, rng.next() < 0.85 ? CH_SMS : -1, t);
          break;
        case 'range_scan':
          this.fillRangeScan(t);
          break;
        case 'account_anomaly':
          // SMS and some voice: channels that always name the destination country
          this.fillNormal(this.anomalyAccount, rng.next() < 0.85 ? CH_SMS : CH_VOICE, t, this.anomalyDests[Math.floor(rng.next() * this.anomalyDests.length)]);
          break;
      }
      ev = this.emit();
      this.lastKind = 'fraud';
      this.lastPattern = fraud;
      this.lastEpisode = fraud.episode;
      if (fraud.plan !== null && --fraud.quota <= 0) this.endPlanned(fraud);
    }

    if (this.options.duplicateRate > 0) {
      if (this.ring.length < 256) this.ring.push(ev);
      else {
        this.ring[this.ringPos] = ev;
        this.ringPos = (this.ringPos + 1) & 255;
      }
    }
    return ev;
  }

  private normalTime(): number {
    if (this.options.diurnal) return this.diurnalTime();
    if (this.spread) {
      return this.options.startTime - Math.floor(this.rng.next() * (this.options.timeSpreadMs + 1));
    }
    this.clock += this.rng.exponential(this.meanGapMs);
    return Math.floor(this.clock);
  }

  /** `normalTime` on the day curve: uniform steps in operational time, mapped back to clock time. */
  private diurnalTime(): number {
    if (this.spread) {
      const u = this.spreadOpLo + this.rng.next() * (this.spreadOpHi - this.spreadOpLo);
      return Math.min(this.options.startTime, Math.max(this.options.startTime - this.options.timeSpreadMs, Math.floor(diurnalInverse(u))));
    }
    this.opClock += this.rng.exponential(this.meanGapMs);
    // never step back (the inverse can round a hair below the previous clock)
    this.clock = Math.max(this.clock, diurnalInverse(this.opClock));
    return Math.floor(this.clock);
  }

  /** Schedule time of planned bursts: elapsed event time, or the virtual clock in spread mode. */
  private schedNow(): number {
    return this.spread ? this.ticks * this.meanGapMs : this.clock - this.options.startTime;
  }

  private tickPlanned(p: Pattern): void {
    const now = this.schedNow();
    if (!p.active) {
      if (now >= p.nextStart) this.startBurst(p);
    } else if (now >= p.burstEnd) this.endPlanned(p);
  }

  /** Sizes a planned burst: its length, its share of events, its pace in spread mode. */
  private planBurst(p: Pattern, plan: BurstPlan): void {
    const rng = this.rng;
    const [d0, d1] = plan.durationMs;
    const dur = d0 + rng.next() * (d1 - d0);
    // events the stream will carry during the burst (the day curve slows or speeds the clock)
    const rate = this.options.diurnal && !this.spread ? diurnalRate(this.clock) : 1;
    const calls = Math.max(1, (dur * this.options.ratePerSecond * rate) / 1000);
    if (plan.events !== null) {
      const n = rng.int(plan.events[0], plan.events[1]);
      p.quota = n;
      p.burstEnd = Infinity;
      // capped: at very low rates the burst stretches beyond its duration rather than crowd out all else
      p.intensity = Math.min(0.9, n / calls);
      p.burstGapMs = dur / n;
    } else {
      if (plan.factor !== null) {
        const f = plan.factor[0] + rng.next() * (plan.factor[1] - plan.factor[0]);
        // the account's share s becomes q + (1 - q)·s = f·s with q = (f - 1)·s / (1 - s)
        const s = Math.min(0.5, this.anomalyAccount.share / this.accountPicker.total);
        p.intensity = Math.min(0.9, ((f - 1) * s) / (1 - s));
      }
      p.quota = Infinity;
      p.burstEnd = this.schedNow() + dur;
      p.burstGapMs = dur / Math.max(1, p.intensity * calls);
    }
  }

  private endPlanned(p: Pattern): void {
    const plan = p.plan!;
    p.active = false;
    // anchored to the schedule (no drift between patterns); a burst that overran waits a quarter period
    const anchor = plan.phaseMs + p.episode * plan.periodMs + this.rng.next() * plan.jitterMs;
    p.nextStart = Math.max(anchor, this.schedNow() + plan.periodMs / 4);
  }

  private burstTime(p: Pattern): number {
    p.burstClock += this.rng.exponential(p.burstGapMs);
    const t = Math.floor(p.burstClock);
    return t > this.options.startTime ? this.options.startTime : t;
  }

  private startBurst(p: Pattern): void {
    const rng = this.rng;
    p.active = true;
    p.episode++;
    if (p.plan === null) p.countdown = Math.max(20, Math.round(rng.exponential(p.meanBurst)));
    else this.planBurst(p, p.plan);
    if (this.spread) {
      const span = this.options.timeSpreadMs;
      let start = this.options.startTime - span + Math.floor(rng.next() * span * 0.98);
      if (p.kind === 'irsf' && span > 2 * 86_400_000) {
        // IRSF attacks like nights: move the burst to 00:00–05:00 UTC of its day
        start = Math.max(this.options.startTime - span, start - (start % 86_400_000) + Math.floor(rng.next() * 5 * 3_600_000));
      }
      p.burstClock = start;
    }
  }

  /** Normal traffic of `acct` (channel forced when chIdxForced ≥ 0, destination when destForced ≥ 0). */
  private fillNormal(acct: Account, chIdxForced: number, t: number, destForced = -1, ordinary = false): void {
    const rng = this.rng;
    const w = this.draft;
    const ch = chIdxForced >= 0 ? chIdxForced : this.channelPicker.pick(rng);
    // a forced destination (account anomaly) is always outbound
    const mo = destForced < 0 && MO_PROB[ch]! > 0 && rng.next() < MO_PROB[ch]!;
    let destIdx: number;
    if (destForced >= 0) destIdx = destForced;
    else {
      destIdx = rng.next() < 0.03 ? this.destPicker.pick(rng) : acct.markets.pick(rng);
      // the anomaly's destinations stay unused outside its bursts (a remap, no extra draw)
      if (acct === this.anomalyGuard && this.anomalyDestMask[destIdx] === 1) destIdx = acct.home;
    }
    const d = DESTINATIONS[destIdx]!;
    const sub = this.pickSubscriber(destIdx, t, ordinary);

    w.account = acct;
    w.chIdx = ch;
    w.mo = mo;
    w.dest = d;
    w.op = null;
    w.ported = false;
    w.ip = null;
    w.duration = null;
    w.currency = d.currency;

    if (ch === CH_EMAIL) {
      w.senderType = 'email';
      w.sender = acct.emailSenders[Math.floor(rng.next() * acct.emailSenders.length)]!;
      w.recipient = this.renderEmail(sub);
      w.dest = null;
      w.currency = acct.currency;
      w.provider = pickStr(rng, OTT_PROVIDERS.email);
    } else {
      // ~0.5% of MT events: the routing layer did not resolve the destination (no country, no
      // network); such events never carry national-format numbers.
      const unresolved = !mo && destForced < 0 && rng.next() < 0.005;
      if (mo) {
        w.senderType = 'msisdn';
        w.sender = this.renderPhone(sub, destIdx);
        w.recipient = ch === CH_SMS && rng.next() < 0.4 ? this.shortcode(acct, destIdx) : this.renderPhone(this.accountNumber(acct, destIdx), destIdx);
      } else {
        const renderDest = unresolved ? -1 : destIdx;
        w.recipient = this.renderPhone(sub, renderDest);
        this.fillMtSender(acct, ch, destIdx, renderDest);
      }
      const serving = d.operators[sub.servingOp]!;
      switch (ch) {
        case CH_SMS:
        case CH_MMS:
        case CH_VOICE:
          w.op = serving;
          w.ported = sub.ported;
          w.provider = this.operatorRoute(d, serving, ch);
          break;
        case CH_RCS:
          w.op = serving;
          w.ported = sub.ported;
          w.provider = rng.next() < 0.6 ? OTT_PROVIDERS.rcs[0]! : serving.providerId;
          break;
        case CH_WHATSAPP:
          w.provider = pickStr(rng, OTT_PROVIDERS.whatsapp);
          break;
        case CH_VIBER:
          w.provider = pickStr(rng, OTT_PROVIDERS.viber);
          break;
        default:
          w.provider = rng.next() < 0.7 ? OTT_PROVIDERS.push[0]! : OTT_PROVIDERS.push[1]!;
      }
      if (unresolved) {
        w.dest = null;
        w.op = null;
        w.ported = false;
      }
    }

    w.status = (mo ? this.moStatus : this.mtStatus[ch]!).pick(rng);
    w.errFamily = ch;
    this.fillPayload(ch, acct.otpHeavy);
    this.fillTimes(t, ch, mo);
    this.fillPrice(destIdx, ch, mo, acct);
    if (!mo && rng.next() < acct.apiShare) w.ip = acct.ips[Math.floor(rng.next() * acct.ips.length)]!;
  }

  /** `renderDest` is the destination whose national format may be used (-1: none). */
  private fillMtSender(acct: Account, ch: number, destIdx: number, renderDest: number): void {
    const rng = this.rng;
    const w = this.draft;
    const d = DESTINATIONS[destIdx]!;
    switch (ch) {
      case CH_SMS: {
        const r = rng.next();
        if (d.alphanumericSenders ? r < 0.55 : false) {
          w.senderType = 'alphanumeric';
          w.sender = acct.senderId;
        } else if (d.alphanumericSenders ? r < 0.75 : r < 0.55) {
          w.senderType = 'shortcode';
          w.sender = this.shortcode(acct, destIdx);
        } else {
          w.senderType = 'msisdn';
          w.sender = this.renderPhone(this.accountNumber(acct, destIdx), renderDest);
        }
        return;
      }
      case CH_MMS:
        if (rng.next() < 0.5) {
          w.senderType = 'shortcode';
          w.sender = this.shortcode(acct, destIdx);
        } else {
          w.senderType = 'msisdn';
          w.sender = this.renderPhone(this.accountNumber(acct, destIdx), renderDest);
        }
        return;
      case CH_WHATSAPP:
      case CH_VOICE:
        w.senderType = 'msisdn';
        w.sender = this.renderPhone(this.accountNumber(acct, destIdx), renderDest);
        return;
      default: // viber, rcs, push
        w.senderType = 'alphanumeric';
        w.sender = acct.senderId;
    }
  }

  private operatorRoute(d: Destination, serving: Operator, ch: number): string {
    const rng = this.rng;
    const r = rng.next();
    if (ch === CH_VOICE) return r < 0.35 ? pickStr(rng, VOICE_CARRIERS) : serving.providerId;
    if (r < 0.15) return pickStr(rng, AGGREGATORS[d.region]);
    if (r < 0.3 && d.operators.length > 1) {
      // destinations that have a routing-only provider (no own ranges) send part of the traffic there
      for (const o of d.operators) if (o.ranges.length === 0) return o.providerId;
    }
    return serving.providerId;
  }

  private fillPayload(ch: number, otp: boolean): void {
    const rng = this.rng;
    const w = this.draft;
    w.segments = 1;
    switch (ch) {
      case CH_SMS: {
        const ucs2 = rng.next() < 0.15;
        const len = Math.round(clamp(otp ? rng.lognormal(55, 0.3) : rng.lognormal(105, 0.6), 4, ucs2 ? 268 : 612));
        if (ucs2) {
          w.segments = len <= 70 ? 1 : Math.ceil(len / 67);
          w.size = len * 2;
        } else {
          w.segments = len <= 160 ? 1 : Math.ceil(len / 153);
          w.size = Math.ceil((len * 7) / 8);
        }
        return;
      }
      case CH_MMS:
        w.size = Math.round(clamp(rng.lognormal(80_000, 0.8), 1_000, 1_000_000));
        return;
      case CH_EMAIL:
        w.size = Math.round(clamp(rng.lognormal(38_000, 1.1), 600, 30_000_000));
        return;
      case CH_VOICE:
        w.size = 0;
        return;
      case CH_PUSH:
        w.size = Math.round(clamp(rng.lognormal(350, 0.6), 16, 4096));
        return;
      default: // whatsapp, viber, rcs: mostly text, some media
        w.size = rng.next() < 0.12 ? Math.round(clamp(rng.lognormal(120_000, 1.0), 2_000, 16_000_000)) : Math.round(clamp(rng.lognormal(160, 0.8), 1, 4096));
    }
  }

  private fillTimes(t: number, ch: number, mo: boolean): void {
    const rng = this.rng;
    const w = this.draft;
    w.t = t;
    if (ch === CH_VOICE) {
      w.submitted = t + Math.round(clamp(rng.lognormal(60, 0.8), 5, 3_000));
      if (w.status === ST_DELIVERED) {
        w.delivered = w.submitted + Math.round(clamp(rng.lognormal(LATENCY_MEDIAN[ch]!, LATENCY_SIGMA[ch]!), 800, 45_000));
        w.duration = Math.round(clamp(rng.lognormal(75_000, 1.0), 1_000, 7_200_000));
      } else {
        w.delivered = null;
        w.duration = 0;
      }
      return;
    }
    w.submitted = t + Math.round(mo ? clamp(rng.lognormal(1_500, 0.8), 50, 120_000) : clamp(rng.lognormal(35, 1.0), 1, 60_000));
    if (w.status !== ST_DELIVERED) {
      w.delivered = null;
      return;
    }
    let lat: number;
    if (mo) lat = clamp(rng.lognormal(150, 0.8), 5, 60_000);
    else if ((ch === CH_SMS || ch === CH_MMS) && rng.next() < 0.04)
      // handset was off — for up to 20 h: ingest refuses a delivered_at over a day (CDR_MAX_FUTURE_SKEW_MS) ahead of its
      // clock, and live traffic (`cdr start`, `cdr produce`) is sent at its event time, so a longer one went to the DLQ
      lat = clamp(rng.lognormal(900_000, 1.2), 60_000, 72_000_000);
    else lat = clamp(rng.lognormal(LATENCY_MEDIAN[ch]!, LATENCY_SIGMA[ch]!), 20, 3_600_000);
    w.delivered = w.submitted + Math.round(lat);
  }

  private fillPrice(destIdx: number, ch: number, mo: boolean, acct: Account): void {
    const rng = this.rng;
    const w = this.draft;
    if (w.status === ST_REJECTED || (ch === CH_VOICE && w.status !== ST_DELIVERED)) {
      w.price = 0;
      w.cost = 0;
      return;
    }
    let units: number;
    if (ch === CH_VOICE)
      units = Math.max(60, Math.ceil(w.duration! / 1000)) / 60; // 60/1 billing
    else units = w.segments;
    let price = this.unitPrice[destIdx * 8 + ch]! * units;
    let cost = this.unitCost[destIdx * 8 + ch]! * units;
    if (mo) {
      price *= 0.25;
      cost *= 0.08;
    }
    price = Math.round(price * acct.priceFactor);
    cost = Math.round(cost);
    if (rng.next() < 0.01)
      cost = Math.round(price * (1.05 + 0.3 * rng.next())); // negative-margin route
    else if (cost >= price) price = cost + Math.max(1, Math.ceil(cost * 0.02));
    w.price = price;
    w.cost = cost;
  }

  private fillPumping(t: number): void {
    const rng = this.rng;
    const w = this.draft;
    const acct = this.pumpAccount;
    const block = this.pumpBlocks[this.pumpBlockPicker.pickIndex(rng)]!;
    const d = DESTINATIONS[block.destIdx]!;
    block.counter += rng.next() < 0.85 ? 1 : 2 + Math.floor(rng.next() * 8);
    const num = this.blockNumber(block, block.counter);
    const op = d.operators[block.opIdx]!;

    w.account = acct;
    w.chIdx = CH_SMS;
    w.mo = false;
    w.dest = d;
    w.op = op;
    w.ported = false;
    w.senderType = d.alphanumericSenders ? 'alphanumeric' : 'shortcode';
    w.sender = d.alphanumericSenders ? acct.senderId : this.shortcode(acct, block.destIdx);
    w.recipient = this.renderPhone(num, block.destIdx);
    w.provider = rng.next() < 0.45 ? pickStr(rng, AGGREGATORS[d.region]) : op.providerId;
    w.status = this.pumpStatus.pick(rng);
    w.errFamily = CH_SMS;
    w.duration = null;
    w.currency = d.currency;
    w.segments = 1;
    w.size = Math.ceil((Math.round(clamp(rng.lognormal(52, 0.15), 30, 90)) * 7) / 8);
    this.fillTimes(t, CH_SMS, false);
    this.fillPrice(block.destIdx, CH_SMS, false, acct);
    w.ip = rng.next() < 0.8 ? this.attackerIps[Math.floor(rng.next() * this.attackerIps.length)]! : null;
  }

  private fillIrsf(t: number): void {
    const rng = this.rng;
    const w = this.draft;
    const acct = this.irsfAccount;
    const block = this.irsfBlocks[Math.floor(rng.next() * this.irsfBlocks.length)]!;
    const d = DESTINATIONS[block.destIdx]!;
    const num = this.blockNumber(block, Math.floor(rng.next() * 1000));

    w.account = acct;
    w.chIdx = CH_VOICE;
    w.mo = false;
    w.dest = d;
    w.op = d.operators[block.opIdx]!;
    w.ported = false;
    w.senderType = 'msisdn';
    w.sender = this.renderPhone(this.accountNumber(acct, acct.home), block.destIdx);
    w.recipient = this.renderPhone(num, block.destIdx);
    w.provider = rng.next() < 0.6 ? VOICE_CARRIERS[2]! : VOICE_CARRIERS[1]!;
    w.status = rng.next() < 0.85 ? ST_DELIVERED : ST_FAILED;
    w.errFamily = CH_VOICE;
    w.currency = d.currency;
    w.segments = 1;
    w.size = 0;
    w.t = t;
    w.submitted = t + Math.round(clamp(rng.lognormal(80, 0.6), 5, 3_000));
    if (w.status === ST_DELIVERED) {
      w.delivered = w.submitted + Math.round(clamp(rng.lognormal(4_000, 0.4), 800, 20_000));
      w.duration = Math.round(clamp(rng.lognormal(22 * 60_000, 0.6), 4 * 60_000, 3 * 3_600_000));
    } else {
      w.delivered = null;
      w.duration = 0;
    }
    this.fillPrice(block.destIdx, CH_VOICE, false, acct);
    w.ip = rng.next() < 0.2 ? this.attackerIps[Math.floor(rng.next() * this.attackerIps.length)]! : null;
  }

  /** One number of the scanned block: mostly the next one, sometimes a skip of one or two. */
  private fillRangeScan(t: number): void {
    const rng = this.rng;
    const w = this.draft;
    const acct = this.scanAccount;
    const block = this.scanBlock;
    const d = DESTINATIONS[block.destIdx]!;
    block.counter += rng.next() < 0.9 ? 1 : 2 + Math.floor(rng.next() * 2);
    const num = this.blockNumber(block, block.counter);
    const op = d.operators[block.opIdx]!;

    w.account = acct;
    w.chIdx = CH_SMS;
    w.mo = false;
    w.dest = d;
    w.op = op;
    w.ported = false;
    w.senderType = 'alphanumeric'; // the scan destination is chosen among alphanumeric-capable ones
    w.sender = acct.senderId;
    w.recipient = this.renderPhone(num, block.destIdx);
    w.provider = rng.next() < 0.3 ? pickStr(rng, AGGREGATORS[d.region]) : op.providerId;
    w.status = this.scanStatus.pick(rng);
    w.errFamily = ERR_SCAN;
    w.duration = null;
    w.currency = d.currency;
    w.segments = 1;
    w.size = Math.ceil((Math.round(clamp(rng.lognormal(40, 0.2), 20, 70)) * 7) / 8);
    this.fillTimes(t, CH_SMS, false);
    this.fillPrice(block.destIdx, CH_SMS, false, acct);
    w.ip = acct.ips[Math.floor(rng.next() * acct.ips.length)]!;
  }

  /** A campaign message: alphanumeric sender, a never-used number from any range of the country. */
  private fillCampaign(c: Campaign, t: number): void {
    const rng = this.rng;
    const w = this.draft;
    const acct = c.account;
    const d = DESTINATIONS[c.destIdx]!;
    const num = this.freshCampaignNumber(c);
    const op = d.operators[num.rangeOp]!;

    w.account = acct;
    w.chIdx = CH_SMS;
    w.mo = false;
    w.dest = d;
    w.op = op;
    w.ported = false;
    w.senderType = 'alphanumeric';
    w.sender = acct.senderId;
    w.recipient = this.renderPhone(num, c.destIdx);
    w.provider = this.operatorRoute(d, op, CH_SMS);
    w.status = this.campaignStatus.pick(rng);
    w.errFamily = CH_SMS;
    w.duration = null;
    w.currency = d.currency;
    this.fillPayload(CH_SMS, false);
    this.fillTimes(t, CH_SMS, false);
    this.fillPrice(c.destIdx, CH_SMS, false, acct);
    w.ip = acct.ips[Math.floor(rng.next() * acct.ips.length)]!;
  }

  private freshCampaignNumber(c: Campaign): PhoneNumber {
    const rng = this.rng;
    for (;;) {
      const { range, opIdx } = c.ranges[Math.floor(rng.next() * c.ranges.length)]!;
      let nsn = range.prefix;
      while (nsn.length < range.length) nsn += String(Math.floor(rng.next() * 10));
      if (!c.seen.has(nsn)) {
        c.seen.add(nsn);
        return new PhoneNumber(c.destIdx, DESTINATIONS[c.destIdx]!, range, opIdx, nsn);
      }
    }
  }

  /** Copy the draft into a fresh event (fixed key order → one hidden class). */
  private emit(): CdrEvent {
    const w = this.draft;
    const st = w.status;
    const op = w.op;
    return {
      cdr_id: this.nextId(),
      account_id: w.account.id,
      sender: w.sender,
      recipient: w.recipient,
      sender_type: w.senderType,
      event_time: w.t,
      submitted_at: w.submitted,
      delivered_at: w.delivered,
      channel: CHANNEL_LIST[w.chIdx]!,
      direction: w.mo ? 'mo' : 'mt',
      provider_id: w.provider,
      mcc: op === null ? null : op.mcc,
      mnc: op === null ? null : op.mnc,
      destination_country: w.dest === null ? null : w.dest.iso,
      ported: w.ported,
      status: STATUS_LIST[st]!,
      error_code: st === ST_DELIVERED || st === ST_PENDING ? null : this.errors[w.errFamily]![st]!.pick(this.rng),
      segments: w.segments,
      size_bytes: w.size,
      duration_ms: w.duration,
      price: w.price,
      cost: w.cost,
      currency: w.currency,
      client_ip: w.ip,
    };
  }

  /** UUID-v4-shaped id: first group is a keyed bijection of a counter (never repeats), rest random. */
  private nextId(): string {
    const rng = this.rng;
    const a = permute32(this.idCounter++, this.idKey);
    const b = rng.nextU32();
    const c = rng.nextU32();
    const d = rng.nextU32();
    return hex8(a) + '-' + hex4(b >>> 16) + '-4' + HEX1[(b >>> 8) & 15]! + HEX[b & 255]! + '-' + hex4(((c >>> 16) & 0x3fff) | 0x8000) + '-' + hex4(c) + hex8(d);
  }

  // ----------------------------------------------------------------------------------------
  // identifiers

  private renderPhone(num: PhoneNumber, destIdx: number): string {
    const r = this.rng.next();
    let f: number;
    if (r < 0.45) f = F_E164;
    else if (r < 0.55) f = F_INTL;
    else if (r < 0.6) f = F_INTL_ALT;
    else if (r < 0.72) f = F_IDD;
    else if (r < 0.85) f = F_BARE;
    else f = num.destIdx === destIdx ? F_NATIONAL : F_E164;
    return num.format(f);
  }

  private renderEmail(sub: Subscriber): string {
    const rng = this.rng;
    const r = rng.next();
    let v: number;
    if (sub.emailDomainAscii !== null) v = r < 0.4 ? 0 : r < 0.6 ? 1 : r < 0.65 ? 2 : 3;
    else v = r < 0.72 ? 0 : r < 0.94 ? 1 : 2;
    const e = sub.email(v);
    const ws = rng.next();
    if (ws < 0.95) return e;
    if (ws < 0.97) return ' ' + e + ' ';
    if (ws < 0.985) return e + '  ';
    return '\t' + e;
  }

  /** An end user of `destIdx` for a record at `t`; `ordinary` (not an attack's record): spaced by `subscriberGapMs`. */
  private pickSubscriber(destIdx: number, t: number, ordinary: boolean): Subscriber {
    if (this.options.freshSubscribers) return this.makeSubscriber(destIdx);
    const pool = this.pools[destIdx]!;
    let sub = this.zipfSubscriber(destIdx, pool);
    const gap = this.options.subscriberGapMs;
    if (!ordinary || gap === 0 || this.spread) return sub;
    // A busy one is drawn again: by popularity first, then evenly; when all draws are busy, a new user joins the pool.
    for (let tries = 0; sub.busyUntil > t; tries++) {
      if (tries === 8) {
        // Up to 5 times the pool it started with (found in review: unbounded, 50,000 records a second of event time
        // grew it by 740,000 users and 390 MiB); past that a busy user is taken, sooner than a new one.
        if (pool.length < 5 * this.poolZipfBase[destIdx]!) {
          sub = this.makeSubscriber(destIdx);
          pool.push(sub);
        }
        break;
      }
      sub = tries < 4 ? this.zipfSubscriber(destIdx, pool) : pool[Math.floor(this.rng.next() * pool.length)]!;
    }
    sub.busyUntil = t + gap;
    return sub;
  }

  private zipfSubscriber(destIdx: number, pool: readonly Subscriber[]): Subscriber {
    // zipf-like rank: continuous power-law inverse CDF with exponent ZIPF_S
    const k = Math.pow(this.rng.next() * this.poolZipfC[destIdx]! + 1, 1 / (1 - ZIPF_S)) - 1;
    const i = Math.floor(k);
    return pool[i >= pool.length ? pool.length - 1 : i]!;
  }

  private shortcode(acct: Account, destIdx: number): string {
    let s = acct.shortcodes[destIdx];
    if (s === undefined) {
      const len = DESTINATIONS[destIdx]!.shortcodeLength;
      let h = hash32(this.seedKey ^ Math.imul(acct.idx + 1, 0x9e3779b1) ^ Math.imul(destIdx + 1, 0x85ebca6b));
      s = String(1 + (h % 9));
      while (s.length < len) {
        h = hash32(h);
        s += String(h % 10);
      }
      acct.shortcodes[destIdx] = s;
    }
    return s;
  }

  private accountNumber(acct: Account, destIdx: number): PhoneNumber {
    let n = acct.numbers[destIdx];
    if (n === undefined) {
      n = this.randomNumber(destIdx, PhoneNumber);
      acct.numbers[destIdx] = n;
    }
    return n;
  }

  private randomNumber<T extends PhoneNumber>(
    destIdx: number,
    Ctor: new (destIdx: number, dest: Destination, range: NumberRange, rangeOp: number, nsn: string) => T,
    rng: Prng = this.rng,
  ): T {
    const d = DESTINATIONS[destIdx]!;
    let opIdx: number;
    do opIdx = Math.floor(rng.next() * d.operators.length);
    while (d.operators[opIdx]!.ranges.length === 0);
    const op = d.operators[opIdx]!;
    const range = op.ranges[Math.floor(rng.next() * op.ranges.length)]!;
    let nsn = range.prefix;
    while (nsn.length < range.length) nsn += String(Math.floor(rng.next() * 10));
    return new Ctor(destIdx, d, range, opIdx, nsn);
  }

  private makeSubscriber(destIdx: number): Subscriber {
    const rng = this.rng;
    const s = this.randomNumber(destIdx, Subscriber);
    s.servingOp = s.rangeOp;
    const d = s.dest;
    if (rng.next() < 0.05) {
      const others: number[] = [];
      d.operators.forEach((o, i) => {
        if (i !== s.rangeOp && o.ranges.length > 0) others.push(i);
      });
      if (others.length > 0) {
        s.servingOp = rng.pick(others);
        s.ported = true;
      }
    }
    // email identity
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    let local: string;
    if (rng.next() < 0.05) {
      local = rng.pick(UNICODE_LOCAL_PARTS) + (rng.next() < 0.5 ? '.' + last : '');
    } else {
      const r = rng.next();
      if (r < 0.4) local = `${first}.${last}`;
      else if (r < 0.55) local = first + last;
      else if (r < 0.65) local = `${first}_${last}`;
      else if (r < 0.8) local = `${first}.${last}${rng.int(1, 99)}`;
      else if (r < 0.9) local = first[0]! + last;
      else local = first + rng.int(1000, 9999);
    }
    s.emailLocal = local;
    if (rng.next() < 0.07) {
      const idn = rng.pick(IDN_EMAIL_DOMAINS);
      s.emailDomain = idn.unicode;
      s.emailDomainAscii = idn.ascii;
    } else {
      s.emailDomain = EMAIL_DOMAINS[Math.min(EMAIL_DOMAINS.length - 1, rng.zipf(EMAIL_DOMAINS.length, 1))]!;
    }
    return s;
  }

  private makeAccount(idx: number, nonRiskPicker: WeightedPicker<number>, share: number): Account {
    const rng = this.rng;
    const brandBase = BRANDS[idx % BRANDS.length]!;
    const brand = idx < BRANDS.length ? brandBase : (brandBase.slice(0, 9) + String(Math.floor(idx / BRANDS.length))).slice(0, 11);
    const domain = brand.toLowerCase() + '.example';
    const home = nonRiskPicker.pick(rng);
    const markets: (readonly [number, number])[] = [[home, 6]];
    const extra = rng.int(0, 4);
    for (let k = 0; k < extra; k++) markets.push([nonRiskPicker.pick(rng), 0.5 + rng.next() * 2.5]);
    const ips: string[] = [];
    const nIps = rng.int(1, 4);
    for (let k = 0; k < nIps; k++) ips.push(this.randomIp(rng.next() < 0.25));
    return {
      idx,
      id: `acct-${String(idx + 1).padStart(4, '0')}`,
      senderId: brand,
      emailSenders: [`noreply@${domain}`, `alerts@${domain}`, `news@mail.${domain}`],
      home,
      markets: new WeightedPicker(markets),
      currency: DESTINATIONS[home]!.currency,
      ips,
      apiShare: 0.2 + rng.next() * 0.6,
      otpHeavy: rng.next() < 0.35,
      priceFactor: 0.94 + rng.next() * 0.12,
      share,
      numbers: new Array<PhoneNumber | undefined>(DESTINATIONS.length),
      shortcodes: new Array<string | undefined>(DESTINATIONS.length),
    };
  }

  private randomIp(v6: boolean): string {
    const rng = this.rng;
    if (!v6) return rng.pick(IPV4_DOC_NETS) + String(rng.int(1, 254));
    const h = (): string => rng.int(0, 0xffff).toString(16);
    return `${IPV6_DOC_PREFIX}${h()}:${h()}::${h()}`;
  }

  /** A block of adjacent numbers: fixed head, the last `tailDigits` digits vary. */
  private makeBlock(destIdx: number, tailDigits: number, rng: Prng = this.rng): SequentialBlock {
    const base = this.randomNumber(destIdx, PhoneNumber, rng);
    return {
      destIdx,
      opIdx: base.rangeOp,
      range: base.range,
      head: base.nsn.slice(0, base.nsn.length - tailDigits),
      tailDigits,
      counter: Math.floor(rng.next() * Math.pow(10, tailDigits) * 0.5),
    };
  }

  private blockNumber(b: SequentialBlock, n: number): PhoneNumber {
    const mod = Math.pow(10, b.tailDigits);
    const tail = String(((n % mod) + mod) % mod).padStart(b.tailDigits, '0');
    return new PhoneNumber(b.destIdx, DESTINATIONS[b.destIdx]!, b.range, b.opIdx, b.head + tail);
  }

  private makePatterns(scenario: ScenarioName, velocityOnset: number): Pattern[] {
    const mk = (kind: PatternKind, first: number, meanGap: number, meanBurst: number, intensity: number, burstGapMs: number): Pattern => ({
      kind,
      meanGap,
      meanBurst,
      intensity,
      burstGapMs,
      active: false,
      countdown: Math.max(1, Math.round(first)),
      burstClock: 0,
      episode: 0,
      plan: null,
      quota: Infinity,
      burstEnd: 0,
      nextStart: 0,
    });
    const planned = (kind: PatternKind, plan: BurstPlan, intensity = 0): Pattern => ({
      ...mk(kind, 1, 0, 0, intensity, 0),
      plan,
      nextStart: plan.phaseMs, // the first burst is on time, later ones jitter
    });
    const vel = this.velocitySpikeShare;
    switch (scenario) {
      case 'sms_pumping':
        return [mk('sms_pumping', 200, 400, 300, 0.7, 250)];
      case 'irsf':
        return [mk('irsf', 200, 350, 250, 0.7, 3_000)];
      case 'velocity':
        return [mk('velocity', velocityOnset, 1_000, 4_000, vel, 200)];
      case 'mixed':
        return [
          mk('sms_pumping', 1_500, 6_000, 200, 0.6, 250),
          mk('irsf', 2_500, 6_000, 150, 0.5, 3_000),
          mk('velocity', velocityOnset, 8_000, 1_000, vel, 200),
        ];
      case 'range_scan':
        // 250–450 numbers in 2–5 minutes, a burst every ~20 minutes, the first after 5 s
        return [planned('range_scan', { ...SCAN_BURST, periodMs: 20 * MINUTE_MS, phaseMs: 5_000, jitterMs: 5 * MINUTE_MS })];
      case 'account_anomaly':
        // 10 minutes of ordinary history first, then a burst every ~45 minutes
        return [
          planned('account_anomaly', {
            ...ANOMALY_BURST,
            durationMs: [4 * MINUTE_MS, 10 * MINUTE_MS],
            periodMs: 45 * MINUTE_MS,
            phaseMs: 10 * MINUTE_MS,
            jitterMs: 10 * MINUTE_MS,
          }),
        ];
      case 'fraud_mix': {
        // one 8-minute slot per pattern in a 40-minute cycle; bursts (≤ 6 min, ≤ 2 min late) stay
        // inside their slot, so two attacks overlap only when a burst overruns (very low rates)
        const slot = 8 * MINUTE_MS;
        const cycle = { periodMs: 5 * slot, jitterMs: 2 * MINUTE_MS };
        return [
          planned('sms_pumping', { events: [300, 600], durationMs: [2 * MINUTE_MS, 5 * MINUTE_MS], factor: null, ...cycle, phaseMs: MINUTE_MS }),
          planned('range_scan', { ...SCAN_BURST, ...cycle, phaseMs: MINUTE_MS + slot }),
          planned('irsf', { events: [80, 200], durationMs: [3 * MINUTE_MS, 6 * MINUTE_MS], factor: null, ...cycle, phaseMs: MINUTE_MS + 2 * slot }),
          planned('account_anomaly', { ...ANOMALY_BURST, ...cycle, phaseMs: MINUTE_MS + 3 * slot }),
          planned('velocity', { events: null, durationMs: [MINUTE_MS, 3 * MINUTE_MS], factor: null, ...cycle, phaseMs: MINUTE_MS + 4 * slot }, vel),
        ];
      }
      default:
        return [];
    }
  }

  /**
   * Destinations the anomaly account never uses: not among its markets, outside its home region
   * when possible, never IRSF-prone (so the anomaly is not confused with IRSF or pumping).
   */
  private pickAnomalyDests(acct: Account, rng: Prng): number[] {
    const markets = new Set(acct.markets.values);
    const region = DESTINATIONS[acct.home]!.region;
    const usable = DESTINATIONS.map((_, i) => i).filter((i) => !markets.has(i) && !DESTINATIONS[i]!.irsfRisk);
    const far = usable.filter((i) => DESTINATIONS[i]!.region !== region);
    return rng.shuffle(far.length >= 3 ? far : usable).slice(0, 3);
  }

  private makeCampaign(c: Readonly<CampaignOptions>, actors: ReadonlySet<Account>): Campaign {
    const iso = (c.country ?? 'MY').toUpperCase();
    const destIdx = DESTINATIONS.findIndex((d) => d.iso === iso);
    const d = DESTINATIONS[destIdx];
    if (d === undefined) throw new RangeError(`campaign.country ${iso} is not a generator destination`);
    if (!d.alphanumericSenders) throw new RangeError(`campaign.country ${iso} does not accept alphanumeric senders`);
    const ranges: { range: NumberRange; opIdx: number }[] = [];
    let capacity = 0;
    d.operators.forEach((op, opIdx) => {
      for (const range of op.ranges) {
        ranges.push({ range, opIdx });
        capacity += Math.pow(10, range.length - range.prefix.length);
      }
    });
    // rejection sampling of fresh numbers stays fast while the campaign uses a small part of the plan
    if (c.count > capacity / 10) throw new RangeError(`campaign.count ${c.count} is too large for ${iso} (at most ${Math.floor(capacity / 10)})`);
    // a legitimate sender of that country: one with it as home market, else one that serves it, else the largest
    const ordinary = [...this.accounts].filter((a) => !actors.has(a)).sort((a, b) => b.share - a.share || a.idx - b.idx);
    const account =
      ordinary.find((a) => a.home === destIdx) ??
      ordinary.find((a) => a.markets.values.includes(destIdx)) ??
      ordinary[0] ??
      [...this.accounts].sort((a, b) => b.share - a.share || a.idx - b.idx)[0]!;
    const camp: Campaign = {
      rng: new Prng(hash32(this.seedKey ^ 0x0ca4a167)),
      account,
      destIdx,
      ranges,
      at: c.at,
      durationMs: c.durationMs,
      seen: new Set(),
      left: c.count,
      pos: 0,
      nextAt: 0,
      idCounter: 0x8000_0000,
    };
    this.scheduleCampaign(camp);
    return camp;
  }

  /** Next of `left` sorted uniform times on the window (order statistics, no table needed). */
  private scheduleCampaign(c: Campaign): void {
    if (c.left <= 0) return;
    c.pos += (1 - c.pos) * (1 - Math.pow(c.rng.next(), 1 / c.left));
    c.nextAt = Math.min(Math.floor(c.at + c.pos * c.durationMs), Math.ceil(c.at + c.durationMs) - 1);
  }
}

function pickStr(rng: Prng, items: readonly string[]): string {
  return items[Math.floor(rng.next() * items.length)]!;
}
