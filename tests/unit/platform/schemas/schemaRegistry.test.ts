/**
 * cdr.raw's writer schemas from a schema registry (CDR_SCHEMA_REGISTRY_URL). The client is tested against a real HTTP
 * server on loopback that answers as Confluent's Schema Registry REST API documents (`GET /schemas/ids/{id}`: 200
 * `{"schema": "<JSON text>"}` with an optional `schemaType` and `references`; 404 `{"error_code": 40403}`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';
import { CdrCodec, frameConfluent } from '../../../../services/core/cdr/avroCodec.ts';
import type { CdrEvent } from '../../../../services/core/cdr/cdrEvent.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { loadRegisteredSchemas, loadSchemaFile } from '../../../../services/platform/schemas/cdrCodec.ts';
import { confluentSchemaIds, SchemaRegistryClient } from '../../../../services/platform/schemas/schemaRegistry.ts';

const event: CdrEvent = {
  cdr_id: 'c-7',
  account_id: 'acct-7',
  sender: 'BRAND',
  recipient: '+353863098317',
  sender_type: 'alphanumeric',
  event_time: Date.UTC(2026, 11, 1, 12),
  submitted_at: Date.UTC(2026, 11, 1, 12),
  delivered_at: null,
  channel: 'sms',
  direction: 'mt',
  provider_id: 'op-ie-1',
  mcc: '272',
  mnc: '01',
  destination_country: 'IE',
  ported: false,
  status: 'delivered',
  error_code: null,
  segments: 1,
  size_bytes: 140,
  duration_ms: null,
  price: 25_000,
  cost: 12_000,
  currency: 'EUR',
  client_ip: '192.0.2.1',
};

/** The routing layer's own writer schema: v1's fields in another order, and one field more. */
function routingLayerSchema(): avro.Schema {
  const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string }[] };
  return { ...v1, fields: [{ name: 'route_hops', type: 'int' }, ...[...v1.fields].reverse()] } as avro.Schema;
}

describe('the codec with a schema registry', () => {
  it('reads a value framed with a registry id by the schema the registry served; an id it lacks by the local file', () => {
    const codec = new CdrCodec(loadRegisteredSchemas());
    const schema = routingLayerSchema();
    const value = frameConfluent(100_042, avro.Type.forSchema(schema).toBuffer({ ...event, route_hops: 3 }));
    assert.throws(
      () => codec.decodeCdrEvent(value),
      (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id',
    );
    codec.useRegistryAnswers({ found: [{ id: 100_042, schema: JSON.stringify(schema) }], notes: [] });
    assert.deepEqual({ ...codec.decodeCdrEvent(value).event }, event);
    assert.deepEqual({ ...codec.decodeCdrEventIn(value, 0, value.length).event }, event);
    // The registry's id 1 is not ours: its schema is used for the raw topic, not schemas/registry.json's file.
    const local = frameConfluent(1, avro.Type.forSchema(loadSchemaFile('cdr-event-v1.avsc')).toBuffer(event));
    assert.deepEqual({ ...codec.decodeCdrEvent(local).event }, event);
    codec.useRegistryAnswers({ found: [{ id: 1, schema: JSON.stringify(schema) }], notes: [] });
    assert.throws(() => codec.decodeCdrEvent(local), PipelineError);
    assert.deepEqual({ ...codec.decodeCdrEvent(frameConfluent(1, avro.Type.forSchema(schema).toBuffer({ ...event, route_hops: 1 }))).event }, event);
    // The encoder still writes schemas/registry.json's id 1 (cdr.pseudonymised and the generator are the project's).
    assert.equal(codec.encodeCdrEvent(event, 'confluent').readInt32BE(1), 1);
  });

  it('names why an id cannot be read, in the dead letter', () => {
    const codec = new CdrCodec(loadRegisteredSchemas());
    codec.useRegistryAnswers({ found: [], notes: [{ id: 77, reason: 'a PROTOBUF schema in the schema registry, not Avro' }] });
    assert.throws(
      () => codec.decodeCdrEvent(frameConfluent(77, Buffer.from([2, 0x41]))),
      (e: unknown) =>
        e instanceof PipelineError && e.code === 'unknown_schema_id' && e.message === 'schema id 77: a PROTOBUF schema in the schema registry, not Avro',
    );
  });
});

describe('SchemaRegistryClient', () => {
  let server: Server;
  let url: string;
  const requests: { path: string; auth: string | undefined }[] = [];
  let failWith: number | undefined;
  const served = new Map<number, unknown>();

  before(async () => {
    served.set(100_042, { schema: JSON.stringify(routingLayerSchema()) });
    served.set(100_043, { schemaType: 'PROTOBUF', schema: 'syntax = "proto3"; message Cdr { string cdr_id = 1; }' });
    served.set(100_044, {
      schema: JSON.stringify({ type: 'record', name: 'Cdr', fields: [{ name: 'x', type: 'Party' }] }),
      references: [{ name: 'Party', subject: 'party', version: 1 }],
    });
    served.set(100_045, { schema: '{"type": "recrod"}' });
    server = createServer((req: IncomingMessage, res) => {
      requests.push({ path: req.url ?? '', auth: req.headers.authorization });
      if (failWith !== undefined) {
        res.writeHead(failWith, { 'content-type': 'application/json' }).end('{"error_code":50001,"message":"Error in the backend data store"}');
        return;
      }
      const id = Number(/^\/registry\/schemas\/ids\/(-?\d+)$/.exec(req.url ?? '')?.[1]);
      const body = served.get(id);
      if (body === undefined)
        res.writeHead(404, { 'content-type': 'application/vnd.schemaregistry.v1+json' }).end('{"error_code":40403,"message":"Schema not found"}');
      else res.writeHead(200, { 'content-type': 'application/vnd.schemaregistry.v1+json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/registry/`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('asks once per id, keeps what it was served, and says why the others cannot be used', async () => {
    let now = 1_000;
    const client = new SchemaRegistryClient({ url, basicAuth: 'ingest:s3cret:with-colon', absentRecheckMs: 60_000 }, () => now);
    requests.length = 0;
    const answers = await client.answersFor(new Set([100_042, 100_043, 100_044, 100_045, 100_046, -5]));
    assert.deepEqual(answers.found, [{ id: 100_042, schema: JSON.stringify(routingLayerSchema()) }]);
    assert.deepEqual(answers.notes, [
      { id: 100_043, reason: 'a PROTOBUF schema in the schema registry, not Avro' },
      { id: 100_044, reason: 'its schema in the registry refers to other schemas (schema references), which this reader does not follow' },
      { id: 100_045, reason: 'its schema in the registry is not a valid Avro schema' },
      { id: 100_046, reason: 'neither the schema registry nor schemas/registry.json has it' },
      { id: -5, reason: 'not a schema registry id (negative)' },
    ]);
    assert.equal(requests.length, 5, 'a negative id is not asked about');
    assert.ok(requests.every((r) => r.auth === `Basic ${Buffer.from('ingest:s3cret:with-colon').toString('base64')}`));
    // Again: nothing asked (a served schema never changes; the absent one is asked again only after a minute).
    await client.answersFor(new Set([100_042, 100_046]));
    assert.equal(requests.length, 5);
    now += 60_001;
    served.set(100_046, { schema: JSON.stringify(routingLayerSchema()) });
    const later = await client.answersFor(new Set([100_042, 100_046]));
    assert.deepEqual(
      later.found.map((f) => f.id),
      [100_042, 100_046],
    );
    assert.deepEqual(
      requests.slice(5).map((r) => r.path),
      ['/registry/schemas/ids/100046'],
    );
  });

  it('asks once for an id that batches of several partitions bring at the same time', async () => {
    const client = new SchemaRegistryClient({ url });
    requests.length = 0;
    const all = await Promise.all([1, 2, 3].map(() => client.answersFor(new Set([100_042, 100_047]))));
    assert.deepEqual(requests.map((r) => r.path).sort(), ['/registry/schemas/ids/100042', '/registry/schemas/ids/100047']);
    assert.ok(all.every((a) => a.found.length === 1 && a.notes.length === 1));
  });

  it('asks about at most the cap of new ids per batch: the rest are named, not asked (a hostile batch of random ids)', async () => {
    const client = new SchemaRegistryClient({ url, maxLookupsPerBatch: 3 });
    requests.length = 0;
    const ids = new Set(Array.from({ length: 50 }, (_, i) => 200_000 + i));
    const answers = await client.answersFor(ids);
    assert.equal(requests.length, 3);
    assert.equal(answers.notes.length, 50);
    assert.match(answers.notes[10]!.reason, /^not looked up in the schema registry: one batch brought more than 3 schema ids/);
  });

  it('a registry that fails, refuses us or is not there holds the batch (retry), naming it and never the credentials', async () => {
    const client = new SchemaRegistryClient({ url, basicAuth: 'ingest:s3cret' });
    for (const [status, said] of [
      [500, 'HTTP 500'],
      [401, 'it refused our credentials (HTTP 401): check CDR_SCHEMA_REGISTRY_BASIC_AUTH'],
    ] as const) {
      failWith = status;
      await assert.rejects(client.answersFor(new Set([300_000])), (e: unknown) => {
        assert.ok(e instanceof PipelineError);
        assert.equal(e.code, 'schema_registry_unavailable');
        assert.equal(e.retriable, true);
        assert.equal(e.message, `schema registry ${url.replace(/\/$/, '')} could not say what schema id 300000 is: ${said}`);
        return true;
      });
    }
    failWith = undefined;
    // A port nothing listens on (one just closed).
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gone = new SchemaRegistryClient({ url: `http://127.0.0.1:${port}/`, basicAuth: 'ingest:s3cret' });
    await assert.rejects(
      gone.answersFor(new Set([1])),
      (e: unknown) => e instanceof PipelineError && e.code === 'schema_registry_unavailable' && /ECONNREFUSED/.test(e.message) && !e.message.includes('s3cret'),
    );
    // Once it answers, the same id is read.
    assert.deepEqual(
      (await client.answersFor(new Set([100_042]))).found.map((f) => f.id),
      [100_042],
    );
  });

  it('finds the schema ids of Confluent frames only', () => {
    const ids = confluentSchemaIds([
      frameConfluent(5, Buffer.from([2, 0x41])),
      null,
      Buffer.from([2, 0x41, 0x42]),
      frameConfluent(5, Buffer.from([0])),
      frameConfluent(9, Buffer.alloc(0)),
      Buffer.alloc(0),
    ]);
    assert.deepEqual([...ids], [5]);
  });
});
