/**
 * Ingest end to end on the real broker and the real ClickHouse engine: known duplicates, malformed and
 * late records give exactly the expected counts in every table and in the DLQ; no identifier appears in
 * `cdr`, cdr.pseudonymised, the DLQ reasons or the logs; vault entries decrypt to the normalised identifiers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import pino from 'pino';
import { Partitioners, type Kafka } from 'kafkajs';
import { frameConfluent, loadSchemaFile, pseudonymisedType } from '../../../services/platform/schemas/cdrCodec.ts';
import { normaliseIdentifier, recipientTypeOf } from '../../../services/core/identity/normalise.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openIdentifier, tokenOf } from '../../../services/core/pseudonym/monthKeys.ts';
import { monthKeyOf } from '../../../services/core/retention/retentionCalendar.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { planTraffic, type PlannedMessage } from '../../../services/generator/trafficPlan.ts';
import { produceTraffic } from '../../../services/generator/producer.ts';
import { identifierNeedles, leaks, readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';

const COUNT = 4000;
const planOptions = {
  count: COUNT,
  seed: 4242,
  scenario: 'mixed' as const,
  duplicates: 0.05,
  malformed: 0.03,
  late: 0.03,
  startTime: Date.now() - 3_600_000,
  eventsPerSecond: 50,
};

describe('ingest end to end', () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  let logFile: string;
  const plan: PlannedMessage[] = [...planTraffic(planOptions)];
  const expected = { unique: 0, duplicate: 0, malformed: 0, late: 0 };
  for (const m of plan) expected[m.kind]++;
  const contentMarker = `CONTENT-${Date.now()}-must-never-be-stored`;
  const v11Ids: string[] = [];

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '700' });
    logFile = join(setup.dataDir, 'test.log');
    const log = createLogger('debug', pino.destination({ dest: logFile, sync: true }));
    rt = await openRuntime(setup.config, { log });
    kafka = requireKafka(rt);
    const counts = await produceTraffic(kafka, { ...planOptions, topic: setup.config.kafka.topics.raw, rate: 0 });
    assert.equal(counts.sent, COUNT);
    // A few records from a newer writer (schema id 2) that carry content: it must be dropped.
    const v11 = avro.Type.forSchema(loadSchemaFile('cdr-event-v1_1.avsc'));
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const base = plan.find((m) => m.kind === 'unique' && m.event)!.event!;
    const messages = [];
    for (let i = 0; i < 5; i++) {
      const id = `v11-${i}-${Date.now()}`;
      v11Ids.push(id);
      messages.push({ key: id, value: frameConfluent(2, v11.toBuffer({ ...base, cdr_id: id, route_hops: 2, body: `${contentMarker} ${i}` })) });
    }
    await producer.send({ topic: setup.config.kafka.topics.raw, messages });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    const total = COUNT + v11Ids.length;
    await waitFor('ingest to handle every record', () => {
      const s = ingest.stats;
      return s.stored + s.late + s.duplicate + s.dlq >= total;
    });
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('counts every outcome exactly', () => {
    assert.deepEqual(
      { stored: ingest.stats.stored, late: ingest.stats.late, duplicate: ingest.stats.duplicate, dlq: ingest.stats.dlq },
      { stored: expected.unique + v11Ids.length, late: expected.late, duplicate: expected.duplicate, dlq: expected.malformed },
    );
    assert.ok(expected.duplicate > 50 && expected.malformed > 50 && expected.late > 50, 'the plan exercises every path');
  });

  it('stores each CDR once in cdr, with late ones anonymous', async () => {
    const { storage } = requireStorage(rt);
    const [row] = await storage.query<{ n: string; u: string; n_late: string; late_with_tokens: string }>(
      `SELECT count() n, uniqExact(cdr_id) u, countIf(late) n_late, countIf(late AND (sender_token != '' OR recipient_token != '')) late_with_tokens FROM ${storage.table('cdr')}`,
    );
    assert.equal(Number(row!.n), expected.unique + expected.late + v11Ids.length);
    assert.equal(Number(row!.u), Number(row!.n));
    assert.equal(Number(row!.n_late), expected.late);
    assert.equal(Number(row!.late_with_tokens), 0);
    const ids = new Set((await storage.query<{ cdr_id: string }>(`SELECT cdr_id FROM ${storage.table('cdr')}`)).map((r) => r.cdr_id));
    for (const m of plan) if (m.kind === 'unique' || m.kind === 'late') assert.ok(ids.has(m.cdrId!), 'every planned record is stored');
  });

  it('indexes every in-window record under its two tokens, and the vault holds each identifier once per month', async () => {
    const { storage } = requireStorage(rt);
    const [ix] = await storage.query<{ n: string; u: string }>(`SELECT count() n, uniqExact(cdr_id, role) u FROM ${storage.table('subscriber_index')}`);
    assert.equal(Number(ix!.n), 2 * (expected.unique + v11Ids.length));
    assert.equal(Number(ix!.u), Number(ix!.n));
    const [v] = await storage.query<{ n: string; u: string }>(`SELECT count() n, uniqExact(month, token) u FROM ${storage.table('identity_vault')} FINAL`);
    assert.equal(Number(v!.n), Number(v!.u));
    const [missing] = await storage.query<{ n: string }>(
      `SELECT count() n FROM (SELECT DISTINCT toStartOfMonth(event_time) m, token FROM ${storage.table('subscriber_index')}) i
       LEFT ANTI JOIN ${storage.table('identity_vault')} v ON v.month = i.m AND v.token = i.token`,
    );
    assert.equal(Number(missing!.n), 0, 'every indexed token has a vault entry');
  });

  it('vault entries decrypt back to the normalised identifiers', async () => {
    const { storage, keyRing } = requireStorage(rt);
    let checked = 0;
    for (const m of plan.filter((p) => p.kind === 'unique').slice(0, 60)) {
      const e = m.event!;
      const type = recipientTypeOf(e.channel, e.recipient, e.direction, e.destination_country);
      const n = normaliseIdentifier(e.recipient, type, e.destination_country);
      const month = monthKeyOf(e.event_time);
      const key = await keyRing.existingKey(month);
      assert.ok(key, `key for ${month}`);
      const token = tokenOf(key, n.type, n.value);
      const rows = await storage.query<{ sealed: string }>(
        `SELECT sealed FROM ${storage.table('identity_vault')} WHERE month = {m:Date} AND token = {t:String} LIMIT 1`,
        { m: `${month}-01`, t: token },
      );
      assert.equal(rows.length, 1);
      assert.equal(openIdentifier(key, token, Buffer.from(rows[0]!.sealed, 'base64')), n.value);
      checked++;
    }
    assert.equal(checked, 60);
  });

  it('publishes one pseudonymised event per stored record, with tokens only', async () => {
    const msgs = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    assert.equal(msgs.length, expected.unique + expected.late + v11Ids.length);
    const decoded = msgs.map((m) => pseudonymisedType.fromBuffer(m.value!.subarray(5)) as { cdr_id: string; late: boolean; sender_token: string });
    assert.equal(new Set(decoded.map((d) => d.cdr_id)).size, msgs.length);
    assert.equal(decoded.filter((d) => d.late).length, expected.late);
    const needles = identifierNeedles(plan);
    assert.ok(needles.length > 100);
    const text = msgs.map((m) => m.value!.toString('latin1') + JSON.stringify(m.headers)).join('\n');
    assert.deepEqual(leaks(text, needles), []);
    assert.ok(!text.includes(contentMarker));
  });

  it('dead-letters malformed records with the original bytes and reason headers, and no identifier', async () => {
    const msgs = await readTopic(kafka, setup.config.kafka.topics.dlq);
    assert.equal(msgs.length, expected.malformed);
    const originals = new Set(plan.filter((m) => m.kind === 'malformed').map((m) => m.value.toString('base64')));
    const reasons = new Set<string>();
    for (const m of msgs) {
      assert.ok(originals.has(m.value!.toString('base64')), 'original bytes kept');
      const h = m.headers!;
      for (const name of [
        '__connect.errors.topic',
        '__connect.errors.partition',
        '__connect.errors.offset',
        '__connect.errors.exception.class.name',
        '__connect.errors.exception.message',
      ]) {
        assert.ok(h[name], `header ${name}`);
      }
      reasons.add(String(h['__connect.errors.exception.class.name']));
    }
    assert.deepEqual([...reasons].sort(), [
      'PipelineError:decode_failed',
      'PipelineError:timestamp_out_of_range',
      'PipelineError:unknown_schema_id',
      'PipelineError:validation_failed',
    ]);
    const headerText = msgs.map((m) => Object.values(m.headers!).map(String).join('|')).join('\n');
    assert.deepEqual(leaks(headerText, identifierNeedles(plan)), []);
  });

  it('stores no identifier and no content in the cdr table', async () => {
    const { storage } = requireStorage(rt);
    const rows = await storage.query<Record<string, unknown>>(`SELECT * FROM ${storage.table('cdr')}`);
    const text = JSON.stringify(rows);
    assert.deepEqual(leaks(text, identifierNeedles(plan)), []);
    assert.ok(!text.includes(contentMarker));
  });

  it('writes no identifier to the logs', async () => {
    rt.log.info({ event: plan[0]!.event, sender: plan[0]!.event!.sender }, 'a careless log line is redacted');
    rt.log.flush();
    const logs = readFileSync(logFile, 'utf8');
    assert.ok(logs.length > 0 && logs.includes('[redacted]'));
    assert.deepEqual(leaks(logs, identifierNeedles(plan)), []);
  });

  it('exposes the ingest metrics under the names of the contract', async () => {
    const text = await rt.metrics.registry.metrics();
    assert.match(text, new RegExp(`cdr_ingest_records_total\\{outcome="stored"\\} ${expected.unique + v11Ids.length}\\b`));
    assert.match(text, new RegExp(`cdr_ingest_records_total\\{outcome="dlq"\\} ${expected.malformed}\\b`));
    assert.match(text, new RegExp(`cdr_ingest_records_total\\{outcome="duplicate"\\} ${expected.duplicate}\\b`));
    assert.match(text, new RegExp(`cdr_ingest_records_total\\{outcome="late"\\} ${expected.late}\\b`));
    assert.match(text, /cdr_ingest_batch_seconds_count \d+/);
    assert.match(text, /cdr_pseudonymised_published_total \d+/);
  });
});
