import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CompressionName, PublisherChoice } from '../config/config.ts';
import type { KafkaClientSecurity } from './security.ts';
import { PipelineError, type PipelineErrorCode } from '../../core/index.ts';
import { startTsWorker } from '../runtime/index.ts';
import { kafkajsLogLines } from './kafkaClient.ts';
import type { PackedTopicMessages, PublisherReply, PublisherRequest, PublisherWorkerData } from './publisherWorker.ts';
import { NativePublisher, nativeKafka } from './nativePublisher.ts';
import { batchKafka } from './batchProducer.ts';
import { messageCount, messagesOf, type PackedMessages } from './packedMessages.ts';

/**
 * Publishes ingest's output (cdr.pseudonymised, cdr.dlq) from a worker thread with its own kafkajs producer.
 *
 * Why a thread: kafkajs encodes every record in JavaScript (record and batch encoding, CRC32C, per-partition
 * grouping), about a fifth of ingest's main-thread time in the CPU profile (benchmarks/RESULTS.md), and the
 * main thread was the bottleneck while the second core sat partly idle. Messages cross as one packed buffer
 * per topic (moved, not copied) plus the keys and headers, so the hand-over costs far less than the encoding.
 *
 * Semantics are those of one idempotent producer with acks=-1: `send` resolves only when the broker has
 * acknowledged every message, and rejects otherwise with the failure classified by the error model
 * (`broker_unavailable` for a broker away, `record_too_large` for a batch the broker refuses, …). A worker that
 * dies is replaced on the next send; what it had in flight is reported as failed (the caller retries the
 * batch, consumers dedupe by cdr_id as for any at-least-once publish).
 */
export interface OutgoingMessage {
  readonly key: string | Buffer | null;
  /** null: a tombstone (the DLQ passes on whatever the raw topic held, null values included). */
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, string | Buffer>>;
}

/** A topic's messages, as objects or packed as bytes (ingest's hot path; packedMessages.ts). */
export type TopicMessages =
  | { readonly topic: string; readonly messages: readonly OutgoingMessage[]; readonly packed?: undefined }
  | { readonly topic: string; readonly packed: PackedMessages; readonly messages?: undefined };

export interface PublisherOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly log: Logger;
  /** The codec of everything this publisher sends (default none). */
  readonly compression?: CompressionName;
  readonly security?: KafkaClientSecurity;
}

/** What ingest and every consumer's DLQ publish through (see ThreadPublisher for the contract). */
export interface Publisher {
  /** Which client does the work, for the start-up log (`kafkajs (thread)`, `librdkafka 2.15.1`). */
  readonly implementation: string;
  start(): Promise<void>;
  send(batches: readonly TopicMessages[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The publisher `choice` asks for. `native` where the library is missing or does not load is a configuration error
 * naming the variable and the reason; `auto` then falls back to kafkajs (and says so in the log once).
 */
export function createPublisher(opts: PublisherOptions, choice: PublisherChoice = 'auto'): Publisher {
  if (choice === 'kafkajs') return new ThreadPublisher(opts);
  const native = nativeKafka();
  if ('module' in native) {
    // The project's binding, where it was built (against the package's librdkafka): the same producer, a fraction of
    // the package's cost per message on this thread (ADR 0043). `native-package` keeps the package's own.
    const batch = choice === 'native-package' ? undefined : batchKafka();
    return new NativePublisher(opts, batch && 'module' in batch ? batch.module : native.module);
  }
  if (choice === 'native' || choice === 'native-package')
    throw new PipelineError(
      'config_invalid',
      `CDR_KAFKA_PUBLISHER=${choice}: @confluentinc/kafka-javascript cannot be used here (${native.error}); README "Native Kafka publisher"`,
    );
  if (!fallbackLogged) {
    fallbackLogged = true;
    // A warning, not a note: an `npm install` without the system libraries leaves librdkafka out silently, and kafkajs
    // costs ~10 CPU-s per million records more (ADR 0032). CDR_KAFKA_PUBLISHER=kafkajs chooses it without this line.
    opts.log.warn(
      { reason: native.error },
      'librdkafka is not installed or does not load: publishing with kafkajs, ~10 CPU-s per million records more; to install it: CKJS_LINKING=dynamic npm install (README "Native Kafka publisher")',
    );
  }
  return new ThreadPublisher(opts);
}
let fallbackLogged = false;

/** Which client `createPublisher(…, choice)` publishes with here, in words for a start-up banner. */
export function publisherInUse(choice: PublisherChoice): string {
  if (choice === 'kafkajs') return 'kafkajs';
  if ('module' in nativeKafka()) return 'librdkafka';
  // `native` would not start; `auto` falls back, at a cost a newcomer should see without reading the log.
  return 'kafkajs (librdkafka is not installed: CKJS_LINKING=dynamic npm install)';
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export class ThreadPublisher implements Publisher {
  readonly implementation = 'kafkajs (thread)';
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  /** Resolves when the current worker has exited (tracked from its start, so no exit is missed). */
  private exited: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: PublisherOptions) {}

  /** Starts the worker and connects its producer (also done lazily by the first send). */
  async start(): Promise<void> {
    await this.ensureWorker();
  }

  async send(batches: readonly TopicMessages[]): Promise<void> {
    const parts = handOffParts(batches.filter((b) => messageCount(b) > 0).map((b) => ({ topic: b.topic, messages: messagesOf(b) })));
    if (parts.length === 0) return;
    const worker = await this.ensureWorker();
    const id = this.nextId++;
    const done = new Promise<void>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // Settled by the worker's reply or its exit, possibly while parts are still being handed over: handled here so a
    // rejection in between is not reported as unhandled; `await done` below still throws it.
    done.catch(() => undefined);
    for (let k = 0; k < parts.length; k++) {
      const packed = parts[k]!.map(pack);
      const request: PublisherRequest = { type: k === parts.length - 1 ? 'send' : 'part', id, topics: packed };
      try {
        worker.postMessage(
          request,
          packed.flatMap((p) => [p.values.buffer as ArrayBuffer, p.ends.buffer as ArrayBuffer]),
        );
      } catch (err) {
        this.pending.delete(id);
        throw new PipelineError('broker_unavailable', 'could not hand the batch to the publisher thread', { cause: err });
      }
      // Packing and cloning cost a few µs per message on this thread: between parts, whatever else waits runs.
      if (k < parts.length - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await done;
  }

  /** Disconnects the producer (after in-flight sends settle) and ends the worker; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    // Ask for a clean stop (in-flight sends finish, the producer disconnects); end the thread if it takes long.
    const stop: PublisherRequest = { type: 'stop' };
    worker.postMessage(stop);
    const timeout = setTimeout(() => void worker.terminate(), 10_000);
    await this.exited;
    clearTimeout(timeout);
  }

  private ensureWorker(): Promise<Worker> {
    if (this.closed) return Promise.reject(new PipelineError('broker_unavailable', 'publisher is closed'));
    if (this.worker && this.ready) {
      const w = this.worker;
      return this.ready.then(() => w);
    }
    const data: PublisherWorkerData = {
      brokers: [...this.opts.brokers],
      clientId: this.opts.clientId,
      compression: this.opts.compression ?? 'none',
      security: this.opts.security ?? {},
    };
    const worker = startTsWorker(new URL('./publisherWorker.ts', import.meta.url), { publisher: data });
    this.worker = worker;
    this.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const kafkaLog = this.opts.log.child({ component: 'kafkajs', thread: 'publisher' });
    const lines = kafkajsLogLines(kafkaLog);
    this.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: PublisherReply) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'done') this.settle(m.id, m.error, m.code);
        else if (m.type === 'log') lines.note(m);
        else if (m.type === 'failed') reject(new PipelineError('broker_unavailable', `publisher could not connect: ${m.error}`));
      });
      worker.once('error', (err) => {
        this.opts.log.error({ err }, 'publisher thread failed');
        reject(new PipelineError('broker_unavailable', 'publisher thread failed', { cause: err }));
      });
      worker.once('exit', (code) => {
        if (this.worker === worker) {
          this.worker = undefined;
          this.ready = undefined;
        }
        reject(new PipelineError('broker_unavailable', `publisher thread exited (${code})`));
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(new PipelineError('broker_unavailable', `publisher thread exited (${code}) with a send in flight`));
        }
      });
    });
    // A failed start is reported to the sender; the next send starts a new worker.
    this.ready.catch(() => {
      if (this.worker === worker) void worker.terminate();
    });
    return this.ready.then(() => worker);
  }

  private settle(id: number, error: string | undefined, code: PipelineErrorCode | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (error === undefined) p.resolve();
    else p.reject(new PipelineError(code ?? 'broker_unavailable', `publish failed: ${error}`));
  }
}

/**
 * At most HAND_OFF_MESSAGES messages per message to the worker: an ingest batch of 80,000 packed and cloned in one
 * piece held this thread 0.3 s on a loaded machine (the API's requests waited); a part takes a few milliseconds.
 */
const HAND_OFF_MESSAGES = 4096;

type ObjectMessages = { readonly topic: string; readonly messages: readonly OutgoingMessage[] };

function handOffParts(batches: readonly ObjectMessages[]): ObjectMessages[][] {
  const parts: ObjectMessages[][] = [];
  let part: ObjectMessages[] = [];
  let inPart = 0;
  for (const b of batches) {
    for (let at = 0; at < b.messages.length;) {
      const take = Math.min(HAND_OFF_MESSAGES - inPart, b.messages.length - at);
      part.push(take === b.messages.length ? b : { topic: b.topic, messages: b.messages.slice(at, at + take) });
      at += take;
      inPart += take;
      if (inPart === HAND_OFF_MESSAGES) {
        parts.push(part);
        part = [];
        inPart = 0;
      }
    }
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/** One topic's messages as one values buffer with end offsets, plus keys and headers. */
function pack(batch: ObjectMessages): PackedTopicMessages {
  const n = batch.messages.length;
  let bytes = 0;
  for (const m of batch.messages) bytes += m.value?.length ?? 0;
  const values = new Uint8Array(bytes);
  const ends = new Uint32Array(n);
  const keys = new Array<string | Uint8Array | null>(n);
  const headers = new Array<Readonly<Record<string, string | Uint8Array>> | null>(n);
  const nullValues: number[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const m = batch.messages[i]!;
    if (m.value === null) nullValues.push(i);
    else {
      values.set(m.value, at);
      at += m.value.length;
    }
    ends[i] = at;
    // Keys and headers of dead letters are views into kafkajs's fetch buffer: posting a view would copy the
    // whole underlying buffer (megabytes), so each is copied on its own.
    keys[i] = typeof m.key === 'string' || m.key === null ? m.key : new Uint8Array(m.key);
    headers[i] = m.headers ? ownHeaders(m.headers) : null;
  }
  return { topic: batch.topic, values, ends, keys, headers, nullValues };
}

function ownHeaders(h: Readonly<Record<string, string | Buffer>>): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  for (const k in h) {
    const v = h[k]!;
    out[k] = typeof v === 'string' ? v : new Uint8Array(v);
  }
  return out;
}
