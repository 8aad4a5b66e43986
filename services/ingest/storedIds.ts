import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { StoredIdFilter, type FilterHold } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import { readVarint } from '../platform/kafka/index.ts';

/**
 * The cdr_ids an embedded store holds, as a filter in front of ingest's duplicate lookup (ADR 0045): an id the filter
 * has never seen is not in `cdr_ids`, so it needs no lookup. Complete only because nothing but this process writes
 * the store while it holds it (the engine locks its directory), so it is one filter per lease on the directory
 * (`Storage.lease`), shared by every ingest of the process, and not used with a ClickHouse server (other processes
 * write there).
 */
export interface StoredIds {
  /** False until the ids the store held when it was opened are read in; until then every id is a "maybe". */
  readonly ready: boolean;
  mightContain(id: string): boolean;
  /** Remembers an id (before any row with it can be written); whether it may be in the store (as `mightContain`). */
  addAndTell(id: string): boolean;
  /** Taken by a batch before it adds its ids, released once its rows are written or it was given up. */
  hold(): FilterHold;
  releaseHold(hold: FilterHold): void;
  /** This ingest no longer uses it (the last one lets it go). */
  release(): void;
}

export interface StoredIdsOptions {
  /** Ids remembered at the nominal false-"maybe" rate (CDR_INGEST_ID_FILTER); 0: no filter. */
  readonly capacity: number;
  /** The store's duplicate horizon (how long cdr_ids keeps an id), ms. */
  readonly horizonMs: number;
  /** Wait before reading the stored ids again after a failed read (doubling, at most 16 times that); default 60 s. */
  readonly loadRetryMs?: number;
}

interface Shared {
  /** Absent where an ingest of the process runs without a filter on this hold (CDR_INGEST_ID_FILTER=0). */
  readonly filter: StoredIdFilter | undefined;
  ready: boolean;
  /**
   * An ingest of the process wrote, or may write, without telling a filter (it has none): ids may be stored that no
   * filter learnt, so none on this hold is ever used (every id is looked up) until the hold ends.
   */
  blind: boolean;
  users: number;
  /** The storages of the ingests using it (a later read goes through one still in use, not the first one's). */
  readonly sources: Storage[];
}

const byLease = new Map<string, Shared>();

/** The filter for this storage, loading it on first use; undefined when there is none (a server, or capacity 0). */
export function storedIdsFor(storage: Storage, options: StoredIdsOptions, log: Logger): StoredIds | undefined {
  const lease = storage.lease;
  if (lease === undefined || storage.path === undefined) return undefined;
  let shared = byLease.get(lease);
  if (options.capacity <= 0) {
    // This ingest adds ids no filter learns: any other ingest of the process on this hold must look every id up.
    if (shared) shared.blind = true;
    else byLease.set(lease, { filter: undefined, ready: false, blind: true, users: 1, sources: [] });
    return undefined;
  }
  if (!shared) {
    const created: Shared = { filter: new StoredIdFilter(options), ready: false, blind: false, users: 0, sources: [] };
    shared = created;
    byLease.set(lease, created);
    const filter = created.filter!;
    const retryMs = options.loadRetryMs ?? 60_000;
    // In the background: ingest looks every id up meanwhile, as it did without the filter. A failed read (the engine
    // busy or short of disk for the scan file) is tried again while the hold is in use: before, the filter then
    // stayed unused until the process restarted. An id read in twice changes no answer (the filter counts it twice,
    // and turns over a little sooner). A retry reads through the storage of an ingest still using the filter: the one
    // that made it may have been closed since (found in review).
    // Still wanted: this filter is the hold's, no ingest without one joined it, and an ingest (its storage) uses it.
    const inUse = (): boolean => byLease.get(lease) === created && !created.blind && created.sources.length > 0;
    const load = (attempt: number, source: Storage): void => {
      const started = performance.now();
      void readStoredIds(source, filter).then(
        (count) => {
          created.ready = true;
          log.info(
            { ids: count, ms: Math.round(performance.now() - started), filterBytes: filter.bytes, attempt },
            'stored cdr_ids read into the duplicate filter',
          );
        },
        (err: unknown) => {
          const retryInMs = retryMs * 2 ** Math.min(attempt - 1, 4);
          log.warn(
            { err: err instanceof Error ? err.message : String(err), attempt, ...(inUse() ? { retry_in_ms: retryInMs } : {}) },
            'could not read the stored cdr_ids; every batch looks all its ids up meanwhile',
          );
          if (inUse()) setTimeout(() => inUse() && load(attempt + 1, created.sources.at(-1)!), retryInMs).unref();
        },
      );
    };
    load(1, storage);
  }
  const s = shared;
  const filter = s.filter;
  if (filter === undefined) return undefined; // a blind marker: this hold has an ingest without a filter
  s.users++;
  s.sources.push(storage);
  let released = false;
  const usable = (): boolean => s.ready && !s.blind;
  return {
    get ready() {
      return usable();
    },
    mightContain: (id) => !usable() || filter.mightContain(id),
    addAndTell: (id) => filter.addAndTell(id, performance.now()) || !usable(),
    hold: () => filter.hold(),
    releaseHold: (hold) => filter.release(hold, performance.now()),
    release: () => {
      if (released) return;
      released = true;
      const at = s.sources.indexOf(storage);
      if (at >= 0) s.sources.splice(at, 1);
      if (--s.users <= 0 && byLease.get(lease) === s && !s.blind) byLease.delete(lease);
    },
  };
}

/**
 * Every cdr_id in `cdr_ids`, streamed: the engine writes them to a file beside its directory (RowBinary, not into
 * shared memory: tens of millions of ids are gigabytes), read back in 1 MiB pieces.
 */
async function readStoredIds(storage: Storage, filter: StoredIdFilter): Promise<number> {
  // The table keeps ids as long as it was made to (its TTL, fixed when it was made), perhaps longer than the setting now.
  const [table] = await storage.query<{ engine_full: string }>(`SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'cdr_ids'`, {
    db: storage.database,
  });
  const ttl = /EmbeddedRocksDB\((\d+)/.exec(table?.engine_full ?? '');
  if (!ttl) throw new Error(`cdr_ids is not the embedded key-value table (${table?.engine_full ?? 'absent'})`);
  if (Number(ttl[1]) > 0) filter.holdAtLeast(Number(ttl[1]) * 1000);
  else filter.holdAtLeast(Number.POSITIVE_INFINITY);
  const each = (id: string): void => filter.add(id, performance.now());
  const dir = `${storage.path}.scan`;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // What a process that crashed while reading left (only one process holds the directory, so not another's; a pid is
  // no name for a process here: in a container it is often 1 every time).
  const mine = `cdr_ids-${SCAN_TOKEN}-`;
  for (const name of await readdir(dir)) if (!name.startsWith(mine)) await rm(join(dir, name), { force: true });
  const file = join(dir, `${mine}${++scanSequence}.rowbinary`);
  try {
    await storage.command(`SELECT cdr_id FROM ${storage.table('cdr_ids')} INTO OUTFILE ${sqlString(file)} FORMAT RowBinary`);
    let count = 0;
    const reader = new RowBinaryStrings((id) => {
      count++;
      each(id);
    });
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) reader.push(chunk as Buffer);
    reader.end();
    return count;
  } finally {
    await rm(file, { force: true });
  }
}

/** This process's scan files are named by it (and numbered): anything else in the directory is a crashed one's. */
const SCAN_TOKEN = randomBytes(6).toString('hex');
let scanSequence = 0;

/**
 * Reads RowBinary `String` values (LEB128 length, bytes) across chunk boundaries. Decoded as UTF-8: a cdr_id is
 * printable ASCII (validated before it is stored), so it reads back as the string the main thread compares.
 */
export class RowBinaryStrings {
  private rest: Buffer = Buffer.alloc(0);

  constructor(private readonly each: (value: string) => void) {}

  push(chunk: Buffer): void {
    const buf = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const length = readVarint(buf, at);
      if (length === undefined || at + length.size + length.value > buf.length) break;
      const from = at + length.size;
      this.each(buf.toString('utf8', from, from + length.value));
      at = from + length.value;
    }
    this.rest = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
  }

  end(): void {
    if (this.rest.length > 0) throw new Error(`RowBinary strings: ${this.rest.length} bytes left after the last value`);
  }
}

function sqlString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
