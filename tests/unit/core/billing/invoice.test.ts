import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readInvoiceText, type InvoiceReading } from '../../../../services/core/index.ts';

const read = (text: string | Uint8Array, month = '2026-12'): InvoiceReading =>
  readInvoiceText(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, month);
const problemsOf = (r: InvoiceReading): string => (r.ok ? assert.fail('read as valid') : r.problems.join('\n'));

describe('an invoice as reconciliation reads it', () => {
  it('reads the lines, whatever the spelling of the header, line ends and BOM', () => {
    for (const text of [
      'day,destination_country,currency,cost\n2026-12-06,ID,USD,36.57567\n',
      '\ufeffDay,Country,Currency,Cost\r\n2026-12-06,id,usd,36.575670\r\n\r\n',
      '"date","destination_country","currency","cost","note"\n"2026-12-06","ID","USD","36.57567","free, text"\n',
    ]) {
      const r = read(text);
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.lines, [{ day: '2026-12-06', destination_country: 'ID', currency: 'USD', records: null, cost_micros: 36_575_670, line: 2 }]);
    }
    // A credit, a line without country, a record count; a header alone is an invoice without lines.
    const r = read('day,destination_country,currency,cost,records\n2026-12-01,,EUR,-0.5,3\n');
    assert.ok(r.ok);
    assert.deepEqual(r.lines[0], { day: '2026-12-01', destination_country: '', currency: 'EUR', records: 3, cost_micros: -500_000, line: 2 });
    assert.deepEqual(read('day,destination_country,currency,cost\n'), { ok: true, lines: [] });
  });

  it('refuses a file that is not one, saying what it is instead of quoting it (found from outside)', () => {
    assert.match(problemsOf(read('')), /no header line .*day, destination_country, currency, cost/);
    assert.match(problemsOf(read(new Uint8Array([0xff, 0xfe, 0x64, 0x00, 0x61, 0x00]))), /UTF-16 .* UTF-8/);
    const binary = new Uint8Array(4096).map((_, i) => (i * 131 + 7) % 256);
    binary[0] = 0x80;
    assert.match(problemsOf(read(binary)), /not UTF-8 text/);
    // Valid UTF-8 that is no CSV: the control characters and quotes are not echoed.
    const junk = problemsOf(read('day,destination_country,currency,cost\n2026-12-06,I"D\u0007\u001b[2J,USD,1\n'));
    assert.match(junk, /^line 2: a quote out of place/);
    assert.ok(!junk.includes('\u0007') && !junk.includes('\u001b'), junk);
    assert.match(problemsOf(read('day,destination_country,currency,cost\n2026-12-06,ID,USD,1,2\n')), /^line 2: not as many fields as the header has columns/);
  });

  it('names a ragged line with every other bad line, not alone (found from outside: one hid eight)', () => {
    const p = problemsOf(
      read('day,destination_country,currency,cost\n2026-12-31,MY,EUR,1\n2026-12-06,ZZ,EUR,1\n2026-12-06,MY,EUR,1,2\n2026-12-06,MY\n2026-12-06,MY,XXX,1\n'),
    );
    assert.deepEqual(p.split('\n'), [
      'line 3: destination_country "ZZ" is not an ISO 3166 code (or empty: no country)',
      'line 4: not as many fields as the header has columns (comma-separated, one value per column)',
      'line 5: not as many fields as the header has columns (comma-separated, one value per column)',
      'line 6: currency "XXX" is not an ISO 4217 code',
    ]);
  });

  it('names the columns a header lacks, and what it has (a semicolon-separated export)', () => {
    const p = problemsOf(read('day;destination_country;currency;cost\n2026-12-06;ID;USD;36,5\n'));
    assert.match(p, /names no "day" or "date", no "destination_country" or "country", no "currency", no "cost" column/);
    assert.match(p, /it has: "day;destination_country;currency;cost"/);
    assert.match(
      problemsOf(read('day,country,currency,amount\n2026-12-06,ID,USD,1\n')),
      /names no "cost" column \(it has: "day", "country", "currency", "amount"\)/,
    );
    // Without its header line, the first record is read as one: a number or a date there is not quoted back.
    const headless = problemsOf(read('2026-12-01,+60123456789,USD,1\n'));
    assert.match(headless, /it has: the value, the value, "usd", "1"\)/);
    assert.doesNotMatch(headless, /60123456789/);
    // A column named twice is refused, not read as its last copy (found in review).
    assert.match(problemsOf(read('day,destination_country,currency,cost,Cost\n2026-12-06,ID,USD,1,2\n')), /names "cost" more than once/);
  });

  it('names every bad line, escaped, and stops listing at 50', () => {
    const p = problemsOf(read('day,destination_country,currency,cost\n2026-13-40,ID,USD,1\n2026-12-06,XX,U\u001bSD,1e3\n'));
    assert.match(p, /line 2: day "2026-13-40" is not a date \(YYYY-MM-DD\) of 2026-12/);
    assert.match(p, /line 3: destination_country "XX" is not an ISO 3166 code/);
    assert.match(p, /line 3: currency "U\\u001bSD" is not an ISO 4217 code/);
    assert.match(p, /line 3: cost: "1e3" is not a decimal amount/);
    const many = read(`day,destination_country,currency,cost\n${'2026-11-01,ID,USD,1\n'.repeat(80)}`);
    assert.ok(!many.ok);
    assert.equal(many.problems.length, 51);
    assert.equal(many.problems[50], '… and 30 more');
    // Lines as the file numbers them: blank lines before the header and between lines, a quoted field over two lines.
    const spaced = problemsOf(read('\n\nday,destination_country,currency,cost,note\n\n2026-12-01,ID,USD,1,"two\nlines"\n2026-12-02,ID,USD,x,\n'));
    assert.match(spaced, /^line 7: cost: "x"/);
  });
});
