/**
 * A prepare worker thread (see preparePool.ts): ingest's per-record work (batchWork.ts) off the main thread.
 * Requests and replies are plain data and transferred buffers; a request that fails answers with the error's code
 * and message (never a value from a record).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MonthKey, PipelineErrorCode } from '../core/index.ts';
import { PipelineError } from '../core/index.ts';
import { lowerThreadPriority } from '../platform/runtime/threadPriority.ts';
import { NICE_REPORT } from './prepareMessages.ts';
import { BatchWork, type BatchWorkOptions, type KeyGrant, type ScreenRequest, type TransformReply, type TransformRequest } from './batchWork.ts';

export type PrepareWorkerData = Omit<BatchWorkOptions, 'ownsKeys' | 'sliceMs'>;

/** What a prepare worker is started with. */
export interface PrepareWorkerInput {
  readonly prepare: PrepareWorkerData;
  /** Lower this thread's priority to it (0: leave it). */
  readonly nice: number;
}

/** A month key as it crosses to the worker (its buffers arrive as plain Uint8Arrays). */
export interface KeyMaterial {
  readonly month: string;
  readonly keyId: string;
  readonly tokenKey: Uint8Array;
  readonly vaultKey: Uint8Array;
}

export type PrepareRequest =
  | ({ type: 'screen'; id: number } & ScreenRequest)
  | ({ type: 'transform'; id: number } & Omit<TransformRequest, 'keys'> & {
        keys: readonly (readonly [string, KeyMaterial | null])[];
      })
  | { type: 'release'; batch: number }
  | { type: 'written'; batch: number }
  | { type: 'forget'; month: string }
  | { type: 'stop' };

export type PrepareReply = { id: number; result: unknown; error?: undefined } | { id: number; error: { code: PipelineErrorCode; message: string } };

const port = parentPort;
if (!port) throw new Error('prepareWorker.ts runs as a worker thread (services/ingest/preparePool.ts)');
const input = workerData as PrepareWorkerInput;
const work = new BatchWork({ ...input.prepare, ownsKeys: true });
if (input.nice > 0 && !lowerThreadPriority(input.nice)) {
  port.postMessage({ id: NICE_REPORT, error: { code: 'unexpected', message: `nice ${input.nice} refused or not supported here` } } satisfies PrepareReply);
}

function keyOf(m: KeyMaterial): MonthKey {
  const view = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return { month: m.month, keyId: m.keyId, tokenKey: view(m.tokenKey), vaultKey: view(m.vaultKey) };
}

/**
 * The reply with buffers it can hand over without copying again: the row bodies are views into the serialiser's
 * buffers (which may be Node's shared allocation pool, never to be transferred), so they are copied once into
 * buffers of their own; the rest were allocated for the reply.
 */
function transferable(r: TransformReply): { result: TransformReply; transfer: ArrayBuffer[] } {
  const result: TransformReply = {
    ...r,
    cdr: { ...r.cdr, body: new Uint8Array(r.cdr.body) },
    vault: { ...r.vault, body: new Uint8Array(r.vault.body) },
  };
  const p = result.published;
  const buffers = [result.cdr.body, result.vault.body, p.values, p.valueEnds, p.keys, p.keyEnds, p.headerValues, p.headerEnds, p.positions];
  return { result, transfer: buffers.map((b) => b.buffer as ArrayBuffer).filter((b) => b.byteLength > 0) };
}

async function answer(id: number, run: () => Promise<{ result: unknown; transfer: ArrayBuffer[] }>): Promise<void> {
  try {
    const { result, transfer } = await run();
    port!.postMessage({ id, result } satisfies PrepareReply, transfer);
  } catch (err) {
    const error =
      err instanceof PipelineError
        ? { code: err.code, message: err.message }
        : { code: 'unexpected' as const, message: `prepare worker: ${err instanceof Error ? err.name : 'error'}` };
    port!.postMessage({ id, error } satisfies PrepareReply);
  }
}

port.on('message', (m: PrepareRequest) => {
  switch (m.type) {
    case 'screen':
      void answer(m.id, async () => {
        // Copied, not transferred: a few tens of KB.
        return { result: await work.screen(m), transfer: [] };
      });
      break;
    case 'transform':
      void answer(m.id, async () => {
        const keys = m.keys.map(([month, k]): readonly [string, KeyGrant] => [month, k === null ? null : keyOf(k)]);
        return transferable(await work.transform({ ...m, keys }));
      });
      break;
    case 'release':
      work.release(m.batch);
      break;
    case 'written':
      work.written(m.batch);
      break;
    case 'forget':
      work.forgetMonth(m.month);
      break;
    case 'stop':
      work.close();
      port.close();
      break;
  }
});
