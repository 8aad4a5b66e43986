/**
 * cdr.raw from a producer whose serialiser uses a schema registry (CDR_SCHEMA_REGISTRY_URL). Found from outside
 * (2026-12-06): a producer on a real registry frames each value with the id the registry gave its schema, and every
 * record was dead-lettered `unknown_schema_id` unless schemas/registry.json was edited to match. Real broker, real
 * engine; the registry is an HTTP server on loopback answering as Confluent's REST API documents.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import avro from 'avsc';
import pino from 'pino';
import type { Producer } from 'kafkajs';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { encodeCdrEvent, frameConfluent, loadSchemaFile } from '../../../services/platform/schemas/index.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';

/** The routing layer's writer schema: v1's fields in another order, one more field, and its own namespace-less name. */
function routingLayerSchema(): avro.Schema {
  const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string }[] };
  return { ...v1, fields: [{ name: 'route_hops', type: 'int' }, ...[...v1.fields].reverse()] } as avro.Schema;
}

/** A writer whose optional fields are written the usual Avro way, `["null", T]` with a null default, where v1 has T. */
function optionalFieldsSchema(): avro.Schema {
  const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string; type: unknown }[] };
  const optional = new Set(['segments', 'size_bytes', 'ported', 'provider_id']);
  return {
    ...v1,
    namespace: 'com.routing.cdr',
    fields: v1.fields.map((f) => (optional.has(f.name) ? { name: f.name, type: ['null', f.type], default: null } : f)),
  } as avro.Schema;
}

describe('cdr.raw written with a schema registry', () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let producer: Producer;
  let registry: Server;
  let registryUp = false;
  /** Whether id 100046 is registered yet. */
  let registered = false;
  const asked: string[] = [];
  const gen = new TrafficGenerator({ seed: 41, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
  const writer = avro.Type.forSchema(routingLayerSchema());

  before(async () => {
    registry = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (!registryUp) return void res.writeHead(503).end('{"error_code":50003,"message":"Error while forwarding the request to the leader"}');
      const id = Number(/^\/schemas\/ids\/(\d+)$/.exec(req.url ?? '')?.[1]);
      const body =
        id === 100_042
          ? { schema: JSON.stringify(routingLayerSchema()) }
          : id === 100_043
            ? { schemaType: 'PROTOBUF', schema: 'syntax = "proto3"; message Cdr { string cdr_id = 1; }' }
            : id === 100_044 || (id === 100_046 && registered)
              ? { schema: JSON.stringify(optionalFieldsSchema()) }
              : undefined;
      if (body) res.writeHead(200, { 'content-type': 'application/vnd.schemaregistry.v1+json' }).end(JSON.stringify(body));
      else res.writeHead(404, { 'content-type': 'application/vnd.schemaregistry.v1+json' }).end('{"error_code":40403,"message":"Schema not found"}');
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    setup = testSetup({
      CDR_SCHEMA_REGISTRY_URL: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`,
      CDR_CONSUMER_STALL_MS: '5000',
      CDR_SCHEMA_REGISTRY_ABSENT_RECHECK_S: '2',
    });
    rt = await openRuntime(setup.config, { log: createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
    ingest = createIngest(rt);
    await ingest.start();
    producer = requireKafka(rt).producer();
    await producer.connect();
  });

  after(async () => {
    await producer?.disconnect();
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
    await new Promise<void>((resolve) => registry.close(() => resolve()));
  });

  it('waits while the registry cannot answer, dead-letters nothing, and stores every record once it can', async () => {
    const events = gen.take(30);
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: events.map((e, i) => ({ key: e.cdr_id, value: frameConfluent(100_042, writer.toBuffer({ ...e, route_hops: i % 4 })) })),
    });
    await waitFor(
      'health names the registry',
      () => (ingest.health().reasons ?? []).some((r) => r.includes('schema_registry_unavailable')),
      60_000,
      200,
      () => ingest.health(),
    );
    const said = ingest.health().reasons!.find((r) => r.includes('schema_registry_unavailable'))!;
    assert.match(said, /could not say what schema id 100042 is: HTTP 503/);
    assert.deepEqual([ingest.stats.stored, ingest.stats.dlq], [0, 0]);
    registryUp = true;
    await waitFor(
      'all stored',
      () => ingest.stats.stored === 30,
      60_000,
      200,
      () => ingest.stats,
    );
    assert.equal(ingest.stats.dlq, 0);
    // As the producer wrote them (the extra field dropped by resolution, the order the reader's).
    const storage = requireStorage(rt).storage;
    const rows = await storage.query<{ cdr_id: string; price: string; destination_country: string }>(
      `SELECT cdr_id, price, destination_country FROM ${storage.table('cdr')} ORDER BY cdr_id`,
    );
    const byId = new Map(rows.map((r) => [r.cdr_id, r]));
    for (const e of events) {
      assert.equal(Number(byId.get(e.cdr_id)?.price), e.price);
      assert.equal(byId.get(e.cdr_id)?.destination_country, e.destination_country ?? '');
    }
    assert.equal(asked.filter((a) => a === '/schemas/ids/100042').length >= 2, true, 'asked while it failed, then once it answered');
  });

  it('dead-letters what it cannot read, each saying why; a local file is no writer schema beside a registry; plain Avro is read', async () => {
    const before = asked.length;
    const [proto, unknown, local, plain] = [gen.take(4), gen.take(3), gen.take(5), gen.take(6)];
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: [
        ...proto.map((e) => ({ key: `proto-${e.cdr_id}`, value: frameConfluent(100_043, Buffer.from([2, 0x41])) })),
        ...unknown.map((e) => ({ key: `unknown-${e.cdr_id}`, value: frameConfluent(100_099, writer.toBuffer({ ...e, route_hops: 0 })) })),
        // schemas/registry.json's id 1, which this registry does not hold: its ids are the registry's alone (a real
        // registry numbers from 1; found from outside: its id 1 read by the local file stored sender and recipient swapped).
        ...local.map((e) => ({ key: `local-${e.cdr_id}`, value: encodeCdrEvent(e) })),
        // Plain Avro (what `cdr produce` writes beside a registry): read by v1.
        ...plain.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e, 'plain') })),
        // 100042 again: known, not asked about again.
        ...gen.take(2).map((e) => ({ key: e.cdr_id, value: frameConfluent(100_042, writer.toBuffer({ ...e, route_hops: 9 })) })),
      ],
    });
    await waitFor(
      'read',
      () => ingest.stats.stored === 38 && ingest.stats.dlq === 12,
      60_000,
      200,
      () => ingest.stats,
    );
    // An absent id is asked three times (a schema just registered may not have reached the node that answers yet).
    assert.deepEqual([...new Set(asked.slice(before))].sort(), ['/schemas/ids/1', '/schemas/ids/100043', '/schemas/ids/100099']);
    assert.equal(asked.slice(before).filter((a) => a === '/schemas/ids/100099').length, 3);
    const dlq = await readTopic(requireKafka(rt), setup.config.kafka.topics.dlq);
    const reasons = new Set(dlq.map((m) => `${String(m.key).split('-')[0]}: ${String(m.headers!['__connect.errors.exception.message'])}`));
    assert.deepEqual([...reasons].sort(), [
      'local: schema id 1: not in the schema registry (it answered "schema not found")',
      'proto: schema id 100043: a PROTOBUF schema in the schema registry, not Avro',
      'unknown: schema id 100099: not in the schema registry (it answered "schema not found")',
    ]);
    assert.equal(ingest.health().status, 'ok', JSON.stringify(ingest.health()));
  });

  it('reads a writer with optional fields (["null", T]) where v1 has T, and dead-letters only the values holding a null', async () => {
    // Found from outside: avsc refused such a writer as a whole, so every value was dead-lettered `unknown_schema_id`;
    // Avro's resolution decides it value by value.
    const optional = avro.Type.forSchema(optionalFieldsSchema());
    const [good, bad] = [gen.take(7), gen.take(3)];
    const before = { stored: ingest.stats.stored, dlq: ingest.stats.dlq };
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: [
        ...good.map((e) => ({ key: e.cdr_id, value: frameConfluent(100_044, optional.toBuffer(e)) })),
        ...bad.map((e) => ({ key: `null-${e.cdr_id}`, value: frameConfluent(100_044, optional.toBuffer({ ...e, segments: null })) })),
      ],
    });
    await waitFor(
      'read',
      () => ingest.stats.stored === before.stored + 7 && ingest.stats.dlq === before.dlq + 3,
      60_000,
      200,
      () => ingest.stats,
    );
    const storage = requireStorage(rt).storage;
    const rows = await storage.query<{ cdr_id: string; segments: number; provider_id: string }>(
      `SELECT cdr_id, segments, provider_id FROM ${storage.table('cdr')} WHERE cdr_id IN {ids:Array(String)}`,
      { ids: good.map((e) => e.cdr_id) },
    );
    assert.deepEqual(rows.map((r) => [r.cdr_id, Number(r.segments), r.provider_id]).sort(), good.map((e) => [e.cdr_id, e.segments, e.provider_id]).sort());
    const dlq = (await readTopic(requireKafka(rt), setup.config.kafka.topics.dlq)).filter((m) => String(m.key).startsWith('null-'));
    assert.deepEqual(
      dlq.map((m) => String(m.headers!['__connect.errors.exception.message'])),
      bad.map(() => 'segments: null, which cdr-event v1 does not allow (schema id 100044 makes it nullable)'),
    );
  });

  it('an id used before its schema was registered is read once the registry has it, after the recheck time, without a restart', async () => {
    // Found from outside (2026-12-07): the id stayed absent for the life of the process, so every later value of the
    // producer's new schema version was dead-lettered until ingest restarted.
    const writer = avro.Type.forSchema(optionalFieldsSchema());
    const [early, late] = [gen.take(3), gen.take(4)];
    const before = { stored: ingest.stats.stored, dlq: ingest.stats.dlq };
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: early.map((e) => ({ key: `early-${e.cdr_id}`, value: frameConfluent(100_046, writer.toBuffer(e)) })),
    });
    await waitFor(
      'the early ones dead-lettered',
      () => ingest.stats.dlq === before.dlq + 3,
      60_000,
      200,
      () => ingest.stats,
    );
    registered = true;
    await new Promise((r) => setTimeout(r, 2_100));
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: late.map((e) => ({ key: e.cdr_id, value: frameConfluent(100_046, writer.toBuffer(e)) })),
    });
    await waitFor(
      'the later ones stored',
      () => ingest.stats.stored === before.stored + 4,
      60_000,
      200,
      () => ingest.stats,
    );
    assert.equal(ingest.stats.dlq, before.dlq + 3);
  });
});
