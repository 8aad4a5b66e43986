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

/**
 * What a schema registry (CDR_SCHEMA_REGISTRY_URL) said of the schema ids a batch of cdr.raw carries: the writer
 * schemas it holds (JSON text, as it serves them), and why others cannot be used (not Avro, references, not there).
 */
export interface RegistryAnswers {
  readonly found: readonly { readonly id: number; readonly schema: string }[];
  readonly notes: readonly { readonly id: number; readonly reason: string }[];
  /**
   * The batch's ids it reads as unusable (those of `notes`), whatever the codec knows of them by now: a batch tried
   * again reads an id as its first attempt did, though a later batch found it registered meanwhile.
   */
  readonly unreadable?: readonly number[];
}

export const CONFLUENT_MAGIC = 0;
/** Reasons kept for ids a registry could not serve. */
const MAX_REGISTRY_NOTES = 10_000;
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
  // avsc reads an Avro long into a JS number and refuses one at or past ±(2^53 − 1) (its bound is 2^53 − 2): found
  // from outside, 2^53 − 1 was said to be "beyond ±2^53".
  if (/precision loss/i.test(msg)) return 'a long at or past ±(2^53 − 1), which cannot be read exactly';
  return 'malformed Avro';
}

/** How values of one writer schema are read: the reader type to decode with, its resolver, and what to check after. */
interface CdrReader {
  readonly type: avro.Type;
  readonly resolver: avro.Resolver;
  /**
   * Set when the writer's enums have symbols v1 lacks (read with v1's enums widened by them): each enum field with the
   * symbols v1 has. A value with another symbol is dead-lettered alone; the writer's other values are read as usual.
   */
  readonly enumFields?: readonly { readonly field: string; readonly symbols: ReadonlySet<string> }[];
  /**
   * Set when the writer makes fields nullable that v1 does not (read with those fields made nullable): a value whose
   * field is null is dead-lettered alone; the writer's other values are read as usual.
   */
  readonly nullFields?: readonly string[];
  /**
   * Set when the writer keeps instants in a finer unit than v1's milliseconds (`timestamp-micros`): per field, what its
   * values are divided by. Avro's resolution ignores logical types, so a micros writer's times were read as milliseconds
   * 1,000 times too large and dead-lettered as "in the future" (found from outside).
   */
  readonly timeScales?: readonly { readonly field: string; readonly divisor: number }[];
}

/**
 * How values of a writer whose top-level schema is a union are read: its union index first, then the branch's reader;
 * a branch that is not a cdr-event (a `null`, another record) is described, and its values dead-lettered alone.
 */
interface UnionReader {
  readonly branches: readonly (CdrReader | { readonly not: string; readonly why?: string })[];
}

/** What is known of a schema id: how to read its values, or why its writer cannot be read at all. */
type IdReader = CdrReader | UnionReader | { readonly refused: string };

type JsonSchema = { type?: unknown; name?: unknown; symbols?: unknown; fields?: unknown; items?: unknown; values?: unknown };

/** Calls `visit` with every enum definition of a schema (JSON form), at any depth. */
function eachEnum(node: unknown, visit: (e: JsonSchema & { name: string; symbols: string[] }) => void): void {
  if (Array.isArray(node)) for (const n of node) eachEnum(n, visit);
  else if (typeof node === 'object' && node !== null) {
    const s = node as JsonSchema;
    if (s.type === 'enum' && typeof s.name === 'string' && Array.isArray(s.symbols)) visit(s as JsonSchema & { name: string; symbols: string[] });
    if (Array.isArray(s.fields)) for (const f of s.fields as { type?: unknown }[]) eachEnum(f.type, visit);
    if (typeof s.type === 'object') eachEnum(s.type, visit);
    eachEnum(s.items, visit);
    eachEnum(s.values, visit);
  }
}

const unqualified = (name: string): string => name.slice(name.lastIndexOf('.') + 1);

/**
 * Gives each enum of the reader copy that the writer also defines (same name) the writer's extra symbols after its
 * own; true if any had one the reader lacks. avsc refuses a whole writer schema whose enum has a symbol the reader
 * lacks (without a reader default); the specification makes that an error of the values that carry such a symbol,
 * and only of them.
 */
function widenEnums(readerCopy: unknown, writer: avro.Schema): boolean {
  const writerEnums = new Map<string, readonly string[]>();
  eachEnum(writer, (e) => writerEnums.set(unqualified(e.name), e.symbols));
  let widened = false;
  eachEnum(readerCopy, (e) => {
    const extra = (writerEnums.get(unqualified(e.name)) ?? []).filter((x) => !e.symbols.includes(x));
    if (extra.length > 0) {
      e.symbols = [...e.symbols, ...extra];
      widened = true;
    }
  });
  return widened;
}

const isNullBranch = (t: unknown): boolean => t === 'null' || (typeof t === 'object' && t !== null && (t as JsonSchema).type === 'null');

/**
 * Gives each top-level field of the reader copy that is not a union a `null` branch (after its own, so that its
 * default stays valid) where the writer's field of that name is a union with `null`; returns those fields. Avro's
 * resolution of a writer union against a reader that is not one is decided value by value (a branch the reader can
 * read is read, another is an error), but avsc refuses the whole writer schema when any branch cannot be read:
 * the usual way to write an optional field, `["null", "string"]`, made every value of such a writer undecodable.
 */
function widenNullables(readerCopy: unknown, writer: avro.Schema): string[] {
  const writerFields = (writer as JsonSchema).fields;
  const readerFields = (readerCopy as JsonSchema).fields;
  if (!Array.isArray(writerFields) || !Array.isArray(readerFields)) return [];
  const nullableInWriter = new Set<string>();
  for (const f of writerFields as { name?: unknown; type?: unknown }[])
    if (typeof f.name === 'string' && Array.isArray(f.type) && f.type.some(isNullBranch)) nullableInWriter.add(f.name);
  const made: string[] = [];
  for (const f of readerFields as { name: string; type: unknown }[]) {
    if (Array.isArray(f.type) || isNullBranch(f.type) || !nullableInWriter.has(f.name)) continue;
    f.type = [f.type, 'null'];
    made.push(f.name);
  }
  return made;
}

/** The top-level enum fields of a record schema (JSON form), with their symbols. */
function enumFieldsOf(schema: avro.Schema): { field: string; symbols: ReadonlySet<string> }[] {
  const fields = (schema as JsonSchema).fields;
  if (!Array.isArray(fields)) return [];
  const out: { field: string; symbols: ReadonlySet<string> }[] = [];
  for (const f of fields as { name: string; type: unknown }[]) {
    const t = f.type as JsonSchema;
    if (typeof t === 'object' && t !== null && t.type === 'enum' && Array.isArray(t.symbols))
      out.push({ field: f.name, symbols: new Set(t.symbols as string[]) });
  }
  return out;
}

/** A reader whose values are v1 as decoded: nothing to check or convert after (`CdrCodec.checked` would do nothing). */
function readsAsIs(r: CdrReader): boolean {
  return r.enumFields === undefined && r.nullFields === undefined && r.timeScales === undefined;
}

/** The logical type of a field's type as written (of its non-null branch for a union), if any. */
function logicalTypeOf(type: unknown): string | undefined {
  const branches = Array.isArray(type) ? type.filter((b) => !isNullBranch(b)) : [type];
  const t = branches.length === 1 ? (branches[0] as JsonSchema & { logicalType?: unknown }) : undefined;
  return typeof t === 'object' && t !== null && typeof t.logicalType === 'string' ? t.logicalType : undefined;
}

/**
 * For each field v1 keeps as a `timestamp-millis` instant: what a writer's values must be divided by to be milliseconds
 * (1,000 for `timestamp-micros`), or why the writer cannot be read (a local time carries no zone; nanoseconds since
 * 1970 do not fit a JS number exactly).
 */
function timeScalesOf(reader: avro.Schema, writer: avro.Schema): { field: string; divisor: number }[] | string {
  const readerFields = (reader as JsonSchema).fields;
  const writerFields = (writer as JsonSchema).fields;
  if (!Array.isArray(readerFields) || !Array.isArray(writerFields)) return [];
  const written = new Map((writerFields as { name?: unknown; type?: unknown }[]).map((f) => [f.name, f.type]));
  const out: { field: string; divisor: number }[] = [];
  for (const f of readerFields as { name: string; type: unknown }[]) {
    if (logicalTypeOf(f.type) !== 'timestamp-millis' || !written.has(f.name)) continue;
    const lt = logicalTypeOf(written.get(f.name));
    if (lt === 'timestamp-micros') out.push({ field: f.name, divisor: 1000 });
    else if (lt === 'timestamp-nanos') return `field ${f.name}: timestamp-nanos, which a JS number cannot hold exactly (v1 takes timestamp-millis)`;
    else if (lt !== undefined && lt.startsWith('local-timestamp'))
      return `field ${f.name}: ${lt}, a local time with no zone (v1 takes UTC instants, timestamp-millis)`;
  }
  return out;
}

function isUnion(t: avro.Type): t is avro.types.UnwrappedUnionType | avro.types.WrappedUnionType {
  return t.typeName === 'union:unwrapped' || t.typeName === 'union:wrapped';
}

/** A type as a schema author would name it in a message: `null`, `string`, a record's or enum's unqualified name. */
function describeType(t: avro.Type): string {
  if (isUnion(t)) return `[${t.types.map(describeType).join(', ')}]`;
  const name = (t as avro.Type & { name?: string }).name;
  return name ? unqualified(name) : t.typeName.replace(/^logical:/, '');
}

/**
 * Why a record writer cannot be read as `reader` (v1, widened where it could be): the first thing that stops it, named
 * — its record's name, a field of v1 it lacks with no default, a field of a type v1's cannot read. Schemas hold no
 * personal data; a value is never quoted.
 */
function whyUnreadable(reader: avro.Type, writer: avro.Type, v1: avro.Type): string {
  if (writer.typeName !== 'record') return `it is ${describeType(writer)}, not a record`;
  const readerName = unqualified((reader as avro.types.RecordType).name ?? '');
  const writerName = unqualified((writer as avro.types.RecordType).name ?? '');
  if (readerName !== writerName) return `its record is named ${writerName}, v1's ${readerName} (Avro reads a record of the same name or an alias)`;
  const writerFields = new Map((writer as avro.types.RecordType).fields.map((f) => [f.name, f.type]));
  for (const f of (reader as avro.types.RecordType).fields) {
    const w = writerFields.get(f.name);
    if (w === undefined) {
      if (f.defaultValue() === undefined) return `field ${f.name}: missing, and v1 gives it no default`;
      continue;
    }
    try {
      f.type.createResolver(w, { ignoreNamespaces: true });
    } catch {
      return `field ${f.name}: ${describeType(w)}, which v1's ${describeType((v1 as avro.types.RecordType).field(f.name)?.type ?? f.type)} cannot read`;
    }
  }
  return 'Avro resolution refused it';
}

/** The union branch index a value starts with (a zig-zag varint) and where the branch's bytes begin. */
function unionIndexOf(bytes: Buffer, at: number): { index: number; next: number } | undefined {
  let n = 0;
  for (let shift = 0, i = at; i < bytes.length && shift <= 28; shift += 7, i++) {
    const b = bytes[i]!;
    n |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return n & 1 ? undefined : { index: n >>> 1, next: i + 1 };
  }
  return undefined;
}

export class CdrCodec {
  /** The reader schema of the raw topic (cdr-event v1). */
  readonly cdrEventType: avro.Type;
  /** The writer schema of cdr.pseudonymised. */
  readonly pseudonymisedType: avro.Type;
  private readonly schemas: Map<number, avro.Schema>;
  private readonly writerTypes = new Map<number, avro.Type>();
  private readonly readers = new Map<number, IdReader | null>();
  /** cdr.raw writer schemas a schema registry served, by id (JSON text): they come before `schemas` for that topic. */
  private readonly registrySchemas = new Map<number, string>();
  /** Why a schema id the registry was asked about cannot be used (said in the dead letter). */
  private readonly registryNotes = new Map<number, string>();
  /** Set by the first registry answer: from then on cdr.raw's framed ids are the registry's alone. */
  private registryInUse = false;
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

  private readerFor(id: number): IdReader | undefined {
    let r = this.readers.get(id);
    if (r === undefined) {
      r = this.newReader(id);
      // An id with no schema at all is not remembered: hostile values with random ids would grow the map for ever.
      if (r !== null || this.rawWriterSchema(id) !== undefined) this.readers.set(id, r);
    }
    return r ?? undefined;
  }

  /**
   * Takes what a schema registry said of cdr.raw's schema ids: a served schema is the writer schema of that id on the
   * raw topic from now on. From the first answer on, the registry is the only source of cdr.raw's framed schemas: its
   * ids are the producer's, and a registry numbers from 1, so `schemas/registry.json`'s ids 1 and 2 are not its (found
   * from outside: a registry's id 1 with sender and recipient in the other order, read by the local file, stored them
   * swapped). Repeating an answer changes nothing.
   */
  useRegistryAnswers(answers: RegistryAnswers): void {
    if (!this.registryInUse) {
      this.registryInUse = true;
      this.readers.clear();
    }
    for (const { id, schema } of answers.found) {
      if (this.registrySchemas.get(id) === schema) continue;
      this.registrySchemas.set(id, schema);
      this.readers.delete(id);
    }
    // A note is kept though the id has a schema by now: a batch that read it as unusable is read so again (`unreadable`)
    // and says the same.
    for (const { id, reason } of answers.notes) {
      // Bounded (hostile values with random ids): the oldest go; each batch brings the notes of its own ids again.
      if (this.registryNotes.size >= MAX_REGISTRY_NOTES && !this.registryNotes.has(id)) this.registryNotes.delete(this.registryNotes.keys().next().value!);
      this.registryNotes.set(id, reason);
    }
  }

  /** The writer schema of a cdr.raw value framed with `id`: the registry's where one is used, else the local file's. */
  private rawWriterSchema(id: number): avro.Schema | undefined {
    const served = this.registrySchemas.get(id);
    if (served === undefined) return this.registryInUse ? undefined : this.schemas.get(id);
    try {
      return JSON.parse(served) as avro.Schema;
    } catch {
      return undefined;
    }
  }

  private newReader(id: number): IdReader | null {
    const writerSchema = this.rawWriterSchema(id);
    if (!writerSchema) return null;
    let writer: avro.Type;
    try {
      writer = this.registrySchemas.has(id) ? avro.Type.forSchema(writerSchema) : this.writerType(id)!;
    } catch {
      return { refused: 'not a valid Avro schema' };
    }
    if (!isUnion(writer)) return this.recordReader(writer, writerSchema);
    // A union at the top (several event types on one topic, or `["null", CdrEvent]`): Avro resolves a writer union
    // value by value, against the branch the value took (found from outside: such a writer was refused whole).
    const refusedRecords: string[] = [];
    const branches = writer.types.map((branch, i) => {
      // The branch as written (its logical types: avsc's schema() leaves them out), else as avsc holds it.
      const written = Array.isArray(writerSchema) && typeof writerSchema[i] === 'object' ? (writerSchema[i] as avro.Schema) : branch.schema();
      const r = branch.typeName === 'record' ? this.recordReader(branch, written) : undefined;
      if (r && 'refused' in r) refusedRecords.push(`${describeType(branch)}: ${r.refused}`);
      if (r && !('refused' in r)) return r;
      // A branch named as v1's record that cannot be read as it says why; another record or type is simply another event.
      const named = describeType(branch) === unqualified((this.cdrEventType as avro.types.RecordType).name ?? '');
      return r && named ? { not: describeType(branch), why: r.refused } : { not: describeType(branch) };
    });
    if (branches.some((b) => !('not' in b))) return { branches };
    // Its record branches' reasons said (found in review: `["null", CdrEvent]` with a field v1 cannot read said none).
    return { refused: `a union none of whose branches is a cdr-event record${refusedRecords.length > 0 ? ` (${refusedRecords.join('; ')})` : ''}` };
  }

  /** How to read a record writer as cdr-event v1, or why it cannot be (naming the field or the name that stops it). */
  private recordReader(writer: avro.Type, writerSchema: avro.Schema): CdrReader | { refused: string } {
    const times = timeScalesOf(this.schemas.get(CDR_EVENT_SCHEMA_ID)!, writerSchema);
    if (typeof times === 'string') return { refused: times };
    const scaled = times.length > 0 ? { timeScales: times } : {};
    // Avro matches named types by their unqualified names; avsc by their full ones unless told (found from outside: a
    // writer in its own namespace, `"namespace": "com.routing.cdr"`, or none, was refused whole).
    // A new options object per call: avsc keeps its resolvers under construction in it (`registry`), and a failed
    // attempt's half-built ones, reused, decoded every value wrongly.
    const byShortNames = (): { ignoreNamespaces: true } => ({ ignoreNamespaces: true });
    try {
      return { type: this.cdrEventType, resolver: this.cdrEventType.createResolver(writer, byShortNames()), ...scaled };
    } catch {
      // Perhaps enum symbols v1 lacks, or nullable fields: tried below.
    }
    // Enum symbols v1 lacks, or fields v1 does not let be null: read with v1 widened to take them, and refuse the values
    // that use one.
    const readerSchema = this.schemas.get(CDR_EVENT_SCHEMA_ID)!;
    const widened = JSON.parse(JSON.stringify(readerSchema)) as avro.Schema;
    const enumsWidened = widenEnums(widened, writerSchema);
    const nullFields = widenNullables(widened, writerSchema);
    if (!enumsWidened && nullFields.length === 0) return { refused: whyUnreadable(this.cdrEventType, writer, this.cdrEventType) };
    const type = avro.Type.forSchema(widened);
    try {
      return {
        type,
        resolver: type.createResolver(writer, byShortNames()),
        ...(enumsWidened ? { enumFields: enumFieldsOf(readerSchema) } : {}),
        ...(nullFields.length > 0 ? { nullFields } : {}),
        ...scaled,
      };
    } catch {
      return { refused: whyUnreadable(type, writer, this.cdrEventType) };
    }
  }

  /** `pinned`: read as unusable because the batch's first attempt did (its note then says why, though a schema came since). */
  private unknownIdReason(schemaId: number, pinned = false): string {
    const note = this.registryNotes.get(schemaId);
    if (note !== undefined && (pinned || !this.registrySchemas.has(schemaId))) return `schema id ${schemaId}: ${note}`;
    const known = this.readers.get(schemaId);
    const why = known && 'refused' in known ? `: ${known.refused}` : '';
    if (this.registrySchemas.has(schemaId)) return `schema id ${schemaId} (from the schema registry) cannot be resolved to cdr-event v1${why}`;
    if (this.registryInUse) return `schema id ${schemaId} is not in the schema registry (with CDR_SCHEMA_REGISTRY_URL set, cdr.raw's ids are the registry's)`;
    return why
      ? `schema id ${schemaId} cannot be resolved to cdr-event v1${why}`
      : `schema id ${schemaId} is not registered or cannot be resolved to cdr-event v1`;
  }

  /**
   * A value read with a widened v1, refused when a field holds a symbol v1 lacks or a null v1 does not allow; its finer
   * instants brought to milliseconds.
   */
  private checked(event: CdrEvent, reader: CdrReader, schemaId: number): CdrEvent {
    const record = event as unknown as Record<string, unknown>;
    if (reader.timeScales)
      for (const { field, divisor } of reader.timeScales) {
        const v = record[field];
        if (typeof v === 'number') record[field] = Math.floor(v / divisor);
      }
    if (reader.nullFields)
      for (const field of reader.nullFields)
        if (record[field] === null) {
          // Every null named, not the first alone: the routing layer fixes its writer once, not once per field. (The list
          // is made only for a value that has one: every value of a nullable writer comes through here.)
          const nulls = reader.nullFields.filter((f) => record[f] === null);
          throw new PipelineError(
            'validation_failed',
            nulls.length === 1
              ? `${field}: null, which cdr-event v1 does not allow (schema id ${schemaId} makes it nullable)`
              : `${nulls.join(', ')}: null, which cdr-event v1 does not allow (schema id ${schemaId} makes them nullable)`,
          );
        }
    if (reader.enumFields)
      for (const { field, symbols } of reader.enumFields) {
        const v = record[field];
        if (typeof v === 'string' && !symbols.has(v))
          throw new PipelineError('validation_failed', `${field}: a symbol cdr-event v1 does not have (schema id ${schemaId} adds it)`);
      }
    return event;
  }

  /**
   * Decodes a raw-topic value. Throws PipelineError (dead-letter) with a reason that never quotes field values.
   * `unreadable`: schema ids this batch reads as unusable whatever is known of them now (RegistryAnswers.unreadable).
   */
  decodeCdrEvent(value: Buffer | null, unreadable?: ReadonlySet<number>): { event: CdrEvent; schemaId: number } {
    // A null value is a tombstone (a delete marker for compacted topics), not a record: said so (found from outside:
    // it read as an empty value).
    if (value === null) throw new PipelineError('decode_failed', 'null message value (a tombstone: a delete marker, not a record)');
    if (value.length === 0) throw new PipelineError('decode_failed', 'empty message value');
    if (value[0] === CONFLUENT_MAGIC) {
      if (value.length < 5) throw new PipelineError('decode_failed', `Confluent frame shorter than its 5-byte header (${value.length} bytes)`);
      if (value.length === 5) throw new PipelineError('decode_failed', 'Confluent frame with no Avro body (the 5-byte header alone)');
      const schemaId = value.readInt32BE(1);
      const reader = unreadable?.has(schemaId) ? undefined : this.readerFor(schemaId);
      if (!reader || 'refused' in reader) {
        // A plain Avro record whose cdr_id is empty starts with 0x00 too (its length, zero): it can never be stored (an
        // empty cdr_id is refused), so both readings are said (found from outside: garbage with an unknown id was
        // dead-lettered for its cdr_id alone, which hid the id).
        const plain = this.plainOrUndefined(value);
        const also = plain ? '; read as plain Avro cdr-event v1 instead, its cdr_id is empty' : '';
        throw new PipelineError('unknown_schema_id', this.unknownIdReason(schemaId, unreadable?.has(schemaId) === true) + also);
      }
      let branch: CdrReader;
      let body = value.subarray(5);
      if ('branches' in reader) {
        const at = unionIndexOf(value, 5);
        const taken = at === undefined ? undefined : reader.branches[at.index];
        if (at === undefined || taken === undefined)
          throw new PipelineError('decode_failed', `Avro body does not match schema id ${schemaId}: invalid union index`);
        if ('not' in taken)
          throw new PipelineError(
            'validation_failed',
            taken.why === undefined
              ? `schema id ${schemaId}: a value of its union's branch ${taken.not}, not a cdr-event record`
              : // A record branch that cannot be read as v1 says why (found from outside: "not a cdr-event record" of a CdrEvent).
                `schema id ${schemaId}: a value of its union's branch ${taken.not}, which cannot be read as cdr-event v1: ${taken.why}`,
          );
        branch = taken;
        body = value.subarray(at.next);
      } else branch = reader;
      let event: CdrEvent;
      try {
        event = branch.type.fromBuffer(body, branch.resolver) as CdrEvent;
      } catch (cause) {
        throw new PipelineError('decode_failed', `Avro body does not match schema id ${schemaId}: ${reasonOf(cause)}`, { cause });
      }
      return { event: this.checked(event, branch, schemaId), schemaId };
    }
    try {
      return { event: this.cdrEventType.fromBuffer(value) as CdrEvent, schemaId: 0 };
    } catch (cause) {
      throw new PipelineError('decode_failed', `not a Confluent frame and not plain Avro cdr-event v1: ${reasonOf(cause)}`, { cause });
    }
  }

  /**
   * `decodeCdrEvent` of the bytes [start, end) of `bytes` (a batch's values back to back) without a buffer per value.
   * A value that decodes to exactly its own bytes read only those bytes, so it is what the one-value path reads;
   * any other (an error, bytes left over, or a read past `end` into the next value) goes through that path, whose
   * errors name the problem.
   */
  decodeCdrEventIn(bytes: Buffer, start: number, end: number, unreadable?: ReadonlySet<number>): { event: CdrEvent; schemaId: number } {
    if (end - start >= 6 && bytes[start] === CONFLUENT_MAGIC) {
      const schemaId = bytes.readInt32BE(start + 1);
      const reader = unreadable?.has(schemaId) ? undefined : this.readerFor(schemaId);
      // A reader whose values need checking (a widened v1, finer instants) or of a union goes the one-value way.
      const event = reader && 'resolver' in reader && readsAsIs(reader) ? this.decodedExactly(bytes, start + 5, end, reader.resolver) : undefined;
      if (event) return { event, schemaId };
    } else if (end > start && bytes[start] !== CONFLUENT_MAGIC) {
      const event = this.decodedExactly(bytes, start, end, undefined);
      if (event) return { event, schemaId: 0 };
    }
    return this.decodeCdrEvent(bytes.subarray(start, end), unreadable);
  }

  private decodedExactly(bytes: Buffer, from: number, end: number, resolver: avro.Resolver | undefined): CdrEvent | undefined {
    try {
      const decoded: { value: unknown; offset: number } = this.cdrEventType.decode(bytes, from, resolver);
      return decoded.offset === end ? (decoded.value as CdrEvent) : undefined;
    } catch {
      return undefined;
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

  /** A writer of values Confluent-framed with a registered schema, back to back in one buffer (FramedValueWriter). */
  framedWriter(schemaId: number, sizeHint?: number): FramedValueWriter {
    const t = this.writerType(schemaId);
    if (!t) throw new PipelineError('unknown_schema_id', `schema id ${schemaId} is not registered`);
    return new FramedValueWriter(t, schemaId, sizeHint);
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

/**
 * Values Confluent-framed with one schema, written back to back into one growing buffer of its own: per value no
 * buffer of its own, no frame header allocated and concatenated, no copy into a batch afterwards (what `encodeWith`
 * per value and packing the results cost ingest's prepare work; benchmarks/results/prepare-work-2026-12-04.md).
 */
export class FramedValueWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly ends: number[] = [];

  constructor(
    private readonly type: avro.Type,
    private readonly schemaId: number,
    sizeHint = 4096,
  ) {
    // Its own ArrayBuffer (never Node's shared pool): the bytes may be transferred to another thread.
    this.buf = Buffer.allocUnsafeSlow(Math.max(64, sizeHint));
  }

  /** Appends one value. A value the schema refuses is `encode_failed` and leaves nothing behind. */
  append(value: unknown): void {
    const start = this.pos;
    for (;;) {
      this.reserve(start + 6);
      this.buf[start] = CONFLUENT_MAGIC;
      this.buf.writeInt32BE(this.schemaId, start + 1);
      let end: number;
      try {
        // avsc writes into the buffer given and returns the end, or minus the bytes it lacked (nothing is thrown).
        end = this.type.encode(value, this.buf, start + 5);
      } catch (cause) {
        throw new PipelineError('encode_failed', `value does not fit schema id ${this.schemaId}: ${reasonOf(cause)}`, { cause });
      }
      if (end >= 0) {
        this.pos = end;
        this.ends.push(end);
        return;
      }
      this.reserve(this.buf.length - end);
    }
  }

  get count(): number {
    return this.ends.length;
  }

  /** The values written (a view of this writer's own buffer) and each one's end offset in it. */
  finish(): { bytes: Uint8Array; ends: Uint32Array } {
    return { bytes: this.buf.subarray(0, this.pos), ends: Uint32Array.from(this.ends) };
  }

  private reserve(size: number): void {
    if (size <= this.buf.length) return;
    let next = this.buf.length * 2;
    while (next < size) next *= 2;
    const grown = Buffer.allocUnsafeSlow(next);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
