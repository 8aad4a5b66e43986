import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { MonthKey, RegistryAnswers } from '../core/index.ts';
import { PipelineError } from '../core/index.ts';
import { startTsWorker } from '../platform/runtime/index.ts';
import { BatchWork, type BatchWorkOptions, type PackedValues, type ScreenReply, type TransformReply, type TransformRequest } from './batchWork.ts';
import { NICE_REPORT } from './prepareMessages.ts';
import type { KeyMaterial, PrepareReply, PrepareRequest, PrepareWorkerData, PrepareWorkerInput } from './prepareWorker.ts';

/**
 * Where ingest's per-record work runs (batchWork.ts): in a pool of worker threads (`CDR_INGEST_WORKERS`, default
 * one fewer than the cores, at least one) or, with 0, on the main thread.
 *
 * Why threads: that work (decode, validate, normalise, tokenise, seal, Avro, RowBinary) was ~85% of ingest's main
 * thread, the thread that also runs Kafka's fetches and, under `cdr start`, the API; handing it over costs ~1 µs per
 * record there (benchmarks/results/worker-handoff-2026-12-02.md). The main thread keeps everything that touches the
 * engine session or decides exactly-once: duplicate lookups and claims, month keys (created and read through the
 * ring), `beforeWrite`, publishing, the inserts and the recorded decisions, so a replay decides as the first run did.
 *
 * A batch's two steps go to one worker, chosen by partition (a partition's subscribers meet the same identifier
 * cache). Month keys go to a worker on first use and are zeroed there when the ring forgets the month. A worker
 * that dies fails what it had in flight with a retryable error (the loop prepares the batch again) and is replaced.
 */
/** Longest a worker may take over one step of one batch (a 5,000-record batch takes well under a second). */
const CALL_DEADLINE_MS = 120_000;

export interface ScreenedBatch extends ScreenReply {
  readonly batch: number;
  readonly slot: number;
}

export interface TransformInput extends Omit<TransformRequest, 'batch' | 'keys'> {
  readonly keys: ReadonlyMap<string, MonthKey | null>;
}

export interface PrepareWork {
  /** Worker threads doing the work (0: the main thread). */
  readonly threads: number;
  /** `registry`: what the schema registry said of the batch's schema ids (CDR_SCHEMA_REGISTRY_URL), if one is used. */
  screen(partition: number, values: readonly (Buffer | null)[], now: number, registry?: RegistryAnswers): Promise<ScreenedBatch>;
  /** Step two for a screened batch (at most once; call `release` instead if it will not be transformed). */
  transform(screened: ScreenedBatch, input: TransformInput): Promise<TransformReply>;
  release(screened: ScreenedBatch): void;
  /** The transformed batch's inserts are durable (its vault rows need not be sent again). */
  written(screened: ScreenedBatch): void;
  /** A month key was destroyed: every copy of it and everything derived from it goes. */
  forgetMonth(month: string): void;
  close(): Promise<void>;
}

export interface PrepareWorkOptions extends Omit<BatchWorkOptions, 'ownsKeys'> {
  readonly threads: number;
  readonly log: Logger;
  /** Each worker thread lowers its own priority to this nice value (Linux; 0: as the process). */
  readonly nice?: number;
}

export function createPrepareWork(opts: PrepareWorkOptions): PrepareWork {
  return opts.threads > 0 ? new WorkerPool(opts) : new InlineWork(opts);
}

/** One buffer for a batch's values (copied out of Kafka's fetch buffers, moved to the worker). */
export function packValues(values: readonly (Buffer | null)[]): PackedValues {
  let total = 0;
  for (const v of values) total += v?.length ?? 0;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(values.length);
  const nulls: number[] = [];
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) nulls.push(i);
    else {
      bytes.set(v, at);
      at += v.length;
    }
    ends[i] = at;
  }
  return { bytes, ends, nulls };
}

/** The work on the main thread, with the ring's own key objects (never zeroed here: the ring owns them). */
class InlineWork implements PrepareWork {
  readonly threads = 0;
  private readonly work: BatchWork;
  private nextBatch = 1;

  constructor(opts: PrepareWorkOptions) {
    this.work = new BatchWork({ ...opts, ownsKeys: false });
  }

  async screen(_partition: number, values: readonly (Buffer | null)[], now: number, registry?: RegistryAnswers): Promise<ScreenedBatch> {
    const batch = this.nextBatch++;
    return { ...(await this.work.screen({ batch, values: packValues(values), now, ...(registry ? { registry } : {}) })), batch, slot: 0 };
  }

  transform(screened: ScreenedBatch, input: TransformInput): Promise<TransformReply> {
    return this.work.transform({ ...input, batch: screened.batch, keys: [...input.keys] });
  }

  release(screened: ScreenedBatch): void {
    this.work.release(screened.batch);
  }

  written(screened: ScreenedBatch): void {
    this.work.written(screened.batch);
  }

  forgetMonth(month: string): void {
    this.work.forgetMonth(month);
  }

  async close(): Promise<void> {
    this.work.close();
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker | undefined;
  readonly pending: Map<number, Pending>;
  exited: Promise<void>;
}

class WorkerPool implements PrepareWork {
  readonly threads: number;
  private readonly slots: Slot[];
  private readonly data: PrepareWorkerData;
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: PrepareWorkOptions) {
    this.threads = opts.threads;
    this.data = {
      // The caches are shared out: each worker meets its own partitions' subscribers.
      identifierCache: Math.ceil(opts.identifierCache / opts.threads),
      vaultRecent: Math.ceil(opts.vaultRecent / opts.threads),
      maxFutureSkewMs: opts.maxFutureSkewMs,
      format: opts.format,
      sealer: opts.sealer,
    };
    this.slots = Array.from({ length: opts.threads }, () => ({ worker: undefined, pending: new Map(), exited: Promise.resolve() }));
  }

  async screen(partition: number, values: readonly (Buffer | null)[], now: number, registry?: RegistryAnswers): Promise<ScreenedBatch> {
    const slotIndex = partition % this.slots.length;
    const batch = this.nextId++;
    const packed = packValues(values);
    const reply = (await this.call(slotIndex, { type: 'screen', id: 0, batch, values: packed, now, ...(registry ? { registry } : {}) }, [
      packed.bytes.buffer as ArrayBuffer,
      packed.ends.buffer as ArrayBuffer,
    ])) as ScreenReply;
    return { ...reply, batch, slot: slotIndex };
  }

  async transform(screened: ScreenedBatch, input: TransformInput): Promise<TransformReply> {
    const keys: [string, KeyMaterial | null][] = [];
    const transfer: ArrayBuffer[] = [];
    for (const [month, key] of input.keys) {
      if (key === null) keys.push([month, null]);
      else {
        // Copies of the key's bytes, moved (not cloned) to the worker, so no copy stays behind on this thread; the
        // worker keeps the one it holds when the bytes are the same and zeroes the other.
        const tokenKey = new Uint8Array(key.tokenKey);
        const vaultKey = new Uint8Array(key.vaultKey);
        keys.push([month, { month: key.month, keyId: key.keyId, tokenKey, vaultKey }]);
        transfer.push(tokenKey.buffer, vaultKey.buffer);
      }
    }
    const { keys: _keys, ...rest } = input;
    return (await this.call(screened.slot, { type: 'transform', id: 0, ...rest, batch: screened.batch, keys }, transfer)) as TransformReply;
  }

  release(screened: ScreenedBatch): void {
    this.slots[screened.slot]?.worker?.postMessage({ type: 'release', batch: screened.batch } satisfies PrepareRequest);
  }

  written(screened: ScreenedBatch): void {
    this.slots[screened.slot]?.worker?.postMessage({ type: 'written', batch: screened.batch } satisfies PrepareRequest);
  }

  forgetMonth(month: string): void {
    for (const slot of this.slots) {
      slot.worker?.postMessage({ type: 'forget', month } satisfies PrepareRequest);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        if (!worker) return;
        // A clean stop zeroes the worker's keys before the thread ends; end it anyway if it does not answer.
        worker.postMessage({ type: 'stop' } satisfies PrepareRequest);
        const timeout = setTimeout(() => void worker.terminate(), 5_000);
        await slot.exited;
        clearTimeout(timeout);
      }),
    );
  }

  private call(slotIndex: number, request: PrepareRequest & { id: number }, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closed) return Promise.reject(new PipelineError('unavailable', 'ingest is stopping: the prepare workers are closed'));
    const slot = this.slots[slotIndex]!;
    const worker = this.workerOf(slot);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A worker that does not answer (a hang) is ended: its exit fails what it had, and the loop prepares again.
      const deadline = setTimeout(() => {
        this.opts.log.error({ slot: slotIndex, afterMs: CALL_DEADLINE_MS }, 'a prepare worker did not answer; ending it');
        void worker.terminate();
      }, CALL_DEADLINE_MS);
      deadline.unref();
      const settle = (): void => {
        clearTimeout(deadline);
        if (slot.pending.size === 0) worker.unref();
      };
      slot.pending.set(id, {
        resolve: (v) => {
          settle();
          resolve(v);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      });
      // Keeps the process alive only while a batch is in the worker: an idle pool never holds a process open.
      worker.ref();
      try {
        worker.postMessage({ ...request, id }, transfer);
      } catch (err) {
        slot.pending.delete(id);
        settle();
        reject(new PipelineError('unexpected', 'could not hand the batch to a prepare worker', { cause: err }));
      }
    });
  }

  private workerOf(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = startTsWorker(new URL('./prepareWorker.ts', import.meta.url), {
      prepare: this.data,
      nice: this.opts.nice ?? 0,
    } satisfies PrepareWorkerInput);
    slot.worker = worker;
    slot.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: PrepareReply) => {
      if (m.id === NICE_REPORT) {
        if (m.error) this.opts.log.warn({ nice: this.opts.nice }, `a prepare worker could not lower its priority: ${m.error.message}`);
        return;
      }
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      if (m.error) p.reject(new PipelineError(m.error.code, m.error.message));
      else p.resolve(m.result);
    });
    // The name only: a message could quote a value from a record.
    worker.once('error', (err) => this.opts.log.error({ error: err.name }, 'a prepare worker failed'));
    worker.once('exit', (code) => {
      if (slot.worker === worker) slot.worker = undefined;
      for (const [id, p] of slot.pending) {
        slot.pending.delete(id);
        p.reject(new PipelineError('unexpected', `a prepare worker exited (${code}) with a batch in flight`));
      }
    });
    return worker;
  }
}
