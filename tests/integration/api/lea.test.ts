/**
 * The internal API's disclosure routes on the real broker and engine, with data ingested through Kafka: law-enforcement
 * requests (answers, receipts, the signing key), legal holds, data-subject access and the audit trail. Every route:
 * success, 401 without and with a bad token, 403 with the wrong role, 400 for malformed identifiers, inverted or
 * too-long ranges and unknown fields. Spellings: a national number finds records ingested in international format
 * and the reverse; an email in any case or IDN form finds its records.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import kafkajs from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { canonicalJson, monthKeyOf, recordsFromCsv, verifyAnswer } from '../../../services/core/index.ts';
import { identifierWindowStart } from '../../../services/api/disclosure/disclosureDesk.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, requireStore, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

const ALICE_E164 = '+60123456789';
const ALICE_NATIONAL = '012-345 6789';
const ERIN_E164 = '+60134567890';
const BOB_EMAIL = 'jörg.müller@bücher.example';
const BOB_NORMALISED = 'jörg.müller@xn--bcher-kva.example';
/** A number in a range the phone metadata does not know (Ofcom's drama range): a number by its shape, valid nowhere. */
const CAROL_SPELLINGS = ['+44 7700 900123', '+44-7700-900-123', '+447700900123', '＋４４ ７７００ ９００１２３'];

interface Answer {
  request_id: string;
  records: Record<string, unknown>[];
  expired_months: string[];
  months: { month: string; status: string; records: number }[];
  record_count: number;
  integrity: unknown;
  [k: string]: unknown;
}

describe('the internal API: law enforcement, holds, data-subject access, audit', () => {
  const setup = testSetup();
  const now = Date.now();
  const gen = new TrafficGenerator({ seed: 31, scenario: 'normal', startTime: now - 3_600_000, ratePerSecond: 5 });
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let api: TestApi;
  const alice: CdrEvent[] = [];
  const bob: CdrEvent[] = [];
  const carol: CdrEvent[] = [];
  const dave: CdrEvent[] = [];
  const erin: CdrEvent[] = [];
  const from = new Date(now - 86_400_000).toISOString();
  const to = new Date(now + 60_000).toISOString();
  const lea = (identifier: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    authority: 'Royal Malaysia Police',
    case_reference: 'KL-2026-0042',
    legal_basis: 'Criminal Procedure Code s.116B',
    identifier,
    from,
    to,
    ...extra,
  });
  const post = (url: string, payload: unknown, role = 'lea-officer', headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url, payload: payload as object, headers: { ...auth(role), ...headers } });

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    const base = (): CdrEvent => ({ ...gen.next(), destination_country: 'MY', mcc: '502', mnc: '12' });
    for (let i = 0; i < 6; i++)
      alice.push({ ...base(), channel: 'sms', direction: 'mt', sender_type: 'alphanumeric', sender: 'ACMEBANK', recipient: ALICE_E164 });
    for (let i = 0; i < 4; i++)
      alice.push({ ...base(), channel: 'sms', direction: 'mo', sender_type: 'msisdn', sender: ALICE_NATIONAL, recipient: '+60198765432' });
    for (let i = 0; i < 3; i++)
      bob.push({ ...base(), channel: 'email', direction: 'mt', sender_type: 'email', sender: 'noreply@shop.example', recipient: 'Jörg.Müller@Bücher.example' });
    // The subject's own number and address sent as sender ids of another type (a long number declared
    // `alphanumeric`, a reply-to address): still theirs, so every request below finds them too.
    alice.push({ ...base(), channel: 'sms', direction: 'mt', sender_type: 'alphanumeric', sender: '60 12 345 6789', recipient: '+60198765432' });
    alice.push({ ...base(), channel: 'sms', direction: 'mt', sender_type: 'shortcode', sender: '+60123456789', recipient: '+60198765432' });
    bob.push({
      ...base(),
      channel: 'email',
      direction: 'mt',
      sender_type: 'alphanumeric',
      sender: 'JÖRG.Müller@bücher.example',
      recipient: 'shop@shop.example',
    });
    // A sender whose declared type contradicts its value (an address sent as msisdn, a number sent as email).
    bob.push({ ...base(), channel: 'sms', direction: 'mo', sender_type: 'msisdn', sender: 'JÖRG.Müller@Bücher.example', recipient: '+60198765432' });
    alice.push({ ...base(), channel: 'email', direction: 'mt', sender_type: 'email', sender: '+60 12 345 6789', recipient: 'shop@shop.example' });
    // A number longer than E.164 allows (16 digits): kept as sent, and its holder's request must still reach it.
    dave.push({ ...base(), channel: 'sms', direction: 'mt', sender_type: 'alphanumeric', sender: 'ACMEBANK', recipient: '+60 1298 7654 312345' });
    // An SMS to an address and an email to a number (gateways, relays): the channel does not make them someone else's.
    bob.push({ ...base(), channel: 'sms', direction: 'mt', sender_type: 'alphanumeric', sender: 'ACMEBANK', recipient: 'Jörg.Müller@Bücher.example' });
    alice.push({ ...base(), channel: 'email', direction: 'mt', sender_type: 'email', sender: 'noreply@shop.example', recipient: ALICE_NATIONAL });
    // The routing layer writes an unknown-range number as it comes: each spelling once as recipient, once as sender.
    for (const spelling of CAROL_SPELLINGS) {
      carol.push({
        ...base(),
        destination_country: 'GB',
        channel: 'sms',
        direction: 'mt',
        sender_type: 'alphanumeric',
        sender: 'ACMEBANK',
        recipient: spelling,
      });
      carol.push({
        ...base(),
        destination_country: 'GB',
        channel: 'sms',
        direction: 'mo',
        sender_type: 'msisdn',
        sender: spelling,
        recipient: '+447400123456',
      });
    }
    // Calls without a duration, MCC, MNC or destination country (absent, not 0 or ""), and one of 0 ms with empty codes.
    const call = (): CdrEvent => ({ ...base(), channel: 'voice', direction: 'mt', sender_type: 'msisdn', sender: '+60198765432', recipient: ERIN_E164 });
    erin.push({ ...call(), duration_ms: null, mcc: null, mnc: null, destination_country: null });
    erin.push({ ...call(), duration_ms: 0, mcc: '', mnc: '' });
    const others = gen.take(40);
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      acks: -1,
      messages: [...alice, ...bob, ...carol, ...dave, ...erin, ...others].map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })),
    });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor(
      'every record stored',
      () =>
        ingest.stats.stored + ingest.stats.dlq + ingest.stats.duplicate >= alice.length + bob.length + carol.length + dave.length + erin.length + others.length,
    );
    api = await openTestApi(rt);
  });

  after(async () => {
    await api?.close();
    await ingest?.stop();
    await rt?.close();
  });

  describe('POST /v1/lea/requests', () => {
    it('answers with both parties restored, per-month statuses and a signed integrity block', async () => {
      const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }));
      assert.equal(res.statusCode, 201, res.body);
      const a = res.json<Answer>();
      assert.match(a.request_id, /^lea-/);
      assert.equal(res.headers['location'], `/v1/lea/requests/${a.request_id}`);
      assert.deepEqual(a.records.map((r) => r['cdr_id']).sort(), alice.map((e) => e.cdr_id).sort());
      for (const r of a.records) {
        assert.ok(r['sender'] === ALICE_E164 || r['recipient'] === ALICE_E164, 'every record involves the subject');
        for (const f of ['cdr_id', 'event_time', 'channel', 'direction', 'sender', 'recipient', 'status', 'duration_ms', 'provider_id', 'destination_country'])
          assert.ok(f in r, f);
      }
      const counterpart = a.records.find((r) => r['direction'] === 'mo');
      assert.equal(counterpart?.['recipient'], '+60198765432', 'the other party is restored too');
      assert.deepEqual(a.expired_months, []);
      assert.equal(a.record_count, alice.length);
      assert.ok(a.months.some((m) => m.status === 'answered' && m.records === alice.length));
      const report = verifyAnswer({ header: a, records: a.records, integrity: a.integrity, trustedKeys: [api.signer.publicKeyObject] });
      assert.deepEqual(report.problems, []);
      assert.equal(report.key_trusted, true);
    });

    it('refuses an answer over the row limit (422), audited with its case and subject as an answer is', async () => {
      // Found from outside (2026-12-06): the 422, which tells the caller about how many records the subject has, left
      // an audit entry with no case, legal basis or subject.
      const small = await openTestApi(rt, { maxAnswerRows: 2, chain: 'test-small' });
      try {
        const res = await small.app.inject({
          method: 'POST',
          url: '/v1/lea/requests',
          payload: lea({ type: 'msisdn', value: ALICE_E164 }, { case_reference: 'KL-2026-0422' }),
          headers: auth('lea-officer'),
        });
        assert.equal(res.statusCode, 422, res.body);
        assert.match(res.json<{ message: string }>().message, /about \d+ records, more than this API gives in one answer \(2,/);
        const page = await small.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
        const entry = page.json<{ entries: Record<string, unknown>[] }>().entries.find((e) => e['case_reference'] === 'KL-2026-0422');
        assert.ok(entry, 'the refusal is in the trail under its case');
        assert.deepEqual([entry['action'], entry['status'], entry['outcome']], ['lea.request', 422, 'rejected']);
        assert.equal(entry['authority'], 'Royal Malaysia Police');
        assert.equal(entry['legal_basis'], 'Criminal Procedure Code s.116B');
        assert.match(String(entry['subject_token']), /^[0-9a-f]{32}$/);
        assert.match(String(entry['detail']), /^refused: about \d+ records planned, over the 2 of one answer$/);
        assert.ok(!page.body.includes('60123456789'));
      } finally {
        await small.close();
      }
    });

    it('refuses free text that holds an identifier (400), never quoting it, and audits none of it', async () => {
      // Found from outside (2026-12-06): a number in case_reference, an address as the authority were stored in clear in
      // the audit trail (36 months) and in the request row.
      for (const [field, text] of [
        ['case_reference', 're +60 12-345 6789'],
        ['authority', 'alice@example.com'],
        ['legal_basis', 'order about ＋６０１２３４５６７８９'],
      ] as const) {
        const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { [field]: text }));
        assert.equal(res.statusCode, 400, res.body);
        assert.match(res.json<{ message: string }>().message, new RegExp(`^${field}: holds what looks like a phone number or an email address`));
        assert.ok(!/6789|alice|６７８９/.test(res.body), res.body);
      }
      const trail = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
      assert.ok(!/345 6789|alice@|６７８９/.test(trail.body));
      // Case numbers and statutes are no identifiers.
      const ok = await post(
        '/v1/lea/requests',
        lea({ type: 'msisdn', value: ALICE_E164 }, { case_reference: 'Warrant 0012345678 / 2026', legal_basis: 'Art. 15(1) Directive 2002/58/EC' }),
      );
      assert.equal(ok.statusCode, 201, ok.body);
    });

    it('finds records ingested in international format from a national number, and the reverse', async () => {
      const national = (await post('/v1/lea/requests', lea({ type: 'msisdn', value: '012 345 6789', country: 'my' }))).json<Answer>();
      const international = (await post('/v1/lea/requests', lea({ type: 'msisdn', value: 'tel:+60-12-345-6789' }))).json<Answer>();
      const idd = (await post('/v1/lea/requests', lea({ type: 'msisdn', value: '00 60 12 345 6789', country: 'MY' }))).json<Answer>();
      const ids = alice.map((e) => e.cdr_id).sort();
      for (const a of [national, international, idd]) assert.deepEqual(a.records.map((r) => r['cdr_id']).sort(), ids);
      // The four `mo` records were ingested with the national spelling, the six `mt` ones in E.164.
      assert.equal(national.records.filter((r) => r['direction'] === 'mo').length, 4);
    });

    it('finds a number the phone metadata does not know, whatever its separators, and restores it as its digits', async () => {
      const ids = carol.map((e) => e.cdr_id).sort();
      for (const value of [...CAROL_SPELLINGS, '(+44) 7700 900.123', 'tel:+44-7700-900123']) {
        const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value, country: 'GB' }));
        assert.equal(res.statusCode, 201, res.body);
        const a = res.json<Answer>();
        assert.deepEqual(a.records.map((r) => r['cdr_id']).sort(), ids, value);
        for (const r of a.records) assert.ok(r['sender'] === '+447700900123' || r['recipient'] === '+447700900123', value);
      }
      // Written nationally it is not looked up: without the metadata its country cannot be checked, and the same
      // national digits under another country would be someone else's number.
      const national = await post('/v1/lea/requests', lea({ type: 'msisdn', value: '07700 900123', country: 'GB' }));
      assert.equal(national.statusCode, 400, national.body);
      assert.match(national.json<{ message: string }>().message, /not a valid phone number/);
    });

    it('takes free text in any script, with marks and direction marks where they belong', async () => {
      for (const authority of ['شرطة دبي', 'Polizei Mu\u0308nchen', '\u200fשטרת ישראל', '東京都 警視庁']) {
        // About Dave, whose disclosures no other test reads (Alice's access request checks every authority).
        const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value: '+6012987654312345' }, { authority }));
        assert.equal(res.statusCode, 201, `${authority}: ${res.body}`);
      }
    });

    it('finds a number longer than E.164 allows as ingest kept it (found from outside: refused as over 15 digits)', async () => {
      for (const value of ['+6012987654312345', '+60 1298 7654 312345', 'tel:+60-1298-7654-312345']) {
        const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value }));
        assert.equal(res.statusCode, 201, `${value}: ${res.body}`);
        assert.deepEqual(
          res.json<Answer>().records.map((r) => r['cdr_id']),
          dave.map((e) => e.cdr_id),
          value,
        );
      }
    });

    it('finds an email in any case and IDN form', async () => {
      for (const value of [BOB_EMAIL, 'JÖRG.MÜLLER@BÜCHER.EXAMPLE', 'mailto:jörg.müller@xn--bcher-kva.example', 'jo\u0308rg.mu\u0308ller@bücher.example.']) {
        const res = await post('/v1/lea/requests', lea({ type: 'email', value }));
        assert.equal(res.statusCode, 201, value);
        const a = res.json<Answer>();
        assert.deepEqual(a.records.map((r) => r['cdr_id']).sort(), bob.map((e) => e.cdr_id).sort(), value);
        assert.ok(a.records.every((r) => r['recipient'] === BOB_NORMALISED || r['sender'] === BOB_NORMALISED));
      }
    });

    it('answers a range of years: the records it holds, and every month outside the identifier window as expired', async () => {
      const start = Date.UTC(new Date(now).getUTCFullYear() - 3, 0, 1);
      const res = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { from: new Date(start).toISOString() }));
      assert.equal(res.statusCode, 201, res.body);
      const a = res.json<Answer>();
      assert.deepEqual(a.records.map((r) => r['cdr_id']).sort(), alice.map((e) => e.cdr_id).sort());
      const windowStart = monthKeyOf(identifierWindowStart(now));
      const expected: string[] = [];
      for (let m = start; monthKeyOf(m) < windowStart; m = Date.UTC(new Date(m).getUTCFullYear(), new Date(m).getUTCMonth() + 1, 1))
        expected.push(monthKeyOf(m));
      assert.ok(expected.length >= 24);
      assert.deepEqual(a.expired_months, expected, 'the months before the window, each once, in order');
      assert.equal(a.months.length, expected.length + 13, 'the window: twelve past months and this one');
    });

    it('says "no traffic" for a number nobody used, which is not "expired"', async () => {
      const a = (await post('/v1/lea/requests', lea({ type: 'msisdn', value: '+60123450000' }))).json<Answer>();
      assert.equal(a.records.length, 0);
      assert.deepEqual(a.expired_months, []);
      assert.ok(a.months.every((m) => m.status === 'no_traffic'));
    });

    it('streams NDJSON one record per line and CSV row by row, with the receipt carrying the signature', async () => {
      const nd = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }), 'lea-officer', { accept: 'application/x-ndjson' });
      assert.equal(nd.statusCode, 201);
      assert.match(String(nd.headers['content-type']), /^application\/x-ndjson/);
      const lines = nd.body.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, alice.length);
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(records.every((r) => typeof r['cdr_id'] === 'string'));
      const receipt = await api.app.inject({ method: 'GET', url: String(nd.headers['location']), headers: auth('lea-officer') });
      assert.equal(receipt.statusCode, 200);
      const body = receipt.json<Record<string, unknown>>();
      assert.equal(body['status'], 'answered');
      assert.equal(body['record_count'], alice.length);
      assert.ok(!JSON.stringify(body).includes('60123456789'), 'a receipt holds no identifier');
      const report = verifyAnswer({ header: body, records, integrity: body['integrity'], trustedKeys: [api.signer.publicKeyObject], receipt: true });
      assert.deepEqual(report.problems, []);
      assert.deepEqual(report.unchecked, ['identifier', 'integrity_salt']);
      // Nothing in the receipt gives the number away to someone trying numbers (found from outside: a plain SHA-256).
      const integrity = body['integrity'] as { format: string; fields: Record<string, string> };
      assert.equal(integrity.format, 'cdr-pipeline/signed-answer/2');
      assert.ok(!('integrity_salt' in body), 'the salt stays in the answer');
      const plainDigest = (v: unknown): string => createHash('sha256').update(canonicalJson(v)).digest('hex');
      assert.notEqual(integrity.fields['identifier'], plainDigest({ type: 'msisdn', value: ALICE_E164, flagged: false }));
      const csv = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }), 'lea-officer', { accept: 'text/csv' });
      assert.equal(csv.statusCode, 201);
      const rows = csv.body.trim().split('\r\n');
      assert.equal(rows.length, alice.length + 1);
      assert.match(rows[0]!, /^cdr_id,account_id,event_time,/);
      const odd = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { case_reference: 'KL-2026-0406' }), 'lea-officer', {
        accept: 'application/xml',
      });
      assert.equal(odd.statusCode, 406);
      assert.equal(odd.json<{ message: string }>().message, 'Accept: this route answers application/json, application/x-ndjson, application/ndjson, text/csv');
      // Audited with its case and subject, as a 422 is (found in review: the scope's check before the handler left
      // them out).
      const page = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
      const entry = page.json<{ entries: Record<string, unknown>[] }>().entries.find((e) => e['case_reference'] === 'KL-2026-0406');
      assert.ok(entry, 'the 406 is in the trail under its case');
      assert.deepEqual([entry['status'], entry['outcome'], entry['detail']], [406, 'rejected', 'refused: no form of the answer the Accept header admits']);
      assert.match(String(entry['subject_token']), /^[0-9a-f]{32}$/);
      // `text/*` admits CSV.
      const anyText = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }), 'lea-officer', { accept: 'text/*' });
      assert.equal(anyText.statusCode, 201);
      assert.match(String(anyText.headers['content-type']), /^text\/csv/);
    });

    it('gives null for a duration, MCC, MNC or destination country the record did not have, in every form, and 0 ms as 0', async () => {
      const [absent, zero] = erin;
      const json = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ERIN_E164 }));
      assert.equal(json.statusCode, 201, json.body);
      const a = json.json<Answer>();
      const pick = (r: Record<string, unknown> | undefined) => ({
        duration_ms: r?.['duration_ms'],
        mcc: r?.['mcc'],
        mnc: r?.['mnc'],
        destination_country: r?.['destination_country'],
      });
      const byId = (records: readonly Record<string, unknown>[], id: string | undefined) => pick(records.find((r) => r['cdr_id'] === id));
      const want = [
        { duration_ms: null, mcc: null, mnc: null, destination_country: null },
        { duration_ms: 0, mcc: null, mnc: null, destination_country: 'MY' },
      ];
      assert.deepEqual([byId(a.records, absent?.cdr_id), byId(a.records, zero?.cdr_id)], want);
      const csv = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ERIN_E164 }), 'lea-officer', { accept: 'text/csv' });
      assert.equal(csv.statusCode, 201);
      const fromCsv = recordsFromCsv(csv.body);
      assert.deepEqual([byId(fromCsv, absent?.cdr_id), byId(fromCsv, zero?.cdr_id)], want);
      const receipt = await api.app.inject({ method: 'GET', url: String(csv.headers['location']), headers: auth('lea-officer') });
      const body = receipt.json<Record<string, unknown>>();
      const report = verifyAnswer({ header: body, records: fromCsv, integrity: body['integrity'], trustedKeys: [api.signer.publicKeyObject], receipt: true });
      assert.deepEqual(report.problems, [], 'the CSV answer read back verifies: an empty cell of these columns is the null that was signed');
    });

    it('welcomes fields it does not read (the brief: "more fields are welcome"), answers as without them, and keeps none of them', async () => {
      const marker = 'ZQX-unread-field-7731';
      const plain = await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }));
      // What another request's body holds (a hold's reason), a caller's own note, nested objects, in the identifier too.
      const extra = await post(
        '/v1/lea/requests',
        lea({ type: 'msisdn', value: ALICE_E164, label: marker }, { reason: marker, note: { by: marker, tags: [marker] }, requested_by: marker }),
      );
      assert.equal(plain.statusCode, 201, plain.body);
      assert.equal(extra.statusCode, 201, extra.body);
      const ids = (res: typeof plain) =>
        res
          .json<Answer>()
          .records.map((r) => r['cdr_id'])
          .sort();
      assert.deepEqual(ids(extra), ids(plain));
      assert.ok(!extra.body.includes(marker), 'the answer (and the signed header) carries none of them');
      const receipt = await api.app.inject({ method: 'GET', url: String(extra.headers['location']), headers: auth('lea-officer') });
      assert.equal(receipt.statusCode, 200);
      assert.ok(!receipt.body.includes(marker), 'nor does the receipt');
      // A hold copied from a law-enforcement body (authority, legal basis) is placed as the hold it names.
      const held = await post(
        '/v1/holds',
        {
          authority: marker,
          legal_basis: marker,
          case_reference: 'KL-2026-0042-H',
          identifier: { type: 'msisdn', value: ERIN_E164 },
          from,
          to,
          reason: 'preserve for trial',
        },
        'legal',
      );
      assert.equal(held.statusCode, 201, held.body);
      assert.ok(!held.body.includes(marker));
      const release = await api.app.inject({ method: 'DELETE', url: `/v1/holds/${held.json<{ hold_id: string }>().hold_id}`, headers: auth('legal') });
      assert.equal(release.statusCode, 200);
      const dsar = await post('/v1/dsar', { identifier: { type: 'msisdn', value: ERIN_E164 }, note: marker }, 'dpo');
      assert.equal(dsar.statusCode, 200, dsar.body);
      assert.ok(!dsar.body.includes(marker));
      // Nothing of them is stored: the audit trail, the request log and the holds are searched for the marker.
      await api.services.disclosure.desk.settled();
      await api.services.audit.flush();
      const { storage } = requireStorage(rt);
      for (const table of ['audit_log', 'disclosure_requests', 'legal_holds', 'legal_hold_events']) {
        const rows = await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table(table)} WHERE position(toString(tuple(*)), {m:String}) > 0`, {
          m: marker,
        });
        assert.equal(Number(rows[0]?.n), 0, table);
      }
      // The same scan finds what these requests did store (so it reads the rows it searches).
      const found = async (table: string, text: string) =>
        Number(
          (
            await storage.query<{ n: string }>(`SELECT count() AS n FROM ${storage.table(table)} WHERE position(toString(tuple(*)), {m:String}) > 0`, {
              m: text,
            })
          )[0]?.n,
        );
      assert.ok((await found('legal_holds', 'KL-2026-0042-H')) > 0);
      assert.ok((await found('audit_log', 'KL-2026-0042-H')) > 0);
      // The retention pass's body stays strict: an unread field there could turn a dry run into a real one.
      const strict = await post('/v1/admin/retention/run', { dryRun: true }, 'admin');
      assert.equal(strict.statusCode, 400, strict.body);
      assert.match(strict.json<{ message: string }>().message, /^body: "dryRun" is not a field of this request: did you mean "dry_run"\?/);
    });

    it('refuses malformed identifiers, inverted or too-long ranges and unknown fields with a 400 that names the problem', async () => {
      const cases: [string, unknown, RegExp][] = [
        ['letters for a number', lea({ type: 'msisdn', value: 'not a number' }), /identifier\.value: not a valid phone number: it holds characters/],
        ['a national number without a country', lea({ type: 'msisdn', value: '012-345 6789' }), /identifier\.country/],
        // Found from outside: an international number with a stray letter was told to give a country.
        [
          'an international number with a letter',
          lea({ type: 'msisdn', value: '+60123456789x' }),
          /^identifier\.value: not a valid phone number: it holds characters no phone number has/,
        ],
        ['an international number too short', lea({ type: 'msisdn', value: '+6012' }), /^identifier\.value: not a valid international phone number/],
        // With the country given, the message must not ask for it (found from outside).
        ['digits that are no number of the country given', lea({ type: 'msisdn', value: '12345', country: 'MY' }), /not a valid phone number of MY \(/],
        ['an email without a domain', lea({ type: 'email', value: 'alice@' }), /email/],
        // Whatever the number's form (found from outside: refused for a national number only).
        [
          'a country code that is none, with an international number',
          lea({ type: 'msisdn', value: ALICE_E164, country: 'XX' }),
          /^identifier\.country: XX is not an ISO 3166-1 alpha-2 country code$/,
        ],
        // Taken as written, not swapped to the type of what is in it (found from outside: a 201 whose answer said msisdn).
        [
          'a number declared an email',
          lea({ type: 'email', value: ALICE_E164 }),
          /^identifier\.type is 'email' but identifier\.value is a phone number: send it with type 'msisdn'$/,
        ],
        [
          'an address declared a number',
          lea({ type: 'msisdn', value: 'alice@example.com' }),
          /^identifier\.type is 'msisdn' but identifier\.value is an email address/,
        ],
        ['an unknown identifier type', lea({ type: 'imsi', value: '502120123456789' }), /type/],
        ['an inverted range', lea({ type: 'msisdn', value: ALICE_E164 }, { from: to, to: from }), /must be after/],
        [
          'a range longer than anything is kept',
          lea({ type: 'msisdn', value: ALICE_E164 }, { from: '2000-01-01T00:00:00Z', to: '2025-03-01T00:00:00Z' }),
          /longer than 15 years/,
        ],
        ['a date not on the calendar', lea({ type: 'msisdn', value: ALICE_E164 }, { from: '2026-02-30T00:00:00Z' }), /from/],
        // Fields a request does not read are welcome (the brief's shapes), but one that looks like a misspelling of one
        // it reads is refused: read as welcome, it would change the answer unnoticed (ADR 0041).
        [
          'a misspelt optional field',
          lea({ type: 'msisdn', value: ALICE_E164 }, { confidental: true }),
          /^body: "confidental" .*did you mean "confidential"\?/,
        ],
        [
          'a misspelt field of the identifier',
          lea({ type: 'msisdn', value: '012 345 6789', contry: 'MY' }),
          /^body\.identifier: "contry" .*did you mean "country"\?/,
        ],
        // Looked for only when the field itself is not there: beside `from`, a `start` is the caller's own.
        [
          'another name of the range, for a range not given',
          lea({ type: 'msisdn', value: ALICE_E164 }, { from: undefined, start: from }),
          /did you mean "from"\?/,
        ],
        // Confidentiality is never lost to a name or a place (found in review: both were dropped, the request stored as
        // not confidential).
        ['confidentiality in other words', lea({ type: 'msisdn', value: ALICE_E164 }, { gag_order: true }), /did you mean "confidential"\?/],
        [
          'confidential inside the identifier',
          lea({ type: 'msisdn', value: ALICE_E164, confidential: true }),
          /^body\.identifier: "confidential" is not a field here: did you mean "body\.confidential"\?$/,
        ],
        ['a missing legal basis', { ...lea({ type: 'msisdn', value: ALICE_E164 }), legal_basis: undefined }, /legal_basis/],
        ['a blank authority', lea({ type: 'msisdn', value: ALICE_E164 }, { authority: '   ' }), /authority/],
        ['confidential as a string', lea({ type: 'msisdn', value: ALICE_E164 }, { confidential: 'yes' }), /confidential/],
      ];
      for (const [what, body, message] of cases) {
        const res = await post('/v1/lea/requests', body);
        assert.equal(res.statusCode, 400, what);
        const e = res.json<{ error: string; message: string }>();
        assert.equal(e.error, 'bad_request', what);
        assert.match(e.message, message, what);
        assert.ok(!e.message.includes('60123456789') && !e.message.includes('012-345'), `${what}: the message quotes no identifier`);
      }
    });

    it('needs a token (401) and the lea-officer role (403)', async () => {
      const body = lea({ type: 'msisdn', value: ALICE_E164 });
      assert.equal((await api.app.inject({ method: 'POST', url: '/v1/lea/requests', payload: body })).statusCode, 401);
      assert.equal(
        (await api.app.inject({ method: 'POST', url: '/v1/lea/requests', payload: body, headers: { authorization: 'Bearer nope' } })).statusCode,
        401,
      );
      for (const role of ['legal', 'dpo', 'auditor', 'admin', 'billing', 'fraud'])
        assert.equal((await post('/v1/lea/requests', body, role)).statusCode, 403, role);
    });
  });

  describe('GET /v1/lea/requests/{id} and /v1/lea/signing-key', () => {
    it('shows a past request and its summary, never the identifier; 404 for an unknown id', async () => {
      const a = (await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { confidential: true }))).json<Answer>();
      const res = await api.app.inject({ method: 'GET', url: `/v1/lea/requests/${a.request_id}`, headers: auth('lea-officer') });
      assert.equal(res.statusCode, 200);
      const r = res.json<Record<string, unknown>>();
      assert.equal(r['authority'], 'Royal Malaysia Police');
      assert.equal(r['case_reference'], 'KL-2026-0042');
      assert.equal(r['legal_basis'], 'Criminal Procedure Code s.116B');
      assert.equal(r['identifier_type'], 'msisdn');
      assert.equal(r['confidential'], true);
      assert.equal(r['record_count'], alice.length);
      assert.equal(r['requested_by'], 'test-lea-officer');
      assert.ok(!('records' in r));
      assert.ok(!res.body.includes('60123456789'));
      assert.equal(
        (await api.app.inject({ method: 'GET', url: '/v1/lea/requests/lea-00000000-0000-0000-0000-000000000000', headers: auth('lea-officer') })).statusCode,
        404,
      );
      assert.equal((await api.app.inject({ method: 'GET', url: `/v1/lea/requests/${a.request_id}` })).statusCode, 401);
      assert.equal((await api.app.inject({ method: 'GET', url: `/v1/lea/requests/${a.request_id}`, headers: auth('auditor') })).statusCode, 403);
    });

    it('serves the public signing key to lea officers and auditors only', async () => {
      for (const role of ['lea-officer', 'auditor']) {
        const res = await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key', headers: auth(role) });
        assert.equal(res.statusCode, 200, role);
        const k = res.json<{ key_id: string; public_key_pem: string; algorithm: string }>();
        assert.equal(k.key_id, api.signer.keyId);
        assert.equal(k.algorithm, 'Ed25519');
        assert.match(k.public_key_pem, /BEGIN PUBLIC KEY/);
        assert.ok(!res.body.includes('PRIVATE'));
      }
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key', headers: auth('legal') })).statusCode, 403);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key' })).statusCode, 401);
    });
  });

  describe('legal holds over HTTP', () => {
    const hold = (extra: Record<string, unknown> = {}) => ({
      case_reference: 'CIV-2026-7',
      identifier: { type: 'msisdn', value: ALICE_NATIONAL, country: 'MY' },
      from,
      to,
      reason: 'litigation: preserve the customer’s messages',
      ...extra,
    });

    it('places, lists, reads and releases a hold; releasing twice is harmless; 404 for an unknown hold', async () => {
      const placed = await post('/v1/holds', hold(), 'legal');
      assert.equal(placed.statusCode, 201, placed.body);
      const p = placed.json<{ hold_id: string; copied: number; state: string }>();
      assert.match(p.hold_id, /^hold-/);
      assert.equal(p.copied, alice.length, 'the live records are copied under the hold');
      assert.equal(p.state, 'active');
      const list = await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('legal') });
      assert.equal(list.statusCode, 200);
      assert.ok(list.json<{ holds: { hold_id: string }[] }>().holds.some((h) => h.hold_id === p.hold_id));
      assert.ok(!list.body.includes('60123456789') && !list.body.includes('345 6789'), 'a hold lists no identifier');
      const one = await api.app.inject({ method: 'GET', url: `/v1/holds/${p.hold_id}`, headers: auth('legal') });
      assert.equal(one.json<{ case_reference: string }>().case_reference, 'CIV-2026-7');
      for (let i = 0; i < 2; i++) {
        const del = await api.app.inject({ method: 'DELETE', url: `/v1/holds/${p.hold_id}`, headers: auth('legal') });
        assert.equal(del.statusCode, 200);
        assert.equal(del.json<{ state: string }>().state, 'released');
      }
      for (const url of ['/v1/holds/hold-00000000-0000-0000-0000-000000000000', '/v1/holds/nonsense']) {
        assert.equal((await api.app.inject({ method: 'DELETE', url, headers: auth('legal') })).statusCode, 404, url);
        assert.equal((await api.app.inject({ method: 'GET', url, headers: auth('legal') })).statusCode, 404, url);
      }
    });

    it('refuses what is not a hold (400), and callers without the legal role (401/403)', async () => {
      for (const [what, body] of [
        ['a malformed identifier', hold({ identifier: { type: 'msisdn', value: '12' } })],
        ['an inverted range', hold({ from: to, to: from })],
        ['a misspelt field', { ...hold(), reason: undefined, resaon: 'typo' }],
        ['no reason', { ...hold(), reason: undefined }],
        // Found from outside: kept in legal_holds and the audit trail past the identifier window.
        ['an address in the reason', hold({ reason: 'dispute with bob.party@example.org' })],
        ['a number in the case reference', hold({ case_reference: 'CIV +40 721 234 567' })],
      ] as const) {
        const res = await post('/v1/holds', body, 'legal');
        assert.equal(res.statusCode, 400, what);
        assert.equal(res.json<{ error: string }>().error, 'bad_request', what);
      }
      assert.equal((await api.app.inject({ method: 'POST', url: '/v1/holds', payload: hold() })).statusCode, 401);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/holds', headers: { authorization: 'Bearer x' } })).statusCode, 401);
      assert.equal((await post('/v1/holds', hold(), 'lea-officer')).statusCode, 403);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('dpo') })).statusCode, 403);
      assert.equal((await api.app.inject({ method: 'DELETE', url: '/v1/holds/x', headers: auth('auditor') })).statusCode, 403);
    });
  });

  describe('POST /v1/dsar', () => {
    it('exports the subject’s records in both directions and the disclosures made about it, withholding confidential ones', async () => {
      // One open and one confidential law-enforcement request about Alice (besides the earlier ones), and a confidential hold.
      await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { case_reference: 'OPEN-1' }));
      await post('/v1/lea/requests', lea({ type: 'msisdn', value: ALICE_E164 }, { case_reference: 'SECRET-1', confidential: true }));
      await post(
        '/v1/holds',
        { case_reference: 'SECRET-HOLD', identifier: { type: 'msisdn', value: ALICE_E164 }, from, to, reason: 'investigation', confidential: true },
        'legal',
      );
      const res = await post('/v1/dsar', { identifier: { type: 'msisdn', value: '0123456789', country: 'MY' } }, 'dpo');
      assert.equal(res.statusCode, 200, res.body);
      const d = res.json<
        Answer & {
          disclosures: { case_reference: string; authority: string; legal_basis: string; at: string }[];
          withheld: { disclosures: number; holds: number };
          disclosures_unsearchable_months: string[];
        }
      >();
      assert.deepEqual(d.records.map((r) => r['cdr_id']).sort(), alice.map((e) => e.cdr_id).sort());
      assert.deepEqual(d.disclosures_unsearchable_months, [], 'every month of the window searched');
      assert.ok(d.records.some((r) => r['sender'] === ALICE_E164) && d.records.some((r) => r['recipient'] === ALICE_E164), 'both directions');
      const cases = d.disclosures.map((x) => x.case_reference);
      assert.ok(cases.includes('OPEN-1'));
      assert.ok(!cases.includes('SECRET-1'));
      assert.ok(d.disclosures.every((x) => x.authority === 'Royal Malaysia Police' && x.legal_basis !== '' && x.at !== ''));
      assert.ok(d.withheld.disclosures >= 2, 'the confidential requests are counted, not described');
      assert.equal(d.withheld.holds, 1);
      assert.ok(!res.body.includes('SECRET'));
      const report = verifyAnswer({ header: d, records: d.records, integrity: d.integrity, trustedKeys: [api.signer.publicKeyObject] });
      assert.deepEqual(report.problems, []);
    });

    it('lists the requests about someone else whose answers gave the subject out as the other party, with how many records', async () => {
      // Found from outside: a request about the number Alice writes to gave her number to the police, and her export
      // did not list it. Zed (+60198765432) is the other party of Alice's, Bob's and Erin's records.
      type Listed = { case_reference: string; records: number; as: string };
      const exportOf = async (identifier: Record<string, unknown>) => {
        const res = await post('/v1/dsar', { identifier }, 'dpo');
        assert.equal(res.statusCode, 200, res.body);
        return res.json<Answer & { disclosures: Listed[]; withheld: { disclosures: number } }>();
      };
      const withheldBefore = (await exportOf({ type: 'msisdn', value: ALICE_E164 })).withheld.disclosures;
      const zed = await post('/v1/lea/requests', lea({ type: 'msisdn', value: '+60198765432' }, { case_reference: 'ABOUT-ZED-1' }));
      assert.equal(zed.statusCode, 201, zed.body);
      const given = zed.json<Answer>().records;
      const partyOf = (value: string) => given.filter((r) => r['sender'] === value || r['recipient'] === value).length;
      assert.ok(partyOf(ALICE_E164) >= 4 && partyOf(ERIN_E164) === 2, `${partyOf(ALICE_E164)} ${partyOf(ERIN_E164)}`);
      await post('/v1/lea/requests', lea({ type: 'msisdn', value: '+60198765432' }, { case_reference: 'ABOUT-ZED-SECRET', confidential: true }));

      const alice = await exportOf({ type: 'msisdn', value: '012-345 6789', country: 'MY' });
      assert.deepEqual(
        alice.disclosures.filter((x) => x.case_reference.startsWith('ABOUT-ZED')).map((x) => [x.case_reference, x.as, x.records]),
        [['ABOUT-ZED-1', 'party', partyOf(ALICE_E164)]],
      );
      assert.ok(alice.disclosures.filter((x) => x.as === 'subject').length > 0 && alice.disclosures.every((x) => x.as === 'subject' || x.as === 'party'));
      assert.equal(alice.withheld.disclosures, withheldBefore + 1, 'the confidential request about Zed is counted, not described');
      assert.ok(!JSON.stringify(alice.disclosures).includes('SECRET'));
      const erin = await exportOf({ type: 'msisdn', value: ERIN_E164 });
      assert.deepEqual(
        erin.disclosures.filter((x) => x.as === 'party' && x.case_reference.startsWith('ABOUT-ZED')).map((x) => [x.case_reference, x.records]),
        [['ABOUT-ZED-1', 2]],
      );
      // Zed's own export lists the request about Zed once, as its subject.
      const own = await exportOf({ type: 'msisdn', value: '+60198765432' });
      assert.deepEqual(
        own.disclosures.filter((x) => x.case_reference === 'ABOUT-ZED-1').map((x) => x.as),
        ['subject'],
      );
      // Dave is in no answer about Zed.
      assert.deepEqual(
        (await exportOf({ type: 'msisdn', value: '+60 1298 7654 312345', as_sent: true })).disclosures.filter((x) => x.case_reference.startsWith('ABOUT-ZED')),
        [],
      );
      // The record of it holds tokens, never the numbers.
      const stored = JSON.stringify(await requireStore(rt).query(`SELECT * FROM ${requireStore(rt).table('disclosure_parties')}`));
      for (const n of [ALICE_E164, ERIN_E164, '60123456789', '60134567890']) assert.ok(!stored.includes(n), n);
    });

    it('refuses malformed requests (400) and other roles (401/403)', async () => {
      assert.equal((await post('/v1/dsar', { identifier: { type: 'email', value: 'nobody' } }, 'dpo')).statusCode, 400);
      // A field it does not read is welcome; one that looks like a misspelt one is refused.
      assert.equal((await post('/v1/dsar', { identifier: { type: 'msisdn', value: ALICE_E164 }, form: from }, 'dpo')).statusCode, 400);
      assert.equal((await post('/v1/dsar', { identifier: { type: 'msisdn', value: ALICE_E164 }, from: to, to: from }, 'dpo')).statusCode, 400);
      assert.equal((await api.app.inject({ method: 'POST', url: '/v1/dsar', payload: { identifier: { type: 'msisdn', value: ALICE_E164 } } })).statusCode, 401);
      assert.equal((await post('/v1/dsar', { identifier: { type: 'msisdn', value: ALICE_E164 } }, 'lea-officer')).statusCode, 403);
    });
  });

  describe('the audit trail', () => {
    it('records every request, denied access and disclosure, with no identifier in clear, and verifies', async () => {
      const page = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
      assert.equal(page.statusCode, 200);
      const entries = page.json<{ entries: Record<string, unknown>[] }>().entries;
      const outcomes = new Set(entries.map((e) => e['outcome']));
      for (const o of ['ok', 'unauthenticated', 'forbidden', 'rejected', 'started', 'answered']) assert.ok(outcomes.has(o), o);
      const disclosure = entries.find((e) => e['action'] === 'lea.request' && e['outcome'] === 'answered');
      assert.ok(disclosure);
      assert.equal(disclosure['case_reference'], 'KL-2026-0042');
      assert.equal(disclosure['legal_basis'], 'Criminal Procedure Code s.116B');
      assert.equal(disclosure['actor'], 'test-lea-officer');
      assert.match(String(disclosure['subject_token']), /^[0-9a-f]{32}$/);
      assert.ok(Number(disclosure['rows']) > 0);
      for (const needle of ['60123456789', '345 6789', 'müller', 'xn--bcher']) assert.ok(!page.body.toLowerCase().includes(needle), needle);
      assert.ok(entries.some((e) => e['action'] === 'hold.place' && e['case_reference'] === 'CIV-2026-7'));
      assert.ok(entries.some((e) => e['action'] === 'dsar.export'));
      const verify = await api.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth('auditor') });
      assert.equal(verify.statusCode, 200);
      const v = verify.json<{ ok: boolean; entries: number }>();
      assert.equal(v.ok, true, verify.body);
      assert.ok(v.entries >= entries.length);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth('lea-officer') })).statusCode, 403);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit' })).statusCode, 401);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit?limit=0', headers: auth('auditor') })).statusCode, 400);
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit?cursor=%27%3B', headers: auth('auditor') })).statusCode, 400);
    });

    it('pages with a cursor', async () => {
      const first = (await api.app.inject({ method: 'GET', url: '/v1/audit?limit=3', headers: auth('auditor') })).json<{
        entries: { seq: number }[];
        next_cursor: string;
      }>();
      assert.equal(first.entries.length, 3);
      const second = (
        await api.app.inject({ method: 'GET', url: `/v1/audit?limit=3&cursor=${encodeURIComponent(first.next_cursor)}`, headers: auth('auditor') })
      ).json<{ entries: { seq: number }[] }>();
      assert.equal(second.entries[0]!.seq, first.entries[2]!.seq + 1);
    });
  });

  it('stores nothing of the subject in clear in the request table', async () => {
    const { storage } = requireStorage(rt);
    const rows = JSON.stringify(await storage.query(`SELECT * FROM ${storage.table('disclosure_requests')}`));
    for (const needle of ['60123456789', 'müller', 'xn--bcher']) assert.ok(!rows.includes(needle), needle);
  });
});
