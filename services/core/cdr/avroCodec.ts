import avro from 'avsc';
import { PipelineError } from '../errors/pipelineError.ts';
import type { PseudonymisedEvent } from '../pseudonym/pseudonymise.ts';
import type { CdrEvent } from './cdrEvent.ts';

export type PseudonymisedValue = PseudonymisedEvent;

/**
 * Avro codec for the CDR topics, built from schemas handed in (platform/schemas reads them from `schemas/`).
 * Accepts the Confluent wire format (magic byte 0, 4-byte schema id, Avro body) resolved against the reader
 * schema by Avro's own rules, and plain Avro written with v1. Fields the reader does not know — content such
 * as a message body in a newer writer — are skipped by resolution and never reach a JS object.
 */
export interface RegisteredSchema {
  readonly id: number;
  readonly schema: avro.Schema;
}

export const CONFLUENT_MAGIC = 0;
export const CDR_EVENT_SCHEMA_ID = 1;
/** The schema ingest writes cdr.pseudonymised with (v1.1: v1 plus number ranges and types). */
export const PSEUDONYMISED_SCHEMA_ID = 12;
/** fraud.alerts (fraud-alert-v1.avsc). */
export const FRAUD_ALERT_SCHEMA_ID = 21;
/** The first pseudonymised schema; events written with it are still read (their ranges and types are empty). */
export const PSEUDONYMISED_V1_SCHEMA_ID = 11;

export function frameConfluent(schemaId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = CONFLUENT_MAGIC;
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

/** avsc error messages can embed values; keep only their generic shape. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/trailing data/i.test(msg)) return 'trailing data after record';
  if (/truncated/i.test(msg)) return 'truncated buffer';
  if (/invalid/i.test(msg)) return 'invalid value for its type';
  // avsc reads an Avro long into a JS number: one beyond ±2^53 cannot be read exactly.
  if (/precision loss/i.test(msg)) return 'a long beyond ±2^53, which cannot be read exactly';
  return 'malformed Avro';
}

export class CdrCodec {
  /** The reader schema of the raw topic (cdr-event v1). */
  readonly cdrEventType: avro.Type;
  /** The writer schema of cdr.pseudonymised. */
  readonly pseudonymisedType: avro.Type;
  private readonly schemas: Map<number, avro.Schema>;
  private readonly writerTypes = new Map<number, avro.Type>();
  private readonly resolvers = new Map<number, avro.Resolver | null>();
  private readonly pseudonymisedResolvers = new Map<number, avro.Resolver | null>();

  constructor(registered: readonly RegisteredSchema[]) {
    this.schemas = new Map(registered.map((r) => [r.id, r.schema]));
    this.cdrEventType = this.requireType(CDR_EVENT_SCHEMA_ID);
    this.pseudonymisedType = this.requireType(PSEUDONYMISED_SCHEMA_ID);
  }

  private requireType(id: number): avro.Type {
    const t = this.writerType(id);
    if (!t) throw new PipelineError('config_invalid', `schema id ${id} is not registered`);
    return t;
  }

  private writerType(id: number): avro.Type | undefined {
    let t = this.writerTypes.get(id);
    if (!t) {
      const schema = this.schemas.get(id);
      if (!schema) return undefined;
      t = avro.Type.forSchema(schema);
      this.writerTypes.set(id, t);
    }
    return t;
  }

  private resolverFor(id: number): avro.Resolver | undefined {
    let r = this.resolvers.get(id);
    if (r === undefined) {
      const writer = this.writerType(id);
      if (!writer) return undefined;
      try {
        r = this.cdrEventType.createResolver(writer);
      } catch {
        r = null;
      }
      this.resolvers.set(id, r);
    }
    return r ?? undefined;
  }

  /** Decodes a raw-topic value. Throws PipelineError (dead-letter) with a reason that never quotes field values. */
  decodeCdrEvent(value: Buffer | null): { event: CdrEvent; schemaId: number } {
    if (!value || value.length === 0) throw new PipelineError('decode_failed', 'empty message value');
    if (value[0] === CONFLUENT_MAGIC) {
      if (value.length < 6) throw new PipelineError('decode_failed', 'Confluent frame shorter than its header');
      const schemaId = value.readInt32BE(1);
      const resolver = this.resolverFor(schemaId);
      if (!resolver) {
        // A plain Avro record whose cdr_id is empty starts with 0x00 too (its length, zero). Read that way, validation
        // names the real problem; it can never be stored (an empty cdr_id is refused), so nothing is let through.
        const plain = this.plainOrUndefined(value);
        if (plain) return plain;
        throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not registered or cannot be resolved to cdr-event v1`);
      }
      try {
        return { event: this.cdrEventType.fromBuffer(value.subarray(5), resolver) as CdrEvent, schemaId };
      } catch (cause) {
        throw new PipelineError('decode_failed', `Avro body does not match schema id ${schemaId}: ${reasonOf(cause)}`, { cause });
      }
    }
    try {
      return { event: this.cdrEventType.fromBuffer(value) as CdrEvent, schemaId: 0 };
    } catch (cause) {
      throw new PipelineError('decode_failed', `not a Confluent frame and not plain Avro cdr-event v1: ${reasonOf(cause)}`, { cause });
    }
  }

  private plainOrUndefined(value: Buffer): { event: CdrEvent; schemaId: number } | undefined {
    try {
      return { event: this.cdrEventType.fromBuffer(value) as CdrEvent, schemaId: 0 };
    } catch {
      return undefined;
    }
  }

  /**
   * Decodes a cdr.pseudonymised value written with any registered pseudonymised schema (v1 or v1.1) into the current
   * reader shape (v1.1: fields a v1 writer lacked take their defaults). Throws PipelineError (dead-letter).
   */
  decodePseudonymised(value: Buffer | null): PseudonymisedValue {
    if (!value || value.length < 6 || value[0] !== CONFLUENT_MAGIC) throw new PipelineError('decode_failed', 'not a Confluent-framed pseudonymised event');
    const schemaId = value.readInt32BE(1);
    let resolver = this.pseudonymisedResolvers.get(schemaId);
    if (resolver === undefined) {
      const writer = this.writerType(schemaId);
      try {
        resolver = writer ? this.pseudonymisedType.createResolver(writer) : null;
      } catch {
        resolver = null;
      }
      this.pseudonymisedResolvers.set(schemaId, resolver);
    }
    if (!resolver) throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not a pseudonymised schema this reader resolves`);
    try {
      return this.pseudonymisedType.fromBuffer(value.subarray(5), resolver) as PseudonymisedValue;
    } catch (cause) {
      throw new PipelineError('decode_failed', `Avro body does not match schema id ${schemaId}: ${reasonOf(cause)}`, { cause });
    }
  }

  /** Encodes a CDR event as the routing layer would: Confluent-framed with schema id 1 (or plain Avro). */
  encodeCdrEvent(event: CdrEvent, framing: 'confluent' | 'plain' = 'confluent'): Buffer {
    const body = this.cdrEventType.toBuffer(event);
    return framing === 'plain' ? body : frameConfluent(CDR_EVENT_SCHEMA_ID, body);
  }

  /** Encodes a value with a registered schema, Confluent-framed. A value the schema refuses is `encode_failed`. */
  encodeWith(schemaId: number, value: unknown): Buffer {
    const t = this.writerType(schemaId);
    if (!t) throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not registered`);
    let body: Buffer;
    try {
      body = t.toBuffer(value);
    } catch (cause) {
      throw new PipelineError('encode_failed', `value does not fit schema id ${schemaId}: ${reasonOf(cause)}`, { cause });
    }
    return frameConfluent(schemaId, body);
  }
}
