/**
 * numberPlan.ts answers what libphonenumber-js answers — a number's type (`getType()`) and the digit groups of its
 * international format (`formatInternational()`) — for numbers of every country and non-geographic calling code of
 * the `max` metadata: each country's mobile example, variants of it (other last digits, other leading digits) and
 * random national numbers of each length its plan allows, valid or not. Both are compared number by number; the
 * test also checks that the numbers tried reach every kind of answer (valid and invalid, many types, grouped and not).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { parsePhoneNumberFromString, getCountryCallingCode, type CountryCode } from 'libphonenumber-js/max';
import { internationalGroupsOf, numberTypeOfParsed, parsedE164, parsedNational } from '../../../../services/core/identity/numberPlan.ts';
import { Metadata } from 'libphonenumber-js/max';
import { TrafficGenerator } from '../../../../services/generator/trafficGenerator.ts';
import { numberRangeOf } from '../../../../services/core/index.ts';

const require = createRequire(import.meta.url);
const metadata = require('libphonenumber-js/metadata.max.json') as {
  countries: Record<string, [string, string, string, number[], ...unknown[]]>;
  nonGeographic: Record<string, [string, string, string, number[], ...unknown[]]>;
};
const mobileExamples = require('libphonenumber-js/examples.mobile.json') as Record<string, string>;

/** A small seeded generator: the same numbers on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function digits(random: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(random() * 10));
  return s;
}

/** National numbers to try for one plan: its example, variants of it, and random numbers of its possible lengths. */
function nationalNumbersFor(random: () => number, example: string | undefined, lengths: readonly number[]): string[] {
  const out: string[] = [];
  if (example) {
    out.push(example);
    for (let i = 0; i < 12; i++) out.push(example.slice(0, -4) + digits(random, 4));
    for (let i = 0; i < 6; i++) out.push(digits(random, 1) + example.slice(1));
    for (let i = 0; i < 6; i++) out.push(digits(random, 2) + example.slice(2, -3) + digits(random, 3));
  }
  for (const length of lengths) for (let i = 0; i < 25; i++) out.push(digits(random, length));
  return out;
}

/** What the library itself gives: its type, and the digit groups of its international format after the calling code. */
function library(n: NonNullable<ReturnType<typeof parsePhoneNumberFromString>>): { type: string | undefined; groups: string[] } {
  const groups = n
    .formatInternational()
    .split(/\D+/)
    .filter((g) => g !== '');
  return { type: n.getType(), groups: groups.slice(1) };
}

describe('number plans compiled once answer as libphonenumber-js does', () => {
  it('gives the same type and grouping for numbers of every country and non-geographic calling code', () => {
    const random = prng(20261203);
    const plans: { label: string; callingCode: string; example: string | undefined; lengths: number[] }[] = [];
    for (const [country, plan] of Object.entries(metadata.countries))
      plans.push({ label: country, callingCode: getCountryCallingCode(country as CountryCode), example: mobileExamples[country], lengths: plan[3] ?? [] });
    for (const [callingCode, plan] of Object.entries(metadata.nonGeographic))
      plans.push({ label: `+${callingCode}`, callingCode, example: undefined, lengths: plan[3] ?? [] });
    assert.ok(plans.length > 240, `only ${plans.length} plans in the metadata`);

    let compared = 0;
    let valid = 0;
    let grouped = 0;
    const types = new Set<string>();
    const mismatches: string[] = [];
    for (const p of plans) {
      for (const national of nationalNumbersFor(random, p.example, p.lengths)) {
        const n = parsePhoneNumberFromString(`+${p.callingCode}${national}`);
        if (!n) continue;
        compared++;
        const expected = library(n);
        const type = numberTypeOfParsed(n);
        const groups = internationalGroupsOf(n);
        if (type !== expected.type || groups.join(' ') !== expected.groups.join(' '))
          mismatches.push(`${p.label} ${n.number}: type ${type} / ${expected.type}, groups ${groups.join(' ')} / ${expected.groups.join(' ')}`);
        if (expected.type !== undefined) valid++;
        if (expected.groups.length >= 2) grouped++;
        types.add(expected.type ?? 'invalid');
      }
    }
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${compared} numbers differ`);
    // The numbers tried must reach the answers that matter, or the comparison proves little.
    assert.ok(compared > 20_000, `only ${compared} numbers compared`);
    assert.ok(valid > 5_000, `only ${valid} valid numbers among them`);
    assert.ok(grouped > 5_000, `only ${grouped} numbers with two or more groups`);
    for (const t of ['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE', 'TOLL_FREE', 'PREMIUM_RATE', 'invalid'])
      assert.ok(types.has(t), `no ${t} number among the ${compared} tried (types seen: ${[...types].join(', ')})`);
  });

  it('reads a number written in E.164 as the library parses it, or leaves it to the library', () => {
    const random = prng(20261204);
    let compared = 0;
    let valid = 0;
    let validLeftToLibrary = 0;
    let shared = 0;
    const mismatches: string[] = [];
    const inputs: string[] = [];
    for (const [country, plan] of Object.entries(metadata.countries)) {
      const cc = getCountryCallingCode(country as CountryCode);
      for (const national of nationalNumbersFor(random, mobileExamples[country], plan[3] ?? [])) {
        inputs.push(`+${cc}${national}`);
        // A national prefix left in, a digit too many or too few, a calling code alone.
        if (random() < 0.2) inputs.push(`+${cc}0${national}`, `+${cc}${national}${digits(random, 1)}`, `+${cc}${national.slice(1)}`, `+${cc}`);
      }
    }
    for (const [callingCode, plan] of Object.entries(metadata.nonGeographic))
      for (const national of nationalNumbersFor(random, undefined, plan[3] ?? [])) inputs.push(`+${callingCode}${national}`);
    for (let i = 0; i < 3_000; i++) inputs.push(`+${digits(random, 4 + Math.floor(random() * 17))}`); // any digits at all
    for (const text of inputs) {
      const fast = parsedE164(text);
      const lib = parsePhoneNumberFromString(text);
      if (lib?.isValid()) valid++;
      if (fast === undefined) {
        if (lib?.isValid()) validLeftToLibrary++;
        continue;
      }
      compared++;
      const got = fast === null ? 'none' : `${fast.number} ${fast.countryCallingCode} ${fast.nationalNumber} ${fast.country ?? '-'}`;
      const expected = lib === undefined ? 'none' : `${lib.number} ${lib.countryCallingCode} ${lib.nationalNumber} ${lib.country ?? '-'}`;
      if (got !== expected) mismatches.push(`${text}: ${got} / library ${expected}`);
      if (fast && ['1', '7', '44', '47', '61', '262', '590', '599'].includes(fast.countryCallingCode)) shared++;
    }
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${compared} numbers differ`);
    assert.ok(compared > 25_000, `only ${compared} numbers compared`);
    assert.ok(shared > 2_000, `only ${shared} numbers of shared calling codes`);
    // The library answers only where the main country's national prefix for parsing matches the number's start (a
    // trunk 0 left in, `1…` under +1, `8…` under +7): among the random numbers tried, some; among real ones, none.
    assert.ok(validLeftToLibrary < valid * 0.15, `${validLeftToLibrary} of ${valid} valid numbers left to the library`);
    const examplesLeft = Object.entries(mobileExamples)
      .map(([country, national]) => `+${getCountryCallingCode(country as CountryCode)}${national}`)
      .filter((e164) => parsedE164(e164) === undefined);
    assert.deepEqual(examplesLeft, [], "every country's mobile example takes the fast path");
  });

  it('reads a number written nationally as the library parses it with the region, or leaves it to the library', () => {
    const random = prng(20261207);
    const inputs: [text: string, region: string][] = [];
    const plan = new Metadata() as unknown as {
      selectNumberingPlan(c: string): void;
      numberingPlan: { nationalPrefix(): string | undefined; IDDPrefix(): string | undefined };
    };
    for (const [country, lengths] of Object.entries(metadata.countries).map(([c, p]) => [c, p[3] ?? []] as const)) {
      const cc = getCountryCallingCode(country as CountryCode);
      plan.selectNumberingPlan(country);
      const trunk = plan.numberingPlan.nationalPrefix() ?? '0';
      for (const national of nationalNumbersFor(random, mobileExamples[country], lengths)) {
        inputs.push([`${trunk}${national}`, country], [national, country]);
        // A digit too many or too few, another prefix, an exit code, the calling code, the calling code after the trunk.
        if (random() < 0.3)
          inputs.push(
            [`${trunk}${national}${digits(random, 1)}`, country],
            [`${trunk}${national.slice(1)}`, country],
            [`${digits(random, 1)}${national}`, country],
            [`00${cc}${national}`, country],
            [`${cc}${national}`, country],
            [`${trunk}${cc}${national}`, country],
          );
      }
      for (let i = 0; i < 20; i++) inputs.push([digits(random, 3 + Math.floor(random() * 14)), country]);
    }
    // What the traffic generator writes nationally (what the benchmarks' high-cardinality set carries).
    const generated = new TrafficGenerator({
      seed: 20261207,
      scenario: 'normal',
      startTime: Date.UTC(2026, 11, 1),
      ratePerSecond: 100,
      freshSubscribers: true,
    });
    let generatedNational = 0;
    for (const r of generated.take(6_000)) {
      const compact = r.recipient.replace(/\D/g, '');
      if (!r.recipient.trim().startsWith('+') && r.destination_country) {
        inputs.push([compact, r.destination_country]);
        generatedNational++;
      }
    }
    assert.ok(generatedNational > 1_000, `only ${generatedNational} national numbers from the generator`);

    let compared = 0;
    let validFast = 0;
    let validLeft = 0;
    let trunkValidFast = 0;
    let trunkValid = 0;
    const mismatches: string[] = [];
    for (const [text, region] of inputs) {
      const fast = parsedNational(text, region);
      const lib = parsePhoneNumberFromString(text, region as CountryCode);
      const isValid = lib?.isValid() === true;
      if (fast === undefined) {
        if (isValid) validLeft++;
        continue;
      }
      compared++;
      if (isValid) validFast++;
      const got = fast === null ? 'none' : `${fast.number} ${fast.countryCallingCode} ${fast.nationalNumber} ${fast.country ?? '-'}`;
      const expected = lib === undefined ? 'none' : `${lib.number} ${lib.countryCallingCode} ${lib.nationalNumber} ${lib.country ?? '-'}`;
      if (got !== expected) mismatches.push(`${region} ${text}: ${got} / library ${expected}`);
    }
    for (const [text, region] of inputs.slice(-generatedNational)) {
      if (!parsePhoneNumberFromString(text, region as CountryCode)?.isValid()) continue;
      trunkValid++;
      if (parsedNational(text, region) !== undefined) trunkValidFast++;
    }
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${compared} numbers differ`);
    assert.ok(compared > 40_000, `only ${compared} numbers compared`);
    assert.ok(validFast > 10_000, `only ${validFast} valid numbers took the fast path (${validLeft} left to the library)`);
    // The point of it: the national numbers traffic carries take the fast path.
    assert.ok(trunkValidFast > trunkValid * 0.8, `${trunkValidFast} of ${trunkValid} valid generated national numbers took the fast path`);
  });

  it('keeps the number ranges of the documented examples', () => {
    const range = (e164: string) => numberRangeOf(parsePhoneNumberFromString(e164)!);
    assert.equal(range('+60177654321'), '6017');
    assert.equal(range('+14155550123'), '1415');
    assert.equal(range('+6591234567'), '659123');
    assert.equal(range('+442079460958'), '4420');
  });
});
