import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import avro from 'avsc';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';

import type { CdrEvent } from '../../../services/core/cdr/cdrEvent.ts';
import { ATTACK_SCENARIOS, DESTINATION_BY_ISO, TrafficGenerator, scenarioOf } from '../../../services/generator/index.ts';
import type { AttackScenario, CampaignOptions, GeneratedCdr, GeneratorOptions, ScenarioName } from '../../../services/generator/index.ts';

const START = Date.UTC(2025, 5, 1, 12, 0, 0);
const MIN = 60_000;
const cdrType = avro.Type.forSchema(JSON.parse(readFileSync(new URL('../../../schemas/cdr-event-v1.avsc', import.meta.url), 'utf8')) as avro.Schema);

function run(scenario: ScenarioName, n: number, extra: Partial<GeneratorOptions> = {}, seed = 7): { g: TrafficGenerator; out: GeneratedCdr[] } {
  const g = new TrafficGenerator({ seed, scenario, startTime: START, ...extra });
  const out: GeneratedCdr[] = [];
  for (let i = 0; i < n; i++) out.push(g.nextLabeled());
  return { g, out };
}

/** Fraud events grouped by `scenario#episode`, in stream order. */
function episodes(out: readonly GeneratedCdr[]): Map<string, CdrEvent[]> {
  const m = new Map<string, CdrEvent[]>();
  for (const x of out) {
    if (x.attack === undefined) continue;
    const k = `${x.attack.scenario}#${x.attack.episode}`;
    let list = m.get(k);
    if (list === undefined) m.set(k, (list = []));
    list.push(x.event);
  }
  return m;
}

function span(events: readonly CdrEvent[]): [number, number] {
  return [events[0]!.event_time, events[events.length - 1]!.event_time];
}

/** What a normaliser would do: `+`/`00`/bare country-code digits are international, the rest national. */
function toE164(raw: string, region: string | null): string | null {
  const s = raw.trim();
  let pn;
  if (s.startsWith('+')) pn = parsePhoneNumberFromString(s);
  else if (/^00\d+$/.test(s)) pn = parsePhoneNumberFromString(`+${s.slice(2)}`);
  else if (/^[1-9]\d{7,}$/.test(s)) pn = parsePhoneNumberFromString(`+${s}`);
  else pn = region === null ? undefined : parsePhoneNumberFromString(s, region as CountryCode);
  return pn !== undefined && pn.isValid() ? pn.number : null;
}

/** Events are schema-valid and (checked on a sample: parsing is slow) their recipients are valid numbers. */
function assertWellFormed(events: readonly CdrEvent[]): void {
  let valid = 0;
  let checked = 0;
  const step = Math.max(1, Math.floor(events.length / 300));
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    assert.ok(cdrType.isValid(e), JSON.stringify(e));
    if (i % step !== 0) continue;
    checked++;
    if (toE164(e.recipient, e.destination_country) !== null) valid++;
  }
  assert.ok(valid / checked > 0.99, `valid recipients ${valid}/${checked}`);
}

/**
 * sha256 over `kind + JSON(event)` of the first 5000 events (seed 1), computed with the generator
 * as it was before range_scan / account_anomaly / fraud_mix, labels, campaigns and the day curve
 * were added: the original scenarios must keep producing exactly these streams.
 */
const STREAM_HASHES: Record<string, string> = {
  'normal/rate': '79aa81edeef5daa74b53d0958b500780ef7aefae4e45e129b5b9811aff04bf41',
  'normal/spread': 'a5dd2df3c888c3784bb0f607db33b7229411e32a75366d1f2050cff2ff0899b0',
  'sms_pumping/rate': '8176bc2d17f4d4058aab625e508ee35d58354df686cd97d88ed5eeaf296966ee',
  'sms_pumping/spread': '28abffa022a41028e5e7c6e645609dae6e2c4d3201e21cfcbe0d19920861f96c',
  'irsf/rate': '7f2fa149b680bfea43f1a5e71e6bda0880fe66dcc4ce55be6cd58227710fc216',
  'irsf/spread': 'e3b914afb596e1c748074b1bb4ad09a2c1d484aee2f243ae77c5f9be8aad6be5',
  'velocity/rate': 'afaae9e1c4abb4cf203bb8fde0f1b3d4213d17d8a5bde9a3073de7a8e7466c7c',
  'velocity/spread': 'dcb1cc2f61b70e04b6c399c8e0bbdb37bbb0916e2d8a0cc5382af47bea88d5c4',
  'mixed/rate': '5ea26643efcfb501fafc97e90d8662fb969971efc4c21848ecdfdb77f72cb943',
  'mixed/spread': '47d268496eee5a4ef87f00f673b3ff93885a4bb72d4001ea4f1bd15055687268',
};

describe('TrafficGenerator attack scenarios', () => {
  it('keeps the original scenarios byte-for-byte (hash of the first 5000 events)', () => {
    for (const [key, expected] of Object.entries(STREAM_HASHES)) {
      const [scenario, mode] = key.split('/') as [ScenarioName, string];
      const g = new TrafficGenerator({ seed: 1, scenario, startTime: START, ...(mode === 'spread' ? { timeSpreadMs: 7 * 86_400_000 } : {}) });
      const h = createHash('sha256');
      for (let i = 0; i < 5000; i++) {
        const x = g.nextLabeled();
        h.update(x.kind + ' ' + JSON.stringify(x.event) + '\n');
      }
      assert.equal(h.digest('hex'), expected, key);
    }
  });

  it('labels fraud events with their pattern and episode, and nothing else', () => {
    const { g, out } = run('mixed', 20_000, { duplicateRate: 0.01 });
    const a = g.fraudActors;
    const actor: Record<string, string> = { sms_pumping: a.smsPumping.accountId, irsf: a.irsf.accountId, velocity: a.velocity.accountId };
    const lastEpisode = new Map<AttackScenario, number>();
    let fraud = 0;
    for (const x of out) {
      if (x.kind !== 'fraud') {
        assert.equal(x.attack, undefined);
        continue;
      }
      fraud++;
      assert.ok(x.attack !== undefined);
      assert.equal(x.event.account_id, actor[x.attack.scenario]);
      // episodes count up one burst at a time
      const prev = lastEpisode.get(x.attack.scenario) ?? 0;
      assert.ok(x.attack.episode === prev || x.attack.episode === prev + 1, JSON.stringify(x.attack));
      lastEpisode.set(x.attack.scenario, x.attack.episode);
    }
    assert.ok(fraud > 500);
    assert.deepEqual(new Set(lastEpisode.keys()), new Set(['sms_pumping', 'irsf', 'velocity']));
    assert.ok([...lastEpisode.values()].every((n) => n >= 2));
  });

  it('range_scan: bursts of hundreds of adjacent numbers in one block, mostly failing, nothing in between', () => {
    const { g, out } = run('range_scan', 30_000, { ratePerSecond: 10 });
    const scan = g.fraudActors.rangeScan;
    const eps = episodes(out);
    assert.ok(eps.size >= 2, `episodes ${eps.size}`);
    const windows: [number, number][] = [];
    for (const [key, events] of eps) {
      assert.match(key, /^range_scan#\d+$/);
      const [t0, t1] = span(events);
      windows.push([t0, t1]);
      assert.ok(t1 - t0 >= MIN && t1 - t0 <= 6 * MIN, `${key} lasts ${(t1 - t0) / MIN} min`);
      assert.ok(events.length >= 250 && events.length <= 450, `${key} has ${events.length} events`);
      const numbers = new Set<string>();
      let failed = 0;
      for (const e of events) {
        assert.equal(e.account_id, scan.accountId);
        assert.equal(e.channel, 'sms');
        assert.equal(e.destination_country, scan.country);
        const n = toE164(e.recipient, e.destination_country);
        assert.ok(n !== null && n.startsWith(scan.blockPrefix) && n.length === scan.blockPrefix.length + 4, `${e.recipient} outside ${scan.blockPrefix}`);
        numbers.add(n);
        if (e.status === 'failed' || e.status === 'rejected') failed++;
      }
      assert.ok(numbers.size >= 200 && numbers.size === events.length, `${key}: ${numbers.size} distinct of ${events.length}`);
      assert.ok(failed / events.length >= 0.5 && failed / events.length <= 0.8, `${key} failure share ${failed / events.length}`);
      // nearly consecutive: the sorted numbers step by 1–3
      const sorted = [...numbers].map((n) => Number(n.slice(1))).sort((x, y) => x - y);
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]! - sorted[i - 1]! <= 3 || sorted[i]! - sorted[i - 1]! > 9000, 'gap in the sweep');
    }
    for (let i = 1; i < windows.length; i++) assert.ok(windows[i]![0] > windows[i - 1]![1] + 5 * MIN, 'bursts are separated');
    // the scanner sends nothing but its scans
    assert.ok(out.filter((x) => x.event.account_id === scan.accountId).every((x) => x.attack?.scenario === 'range_scan'));
    assertWellFormed([...eps.values()].flat());
  });

  it('account_anomaly: an ordinary account bursts at ≥ 5× its rate to countries it never uses, then returns to normal', () => {
    const { g, out } = run('account_anomaly', 100_000, { ratePerSecond: 20 });
    const a = g.fraudActors.accountAnomaly;
    const mine = out.filter((x) => x.event.account_id === a.accountId);
    const eps = [...episodes(out).values()];
    assert.ok(eps.length >= 2, `episodes ${eps.length}`);
    const windows = eps.map(span);
    const inBurst = (t: number): boolean => windows.some(([t0, t1]) => t >= t0 && t <= t1);
    const total = out[out.length - 1]!.event.event_time - START;
    const burstMs = windows.reduce((s, [t0, t1]) => s + (t1 - t0), 0);
    const baseline = mine.filter((x) => !inBurst(x.event.event_time)).length / (total - burstMs);
    // ordinary: a normal share of the traffic before and between bursts, ~0.4 events/s at 20/s
    assert.ok(baseline * 1000 > 0.1 && baseline * 1000 < 1, `baseline ${baseline * 1000}/s`);
    const usual = new Set(mine.filter((x) => x.attack === undefined).map((x) => x.event.destination_country));
    const firstBurst = windows[0]![0];
    assert.ok(mine.filter((x) => x.event.event_time < firstBurst).length >= 80, 'history before the first burst');
    for (const [i, events] of eps.entries()) {
      const [t0, t1] = windows[i]!;
      assert.ok(t1 - t0 >= 2 * MIN && t1 - t0 <= 11 * MIN, `burst lasts ${(t1 - t0) / MIN} min`);
      const rate = mine.filter((x) => x.event.event_time >= t0 && x.event.event_time <= t1).length / (t1 - t0);
      assert.ok(rate / baseline >= 5 && rate / baseline <= 14, `burst ${i + 1}: ${rate / baseline}× the normal rate`);
      for (const e of events) {
        assert.equal(e.account_id, a.accountId);
        assert.ok(e.destination_country === null || a.countries.includes(e.destination_country), String(e.destination_country));
        if (e.destination_country !== null) assert.ok(!usual.has(e.destination_country), `${e.destination_country} was used before`);
      }
      // back to normal: the 5 minutes after the burst look like the baseline
      const after = mine.filter((x) => x.event.event_time > t1 && x.event.event_time <= t1 + 5 * MIN).length / (5 * MIN);
      assert.ok(after < 2.5 * baseline, `after burst ${i + 1}: ${after / baseline}×`);
    }
    assertWellFormed(eps.flat());
  });

  it('fraud_mix: all five patterns, each in several episodes, bursts rarely overlapping', () => {
    const { g, out } = run('fraud_mix', 200_000, { ratePerSecond: 20 });
    const a = g.fraudActors;
    const actor: Record<AttackScenario, string> = {
      sms_pumping: a.smsPumping.accountId,
      irsf: a.irsf.accountId,
      velocity: a.velocity.accountId,
      range_scan: a.rangeScan.accountId,
      account_anomaly: a.accountAnomaly.accountId,
    };
    assert.equal(new Set(Object.values(actor)).size, 5, 'five distinct actors');
    const eps = episodes(out);
    const count = new Map<string, number>();
    const windows: { scenario: string; t0: number; t1: number }[] = [];
    for (const [key, events] of eps) {
      const scenario = key.split('#')[0] as AttackScenario;
      count.set(scenario, (count.get(scenario) ?? 0) + 1);
      assert.ok(
        events.every((e) => e.account_id === actor[scenario]),
        key,
      );
      const [t0, t1] = span(events);
      windows.push({ scenario, t0, t1 });
    }
    for (const s of ATTACK_SCENARIOS) assert.ok((count.get(s) ?? 0) >= 2, `${s}: ${count.get(s) ?? 0} episodes`);
    let overlaps = 0;
    for (let i = 0; i < windows.length; i++)
      for (let j = i + 1; j < windows.length; j++) if (windows[i]!.t0 < windows[j]!.t1 && windows[j]!.t0 < windows[i]!.t1) overlaps++;
    assert.ok(overlaps <= 1, `${overlaps} overlapping bursts of ${windows.length}`);
    const fraud = out.filter((x) => x.kind === 'fraud').length / out.length;
    assert.ok(fraud > 0.02 && fraud < 0.2, `fraud share ${fraud}`);
  });

  it('campaign: a legitimate surge labelled normal, to distinct numbers across all blocks, mostly delivered', () => {
    const at = START + 20_000;
    const campaign = { at, durationMs: 60_000, count: 2000 };
    const { g, out } = run('normal', 32_000, { ratePerSecond: 200, campaign });
    const c = out.filter((x) => x.campaign === true);
    assert.equal(c.length, 2000);
    const a = g.fraudActors;
    const actors = new Set([a.smsPumping.accountId, a.irsf.accountId, a.velocity.accountId, a.rangeScan.accountId, a.accountAnomaly.accountId]);
    const accounts = new Set(c.map((x) => x.event.account_id));
    assert.equal(accounts.size, 1);
    assert.ok(!actors.has([...accounts][0]!), 'an ordinary account');
    const numbers = new Set<string>();
    const prefixes = new Set<string>();
    const networks = new Set<string>();
    let delivered = 0;
    for (const x of c) {
      const e = x.event;
      assert.equal(x.kind, 'normal');
      assert.equal(x.attack, undefined);
      assert.equal(e.channel, 'sms');
      assert.equal(e.sender_type, 'alphanumeric');
      assert.equal(e.destination_country, 'MY');
      assert.ok(e.event_time >= at && e.event_time < at + 60_000);
      const n = toE164(e.recipient, 'MY');
      assert.ok(n !== null, e.recipient);
      numbers.add(n);
      prefixes.add(n.slice(3, 6)); // the 2-3 digit operator prefix and the next digit
      networks.add(`${e.mcc}-${e.mnc}`);
      if (e.status === 'delivered') delivered++;
    }
    assert.ok(numbers.size >= 0.9 * c.length, `distinct ${numbers.size}`);
    const my = DESTINATION_BY_ISO.get('MY')!;
    assert.equal(networks.size, my.operators.filter((o) => o.ranges.length > 0).length, 'every operator');
    assert.ok(prefixes.size >= 30, `spread over blocks: ${prefixes.size}`);
    assert.ok(delivered / c.length >= 0.9, `delivered ${delivered / c.length}`);
    // interleaved in time order, and the rest of the stream is exactly the stream without a campaign
    for (let i = 1; i < out.length; i++) assert.ok(out[i]!.event.event_time >= out[i - 1]!.event.event_time, `order at ${i}`);
    const firstCampaign = out.findIndex((x) => x.campaign === true);
    assert.ok(firstCampaign > 1000 && out[out.length - 1]!.campaign !== true, 'campaign sits inside normal traffic');
    const base = new TrafficGenerator({ seed: 7, scenario: 'normal', startTime: START, ratePerSecond: 200 }).take(out.length - c.length);
    // (compared as JSON: deepEqual on 30k events is slow)
    assert.ok(JSON.stringify(out.filter((x) => x.campaign !== true).map((x) => x.event)) === JSON.stringify(base), 'base stream changed');
    assert.equal(new Set(out.map((x) => x.event.cdr_id)).size, out.length, 'cdr_ids stay unique');
    assertWellFormed(c.map((x) => x.event));
    // options are checked
    const bad = (o: Partial<CampaignOptions>): unknown =>
      new TrafficGenerator({ seed: 1, scenario: 'normal', startTime: START, campaign: { ...campaign, ...o } });
    assert.throws(() => bad({ country: 'US' }), /alphanumeric/);
    assert.throws(() => bad({ country: 'XX' }));
    assert.throws(() => bad({ durationMs: 0 }));
    assert.throws(() => bad({ count: 1.5 }));
    assert.equal(
      run('normal', 10, { campaign: { ...campaign, country: 'gb', at: START - 1000, durationMs: 10, count: 3 } }).out.filter((x) => x.campaign).length,
      3,
    );
  });

  it('scenarioOf accepts names and hyphenated aliases in any case', () => {
    assert.equal(scenarioOf('sms-pumping'), 'sms_pumping');
    assert.equal(scenarioOf('SMS_Pumping'), 'sms_pumping');
    assert.equal(scenarioOf('range-scan'), 'range_scan');
    assert.equal(scenarioOf('Account-Anomaly'), 'account_anomaly');
    assert.equal(scenarioOf('FRAUD-MIX'), 'fraud_mix');
    assert.equal(scenarioOf(' mixed '), 'mixed');
    assert.equal(scenarioOf('irsf'), 'irsf');
    assert.equal(scenarioOf('pumping'), undefined);
    assert.equal(scenarioOf(''), undefined);
  });

  it('diurnal: arrivals follow a UTC day curve with the configured daily mean', () => {
    const day0 = Date.UTC(2025, 5, 1);
    const rate = 0.2;
    const g = new TrafficGenerator({ seed: 3, scenario: 'normal', startTime: day0, ratePerSecond: rate, diurnal: true });
    const hours = new Array<number>(24).fill(0);
    let n = 0;
    let last = day0;
    for (;;) {
      const e = g.next();
      if (e.event_time >= day0 + 2 * 86_400_000) break;
      assert.ok(e.event_time >= last);
      last = e.event_time;
      hours[new Date(e.event_time).getUTCHours()]!++;
      n++;
    }
    const expected = 2 * 86_400 * rate;
    assert.ok(Math.abs(n - expected) < expected * 0.03, `${n} events in 2 days, expected ${expected}`);
    const night = (hours[2]! + hours[3]! + hours[4]!) / 3;
    const peak = hours.slice(10, 20).reduce((s, x) => s + x, 0) / 10;
    assert.ok(night < 0.5 * peak, `night ${night} vs peak ${peak}`);
    assert.ok(night / (n / 24) < 0.35 && peak / (n / 24) > 1.3, `night ${night / (n / 24)}, peak ${peak / (n / 24)} of the mean`);
    // spread mode draws times from the same curve
    const spread = new TrafficGenerator({ seed: 3, scenario: 'normal', startTime: day0, timeSpreadMs: 7 * 86_400_000, diurnal: true }).take(20_000);
    const sh = new Array<number>(24).fill(0);
    for (const e of spread) {
      assert.ok(e.event_time >= day0 - 7 * 86_400_000 && e.event_time <= day0);
      sh[new Date(e.event_time).getUTCHours()]!++;
    }
    assert.ok((sh[3] ?? 0) < 0.5 * (sh[15] ?? 0), `spread night ${sh[3]} vs day ${sh[15]}`);
  });
});
