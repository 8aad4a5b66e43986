/**
 * One subscriber, one token; two subscribers, two tokens — for every way a number reaches us, in many countries.
 * Each person below is written in every spelling the routing layer, SMPP peers, SIP (tel: URIs) and people produce;
 * every spelling must normalise to the person's E.164 number, and no spelling of anyone, read under any country's
 * rules, may become another person's number.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { cleanIdentifier, normaliseEmail, normaliseIdentifier, normalisePhone, normaliseOther, recipientTypeOf } from '../../../../services/core/index.ts';

const require = createRequire(import.meta.url);
/** The phone library's mobile example number of every country it knows (national significant number). */
const mobileExamples = require('libphonenumber-js/examples.mobile.json') as Record<string, string>;

interface Person {
  readonly region: string;
  readonly e164: string;
  /** The country calling code and the national significant number. */
  readonly cc: string;
  readonly nsn: string;
  /** How people in the region write it at home (with the trunk prefix where there is one). */
  readonly national: string[];
  /** The region's international dialling prefixes (exit codes) people put in front of +. */
  readonly exits: string[];
  /** Whether the region has a trunk prefix (then the country code without + is unambiguous). */
  readonly trunk: boolean;
}

const people: Person[] = [
  { region: 'MY', e164: '+60123456789', cc: '60', nsn: '123456789', national: ['012-345 6789', '012 3456789', '(012) 345-6789'], exits: ['00'], trunk: true },
  {
    region: 'DE',
    e164: '+4915112345678',
    cc: '49',
    nsn: '15112345678',
    national: ['01511 2345678', '0151/12345678', '0151-1234-5678'],
    exits: ['00'],
    trunk: true,
  },
  { region: 'ID', e164: '+6281234567890', cc: '62', nsn: '81234567890', national: ['0812-3456-7890', '0812 3456 7890'], exits: ['008', '009'], trunk: true },
  { region: 'AU', e164: '+61412345678', cc: '61', nsn: '412345678', national: ['0412 345 678', '0412-345-678'], exits: ['0011'], trunk: true },
  {
    region: 'KR',
    e164: '+821012345678',
    cc: '82',
    nsn: '1012345678',
    national: ['010-1234-5678', '010 1234 5678'],
    exits: ['001', '002', '00700'],
    trunk: true,
  },
  { region: 'HK', e164: '+85291234567', cc: '852', nsn: '91234567', national: ['9123 4567', '91234567'], exits: ['001', '002', '0030'], trunk: false },
  { region: 'SG', e164: '+6591234567', cc: '65', nsn: '91234567', national: ['9123 4567'], exits: ['001', '002', '008'], trunk: false },
  { region: 'CO', e164: '+573001234567', cc: '57', nsn: '3001234567', national: ['300 1234567', '300-123-4567'], exits: ['009', '005', '007'], trunk: true },
  {
    region: 'MX',
    e164: '+525512345678',
    cc: '52',
    nsn: '5512345678',
    national: ['55 1234 5678', '044 55 1234 5678', '01 55 1234 5678'],
    exits: ['00'],
    trunk: false,
  },
  { region: 'GB', e164: '+447400123456', cc: '44', nsn: '7400123456', national: ['07400 123456', '07400-123-456'], exits: ['00'], trunk: true },
  {
    region: 'US',
    e164: '+14155552671',
    cc: '1',
    nsn: '4155552671',
    national: ['(415) 555-2671', '415-555-2671', '415.555.2671', '1 415 555 2671'],
    exits: ['011'],
    trunk: true,
  },
  { region: 'FR', e164: '+33612345678', cc: '33', nsn: '612345678', national: ['06 12 34 56 78', '06.12.34.56.78'], exits: ['00'], trunk: true },
  { region: 'IN', e164: '+919812345678', cc: '91', nsn: '9812345678', national: ['098123 45678', '98123 45678'], exits: ['00'], trunk: true },
  { region: 'BR', e164: '+5511912345678', cc: '55', nsn: '11912345678', national: ['(11) 91234-5678'], exits: ['0014', '0021'], trunk: true },
  { region: 'NG', e164: '+2348031234567', cc: '234', nsn: '8031234567', national: ['0803 123 4567'], exits: ['009'], trunk: true },
  { region: 'ZA', e164: '+27821234567', cc: '27', nsn: '821234567', national: ['082 123 4567'], exits: ['00'], trunk: true },
  { region: 'JP', e164: '+819012345678', cc: '81', nsn: '9012345678', national: ['090-1234-5678'], exits: ['010'], trunk: true },
  { region: 'CN', e164: '+8613812345678', cc: '86', nsn: '13812345678', national: ['138 1234 5678'], exits: ['00'], trunk: true },
  { region: 'IT', e164: '+393123456789', cc: '39', nsn: '3123456789', national: ['312 345 6789'], exits: ['00'], trunk: false },
  { region: 'IT', e164: '+390612345678', cc: '39', nsn: '0612345678', national: ['06 1234 5678'], exits: ['00'], trunk: false },
  { region: 'ES', e164: '+34612345678', cc: '34', nsn: '612345678', national: ['612 34 56 78'], exits: ['00'], trunk: false },
  { region: 'TR', e164: '+905321234567', cc: '90', nsn: '5321234567', national: ['0532 123 45 67'], exits: ['00'], trunk: true },
  { region: 'AE', e164: '+971501234567', cc: '971', nsn: '501234567', national: ['050 123 4567'], exits: ['00'], trunk: true },
  { region: 'PH', e164: '+639171234567', cc: '63', nsn: '9171234567', national: ['0917 123 4567'], exits: ['00'], trunk: true },
  { region: 'TH', e164: '+66812345678', cc: '66', nsn: '812345678', national: ['081 234 5678'], exits: ['001', '007'], trunk: true },
  { region: 'PK', e164: '+923001234567', cc: '92', nsn: '3001234567', national: ['0300 1234567'], exits: ['00'], trunk: true },
];

/** Every spelling of a person, each with the default region it is read under (null: none known). */
function spellings(p: Person): [string, string | null][] {
  const out: [string, string | null][] = [];
  const spaced = p.nsn.replace(/(\d{3})(?=\d)/g, '$1 ');
  for (const intl of [
    `+${p.cc}${p.nsn}`,
    `+${p.cc} ${spaced}`,
    `+${p.cc}-${p.nsn.slice(0, 3)}-${p.nsn.slice(3)}`,
    `+(${p.cc}) ${p.nsn}`,
    `+${p.cc}.${p.nsn}`,
  ]) {
    out.push([intl, p.region], [intl, null], [intl, 'US']);
  }
  for (const exit of p.exits) out.push([`${exit} ${p.cc} ${spaced}`, p.region], [`${exit}${p.cc}${p.nsn}`, p.region]);
  // `00`, the prefix ITU-T recommends, as routing systems write it whatever the region's own exit code is.
  out.push([`00${p.cc}${p.nsn}`, p.region], [`00 ${p.cc} ${spaced}`, p.region], [`00${p.cc}${p.nsn}`, null]);
  for (const n of p.national) out.push([n, p.region]);
  if (p.trunk) out.push([`${p.cc}${p.nsn}`, p.region], [`${p.cc} ${spaced}`, p.region]); // an SMPP peer dropped the +
  out.push([`${p.cc}${p.nsn}`, null]); // no region: digits long enough are read as international
  out.push([`tel:+${p.cc}-${p.nsn}`, null], [`tel:+${p.cc}${p.nsn}`, p.region], [`TEL:+${p.cc}-${spaced.replace(/ /g, '-')}`, 'GB']);
  out.push([`tel:${p.national[0]!.replace(/\s/g, '-')};phone-context=+${p.cc}`, null]);
  out.push(
    [`+${p.cc}${p.nsn}\u0000\u0000\u0000`, p.region],
    [`\u0000+${p.cc} ${spaced}\u0000`, null],
    [`+${p.cc}\u200b${p.nsn}`, p.region],
    [`\ufeff+${p.cc}${p.nsn}`, p.region],
  );
  return out;
}

describe('one subscriber, one token: every spelling of a number in many countries', () => {
  for (const p of people) {
    it(`${p.region} ${p.e164}: ${spellings(p).length} spellings give one E.164 number`, () => {
      assert.equal(normalisePhone(p.e164).valid, true, `${p.e164} is a valid number`);
      const wrong = spellings(p)
        .map(([s, region]) => ({ s, region, got: normalisePhone(s, region) }))
        .filter((r) => !r.got.valid || r.got.value !== p.e164)
        .map((r) => `${JSON.stringify(r.s)} under ${r.region ?? 'no region'} → ${r.got.value} (${r.got.valid ? 'valid' : 'invalid'})`);
      assert.deepEqual(wrong, []);
    });
  }

  it("Mexico's retired mobile 1 after 52 gives the same number as without it", () => {
    assert.equal(normalisePhone('+52 1 55 1234 5678').value, '+525512345678');
    assert.equal(normalisePhone('52 1 55 1234 5678', 'MX').value, '+525512345678');
    assert.equal(normalisePhone('tel:+52-1-55-1234-5678').value, '+525512345678');
  });

  it('digits as other scripts and input methods write them are the same digits', () => {
    // Fullwidth forms (Japanese, Chinese and Korean input methods), Arabic-Indic (Egypt, Iraq, the Gulf) and Eastern
    // Arabic (Iran, Pakistan) digits: what libphonenumber reads as digits.
    assert.equal(normalisePhone('＋６０ １２－３４５ ６７８９').value, '+60123456789');
    assert.equal(normalisePhone('（０１２）３４５－６７８９', 'MY').value, '+60123456789');
    assert.equal(normalisePhone('٠١٠٠ ١٢٣ ٤٥٦٧', 'EG').value, '+201001234567');
    assert.equal(normalisePhone('+٢٠ ١٠٠ ١٢٣ ٤٥٦٧').value, '+201001234567');
    assert.equal(normalisePhone('۰۹۱۲ ۳۴۵ ۶۷۸۹', 'IR').value, '+989123456789');
    assert.equal(normaliseIdentifier('٠١٠٠١٢٣٤٥٦٧', recipientTypeOf('sms', '٠١٠٠١٢٣٤٥٦٧', 'mt', 'EG'), 'EG').value, '+201001234567');
    assert.equal(normalisePhone('０９０ー１２３４ー５６７８', 'JP').value, '+819012345678', 'the long vowel mark as a hyphen');
    // A fullwidth shortcode is the same shortcode; a fullwidth number sent as a sender id is the person's number.
    assert.equal(recipientTypeOf('sms', '１９１０１', 'mo', 'FI'), 'shortcode');
    assert.equal(normaliseIdentifier('１９１０１', 'shortcode', 'FI').value, normaliseIdentifier('19101', 'shortcode', 'FI').value);
    assert.equal(normaliseIdentifier('＋６０１２３４５６７８９', 'alphanumeric', 'MY').value, '+60123456789');
    // What is not a phone number stays as written, flagged.
    const odd = normalisePhone('＋６０ ＡＢＣ');
    assert.equal(odd.valid, false);
    assert.equal(odd.value, '＋６０ ＡＢＣ');
  });

  it('vanity letters dial as the keypad shows them', () => {
    assert.equal(normalisePhone('1-800-FLOWERS', 'US').value, '+18003569377');
    assert.equal(normalisePhone('+1 800 FLOWERS').value, '+18003569377');
  });

  it('a national number without a country is flagged, not guessed', () => {
    const n = normalisePhone('012-345 6789', null);
    assert.equal(n.valid, false);
    assert.equal(n.value, '012-345 6789');
    assert.equal(n.country, '');
  });
});

describe('every country the phone library knows: its mobile example in six spellings, under its own destination country', () => {
  // How a routing layer, an SMPP peer or a SIP switch writes a number: E.164, the international format with spaces,
  // the national format, `00` + E.164 digits, the digits without `+`, and a tel: URI. A stranger's librdkafka
  // producer found the `00` spelling unread in 54 of 244 countries (those whose own exit code is not 00), and the
  // national spelling read as a shortcode where whole plans are five or six digits long.
  const countries = Object.keys(mobileExamples).sort();
  it(`covers ${countries.length} countries`, () => assert.ok(countries.length >= 240));
  it("each spelling gives the example's E.164 number", () => {
    const wrong: string[] = [];
    let tried = 0;
    for (const country of countries) {
      const example = parsePhoneNumberFromString(mobileExamples[country]!, country as CountryCode);
      if (!example?.isValid()) continue; // the library's own example, not valid by its own rules: nothing to compare
      const e164 = example.number;
      const spellingsOf = [e164, example.formatInternational(), example.formatNational(), `00${e164.slice(1)}`, e164.slice(1), example.getURI()];
      for (const s of spellingsOf) {
        tried++;
        // As ingest reads a recipient of a message to a subscriber: its type from its shape, then normalised.
        const got = normaliseIdentifier(s, recipientTypeOf('sms', s, 'mt', country), country);
        if (got.type !== 'msisdn' || !got.valid || got.value !== e164)
          wrong.push(`${country} ${JSON.stringify(s)} → ${got.type} ${got.valid ? got.value : 'invalid'}`);
      }
    }
    assert.ok(tried >= 6 * 235, `only ${tried} spellings tried`);
    assert.deepEqual(wrong, []);
  });
});

describe('two subscribers, two tokens', () => {
  it('no two people share a number', () => {
    assert.equal(new Set(people.map((p) => p.e164)).size, people.length);
  });

  it('no spelling that says its country (+, tel:+, an exit code), read under any country, becomes another person', () => {
    // National spellings are excluded: `9123 4567` is a number in Hong Kong and in Singapore alike, and only the
    // default region (the record's destination country) can tell. What carries its own country must never merge.
    const others = new Map(people.map((p) => [p.e164, p]));
    const regions = [...new Set(people.map((p) => p.region)), 'CA', 'NZ', 'TW', 'CH', 'SE', 'PL', 'RU', 'AR', 'CL', 'PE', 'KE', 'EG'];
    const merged: string[] = [];
    const international = (p: Person, s: string): boolean => {
      const c = cleanIdentifier(s).replace(/\s/g, '');
      return (
        c.startsWith('+') ||
        /^tel:\+/i.test(c) ||
        /phone-context=\+/i.test(c) ||
        [...p.exits, '00'].some((e) => c.startsWith(e) && c.slice(e.length).startsWith(p.cc))
      );
    };
    for (const p of people) {
      for (const [s] of spellings(p).filter(([s]) => international(p, s))) {
        for (const region of regions) {
          const got = normalisePhone(s, region);
          if (got.valid && got.value !== p.e164 && others.has(got.value)) merged.push(`${JSON.stringify(s)} (${p.e164}) under ${region} → ${got.value}`);
        }
      }
    }
    assert.deepEqual(merged, []);
  });

  it('an exit code of one country is not read as a country code elsewhere: 001 65… in SG is Singapore, not +1', () => {
    assert.equal(normalisePhone('001 65 9123 4567', 'SG').value, '+6591234567');
    assert.notEqual(normalisePhone('001 65 9123 4567', 'SG').country, 'US');
    assert.equal(normalisePhone('00700 60 12 345 6789', 'KR').value, '+60123456789');
  });

  it('00 + the own calling code is the ITU form even where a local exit code starts with 00 and a digit', () => {
    // Found by a review: read by the region's exit codes (BR 0055, CO 005, TH and SG 006, KR 008), these were other
    // people's valid numbers (+66 38 518 157, Russia's +7 302…, Luxembourg's +352 9377437, Paraguay, Liberia).
    const cases: [string, string, string][] = [
      ['0066638518157', 'TH', '+66638518157'],
      ['00573029369965', 'CO', '+573029369965'],
      ['00553529377437', 'BR', '+553529377437'],
      ['006595302798', 'SG', '+6595302798'],
      ['0082316123456', 'KR', '+82316123456'],
    ];
    for (const [written, region, e164] of cases) {
      assert.equal(normalisePhone(e164).valid, true, `${e164} is a valid number`);
      assert.equal(normalisePhone(written, region).value, e164, `${written} under ${region}`);
    }
  });

  it("00 is read as the international prefix only before the destination country's own calling code", () => {
    // Indonesia's operator exit code 001 is not in the metadata: `001 65 9123 4567` dialled there is Singapore's
    // +65 9234 5678, and read as `00` + 1 659 234 5678 it would be an Alabama number. Flagged, not guessed.
    assert.equal(normalisePhone('+16592345678').valid, true, 'the misreading would be a valid number');
    assert.equal(normalisePhone('001 65 9234 5678', 'ID').valid, false);
    assert.equal(normalisePhone('0061412345678', 'ID').valid, false);
    // Under the number's own country it is that number, where the country's exit code is not 00.
    assert.equal(normalisePhone('0061412345678', 'AU').value, '+61412345678');
    assert.equal(normalisePhone('00 1 415 555 2671', 'US').value, '+14155552671');
    assert.equal(normalisePhone('0015062345678', 'US').value, '+15062345678', 'a Canadian number under a US destination: the same calling code');
    assert.equal(normalisePhone('0081 90 1234 5678', 'JP').value, '+819012345678');
  });
});

describe('emails: one mailbox, one token', () => {
  const mailbox: [string, string][] = [
    ['jörg@bücher.example', 'jörg@xn--bcher-kva.example'],
    ['alice@example.com', 'alice@example.com'],
  ];
  const spellingsOf = (v: string): string[] => {
    const [local, domain] = v.split('@') as [string, string];
    const nfd = local.normalize('NFD');
    return [
      v,
      v.toUpperCase(),
      ` ${v}\t`,
      `${v}.`,
      `${local}@${domain}..`,
      `mailto:${v}`,
      `MAILTO:${v}?subject=hello`,
      `mailto:${encodeURIComponent(local)}@${domain}`,
      `${nfd}@${domain}`,
      `${v}\u0000\u0000`,
      `\u200b${v}`,
    ];
  };
  for (const [given, expected] of mailbox) {
    it(`${given}: ${spellingsOf(given).length} spellings give ${expected}`, () => {
      const wrong = spellingsOf(given)
        .map((s) => ({ s, got: normaliseEmail(s) }))
        .filter((r) => !r.got.valid || r.got.value !== expected)
        .map((r) => `${JSON.stringify(r.s)} → ${r.got.value}`);
      assert.deepEqual(wrong, []);
    });
  }

  it('different mailboxes stay different', () => {
    const values = ['a@example.com', 'a@example.org', 'b@example.com', 'a.b@example.com', 'a+tag@example.com'].map((e) => normaliseEmail(e).value);
    assert.equal(new Set(values).size, values.length);
  });
});

describe('sender ids and shortcodes', () => {
  it('NUL-padded SMPP sender ids are the same sender', () => {
    assert.equal(normaliseIdentifier('ACME\u0000\u0000', 'alphanumeric').value, 'ACME');
    assert.equal(normaliseIdentifier('ACME', 'alphanumeric').value, 'ACME');
  });

  it('a shortcode is per country: the same digits are different services in different countries', () => {
    const my = normaliseOther('12345\u0000', 'shortcode', 'MY');
    const us = normaliseOther('12345', 'shortcode', 'US');
    assert.equal(my.value, 'MY:12345');
    assert.equal(us.value, 'US:12345');
    assert.equal(my.valid && us.valid, true);
    assert.equal(normaliseOther('123 45', 'shortcode', 'my').value, 'MY:12345');
  });
});
