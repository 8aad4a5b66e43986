import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CdrEvent } from '../../../../services/core/cdr/cdrEvent.ts';
import { getCountries } from 'libphonenumber-js/max';
import { identifierInText, validateCdr } from '../../../../services/core/cdr/validate.ts';
import { cdrEvent } from '../../../support/cdrEvents.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';

const now = Date.UTC(2026, 10, 29, 12);
const ok: CdrEvent = cdrEvent({ event_time: now - 1000, submitted_at: now - 1000, delivered_at: now, client_ip: null });
const limits = { now, maxFutureSkewMs: 24 * 3600 * 1000 };

describe('validateCdr', () => {
  it('accepts a good record', () => validateCdr(ok, limits));
  it('accepts a currency code in any case, as the destination country (found from outside: eur was dead-lettered)', () => {
    for (const currency of ['eur', 'Eur', 'vnd']) validateCdr({ ...ok, currency }, limits);
  });
  it('accepts a record 10 years and 11 months old (still inside its traffic window)', () => validateCdr({ ...ok, event_time: Date.UTC(2016, 0, 1) }, limits));
  it('accepts every region the phone numbering metadata knows as the destination country, Kosovo included', () => {
    // A routing layer that derives the destination from the number gets these codes; XK, AC and TA are not in ISO's list.
    const refused = getCountries().filter((c) => {
      try {
        validateCdr({ ...ok, destination_country: c.toLowerCase() }, limits);
        validateCdr({ ...ok, destination_country: c }, limits);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(refused, []);
    assert.ok(getCountries().includes('XK'));
  });

  const bad: [string, Partial<CdrEvent>, string][] = [
    ['empty cdr_id', { cdr_id: '' }, 'validation_failed'],
    ['cdr_id with spaces', { cdr_id: 'a b' }, 'validation_failed'],
    ['empty account', { account_id: '' }, 'validation_failed'],
    ['blank recipient', { recipient: '  ' }, 'validation_failed'],
    ['blank sender', { sender: '' }, 'validation_failed'],
    // Nothing left once invisible characters go: every such value would share one token (found from outside: U+3164).
    ['a recipient of Hangul fillers', { recipient: '\u3164\u3164' }, 'validation_failed'],
    ['a sender of zero-width spaces and NULs', { sender: '\u200b\u0000 \u200b' }, 'validation_failed'],
    ['a sender of an Arabic letter mark and a variation selector', { sender: '\u061c\ufe0f' }, 'validation_failed'],
    ['event_time before 2000', { event_time: Date.UTC(1999, 11, 31) }, 'timestamp_out_of_range'],
    ['event_time beyond the skew', { event_time: now + 25 * 3600 * 1000 }, 'timestamp_out_of_range'],
    ['event_time in 2200', { event_time: Date.UTC(2200, 0, 1) }, 'timestamp_out_of_range'],
    ['event_time past its 10-year window', { event_time: Date.UTC(2015, 11, 31) }, 'timestamp_out_of_range'],
    ['negative segments', { segments: -1 }, 'validation_failed'],
    ['negative duration', { duration_ms: -5 }, 'validation_failed'],
    ['lower-case currency word', { currency: 'euro' }, 'validation_failed'],
    ['three-letter country', { destination_country: 'MYS' }, 'validation_failed'],
    ['two-digit mcc', { mcc: '50' }, 'validation_failed'],
    ['empty provider', { provider_id: '' }, 'validation_failed'],
    // What an Avro int/long can carry on the wire but a CDR cannot (avsc does not range-check ints).
    ['segments of 2^31 (a crafted int)', { segments: 2 ** 31 }, 'validation_failed'],
    ['size_bytes of 2^40 (a crafted int)', { size_bytes: 2 ** 40 }, 'validation_failed'],
    ['fractional segments', { segments: 1.5 }, 'validation_failed'],
    ['duration beyond a safe integer', { duration_ms: 2 ** 60 }, 'validation_failed'],
    ['a price of 10^16 micro-units', { price: 10 ** 16 }, 'validation_failed'],
    ['a cost of -10^16 micro-units', { cost: -(10 ** 16) }, 'validation_failed'],
    ['a country that is not one (xx)', { destination_country: 'xx' }, 'validation_failed'],
    ['a region that is no country (EU)', { destination_country: 'EU' }, 'validation_failed'],
    ['a currency that is not one (XYZ)', { currency: 'XYZ' }, 'validation_failed'],
    ['no currency with a price', { currency: '', price: 25_000, cost: 0 }, 'validation_failed'],
    ['no currency with a cost', { currency: '', price: 0, cost: 12_000 }, 'validation_failed'],
    ['a currency of spaces', { currency: '   ' }, 'validation_failed'],
    ['delivered in 9999', { delivered_at: Date.UTC(9999, 11, 31) }, 'timestamp_out_of_range'],
    ['submitted beyond the skew', { submitted_at: now + 2 * 24 * 3600 * 1000 }, 'timestamp_out_of_range'],
    ['an account id that is an email address', { account_id: 'alice@example.com' }, 'validation_failed'],
    ['a cdr_id that is a phone number', { cdr_id: '+60111222333' }, 'validation_failed'],
    ['an account id that is a phone number', { account_id: '+60123456789' }, 'validation_failed'],
    ['an account id with a space', { account_id: 'acct 1' }, 'validation_failed'],
    ['a provider id that is a tel: URI', { provider_id: 'tel:+60123456789' }, 'validation_failed'],
    ['an account id that is a tel: URI without its +', { account_id: 'tel:60123456789' }, 'validation_failed'],
    ['a provider id that is a TEL: URI without its +', { provider_id: 'TEL:60123456789' }, 'validation_failed'],
    ['an account id that is a Tel: URI', { account_id: 'Tel:60123456789' }, 'validation_failed'],
    ['an account id that is a tel: URI with separators', { account_id: 'tel:+60-12-345-6789' }, 'validation_failed'],
    ['an account id that is a number with dots', { account_id: '+60.123.456.789' }, 'validation_failed'],
    ['a cdr_id that is a number in brackets', { cdr_id: 'tel:(60)123456789' }, 'validation_failed'],
    ['a provider id with a control character', { provider_id: 'op\u0000my' }, 'validation_failed'],
    // Bytes that were not UTF-8, as the Avro decoder gives them: 0xff 0xfe 0xc3 '(' and 0xc0 0xaf.
    ['a sender that was not UTF-8', { sender: Buffer.from([0xff, 0xfe, 0xc3, 0x28]).toString('utf8') }, 'validation_failed'],
    ['a recipient that was not UTF-8', { recipient: `+6012${Buffer.from([0xc0, 0xaf]).toString('utf8')}345` }, 'validation_failed'],
  ];
  for (const [what, patch, code] of bad) {
    it(`rejects ${what} (${code})`, () => {
      assert.throws(
        () => validateCdr({ ...ok, ...patch }, limits),
        (e: unknown) => e instanceof PipelineError && e.code === code,
      );
    });
  }
  it('accepts a SIP Call-ID as cdr_id (what voice switches use), though it looks like an address', () => {
    for (const id of ['a84b4c76e66710@pc33.atlanta.com', 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6@10.0.0.1'])
      assert.doesNotThrow(() => validateCdr({ ...ok, cdr_id: id }, limits));
  });
  it('rejects a negative price or cost, saying a credit is an adjustment (it lowered invoices and reconciliations)', () => {
    for (const patch of [{ price: -1 }, { cost: -25_000 }, { price: -25_000, cost: -12_000 }]) {
      assert.throws(
        () => validateCdr({ ...ok, ...patch }, limits),
        (e: unknown) => e instanceof PipelineError && e.code === 'validation_failed' && /price\/cost: negative .*billing adjustment/.test(e.message),
      );
    }
    assert.doesNotThrow(() => validateCdr({ ...ok, price: 0, cost: 0 }, limits));
  });
  it('accepts a record without a price: no currency, price and cost 0 (billing rates it by its plan)', () => {
    assert.doesNotThrow(() => validateCdr({ ...ok, currency: '', price: 0, cost: 0 }, limits));
  });
  it('reasons name the field, never the value', () => {
    try {
      validateCdr({ ...ok, recipient: '   ', sender: '+60199998888' }, limits);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof PipelineError);
      assert.match(e.message, /^recipient/);
      assert.ok(!e.message.includes('60199998888'));
    }
  });
});

describe('identifierInText', () => {
  it('finds an email address or an internationally written number anywhere in free text, in any width or script', () => {
    for (const text of [
      're +60 12-345 6789',
      'caller +60123456789 said',
      '+44 (0) 7700 900 123',
      'tel:+1-202-555-0143',
      'TEL:+33612345678',
      '＋６０１２３４５６７８９',
      '+٦٠١٢٣٤٥٦٧٨٩',
      'dispute with bob.party@example.org',
      'alice＠example.com',
      'Jörg@Bücher.example',
      'x@y.co',
      '(contact: alice@example.com)',
      // Found in review: invisible characters, typographic dashes, brackets.
      'ZW +6\u200b0123456789',
      '+60 12\u2013345\u20136789',
      '+60 12\u00ad345 6789',
      '+60\u2060123456789',
      '+60 12\u2011345\u22126789',
      '+(60) 12-345 6789',
      '+  60 12 345 6789',
      // Found from outside (2026-12-06): slashes, which a law-enforcement request reads as the number.
      're +60/12/345/6789',
      '+60/123456789',
      // Found from outside (2026-12-07): an exit code for the +, the + left out, an address spelt to dodge a filter.
      '0060123456789',
      'ref 0060 12 345 6789 2026',
      '011 44 20 7946 0018',
      'case 00 44 7911 123456',
      '60123456789',
      'caller 447911123456 said',
      '14155552671',
      '٠٠٦٠١٢٣٤٥٦٧٨٩',
      'alice (at) example.com',
      'alice [at] example [dot] com',
      'bob {at} mail.example.org',
      '0011 44 20 7946 0018',
      'ref+60123456789',
      'A+60123456789',
      '1+60123456789',
      'x+60123456789y',
      'case1+44 7911 123456',
      'mailto:bob%40example.com',
    ]) {
      assert.equal(identifierInText(text), true, text);
    }
  });
  it('leaves alone case numbers, statutes and sums', () => {
    for (const text of [
      'KL-2026-0042',
      'Warrant 0012345678',
      '2026/123456789',
      'Art. 15(1) Directive 2002/58/EC',
      'Criminal Procedure Code s.116B',
      'Europol + Interpol (2 agencies)',
      'case +12345',
      'a@b',
      '@handle',
      'price 1+1',
      // Found in review: legal references joined with +, a time zone, a word ending in "tel", sections with @.
      'D.Lgs. 196/2003 + 101/2018',
      'KL-2026-0042+2026-0043',
      'Regulation (EU) 2016/679 + 2018/1725',
      'Case 12345/2026 + 12346/2026',
      'Hotel:1234567',
      'issued GMT+8 2026.12.06',
      'Order 12@p.34',
      'ref@2026.05',
      'Directive 2002/58 +2/3',
      'ref 2016/679 + 2018/1725/2019',
      // Digit runs the numbering plan does not take for a (mobile) number, and references written with separators.
      'Warrant 00123',
      'invoice 20261207001',
      'Docket 2025000012345',
      'No. 1234567890',
      'CR-2026-1234-567',
      'CASE-60123456789',
      '2026/60123456789',
      'meeting at example.com',
      'subscriber 0123456789 case',
      // Found in review: Austria's code in brackets in legal text, a time.
      'StPO § 135 (AT) Abs. 2',
      'Bundeskriminalamt (AT) Wien. Referat 3',
      'meeting (at) 10.30',
    ]) {
      assert.equal(identifierInText(text), false, text);
    }
  });
});
