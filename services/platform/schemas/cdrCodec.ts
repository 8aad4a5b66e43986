import { readFileSync } from 'node:fs';
import avro from 'avsc';
import type { CdrEvent } from '../../core/cdr/cdrEvent.ts';
import { PipelineError } from '../../core/errors/pipelineError.ts';

/**
 * Avro codec for the CDR topics. Accepts the Confluent wire format (magic byte 0, 4-byte schema id,
 * Avro body) resolved against the reader schema by Avro's own rules, and plain Avro written with v1.
 * Fields the reader does not know — content such as a message body in a newer writer — are skipped by
 * resolution and never reach a JS object.
 */

const SCHEMA_DIR = new URL('../../../schemas/', import.meta.url);

interface RegistryEntry {
  id: number;
  subject: string;
  version: string;
  file: string;
}

export function loadSchemaFile(file: string): avro.Schema {
  return JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), 'utf8')) as avro.Schema;
}

const registry: RegistryEntry[] = (JSON.parse(readFileSync(new URL('registry.json', SCHEMA_DIR), 'utf8')) as { schemas: RegistryEntry[] }).schemas;

export const CDR_EVENT_SCHEMA_ID = 1;
export const PSEUDONYMISED_SCHEMA_ID = 11;

export const cdrEventType = avro.Type.forSchema(loadSchemaFile('cdr-event-v1.avsc'));
export const pseudonymisedType = avro.Type.forSchema(loadSchemaFile('cdr-pseudonymised-v1.avsc'));

const writerTypes = new Map<number, avro.Type>();
function writerType(id: number): avro.Type | undefined {
  let t = writerTypes.get(id);
  if (!t) {
    const entry = registry.find((e) => e.id === id);
    if (!entry) return undefined;
    t = avro.Type.forSchema(loadSchemaFile(entry.file));
    writerTypes.set(id, t);
  }
  return t;
}

const resolvers = new Map<number, avro.Resolver>();
function resolverFor(reader: avro.Type, id: number): avro.Resolver | undefined {
  let r = resolvers.get(id);
  if (!r) {
    const writer = writerType(id);
    if (!writer) return undefined;
    try {
      r = reader.createResolver(writer);
    } catch {
      return undefined;
    }
    resolvers.set(id, r);
  }
  return r;
}

export const CONFLUENT_MAGIC = 0;

/** Decodes a raw-topic value. Throws PipelineError (dead-letter) with a reason that never quotes field values. */
export function decodeCdrEvent(value: Buffer | null): { event: CdrEvent; schemaId: number } {
  if (!value || value.length === 0) throw new PipelineError('decode_failed', 'empty message value');
  if (value[0] === CONFLUENT_MAGIC) {
    if (value.length < 6) throw new PipelineError('decode_failed', 'Confluent frame shorter than its header');
    const schemaId = value.readInt32BE(1);
    const resolver = resolverFor(cdrEventType, schemaId);
    if (!resolver) throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not registered or cannot be resolved to cdr-event v1`);
    try {
      return { event: cdrEventType.fromBuffer(value.subarray(5), resolver) as CdrEvent, schemaId };
    } catch (cause) {
      throw new PipelineError('decode_failed', `Avro body does not match schema id ${schemaId}: ${reasonOf(cause)}`, { cause });
    }
  }
  try {
    return { event: cdrEventType.fromBuffer(value) as CdrEvent, schemaId: 0 };
  } catch (cause) {
    throw new PipelineError('decode_failed', `not a Confluent frame and not plain Avro cdr-event v1: ${reasonOf(cause)}`, { cause });
  }
}

/** avsc error messages can embed values; keep only their generic shape. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/trailing data/i.test(msg)) return 'trailing data after record';
  if (/truncated/i.test(msg)) return 'truncated buffer';
  if (/invalid/i.test(msg)) return 'invalid value for its type';
  return 'malformed Avro';
}

export function frameConfluent(schemaId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = CONFLUENT_MAGIC;
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

/** Encodes a CDR event as the routing layer would: Confluent-framed with schema id 1 (or plain Avro). */
export function encodeCdrEvent(event: CdrEvent, framing: 'confluent' | 'plain' = 'confluent'): Buffer {
  const body = cdrEventType.toBuffer(event);
  return framing === 'plain' ? body : frameConfluent(CDR_EVENT_SCHEMA_ID, body);
}

export function encodeWith(schemaId: number, value: unknown): Buffer {
  const t = writerType(schemaId);
  if (!t) throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not registered`);
  return frameConfluent(schemaId, t.toBuffer(value));
}
