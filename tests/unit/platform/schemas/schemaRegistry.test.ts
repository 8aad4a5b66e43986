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
import { cdrEvent } from '../../../support/cdrEvents.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { loadRegisteredSchemas, loadSchemaFile } from '../../../../services/platform/schemas/cdrCodec.ts';
import { confluentSchemaIds, SchemaRegistryClient } from '../../../../services/platform/schemas/schemaRegistry.ts';

const event = cdrEvent({ cdr_id: 'c-7', recipient: '+353863098317', destination_country: 'IE', mcc: '272', mnc: '01', provider_id: 'op-ie-1' });

/** The routing layer's own writer schema: v1's fields in another order, and one field more. */
function routingLayerSchema(): avro.Schema {
  const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string }[] };
  return { ...v1, fields: [{ name: 'route_hops', type: 'int' }, ...[...v1.fields].reverse()] } as avro.Schema;
}

describe('the codec with a schema registry', () => {
  it('reads a value framed with a registry id by the schema the registry served, and no framed id by the local files then', () => {
    const codec = new CdrCodec(loadRegisteredSchemas());
    const schema = routingLayerSchema();
    const value = frameConfluent(100_042, avro.Type.forSchema(schema).toBuffer({ ...event, route_hops: 3 }));
    assert.throws(
      () => codec.decodeCdrEvent(value),
      (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id',
    );
    const local = frameConfluent(1, avro.Type.forSchema(loadSchemaFile('cdr-event-v1.avsc')).toBuffer(event));
    assert.deepEqual({ ...codec.decodeCdrEvent(local).event }, event, 'without a registry, id 1 is the local file');
    codec.useRegistryAnswers({ found: [{ id: 100_042, schema: JSON.stringify(schema) }], notes: [] });
    assert.deepEqual({ ...codec.decodeCdrEvent(value).event }, event);
    assert.deepEqual({ ...codec.decodeCdrEventIn(value, 0, value.length).event }, event);
    // With a registry, cdr.raw's ids are its alone: a registry numbers from 1, so its id 1 is not the local file (found
    // from outside: a registry's id 1 with sender and recipient in the other order was read by the local file, and
    // stored them swapped). An id it has not served is refused, never read by a local file of that number.
    assert.throws(
      () => codec.decodeCdrEvent(local),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'unknown_schema_id' &&
        e.message === "schema id 1 is not in the schema registry (with CDR_SCHEMA_REGISTRY_URL set, cdr.raw's ids are the registry's)",
    );
    const swapped = { ...(loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string }[] }) };
    swapped.fields = [...swapped.fields].sort((a, b) => (a.name === 'sender' ? 1 : b.name === 'sender' ? -1 : 0));
    codec.useRegistryAnswers({ found: [{ id: 1, schema: JSON.stringify(swapped) }], notes: [] });
    const theirs = frameConfluent(1, avro.Type.forSchema(swapped as avro.Schema).toBuffer(event));
    assert.deepEqual({ ...codec.decodeCdrEvent(theirs).event }, event);
    // Plain Avro (what the project's generator writes beside a registry) is still read by v1.
    assert.deepEqual({ ...codec.decodeCdrEvent(codec.encodeCdrEvent(event, 'plain')).event }, event);
  });

  it('reads an id a batch pinned as unusable so, with the reason of then, though its schema came since', () => {
    const codec = new CdrCodec(loadRegisteredSchemas());
    const schema = routingLayerSchema();
    const value = frameConfluent(100_050, avro.Type.forSchema(schema).toBuffer({ ...event, route_hops: 1 }));
    const absent = 'not in the schema registry (it answered "schema not found")';
    codec.useRegistryAnswers({ found: [], notes: [{ id: 100_050, reason: absent }] });
    codec.useRegistryAnswers({ found: [{ id: 100_050, schema: JSON.stringify(schema) }], notes: [] });
    assert.deepEqual({ ...codec.decodeCdrEvent(value).event }, event, 'a new batch reads it');
    const pinned = new Set([100_050]);
    for (const read of [() => codec.decodeCdrEvent(value, pinned), () => codec.decodeCdrEventIn(value, 0, value.length, pinned)])
      assert.throws(read, (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id' && e.message === `schema id 100050: ${absent}`);
  });

  it('reads a writer whose names are in its own namespace, as Avro matches named types (by their unqualified names)', () => {
    // Found from outside: `"namespace": "com.routing.cdr"` alone dead-lettered every record ("cannot be resolved").
    const codec = new CdrCodec(loadRegisteredSchemas());
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { namespace: string; fields: { name: string; type: unknown }[] };
    const renamed = { ...v1, namespace: 'com.routing.cdr' };
    // Enums named in full in yet another namespace, one with a symbol v1 lacks.
    const enums = JSON.parse(
      JSON.stringify(renamed).replace('"name":"Channel"', '"name":"org.ops.Channel"').replace('"symbols":["sms"', '"symbols":["sms","satellite"'),
    ) as avro.Schema;
    codec.useRegistryAnswers({
      found: [
        { id: 7, schema: JSON.stringify(renamed) },
        { id: 8, schema: JSON.stringify(enums) },
      ],
      notes: [],
    });
    assert.deepEqual({ ...codec.decodeCdrEvent(frameConfluent(7, avro.Type.forSchema(renamed as avro.Schema).toBuffer(event))).event }, event);
    // No namespace at all (found in review: an alias of the bare name was read in the reader's namespace), or an empty one.
    for (const [id, schema] of [
      [9, (({ namespace: _n, ...rest }) => rest)(v1)],
      [10, { ...v1, namespace: '' }],
    ] as const) {
      codec.useRegistryAnswers({ found: [{ id, schema: JSON.stringify(schema) }], notes: [] });
      const value = frameConfluent(id, avro.Type.forSchema(schema as avro.Schema).toBuffer(event));
      assert.deepEqual({ ...codec.decodeCdrEvent(value).event }, event, `id ${id}`);
      assert.deepEqual({ ...codec.decodeCdrEventIn(value, 0, value.length).event }, event, `id ${id}, a batch's way`);
    }
    const eight = avro.Type.forSchema(enums);
    assert.deepEqual({ ...codec.decodeCdrEvent(frameConfluent(8, eight.toBuffer(event))).event }, event);
    assert.throws(
      () => codec.decodeCdrEvent(frameConfluent(8, eight.toBuffer({ ...event, channel: 'satellite' }))),
      (e: unknown) => e instanceof PipelineError && e.code === 'validation_failed' && /^channel: a symbol cdr-event v1 does not have/.test(e.message),
    );
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

/** A batch's ids, each carried by one value. */
const batch = (...ids: number[]): Map<number, number> => new Map(ids.map((id) => [id, 1]));

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
      // Any other path is some other server's: a plain 404, as a reverse proxy or a web server gives.
      if (!req.url?.startsWith('/registry/')) return void res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>');
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

  it('asks once per id, keeps what it was served, says why the others cannot be used, and decides each id once', async () => {
    const client = new SchemaRegistryClient({ url, basicAuth: 'ingest:s3cret:with-colon', absentRetryMs: 20 });
    requests.length = 0;
    const answers = await client.answersFor(batch(100_042, 100_043, 100_044, 100_045, 100_046, -5));
    assert.deepEqual(answers.found, [{ id: 100_042, schema: JSON.stringify(routingLayerSchema()) }]);
    assert.deepEqual(answers.notes, [
      { id: 100_043, reason: 'a PROTOBUF schema in the schema registry, not Avro' },
      { id: 100_044, reason: 'its schema in the registry refers to other schemas (schema references), which this reader does not follow' },
      { id: 100_045, reason: 'its schema in the registry is not a valid Avro schema' },
      { id: 100_046, reason: 'not in the schema registry (it answered "schema not found")' },
      { id: -5, reason: 'not a schema registry id (negative)' },
    ]);
    // The absent one three times (a schema just registered may not have reached the node that answers); a negative id never.
    assert.equal(requests.filter((r) => r.path.endsWith('/100046')).length, 3);
    assert.equal(requests.length, 7);
    assert.ok(requests.every((r) => r.auth === `Basic ${Buffer.from('ingest:s3cret:with-colon').toString('base64')}`));
    // Again, even once the registry has it: nothing asked, the same answers — a batch tried again after its dead letters
    // went out is decided as its first attempt was (found in review: a retry stored what the first had dead-lettered).
    served.set(100_046, { schema: JSON.stringify(routingLayerSchema()) });
    const again = await client.answersFor(batch(100_042, 100_046));
    assert.equal(requests.length, 7);
    assert.deepEqual(again.notes, [{ id: 100_046, reason: 'not in the schema registry (it answered "schema not found")' }]);
    served.delete(100_046);
  });

  it('asks again about an absent id after the recheck time, once; a batch tried again reads it as its first attempt did', async () => {
    // Found from outside (2026-12-07): a record framed with the next id before the schema was registered had every later
    // value of that schema dead-lettered until ingest restarted.
    const client = new SchemaRegistryClient({ url, absentRetryMs: 1, reaskAbsentMs: 50 });
    requests.length = 0;
    const first = await client.answersFor(batch(100_047));
    const absent = 'not in the schema registry (it answered "schema not found")';
    assert.deepEqual(first.notes, [{ id: 100_047, reason: absent }]);
    assert.deepEqual(first.unreadable, [100_047], 'recorded with the batch');
    assert.equal(requests.length, 3);
    served.set(100_047, { schema: JSON.stringify(routingLayerSchema()) });
    try {
      // Within the recheck time: not asked.
      assert.deepEqual((await client.answersFor(batch(100_047))).notes, [{ id: 100_047, reason: absent }]);
      assert.equal(requests.length, 3);
      await new Promise((r) => setTimeout(r, 60));
      // A retry of the first batch (its id pinned): not asked, read as before though the registry has it now.
      const retry = await client.answersFor(batch(100_047), new Set([100_047]));
      assert.deepEqual([retry.found, retry.notes, retry.unreadable], [[], [{ id: 100_047, reason: absent }], [100_047]]);
      assert.equal(requests.length, 3);
      // A new batch after the recheck time: asked once, found.
      const later = await client.answersFor(batch(100_047));
      assert.deepEqual(
        later.found.map((f) => f.id),
        [100_047],
      );
      assert.deepEqual(later.unreadable, []);
      assert.equal(requests.length, 4);
      // The first batch tried again once more: still as its first attempt, with the reason it had then.
      assert.deepEqual((await client.answersFor(batch(100_047), new Set([100_047]))).notes, [{ id: 100_047, reason: absent }]);
    } finally {
      served.delete(100_047);
    }
  });

  it('finds a schema that reached the answering node only at the second ask', async () => {
    const client = new SchemaRegistryClient({ url, absentRetryMs: 50 });
    setTimeout(() => served.set(100_048, { schema: JSON.stringify(routingLayerSchema()) }), 20);
    const answers = await client.answersFor(batch(100_048));
    assert.deepEqual(
      answers.found.map((f) => f.id),
      [100_048],
    );
  });

  it("takes a 404 that is not the registry's own (a URL without the registry's path) for a registry not answering, not an absent id", async () => {
    const client = new SchemaRegistryClient({ url: url.replace('/registry/', '/elsewhere/') });
    await assert.rejects(
      client.answersFor(batch(100_042)),
      (e: unknown) =>
        e instanceof PipelineError && e.code === 'schema_registry_unavailable' && /HTTP 404 without the registry's "schema not found"/.test(e.message),
    );
  });

  it('asks once for an id that batches of several partitions bring at the same time', async () => {
    const client = new SchemaRegistryClient({ url, absentRetryMs: 10 });
    requests.length = 0;
    const all = await Promise.all([1, 2, 3].map(() => client.answersFor(batch(100_042, 100_047))));
    assert.deepEqual([...new Set(requests.map((r) => r.path))].sort(), ['/registry/schemas/ids/100042', '/registry/schemas/ids/100047']);
    assert.equal(requests.length, 4, 'one ask of the served id, three of the absent one, for three batches');
    assert.ok(all.every((a) => a.found.length === 1 && a.notes.length === 1));
  });

  it('asks about at most the cap of new ids per batch, those most values carry first; the rest are named, and asked later', async () => {
    const client = new SchemaRegistryClient({ url, maxLookupsPerBatch: 3, absentRetryMs: 1 });
    requests.length = 0;
    // 50 hostile values with a random id each, before the routing layer's schema, which 20 values carry.
    const ids = new Map(Array.from({ length: 50 }, (_, i) => [200_000 + i, 1] as [number, number]));
    ids.set(100_042, 20);
    const answers = await client.answersFor(ids);
    assert.deepEqual(
      answers.found.map((f) => f.id),
      [100_042],
    );
    assert.equal(new Set(requests.map((r) => r.path)).size, 3);
    assert.equal(answers.notes.length, 50);
    assert.equal(answers.notes.filter((n) => n.reason.startsWith('not looked up in the schema registry: one batch brought more than 3 schema ids')).length, 48);
    // Not remembered: a later batch asks about them.
    requests.length = 0;
    await client.answersFor(new Map([[200_040, 1]]));
    assert.deepEqual(
      requests.map((r) => r.path),
      Array(3).fill('/registry/schemas/ids/200040'),
    );
  });

  it('a registry that fails, refuses us or is not there holds the batch (retry), naming it and never the credentials', async () => {
    const client = new SchemaRegistryClient({ url, basicAuth: 'ingest:s3cret' });
    for (const [status, said] of [
      [500, 'HTTP 500'],
      [401, 'it refused our credentials (HTTP 401): check CDR_SCHEMA_REGISTRY_BASIC_AUTH'],
    ] as const) {
      failWith = status;
      await assert.rejects(client.answersFor(batch(300_000)), (e: unknown) => {
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
      gone.answersFor(batch(1)),
      (e: unknown) => e instanceof PipelineError && e.code === 'schema_registry_unavailable' && /ECONNREFUSED/.test(e.message) && !e.message.includes('s3cret'),
    );
    // Once it answers, the same id is read.
    assert.deepEqual(
      (await client.answersFor(batch(100_042))).found.map((f) => f.id),
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
    assert.deepEqual([...ids], [[5, 2]]);
  });
});
