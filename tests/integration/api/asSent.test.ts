/**
 * Identifiers ingest could not read are kept flagged under their spelling as sent ("never dropped silently"); with
 * `identifier.as_sent: true` a law-enforcement request, a data-subject export and a legal hold reach exactly those
 * records, on the real broker and engine. Without it the same spelling is a 400 that says how (a typo must not be
 * answered "no records"). Spellings a stranger's producer sent (2026-12-05): a national number of a range the metadata
 * does not know, a full-width `@`, a display name around an address, a `tel:` URI with a domain context, a national
 * number without a destination country.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { verifyAnswer } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { LegalHolds } from '../../../services/platform/holds/legalHolds.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

interface Flagged {
  readonly name: string;
  /** As the request names it: type, and the spelling (the producer's, or the same with invisible characters). */
  readonly type: 'msisdn' | 'email';
  readonly value: string;
  readonly country?: string;
  /** What the answer's header says was looked up: the spelling as ingest kept it (cleaned). */
  readonly kept: string;
  /** The records, as a producer sent them. */
  readonly records: (gen: () => CdrEvent) => CdrEvent[];
}

describe('identifier.as_sent: records whose identifier ingest could not read are reachable', () => {
  const setup = testSetup();
  const now = Date.now();
  const gen = new TrafficGenerator({ seed: 77, scenario: 'normal', startTime: now - 3_600_000, ratePerSecond: 5 });
  const next = (): CdrEvent => gen.next();
  const from = new Date(now - 86_400_000).toISOString();
  const to = new Date(now + 60_000).toISOString();
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let api: TestApi;

  const sms = (recipient: string, destination: string | null): CdrEvent => ({
    ...next(),
    channel: 'sms',
    direction: 'mt',
    sender_type: 'alphanumeric',
    sender: 'ACMEBANK',
    recipient,
    destination_country: destination,
  });
  const email = (recipient: string): CdrEvent => ({
    ...next(),
    channel: 'email',
    direction: 'mt',
    sender_type: 'email',
    sender: 'noreply@shop.example',
    recipient,
    destination_country: null,
  });
  const FLAGGED: Flagged[] = [
    {
      name: 'a national number of a range the metadata does not know (GB drama range), sent to GB and without a country',
      type: 'msisdn',
      value: '07700 900123',
      country: 'GB',
      kept: '07700 900123',
      records: () => [sms('07700 900123', 'GB'), sms('07700 900123', 'GB'), sms('07700 900123\u0000', null)],
    },
    {
      name: 'an address with its @ typed twice',
      type: 'email',
      value: 'alice@@example.com',
      kept: 'alice@@example.com',
      records: () => [email('alice@@example.com'), email('alice@@example.com')],
    },
    {
      name: 'a display name around an address, asked with a zero-width space the producer did not send',
      type: 'email',
      value: '"Bob" <bob@example.com>\u200b',
      kept: '"Bob" <bob@example.com>',
      records: () => [email('"Bob" <bob@example.com>')],
    },
    {
      name: 'a tel: URI with a domain context (a PBX extension)',
      type: 'msisdn',
      value: 'tel:1234;phone-context=pbx.example',
      kept: 'tel:1234;phone-context=pbx.example',
      records: () => [{ ...sms('tel:1234;phone-context=pbx.example', 'GB'), channel: 'voice', duration_ms: 61_000 }],
    },
    {
      name: 'a national number sent as a shortcode (longer than any): a number, kept as one',
      type: 'msisdn',
      value: '07700 900777',
      kept: '07700 900777',
      records: () => [{ ...sms('+447400123456', 'GB'), direction: 'mo', sender_type: 'shortcode', sender: '07700 900777' }],
    },
    {
      name: 'a national number sent by the subscriber (mo) without a destination country',
      type: 'msisdn',
      value: '012-345 6782',
      kept: '012-345 6782',
      records: () => [{ ...sms('+60198765432', null), direction: 'mo', sender_type: 'msisdn', sender: '012-345 6782' }],
    },
  ];
  const sent = new Map<string, CdrEvent[]>();
  /** The same national digits written another way, and a neighbour: other tokens, never in an answer above. */
  const others: CdrEvent[] = [];
  /** The same address in full-width letters, and with a full-width @: read as alice@example.com. */
  const fullWidth: CdrEvent[] = [];
  /** A recipient of nothing but invisible characters (Hangul fillers): refused, as a blank one is. */
  const blank = sms('\u3164\u3164', 'GB');
  /** A number behind an Arabic letter mark (U+061C): the number, like any other direction mark. */
  const marked = sms('\u061c+60 12 345 6711', 'MY');
  /** `0044 7911 123456` is no number under US or AU rules (flagged), but read without a country it is GB's +447911123456. */
  const exitCoded = [
    { ...sms('+12025550143', 'US'), direction: 'mo' as const, sender_type: 'msisdn' as const, sender: '0044 7911 123456' },
    { ...sms('+61412345678', 'AU'), direction: 'mo' as const, sender_type: 'msisdn' as const, sender: '0044 7911 123456' },
  ];
  const gbSubscriber = sms('+447911123456', 'GB');
  /** A French mobile written nationally and declared a shortcode: never read under the destination, kept as sent. */
  const frenchShortcode = { ...sms('+33612345679', 'FR'), direction: 'mo' as const, sender_type: 'shortcode' as const, sender: '06 12 34 56 78' };

  const body = (identifier: Record<string, unknown>) => ({
    authority: 'Metropolitan Police',
    case_reference: 'MP-2026-0777',
    legal_basis: 'Investigatory Powers Act 2016 s.61',
    identifier,
    from,
    to,
  });
  const post = (url: string, payload: unknown, role: string) => api.app.inject({ method: 'POST', url, payload: payload as object, headers: auth(role) });
  const idsOf = (records: readonly { cdr_id?: unknown }[]) => records.map((r) => String(r.cdr_id)).sort();

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    for (const f of FLAGGED) sent.set(f.name, f.records(next));
    others.push(sms('07700900123', 'GB'), sms('07700 900124', 'GB'), email('alice@example.com'), sms('+60123456782', 'MY'));
    fullWidth.push(email('alice＠example.com'), email('ａｌｉｃｅ@example.com'));
    const all = [...[...sent.values()].flat(), ...others, ...fullWidth, blank, marked, ...exitCoded, gbSubscriber, frenchShortcode, ...gen.take(20)];
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: all.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('every record stored', () => ingest.stats.stored + ingest.stats.dlq >= all.length);
    assert.equal(ingest.stats.dlq, 1, 'flagged identifiers are stored, not dead-lettered; only the blank recipient is');
    api = await openTestApi(rt);
  });

  after(async () => {
    await api?.close();
    await ingest?.stop();
    await rt?.close();
  });

  for (const f of FLAGGED) {
    const identifier = { type: f.type, value: f.value, ...(f.country ? { country: f.country } : {}) };
    describe(f.name, () => {
      it('without as_sent: a 400 that says how, and does not quote the value', async () => {
        const res = await post('/v1/lea/requests', body(identifier), 'lea-officer');
        assert.equal(res.statusCode, 400, res.body);
        const err = res.json<{ error: string; message: string }>();
        assert.equal(err.error, 'bad_request');
        assert.match(err.message, /identifier\.as_sent: true/);
        assert.ok(!err.message.includes(f.kept), err.message);
      });

      it('a law-enforcement request with as_sent finds exactly its records, flagged in the signed header', async () => {
        const res = await post('/v1/lea/requests', body({ ...identifier, as_sent: true }), 'lea-officer');
        assert.equal(res.statusCode, 201, res.body);
        assert.equal(res.headers['x-identifier-flagged'], 'true');
        const a = res.json<{ identifier: Record<string, unknown>; records: Record<string, unknown>[]; integrity: unknown }>();
        assert.deepEqual(idsOf(a.records), idsOf(sent.get(f.name)!));
        assert.deepEqual(a.identifier, { type: f.type, value: f.kept, flagged: true });
        for (const r of a.records) assert.ok(r['sender'] === f.kept || r['recipient'] === f.kept, 'the spelling is restored as kept');
        const report = verifyAnswer({ header: a, records: a.records, integrity: a.integrity, trustedKeys: [api.signer.publicKeyObject] });
        assert.deepEqual(report.problems, []);
      });

      it('a data-subject export with as_sent finds the same records; its receipt is at GET /v1/dsar/{id} only', async () => {
        const res = await post('/v1/dsar', { identifier: { ...identifier, as_sent: true }, from, to }, 'dpo');
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.headers['x-identifier-flagged'], 'true');
        assert.deepEqual(idsOf(res.json<{ records: Record<string, unknown>[] }>().records), idsOf(sent.get(f.name)!));
        const id = String(res.headers['x-request-id']);
        const receipt = await api.app.inject({ method: 'GET', url: `/v1/dsar/${id}`, headers: auth('dpo') });
        assert.equal(receipt.statusCode, 200, receipt.body);
        assert.equal(receipt.json<{ record_count: number }>().record_count, sent.get(f.name)!.length);
        assert.ok(!receipt.body.includes(f.kept), 'no identifier in a receipt');
        assert.equal((await api.app.inject({ method: 'GET', url: `/v1/lea/requests/${id}`, headers: auth('lea-officer') })).statusCode, 404);
      });
    });
  }

  it('a legal hold with as_sent copies exactly the records of the spelling', async () => {
    const f = FLAGGED[0]!;
    const res = await post(
      '/v1/holds',
      { case_reference: 'MP-2026-0777', identifier: { type: f.type, value: f.value, country: f.country, as_sent: true }, from, to, reason: 'preserve' },
      'legal',
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<{ copied: number }>().copied, sent.get(f.name)!.length);
  });

  it('as_sent with + and digits: the kept form is the number itself, so a readable number answers as without it', async () => {
    const plain = await post('/v1/lea/requests', body({ type: 'msisdn', value: '+60 12-345 6782' }), 'lea-officer');
    assert.equal(plain.json<{ identifier: Record<string, unknown> }>().identifier['flagged'], false);
    const asSent = await post('/v1/lea/requests', body({ type: 'msisdn', value: '+60 12-345 6782', as_sent: true }), 'lea-officer');
    assert.equal(asSent.statusCode, 201, asSent.body);
    const a = asSent.json<{ identifier: Record<string, unknown>; records: Record<string, unknown>[] }>();
    assert.deepEqual(idsOf(a.records), [others[3]!.cdr_id]);
    assert.deepEqual(idsOf(a.records), idsOf(plain.json<{ records: Record<string, unknown>[] }>().records));
    assert.deepEqual(a.identifier, { type: 'msisdn', value: '+60123456782', flagged: true });
  });

  it('as_sent does not read the spelling under the country given: a flagged spelling has none', async () => {
    // `07700 900123` is a valid German number, but as sent it is the spelling GB's and country-less records kept.
    const res = await post('/v1/lea/requests', body({ type: 'msisdn', value: '07700 900123', country: 'DE', as_sent: true }), 'lea-officer');
    assert.equal(res.statusCode, 201, res.body);
    const a = res.json<{ identifier: Record<string, unknown>; records: { cdr_id: string }[] }>();
    assert.deepEqual(a.identifier, { type: 'msisdn', value: '07700 900123', flagged: true });
    assert.deepEqual(idsOf(a.records), idsOf(sent.get(FLAGGED[0]!.name)!));
    // A national number declared a shortcode is never read under its destination (FR), so as sent is how to reach it.
    const fr = await post('/v1/lea/requests', body({ type: 'msisdn', value: '06 12 34 56 78', country: 'FR', as_sent: true }), 'lea-officer');
    assert.deepEqual(idsOf(fr.json<{ records: { cdr_id: string }[] }>().records), [frenchShortcode.cdr_id]);
    // A spelling that reads as a number without a country (`00` + GB's code) is still looked up as sent.
    const kept = await post('/v1/lea/requests', body({ type: 'msisdn', value: '0044 7911 123456', as_sent: true }), 'lea-officer');
    assert.deepEqual(idsOf(kept.json<{ records: { cdr_id: string }[] }>().records), idsOf(exitCoded));
    const read = await post('/v1/lea/requests', body({ type: 'msisdn', value: '0044 7911 123456' }), 'lea-officer');
    assert.deepEqual(idsOf(read.json<{ records: { cdr_id: string }[] }>().records), [gbSubscriber.cdr_id]);
  });

  it('a hold placed as sent keeps to its spelling: a retention pass does not grow it into the number it reads as', async () => {
    const res = await post(
      '/v1/holds',
      { case_reference: 'MP-2026-0778', identifier: { type: 'msisdn', value: '0044 7911 123456', country: 'US', as_sent: true }, from, to, reason: 'preserve' },
      'legal',
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<{ copied: number }>().copied, exitCoded.length);
    const { storage, keyRing, masterKey } = requireStorage(rt);
    await new LegalHolds(storage, keyRing, masterKey).syncActive();
    const held = await storage.query<{ cdr_id: string }>(`SELECT cdr_id FROM ${storage.table('held_records')} FINAL WHERE hold_id = {h:String}`, {
      h: res.json<{ hold_id: string }>().hold_id,
    });
    assert.deepEqual(idsOf(held), idsOf(exitCoded), "the GB subscriber's record is not held");
    const dsar = await post('/v1/dsar', { identifier: { type: 'msisdn', value: '+447911123456' }, from, to }, 'dpo');
    assert.deepEqual(dsar.json<{ holds: unknown[] }>().holds, [], 'the GB subscriber is not named in that hold');
  });

  it('as_sent still refuses a value of the other type, a value that is only invisible characters, and a non-boolean', async () => {
    for (const [identifier, pattern] of [
      [{ type: 'msisdn', value: 'bob@example.com', as_sent: true }, /send it with type 'email'/],
      [{ type: 'msisdn', value: '\u200b\u200b', as_sent: true }, /nothing is left of it/],
      [{ type: 'email', value: 'alice＠example.com', as_sent: 'yes' }, /as_sent/],
    ] as const) {
      const res = await post('/v1/lea/requests', body(identifier), 'lea-officer');
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json<{ message: string }>().message, pattern);
    }
  });

  it('a recipient of nothing but invisible characters is dead-lettered, not stored under the empty spelling', async () => {
    const res = await post('/v1/lea/requests', body({ type: 'msisdn', value: '\u3164', as_sent: true }), 'lea-officer');
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.json<{ message: string }>().message, /nothing is left of it/);
    const { storage } = requireStorage(rt);
    const rows = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('cdr')} WHERE cdr_id = {id:String}`, { id: blank.cdr_id });
    assert.equal(Number(rows[0]?.n), 0);
  });

  it('an address typed in full-width letters or with a full-width @ is that address (an East Asian input method)', async () => {
    // Before 2026-12-06 `alice＠example.com` was kept flagged and `ａｌｉｃｅ@example.com` under a token of its own: a
    // request for alice@example.com found neither (found from outside).
    for (const value of ['alice@example.com', 'alice＠example.com', 'ＡＬＩＣＥ@example.com']) {
      const res = await post('/v1/lea/requests', body({ type: 'email', value }), 'lea-officer');
      assert.equal(res.statusCode, 201, res.body);
      const plain = others.filter((e) => e.recipient === 'alice@example.com');
      assert.deepEqual(idsOf(res.json<{ records: { cdr_id: string }[] }>().records), idsOf([...fullWidth, ...plain]), value);
    }
  });

  it('a number behind an Arabic letter mark is that number (as behind any direction mark)', async () => {
    const res = await post('/v1/lea/requests', body({ type: 'msisdn', value: '+60 12 345 6711' }), 'lea-officer');
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.headers['x-identifier-flagged'], 'false');
    assert.deepEqual(idsOf(res.json<{ records: { cdr_id: string }[] }>().records), [marked.cdr_id]);
  });

  it('the audit trail says which disclosures and holds were looked up in the flagged form, and holds no spelling', async () => {
    const page = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
    assert.equal(page.statusCode, 200);
    const entries = page.json<{ entries: Record<string, unknown>[] }>().entries;
    const asSent = entries.filter((e) => e['action'] === 'lea.request' && String(e['detail']).includes('unreadable (flagged) form'));
    assert.ok(asSent.some((e) => e['outcome'] === 'started') && asSent.some((e) => e['outcome'] === 'answered'), JSON.stringify(asSent.slice(0, 2)));
    assert.ok(entries.some((e) => e['action'] === 'dsar.export' && String(e['detail']).includes('unreadable (flagged) form')));
    assert.ok(entries.some((e) => e['action'] === 'hold.place' && String(e['detail']).includes('unreadable (flagged) form')));
    // The receipt route's refusals are audited under its own name.
    assert.ok(entries.some((e) => e['action'] === 'dsar.receipt' && e['outcome'] === 'ok'));
    const plain = entries.find(
      (e) => e['action'] === 'lea.request' && e['outcome'] === 'answered' && !String(e['detail']).includes('unreadable (flagged) form'),
    );
    assert.ok(plain, 'a readable identifier is not marked');
    for (const f of FLAGGED) assert.ok(!page.body.includes(JSON.stringify(f.kept).slice(1, -1)), f.name);
  });

  it('the OpenAPI document describes as_sent', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).body;
    assert.match(doc, /"as_sent":\{"type":"boolean"/);
  });
});
