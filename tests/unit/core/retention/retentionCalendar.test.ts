import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CalendarMemo,
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

describe('CalendarMemo: the functions above, answered from the last month and day', () => {
  it('gives what monthKeyOf, identifiersExpired and usageExpired give, for every instant and any order', () => {
    const memo = new CalendarMemo();
    const day = 86_400_000;
    // Instants at and around the edges that matter: month ends (31st, 30th, Feb 28/29 of leap and common years), the
    // year end, before 1970, and the millisecond either side; then random instants in runs (as a batch) and alone.
    const edges: number[] = [];
    for (const at of ['2024-02-29', '2023-02-28', '2026-12-31', '2026-11-30', '2027-01-01', '1969-12-31', '2000-02-29', '2100-02-28', '2028-02-29']) {
      const start = Date.parse(`${at}T00:00:00Z`);
      for (const t of [start - 1, start, start + 1, start + day / 2, start + day - 1, start + day, start + day + 1]) edges.push(t);
    }
    let seed = 20261206;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const instants = [...edges];
    for (let run = 0; run < 400; run++) {
      const base = Date.parse('1960-01-01T00:00:00Z') + Math.floor(rand() * 150 * 365 * day);
      const length = 1 + Math.floor(rand() * 30);
      for (let i = 0; i < length; i++) instants.push(base + Math.floor((rand() - 0.3) * 3 * day));
    }
    instants.push(Number.NaN);
    const nows = [Date.parse('2026-12-06T04:00:00Z'), Date.parse('2029-03-01T00:00:00Z'), Date.parse('2100-01-01T00:00:00Z')];
    let checked = 0;
    for (const t of instants)
      for (const now of nows) {
        assert.equal(memo.monthOf(t), monthKeyOf(t), `month of ${t}`);
        assert.equal(memo.identifiersExpired(t, now), identifiersExpired(t, now), `identifiers of ${t} at ${now}`);
        assert.equal(memo.usageExpired(t, now), usageExpired(t, now), `usage of ${t} at ${now}`);
        // At the cutoff itself, to the millisecond: the boundaries agree exactly.
        const cut = usageCutoff(t);
        if (Number.isFinite(cut)) for (const n of [cut - 1, cut]) assert.equal(memo.usageExpired(t, n), usageExpired(t, n), `usage of ${t} at ${n}`);
        const idCut = identifierCutoff(t);
        if (Number.isFinite(idCut))
          for (const n of [idCut - 1, idCut]) assert.equal(memo.identifiersExpired(t, n), identifiersExpired(t, n), `identifiers of ${t} at ${n}`);
        checked++;
      }
    assert.ok(checked > 3_000, String(checked));
  });
});
