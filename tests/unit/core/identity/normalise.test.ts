import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdentifierNormaliser, normaliseEmail, normaliseIdentifier, normalisePhone, recipientTypeOf } from '../../../../services/core/identity/normalise.ts';

describe('normalisePhone', () => {
  const same: [string, string | undefined, string][] = [
    ['+60 12-345 6789', undefined, '+60123456789'],
    ['0060123456789', 'MY', '+60123456789'],
    ['0060123456789', undefined, '+60123456789'],
    ['60123456789', 'MY', '+60123456789'],
    ['012-345 6789', 'MY', '+60123456789'],
    ['(012) 345-6789', 'MY', '+60123456789'],
    ['+60123456789', 'GB', '+60123456789'],
    [' +60 12 345 6789 ', 'my', '+60123456789'],
    ['+1 (415) 555-2671', 'US', '+14155552671'],
    ['415-555-2671', 'US', '+14155552671'],
    ['07911 123456', 'GB', '+447911123456'],
    ['+44 7911 123456', undefined, '+447911123456'],
    ['4915112345678', 'MY', '+4915112345678'],
    ['0151 12345678', 'DE', '+4915112345678'],
    ['+49.151.1234.5678', undefined, '+4915112345678'],
  ];
  for (const [raw, country, e164] of same) {
    it(`${JSON.stringify(raw)} with ${country ?? 'no country'} → ${e164}`, () => {
      const n = normalisePhone(raw, country);
      assert.equal(n.valid, true);
      assert.equal(n.value, e164);
      assert.equal(n.type, 'msisdn');
    });
  }

  it('gives one value for the three spellings of one Malaysian number (docs/data-protection.md)', () => {
    const forms = ['+60 12-345 6789', '0060123456789', '60123456789'].map((f) => normalisePhone(f, 'MY').value);
    assert.deepEqual(new Set(forms), new Set(['+60123456789']));
  });

  it('records the country of the number, not of the default region', () => {
    assert.equal(normalisePhone('+14155552671', 'MY').country, 'US');
  });

  const bad = ['abc', '12', '+999 123', '0000', '+60 12', ''];
  for (const raw of bad) {
    it(`flags ${JSON.stringify(raw)} as unparseable and keeps it as given (trimmed)`, () => {
      const n = normalisePhone(raw, 'MY');
      assert.equal(n.valid, false);
      assert.equal(n.value, raw.trim());
    });
  }

  it('a national number without its country is unparseable, not guessed', () => {
    assert.equal(normalisePhone('012-345 6789', undefined).valid, false);
  });
});

describe('normaliseEmail', () => {
  const cases: [string, string][] = [
    ['Alice@Example.COM', 'alice@example.com'],
    ['  bob@example.org \t', 'bob@example.org'],
    ['Jörg@Bücher.example', 'jörg@xn--bcher-kva.example'],
    ['user@MÜNCHEN.example', 'user@xn--mnchen-3ya.example'],
    ['x@xn--mnchen-3ya.example', 'x@xn--mnchen-3ya.example'],
    ['first.last+tag@sub.example.co.uk', 'first.last+tag@sub.example.co.uk'],
  ];
  for (const [raw, want] of cases) {
    it(`${JSON.stringify(raw)} → ${want}`, () => {
      const n = normaliseEmail(raw);
      assert.equal(n.valid, true);
      assert.equal(n.value, want);
    });
  }
  it('IDN in Unicode and in punycode give one value', () => {
    assert.equal(normaliseEmail('user@münchen.example').value, normaliseEmail('USER@xn--mnchen-3ya.example').value);
  });
  for (const raw of ['no-at-sign', '@example.com', 'user@', 'a b@example.com', 'two@@example.com']) {
    it(`flags ${JSON.stringify(raw)}`, () => {
      const n = normaliseEmail(raw);
      assert.equal(n.valid, false);
      assert.equal(n.value, raw.trim());
    });
  }
});

describe('other identifiers and types', () => {
  it('shortcodes keep digits only', () => {
    assert.deepEqual(normaliseIdentifier(' 12 345 ', 'shortcode'), { type: 'shortcode', value: '12345', valid: true, country: '' });
  });
  it('alphanumeric sender ids are trimmed, case kept', () => {
    assert.equal(normaliseIdentifier(' MyBrand ', 'alphanumeric').value, 'MyBrand');
  });
  describe("a person's number or address sent as a sender id is that person's identifier", () => {
    for (const [raw, type, value] of [
      ['+60 12-345 6789', 'alphanumeric', '+60123456789'],
      ['0060123456789', 'alphanumeric', '+60123456789'],
      ['60123456789', 'alphanumeric', '+60123456789'],
      ['447911123456', 'shortcode', '+447911123456'],
      ['+4915112345678', 'shortcode', '+4915112345678'],
    ] as const)
      it(`${JSON.stringify(raw)} as ${type} → msisdn ${value}`, () => {
        assert.deepEqual({ type: normaliseIdentifier(raw, type, 'MY').type, value: normaliseIdentifier(raw, type, 'MY').value }, { type: 'msisdn', value });
      });
    it('an address as a sender id → the normalised email', () => {
      assert.deepEqual(normaliseIdentifier(' Jörg@Bücher.example ', 'alphanumeric'), {
        type: 'email',
        value: 'jörg@xn--bcher-kva.example',
        valid: true,
        country: '',
      });
    });
    // Brands, real shortcodes, national forms (the sender's region is unknown) and invalid numbers stay what they were.
    for (const [raw, type] of [
      ['ACMEBANK', 'alphanumeric'],
      ['1-800-FLOWERS', 'alphanumeric'],
      ['012-345 6789', 'alphanumeric'],
      ['12345678', 'alphanumeric'],
      ['12345678', 'shortcode'],
      ['+999123456789', 'alphanumeric'],
      ['info@localhost', 'alphanumeric'],
      ['60123456789', 'other'],
    ] as const)
      it(`${JSON.stringify(raw)} as ${type} stays ${type}`, () => {
        assert.equal(normaliseIdentifier(raw, type, 'MY').type, type);
      });
  });
  it('infers the recipient type from channel and shape', () => {
    assert.equal(recipientTypeOf('email', 'a@b.example'), 'email');
    assert.equal(recipientTypeOf('push', 'device-token'), 'other');
    assert.equal(recipientTypeOf('sms', '12345'), 'shortcode');
    assert.equal(recipientTypeOf('sms', '+60123456789'), 'msisdn');
    assert.equal(recipientTypeOf('whatsapp', '0060123456789'), 'msisdn');
  });
});

describe('IdentifierNormaliser cache', () => {
  it('returns the same answers as the uncached function and stays bounded', () => {
    const n = new IdentifierNormaliser(3);
    for (const raw of ['+60 12-345 6789', '0060123456789', '012-345 6789', '+447911123456', '+60 12-345 6789']) {
      assert.deepEqual(n.normalise(raw, 'msisdn', 'MY'), normaliseIdentifier(raw, 'msisdn', 'MY'));
    }
    assert.ok(n.size <= 3);
  });
  it('keys the cache by default country too', () => {
    const n = new IdentifierNormaliser();
    assert.equal(n.normalise('0123456789', 'msisdn', 'MY').value, '+60123456789');
    assert.notEqual(n.normalise('0123456789', 'msisdn', 'GB').value, '+60123456789');
  });
});
