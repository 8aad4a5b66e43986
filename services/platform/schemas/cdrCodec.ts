import { readFileSync } from 'node:fs';
import type avro from 'avsc';
import { CdrCodec, type RegisteredSchema } from '../../core/index.ts';
import type { CdrEvent, FramedValueWriter, PseudonymisedValue, RegistryAnswers } from '../../core/index.ts';

/**
 * The project's Avro schemas, read once from `schemas/` (registry.json: Confluent schema id → file), and the
 * codec built from them (services/core/cdr/avroCodec.ts). The functions below are that one codec's methods.
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

export function loadRegisteredSchemas(): RegisteredSchema[] {
  const registry = (JSON.parse(readFileSync(new URL('registry.json', SCHEMA_DIR), 'utf8')) as { schemas: RegistryEntry[] }).schemas;
  return registry.map((e) => ({ id: e.id, schema: loadSchemaFile(e.file) }));
}

export const cdrCodec = new CdrCodec(loadRegisteredSchemas());
export const cdrEventType = cdrCodec.cdrEventType;
export const pseudonymisedType = cdrCodec.pseudonymisedType;

export function decodeCdrEvent(value: Buffer | null, unreadable?: ReadonlySet<number>): { event: CdrEvent; schemaId: number } {
  return cdrCodec.decodeCdrEvent(value, unreadable);
}
/** decodeCdrEvent of the value at [start, end) of a batch's values back to back. */
export function decodeCdrEventIn(bytes: Buffer, start: number, end: number, unreadable?: ReadonlySet<number>): { event: CdrEvent; schemaId: number } {
  return cdrCodec.decodeCdrEventIn(bytes, start, end, unreadable);
}
/** What a schema registry said of a batch's schema ids, for this thread's codec (each prepare worker has its own). */
export function useRegistryAnswers(answers: RegistryAnswers): void {
  cdrCodec.useRegistryAnswers(answers);
}
export function encodeCdrEvent(event: CdrEvent, framing: 'confluent' | 'plain' = 'confluent'): Buffer {
  return cdrCodec.encodeCdrEvent(event, framing);
}
/** A cdr.pseudonymised value (v1 or v1.1) in the v1.1 reader shape. */
export function decodePseudonymised(value: Buffer | null): PseudonymisedValue {
  return cdrCodec.decodePseudonymised(value);
}
export function encodeWith(schemaId: number, value: unknown): Buffer {
  return cdrCodec.encodeWith(schemaId, value);
}
/** Values Confluent-framed with a registered schema, written back to back into one buffer. */
export function framedWriter(schemaId: number, sizeHint?: number): FramedValueWriter {
  return cdrCodec.framedWriter(schemaId, sizeHint);
}
export {
  CDR_EVENT_SCHEMA_ID,
  CONFLUENT_MAGIC,
  FRAUD_ALERT_SCHEMA_ID,
  PSEUDONYMISED_SCHEMA_ID,
  PSEUDONYMISED_V1_SCHEMA_ID,
  frameConfluent,
} from '../../core/cdr/avroCodec.ts';
