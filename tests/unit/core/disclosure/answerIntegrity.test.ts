import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { createPublicKey } from 'node:crypto';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import {
  ANSWER_FORMAT_1,
  RecordDigester,
  canonicalJson,
  acceptsAnyOf,
  answerFormatOf,
  preferredOf,
  answerWriter,
  keyIdOf,
  recordsFromCsv,
  signAnswer,
  verifyAnswer,
  type AnswerFormat,
  type AnswerSigner,
} from '../../../../services/core/index.ts';

function signer(): AnswerSigner & { publicKeyObject: ReturnType<typeof createPublicKey> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { keyId: keyIdOf(der), publicKey: der.toString('base64'), publicKeyObject: publicKey, sign: (d) => sign(null, d, privateKey) };
}

const header = {
  request_id: 'lea-1',
  authority: 'Police',
  case_reference: 'C-1',
  legal_basis: 'warrant 7',
  identifier: { type: 'msisdn', value: '+60123456789' },
  from: '2026-11-01T00:00:00.000Z',
  to: '2026-12-01T00:00:00.000Z',
  answered_at: '2026-12-01T10:00:00.000Z',
  confidential: false,
  integrity_salt: '5a17'.repeat(8),
};
const records = Array.from({ length: 25 }, (_, i) => ({
  cdr_id: `id-${i}`,
  account_id: 'acct, "quoted"',
  event_time: `2026-11-${String(1 + (i % 28)).padStart(2, '0')}T10:00:00.000Z`,
  channel: 'sms',
  direction: i % 2 ? 'mo' : 'mt',
  sender: i % 2 ? '+60123456789' : 'BANK',
  recipient: i % 2 ? '+60198765432' : '+60123456789',
  sender_type: i % 2 ? 'msisdn' : 'alphanumeric',
  recipient_type: 'msisdn',
  status: 'delivered',
  // Absent fields are null (an empty cell in CSV): a call without a duration, a record without codes or country.
  duration_ms: i % 4 === 1 ? null : i * 1000,
  provider_id: 'p1',
  destination_country: i === 5 ? null : 'MY',
  mcc: i % 3 === 0 ? null : '502',
  mnc: i % 3 === 0 ? null : '12',
  segments: 1,
  source: i < 3 ? 'held' : 'live',
  ...(i < 3 ? { hold_id: 'hold-x' } : {}),
}));

/** An answer in each form, built as the API builds it. */
function answer(
  format: AnswerFormat,
  s: AnswerSigner,
  recs: readonly Record<string, unknown>[] = records,
): { text: string; integrity: ReturnType<typeof signAnswer>; trailer: Record<string, unknown> } {
  const w = answerWriter(format);
  const d = new RecordDigester();
  let text = w.open(header);
  for (const r of recs) text += w.record(d.add(r), r);
  const trailer = { months: [{ month: '2026-11', status: 'answered', records: recs.length }], expired_months: [], record_count: recs.length };
  const integrity = signAnswer({ ...header, ...trailer }, d.finish(), s, '2026-12-01T10:00:01.000Z');
  text += w.close(trailer, integrity);
  return { text, integrity, trailer };
}

describe('signed answers', () => {
  const s = signer();
  const trusted = [s.publicKeyObject];

  it('a JSON answer is one valid document that verifies untouched', () => {
    const { text } = answer('json', s);
    const doc = JSON.parse(text) as Record<string, unknown> & { records: Record<string, unknown>[] };
    assert.deepEqual(doc.records, records);
    const r = verifyAnswer({ header: doc, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.equal(r.key_trusted, true);
    assert.equal(r.records, records.length);
  });

  it('names a changed record and its field', () => {
    const doc = JSON.parse(answer('json', s).text) as Record<string, unknown> & { records: Record<string, unknown>[] };
    doc.records[7]!['recipient'] = '+60111111111';
    const r = verifyAnswer({ header: doc, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted });
    assert.deepEqual(r.problems, ['record 8 (cdr_id id-7): changed (field recipient)']);
  });

  it('names changed, added and removed header members, and removed or reordered records', () => {
    const doc = JSON.parse(answer('json', s).text) as Record<string, unknown> & { records: Record<string, unknown>[] };
    const edited = { ...doc, legal_basis: 'none', extra: 1 } as Record<string, unknown>;
    delete edited['authority'];
    const r = verifyAnswer({ header: edited, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted });
    assert.deepEqual(r.problems.sort(), [
      'authority: missing (it is part of the signed answer)',
      'extra: added (not part of the signed answer)',
      'legal_basis: changed',
    ]);
    const fewer = verifyAnswer({ header: doc, records: doc.records.slice(0, -1), integrity: doc['integrity'], trustedKeys: trusted });
    assert.match(fewer.problems[0]!, /records: 24 in the answer, 25 signed \(records removed after record 24\)/);
    const swapped = [...doc.records];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    const sw = verifyAnswer({ header: doc, records: swapped, integrity: doc['integrity'], trustedKeys: trusted });
    assert.equal(sw.ok, false);
    assert.match(sw.problems.join('\n'), /record 3 .*record 4/s);
  });

  it('detects an edited integrity block and a foreign key', () => {
    const doc = JSON.parse(answer('json', s).text) as Record<string, unknown> & { records: Record<string, unknown>[]; integrity: Record<string, unknown> };
    const forged = { ...doc.integrity, record_count: 24 };
    const r = verifyAnswer({ header: doc, records: doc.records.slice(0, 24), integrity: forged, trustedKeys: trusted });
    assert.match(r.problems.join('\n'), /signature does not match/);
    const other = signer();
    const mine = verifyAnswer({ header: doc, records: doc.records, integrity: doc.integrity, trustedKeys: [other.publicKeyObject] });
    assert.match(mine.problems.join('\n'), /not a trusted key/);
    // Re-signed by someone else entirely: fine under its own key, refused under the trusted one.
    const resigned = answer('json', other);
    const rd = JSON.parse(resigned.text) as Record<string, unknown> & { records: Record<string, unknown>[] };
    assert.equal(verifyAnswer({ header: rd, records: rd.records, integrity: rd['integrity'], trustedKeys: [] }).ok, true);
    assert.equal(verifyAnswer({ header: rd, records: rd.records, integrity: rd['integrity'], trustedKeys: trusted }).ok, false);
    assert.match(
      verifyAnswer({ header: doc, records: doc.records, integrity: { nonsense: true }, trustedKeys: trusted }).problems[0]!,
      /integrity: missing or malformed/,
    );
    // A member added to the block, which its signature does not cover, is named, not dropped before the check.
    const added = verifyAnswer({ header: doc, records: doc.records, integrity: { ...doc.integrity, approved_by: 'x' }, trustedKeys: trusted });
    assert.equal(added.ok, false);
    assert.match(added.problems[0]!, /integrity: missing or malformed .*approved_by/);
  });

  it('NDJSON and CSV answers hold the records alone and verify against the receipt', () => {
    for (const format of ['ndjson', 'csv'] as const) {
      const { text, integrity, trailer } = answer(format, s);
      const got =
        format === 'ndjson'
          ? text
              .split('\n')
              .filter((l) => l)
              .map((l) => JSON.parse(l) as Record<string, unknown>)
          : recordsFromCsv(text);
      assert.deepEqual(got, records, format);
      // A receipt carries neither the identifier nor the salt (disclosureDesk.receipt).
      const { identifier: _id, integrity_salt: _salt, ...receiptHeader } = header;
      const receipt = { ...receiptHeader, ...trailer, status: 'answered', identifier_type: 'msisdn' };
      const r = verifyAnswer({ header: receipt, records: got, integrity, trustedKeys: trusted, receipt: true });
      assert.deepEqual(r.problems, [], format);
      assert.deepEqual(r.unchecked, ['identifier', 'integrity_salt']);
    }
  });

  it('a receipt’s digests cannot be reversed by trying numbers: the identifier behind the salt, the parties behind their records', () => {
    // Found from outside (2026-12-06): integrity.fields.identifier was SHA-256 of the identifier's canonical JSON; a
    // receipt gave the number away in 6,790 guesses. And one subscriber in every record made the recipient column's
    // digest as easy to reverse.
    const subject = { type: 'msisdn', value: '+60123456789' };
    const plain = (v: unknown): string => createHash('sha256').update(canonicalJson(v)).digest('hex');
    const one = [{ ...records[0]!, recipient: '+60123456789' }];
    const { integrity } = answer('ndjson', s, one);
    assert.notEqual(integrity.fields['identifier'], plain(subject));
    assert.notEqual(integrity.fields['identifier'], plain({ ...subject, flagged: false }));
    assert.notEqual(integrity.record_fields['recipient'], createHash('sha256').update('"+60123456789"\n').digest('hex'));
    // Columns of no party are as before: a verifier names them from the records alone.
    assert.equal(integrity.record_fields['channel'], createHash('sha256').update('"sms"\n').digest('hex'));
    // The answer itself (the salt in its header) verifies the identifier; a changed identifier is named.
    const doc = JSON.parse(answer('json', s).text) as Record<string, unknown> & { records: Record<string, unknown>[] };
    assert.deepEqual(verifyAnswer({ header: doc, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted }).problems, []);
    const other = { ...doc, identifier: { type: 'msisdn', value: '+60123456788' } };
    assert.deepEqual(verifyAnswer({ header: other, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted }).problems, [
      'identifier: changed',
    ]);
    // A changed event_time shows in the parties' digests too (taken behind it): said as "perhaps".
    const moved = doc.records.map((r, i) => (i === 2 ? { ...r, event_time: '2026-11-03T10:00:00.001Z' } : r));
    assert.deepEqual(verifyAnswer({ header: doc, records: moved, integrity: doc['integrity'], trustedKeys: trusted }).problems, [
      'record 3 (cdr_id id-2): changed (field event_time, perhaps recipient, sender (digested behind cdr_id and event_time))',
    ]);
    // Without the salt the identifier cannot be checked, and that is said.
    const { integrity_salt: _salt, ...noSalt } = doc;
    assert.deepEqual(verifyAnswer({ header: noSalt, records: doc.records, integrity: doc['integrity'], trustedKeys: trusted }).problems, [
      'identifier: cannot be checked without integrity_salt',
      'integrity_salt: missing (it is part of the signed answer)',
    ]);
  });

  it('an answer signed before 2026-12-06 (format 1, unsalted) still verifies, and an edit in it is still named', () => {
    const { integrity_salt: _salt, ...oldHeader } = header;
    const d = new RecordDigester(ANSWER_FORMAT_1);
    for (const r of records) d.add(r);
    const trailer = { months: [], expired_months: [], record_count: records.length };
    const integrity = signAnswer({ ...oldHeader, ...trailer }, d.finish(), s, '2026-12-01T10:00:01.000Z', ANSWER_FORMAT_1);
    assert.equal(integrity.format, ANSWER_FORMAT_1);
    assert.deepEqual(verifyAnswer({ header: { ...oldHeader, ...trailer }, records, integrity, trustedKeys: trusted }).problems, []);
    const edited = records.map((r, i) => (i === 4 ? { ...r, sender: '+60100000000' } : r));
    assert.deepEqual(verifyAnswer({ header: { ...oldHeader, ...trailer }, records: edited, integrity, trustedKeys: trusted }).problems, [
      'record 5 (cdr_id id-4): changed (field sender)',
    ]);
  });

  it('a CSV answer signed when absent fields were "" verifies when read so, and only so', () => {
    const legacy = records.map((r) => ({
      ...r,
      duration_ms: r.duration_ms ?? 0,
      destination_country: r.destination_country ?? '',
      mcc: r.mcc ?? '',
      mnc: r.mnc ?? '',
    }));
    const { text, integrity, trailer } = answer('csv', s, legacy);
    const { identifier: _id, ...receiptHeader } = header;
    const receipt = { ...receiptHeader, ...trailer, status: 'answered', identifier_type: 'msisdn' };
    const now = verifyAnswer({ header: receipt, records: recordsFromCsv(text), integrity, trustedKeys: trusted, receipt: true });
    assert.equal(now.ok, false, 'read as today, the empty cells are nulls the old answer did not sign');
    assert.match(now.problems.join('\n'), /fields destination_country, mcc, mnc/);
    const old = verifyAnswer({ header: receipt, records: recordsFromCsv(text, { emptyAsNull: false }), integrity, trustedKeys: trusted, receipt: true });
    assert.deepEqual(old.problems, []);
    // duration_ms 0 was written as 0, not as an empty cell: it reads back as 0 both ways.
    assert.equal(recordsFromCsv(text)[1]!['duration_ms'], 0);
  });

  it('writes a record with commas, quotes and line breaks as one CSV row that reads back the same', () => {
    const w = answerWriter('csv');
    const r = { ...records[0]!, account_id: 'a,"b"\nc' };
    const text = w.open({}) + w.record('', r);
    assert.deepEqual(recordsFromCsv(text), [r]);
  });

  it('neutralises cells a spreadsheet would run as formulas, and reads back the very records', () => {
    const w = answerWriter('csv');
    const texts = ['=HYPERLINK("http://x")', '@SUM(1)', '-2+3+cmd|x', '+cmd|x', '\tTAB', "'quoted", "''", '=', 'plain', '+60123456789', '+1 (415) 555-0100'];
    const rs = texts.map((t, i) => ({ ...records[0]!, cdr_id: `c${i}`, sender: t, account_id: t }));
    const text = w.open({}) + rs.map((r) => w.record('', r)).join('');
    assert.deepEqual(recordsFromCsv(text), rs);
    const cells = text
      .split('\r\n')
      .slice(1, -1)
      .map((row) => row.split(',')[1]!);
    for (const [i, t] of texts.entries()) {
      const cell = cells[i]!.replace(/^"/, '');
      if (t === 'plain' || t.startsWith('+6') || t.startsWith('+1')) assert.equal(cell.startsWith("'"), false, t);
      else assert.equal(cell.startsWith("'"), true, `${t} is written behind a '`);
    }
  });

  it('says whether an Accept admits what a route answers (exact, major/*, */*, q=0 refuses)', () => {
    const json = ['application/json'];
    for (const a of [undefined, '', ' ', '*/*', 'application/*', 'application/json', 'APPLICATION/JSON; charset=utf-8', 'text/html, */*;q=0.1'])
      assert.equal(acceptsAnyOf(a, json), true, String(a));
    for (const a of ['application/xml', 'text/*', 'application/json;q=0', 'text/csv, application/xml;q=0.9', 'application/jsonx'])
      assert.equal(acceptsAnyOf(a, json), false, a);
    assert.equal(acceptsAnyOf('text/*', ['application/json', 'text/csv']), true);
    // The most specific range decides: `*/*` admits, `application/json;q=0` then refuses JSON.
    assert.equal(acceptsAnyOf('*/*, application/json;q=0', json), false);
    const both = ['application/json', 'text/csv'];
    assert.equal(preferredOf(undefined, both), 'application/json');
    assert.equal(preferredOf('text/*', both), 'text/csv');
    assert.equal(preferredOf('text/csv;q=0, application/json', both), 'application/json');
    assert.equal(preferredOf('application/json;q=0.5, text/csv', both), 'text/csv');
    assert.equal(preferredOf('*/*', both), 'application/json');
    assert.equal(preferredOf('application/xml', both), undefined);
  });

  it('reads the answer form from Accept', () => {
    assert.equal(answerFormatOf(undefined), 'json');
    assert.equal(answerFormatOf('application/x-ndjson'), 'ndjson');
    assert.equal(answerFormatOf('text/csv;q=0.5, application/x-ndjson;q=0.9'), 'ndjson');
    assert.equal(answerFormatOf('text/html, */*;q=0.1'), 'json');
    assert.equal(answerFormatOf('application/xml'), undefined);
    assert.equal(answerFormatOf('text/csv;q=0'), undefined);
    // The route's Accept check lets `text/*` through (it admits text/csv): CSV, not a 406 (found in review).
    assert.equal(answerFormatOf('text/*'), 'csv');
    assert.equal(answerFormatOf('text/*;q=0.2, application/json'), 'json');
  });
});
