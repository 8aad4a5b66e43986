import type { PlanBook, RateLine, TariffPlan } from './tariffPlan.ts';

/**
 * Rating: one pseudonymised record → a customer price and a provider cost in integer micro-units of one currency,
 * or an explicit `unrated` with the reason. Nothing is ever priced at zero because no rule matched.
 *
 * Which plan: the one active at the record's event time that names its account; otherwise the one for "*".
 * (Plan files are refused when two could apply, so there is never a choice.) Which rate line within it: the most
 * specific line that matches channel, destination country, number type, provider and the recipient's number
 * range — the longest matching prefix first, then a named provider, number type, country, channel.
 *
 * Units: voice is billed by time (`first_increment_s`/`increment_s`, e.g. 60/60 or 1/1, price per minute, rounded
 * half up to the micro-unit, with a minimum charge for a connected call); every other channel by segment (a
 * record with 0 segments counts 1).
 */
export interface RatingInput {
  readonly account_id: string;
  readonly event_time: number;
  readonly channel: string;
  readonly destination_country: string;
  readonly recipient_range: string;
  readonly recipient_number_type: string;
  readonly provider_id: string;
  readonly segments: number;
  readonly duration_ms: number;
  readonly price: number;
  readonly cost: number;
  readonly currency: string;
}

export type Rating =
  | {
      readonly rated: true;
      readonly currency: string;
      readonly amountMicros: number;
      readonly costMicros: number;
      readonly billableSeconds: number;
      readonly planId: string;
      readonly planVersion: number;
      /** `event` when the event's own price was used, else the rate line's file line. */
      readonly basis: string;
    }
  | {
      readonly rated: false;
      /** `amount_out_of_range`: the price or cost of this one record would be beyond 2^53 − 1 micro-units (never rounded). */
      readonly reason: 'no_plan' | 'no_rate' | 'no_event_price' | 'amount_out_of_range';
      readonly planId: string;
      readonly planVersion: number;
    };

export function planFor(book: PlanBook, account: string, at: number): TariffPlan | undefined {
  let wildcard: TariffPlan | undefined;
  for (const p of book.plans) {
    if (at < p.activeFrom || at >= p.activeTo) continue;
    if (p.accounts.includes(account)) return p;
    if (p.accounts.includes('*')) wildcard = p;
  }
  return wildcard;
}

function specificity(r: RateLine): number {
  return r.prefix.length * 10_000 + (r.provider ? 1000 : 0) + (r.numberType ? 100 : 0) + (r.country !== '*' ? 10 : 0) + (r.channel !== '*' ? 1 : 0);
}

export function rateLineFor(plan: TariffPlan, r: RatingInput): RateLine | undefined {
  let best: RateLine | undefined;
  let bestScore = -1;
  for (const line of plan.rates) {
    if (line.channel !== '*' && line.channel !== r.channel) continue;
    if (line.country !== '*' && line.country !== r.destination_country) continue;
    if (line.provider && line.provider !== r.provider_id) continue;
    if (line.numberType && line.numberType !== r.recipient_number_type) continue;
    if (line.prefix && !r.recipient_range.startsWith(line.prefix)) continue;
    const score = specificity(line);
    if (score > bestScore) {
      best = line;
      bestScore = score;
    }
  }
  return best;
}

/** Billable seconds of a voice call under first/next increments: 0 for an unconnected call. */
export function billableSeconds(durationMs: number, firstIncrementS: number, incrementS: number): number {
  if (durationMs <= 0) return 0;
  const seconds = Math.ceil(durationMs / 1000);
  if (seconds <= firstIncrementS) return firstIncrementS;
  return firstIncrementS + Math.ceil((seconds - firstIncrementS) / incrementS) * incrementS;
}

/** micro-units per minute × seconds, rounded half up, in integers. */
function perMinute(microsPerMinute: number, seconds: number): number {
  const product = microsPerMinute * seconds + 30;
  // Past 2^53 the product is already rounded, and so would be the result (found in review: off by one micro-unit):
  // NaN makes `rate` refuse the record as amount_out_of_range.
  return Number.isSafeInteger(product) ? Math.floor(product / 60) : Number.NaN;
}

export function rate(book: PlanBook, r: RatingInput): Rating {
  const rating = rateOnce(book, r);
  // A plan's price (≤ 10^12) times 100,000 segments or a week of minutes can pass 2^53: refused, not rounded.
  if (rating.rated && !(Number.isSafeInteger(rating.amountMicros) && Number.isSafeInteger(rating.costMicros)))
    return { rated: false, reason: 'amount_out_of_range', planId: rating.planId, planVersion: rating.planVersion };
  return rating;
}

function rateOnce(book: PlanBook, r: RatingInput): Rating {
  const plan = planFor(book, r.account_id, r.event_time);
  if (!plan) return { rated: false, reason: 'no_plan', planId: '', planVersion: 0 };
  if (plan.trustEventPrice && r.currency !== '') {
    const seconds = r.channel === 'voice' ? Math.ceil(Math.max(0, r.duration_ms) / 1000) : 0;
    return {
      rated: true,
      currency: r.currency,
      amountMicros: r.price,
      costMicros: r.cost,
      billableSeconds: seconds,
      planId: plan.id,
      planVersion: plan.version,
      basis: 'event',
    };
  }
  const line = rateLineFor(plan, r);
  if (!line) return { rated: false, reason: plan.rates.length === 0 ? 'no_event_price' : 'no_rate', planId: plan.id, planVersion: plan.version };
  if (r.channel === 'voice') {
    const seconds = billableSeconds(r.duration_ms, line.firstIncrementS, line.incrementS);
    const connected = seconds > 0;
    return {
      rated: true,
      currency: plan.currency,
      amountMicros: connected ? Math.max(line.minimumMicros, perMinute(line.price, seconds)) : 0,
      costMicros: connected ? perMinute(line.cost, seconds) : 0,
      billableSeconds: seconds,
      planId: plan.id,
      planVersion: plan.version,
      basis: `line ${line.line}`,
    };
  }
  const units = Math.max(1, r.segments);
  return {
    rated: true,
    currency: plan.currency,
    amountMicros: Math.max(line.minimumMicros, units * line.price),
    costMicros: units * line.cost,
    billableSeconds: 0,
    planId: plan.id,
    planVersion: plan.version,
    basis: `line ${line.line}`,
  };
}
