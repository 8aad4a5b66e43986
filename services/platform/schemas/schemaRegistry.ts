import avro from 'avsc';
import { CONFLUENT_MAGIC, PipelineError, type RegistryAnswers } from '../../core/index.ts';

/**
 * The writer schemas of cdr.raw from a Confluent-compatible schema registry (CDR_SCHEMA_REGISTRY_URL): the routing
 * layer's serialiser registers its schema there and frames each value with the id the registry gave it, so without
 * this every record of a producer on a real registry was dead-lettered as `unknown_schema_id` (found from outside,
 * 2026-12-06) unless `schemas/registry.json` was edited to match.
 *
 * Asked per batch, before the batch is decoded, about the ids it carries that are not known yet (`GET
 * /schemas/ids/{id}`, the registry's REST API). An id's schema never changes once given, so a schema served is kept
 * for good; an id the registry does not hold (404) is asked about again after `absentRecheckMs`. A registry that does
 * not answer is `schema_registry_unavailable`: the batch waits and is tried again (the loop's backoff), nothing is
 * dead-lettered for it. At most `maxLookupsPerBatch` new ids are asked about per batch: a batch of hostile values with
 * a random id each would otherwise cost a request per record (the others are dead-lettered, saying so).
 */
export interface SchemaRegistrySettings {
  /** The registry's base URL (no credentials in it: they would be logged with it). */
  readonly url: string;
  /** `user:password` for HTTP basic authentication (Confluent's `basic.auth.user.info`). */
  readonly basicAuth?: string | undefined;
  readonly timeoutMs?: number;
  readonly maxLookupsPerBatch?: number;
  readonly absentRecheckMs?: number;
}

type Known = { readonly kind: 'found'; readonly schema: string } | { readonly kind: 'note'; readonly reason: string; readonly until: number };

/** The largest schema document taken from a registry (cdr-event v1.1 is ~6 KB). */
const MAX_SCHEMA_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_LOOKUPS = 32;
const DEFAULT_ABSENT_RECHECK_MS = 60_000;
/** Requests under way at once when a batch brings several new ids. */
const CONCURRENCY = 4;

/** The schema ids of the Confluent-framed values among `values` (a plain Avro value has none). */
export function confluentSchemaIds(values: Iterable<Buffer | null>): Set<number> {
  const ids = new Set<number>();
  for (const v of values) if (v && v.length >= 6 && v[0] === CONFLUENT_MAGIC) ids.add(v.readInt32BE(1));
  return ids;
}

export class SchemaRegistryClient {
  private readonly known = new Map<number, Known>();
  /** Lookups under way: batches of several partitions that bring the same new id wait for one request. */
  private readonly asking = new Map<number, Promise<void>>();
  private readonly base: string;
  /** Where the registry is, for messages: its origin and path, never credentials or a query. */
  readonly where: string;
  private readonly headers: Record<string, string>;

  constructor(
    private readonly settings: SchemaRegistrySettings,
    private readonly clock: () => number = Date.now,
  ) {
    const url = new URL(settings.url);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.where = this.base;
    this.headers = { accept: 'application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json' };
    if (settings.basicAuth !== undefined) this.headers['authorization'] = `Basic ${Buffer.from(settings.basicAuth, 'utf8').toString('base64')}`;
  }

  /** What the registry says of `ids`: asks about those not known yet (or absent long enough ago), within the cap. */
  async answersFor(ids: ReadonlySet<number>): Promise<RegistryAnswers> {
    const now = this.clock();
    const toAsk: number[] = [];
    for (const id of ids) {
      const k = this.known.get(id);
      if (!k || (k.kind === 'note' && k.until <= now)) toAsk.push(id);
    }
    const cap = this.settings.maxLookupsPerBatch ?? DEFAULT_MAX_LOOKUPS;
    const asked = toAsk.slice(0, cap);
    const skipped = new Set(toAsk.slice(cap));
    for (let i = 0; i < asked.length; i += CONCURRENCY) await Promise.all(asked.slice(i, i + CONCURRENCY).map((id) => this.ask(id)));
    const found: { id: number; schema: string }[] = [];
    const notes: { id: number; reason: string }[] = [];
    for (const id of ids) {
      if (skipped.has(id)) {
        notes.push({ id, reason: `not looked up in the schema registry: one batch brought more than ${cap} schema ids it had not been asked about` });
        continue;
      }
      const k = this.known.get(id);
      if (k?.kind === 'found') found.push({ id, schema: k.schema });
      else if (k?.kind === 'note') notes.push({ id, reason: k.reason });
    }
    return { found, notes };
  }

  private ask(id: number): Promise<void> {
    let asking = this.asking.get(id);
    if (!asking) {
      asking = this.lookUp(id).finally(() => this.asking.delete(id));
      this.asking.set(id, asking);
    }
    return asking;
  }

  private async lookUp(id: number): Promise<void> {
    // Negative ids cannot be the registry's (it numbers from 1); asking would only cost a request.
    if (id < 0) {
      this.note(id, 'not a schema registry id (negative)', Number.POSITIVE_INFINITY);
      return;
    }
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.base}/schemas/ids/${id}`, {
        headers: this.headers,
        signal: AbortSignal.timeout(this.settings.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      throw this.unavailable(id, err instanceof Error && err.name === 'TimeoutError' ? 'no answer in time' : causeOf(err));
    }
    if (res.status === 404) {
      this.note(
        id,
        'neither the schema registry nor schemas/registry.json has it',
        this.clock() + (this.settings.absentRecheckMs ?? DEFAULT_ABSENT_RECHECK_MS),
      );
      return;
    }
    if (res.status === 401 || res.status === 403)
      throw this.unavailable(id, `it refused our credentials (HTTP ${res.status}): check CDR_SCHEMA_REGISTRY_BASIC_AUTH`);
    if (!res.ok) throw this.unavailable(id, `HTTP ${res.status}`);
    if (text.length > MAX_SCHEMA_BYTES) {
      this.note(id, `the schema registry's document for it is over ${MAX_SCHEMA_BYTES} bytes`, Number.POSITIVE_INFINITY);
      return;
    }
    let body: { schema?: unknown; schemaType?: unknown; references?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw this.unavailable(id, 'its answer is not JSON (is CDR_SCHEMA_REGISTRY_URL a schema registry?)');
    }
    const type = typeof body.schemaType === 'string' ? body.schemaType : 'AVRO';
    if (type !== 'AVRO') {
      this.note(id, `a ${type} schema in the schema registry, not Avro`, Number.POSITIVE_INFINITY);
      return;
    }
    if (Array.isArray(body.references) && body.references.length > 0) {
      this.note(id, 'its schema in the registry refers to other schemas (schema references), which this reader does not follow', Number.POSITIVE_INFINITY);
      return;
    }
    if (typeof body.schema !== 'string') throw this.unavailable(id, 'its answer has no schema (is CDR_SCHEMA_REGISTRY_URL a schema registry?)');
    try {
      avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
    } catch {
      this.note(id, 'its schema in the registry is not a valid Avro schema', Number.POSITIVE_INFINITY);
      return;
    }
    this.known.set(id, { kind: 'found', schema: body.schema });
  }

  private note(id: number, reason: string, until: number): void {
    this.known.set(id, { kind: 'note', reason, until });
  }

  private unavailable(id: number, why: string): PipelineError {
    return new PipelineError('schema_registry_unavailable', `schema registry ${this.where} could not say what schema id ${id} is: ${why}`);
  }
}

/** A fetch failure's cause in words (undici hides the system error one level down). */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  // fetch refuses some ports outright (the Fetch standard's "bad ports", 9 or 6000 among them): said as "bad port".
  if (cause && typeof cause.message === 'string') return cause.message;
  return err instanceof Error ? err.message : 'request failed';
}
