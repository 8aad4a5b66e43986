import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isoInstantProblem, parseIsoInstant, quotedValue } from '../../../../services/core/index.ts';

describe('strict ISO 8601 instants', () => {
  const good: [string, string][] = [
    ['2026-12-01T10:20:30Z', '2026-12-01T10:20:30.000Z'],
    ['2026-12-01T10:20:30.123Z', '2026-12-01T10:20:30.123Z'],
    ['2026-12-01T10:20Z', '2026-12-01T10:20:00.000Z'],
    ['2026-12-01T12:20:30+02:00', '2026-12-01T10:20:30.000Z'],
    ['2026-12-01T00:20:30-10:00', '2026-12-01T10:20:30.000Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['2026-12-01', '2026-12-01T00:00:00.000Z'],
    // Finer digits that are zeros say nothing more.
    ['2026-12-01T10:20:30.5Z', '2026-12-01T10:20:30.500Z'],
    ['2026-12-01T10:20:30.123000Z', '2026-12-01T10:20:30.123Z'],
    ['2026-12-31T23:59:59.999000000Z', '2026-12-31T23:59:59.999Z'],
    // Finer than a millisecond: rounded up, never cut (cut, a range's edge moved before what was asked; found from
    // outside). Records have whole milliseconds and ranges are [from, to): rounding up selects exactly the same records.
    ['2026-01-01T00:00:00.0009Z', '2026-01-01T00:00:00.001Z'],
    ['2025-12-31T23:59:59.9999Z', '2026-01-01T00:00:00.000Z'],
    ['2026-12-01T10:20:30.123000001Z', '2026-12-01T10:20:30.124Z'],
    ['2026-12-01T12:20:30.123456+02:00', '2026-12-01T10:20:30.124Z'],
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

describe('what a refusal quotes', () => {
  it('quotes a refused value unless it may be an identifier (an address, or a number in any spelling)', () => {
    for (const v of ['+60123456789', '0060 12-345 6789', '(030) 1234567', 'alice@example.com', 'x@y', '12345']) assert.equal(quotedValue(v), 'the value', v);
    // Compatibility forms and URIs are identifiers all the same (found in review: a full-width @ came back in a 404).
    for (const v of ['alice＠example.com', '＋６０ １２３ ４５６７８９', 'tel:1234;phone-context=pbx.example', 'SIP:alice', ' mailto:bob'])
      assert.equal(quotedValue(v), 'the value', v);
    for (const v of ['2026-13-01T00:00:00Z', 'yesterday', '1234', 'day,week', 'h-404']) assert.equal(quotedValue(v), JSON.stringify(v), v);
    // A number inside other text is not repeated either (found from outside: `x60123456789x` came back in a 404).
    for (const v of ['x60123456789x', 'hold-60123456789', 'a1234567', '+60 12-345 6789x', 'h-60-123-456-789', '+٦٠١٢٣٤٥٦٧٨٩', '٠١٢٣٤'])
      assert.equal(quotedValue(v), 'the value', v);
    // Any dash, the minus sign and invisible characters separate digits too (found from outside: `012–345–6789` was
    // quoted in a 404, and a law-enforcement request reads it as the number).
    for (const v of ['012–345–6789', '012—345—6789', '012\u2212345\u22126789', '012\u200b345\u200b6789', 'x012–345–6789', '+60\u2011123\u2011456']) {
      assert.equal(quotedValue(v), 'the value', v);
    }
    // Underscores, commas and semicolons separate digits too (found from outside, 2026-12-07: `lea-0123_456_789`).
    for (const v of ['lea-0123_456_789', '012,345,6789', 'x012;345;6789x', '0123_456_789']) assert.equal(quotedValue(v), 'the value', v);
    // The API's own ids are quoted whole, whatever digits their UUID has.
    for (const v of ['lea-12345678-1234-4123-8123-123456789012', 'hold-00000000-0000-0000-0000-000000000000'])
      assert.equal(quotedValue(v), JSON.stringify(v), v);
    // An id the API gives is quoted whole (found from outside: a 41-character id lost its last character, unsaid).
    const id = 'dsar-b70895a4-97d0-4fbe-99dd-0e2dcdb43233';
    assert.equal(quotedValue(id), JSON.stringify(id));
    assert.equal(quotedValue('x'.repeat(100)), `${JSON.stringify('x'.repeat(64))} (cut at 64 characters)`);
    assert.doesNotMatch(isoInstantProblem('from', '+60123456789'), /6012/);
  });
});
