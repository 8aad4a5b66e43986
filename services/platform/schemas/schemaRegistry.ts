import avro from 'avsc';
import { CONFLUENT_MAGIC, PipelineError, type RegistryAnswers } from '../../core/index.ts';

/**
 * The writer schemas of cdr.raw from a Confluent-compatible schema registry (CDR_SCHEMA_REGISTRY_URL): the routing
 * layer's serialiser registers its schema there and frames each value with the id the registry gave it, so without
 * this every record of a producer on a real registry was dead-lettered as `unknown_schema_id` (found from outside,
 * 2026-12-06) unless `schemas/registry.json` was edited to match.
 *
 * Asked per batch, before the batch is decoded, about the ids it carries that are not known yet (`GET
 * /schemas/ids/{id}`, the registry's REST API). Every answer is kept for the life of the process: a served schema
 * because an id's schema never changes; an absent or unusable id so that a batch tried again is decided as its first
 * attempt was (its dead letters are out by then). An absent id (the registry's own 404, error code 40403) is asked
 * ABSENT_ASKS times, ABSENT_RETRY_MS apart, first: a schema just registered may not have reached the node that answers.
 * A registry that does not answer — or answers a 404 that is not its own, a URL without the registry's path — is
 * `schema_registry_unavailable`: the batch waits and is tried again (the loop's backoff), nothing is dead-lettered for
 * it. At most `maxLookupsPerBatch` new ids are asked about per batch, those carrying the most values first: a batch of
 * hostile values with a random id each would otherwise cost a request per record (the rest are dead-lettered, saying
 * so, and asked about in a later batch).
 */
export interface SchemaRegistrySettings {
  /** The registry's base URL (no credentials in it: they would be logged with it). */
  readonly url: string;
  /** `user:password` for HTTP basic authentication (Confluent's `basic.auth.user.info`). */
  readonly basicAuth?: string | undefined;
  readonly timeoutMs?: number;
  readonly maxLookupsPerBatch?: number;
  /** The pause between the asks about an id the registry says it does not have. */
  readonly absentRetryMs?: number;
  /** How long an absent id stays absent before a new batch asks again (REASK_ABSENT_MS; CDR_SCHEMA_REGISTRY_ABSENT_RECHECK_S). */
  readonly reaskAbsentMs?: number;
}

/**
 * What the registry said of an id: its schema (and, if it was absent before, why it was then, for batches that read it
 * so), or why it cannot be used (`absentAt`: when it was last found absent — asked again after REASK_ABSENT_MS).
 */
type Known =
  | { readonly kind: 'found'; readonly schema: string; readonly earlier?: string }
  | { readonly kind: 'note'; readonly reason: string; readonly absentAt?: number };

/** The largest schema document taken from a registry (cdr-event v1.1 is ~6 KB). */
const MAX_SCHEMA_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_LOOKUPS = 32;
const ABSENT_ASKS = 3;
const ABSENT_RETRY_MS = 500;
/**
 * An id found absent is asked about again (once) by a new batch after this long: a producer framing values with an id
 * before registering it (or with a registry not yet replicated) had every later value of that schema dead-lettered
 * until ingest restarted (found from outside, 2026-12-07). A batch tried again reads it as its first attempt did
 * (`answersFor`'s `pinned`, recorded with the batch).
 */
const REASK_ABSENT_MS = 60_000;
/** Ids remembered as unusable (absent, not Avro…): beyond this the oldest are forgotten (hostile random ids). */
const MAX_NOTES = 10_000;

/** The schema ids of the Confluent-framed values among `values`, with how many values carry each (plain Avro: none). */
export function confluentSchemaIds(values: Iterable<Buffer | null>): Map<number, number> {
  const ids = new Map<number, number>();
  for (const v of values)
    if (v && v.length >= 6 && v[0] === CONFLUENT_MAGIC) {
      const id = v.readInt32BE(1);
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
  return ids;
}

export class SchemaRegistryClient {
  private readonly known = new Map<number, Known>();
  private notes = 0;
  /** Lookups under way: batches of several partitions that bring the same new id wait for one request. */
  private readonly asking = new Map<number, Promise<void>>();
  private readonly base: string;
  /** Where the registry is, for messages: its origin and path, never credentials or a query. */
  readonly where: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly settings: SchemaRegistrySettings) {
    const url = new URL(settings.url);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.where = this.base;
    this.headers = { accept: 'application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json' };
    if (settings.basicAuth !== undefined) this.headers['authorization'] = `Basic ${Buffer.from(settings.basicAuth, 'utf8').toString('base64')}`;
  }

  /**
   * What the registry says of `ids` (id → how many of the batch's values carry it): asks about those not known yet, and
   * again about those found absent more than REASK_ABSENT_MS ago. `pinned`: ids the batch read as unusable at its first
   * attempt (recorded with it): read so again, never asked about, whatever the registry says now — a retry after its
   * dead letters went out must not store them. `unreadable` of the answer: every id of the batch it cannot read, to
   * record with the batch.
   */
  async answersFor(ids: ReadonlyMap<number, number>, pinned: ReadonlySet<number> = new Set()): Promise<RegistryAnswers> {
    const toAsk: number[] = [];
    const now = Date.now();
    for (const id of ids.keys()) {
      if (pinned.has(id)) continue;
      const k = this.known.get(id);
      if (k === undefined || (k.kind === 'note' && k.absentAt !== undefined && now - k.absentAt >= (this.settings.reaskAbsentMs ?? REASK_ABSENT_MS)))
        toAsk.push(id);
    }
    // The routing layer's schema carries many values of a batch, a hostile value's random id one: asked first.
    toAsk.sort((a, b) => ids.get(b)! - ids.get(a)!);
    const cap = this.settings.maxLookupsPerBatch ?? DEFAULT_MAX_LOOKUPS;
    const asked = toAsk.slice(0, cap);
    const skipped = new Set(toAsk.slice(cap));
    // All at once: an absent id is asked three times 0.5 s apart, so one after another 40 random ids held a batch 8 s
    // (found in review); together a batch waits about 1 s at most for them.
    await Promise.all(asked.map((id) => this.ask(id)));
    const found: { id: number; schema: string }[] = [];
    const notes: { id: number; reason: string }[] = [];
    for (const id of ids.keys()) {
      if (pinned.has(id)) {
        const k = this.known.get(id);
        const reason = k?.kind === 'note' ? k.reason : k?.kind === 'found' && k.earlier !== undefined ? k.earlier : 'unreadable when this batch was first read';
        notes.push({ id, reason });
        continue;
      }
      if (skipped.has(id)) {
        notes.push({ id, reason: `not looked up in the schema registry: one batch brought more than ${cap} schema ids it had not been asked about` });
        continue;
      }
      const k = this.known.get(id);
      if (k?.kind === 'found') found.push({ id, schema: k.schema });
      else if (k?.kind === 'note') notes.push({ id, reason: k.reason });
    }
    return { found, notes, unreadable: notes.map((n) => n.id) };
  }

  private ask(id: number): Promise<void> {
    let asking = this.asking.get(id);
    if (!asking) {
      // Asked again after REASK_ABSENT_MS: once (it was asked ABSENT_ASKS times when first seen).
      const again = this.known.get(id)?.kind === 'note';
      asking = this.lookUp(id, again ? 1 : ABSENT_ASKS).finally(() => this.asking.delete(id));
      this.asking.set(id, asking);
    }
    return asking;
  }

  private async lookUp(id: number, asks: number): Promise<void> {
    // Negative ids cannot be the registry's (it numbers from 1); asking would only cost a request.
    if (id < 0) {
      this.note(id, 'not a schema registry id (negative)');
      return;
    }
    for (let ask = 1; ; ask++) {
      const { status, text } = await this.get(id);
      if (status !== 404) {
        this.take(id, status, text);
        return;
      }
      // Any server answers 404 for a path it lacks: only the registry's own "schema not found" means the id is absent.
      if (!isSchemaNotFound(text))
        throw this.unavailable(id, `HTTP 404 without the registry's "schema not found" (is CDR_SCHEMA_REGISTRY_URL the registry's base URL?)`);
      if (ask >= asks) {
        this.note(id, 'not in the schema registry (it answered "schema not found")', Date.now());
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.settings.absentRetryMs ?? ABSENT_RETRY_MS));
    }
  }

  /** One GET of an id: its status and body (undefined when longer than MAX_SCHEMA_BYTES, read no further). */
  private async get(id: number): Promise<{ status: number; text: string | undefined }> {
    try {
      const res = await fetch(`${this.base}/schemas/ids/${id}`, {
        headers: this.headers,
        signal: AbortSignal.timeout(this.settings.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
      return { status: res.status, text: await boundedText(res) };
    } catch (err) {
      throw this.unavailable(id, err instanceof Error && err.name === 'TimeoutError' ? 'no answer in time' : causeOf(err));
    }
  }

  /** An answer other than 404: the schema kept, a note of why it cannot be used, or the registry unavailable. */
  private take(id: number, status: number, text: string | undefined): void {
    if (status === 401 || status === 403) throw this.unavailable(id, `it refused our credentials (HTTP ${status}): check CDR_SCHEMA_REGISTRY_BASIC_AUTH`);
    if (status < 200 || status > 299) throw this.unavailable(id, `HTTP ${status}`);
    if (text === undefined) {
      this.note(id, `the schema registry's document for it is over ${MAX_SCHEMA_BYTES} bytes`);
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
      this.note(id, `a ${type} schema in the schema registry, not Avro`);
      return;
    }
    if (Array.isArray(body.references) && body.references.length > 0) {
      this.note(id, 'its schema in the registry refers to other schemas (schema references), which this reader does not follow');
      return;
    }
    if (typeof body.schema !== 'string') throw this.unavailable(id, 'its answer has no schema (is CDR_SCHEMA_REGISTRY_URL a schema registry?)');
    try {
      avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
    } catch {
      this.note(id, 'its schema in the registry is not a valid Avro schema');
      return;
    }
    const before = this.known.get(id);
    if (before?.kind === 'note') this.notes--;
    this.known.set(id, before?.kind === 'note' ? { kind: 'found', schema: body.schema, earlier: before.reason } : { kind: 'found', schema: body.schema });
  }

  private note(id: number, reason: string, absentAt?: number): void {
    if (this.known.get(id)?.kind === 'note') {
      // Asked again and still absent: the same note, its time moved on.
      this.known.delete(id);
      this.notes--;
    }
    if (this.notes >= MAX_NOTES) {
      // The oldest note goes (a Map iterates in insertion order); served schemas are never forgotten.
      for (const [old, k] of this.known)
        if (k.kind === 'note') {
          this.known.delete(old);
          this.notes--;
          break;
        }
    }
    this.known.set(id, absentAt === undefined ? { kind: 'note', reason } : { kind: 'note', reason, absentAt });
    this.notes++;
  }

  private unavailable(id: number, why: string): PipelineError {
    return new PipelineError('schema_registry_unavailable', `schema registry ${this.where} could not say what schema id ${id} is: ${why}`);
  }
}

/** Whether a 404's body is the registry's own "schema not found" (error code 40403), not any server's 404. */
function isSchemaNotFound(text: string | undefined): boolean {
  try {
    return (JSON.parse(text ?? '') as { error_code?: unknown }).error_code === 40403;
  } catch {
    return false;
  }
}

/** The body as text, or undefined once it passes MAX_SCHEMA_BYTES (read no further: a hostile or broken server). */
async function boundedText(res: Response): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of res.body) {
    length += chunk.byteLength;
    if (length > MAX_SCHEMA_BYTES) {
      await res.body.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A fetch failure's cause in words (undici hides the system error one level down). */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  // fetch refuses some ports outright (the Fetch standard's "bad ports", 9 or 6000 among them): said as "bad port".
  if (cause && typeof cause.message === 'string') return cause.message;
  return err instanceof Error ? err.message : 'request failed';
}
