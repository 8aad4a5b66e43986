import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseIsoInstant } from '../../../../services/core/index.ts';

describe('strict ISO 8601 instants', () => {
  const good: [string, string][] = [
    ['2026-12-01T10:20:30Z', '2026-12-01T10:20:30.000Z'],
    ['2026-12-01T10:20:30.123Z', '2026-12-01T10:20:30.123Z'],
    ['2026-12-01T10:20Z', '2026-12-01T10:20:00.000Z'],
    ['2026-12-01T12:20:30+02:00', '2026-12-01T10:20:30.000Z'],
    ['2026-12-01T00:20:30-10:00', '2026-12-01T10:20:30.000Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['2026-12-01', '2026-12-01T00:00:00.000Z'],
  ];
  for (const [text, iso] of good) it(`reads ${text}`, () => assert.equal(new Date(parseIsoInstant(text)!).toISOString(), iso));

  for (const text of [
    '2026-02-30T00:00:00Z',
    '2027-02-29T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '1999-12-31T23:59:59Z',
    '2026-13-01T00:00:00Z',
    '2026-12-01T24:00:00Z',
    '2026-12-01T10:60:00Z',
    '2026-12-01T10:20:30',
    'yesterday',
    '1733050000000',
    '2026-12-01T10:20:30+25:00',
    ' 2026-12-01T10:20:30Z',
  ]) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseIsoInstant(text), undefined));
  }
});
