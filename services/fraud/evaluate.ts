import { createHmac, randomBytes } from 'node:crypto';
import {
  FraudDetector,
  IdentifierNormaliser,
  recipientTypeOf,
  RULE_NAMES,
  type Alert,
  type FraudConfig,
  type FraudEvent,
  type RuleName,
} from '../core/index.ts';
import { TrafficGenerator, type CampaignOptions, type ScenarioName } from '../generator/index.ts';

/**
 * `cdr fraud evaluate`: replays a labelled synthetic run through the fraud rules and measures them. The run is the
 * generator's `fraud_mix` (normal traffic with a diurnal shape, five attack patterns bursting in turn) plus a
 * legitimate marketing campaign; every event is pseudonymised as ingest would (normalised, ranged, tokenised under a
 * throw-away key) and fed to the detector in order.
 *
 * An attack episode is the labelled events of one burst of one pattern. An alert of rule R is a true positive when
 * its activity [started_at, ended_at] overlaps an episode of the scenario of the same name (within `slack_ms`) and
 * names that episode's account; precision = true-positive alerts / alerts of R; recall = episodes with at least one
 * matching alert / episodes; time to detect = the matching alert's detection time − the episode's first event.
 */
export interface EvaluateOptions {
  readonly seed: number;
  readonly events: number;
  readonly ratePerSecond: number;
  readonly scenario: ScenarioName;
  readonly campaign?: CampaignOptions | undefined;
  readonly diurnal: boolean;
  readonly startTime: number;
  readonly rules: FraudConfig;
  readonly slackMs?: number;
  /** Event time before which nothing is scored: the rules' warm-up (baselines, usual destinations). Default 2 hours in. */
  readonly warmupMs?: number;
  /** The generator's `subscriberGapMs` (default 0: off, the traffic the documented results were measured on). */
  readonly subscriberGapMs?: number;
}

export interface RuleEvaluation {
  readonly rule: RuleName;
  readonly episodes: number;
  readonly detected: number;
  readonly alerts: number;
  readonly true_positives: number;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly time_to_detect_s: { readonly median: number | null; readonly max: number | null };
  /** Alerts that matched no episode of their scenario: what they overlapped instead (another scenario, or nothing). */
  readonly false_positives: readonly { readonly key: string; readonly started_at: string; readonly overlaps: string; readonly evidence: string }[];
}

export interface Evaluation {
  readonly seed: number;
  readonly events: number;
  readonly event_time_span_s: number;
  readonly attack_events: number;
  readonly campaign_events: number;
  readonly rules: readonly RuleEvaluation[];
  /** Alerts raised during the campaign window against the campaign's account (must be none). */
  readonly alerts_on_campaign: number;
  readonly detector_us_per_event: number;
  readonly warmup_s: number;
}

interface Episode {
  start: number;
  end: number;
  accounts: Set<string>;
}

export function evaluate(o: EvaluateOptions): Evaluation {
  const gen = new TrafficGenerator({
    seed: o.seed,
    scenario: o.scenario,
    startTime: o.startTime,
    ratePerSecond: o.ratePerSecond,
    diurnal: o.diurnal,
    ...(o.campaign ? { campaign: o.campaign } : {}),
    ...(o.subscriberGapMs ? { subscriberGapMs: o.subscriberGapMs } : {}),
  });
  const key = randomBytes(32);
  const normaliser = new IdentifierNormaliser(500_000);
  const tokens = new Map<string, string>();
  const detector = new FraudDetector(o.rules);
  const episodes = new Map<string, Episode>();
  const alerts = new Map<string, Alert>();
  let attackEvents = 0;
  let campaignEvents = 0;
  let campaignAccount = '';
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let detectorNs = 0n;
  for (let i = 0; i < o.events; i++) {
    const g = gen.nextLabeled();
    if (g.kind === 'duplicate') continue;
    const e = g.event;
    first = Math.min(first, e.event_time);
    last = Math.max(last, e.event_time);
    if (g.attack) {
      attackEvents++;
      const k = `${g.attack.scenario}#${g.attack.episode}`;
      const ep = episodes.get(k) ?? { start: e.event_time, end: e.event_time, accounts: new Set<string>() };
      ep.start = Math.min(ep.start, e.event_time);
      ep.end = Math.max(ep.end, e.event_time);
      ep.accounts.add(e.account_id);
      episodes.set(k, ep);
    }
    if (g.campaign) {
      campaignEvents++;
      campaignAccount = e.account_id;
    }
    const country = e.destination_country ? e.destination_country.toUpperCase() : null;
    const tokenOf = (value: string, type: string): string => {
      let token = tokens.get(`${type}\u0000${value}`);
      if (!token) {
        token = createHmac('sha256', key).update(`${type}\u0000${value}`).digest('hex').slice(0, 32);
        if (tokens.size > 2_000_000) tokens.clear();
        tokens.set(`${type}\u0000${value}`, token);
      }
      return token;
    };
    const id = normaliser.normalise(e.recipient, recipientTypeOf(e.channel, e.recipient, e.direction, country), country);
    const token = tokenOf(id.value, id.type);
    const sender = normaliser.normalise(e.sender, e.sender_type, country);
    const fe: FraudEvent = {
      cdr_id: e.cdr_id,
      account_id: e.account_id,
      event_time: e.event_time,
      channel: e.channel,
      direction: e.direction,
      status: e.status,
      destination_country: country ?? '',
      mcc: e.mcc ?? '',
      mnc: e.mnc ?? '',
      recipient_range: id.range ?? '',
      recipient_number_type: id.numberType ?? '',
      recipient_type: id.type,
      recipient_token: token,
      sender_token: tokenOf(sender.value, sender.type),
      sender_type: e.sender_type,
      duration_ms: e.duration_ms ?? 0,
    };
    const t0 = process.hrtime.bigint();
    for (const c of detector.observe(fe)) alerts.set(c.alert.alert_id, c.alert);
    detectorNs += process.hrtime.bigint() - t0;
  }
  for (const c of detector.closeUpTo(last + 3_600_000)) alerts.set(c.alert.alert_id, c.alert);

  const slack = o.slackMs ?? 60_000;
  const scoreFrom = first + (o.warmupMs ?? 2 * 3_600_000);
  for (const [k, ep] of episodes) if (ep.start < scoreFrom) episodes.delete(k);
  const all = [...alerts.values()].filter((a) => a.detected_at >= scoreFrom);
  const rules: RuleEvaluation[] = RULE_NAMES.map((rule) => {
    const scenario = rule;
    const eps = [...episodes.entries()].filter(([k]) => k.startsWith(`${scenario}#`)).map(([, v]) => v);
    const mine = all.filter((a) => a.rule === rule);
    const matches = (a: Alert, ep: Episode): boolean => a.started_at <= ep.end + slack && a.ended_at >= ep.start - slack && ep.accounts.has(a.key.account_id);
    const tp = mine.filter((a) => eps.some((ep) => matches(a, ep))).length;
    const delays: number[] = [];
    let detected = 0;
    for (const ep of eps) {
      const hits = mine.filter((a) => matches(a, ep));
      if (hits.length === 0) continue;
      detected++;
      delays.push(Math.max(0, Math.min(...hits.map((a) => a.detected_at)) - ep.start) / 1000);
    }
    delays.sort((a, b) => a - b);
    const fps = mine
      .filter((a) => !eps.some((ep) => matches(a, ep)))
      .map((a) => {
        const other = [...episodes.entries()].find(
          ([, ep]) => a.started_at <= ep.end + slack && a.ended_at >= ep.start - slack && ep.accounts.has(a.key.account_id),
        );
        return {
          key: JSON.stringify(a.key),
          started_at: new Date(a.started_at).toISOString(),
          overlaps: other ? other[0] : a.key.account_id === campaignAccount ? 'campaign' : 'normal traffic',
          evidence: JSON.stringify(a.evidence),
        };
      });
    return {
      false_positives: fps,
      rule,
      episodes: eps.length,
      detected,
      alerts: mine.length,
      true_positives: tp,
      precision: mine.length > 0 ? tp / mine.length : null,
      recall: eps.length > 0 ? detected / eps.length : null,
      time_to_detect_s: {
        // An even count's median is the mean of its two middle values (found from outside: two episodes gave the max).
        median: delays.length > 0 ? medianOf(delays) : null,
        max: delays.length > 0 ? delays[delays.length - 1]! : null,
      },
    };
  });
  const campaignWindow = o.campaign ? { from: o.campaign.at, to: o.campaign.at + o.campaign.durationMs } : undefined;
  const onCampaign = campaignWindow
    ? all.filter((a) => a.key.account_id === campaignAccount && a.started_at <= campaignWindow.to + slack && a.ended_at >= campaignWindow.from - slack).length
    : 0;
  return {
    seed: o.seed,
    events: o.events,
    event_time_span_s: Math.round((last - first) / 1000),
    attack_events: attackEvents,
    campaign_events: campaignEvents,
    rules,
    alerts_on_campaign: onCampaign,
    warmup_s: Math.round((o.warmupMs ?? 2 * 3_600_000) / 1000),
    detector_us_per_event: Math.round((Number(detectorNs) / 1000 / o.events) * 100) / 100,
  };
}

export function evaluationTable(ev: Evaluation): string {
  const f = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
  const lines = [
    '| rule | episodes | detected | alerts | true positives | precision | recall | time to detect (median / max, s of event time) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...ev.rules.map(
      (r) =>
        `| ${r.rule} | ${r.episodes} | ${r.detected} | ${r.alerts} | ${r.true_positives} | ${f(r.precision)} | ${f(r.recall)} | ${r.time_to_detect_s.median ?? '—'} / ${r.time_to_detect_s.max ?? '—'} |`,
    ),
  ];
  return `${lines.join('\n')}\n\n${ev.events} events over ${(ev.event_time_span_s / 3600).toFixed(1)} h of event time (seed ${ev.seed}; the first ${(ev.warmup_s / 3600).toFixed(1)} h are the rules' warm-up and not scored), ${ev.attack_events} attack events, ${ev.campaign_events} campaign events; alerts on the campaign: ${ev.alerts_on_campaign}; detector ${ev.detector_us_per_event} µs per event\n`;
}

/** The median of sorted values: the middle one, or the mean of the two middle ones (to the millisecond, as the delays). */
export function medianOf(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round(((sorted[mid - 1]! + sorted[mid]!) / 2) * 1000) / 1000;
}
