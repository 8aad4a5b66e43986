import { describe, it } from 'node:test';
import { pseudonymisedEvent } from '../../../support/pseudonymisedEvents.ts';
import assert from 'node:assert/strict';
import avro from 'avsc';
import {
  cdrEventType,
  decodeCdrEvent,
  encodeCdrEvent,
  encodeWith,
  frameConfluent,
  loadSchemaFile,
  loadRegisteredSchemas,
  pseudonymisedType,
  PSEUDONYMISED_SCHEMA_ID,
  PSEUDONYMISED_V1_SCHEMA_ID,
  decodePseudonymised,
  decodeCdrEventIn,
  framedWriter,
} from '../../../../services/platform/schemas/cdrCodec.ts';
import type { CdrEvent } from '../../../../services/core/cdr/cdrEvent.ts';
import { cdrEvent } from '../../../support/cdrEvents.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { CdrCodec } from '../../../../services/core/cdr/avroCodec.ts';

const event: CdrEvent = cdrEvent();

const v11 = avro.Type.forSchema(loadSchemaFile('cdr-event-v1_1.avsc'));

/** A codec that knows `schema` as schema id `id`, and a framer of values written with it. */
function writerCodec(id: number, schema: unknown): { codec: CdrCodec; framed: (e: Record<string, unknown>) => Buffer } {
  const writer = avro.Type.forSchema(schema as avro.Schema);
  return {
    codec: new CdrCodec([...loadRegisteredSchemas(), { id, schema: schema as avro.Schema }]),
    framed: (e) => frameConfluent(id, writer.toBuffer(e)),
  };
}

describe('CDR Avro codec', () => {
  it('decodes Confluent-framed v1 (schema id 1)', () => {
    const { event: got, schemaId } = decodeCdrEvent(encodeCdrEvent(event, 'confluent'));
    assert.equal(schemaId, 1);
    assert.deepEqual({ ...got }, event);
  });

  it('decodes plain Avro v1', () => {
    const { event: got, schemaId } = decodeCdrEvent(encodeCdrEvent(event, 'plain'));
    assert.equal(schemaId, 0);
    assert.deepEqual({ ...got }, event);
  });

  it('resolves a v1.1 writer (new field + content field) to v1: both dropped', () => {
    const written = frameConfluent(2, v11.toBuffer({ ...event, route_hops: 3, body: 'secret message text' }));
    const { event: got } = decodeCdrEvent(written);
    assert.deepEqual({ ...got }, event);
    assert.equal(Object.hasOwn(got, 'body'), false);
    assert.equal(Object.hasOwn(got, 'route_hops'), false);
  });

  it('reads a writer whose enums have symbols v1 lacks, and dead-letters only the values that use one', () => {
    // The routing layer adds a channel and a status (and reorders): Avro resolution fails only for values that carry
    // a symbol the reader lacks (found from outside: every value of such a writer went to the DLQ as an unknown id).
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string; type: unknown }[] };
    const widen = (name: string, extra: string[]) => {
      const f = v1.fields.find((x) => x.name === name)!;
      const t = f.type as { symbols: string[] };
      return { ...f, type: { ...t, symbols: [...extra, ...t.symbols.slice().reverse()] } };
    };
    const writerSchema = {
      ...v1,
      fields: v1.fields.map((f) => (f.name === 'channel' ? widen('channel', ['telegram']) : f.name === 'status' ? widen('status', ['queued']) : f)),
    };
    const { codec, framed } = writerCodec(8, writerSchema);
    const ok = codec.decodeCdrEvent(framed({ ...event }));
    assert.equal(ok.schemaId, 8);
    assert.deepEqual({ ...ok.event }, event);
    // The batch path reads it the same way.
    const batch = Buffer.concat([framed({ ...event, cdr_id: 'c-a' }), framed({ ...event, cdr_id: 'c-b', channel: 'voice' })]);
    const first = framed({ ...event, cdr_id: 'c-a' }).length;
    assert.equal(codec.decodeCdrEventIn(batch, 0, first).event.cdr_id, 'c-a');
    assert.equal(codec.decodeCdrEventIn(batch, first, batch.length).event.channel, 'voice');
    for (const [bad, field] of [
      [{ ...event, channel: 'telegram' }, 'channel'],
      [{ ...event, status: 'queued' }, 'status'],
    ] as const) {
      assert.throws(
        () => codec.decodeCdrEvent(framed(bad)),
        (e: unknown) =>
          e instanceof PipelineError && e.code === 'validation_failed' && e.message === `${field}: a symbol cdr-event v1 does not have (schema id 8 adds it)`,
      );
      const one = framed(bad);
      assert.throws(() => codec.decodeCdrEventIn(Buffer.concat([one, one]), 0, one.length), PipelineError);
    }
    // A writer that differs otherwise (a field of another type) is still refused as a whole, as before.
    const incompatible = { ...v1, fields: v1.fields.map((f) => (f.name === 'segments' ? { name: 'segments', type: 'string' } : f)) };
    const refusing = new CdrCodec([...loadRegisteredSchemas(), { id: 9, schema: incompatible as avro.Schema }]);
    assert.throws(
      () => refusing.decodeCdrEvent(frameConfluent(9, avro.Type.forSchema(incompatible as avro.Schema).toBuffer({ ...event, segments: 'one' }))),
      (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id',
    );
  });

  it('reads a writer that makes v1 fields optional (["null", T]), and dead-letters only the values that are null', () => {
    // The usual Avro idiom for an optional field. Resolution decides a writer union against a reader that is not one
    // value by value; before, avsc refused the whole writer, so every value of such a routing layer was dead-lettered.
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string; type: unknown; default?: unknown }[] };
    const optional = new Set(['provider_id', 'segments', 'ported', 'channel']);
    const writerSchema = {
      ...v1,
      namespace: 'com.routing.cdr',
      fields: v1.fields.map((f) => {
        if (!optional.has(f.name)) return f;
        // channel: nullable and with a symbol v1 lacks, both at once.
        const t = f.name === 'channel' ? { ...(f.type as object), symbols: [...(f.type as { symbols: string[] }).symbols, 'telegram'] } : f.type;
        return { name: f.name, type: ['null', t], default: null };
      }),
    };
    const { codec, framed } = writerCodec(8, writerSchema);
    const ok = codec.decodeCdrEvent(framed({ ...event }));
    assert.equal(ok.schemaId, 8);
    assert.deepEqual({ ...ok.event }, event);
    // Values back to back read the same way, one after another.
    const a = framed({ ...event, cdr_id: 'c-a', segments: 3 });
    const b = framed({ ...event, cdr_id: 'c-b', ported: true, channel: 'voice' });
    const both = Buffer.concat([a, b]);
    assert.deepEqual({ ...codec.decodeCdrEventIn(both, 0, a.length).event }, { ...event, cdr_id: 'c-a', segments: 3 });
    assert.deepEqual({ ...codec.decodeCdrEventIn(both, a.length, both.length).event }, { ...event, cdr_id: 'c-b', ported: true, channel: 'voice' });
    for (const field of ['provider_id', 'segments', 'ported', 'channel']) {
      const bad = framed({ ...event, [field]: null });
      const named = (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'validation_failed' &&
        e.message === `${field}: null, which cdr-event v1 does not allow (schema id 8 makes it nullable)`;
      assert.throws(() => codec.decodeCdrEvent(bad), named);
      assert.throws(() => codec.decodeCdrEventIn(Buffer.concat([bad, a]), 0, bad.length), named);
    }
    // Two nulls in one value: both named (found in review: only the first was).
    assert.throws(
      () => codec.decodeCdrEvent(framed({ ...event, segments: null, provider_id: null })),
      (e: unknown) =>
        e instanceof PipelineError && e.message === 'provider_id, segments: null, which cdr-event v1 does not allow (schema id 8 makes them nullable)',
    );
    assert.throws(
      () => codec.decodeCdrEvent(framed({ ...event, channel: 'telegram' })),
      (e: unknown) => e instanceof PipelineError && e.message === 'channel: a symbol cdr-event v1 does not have (schema id 8 adds it)',
    );
    // A null where v1 already allows one (destination_country) is read as before; a union with a branch v1 cannot read
    // (segments as null or a string) still refuses the writer as a whole.
    const withCountry = codec.decodeCdrEvent(framed({ ...event, destination_country: null }));
    assert.equal(withCountry.event.destination_country, null);
    const stringy = { ...v1, fields: v1.fields.map((f) => (f.name === 'segments' ? { name: 'segments', type: ['null', 'string'], default: null } : f)) };
    const refusing = new CdrCodec([...loadRegisteredSchemas(), { id: 9, schema: stringy as avro.Schema }]);
    assert.throws(
      () => refusing.decodeCdrEvent(frameConfluent(9, avro.Type.forSchema(stringy as avro.Schema).toBuffer({ ...event, segments: '1' }))),
      (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id',
    );
  });

  it('reads instants a writer keeps in microseconds as milliseconds, and refuses a writer of local times, saying why', () => {
    // Found from outside: Avro's resolution ignores logical types, so timestamp-micros values were read as milliseconds
    // (1,000 times too large) and dead-lettered as "in the future"; local-timestamp-millis was read as if UTC.
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string; type: unknown }[] };
    const withTimes = (logicalType: string) => ({
      ...v1,
      fields: v1.fields.map((f) =>
        f.name === 'event_time' || f.name === 'submitted_at'
          ? { name: f.name, type: { type: 'long', logicalType } }
          : f.name === 'delivered_at'
            ? { name: f.name, type: ['null', { type: 'long', logicalType }], default: null }
            : f,
      ),
    });
    const micros = withTimes('timestamp-micros');
    const codec = new CdrCodec([
      ...loadRegisteredSchemas(),
      { id: 50, schema: micros as avro.Schema },
      { id: 51, schema: withTimes('local-timestamp-millis') as avro.Schema },
      { id: 52, schema: withTimes('timestamp-nanos') as avro.Schema },
    ]);
    const writer = avro.Type.forSchema(micros as avro.Schema);
    const delivered = { ...event, delivered_at: event.submitted_at + 1500 };
    const sent = {
      ...delivered,
      event_time: event.event_time * 1000 + 999,
      submitted_at: event.submitted_at * 1000,
      delivered_at: delivered.delivered_at * 1000 + 1,
    };
    const one = frameConfluent(50, writer.toBuffer(sent));
    assert.deepEqual({ ...codec.decodeCdrEvent(one).event }, delivered);
    const both = Buffer.concat([one, one]);
    assert.deepEqual({ ...codec.decodeCdrEventIn(both, one.length, both.length).event }, delivered);
    assert.equal(codec.decodeCdrEvent(frameConfluent(50, writer.toBuffer({ ...sent, delivered_at: null }))).event.delivered_at, null);
    for (const [id, why] of [
      [51, 'field event_time: local-timestamp-millis, a local time with no zone (v1 takes UTC instants, timestamp-millis)'],
      [52, 'field event_time: timestamp-nanos, which a JS number cannot hold exactly (v1 takes timestamp-millis)'],
    ] as const)
      assert.throws(
        () => codec.decodeCdrEvent(frameConfluent(id, Buffer.from([2, 0x41, 0, 0]))),
        (e: unknown) =>
          e instanceof PipelineError && e.code === 'unknown_schema_id' && e.message === `schema id ${id} cannot be resolved to cdr-event v1: ${why}`,
      );
  });

  it('resolves a v1 writer for a v1.1 reader: new fields take their defaults', () => {
    const resolver = v11.createResolver(cdrEventType);
    const got = v11.fromBuffer(cdrEventType.toBuffer(event), resolver) as Record<string, unknown>;
    assert.equal(got['route_hops'], 1);
    assert.equal(got['body'], null);
    assert.equal(got['cdr_id'], 'c-1');
  });

  const bad: [string, Buffer, string][] = [
    ['an empty value', Buffer.alloc(0), 'decode_failed'],
    ['an unknown schema id', frameConfluent(999, cdrEventType.toBuffer(event)), 'unknown_schema_id'],
    [
      'a schema id of another subject',
      encodeWith(PSEUDONYMISED_SCHEMA_ID, {
        ...event,
        sender_token: '',
        recipient_token: '',
        token_month: '2026-11',
        recipient_type: 'msisdn',
        sender_country: '',
        mcc: '',
        mnc: '',
        destination_country: '',
        error_code: '',
        duration_ms: 0,
        late: false,
      }),
      'unknown_schema_id',
    ],
    ['a truncated body', encodeCdrEvent(event).subarray(0, 20), 'decode_failed'],
    ['trailing bytes', Buffer.concat([encodeCdrEvent(event, 'plain'), Buffer.from([1, 2, 3])]), 'decode_failed'],
    ['random bytes', Buffer.from([0x03, 0xff, 0x10, 0x22]), 'decode_failed'],
  ];
  for (const [what, buf, code] of bad) {
    it(`rejects ${what} with ${code}`, () => {
      assert.throws(
        () => decodeCdrEvent(buf),
        (e: unknown) => e instanceof PipelineError && e.code === code && e.disposition === 'dead-letter',
      );
    });
  }

  it('names a null value a tombstone, apart from an empty one (found from outside: both read "empty")', () => {
    assert.throws(() => decodeCdrEvent(null), /^PipelineError: null message value \(a tombstone/);
    assert.throws(() => decodeCdrEvent(Buffer.alloc(0)), /^PipelineError: empty message value$/);
  });

  it('says both readings of a plain record with an empty cdr_id (its first byte is 0x00, like a frame): an unknown id, or an empty cdr_id', () => {
    // Found from outside: garbage framed with an unknown id that also read as plain Avro was dead-lettered for its
    // cdr_id alone, which hid the id. Either way it can never be stored.
    const buf = encodeCdrEvent({ ...event, cdr_id: '' }, 'plain');
    assert.equal(buf[0], 0x00);
    const id = buf.readInt32BE(1);
    assert.throws(
      () => decodeCdrEvent(buf),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'unknown_schema_id' &&
        e.message === `schema id ${id} is not registered or cannot be resolved to cdr-event v1; read as plain Avro cdr-event v1 instead, its cdr_id is empty`,
    );
  });

  it('reads a writer whose top-level schema is a union value by value: its cdr-event branch read, other branches dead-lettered alone', () => {
    // Found from outside: `[CdrEvent, Heartbeat]` (several event types on one topic) and `["null", CdrEvent]` were
    // refused whole.
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { fields: { name: string; type: unknown }[] };
    const own = { ...v1, namespace: 'com.routing.cdr', fields: [...v1.fields].reverse() };
    const heartbeat = { type: 'record', name: 'Heartbeat', namespace: 'com.routing.cdr', fields: [{ name: 'at', type: 'long' }] };
    const twoTypes = [own, heartbeat];
    const nullable = ['null', own];
    const codec = new CdrCodec([
      ...loadRegisteredSchemas(),
      { id: 30, schema: twoTypes as unknown as avro.Schema },
      { id: 31, schema: nullable as unknown as avro.Schema },
    ]);
    const cdrOf = avro.Type.forSchema(own as avro.Schema);
    const hb = avro.Type.forSchema(heartbeat as avro.Schema);
    // Confluent framing, the union index (zig-zag varint), then the branch's bytes.
    const framed = (id: number, index: number, body: Buffer) => frameConfluent(id, Buffer.concat([Buffer.from([index * 2]), body]));
    for (const id of [30, 31]) {
      const cdrIndex = id === 30 ? 0 : 1;
      const one = framed(id, cdrIndex, cdrOf.toBuffer(event));
      assert.deepEqual({ ...codec.decodeCdrEvent(one).event }, event);
      assert.equal(codec.decodeCdrEvent(one).schemaId, id);
      const batch = Buffer.concat([one, one]);
      assert.deepEqual({ ...codec.decodeCdrEventIn(batch, one.length, batch.length).event }, event);
      const other = id === 30 ? framed(30, 1, hb.toBuffer({ at: 1 })) : framed(31, 0, Buffer.alloc(0));
      const branch = id === 30 ? 'Heartbeat' : 'null';
      assert.throws(
        () => codec.decodeCdrEvent(other),
        (e: unknown) =>
          e instanceof PipelineError &&
          e.code === 'validation_failed' &&
          e.message === `schema id ${id}: a value of its union's branch ${branch}, not a cdr-event record`,
      );
      for (const index of [2, 7]) {
        assert.throws(
          () => codec.decodeCdrEvent(framed(id, index, cdrOf.toBuffer(event))),
          (e: unknown) => e instanceof PipelineError && e.code === 'decode_failed' && /invalid union index/.test(e.message),
        );
      }
    }
    // A union none of whose branches is a cdr-event is refused whole, saying so.
    const none = new CdrCodec([...loadRegisteredSchemas(), { id: 32, schema: ['null', heartbeat] as unknown as avro.Schema }]);
    assert.throws(
      () => none.decodeCdrEvent(framed(32, 1, hb.toBuffer({ at: 1 }))),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'unknown_schema_id' &&
        e.message ===
          "schema id 32 cannot be resolved to cdr-event v1: a union none of whose branches is a cdr-event record (Heartbeat: its record is named Heartbeat, v1's CdrEvent (Avro reads a record of the same name or an alias))",
    );
    // A record branch that cannot be read, beside one that can: its values say why (found from outside: "not a cdr-event
    // record" of a CdrEvent without price).
    const mixed = new CdrCodec([
      ...loadRegisteredSchemas(),
      { id: 34, schema: [own, { ...own, namespace: 'com.routing.legacy', fields: own.fields.filter((f) => f.name !== 'price') }] as unknown as avro.Schema },
    ]);
    assert.deepEqual({ ...mixed.decodeCdrEvent(framed(34, 0, cdrOf.toBuffer(event))).event }, event);
    assert.throws(
      () => mixed.decodeCdrEvent(framed(34, 1, Buffer.alloc(0))),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'validation_failed' &&
        e.message ===
          'schema id 34: a value of its union’s branch CdrEvent, which cannot be read as cdr-event v1: field price: missing, and v1 gives it no default'.replace(
            '’',
            "'",
          ),
    );
    // A record branch that cannot be read says why.
    const priceless = { ...own, fields: own.fields.filter((f) => f.name !== 'price') };
    const refusedBranch = new CdrCodec([...loadRegisteredSchemas(), { id: 33, schema: ['null', priceless] as unknown as avro.Schema }]);
    assert.throws(
      () => refusedBranch.decodeCdrEvent(framed(33, 0, Buffer.alloc(0))),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.message ===
          'schema id 33 cannot be resolved to cdr-event v1: a union none of whose branches is a cdr-event record (CdrEvent: field price: missing, and v1 gives it no default)',
    );
  });

  it('names what stops a writer it cannot read: the record’s name, a field v1 needs, a field of a type v1 cannot read', () => {
    const v1 = loadSchemaFile('cdr-event-v1.avsc') as { name: string; fields: { name: string; type: unknown }[] };
    const cases: [string, unknown, string][] = [
      [
        'renamed',
        { ...v1, name: 'CallDetailRecord' },
        "its record is named CallDetailRecord, v1's CdrEvent (Avro reads a record of the same name or an alias)",
      ],
      ['without price', { ...v1, fields: v1.fields.filter((f) => f.name !== 'price') }, 'field price: missing, and v1 gives it no default'],
      [
        'segments as text',
        { ...v1, fields: v1.fields.map((f) => (f.name === 'segments' ? { name: 'segments', type: ['null', 'string'] } : f)) },
        "field segments: [null, string], which v1's int cannot read",
      ],
      ['a string', 'string', 'it is string, not a record'],
    ];
    for (const [what, schema, why] of cases) {
      const codec = new CdrCodec([...loadRegisteredSchemas(), { id: 40, schema: schema as avro.Schema }]);
      assert.throws(
        () => codec.decodeCdrEvent(frameConfluent(40, Buffer.from([2, 0x41, 0, 0]))),
        (e: unknown) => e instanceof PipelineError && e.code === 'unknown_schema_id' && e.message === `schema id 40 cannot be resolved to cdr-event v1: ${why}`,
        what,
      );
    }
  });

  it('names a long past what a JS number holds exactly as such, not as malformed Avro, and says the bound right', () => {
    // cdr_id "c", account_id "a", sender "s", recipient "r", sender_type 0, then event_time (zigzag varint): 2^62, and
    // 2^53 − 1 (found from outside: told it was "beyond ±2^53").
    const str = (t: string): number[] => [t.length * 2, ...Buffer.from(t)];
    const varint = (n: bigint): number[] => {
      const out: number[] = [];
      for (let z = n * 2n; ; z >>= 7n) {
        if (z < 0x80n) return [...out, Number(z)];
        out.push(Number(z & 0x7fn) | 0x80);
      }
    };
    for (const long of [2n ** 62n, 2n ** 53n - 1n]) {
      const bytes = Buffer.from([...str('c'), ...str('a'), ...str('s'), ...str('r'), 0, ...varint(long)]);
      assert.throws(
        () => decodeCdrEvent(bytes),
        (e: unknown) => e instanceof PipelineError && e.code === 'decode_failed' && /a long at or past ±\(2\^53 − 1\)/.test(e.message),
        String(long),
      );
    }
  });

  it('rejection reasons never quote field values', () => {
    const withPhone = encodeCdrEvent({ ...event, recipient: '+60199999999' }).subarray(0, 40);
    try {
      decodeCdrEvent(withPhone);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof PipelineError);
      assert.ok(!e.message.includes('60199999999'));
    }
  });

  it('pseudonymised schema round-trips through its registry id', () => {
    const value = pseudonymisedEvent({ sender_type: 'msisdn' });
    const buf = encodeWith(PSEUDONYMISED_SCHEMA_ID, value);
    assert.equal(buf[0], 0);
    assert.equal(buf.readInt32BE(1), PSEUDONYMISED_SCHEMA_ID);
    assert.deepEqual({ ...(pseudonymisedType.fromBuffer(buf.subarray(5)) as object) }, value);
    assert.deepEqual({ ...decodePseudonymised(buf) }, value);
    // Old readers still read v1.1 (the new fields are skipped), and a v1 event reads as v1.1 with empty ranges.
    const v1 = avro.Type.forSchema(loadSchemaFile('cdr-pseudonymised-v1.avsc'));
    const asV1 = v1.fromBuffer(buf.subarray(5), v1.createResolver(pseudonymisedType)) as Record<string, unknown>;
    assert.equal(asV1['recipient_range'], undefined);
    assert.equal(asV1['cdr_id'], value.cdr_id);
    const { sender_range: _a, sender_number_type: _b, recipient_range: _c, recipient_number_type: _d, ...v1Value } = value;
    const fromV1 = decodePseudonymised(encodeWith(PSEUDONYMISED_V1_SCHEMA_ID, v1Value));
    assert.deepEqual({ ...fromV1 }, { ...v1Value, sender_range: '', sender_number_type: '', recipient_range: '', recipient_number_type: '' });
  });

  describe('a batch of values back to back', () => {
    /** What the one-value path says of a value: the event and schema id, or the error's class, code and message. */
    function outcome(read: () => { event: CdrEvent; schemaId: number }): unknown {
      try {
        const { event: got, schemaId } = read();
        return { event: { ...got }, schemaId };
      } catch (err) {
        return err instanceof PipelineError ? { code: err.code, message: err.message } : { thrown: String(err) };
      }
    }

    it('says what a frame lacks: a header cut short, or the header alone with no Avro body', () => {
      // Found from outside: the 5-byte header alone was "shorter than its header", though it is exactly that long.
      assert.throws(() => decodeCdrEvent(Buffer.from([0, 0, 0])), /Confluent frame shorter than its 5-byte header \(3 bytes\)/);
      assert.throws(() => decodeCdrEvent(Buffer.from([0, 0, 0, 0, 1])), /Confluent frame with no Avro body/);
    });

    it('reads each value of a batch exactly as decodeCdrEvent reads it alone, damaged values included', () => {
      const good = [
        encodeCdrEvent(event, 'confluent'),
        encodeCdrEvent({ ...event, cdr_id: 'c-2', sender: 'Zürich ☎', delivered_at: Date.UTC(2026, 10, 1, 12, 0, 1) }, 'plain'),
        frameConfluent(2, v11.toBuffer({ ...event, cdr_id: 'c-3', message_body: 'dropped' })),
      ];
      // Damaged: cut short, bytes left over, an unregistered schema id, a frame shorter than its header, an empty
      // cdr_id in plain Avro (starts with 0x00, like a frame), and random single-byte changes of good values.
      const values: Buffer[] = [...good];
      for (const g of good) {
        values.push(g.subarray(0, g.length - 1), g.subarray(0, Math.floor(g.length / 2)), Buffer.concat([g, Buffer.from([0])]));
      }
      values.push(
        frameConfluent(999, cdrEventType.toBuffer(event)),
        Buffer.from([0, 0, 0]),
        Buffer.from([0, 0, 0, 0, 1]),
        encodeCdrEvent({ ...event, cdr_id: '' }, 'plain'),
      );
      let seed = 7;
      const random = (n: number): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % n;
      };
      for (let i = 0; i < 300; i++) {
        const g = Buffer.from(good[i % good.length]!);
        g[random(g.length)] = random(256);
        values.push(g);
      }
      // Every value once at the start, once in the middle and once at the end of the batch: a value cut short may
      // read into the next one's bytes, and must still come out as it does alone.
      for (let i = 0; i < values.length; i++) {
        const order = [values[(i + 1) % values.length]!, values[i]!, values[(i + 2) % values.length]!];
        const all = Buffer.concat(order);
        const start = order[0]!.length;
        const end = start + values[i]!.length;
        assert.deepEqual(
          outcome(() => decodeCdrEventIn(all, start, end)),
          outcome(() => decodeCdrEvent(values[i]!)),
          `value ${i}`,
        );
        assert.deepEqual(
          outcome(() => decodeCdrEventIn(values[i]!, 0, values[i]!.length)),
          outcome(() => decodeCdrEvent(values[i]!)),
          `value ${i} alone`,
        );
      }
    });

    it('writes values Confluent-framed back to back, byte for byte as encodeWith writes each', () => {
      const writer = framedWriter(PSEUDONYMISED_SCHEMA_ID, 1); // grows from the smallest buffer
      const base = pseudonymisedType.fromBuffer(
        encodeWith(PSEUDONYMISED_SCHEMA_ID, {
          ...event,
          sender_token: 'a'.repeat(32),
          recipient_token: 'b'.repeat(32),
          token_month: '2026-11',
          sender_type: 'alphanumeric',
          recipient_type: 'msisdn',
          sender_country: '',
          late: false,
          error_code: '',
          duration_ms: 0,
          sender_range: '',
          sender_number_type: '',
          recipient_range: '+6012',
          recipient_number_type: 'mobile',
        }).subarray(5),
      ) as Record<string, unknown>;
      const values = [base, { ...base, cdr_id: 'x'.repeat(5_000) }, { ...base, cdr_id: 'ünï 東京 📞' }];
      for (const v of values) writer.append(v);
      // A value the schema refuses: encode_failed, nothing of it left behind, and the next one is written.
      assert.throws(
        () => writer.append({ ...base, segments: 'many' }),
        (err: unknown) => err instanceof PipelineError && err.code === 'encode_failed' && !err.message.includes('many'),
      );
      writer.append(values[0]);
      assert.equal(writer.count, 4);
      const { bytes, ends } = writer.finish();
      const expected = [...values, values[0]!].map((v) => encodeWith(PSEUDONYMISED_SCHEMA_ID, v));
      assert.deepEqual(Buffer.from(bytes), Buffer.concat(expected));
      let at = 0;
      assert.deepEqual(
        [...ends],
        expected.map((e) => (at += e.length)),
      );
      // Its own ArrayBuffer, safe to transfer to another thread (never Node's shared pool).
      assert.ok(bytes.buffer.byteLength >= bytes.byteLength && bytes.byteOffset === 0);
    });
  });
});
