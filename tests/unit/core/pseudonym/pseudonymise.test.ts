import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CdrEvent } from '../../../../services/core/cdr/cdrEvent.ts';
import { deriveMonthKey, generateMonthKey, jsSealer, openIdentifier, tokenOf, type SealerFactory } from '../../../../services/core/pseudonym/monthKeys.ts';
import { CDR_SHAPE, NULL_FIELD, Pseudonymiser } from '../../../../services/core/pseudonym/pseudonymise.ts';
import { cdrEvent } from '../../../support/cdrEvents.ts';

const t = Date.UTC(2026, 10, 15, 9);
const e: CdrEvent = cdrEvent({
  recipient: '012-345 6789',
  event_time: t,
  submitted_at: t,
  delivered_at: t + 2000,
  segments: 2,
  size_bytes: 200,
  client_ip: '192.0.2.7',
});
const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
const src = { topic: 'cdr.raw', partition: 1, offset: '42' };

describe('Pseudonymiser', () => {
  const p = new Pseudonymiser();
  const rec = p.pseudonymise(e, '2026-11', key, 1, src, t + 5000);

  it('tokenises the normalised identifiers under the month key', () => {
    assert.equal(rec.row.recipient_token, tokenOf(key, 'msisdn', '+60123456789'));
    assert.equal(rec.row.sender_token, tokenOf(key, 'alphanumeric', 'BRAND'));
    assert.equal(rec.row.sender_country, '');
  });
  it('the cdr row and the published event hold no identifier', () => {
    for (const text of [JSON.stringify(rec.row), JSON.stringify(rec.published)]) {
      assert.ok(!text.includes('60123456789') && !text.includes('345 6789') && !text.includes('BRAND'));
    }
    assert.equal(Object.hasOwn(rec.published, 'client_ip'), false);
  });
  it('vault rows open to the normalised identifiers', () => {
    assert.equal(rec.vault.length, 2);
    const r = rec.vault.find((v) => v.id_type === 'msisdn')!;
    assert.equal(openIdentifier(key, r.token, Buffer.from(r.sealed, 'base64')), '+60123456789');
    assert.equal(r.month, '2026-11-01');
  });
  it("a sender id's token does not depend on which destination the cache saw first", () => {
    // `60123456789` as a sender id is a person's number sent to MY (its own calling code), a sender id to GB.
    const to = (country: string): CdrEvent => ({ ...e, sender: '60123456789', sender_type: 'alphanumeric', destination_country: country });
    const expected = { MY: tokenOf(key, 'msisdn', '+60123456789'), GB: tokenOf(key, 'alphanumeric', '60123456789') };
    for (const order of [
      ['MY', 'GB', 'MY', 'GB'],
      ['GB', 'MY', 'GB', 'MY'],
    ] as const) {
      const q = new Pseudonymiser(100, 'always');
      for (const c of order) assert.equal(q.pseudonymise(to(c), '2026-11', key, 1, src, t).row.sender_token, expected[c], `${order.join(',')}: ${c}`);
    }
  });
  it('a late record (no key) has no tokens and no vault entries', () => {
    const late = p.pseudonymise(e, '2026-11', null, 1, src, t);
    assert.equal(late.row.late, true);
    assert.equal(late.row.sender_token, '');
    assert.equal(late.row.recipient_token, '');
    assert.equal(late.vault.length, 0);
    assert.equal(late.published.late, true);
  });
  it('keeps the metadata and the usage data for the 10-year row', () => {
    assert.equal(rec.row.price, 25_000);
    assert.equal(rec.row.client_ip, '192.0.2.7');
    assert.equal(rec.row.src_offset, '42');
    assert.equal(rec.row.destination_country, 'MY');
  });
  it('marks which nullable fields the record did not have (null or an empty country), apart from the 0 or "" stored', () => {
    assert.equal(rec.row.null_fields, NULL_FIELD.duration_ms | NULL_FIELD.error_code, 'this record has no duration and no error code');
    assert.equal(rec.row.duration_ms, 0);
    const all = p.pseudonymise(
      { ...e, cdr_id: 'c-2', mcc: null, mnc: null, destination_country: null, client_ip: null, duration_ms: null },
      '2026-11',
      key,
      1,
      src,
      t,
    ).row;
    assert.equal(all.null_fields, 0b111111);
    assert.deepEqual([all.mcc, all.mnc, all.destination_country, all.client_ip, all.duration_ms], ['', '', '', '', 0]);
    const none = p.pseudonymise({ ...e, cdr_id: 'c-3', duration_ms: 0, error_code: '', mcc: '', mnc: '' }, '2026-11', key, 1, src, t).row;
    assert.equal(none.null_fields, 0, 'zero and empty values are values, not absences');
    assert.equal(
      p.pseudonymise({ ...e, cdr_id: 'c-4', destination_country: '' }, '2026-11', key, 1, src, t).row.null_fields & NULL_FIELD.destination_country,
      NULL_FIELD.destination_country,
    );
  });

  it('stores and publishes a currency code in upper case, whatever case it came in', () => {
    const lower = p.pseudonymise({ ...e, cdr_id: 'c-5', currency: 'eur' }, '2026-11', key, 1, src, t);
    assert.equal(lower.row.currency, 'EUR');
    assert.equal(lower.published.currency, 'EUR');
  });

  it('stores no client IP for a record that arrives after its 3-year usage window', () => {
    const old = Date.UTC(2023, 10, 15, 9);
    const justIn = p.pseudonymise(
      { ...e, event_time: old, submitted_at: old, delivered_at: null },
      '2023-11',
      null,
      1,
      src,
      Date.UTC(2026, 10, 15, 8, 59, 59, 999),
    );
    assert.equal(justIn.row.client_ip, '192.0.2.7');
    const tooLate = p.pseudonymise({ ...e, event_time: old, submitted_at: old, delivered_at: null }, '2023-11', null, 1, src, Date.UTC(2026, 10, 15, 9));
    assert.equal(tooLate.row.client_ip, '');
    assert.equal(tooLate.row.price, 25_000);
  });
  it('different spellings of one number give one token', () => {
    const a = p.pseudonymise({ ...e, recipient: '+60 12-345 6789' }, '2026-11', key, 1, src, t);
    const b = p.pseudonymise({ ...e, recipient: '0060123456789' }, '2026-11', key, 1, src, t);
    assert.equal(a.row.recipient_token, rec.row.recipient_token);
    assert.equal(b.row.recipient_token, rec.row.recipient_token);
  });
  it('an unparseable identifier is tokenised as given and flagged', () => {
    const r = p.pseudonymise({ ...e, recipient: 'not-a-number' }, '2026-11', key, 1, src, t);
    assert.equal(r.row.recipient_valid, false);
    assert.equal(r.row.recipient_token, tokenOf(key, 'msisdn', 'not-a-number'));
  });
  it('a new key for a month (after forgetMonth) derives new tokens and seals under the new key only', () => {
    const q = new Pseudonymiser();
    const before = q.pseudonymise(e, '2026-11', key, 1, src, t);
    q.forgetMonth('2026-11');
    const next = deriveMonthKey('2026-11', 'k2', generateMonthKey());
    const after = q.pseudonymise(e, '2026-11', next, 1, src, t);
    assert.notEqual(after.row.recipient_token, before.row.recipient_token);
    assert.equal(after.row.recipient_token, tokenOf(next, 'msisdn', '+60123456789'));
    const v = after.vault.find((x) => x.id_type === 'msisdn')!;
    assert.equal(openIdentifier(next, v.token, Buffer.from(v.sealed, 'base64')), '+60123456789');
    assert.throws(() => openIdentifier(key, v.token, Buffer.from(v.sealed, 'base64')));
  });
  it('two different raw identifiers never share a cache entry (a separator inside the identifier is not a country)', () => {
    const q = new Pseudonymiser();
    const withCountry = q.pseudonymise({ ...e, sender: 'ACME', destination_country: 'GB' }, '2026-11', key, 1, src, t);
    const lookalike = q.pseudonymise({ ...e, sender: 'GB|ACME', destination_country: null }, '2026-11', key, 1, src, t);
    assert.equal(withCountry.row.sender_token, tokenOf(key, 'alphanumeric', 'ACME'));
    assert.equal(lookalike.row.sender_token, tokenOf(key, 'alphanumeric', 'GB|ACME'));
    const nul = q.pseudonymise({ ...e, recipient: 'GB\u0000012-345 6789', destination_country: null }, '2026-11', key, 1, src, t);
    assert.notEqual(nul.row.recipient_token, withCountry.row.recipient_token);
  });
  it('drops a month when its identifier window closes, and holds at most its capacity over all months', () => {
    const q = new Pseudonymiser(4, 'always');
    const oct = deriveMonthKey('2026-10', 'k10', generateMonthKey());
    const t10 = Date.UTC(2026, 9, 15);
    q.pseudonymise({ ...e, event_time: t10, recipient: '+60 12-000 0001' }, '2026-10', oct, 1, src, t);
    q.pseudonymise({ ...e, recipient: '+60 12-000 0002' }, '2026-11', key, 1, src, t);
    assert.equal(q.cachedIdentifiers, 4);
    q.forgetExpired(Date.UTC(2027, 10, 1) - 1);
    assert.equal(q.cachedIdentifiers, 4, 'October 2026 is open until 1 November 2027');
    q.forgetExpired(Date.UTC(2027, 10, 1));
    assert.equal(q.cachedIdentifiers, 2, 'October 2026 gone, November 2026 kept');
    for (let i = 3; i < 20; i++) q.pseudonymise({ ...e, recipient: `+60 12-000 ${String(i).padStart(4, '0')}` }, '2026-11', key, 1, src, t);
    assert.equal(q.cachedIdentifiers, 4);
    q.forgetExpired(Date.UTC(2027, 11, 1));
    assert.equal(q.cachedIdentifiers, 0);
  });
  it('caches an identifier on its second sighting only (one-off numbers never enter the cache), with the same results', () => {
    const q = new Pseudonymiser(100);
    const always = new Pseudonymiser(100, 'always');
    const oneOffs = Array.from({ length: 30 }, (_, i) => ({ ...e, recipient: `+60 12-111 ${String(i).padStart(4, '0')}` }));
    for (const ev of oneOffs) assert.deepEqual(q.pseudonymise(ev, '2026-11', key, 1, src, t).row, always.pseudonymise(ev, '2026-11', key, 1, src, t).row);
    assert.equal(q.cachedIdentifiers, 1, 'the recipients, each seen once, are not cached; the sender, seen 30 times, is');
    assert.equal(always.cachedIdentifiers, 31, 'the other policy caches every one (and the sender)');
    q.pseudonymise(oneOffs[0]!, '2026-11', key, 1, src, t);
    assert.equal(q.cachedIdentifiers, 2, 'the second sighting of a recipient earns its entry');
    q.pseudonymise(oneOffs[0]!, '2026-11', key, 1, src, t);
    assert.equal(q.cachedIdentifiers, 2, 'a hit adds nothing');
  });
  it('with capacity 0 caches nothing and derives the same tokens and sealed values as with a cache', () => {
    const none = new Pseudonymiser(0);
    const cached = new Pseudonymiser();
    for (let i = 0; i < 5; i++) {
      const a = none.pseudonymise(e, '2026-11', key, 1, src, t);
      const b = cached.pseudonymise(e, '2026-11', key, 1, src, t);
      assert.deepEqual(a.row, b.row);
      assert.deepEqual(a.vault, b.vault);
    }
    assert.equal(none.cachedIdentifiers, 0);
    assert.equal(cached.cachedIdentifiers, 2);
  });
  it('caches per raw spelling and country: the same number under another default country is another identifier', () => {
    const q = new Pseudonymiser(2);
    const my = q.pseudonymise(e, '2026-11', key, 1, src, t);
    const sg = q.pseudonymise({ ...e, destination_country: 'SG' }, '2026-11', key, 1, src, t);
    assert.notEqual(sg.row.recipient_token, my.row.recipient_token);
    // Capacity 2: the first entries were evicted; deriving again gives the same token (pure function of key + input).
    assert.equal(q.pseudonymise(e, '2026-11', key, 1, src, t).row.recipient_token, my.row.recipient_token);
  });
});

describe('CDR_SHAPE (the cdr insert: columns, RowBinary types, values)', () => {
  const row = new Pseudonymiser().pseudonymise(e, '2026-11', key, 1, src, t + 5000).row;
  it('names every field of a cdr row exactly once', () => {
    assert.deepEqual([...CDR_SHAPE.columns].sort(), Object.keys(row).sort());
  });
  it('puts each value under its own column', () => {
    const tuple = CDR_SHAPE.tuple(row);
    assert.equal(tuple.length, CDR_SHAPE.columns.length);
    CDR_SHAPE.columns.forEach((c, i) => assert.equal(tuple[i], row[c], c));
  });
});

describe('Pseudonymiser: the month sealers it opens (ADR 0040)', () => {
  /** A sealer factory that records what it opened and closed (the JavaScript sealer does the work). */
  function countingSealers(): { factory: SealerFactory; open: () => string[] } {
    const opened: { month: string; closed: boolean }[] = [];
    const factory: SealerFactory = (k) => {
      const inner = jsSealer(k);
      const entry = { month: k.month, closed: false };
      opened.push(entry);
      return {
        tokenAndSeal(type, value) {
          assert.equal(entry.closed, false, `a closed sealer of ${k.month} was used`);
          return inner.tokenAndSeal(type, value);
        },
        close() {
          entry.closed = true;
        },
      };
    };
    return { factory, open: () => opened.filter((o) => !o.closed).map((o) => o.month) };
  }
  const oct = deriveMonthKey('2026-10', 'k10', generateMonthKey());
  const t10 = Date.UTC(2026, 9, 15);

  it('gives what the default sealer gives', () => {
    const { factory } = countingSealers();
    const a = new Pseudonymiser(100, 'always', factory).pseudonymise(e, '2026-11', key, 1, src, t);
    const b = new Pseudonymiser(100, 'always').pseudonymise(e, '2026-11', key, 1, src, t);
    assert.deepEqual(a.row, b.row);
    assert.deepEqual(a.vault, b.vault);
  });
  it('closes a month sealer when the month is forgotten, replaced by another key, expired, evicted empty, or the whole is closed', () => {
    const { factory, open } = countingSealers();
    const q = new Pseudonymiser(4, 'always', factory);
    q.pseudonymise(e, '2026-11', key, 1, src, t);
    q.pseudonymise({ ...e, event_time: t10 }, '2026-10', oct, 1, src, t);
    assert.deepEqual(open().sort(), ['2026-10', '2026-11']);
    q.forgetMonth('2026-10');
    assert.deepEqual(open(), ['2026-11'], 'forgotten');
    q.pseudonymise(e, '2026-11', deriveMonthKey('2026-11', 'k2', generateMonthKey()), 1, src, t);
    assert.deepEqual(open(), ['2026-11'], 'the old key of November closed, the new one open');
    q.pseudonymise({ ...e, event_time: t10 }, '2026-10', oct, 1, src, t);
    q.forgetExpired(Date.UTC(2027, 10, 1));
    assert.deepEqual(open(), ['2026-11'], 'October expired');
    // November holds two entries; October's new ones (sender, then one recipient each) evict them one by one.
    for (const n of ['7', '8', '9']) q.pseudonymise({ ...e, event_time: t10, recipient: `+60 12-000 000${n}` }, '2026-10', oct, 1, src, t);
    assert.deepEqual(open(), ['2026-10'], 'November emptied by eviction');
    q.close();
    assert.deepEqual(open(), []);
    assert.equal(q.cachedIdentifiers, 0);
  });
});
