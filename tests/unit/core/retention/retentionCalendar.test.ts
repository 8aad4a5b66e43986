import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  identifierCutoff,
  identifiersExpired,
  lastExpiredIdentifierMonth,
  monthKeyOf,
  monthStartOf,
  monthsInRange,
  trafficCutoff,
  usageCutoff,
  usageExpired,
} from '../../../../services/core/retention/retentionCalendar.ts';

const iso = (s: string): number => Date.parse(s);
const at = (t: number): string => new Date(t).toISOString();

describe('identifier cutoff: startOfMonth(t) + 13 months (UTC)', () => {
  const cases: [string, string][] = [
    ['2025-03-15T10:00:00.000Z', '2026-04-01T00:00:00.000Z'], // the example of docs/data-protection.md
    ['2025-03-31T23:59:59.999Z', '2026-04-01T00:00:00.000Z'], // last instant of a month
    ['2025-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z'], // first instant of the next: one month later
    ['2025-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z'], // December → January, across two year ends
    ['2026-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
    ['2024-02-29T12:00:00.000Z', '2025-03-01T00:00:00.000Z'], // leap day
    ['2024-11-30T23:59:59.999Z', '2025-12-01T00:00:00.000Z'],
  ];
  for (const [t, want] of cases) it(`${t} → ${want}`, () => assert.equal(at(identifierCutoff(iso(t))), want));

  it('last ms of a month and first ms of the next expire exactly one month apart', () => {
    const a = identifierCutoff(iso('2025-06-30T23:59:59.999Z'));
    const b = identifierCutoff(iso('2025-07-01T00:00:00.000Z'));
    assert.equal(at(a), '2026-07-01T00:00:00.000Z');
    assert.equal(at(b), '2026-08-01T00:00:00.000Z');
  });

  it('expired exactly at the cutoff, not one millisecond before', () => {
    const t = iso('2025-03-15T10:00:00.000Z');
    assert.equal(identifiersExpired(t, iso('2026-03-31T23:59:59.999Z')), false);
    assert.equal(identifiersExpired(t, iso('2026-04-01T00:00:00.000Z')), true);
  });

  it('the newest expired month at a given now', () => {
    assert.equal(lastExpiredIdentifierMonth(iso('2026-04-01T00:00:00.000Z')), '2025-03');
    assert.equal(lastExpiredIdentifierMonth(iso('2026-03-31T23:59:59.999Z')), '2025-02');
    assert.equal(lastExpiredIdentifierMonth(iso('2027-01-01T00:00:00.000Z')), '2025-12');
  });
});

describe('traffic cutoff: startOfYear(t) + 11 years (UTC)', () => {
  const cases: [string, string][] = [
    ['2025-06-01T00:00:00.000Z', '2036-01-01T00:00:00.000Z'], // the example of docs/data-protection.md
    ['2025-01-01T00:00:00.000Z', '2036-01-01T00:00:00.000Z'],
    ['2025-12-31T23:59:59.999Z', '2036-01-01T00:00:00.000Z'], // last instant of a year
    ['2026-01-01T00:00:00.000Z', '2037-01-01T00:00:00.000Z'], // first instant of the next year
    ['2024-02-29T00:00:00.000Z', '2035-01-01T00:00:00.000Z'],
  ];
  for (const [t, want] of cases) it(`${t} → ${want}`, () => assert.equal(at(trafficCutoff(iso(t))), want));
});

describe('usage cutoff: t + 3 years', () => {
  it('keeps the time of day', () => assert.equal(at(usageCutoff(iso('2025-03-15T10:11:12.345Z'))), '2028-03-15T10:11:12.345Z'));
  it('29 February maps to 28 February (never longer than 3 years, as ClickHouse addYears)', () => {
    assert.equal(at(usageCutoff(iso('2024-02-29T08:00:00.000Z'))), '2027-02-28T08:00:00.000Z');
  });
  it('into a leap year keeps 29 February only when the source had it', () => {
    assert.equal(at(usageCutoff(iso('2025-02-28T00:00:00.000Z'))), '2028-02-28T00:00:00.000Z');
  });
});

describe('months', () => {
  it('month of an instant is its UTC month', () => {
    assert.equal(monthKeyOf(iso('2025-03-31T23:59:59.999Z')), '2025-03');
    assert.equal(monthKeyOf(iso('2025-04-01T00:00:00.000Z')), '2025-04');
  });
  it('months in a range, end exclusive', () => {
    assert.deepEqual(monthsInRange(iso('2024-11-15T00:00:00Z'), iso('2025-02-01T00:00:00Z')), ['2024-11', '2024-12', '2025-01']);
    assert.deepEqual(monthsInRange(iso('2025-01-01T00:00:00Z'), iso('2025-01-01T00:00:00Z')), []);
  });
  it('rejects malformed months', () => {
    assert.throws(() => monthStartOf('2025-13'), RangeError);
    assert.throws(() => monthStartOf('2025-1'), RangeError);
  });
  it(`does not depend on the process time zone (TZ=${process.env['TZ'] ?? 'unset'})`, () => {
    assert.equal(at(identifierCutoff(iso('2025-12-31T23:30:00.000Z'))), '2027-01-01T00:00:00.000Z');
    assert.equal(monthKeyOf(iso('2025-12-31T23:30:00.000Z')), '2025-12');
  });
  it('usage data expires exactly at the cutoff (29 February → 28 February)', () => {
    const t = iso('2024-02-29T08:00:00.000Z');
    assert.equal(usageExpired(t, iso('2027-02-28T07:59:59.999Z')), false);
    assert.equal(usageExpired(t, iso('2027-02-28T08:00:00.000Z')), true);
  });
});
