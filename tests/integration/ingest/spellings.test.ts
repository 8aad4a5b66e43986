/**
 * The identity lookup normalises exactly as ingest: one subscriber written seven ways by a producer (national
 * format, an exit code of its country, `00` though Australia's is `0011`, country code without +, tel: URIs, NUL padding) is one token in the
 * vault and is found whole by a lookup or a legal hold under any spelling; a neighbour one digit away is not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { normaliseIdentifier } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { LegalHolds } from '../../../services/platform/holds/legalHolds.ts';
import { lookupLive } from '../../../services/platform/identity/identityLookup.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

/** One Australian mobile subscriber as different producers spell it, all sent with destination_country AU. */
const SPELLINGS = ['+61 412 345 678', '0412 345 678', '0011 61 412 345 678', '0061412345678', '61412345678', 'tel:+61-412-345-678', '0412345678\u0000\u0000'];
const NEIGHBOUR = '0412 345 679';
/** A number in a range the phone metadata does not know (Ofcom's drama range), written internationally three ways. */
const UNKNOWN_RANGE = ['+44 7700 900123', '+44-7700-900-123', '(+44) 7700.900.123'];

describe('the identity lookup normalises exactly as ingest', () => {
  const setup = testSetup();
  const gen = new TrafficGenerator({ seed: 21, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
  let rt: PipelineRuntime;
  let ingest: IngestService;
  const subscriber: CdrEvent[] = [];
  let neighbour: CdrEvent;
  const unknownRange: CdrEvent[] = [];

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    const sms = (recipient: string): CdrEvent => ({
      ...gen.next(),
      channel: 'sms',
      direction: 'mt',
      sender_type: 'alphanumeric',
      sender: 'ACMEBANK',
      recipient,
      destination_country: 'AU',
      mcc: '505',
      mnc: '01',
    });
    subscriber.push(...SPELLINGS.map(sms));
    neighbour = sms(NEIGHBOUR);
    unknownRange.push(...UNKNOWN_RANGE.map((recipient) => ({ ...sms(recipient), destination_country: 'GB' })));
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      acks: -1,
      messages: [...subscriber, neighbour, ...unknownRange].map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })),
    });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('every record stored', () => ingest.stats.stored + ingest.stats.dlq >= SPELLINGS.length + 1 + UNKNOWN_RANGE.length);
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('stores every spelling (none is dead-lettered) under one recipient token', async () => {
    assert.equal(ingest.stats.dlq, 0);
    const { storage } = requireStorage(rt);
    const rows = await storage.query<{ t: string; n: string }>(
      `SELECT recipient_token t, count() n FROM ${storage.table('cdr')} WHERE cdr_id IN {ids:Array(String)} GROUP BY t`,
      { ids: subscriber.map((e) => e.cdr_id) },
    );
    assert.deepEqual(
      rows.map((r) => Number(r.n)),
      [SPELLINGS.length],
    );
  });

  for (const [spelling, country] of [
    ['+61412345678', undefined],
    ['tel:+61 412 345 678', undefined],
    ['0412 345 678', 'AU'],
    ['0011 61 412 345 678', 'au'],
  ] as const) {
    it(`a lookup for ${JSON.stringify(spelling)}${country ? ` (country ${country})` : ''} finds all of them and nothing else`, async () => {
      const { storage, keyRing } = requireStorage(rt);
      const id = normaliseIdentifier(spelling, 'msisdn', country?.toUpperCase());
      const { records } = await lookupLive(storage, keyRing, id, Date.now() - 86_400_000, Date.now() + 60_000, Date.now());
      assert.deepEqual(records.map((r) => r.cdr_id).sort(), subscriber.map((e) => e.cdr_id).sort());
      assert.ok(records.every((r) => r.recipient === '+61412345678'));
    });
  }

  it('a legal hold placed under a national spelling copies every record of the subscriber', async () => {
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const holds = new LegalHolds(storage, keyRing, masterKey);
    const placed = await holds.place({
      caseReference: 'SPELLINGS-1',
      reason: 'test',
      actor: 'spellings-test',
      identifier: { type: 'msisdn', value: '(04) 1234 5678', country: 'au' },
      from: Date.now() - 86_400_000,
      to: Date.now() + 60_000,
    });
    assert.equal(placed.copied, SPELLINGS.length);
  });

  it('a hold placed before 2026-12-04 on an unknown-range number written with separators still finds and preserves its records', async () => {
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const holds = new LegalHolds(storage, keyRing, masterKey);
    // Such a hold sealed the number as it was normalised then: with its separators. Ingest now stores `+447700900123`.
    const legacy = { type: 'msisdn', value: '+44 7700 900123', valid: false, country: '' } as const;
    const placed = await holds.place(
      {
        caseReference: 'SPELLINGS-2',
        reason: 'test',
        actor: 'spellings-test',
        identifier: { type: 'msisdn', value: legacy.value },
        from: Date.now() - 86_400_000,
        to: Date.now() + 60_000,
      },
      legacy,
    );
    assert.equal(placed.copied, 0, 'nothing is stored under the old spelling');
    assert.equal(await holds.syncActive(), UNKNOWN_RANGE.length, 'the next sync copies the records stored under the new one');
    const now = normaliseIdentifier(UNKNOWN_RANGE[1]!, 'msisdn', 'GB');
    assert.equal(now.value, '+447700900123');
    assert.deepEqual(
      (await holds.activeFor(now)).map((h) => h.hold.hold_id),
      [placed.hold.hold_id],
    );
    assert.deepEqual(
      (await holds.heldRecords(now, Date.now() - 86_400_000, Date.now() + 60_000)).map((r) => r.cdr_id).sort(),
      unknownRange.map((e) => e.cdr_id).sort(),
    );
    assert.deepEqual(
      (await holds.about(now)).map((h) => h.hold_id),
      [placed.hold.hold_id],
    );
  });
});
