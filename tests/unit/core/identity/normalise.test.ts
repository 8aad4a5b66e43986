import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  blankIdentifier,
  cleanIdentifier,
  IdentifierNormaliser,
  keptAsSent,
  normaliseEmail,
  normaliseIdentifier,
  normalisePhone,
  recipientTypeOf,
} from '../../../../services/core/identity/normalise.ts';

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

  const bad: [string, string][] = [
    ['abc', 'abc'],
    ['12', '12'],
    ['+999 123', '+999123'],
    ['0000', '0000'],
    ['+60 12', '+6012'],
    ['012 34', '012 34'],
    ['', ''],
    ['+ 60 12 ext. 5', '+ 60 12 ext. 5'],
    ['12#34', '12#34'],
    ['+60 ABC', '+60 ABC'],
  ];
  for (const [raw, kept] of bad) {
    it(`flags ${JSON.stringify(raw)} as unparseable and keeps ${JSON.stringify(kept)} (as given, or its digits when it is written in digits)`, () => {
      const n = normalisePhone(raw, 'MY');
      assert.equal(n.valid, false);
      assert.equal(n.value, kept);
      assert.equal(n.country, '');
    });
  }

  it('gives one value for every spelling of a number the metadata does not know (a test range), and guesses no country', () => {
    // +44 7700 900xxx is Ofcom's drama range: a number by its shape, valid in no numbering plan.
    const international = [
      '+44 7700 900123',
      '+44-7700-900-123',
      '(+44) 7700 900.123',
      '＋４４ ７７００ ９００１２３',
      'tel:+44-7700-900123',
      '+447700900123\u0000',
    ];
    for (const raw of international) assert.deepEqual(normalisePhone(raw, 'GB'), { type: 'msisdn', value: '+447700900123', valid: false, country: '' }, raw);
    // Written nationally or locally it stays as given: the same digits in another country (`0770 090 0123` in FR) or
    // behind another exchange are someone else's number. A `/` may join two numbers: not a separator.
    for (const [raw, region] of [
      ['07700 900123', 'GB'],
      ['0770 090 0123', 'FR'],
      ['0044 7700 900123', 'GB'],
      ['tel:1234;phone-context=pbx-a.example', 'GB'],
      ['+447700900123/4', 'GB'],
    ] as const)
      assert.deepEqual(normalisePhone(raw, region), { type: 'msisdn', value: raw, valid: false, country: '' }, raw);
    assert.notEqual(normalisePhone('tel:1234;phone-context=pbx-a.example').value, normalisePhone('tel:1234;phone-context=pbx-b.example').value);
  });

  it('reads the decimal digits of every script (found from outside: Devanagari, Thai and Bengali were kept flagged)', () => {
    for (const [raw, country, e164] of [
      ['+९१ ९८७६५ ४३२१०', null, '+919876543210'],
      ['०९८७६५४३२१०', 'IN', '+919876543210'],
      ['๐๘๑ ๒๓๔ ๕๖๗๘', 'TH', '+66812345678'],
      ['০১৭১২-৩৪৫৬৭৮', 'BD', '+8801712345678'],
      ['+٦٠١٢٣٤٥٦٧٨٩', null, '+60123456789'],
      ['+۶۰۱۲۳۴۵۶۷۸۹', null, '+60123456789'],
      ['＋６０ １２-３４５ ６７８９', null, '+60123456789'],
      ['+𝟔𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗', null, '+60123456789'],
      ['+၆၀၁၂၃၄၅၆၇၈၉', null, '+60123456789'],
    ] as const) {
      const n = normalisePhone(raw, country);
      assert.deepEqual([n.value, n.valid], [e164, true], raw);
    }
  });
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
  it('reads full-width letters and a full-width @ as the ASCII address (found from outside, 2026-12-06)', () => {
    for (const raw of ['ａｌｉｃｅ.tester@example.com', 'alice.tester＠example.com', 'ＡＬＩＣＥ.ＴＥＳＴＥＲ＠ｅｘａｍｐｌｅ.ｃｏｍ'])
      assert.deepEqual(normaliseIdentifier(raw, 'email'), { type: 'email', value: 'alice.tester@example.com', valid: true, country: '' }, raw);
  });
  it('takes a full-width @ for an address wherever an @ is looked for (a type, a sender id, the recipient type)', () => {
    const address = { type: 'email', value: 'alice.tester@example.com', valid: true, country: '' };
    assert.deepEqual(normaliseIdentifier('alice.tester＠example.com', 'msisdn'), address);
    assert.deepEqual(normaliseIdentifier('alice.tester＠example.com', 'alphanumeric'), address);
    assert.equal(recipientTypeOf('sms', 'alice.tester＠example.com'), 'email');
  });
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
  it('flags what mail systems do not deliver to (found from outside, 2026-12-07: each was read as an address)', () => {
    for (const raw of [
      'alice.müller@bücher.example,',
      'alice.müller@bücher..example',
      'alice.müller@.bücher.example',
      'x@\u0000.com',
      'a@-bad-.example',
      'a@bad-.example',
      `a@${'b'.repeat(64)}.example`,
      `${'a'.repeat(65)}@x.example`,
      `${'ü'.repeat(33)}@x.example`,
      'a@1.2.3.4',
      'a@[192.0.2.1]',
      'a@x.123',
      'a@localhost',
      '"john doe"@example.com',
      'a,b@example.com',
      'a(b)@example.com',
      'a@exa_mple.com',
    ])
      assert.equal(normaliseEmail(raw).valid, false, raw);
  });
  it('reads the addresses at those limits and the characters a local part may hold, dots anywhere in it', () => {
    for (const raw of [
      // Japanese carriers' older addresses (found in review): RFC 5321 refuses them, and they are someone's.
      'taro..yamada@docomo.ne.jp',
      'taro.@ezweb.ne.jp',
      '.alice.müller@bücher.example',
      `${'a'.repeat(64)}@x.example`,
      `${'ü'.repeat(32)}@x.example`,
      `a@${'b'.repeat(63)}.example`,
      "o'brien+tag@x-y.example",
      'first_last!#$%&*=?^`{|}~-@a1.example',
      'a@1x.example',
      'a@x.y2k',
      'a@b.c',
    ])
      assert.equal(normaliseEmail(raw).valid, true, raw);
  });
});

describe('other identifiers and types', () => {
  it('shortcodes keep digits only', () => {
    assert.deepEqual(normaliseIdentifier(' 12 345 ', 'shortcode'), { type: 'shortcode', value: '12345', valid: true, country: '' });
  });
  it('alphanumeric sender ids are trimmed, case kept', () => {
    assert.equal(normaliseIdentifier(' MyBrand ', 'alphanumeric').value, 'MyBrand');
  });
  describe("a person's number or address sent as a sender id is that person's identifier", () => {
    for (const [raw, type, destination, value] of [
      ['+60 12-345 6789', 'alphanumeric', 'MY', '+60123456789'],
      ['0060123456789', 'alphanumeric', 'DE', '+60123456789'],
      ['60123456789', 'alphanumeric', 'MY', '+60123456789'],
      ['447911123456', 'shortcode', 'GB', '+447911123456'], // Guernsey's: the same calling code
      ['12015550123', 'alphanumeric', 'US', '+12015550123'],
      ['393471234567', 'alphanumeric', 'IT', '+393471234567'],
      ['+4915112345678', 'shortcode', 'MY', '+4915112345678'],
    ] as const)
      it(`${JSON.stringify(raw)} as ${type} to ${destination} → msisdn ${value}`, () => {
        const n = normaliseIdentifier(raw, type, destination);
        assert.deepEqual({ type: n.type, value: n.value }, { type: 'msisdn', value });
      });
    it('an address as a sender id → the normalised email', () => {
      assert.deepEqual(normaliseIdentifier(' Jörg@Bücher.example ', 'alphanumeric'), {
        type: 'email',
        value: 'jörg@xn--bcher-kva.example',
        valid: true,
        country: '',
      });
    });
    // Brands, real shortcodes, national forms (the sender's region is unknown), invalid numbers, and bare digits that
    // are not the destination country's own international form stay what they were: a national number written without
    // its country code is often a valid number of another country (US 2015550123 reads as Egypt's +20…; a German
    // national 17153420613 as a US +1…; an Italian 3222154681 as Belgium's +32…).
    for (const [raw, type, destination] of [
      ['ACMEBANK', 'alphanumeric', 'MY'],
      ['1-800-FLOWERS', 'alphanumeric', 'US'],
      ['012-345 6789', 'alphanumeric', 'MY'],
      ['12345678', 'alphanumeric', 'MY'],
      ['12345678', 'shortcode', 'MY'],
      ['+999123456789', 'alphanumeric', 'MY'],
      ['info@localhost', 'alphanumeric', 'MY'],
      ['60123456789', 'other', 'MY'],
      ['2015550123', 'alphanumeric', 'US'],
      ['17153420613', 'alphanumeric', 'DE'],
      ['3222154681', 'alphanumeric', 'IT'],
      ['3912345678', 'alphanumeric', 'IT'], // an Italian mobile written nationally, though it starts with 39
      ['447911123456', 'shortcode', 'MY'],
      ['60123456789', 'alphanumeric', ''],
    ] as const)
      it(`${JSON.stringify(raw)} as ${type} to ${destination || 'no country'} stays ${type}`, () => {
        assert.equal(normaliseIdentifier(raw, type, destination || null).type, type);
      });
    // A "shortcode" longer than any, that reads as no number without a country: someone's number in a form that cannot
    // be read (national, an unknown range). Flagged as an msisdn is, so that `identifier.as_sent` reaches it.
    for (const [raw, destination, kept] of [
      ['07700 900777', 'GB', '07700 900777'],
      ['07700 900777', null, '07700 900777'],
      ['+44 7700 900777', 'MY', '+447700900777'],
      ['012-345 6789', 'MY', '012-345 6789'],
    ] as const)
      it(`${JSON.stringify(raw)} as shortcode to ${destination ?? 'no country'} is a flagged msisdn, as an msisdn request reads it`, () => {
        const stored = normaliseIdentifier(raw, 'shortcode', destination);
        assert.deepEqual(stored, { type: 'msisdn', value: kept, valid: false, country: '' });
        assert.deepEqual(normaliseIdentifier(raw, 'msisdn', null), stored);
      });
  });

  describe('invisible characters', () => {
    // Every default-ignorable code point, not a hand-kept list (found from outside: U+061C, U+3164, U+FE0F, tags).
    for (const mark of ['\u200b', '\u061c', '\u034f', '\u3164', '\ufe0f', '\u180e', '\uffa0', '\u115f', '\u2066', '\u00ad', '\u0000'])
      it(`U+${mark.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} in a number or an address changes nothing`, () => {
        assert.deepEqual(normaliseIdentifier(`${mark}+60 12${mark}-345 6789${mark}`, 'msisdn'), normaliseIdentifier('+60123456789', 'msisdn'));
        assert.equal(normaliseIdentifier(`ali${mark}ce@example.com`, 'email').value, 'alice@example.com');
        assert.equal(cleanIdentifier(`${mark}${mark} `), '');
        assert.equal(blankIdentifier(`${mark} ${mark}\t`), true);
      });
    it('tag characters stay: they tell emoji flags apart (Scotland and Wales are two addresses)', () => {
      const flag = (tags: string) => `\u{1f3f4}${[...tags].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('')}\u{e007f}@example.com`;
      const scotland = normaliseIdentifier(flag('gbsct'), 'email');
      const wales = normaliseIdentifier(flag('gbwls'), 'email');
      assert.equal(scotland.valid, true);
      assert.notEqual(scotland.value, wales.value);
      assert.equal(blankIdentifier('\u{e0067}\u{e0062}'), false);
    });
    it('keptAsSent is the form ingest keeps an unreadable identifier in, whatever the country', () => {
      for (const [raw, country] of [
        ['07700 900123', 'GB'],
        ['0044 7911 123456', 'US'],
        ['tel:1234;phone-context=pbx.example', null],
        ['+44 7700 900123', 'GB'],
      ] as const)
        assert.deepEqual(keptAsSent(`\u200b${raw}`, 'msisdn'), normaliseIdentifier(raw, 'msisdn', country), raw);
      assert.deepEqual(keptAsSent(' "Bob" <bob@example.com> ', 'email'), normaliseIdentifier('"Bob" <bob@example.com>', 'email'));
      assert.deepEqual(keptAsSent('alice@@example.com', 'email'), normaliseIdentifier('alice@@example.com', 'email'));
      // `+` and digits: the kept form is the number's own (one token for a readable and an unreadable reading).
      assert.equal(keptAsSent('+60 12-345 6789', 'msisdn').value, normaliseIdentifier('+60123456789', 'msisdn').value);
    });
    it('a visible character anywhere is not blank', () => {
      assert.equal(blankIdentifier('\u3164\u3164x'), false);
      assert.equal(blankIdentifier('\u200b.'), false);
      assert.equal(blankIdentifier(''), true);
    });
  });
  it('infers the recipient type from channel and shape', () => {
    assert.equal(recipientTypeOf('email', 'a@b.example'), 'email');
    assert.equal(recipientTypeOf('push', 'device-token'), 'other');
    assert.equal(recipientTypeOf('sms', '12345'), 'shortcode');
    assert.equal(recipientTypeOf('sms', '+60123456789'), 'msisdn');
    assert.equal(recipientTypeOf('whatsapp', '0060123456789'), 'msisdn');
  });

  it('reads an address declared a number as the email, and a number declared an address as the msisdn', () => {
    assert.deepEqual(normaliseIdentifier('Carol.X+tag@Example.NET', 'msisdn', 'MY'), {
      type: 'email',
      value: 'carol.x+tag@example.net',
      valid: true,
      country: '',
    });
    assert.equal(normaliseIdentifier('sip:+60123456789@carrier.example', 'msisdn', 'MY').type, 'msisdn');
    assert.equal(normaliseIdentifier('not@an-address', 'msisdn', 'MY').type, 'msisdn');
    const n = normaliseIdentifier('+60 12-340 0032', 'email', 'MY');
    assert.deepEqual([n.type, n.value, n.valid], ['msisdn', '+60123400032', true]);
    assert.equal(normaliseIdentifier('0060123400042', 'email', 'MY').value, '+60123400042');
    // As for sender ids: a national form is not read (whose region?), nor are other bare digits.
    assert.deepEqual([normaliseIdentifier('012-340 0032', 'email', 'MY').type, normaliseIdentifier('012-340 0032', 'email', 'MY').valid], ['email', false]);
    assert.deepEqual([normaliseIdentifier('nobody', 'email').type, normaliseIdentifier('nobody', 'email').valid], ['email', false]);
  });

  it("types an address as an email and a number as an msisdn whatever the channel (found from outside: the channel's type hid them)", () => {
    // An SMS or a call to an address: read as a phone number it was an invalid msisdn, and the holder's request missed it.
    assert.equal(recipientTypeOf('sms', 'Dave.Y@Example.org', 'mt', 'MY'), 'email');
    assert.equal(recipientTypeOf('voice', ' mailto:dave.y@example.org ', 'mt', 'MY'), 'email');
    assert.equal(normaliseIdentifier('Dave.Y@Example.org', recipientTypeOf('sms', 'Dave.Y@Example.org'), null).value, 'dave.y@example.org');
    // Not a well-formed address: still an email, flagged invalid, not a "phone number" with an @ in it.
    assert.equal(recipientTypeOf('sms', 'user@localhost'), 'email');
    // A SIP URI is neither an address nor (as written) a number: it stays what the channel says.
    assert.equal(recipientTypeOf('voice', 'sip:+60123456789@carrier.example'), 'msisdn');
    assert.equal(recipientTypeOf('voice', 'SIPS:alice@carrier.example'), 'msisdn');
    // An email to a number (an email-to-SMS relay): the number, read under the destination country like any other.
    assert.equal(recipientTypeOf('email', '+60 12-340 0040', 'mt', 'MY'), 'msisdn');
    assert.equal(recipientTypeOf('email', '012-340 0040', 'mt', 'MY'), 'msisdn');
    assert.equal(normaliseIdentifier('012-340 0040', recipientTypeOf('email', '012-340 0040', 'mt', 'MY'), 'MY').value, '+60123400040');
    // What is neither a valid number nor an address stays an (invalid) email on the email channel.
    assert.equal(recipientTypeOf('email', 'not an address', 'mt', 'MY'), 'email');
    assert.equal(recipientTypeOf('email', '12345', 'mt', 'MY'), 'email');
    assert.equal(recipientTypeOf('email', '012-340 0040', 'mt', null), 'email');
    // Push tokens are device tokens, whatever they contain.
    assert.equal(recipientTypeOf('push', 'abc@def.example'), 'other');
  });

  it('a short recipient of a message to a subscriber is that subscriber where the plan has numbers that short', () => {
    // Ascension (+247): five-digit numbers. A mobile-terminated SMS to `40123` there is to +247 40123.
    assert.equal(recipientTypeOf('sms', '40123', 'mt', 'AC'), 'msisdn');
    assert.equal(normaliseIdentifier('40123', recipientTypeOf('sms', '40123', 'mt', 'AC'), 'AC').value, '+24740123');
    assert.equal(recipientTypeOf('sms', '71 234', 'mt', 'CK'), 'msisdn');
    assert.equal(recipientTypeOf('sms', '312 345', 'mt', 'AD'), 'msisdn');
    // An mo message's short recipient is the service; digits that are no number of the country stay a shortcode.
    assert.equal(recipientTypeOf('sms', '40123', 'mo', 'AC'), 'shortcode');
    assert.equal(recipientTypeOf('sms', '12345', 'mt', 'MY'), 'shortcode');
    assert.equal(recipientTypeOf('sms', '40123', 'mt', null), 'shortcode');
    // Where short strings are also fixed-line or service numbers by the plan, a shortcode stays a shortcode: only a
    // number a subscriber receives messages on (mobile) is read as one (found by a review: DE, FI, AT, LU, JE).
    for (const [digits, country] of [
      ['246810', 'DE'],
      ['19101', 'FI'],
      ['12000', 'AT'],
      ['2020', 'LU'],
      ['847561', 'JE'],
    ] as const)
      assert.equal(recipientTypeOf('sms', digits, 'mt', country), 'shortcode', `${digits} in ${country}`);
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
