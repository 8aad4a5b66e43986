/**
 * Free text carries no identifier into long-lived storage. A hostile producer puts subscribers' numbers and email
 * addresses where a CDR holds free text or codes — error_code, client_ip, account and provider ids, Kafka headers —
 * and dates and countries that are not. After ingest, the 10-year table, cdr.pseudonymised (values and headers) and
 * the DLQ's headers hold none of those identifiers; what was cut is counted; what cannot be stored is dead-lettered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Kafka, type Message } from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

/** The identifiers the hostile records smuggle, in the spellings a leak would show. */
const NEEDLES = [
  '60123456789',
  '+60 12-345 6789',
  '4915112345678',
  'alice@example.com',
  'Bob.Smith',
  'bob.smith@corp.example',
  '0123456789',
  '012-345 6789',
  '60 12 345 6789',
  '60.12.345.6789',
];

describe('free text carries no identifier into long-lived storage', () => {
  const setup = testSetup();
  const gen = new TrafficGenerator({ seed: 12, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  const stored: CdrEvent[] = [];
  const rejected: CdrEvent[] = [];

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    kafka = requireKafka(rt);
    const hostile = (patch: Partial<CdrEvent>): CdrEvent => ({ ...gen.next(), ...patch });
    stored.push(
      hostile({ error_code: 'delivery failed for +60 12-345 6789 (alice@example.com)' }),
      hostile({ error_code: 'ERR 60123456789' }),
      hostile({ error_code: 'SMTP:550 5.1.1 Bob.Smith@corp.example unknown' }),
      hostile({ client_ip: "'; DROP TABLE cdr; -- " + 'x'.repeat(5000) }),
      hostile({ client_ip: '+60123456789' }),
      hostile({ client_ip: 'alice@example.com' }),
      hostile({ error_code: 'MAP:27', client_ip: '2001:DB8::0:1' }),
      // Found from outside (2026-12-06): the record's own recipient written with separators, kept ten years.
      hostile({ status: 'failed', recipient: '+60123456789', error_code: 'SMPP:11 invalid dest 012-345 6789' }),
      hostile({ status: 'failed', recipient: '+60123456789', error_code: 'MAP:27 60 12 345 6789' }),
      hostile({ status: 'failed', recipient: '+60123456789', error_code: 'UNKNOWN_SUB 60.12.345.6789' }),
    );
    rejected.push(
      hostile({ account_id: 'alice@example.com' }),
      hostile({ account_id: '+4915112345678' }),
      hostile({ provider_id: 'tel:+60123456789' }),
      hostile({ delivered_at: Date.UTC(9999, 11, 31) }),
      hostile({ destination_country: 'xx' }),
    );
    const messages: Message[] = [...stored, ...rejected].map((e) => ({
      key: e.cdr_id,
      value: encodeCdrEvent(e),
      // A producer's own headers: never copied anywhere.
      headers: { 'x-caller-msisdn': '+60 12-345 6789', 'x-user': 'alice@example.com' },
    }));
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('every hostile record handled', () => ingest.stats.stored + ingest.stats.dlq >= messages.length);
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('stores what is good traffic data and dead-letters what cannot be stored', () => {
    assert.equal(ingest.stats.stored, stored.length);
    assert.equal(ingest.stats.dlq, rejected.length);
  });

  it('keeps codes and IP addresses, cuts free text, and counts what it cut', async () => {
    const { storage } = requireStorage(rt);
    const rows = await storage.query<{ cdr_id: string; error_code: string; client_ip: string }>(
      `SELECT cdr_id, error_code, client_ip FROM ${storage.table('cdr')} WHERE cdr_id IN {ids:Array(String)}`,
      { ids: stored.map((e) => e.cdr_id) },
    );
    const byId = new Map(rows.map((r) => [r.cdr_id, r]));
    assert.deepEqual(
      stored.map((e) => [byId.get(e.cdr_id)!.error_code, byId.get(e.cdr_id)!.client_ip]),
      [
        ['delivery failed for', e0(stored[0]!)],
        ['', e0(stored[1]!)],
        ['SMTP:550 5.1.1', e0(stored[2]!)],
        [stored[3]!.error_code ?? '', ''],
        [stored[4]!.error_code ?? '', ''],
        [stored[5]!.error_code ?? '', ''],
        ['MAP:27', '2001:db8::1'],
        ['', e0(stored[7]!)],
        ['', e0(stored[8]!)],
        ['', e0(stored[9]!)],
      ],
    );
    const metrics = await rt.metrics.registry.metrics();
    assert.match(metrics, /cdr_ingest_fields_dropped_total\{field="error_code"\} 6/);
    assert.match(metrics, /cdr_ingest_fields_dropped_total\{field="client_ip"\} 3/);
  });

  it('holds no identifier in the 10-year table, in cdr.pseudonymised or in the DLQ headers', async () => {
    const { storage } = requireStorage(rt);
    const table = JSON.stringify(await storage.query<Record<string, unknown>>(`SELECT * FROM ${storage.table('cdr')}`));
    const published = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    const topic = published.map((m) => `${m.value!.toString('latin1')} ${JSON.stringify(m.headers)}`).join('\n');
    const dlq = await readTopic(kafka, setup.config.kafka.topics.dlq);
    assert.equal(dlq.length, rejected.length);
    const dlqHeaders = dlq
      .map((m) =>
        Object.entries(m.headers!)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join('\n'),
      )
      .join('\n');
    for (const [where, text] of [
      ['cdr', table],
      ['cdr.pseudonymised', topic],
      ['cdr.dlq headers', dlqHeaders],
    ] as const) {
      const found = NEEDLES.filter((n) => text.includes(n));
      assert.deepEqual(found, [], `${where} holds ${found.join(', ')}`);
    }
    assert.ok(!dlqHeaders.includes('x-caller-msisdn') && !dlqHeaders.includes('x-user'), "a record's own headers are not copied to the DLQ");
  });
});

/** The stored form of a record's client IP when it is a valid one (the generator's are). */
function e0(e: CdrEvent): string {
  return e.client_ip ?? '';
}
