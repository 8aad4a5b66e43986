/**
 * Seeded, pure synthetic CDR traffic generator (no Kafka, no I/O).
 *
 * Same options (seed included) → the identical event sequence, on every machine. Events are
 * valid against `schemas/cdr-event-v1.avsc` and look like a routing layer's output: skewed
 * account activity, a zipf-skewed pool of end users whose identifiers are written in many
 * formats (E.164, spaced/dashed international, `00` IDD, bare country-code digits, national),
 * per-channel status/error/size/latency models, catalog prices, client IPs, ported numbers, and
 * optional fraud patterns (SMS pumping, IRSF, velocity spikes) mixed into normal traffic.
 *
 * Time: in rate mode (default) event_time starts at `startTime` and advances with Poisson
 * arrivals at `ratePerSecond` (monotone non-decreasing). With `timeSpreadMs`, normal events are
 * spread uniformly over [startTime - timeSpreadMs, startTime] and fraud bursts are clustered in
 * short windows inside that range.
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

export type ScenarioName = 'normal' | 'sms_pumping' | 'irsf' | 'velocity' | 'mixed';
export const SCENARIOS: readonly ScenarioName[] = ['normal', 'sms_pumping', 'irsf', 'velocity', 'mixed'];

export interface GeneratorOptions {
  seed: number;
  scenario: ScenarioName;
  /** Epoch ms UTC. Rate mode: time of the first event. Spread mode: end of the spread window. */
  startTime: number;
  /** Events per second of simulated time in rate mode (Poisson arrivals). Default 1000. */
  ratePerSecond?: number;
  /** Number of customer accounts (`acct-0001`…). Default 50. */
  accounts?: number;
  /** Size of the end-user pool. Default 20000. */
  subscribers?: number;
  /** If set (> 0), spread event_time uniformly over [startTime - timeSpreadMs, startTime]. */
  timeSpreadMs?: number;
  /**
   * Probability that `next()` re-emits a recent event unchanged (same cdr_id, same times), as a
   * routing layer retry would. Default 0, so cdr_ids are unique by default. Duplicates keep the
   * original event_time, so they break event_time monotonicity in rate mode.
   */
  duplicateRate?: number;
  /** Velocity scenario: number of events before the first spike. Default 1000. */
  velocityOnset?: number;
}

export interface GeneratedCdr {
  event: CdrEvent;
  kind: 'normal' | 'duplicate' | 'fraud';
}

/** Ground truth about the fraud actors of a generator instance (for tests and detector evaluation). */
export interface FraudActors {
  smsPumping: { accountId: string; senderId: string; countries: readonly string[] };
  irsf: { accountId: string; countries: readonly string[] };
  velocity: { accountId: string; senderId: string; baselineShare: number; spikeShare: number; factor: number };
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

type PatternKind = 'sms_pumping' | 'irsf' | 'velocity';

interface Pattern {
  kind: PatternKind;
  meanGap: number;
  meanBurst: number;
  intensity: number;
  /** Mean ms between pattern events inside a burst (spread mode only). */
  burstGapMs: number;
  active: boolean;
  countdown: number;
  burstClock: number;
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
  readonly options: Readonly<Required<Omit<GeneratorOptions, 'timeSpreadMs'>> & { timeSpreadMs: number }>;
  private readonly rng: Prng;
  private readonly spread: boolean;
  private readonly meanGapMs: number;
  private clock: number;
  private idCounter = 0;
  private readonly idKey: number;
  private readonly seedKey: number;

  private readonly destPicker: WeightedPicker<number>;
  private readonly pools: Subscriber[][];
  private readonly poolZipfC: Float64Array;
  private readonly accounts: Account[];
  private readonly accountPicker: WeightedPicker<number>;
  private readonly channelPicker: WeightedPicker<number>;
  private readonly mtStatus: WeightedPicker<number>[];
  private readonly moStatus: WeightedPicker<number>;
  private readonly pumpStatus: WeightedPicker<number>;
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

  private readonly draft: Draft;
  private lastKind: GeneratedCdr['kind'] = 'normal';
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
      timeSpreadMs: opts.timeSpreadMs ?? 0,
      duplicateRate: opts.duplicateRate ?? 0,
      velocityOnset: opts.velocityOnset ?? 1000,
    };
    if (!SCENARIOS.includes(o.scenario)) throw new RangeError(`unknown scenario ${String(o.scenario)}`);
    if (!Number.isFinite(o.startTime)) throw new RangeError('startTime must be epoch milliseconds');
    if (!(o.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be > 0');
    if (!(Number.isInteger(o.accounts) && o.accounts >= 1)) throw new RangeError('accounts must be an integer ≥ 1');
    if (!(Number.isInteger(o.subscribers) && o.subscribers >= 1)) throw new RangeError('subscribers must be an integer ≥ 1');
    if (!(o.timeSpreadMs >= 0)) throw new RangeError('timeSpreadMs must be ≥ 0');
    if (!(o.duplicateRate >= 0 && o.duplicateRate < 1)) throw new RangeError('duplicateRate must be in [0, 1)');
    this.options = o;

    const rng = (this.rng = new Prng(o.seed));
    this.spread = o.timeSpreadMs > 0;
    this.meanGapMs = 1000 / o.ratePerSecond;
    this.clock = o.startTime;
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
    this.errors = CHANNEL_LIST.map((ch) => {
      const fam = ERROR_CODES[ch];
      const none = new WeightedPicker<string | null>([[null, 1]]);
      // index by status code: delivered / pending have no error code
      return [none, new WeightedPicker(fam.failed), new WeightedPicker(fam.rejected), new WeightedPicker(fam.expired), none];
    });
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

    this.patterns = this.makePatterns(o.scenario, o.velocityOnset);

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
    };
  }

  /** Account ids, in index order. */
  get accountIds(): string[] {
    return this.accounts.map((a) => a.id);
  }

  /** Next event. */
  next(): CdrEvent {
    return this.generate();
  }

  /** Next event with its ground-truth label. */
  nextLabeled(): GeneratedCdr {
    const event = this.generate();
    return { event, kind: this.lastKind };
  }

  /** The next `n` events. */
  take(n: number): CdrEvent[] {
    const out = new Array<CdrEvent>(n);
    for (let i = 0; i < n; i++) out[i] = this.generate();
    return out;
  }

  *[Symbol.iterator](): Iterator<CdrEvent> {
    for (;;) yield this.generate();
  }

  // ----------------------------------------------------------------------------------------
  // generation

  private generate(): CdrEvent {
    const rng = this.rng;
    if (this.options.duplicateRate > 0 && this.ring.length > 0 && rng.next() < this.options.duplicateRate) {
      const orig = this.ring[Math.floor(rng.next() * this.ring.length)]!;
      this.lastKind = 'duplicate';
      return { ...orig };
    }

    let fraud: Pattern | null = null;
    const patterns = this.patterns;
    for (let i = 0; i < patterns.length; i++) {
      const p = patterns[i]!;
      if (!p.active) {
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
      const acct = this.accounts[this.accountPicker.pickIndex(rng)]!;
      this.fillNormal(acct, -1, t);
      ev = this.emit();
      this.lastKind = 'normal';
    } else {
      const t = this.spread ? this.burstTime(fraud) : this.normalTime();
      if (fraud.kind === 'sms_pumping') this.fillPumping(t);
      else if (fraud.kind === 'irsf') this.fillIrsf(t);
      else this.fillNormal(this.velocityAccount, rng.next() < 0.85 ? CH_SMS : -1, t);
      ev = this.emit();
      this.lastKind = 'fraud';
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
    if (this.spread) {
      return this.options.startTime - Math.floor(this.rng.next() * (this.options.timeSpreadMs + 1));
    }
    this.clock += this.rng.exponential(this.meanGapMs);
    return Math.floor(this.clock);
  }

  private burstTime(p: Pattern): number {
    p.burstClock += this.rng.exponential(p.burstGapMs);
    const t = Math.floor(p.burstClock);
    return t > this.options.startTime ? this.options.startTime : t;
  }

  private startBurst(p: Pattern): void {
    const rng = this.rng;
    p.active = true;
    p.countdown = Math.max(20, Math.round(rng.exponential(p.meanBurst)));
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

  /** Normal traffic of `acct` (channel forced when chIdxForced ≥ 0). */
  private fillNormal(acct: Account, chIdxForced: number, t: number): void {
    const rng = this.rng;
    const w = this.draft;
    const ch = chIdxForced >= 0 ? chIdxForced : this.channelPicker.pick(rng);
    const mo = MO_PROB[ch]! > 0 && rng.next() < MO_PROB[ch]!;
    const destIdx = rng.next() < 0.03 ? this.destPicker.pick(rng) : acct.markets.pick(rng);
    const d = DESTINATIONS[destIdx]!;
    const sub = this.pickSubscriber(destIdx);

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
      const unresolved = !mo && rng.next() < 0.005;
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
      lat = clamp(rng.lognormal(900_000, 1.2), 60_000, 259_200_000); // handset was off
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

  private pickSubscriber(destIdx: number): Subscriber {
    const pool = this.pools[destIdx]!;
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
  ): T {
    const rng = this.rng;
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
  private makeBlock(destIdx: number, tailDigits: number): SequentialBlock {
    const rng = this.rng;
    const base = this.randomNumber(destIdx, PhoneNumber);
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
      default:
        return [];
    }
  }
}

function pickStr(rng: Prng, items: readonly string[]): string {
  return items[Math.floor(rng.next() * items.length)]!;
}
