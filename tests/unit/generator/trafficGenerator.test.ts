import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { domainToASCII } from 'node:url';

import avro from 'avsc';
import { isValidPhoneNumber, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';

import type { CdrEvent } from '../../../services/core/cdr/cdrEvent.ts';
import { CHANNELS } from '../../../services/core/cdr/cdrEvent.ts';
import {
  DESTINATIONS,
  DESTINATION_BY_ISO,
  IDN_EMAIL_DOMAINS,
  IRSF_DESTINATIONS,
  Prng,
  SCENARIOS,
  TrafficGenerator,
  WeightedPicker,
  applyTemplate,
  identifierFormatOf,
  rangesOf,
} from '../../../services/generator/index.ts';
import type { GeneratedCdr, GeneratorOptions, IdentifierFormat, ScenarioName } from '../../../services/generator/index.ts';

const START = Date.UTC(2025, 5, 1, 12, 0, 0);
const schemaUrl = new URL('../../../schemas/cdr-event-v1.avsc', import.meta.url);
const cdrType = avro.Type.forSchema(JSON.parse(readFileSync(schemaUrl, 'utf8')) as avro.Schema);

function gen(scenario: ScenarioName, n: number, extra: Partial<GeneratorOptions> = {}): CdrEvent[] {
  return new TrafficGenerator({ seed: 20250601, scenario, startTime: START, ...extra }).take(n);
}

function genLabeled(scenario: ScenarioName, n: number, extra: Partial<GeneratorOptions> = {}): { g: TrafficGenerator; out: GeneratedCdr[] } {
  const g = new TrafficGenerator({ seed: 77, scenario, startTime: START, ...extra });
  const out: GeneratedCdr[] = [];
  for (let i = 0; i < n; i++) out.push(g.nextLabeled());
  return { g, out };
}

/** What a normaliser would do: `+`/`00`/bare country-code digits are international, the rest national. */
function toE164(raw: string, region: string | null): { e164: string; country: string | undefined } | null {
  const s = raw.trim();
  let pn;
  if (s.startsWith('+')) pn = parsePhoneNumberFromString(s);
  else if (/^00\d+$/.test(s)) pn = parsePhoneNumberFromString(`+${s.slice(2)}`);
  else if (/^[1-9]\d{7,}$/.test(s)) pn = parsePhoneNumberFromString(`+${s}`);
  else pn = region === null ? undefined : parsePhoneNumberFromString(s, region as CountryCode);
  return pn !== undefined && pn.isValid() ? { e164: pn.number, country: pn.country } : null;
}

function isShortcode(s: string): boolean {
  return /^\d{3,7}$/.test(s);
}

/** Phone identifiers of an event, with the region to use for national formats. */
function phoneIds(e: CdrEvent): string[] {
  const ids: string[] = [];
  if (e.sender_type === 'msisdn') ids.push(e.sender);
  if (e.channel !== 'email' && !isShortcode(e.recipient)) ids.push(e.recipient);
  return ids;
}

describe('Prng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Prng(123);
    const b = new Prng(123);
    const c = new Prng(124);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    const sb = Array.from({ length: 100 }, () => b.nextU32());
    const sc = Array.from({ length: 100 }, () => c.nextU32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
    // large / negative / fractional seeds are accepted and distinct
    assert.notEqual(new Prng(2 ** 40).nextU32(), new Prng(0).nextU32());
    assert.equal(new Prng(-5.5).nextU32(), new Prng(-5).nextU32());
  });

  it('helpers stay in range and follow their distributions', () => {
    const r = new Prng(9);
    let sum = 0;
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
      const k = r.int(3, 7);
      assert.ok(Number.isInteger(k) && k >= 3 && k <= 7);
      const w = r.weighted([
        ['a', 1],
        ['b', 3],
        ['z', 0],
      ] as const);
      counts.set(w, (counts.get(w) ?? 0) + 1);
      sum += r.exponential(10);
      assert.ok(r.lognormal(100, 1) > 0);
      assert.ok(['x', 'y'].includes(r.pick(['x', 'y'])));
    }
    assert.equal(counts.get('z'), undefined);
    const bShare = (counts.get('b') ?? 0) / 20_000;
    assert.ok(bShare > 0.72 && bShare < 0.78, `b share ${bShare}`);
    assert.ok(Math.abs(sum / 20_000 - 10) < 0.5);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (r.chance(0.2)) hits++;
    assert.ok(hits > 1800 && hits < 2200);
    const p = new WeightedPicker([
      ['x', 1],
      ['y', 9],
    ] as const);
    let ys = 0;
    for (let i = 0; i < 10_000; i++) if (p.pick(r) === 'y') ys++;
    assert.ok(ys > 8800 && ys < 9200);
    for (let i = 0; i < 1000; i++) {
      const z = r.zipf(100, 0.9);
      assert.ok(Number.isInteger(z) && z >= 0 && z < 100);
    }
  });
});

describe('catalog', () => {
  it('has ~20+ destinations across regions with 2–3 operators each', () => {
    assert.ok(DESTINATIONS.length >= 20);
    assert.deepEqual(new Set(DESTINATIONS.map((d) => d.region)), new Set(['APAC', 'EMEA', 'AMER']));
    for (const iso of [
      'MY',
      'SG',
      'ID',
      'PH',
      'TH',
      'VN',
      'IN',
      'PK',
      'GB',
      'DE',
      'FR',
      'ES',
      'IT',
      'NL',
      'US',
      'CA',
      'BR',
      'MX',
      'NG',
      'ZA',
      'AE',
      'LV',
      'GN',
      'CU',
      'SO',
      'TN',
    ]) {
      assert.ok(DESTINATION_BY_ISO.has(iso), iso);
    }
    assert.ok(IRSF_DESTINATIONS.length >= 5);
    for (const d of DESTINATIONS) {
      assert.ok(d.operators.length >= 2 && d.operators.length <= 3, d.iso);
      assert.ok(d.smsCost < d.smsPrice && d.voiceCostPerMin < d.voicePricePerMin, d.iso);
      assert.ok(Number.isInteger(d.smsPrice) && Number.isInteger(d.voicePricePerMin));
      assert.ok(['EUR', 'USD'].includes(d.currency));
      for (const o of d.operators) assert.match(o.providerId, /^(op|agg)-[a-z]{2}-[a-z0-9]+$/);
    }
  });

  it('every number range yields valid mobile numbers whose templates parse back', () => {
    const r = new Prng(5);
    for (const d of DESTINATIONS) {
      for (const { range } of rangesOf(d)) {
        for (let k = 0; k < 5; k++) {
          let nsn = range.prefix;
          while (nsn.length < range.length) nsn += String(r.int(0, 9));
          const e164 = `+${d.callingCode}${nsn}`;
          assert.ok(isValidPhoneNumber(e164), `${d.iso} ${e164}`);
          const pn = parsePhoneNumberFromString(e164)!;
          assert.equal(pn.country, d.iso, e164);
          assert.ok(['MOBILE', 'FIXED_LINE_OR_MOBILE'].includes(pn.getType() ?? ''), `${e164} ${pn.getType()}`);
          const nat = applyTemplate(range.national, nsn);
          assert.ok(isValidPhoneNumber(nat, d.iso as CountryCode), `${d.iso} national ${nat}`);
          assert.equal(parsePhoneNumberFromString(nat, d.iso as CountryCode)!.number, e164);
          const intl = `+${d.callingCode} ${applyTemplate(range.international, nsn)}`;
          assert.equal(parsePhoneNumberFromString(intl)!.number, e164);
        }
      }
    }
  });

  it('IDN domains carry their correct punycode form', () => {
    for (const { unicode, ascii } of IDN_EMAIL_DOMAINS) assert.equal(domainToASCII(unicode), ascii);
  });
});

describe('TrafficGenerator', () => {
  it('exposes the scenarios', () => {
    assert.deepEqual([...SCENARIOS], ['normal', 'sms_pumping', 'irsf', 'velocity', 'mixed', 'range_scan', 'account_anomaly', 'fraud_mix']);
  });

  it('is deterministic for a seed (first 1000 events identical) and differs across seeds', () => {
    for (const scenario of SCENARIOS) {
      const a = gen(scenario, 1000);
      const b = gen(scenario, 1000);
      assert.deepEqual(a, b, scenario);
    }
    const spreadA = gen('mixed', 1000, { timeSpreadMs: 180 * 86_400_000 });
    const spreadB = gen('mixed', 1000, { timeSpreadMs: 180 * 86_400_000 });
    assert.deepEqual(spreadA, spreadB);
    const x = new TrafficGenerator({ seed: 1, scenario: 'normal', startTime: START }).take(1000);
    const y = new TrafficGenerator({ seed: 2, scenario: 'normal', startTime: START }).take(1000);
    assert.notDeepEqual(x, y);
    const xIds = new Set(x.map((e) => e.cdr_id));
    assert.ok(
      y.every((e) => !xIds.has(e.cdr_id)),
      'different seeds share cdr_ids',
    );
  });

  it('every event is valid against the Avro schema and round-trips', () => {
    const events = [
      ...SCENARIOS.flatMap((s) => gen(s, 3000)),
      ...gen('mixed', 3000, { timeSpreadMs: 400 * 86_400_000 }),
      ...gen('normal', 1000, { duplicateRate: 0.05, accounts: 3, subscribers: 50 }),
    ];
    for (const e of events) {
      const errors: string[] = [];
      const ok = cdrType.isValid(e, { errorHook: (path) => errors.push(path.join('.')) });
      assert.ok(ok, `invalid event at ${errors.join(', ')}: ${JSON.stringify(e)}`);
      assert.deepEqual({ ...(cdrType.fromBuffer(cdrType.toBuffer(e)) as CdrEvent) }, e);
    }
  });

  it('cdr_ids are unique UUID-shaped strings over 50k events', () => {
    const ids = new Set<string>();
    const g = new TrafficGenerator({ seed: 3, scenario: 'mixed', startTime: START });
    for (let i = 0; i < 50_000; i++) {
      const id = g.next().cdr_id;
      ids.add(id);
      if (i < 1000) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    assert.equal(ids.size, 50_000);
  });

  it('phone identifiers parse to valid numbers (≥ 99%), in all five formats, for the same numbers', () => {
    let total = 0;
    let valid = 0;
    const formats = new Map<IdentifierFormat, number>();
    const rawFormsByE164 = new Map<string, Set<string>>();
    const events = [...SCENARIOS.flatMap((s) => gen(s, 6000))];
    for (const e of events) {
      for (const id of phoneIds(e)) {
        total++;
        const fmt = identifierFormatOf(id);
        assert.ok(fmt !== null, id);
        formats.set(fmt, (formats.get(fmt) ?? 0) + 1);
        const parsed = toE164(id, e.destination_country);
        if (parsed === null) continue;
        valid++;
        if (fmt === 'national') {
          // national format only ever used for numbers of the destination country
          assert.equal(parsed.country, e.destination_country, `${id} vs ${e.destination_country}`);
        }
        let forms = rawFormsByE164.get(parsed.e164);
        if (forms === undefined) rawFormsByE164.set(parsed.e164, (forms = new Set()));
        forms.add(id);
      }
    }
    assert.ok(total > 20_000);
    assert.ok(valid / total >= 0.99, `valid ${valid}/${total}`);
    for (const f of ['e164', 'international', 'idd', 'bare', 'national'] as const) {
      assert.ok((formats.get(f) ?? 0) > total * 0.03, `format ${f}: ${formats.get(f) ?? 0}/${total}`);
    }
    // the same underlying number shows up written in several ways
    const multiForm = [...rawFormsByE164.values()].filter((s) => s.size >= 3).length;
    assert.ok(multiForm > 100, `numbers seen in ≥ 3 spellings: ${multiForm}`);
    // examples of the exact spellings from the spec exist
    const all = [...rawFormsByE164.values()].flatMap((s) => [...s]);
    assert.ok(
      all.some((s) => /^\+60 1\d-\d{3} \d{4}$/.test(s)),
      'MY "+60 12-345 6789" style',
    );
    assert.ok(
      all.some((s) => /^01\d-\d{3} \d{4}$/.test(s)),
      'MY "012-345 6789" style',
    );
  });

  it('subscriber popularity is skewed: the same number recurs many times', () => {
    const counts = new Map<string, number>();
    for (const e of gen('normal', 30_000)) {
      if (e.channel === 'email' || e.direction !== 'mt') continue;
      const p = toE164(e.recipient, e.destination_country);
      if (p !== null) counts.set(p.e164, (counts.get(p.e164) ?? 0) + 1);
    }
    const sorted = [...counts.values()].sort((a, b) => b - a);
    assert.ok(sorted[0]! >= 50, `top number seen ${sorted[0]} times`);
    assert.ok(sorted.length > 3000, `distinct numbers ${sorted.length}`);
  });

  it('with subscriberGapMs, an end user takes part in ordinary traffic at most once per gap; a pool grows at most 5 times', () => {
    // 20,000 users at 2,000 records a second: ~12,000 busy at a time, so the pool grows (within its cap); 4,000 cannot
    // grow enough (20,000 at most): busy users are then taken again, sooner than their gap.
    for (const [subscribers, spaced] of [
      [20_000, true],
      [4_000, false],
    ] as const) {
      const g = new TrafficGenerator({ seed: 5, scenario: 'normal', startTime: START, ratePerSecond: 2_000, subscribers, subscriberGapMs: 6_000 });
      const last = new Map<string, number>();
      let repeats = 0;
      let tooSoon = 0;
      for (let i = 0; i < 40_000; i++) {
        const e = g.next();
        const party = e.direction === 'mo' ? e.sender : e.recipient;
        if (e.channel === 'email' || (e.direction === 'mo' ? e.sender_type : 'msisdn') !== 'msisdn') continue;
        const p = toE164(party, e.destination_country);
        if (p === null) continue;
        const before = last.get(p.e164);
        if (before !== undefined) {
          repeats++;
          if (e.event_time - before < 6_000) tooSoon++;
        }
        last.set(p.e164, e.event_time);
      }
      if (spaced) assert.equal(tooSoon, 0, `pool ${subscribers}`);
      else assert.ok(tooSoon > 0, `pool ${subscribers}: capped, so some are taken again within the gap`);
      assert.ok(repeats > 1_000, `pool ${subscribers}: end users still recur (${repeats})`);
    }
    assert.throws(() => new TrafficGenerator({ seed: 1, scenario: 'normal', startTime: START, subscriberGapMs: -1 }), /subscriberGapMs/);
  });

  it('never dates a delivery more than 20 h after its record, so live traffic passes ingest (a day of clock skew)', () => {
    // Found from outside: `cdr produce --malformed 0` sent one record in ~130,000 to the DLQ, delivered up to 3 days ahead.
    const g = new TrafficGenerator({ seed: 3, scenario: 'normal', startTime: START, ratePerSecond: 1000 });
    let latest = 0;
    for (let i = 0; i < 400_000; i++) {
      const e = g.next();
      if (e.delivered_at !== null) latest = Math.max(latest, e.delivered_at - e.event_time);
    }
    assert.ok(latest > 3_600_000 && latest <= 20 * 3_600_000 + 60_000, `latest delivery ${(latest / 3_600_000).toFixed(1)} h after its record`);
  });

  it('email identifiers vary in case, whitespace and IDN form', () => {
    const emails = gen('normal', 40_000).filter((e) => e.channel === 'email');
    assert.ok(emails.length > 3000);
    for (const e of emails) {
      assert.equal(e.sender_type, 'email');
      assert.match(e.sender, /^[a-z]+@([a-z]+\.)?[a-z0-9]+\.example$/);
      assert.ok(e.recipient.includes('@'));
      assert.equal(e.destination_country, null);
      assert.equal(e.mcc, null);
    }
    const rcpt = emails.map((e) => e.recipient);
    assert.ok(
      rcpt.some((r) => /[\u0080-\uffff]/.test(r.split('@')[1] ?? '')),
      'Unicode IDN domain',
    );
    assert.ok(
      rcpt.some((r) => r.includes('@xn--')),
      'punycode IDN domain',
    );
    assert.ok(
      rcpt.some((r) => /[A-Z]/.test(r)),
      'upper case',
    );
    assert.ok(
      rcpt.some((r) => /[ÄÖÜÉÇ]|[A-Z][^@]*@[^@]*[\u0080-\uffff]/.test(r)),
      'upper case + IDN',
    );
    assert.ok(
      rcpt.some((r) => r !== r.trim()),
      'surrounding whitespace',
    );
    assert.ok(
      rcpt.some((r) => /[\u0080-\uffff]/.test(r.split('@')[0] ?? '')),
      'Unicode local part',
    );
    // same mailbox in several spellings
    const byCanon = new Map<string, Set<string>>();
    for (const r of rcpt) {
      const [local = '', domain = ''] = r.trim().split('@');
      const canon = `${local.toLowerCase()}@${domainToASCII(domain.toLowerCase())}`;
      let s = byCanon.get(canon);
      if (s === undefined) byCanon.set(canon, (s = new Set()));
      s.add(r);
    }
    assert.ok([...byCanon.values()].some((s) => s.size >= 3));
  });

  it('produces realistic field values', () => {
    const events = gen('normal', 50_000);
    const byChannel = new Map<string, number>();
    let mt = 0;
    let delivered = 0;
    let withIp = 0;
    let ported = 0;
    let priced = 0;
    let positiveMargin = 0;
    const errorCodes = new Set<string>();
    const statuses = new Set<string>();
    for (const e of events) {
      byChannel.set(e.channel, (byChannel.get(e.channel) ?? 0) + 1);
      statuses.add(e.status);
      if (e.direction === 'mt') mt++;
      if (e.ported) ported++;
      assert.match(e.account_id, /^acct-\d{4}$/);
      assert.ok(Number.isSafeInteger(e.price) && e.price >= 0);
      assert.ok(Number.isSafeInteger(e.cost) && e.cost >= 0);
      assert.ok(['EUR', 'USD'].includes(e.currency));
      if (e.price > 0) {
        priced++;
        if (e.cost < e.price) positiveMargin++;
      }
      assert.ok(e.submitted_at >= e.event_time);
      if (e.status === 'delivered') {
        delivered++;
        assert.ok(e.delivered_at !== null && e.delivered_at > e.submitted_at, JSON.stringify(e));
        assert.equal(e.error_code, null);
      } else {
        assert.equal(e.delivered_at, null);
        if (e.status === 'failed' || e.status === 'rejected') assert.ok(e.error_code !== null, JSON.stringify(e));
        if (e.error_code !== null) errorCodes.add(e.error_code);
      }
      if (e.channel === 'voice') {
        assert.ok(e.duration_ms !== null && e.duration_ms >= 0);
        assert.equal(e.segments, 1);
        if (e.status === 'delivered') assert.ok(e.duration_ms >= 1000 && e.duration_ms <= 7_200_000);
        else assert.equal(e.price, 0);
      } else {
        assert.equal(e.duration_ms, null);
      }
      if (e.channel === 'sms') {
        assert.ok(e.segments >= 1 && e.segments <= 4);
        assert.ok(e.size_bytes > 0 && e.size_bytes <= 140 * e.segments, JSON.stringify(e));
        if (e.segments > 1) assert.ok(e.size_bytes > 134 * (e.segments - 1) * 0.9);
      }
      if (e.channel === 'email') assert.ok(e.size_bytes >= 600);
      if (e.client_ip !== null) {
        withIp++;
        assert.match(e.client_ip, /^(192\.0\.2\.|198\.51\.100\.|203\.0\.113\.)\d{1,3}$|^2001:db8:/);
        assert.equal(e.direction, 'mt');
      }
      if (e.direction === 'mo') assert.equal(e.sender_type, 'msisdn');
      if (e.sender_type === 'alphanumeric') assert.match(e.sender, /^[A-Z0-9]{1,11}$/);
      if (e.sender_type === 'shortcode') assert.match(e.sender, /^\d{4,7}$/);
      if (e.destination_country !== null) assert.ok(DESTINATION_BY_ISO.has(e.destination_country));
    }
    const order = ['sms', 'whatsapp', 'email', 'voice', 'rcs', 'viber', 'mms', 'push'];
    for (let i = 1; i < order.length; i++) {
      assert.ok((byChannel.get(order[i - 1]!) ?? 0) > (byChannel.get(order[i]!) ?? 0), `channel order ${JSON.stringify([...byChannel])}`);
    }
    assert.equal(byChannel.size, CHANNELS.length);
    assert.ok(mt / events.length > 0.85 && mt < events.length, 'mostly mt, some mo');
    assert.ok(delivered / events.length > 0.75);
    assert.deepEqual(statuses, new Set(['delivered', 'failed', 'rejected', 'expired', 'pending']));
    assert.ok(withIp > events.length * 0.2 && withIp < events.length * 0.8);
    assert.ok(ported > 0 && ported < events.length * 0.1);
    assert.ok(positiveMargin / priced > 0.97);
    for (const code of ['MAP:27', 'SIP:486', 'SMTP:550 5.1.1', 'WA:131026']) assert.ok(errorCodes.has(code), code);
    const ips = events.map((e) => e.client_ip).filter((x): x is string => x !== null);
    assert.ok(ips.some((ip) => ip.includes(':')) && ips.some((ip) => ip.includes('.')));
  });

  it('event_time is monotone in rate mode and stays in range in spread mode', () => {
    const rate = gen('mixed', 20_000, { ratePerSecond: 500 });
    for (let i = 1; i < rate.length; i++) assert.ok(rate[i]!.event_time >= rate[i - 1]!.event_time);
    assert.ok(rate[0]!.event_time >= START);
    const elapsed = rate[rate.length - 1]!.event_time - START;
    assert.ok(elapsed > 36_000 && elapsed < 44_000, `20k events at 500/s took ${elapsed} ms`);

    const spreadMs = 365 * 86_400_000;
    let min = Infinity;
    let max = -Infinity;
    for (const scenario of SCENARIOS) {
      for (const e of gen(scenario, 10_000, { timeSpreadMs: spreadMs })) {
        assert.ok(e.event_time >= START - spreadMs && e.event_time <= START, `${scenario} ${e.event_time}`);
        min = Math.min(min, e.event_time);
        max = Math.max(max, e.event_time);
      }
    }
    assert.ok(max - min > spreadMs * 0.95);
  });

  it('normal scenario has no fraud labels; fraud scenarios have some', () => {
    assert.ok(genLabeled('normal', 5000).out.every((x) => x.kind === 'normal'));
    for (const s of ['sms_pumping', 'irsf', 'velocity', 'mixed'] as const) {
      const frac = genLabeled(s, 20_000).out.filter((x) => x.kind === 'fraud').length / 20_000;
      assert.ok(frac > 0.02 && frac < 0.45, `${s} fraud share ${frac}`);
    }
  });

  it('irsf: long voice calls to IRSF-prone destinations at high cost', () => {
    const { g, out } = genLabeled('irsf', 20_000);
    const actors = g.fraudActors;
    const fraud = out.filter((x) => x.kind === 'fraud').map((x) => x.event);
    assert.ok(fraud.length > 2000);
    for (const e of fraud) {
      assert.equal(e.channel, 'voice');
      assert.equal(e.account_id, actors.irsf.accountId);
      assert.ok(IRSF_DESTINATIONS.includes(e.destination_country!));
    }
    const answered = fraud.filter((e) => e.status === 'delivered');
    assert.ok(answered.length / fraud.length > 0.7);
    const meanMin = answered.reduce((a, e) => a + e.duration_ms!, 0) / answered.length / 60_000;
    assert.ok(meanMin > 15, `mean IRSF call ${meanMin} min`);
    const normalVoice = out.filter((x) => x.kind === 'normal' && x.event.channel === 'voice' && x.event.status === 'delivered');
    const normalMean = normalVoice.reduce((a, x) => a + x.event.duration_ms!, 0) / normalVoice.length / 60_000;
    assert.ok(normalMean < 5, `normal call ${normalMean} min`);
    const meanPrice = answered.reduce((a, e) => a + e.price, 0) / answered.length;
    assert.ok(meanPrice > 10_000_000, `mean IRSF call price ${meanPrice}`); // > 10 units of currency per call
    // normal traffic rarely calls those destinations
    const normalIrsf = gen('normal', 20_000).filter((e) => e.channel === 'voice' && IRSF_DESTINATIONS.includes(e.destination_country ?? ''));
    assert.ok(normalIrsf.length < 50);
  });

  it('sms_pumping: bursts of OTP-like SMS to adjacent numbers in premium countries, low delivery', () => {
    const { g, out } = genLabeled('sms_pumping', 20_000);
    const actors = g.fraudActors;
    const fraud = out.filter((x) => x.kind === 'fraud').map((x) => x.event);
    assert.ok(fraud.length > 3000);
    const delivered = fraud.filter((e) => e.status === 'delivered').length / fraud.length;
    assert.ok(delivered < 0.15, `pumping delivery rate ${delivered}`);
    for (const e of fraud) {
      assert.equal(e.channel, 'sms');
      assert.equal(e.account_id, actors.smsPumping.accountId);
      assert.equal(e.segments, 1);
      assert.ok(actors.smsPumping.countries.includes(e.destination_country!));
      assert.ok(IRSF_DESTINATIONS.includes(e.destination_country!));
    }
    // adjacency: consecutive distinct numbers within a country are mostly close together
    const byCountry = new Map<string, number[]>();
    for (const e of fraud) {
      const p = toE164(e.recipient, e.destination_country);
      assert.ok(p !== null, e.recipient);
      const list = byCountry.get(e.destination_country!) ?? [];
      list.push(Number(p.e164.slice(1)));
      byCountry.set(e.destination_country!, list);
    }
    let close = 0;
    let pairs = 0;
    for (const nums of byCountry.values()) {
      const sorted = [...new Set(nums)].sort((a, b) => a - b);
      for (let i = 1; i < sorted.length; i++) {
        pairs++;
        if (sorted[i]! - sorted[i - 1]! <= 10) close++;
      }
    }
    assert.ok(close / pairs > 0.9, `adjacent ${close}/${pairs}`);
    // burstiness: fraud events cluster (long runs within a short span of the stream)
    const idx = out.map((x, i) => (x.kind === 'fraud' ? i : -1)).filter((i) => i >= 0);
    let inBurst = 0;
    for (let i = 1; i < idx.length; i++) if (idx[i]! - idx[i - 1]! <= 5) inBurst++;
    assert.ok(inBurst / idx.length > 0.9);
  });

  it('velocity: one account suddenly sends at ~50× its usual rate', () => {
    const onset = 3000;
    const { g, out } = genLabeled('velocity', 30_000, { velocityOnset: onset });
    const v = g.fraudActors.velocity;
    assert.ok(v.factor > 40 && v.factor < 60, `factor ${v.factor}`);
    const before = out.slice(0, onset).filter((x) => x.event.account_id === v.accountId).length / onset;
    const fraud = out.filter((x) => x.kind === 'fraud');
    assert.ok(fraud.every((x) => x.event.account_id === v.accountId));
    assert.ok(out.slice(0, onset).every((x) => x.kind === 'normal'));
    // peak share in a 1000-event window after the onset vs the baseline
    let peak = 0;
    for (let s = onset; s + 1000 <= out.length; s += 500) {
      const share = out.slice(s, s + 1000).filter((x) => x.event.account_id === v.accountId).length / 1000;
      peak = Math.max(peak, share);
    }
    assert.ok(before < 0.03, `baseline share ${before}`);
    assert.ok(peak > 0.2 && peak / Math.max(v.baselineShare, 1e-9) > 30, `peak ${peak} vs ${v.baselineShare}`);
  });

  it('mixed: a little of each pattern', () => {
    const { g, out } = genLabeled('mixed', 60_000);
    const a = g.fraudActors;
    const fraud = out.filter((x) => x.kind === 'fraud').map((x) => x.event);
    const pumping = fraud.filter((e) => e.account_id === a.smsPumping.accountId && e.channel === 'sms').length;
    const irsf = fraud.filter((e) => e.account_id === a.irsf.accountId && e.channel === 'voice').length;
    const velocity = fraud.filter((e) => e.account_id === a.velocity.accountId).length;
    for (const [name, n] of [
      ['pumping', pumping],
      ['irsf', irsf],
      ['velocity', velocity],
    ] as const) {
      assert.ok(n > 0.003 * out.length && n < 0.1 * out.length, `${name}: ${n}`);
    }
  });

  it('optional duplicates replay earlier events unchanged', () => {
    const { out } = genLabeled('normal', 5000, { duplicateRate: 0.02 });
    const seen = new Map<string, CdrEvent>();
    let dups = 0;
    for (const x of out) {
      if (x.kind === 'duplicate') {
        dups++;
        const orig = seen.get(x.event.cdr_id);
        assert.ok(orig !== undefined);
        assert.deepEqual(x.event, orig);
        assert.notEqual(x.event, orig);
      } else {
        assert.ok(!seen.has(x.event.cdr_id));
        seen.set(x.event.cdr_id, x.event);
      }
    }
    assert.ok(dups > 50 && dups < 200, `dups ${dups}`);
  });

  it('honours accounts / subscribers options and validates input', () => {
    const events = gen('normal', 5000, { accounts: 7, subscribers: 300 });
    const accts = new Set(events.map((e) => e.account_id));
    assert.ok(accts.size <= 7 && accts.size >= 5);
    assert.ok([...accts].every((id) => /^acct-000[1-7]$/.test(id)));
    const g = new TrafficGenerator({ seed: 1, scenario: 'velocity', startTime: START, accounts: 1 });
    assert.equal(g.take(100).length, 100);
    assert.throws(() => new TrafficGenerator({ seed: 1, scenario: 'nope' as ScenarioName, startTime: START }));
    assert.throws(() => new TrafficGenerator({ seed: 1, scenario: 'normal', startTime: START, ratePerSecond: 0 }));
    assert.throws(() => new TrafficGenerator({ seed: 1, scenario: 'normal', startTime: START, accounts: 0 }));
  });
});
