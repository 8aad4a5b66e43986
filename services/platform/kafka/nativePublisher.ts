import { createRequire } from 'node:module';
import { PipelineError, classifyError } from '../../core/index.ts';
import type { CompressionName } from '../config/config.ts';
import { MAX_MESSAGE_BYTES } from './limits.ts';
import { EventLoopSlice } from '../runtime/eventLoopSlice.ts';
import type { KafkaClientSecurity } from './security.ts';
import type { OutgoingMessage, Publisher, PublisherOptions, TopicMessages } from './publisher.ts';

/**
 * Publishes through librdkafka (npm `@confluentinc/kafka-javascript`, an optional dependency built from source where
 * no prebuilt binary can be fetched: README "Native Kafka publisher"). The JavaScript side only hands each message to
 * the library and counts the delivery reports; batching, record encoding, CRC and compression run in librdkafka's own
 * threads. Measured against the kafkajs publisher thread: docs/decisions/0032-native-publisher.md.
 *
 * Same contract as ThreadPublisher: one idempotent producer with acks=all; `send` resolves once the broker has
 * acknowledged every message of the call and rejects otherwise, classified by the error model. A message over
 * MAX_MESSAGE_BYTES is refused before anything of the call is produced. Partitions are chosen as the Java client and
 * kafkajs's DefaultPartitioner choose them (murmur2 of the key), so switching publishers keeps an account's records
 * on its partition.
 */

/** The part of the library's producer this module uses (its own typings are not needed where it is absent). */
export interface RdError extends Error {
  readonly code: number;
  readonly isFatal?: boolean;
  readonly isRetriable?: boolean;
}
export interface RdProducer {
  connect(opts: Record<string, never>, cb: (err: RdError | null) => void): void;
  disconnect(timeoutMs: number, cb: (err: RdError | null) => void): void;
  flush(timeoutMs: number, cb: (err: RdError | null) => void): void;
  produce(
    topic: string,
    partition: number | null,
    value: Buffer | null,
    key: string | Buffer | null,
    timestamp: number | null,
    opaque: undefined,
    headers?: Record<string, string | Buffer>[],
  ): unknown;
  setPollInBackground(set: boolean): unknown;
  on(event: 'delivery-report', cb: (err: RdError | null, report: { opaque: unknown }) => void): void;
  on(event: 'event.error', cb: (err: RdError) => void): void;
}
export interface RdModule {
  readonly Producer: new (conf: Record<string, string | number | boolean>) => RdProducer;
  readonly librdkafkaVersion: string;
}

/** librdkafka's error codes this module tells apart (lib/error.js of the package). */
const ERR = {
  FATAL: -150,
  STATE: -172,
  TIMED_OUT: -185,
  AUTHENTICATION: -169,
  SSL: -181,
  CORRUPT_MESSAGE: 2,
  MSG_SIZE_TOO_LARGE: 10,
  RECORD_LIST_TOO_LARGE: 18,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  SASL_AUTHENTICATION_FAILED: 58,
  INVALID_RECORD: 87,
} as const;
const RECORD_CODES = new Set<number>([ERR.CORRUPT_MESSAGE, ERR.MSG_SIZE_TOO_LARGE, ERR.RECORD_LIST_TOO_LARGE, ERR.INVALID_RECORD]);
const CONFIG_CODES = new Set<number>([
  ERR.AUTHENTICATION,
  ERR.SSL,
  ERR.TOPIC_AUTHORIZATION_FAILED,
  ERR.CLUSTER_AUTHORIZATION_FAILED,
  ERR.SASL_AUTHENTICATION_FAILED,
]);
/**
 * The cluster away or in motion — sending again is the cure: local timeouts, transport, purged or fatal producer (a new
 * one is started), unknown topic or partition (as kafkajs: metadata may lag), leaders moving, replicas short, sequence
 * and epoch errors of the idempotent producer, throttling.
 */
const TRANSIENT_CODES = new Set<number>([
  -197, -195, -193, -192, -190, -188, -187, -185, -184, -182, -180, -172, -166, -153, -152, -151, -150, -146, -137, 3, 5, 6, 7, 8, 9, 13, 14, 15, 19, 20, 41,
  45, 46, 47, 49, 56, 59, 74, 75, 89, 90,
]);
/** What an `event.error` says when the brokers refuse the login or the TLS handshake (its code is not passed on). */
const LOGIN_REFUSED = /SASL|authenticat|SSL handshake|certificate verify|unknown ca/i;

/**
 * How long librdkafka keeps trying one message before it reports it failed: about what the kafkajs publisher's
 * retries add up to, so a broker that stays away fails the batch (retried by the loop) instead of holding it.
 */
const MESSAGE_TIMEOUT_MS = 30_000;
/**
 * How long `close` waits for a disconnect's answer beyond its flush time. The library's disconnect never calls back in
 * some states (a second disconnect, for one); a stop must not wait forever on it.
 */
export interface DisconnectTiming {
  readonly closeFlushMs: number;
  readonly retiredFlushMs: number;
  readonly graceMs: number;
}
const DEFAULT_DISCONNECT_TIMING: DisconnectTiming = { closeFlushMs: 10_000, retiredFlushMs: 5_000, graceMs: 15_000 };

let loaded: { module: RdModule } | { error: string } | undefined;

/** The library, or why it cannot be used here (not installed, its build failed, or it does not load). */
export function nativeKafka(): { module: RdModule } | { error: string } {
  if (!loaded) {
    try {
      const module = createRequire(import.meta.url)('@confluentinc/kafka-javascript') as RdModule;
      if (typeof module.Producer !== 'function') throw new Error('the package has no Producer');
      loaded = { module };
    } catch (err) {
      loaded = { error: (err instanceof Error ? err.message : String(err)).split('\n')[0]! };
    }
  }
  return loaded;
}

/** librdkafka's properties for the pipeline's TLS and SASL settings (docs/operations.md "Security"). */
export function librdkafkaSecurity(security: KafkaClientSecurity): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  const { ssl, sasl } = security;
  out['security.protocol'] = ssl ? (sasl ? 'sasl_ssl' : 'ssl') : sasl ? 'sasl_plaintext' : 'plaintext';
  if (ssl && ssl !== true) {
    if (ssl.ca) out['ssl.ca.pem'] = ssl.ca;
    if (ssl.cert) out['ssl.certificate.pem'] = ssl.cert;
    if (ssl.key) out['ssl.key.pem'] = ssl.key;
    if (!ssl.rejectUnauthorized) {
      out['enable.ssl.certificate.verification'] = false;
      out['ssl.endpoint.identification.algorithm'] = 'none';
    }
  }
  if (sasl) {
    if (!('username' in sasl) || !('password' in sasl))
      throw new PipelineError('config_invalid', `SASL mechanism ${sasl.mechanism} is not supported by the native publisher`);
    out['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    out['sasl.username'] = sasl.username;
    out['sasl.password'] = sasl.password;
  }
  return out;
}

/** An error with librdkafka's code; one the binding raised itself ("Producer is disconnected") counts as the client gone. */
function coded(err: RdError | null): RdError | null {
  if (err === null || typeof err.code === 'number') return err;
  return Object.assign(new Error(err.message), { code: ERR.STATE });
}

/** The pipeline's codec name as librdkafka spells it. */
function codecOf(c: CompressionName): string {
  return c === 'none' ? 'none' : c;
}

/**
 * One `send` call, on a producer of its own: it succeeds when that producer's flush finds nothing left in flight and no
 * report of a failed message came (librdkafka reports only failures here); the first failure is kept.
 */
class Delivery {
  error: RdError | undefined;
  settled = false;
  constructor(
    /** The producer its messages went to, which serves no other call until this one is settled. */
    readonly producer: RdProducer,
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
  ) {}

  settle(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.error) this.reject(classifyNativeError(this.error));
    else this.resolve();
  }
}

export function classifyNativeError(err: RdError): PipelineError {
  const message = `Kafka: ${err.message.split('\n')[0]}`;
  if (RECORD_CODES.has(err.code)) return new PipelineError('record_too_large', message, { cause: err });
  if (CONFIG_CODES.has(err.code)) return new PipelineError('config_invalid', message, { cause: err });
  if (TRANSIENT_CODES.has(err.code) || err.isRetriable === true) return new PipelineError('broker_unavailable', message, { cause: err });
  // Anything else is not cured by waiting (an invalid argument, a policy or version the broker refuses): the error
  // model's default, which gives up after a few attempts and says why.
  return classifyError(err, 'broker');
}

/**
 * An empty buffer the binding passes on as empty, not as null: it hands librdkafka the buffer's data pointer, which is
 * NULL for a zero-length buffer of its own (a null value, a tombstone). A zero-length view into a larger buffer has a
 * real pointer.
 */
const EMPTY = Buffer.alloc(1).subarray(1);
function nonNull<T extends Buffer | null>(b: T): T | Buffer {
  return b !== null && b.length === 0 ? EMPTY : b;
}

/**
 * A string with a U+0000 as a UTF-8 buffer: the binding copies a string through a C string, which ends at the first
 * U+0000 (a key would land on another partition, a header would be cut).
 */
function bytesOf(v: string | Buffer): string | Buffer {
  // Most strings hold no U+0000 and pass as they are: no buffer per message on the hot path.
  if (typeof v === 'string') return v.includes('\u0000') ? Buffer.from(v) : v;
  return nonNull(v);
}

function sizeOf(m: OutgoingMessage): number {
  let n = 64 + (m.value?.length ?? 0) + (m.key === null ? 0 : Buffer.byteLength(m.key));
  for (const k in m.headers ?? {}) n += Buffer.byteLength(k) + Buffer.byteLength(m.headers![k]!);
  return n;
}

/**
 * How many producers one publisher opens at most: one per `send` in flight, so that a flush waits for that call's
 * messages only. A consumer loop sends for up to four partitions at once (loopSettings.ts).
 */
export const MAX_PRODUCERS = 4;
/**
 * One flush call's bound: a send flushes again until its messages are settled, so that a close's disconnect (which
 * waits for a flush under way) is never held longer than this.
 */
const FLUSH_STEP_MS = 1_000;
/** Past librdkafka's own message timeout a send gives up on its flush, and its producer, whatever is left. */
const FLUSH_GIVE_UP_MS = MESSAGE_TIMEOUT_MS + 5_000;

export class NativePublisher implements Publisher {
  /** Producers connected and serving no call. */
  private readonly idle: RdProducer[] = [];
  /** Producers serving a call, with it. */
  private readonly serving = new Map<RdProducer, Delivery>();
  /** Producers alive or connecting (retired ones not counted): never more than `maxProducers`. */
  private opened = 0;
  /** Sends waiting for a producer while `maxProducers` serve others. */
  private readonly waiting: (() => void)[] = [];
  private readonly connecting = new Set<Promise<RdProducer>>();
  /** Producers being disconnected (the library's disconnect never calls back a second time). */
  private readonly retired = new WeakSet<RdProducer>();
  /** The client's last error event (librdkafka reports a refused login only there, as text). */
  private lastClientError: string | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Disconnects under way (a retired producer's among them): `close` waits for them, so none is cut off by the exit. */
  private readonly disconnecting = new Set<Promise<boolean>>();

  constructor(
    private readonly opts: PublisherOptions,
    private readonly rd: RdModule,
    /** How long a disconnect flushes (at close; a failed producer's) and may then stay unanswered (tests shorten them). */
    private readonly timing: DisconnectTiming = DEFAULT_DISCONNECT_TIMING,
    private readonly maxProducers: number = MAX_PRODUCERS,
  ) {}

  get implementation(): string {
    return `librdkafka ${this.rd.librdkafkaVersion}`;
  }

  /** Connects the first producer: a broker away or a refused login shows at start-up, not at the first batch. */
  async start(): Promise<void> {
    this.release(await this.lease());
  }

  async send(batches: readonly TopicMessages[]): Promise<void> {
    for (const b of batches)
      for (const m of b.messages) {
        const size = sizeOf(m);
        if (size > MAX_MESSAGE_BYTES)
          throw new PipelineError('record_too_large', `Kafka: a ${size}-byte message for ${b.topic} is over the ${MAX_MESSAGE_BYTES}-byte limit`);
      }
    if (!batches.some((b) => b.messages.length > 0)) return;
    const producer = await this.lease();
    let delivery!: Delivery;
    const done = new Promise<void>((resolve, reject) => (delivery = new Delivery(producer, resolve, reject)));
    this.serving.set(producer, delivery);
    // `produce()` costs about a µs per message on this thread; a 20,000-record batch would still hold it in one piece
    // for tens of ms, and the API of `cdr start` shares it. Between slices the event loop runs.
    const slice = new EventLoopSlice();
    try {
      all: for (const b of batches)
        for (const m of b.messages) {
          if (slice.spent()) {
            await slice.pause();
            // Meanwhile the producer may have failed or the publisher closed: the call fails, nothing more is queued.
            if (this.closed) delivery.error ??= Object.assign(new Error('publisher closed while the batch was being queued'), { code: ERR.STATE });
            if (delivery.error !== undefined || delivery.settled) break all;
          }
          const headers = m.headers ? Object.entries(m.headers).map(([k, v]) => ({ [k]: bytesOf(v) })) : undefined;
          try {
            // No opaque: the binding would keep a persistent handle per message, freed only by a report that, for a
            // message delivered, librdkafka does not send here (`delivery.report.only.error`).
            producer.produce(b.topic, null, nonNull(m.value), m.key === null ? null : bytesOf(m.key), null, undefined, headers);
          } catch (thrown) {
            // Refused before it was queued (queue full, producer failed or gone): what was queued is still awaited below.
            const err = coded(thrown as RdError)!;
            delivery.error ??= err;
            // After a fatal error (an idempotent producer fenced or out of sequence) or with the client gone, this
            // producer takes nothing more: the retry of the batch starts a new one.
            if (err.code === ERR.FATAL || err.code === ERR.STATE) this.retire(producer, err);
            break all;
          }
        }
    } finally {
      if (!delivery.settled) void this.settleWhenFlushed(delivery);
    }
    await done;
  }

  /**
   * Waits until the call's producer holds nothing in flight, then settles the call. librdkafka counts a message out
   * only after its failure report was handed to the binding's dispatcher (which wakes this thread through its own
   * libuv async handle, created after libuv's thread-pool handle and so served after it in the same loop turn); the
   * flush's answer comes through the thread pool's handle. Settling one `setImmediate` after the answer — in the
   * check phase, after every async handle of that turn — sees every failure report of the call (ADR 0032).
   */
  private async settleWhenFlushed(delivery: Delivery): Promise<void> {
    const { producer } = delivery;
    const started = Date.now();
    let err: RdError | null = null;
    for (;;) {
      err = await new Promise<RdError | null>((resolve) => {
        try {
          producer.flush(FLUSH_STEP_MS, (e) => resolve(e ?? null));
        } catch (thrown) {
          resolve(thrown as RdError);
        }
      }).then(coded);
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Flushed, failed, or given up by a close or a retirement meanwhile.
      if (err === null || err.code !== ERR.TIMED_OUT || delivery.settled || this.closed || this.retired.has(producer)) break;
      if (Date.now() - started >= FLUSH_GIVE_UP_MS) break;
    }
    if (err !== null) {
      delivery.error ??= err;
      // Messages still in flight on it would be counted against the next call: a producer that did not flush is not
      // used again.
      this.retire(producer, err);
    }
    delivery.settle();
    if (this.serving.get(producer) === delivery) this.serving.delete(producer);
    this.release(producer);
  }

  /** An idle producer, a new one while fewer than `maxProducers` are open, or the next one another call releases. */
  private async lease(): Promise<RdProducer> {
    for (;;) {
      if (this.closed) throw new PipelineError('broker_unavailable', 'publisher is closed');
      const idle = this.idle.pop();
      if (idle) return idle;
      if (this.opened < this.maxProducers) {
        this.opened++;
        const connecting = this.connect();
        this.connecting.add(connecting);
        try {
          return await connecting;
        } catch (err) {
          this.opened--;
          this.wakeOne();
          throw err;
        } finally {
          this.connecting.delete(connecting);
        }
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** Back to the pool, unless it was retired or the publisher closed (then it is being disconnected). */
  private release(producer: RdProducer): void {
    if (this.retired.has(producer)) return;
    if (this.closed) {
      this.retired.add(producer);
      void this.disconnect(producer, this.timing.retiredFlushMs);
      return;
    }
    this.idle.push(producer);
    this.wakeOne();
  }

  private wakeOne(): void {
    this.waiting.shift()?.();
  }

  /**
   * Waits for what is in flight (up to 10 s), then disconnects, and waits for every disconnect under way (a process
   * that exits while a libuv thread still deletes a client can crash). Idempotent: a second call waits for the first.
   * A send still unanswered then fails.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    // Sends waiting for a producer find the publisher closed.
    for (const wake of this.waiting.splice(0)) wake();
    const connected = await Promise.all([...this.connecting].map((c) => c.catch(() => undefined)));
    // The library's disconnect flushes first.
    for (const producer of new Set([...this.idle.splice(0), ...this.serving.keys(), ...connected])) {
      if (!producer || this.retired.has(producer)) continue;
      this.retired.add(producer);
      void this.disconnect(producer, this.timing.closeFlushMs);
    }
    const answers = await Promise.all([...this.disconnecting]);
    const unanswered = answers.filter((a) => !a).length;
    if (unanswered > 0) this.opts.log.warn({ unanswered, graceMs: this.timing.graceMs }, 'Kafka producer did not answer its disconnect; going on without it');
    const closedErr = Object.assign(new Error('publisher closed with the message unacknowledged'), { code: ERR.STATE });
    for (const d of this.serving.values()) {
      d.error ??= closedErr;
      d.settle();
    }
    this.serving.clear();
  }

  /** Takes a failed producer out of use: the call it serves fails, the next send starts a new one. */
  private retire(producer: RdProducer, err: RdError): void {
    const delivery = this.serving.get(producer);
    if (delivery) {
      delivery.error ??= err;
      delivery.settle();
    }
    if (this.retired.has(producer)) return;
    this.retired.add(producer);
    const at = this.idle.indexOf(producer);
    if (at >= 0) this.idle.splice(at, 1);
    this.opened--;
    this.wakeOne();
    this.opts.log.warn({ code: err.code, error: err.message }, 'Kafka producer failed for good: a new one takes over');
    void this.disconnect(producer, this.timing.retiredFlushMs);
  }

  /**
   * Disconnects one producer (flushing up to `flushMs` first); resolves false if it has not answered within the flush
   * time and the grace. Never throws: the library throws at once for a producer it already counts as
   * disconnected, and that is a disconnected producer too.
   */
  private disconnect(producer: RdProducer, flushMs: number): Promise<boolean> {
    const answered = new Promise<boolean>((resolve) => {
      // Not unref'd: a stop waits for the answer (or the bound), then goes on with its own clean-up.
      const timer = setTimeout(() => resolve(false), flushMs + this.timing.graceMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      try {
        producer.disconnect(flushMs, done);
      } catch {
        done();
      }
    });
    this.disconnecting.add(answered);
    void answered.then(() => this.disconnecting.delete(answered));
    return answered;
  }

  private async connect(): Promise<RdProducer> {
    const { opts } = this;
    const producer = new this.rd.Producer({
      'bootstrap.servers': opts.brokers.join(','),
      'client.id': opts.clientId,
      'enable.idempotence': true,
      acks: 'all',
      'compression.codec': codecOf(opts.compression ?? 'none'),
      // Java's and kafkajs's DefaultPartitioner: murmur2 of the key (null keys: any partition).
      partitioner: 'murmur2_random',
      'linger.ms': 5,
      'message.timeout.ms': MESSAGE_TIMEOUT_MS,
      'queue.buffering.max.messages': 1_000_000,
      // As the kafkajs publisher: a missing topic is an error, never created with the broker's defaults (cdr.dlq
      // carries identifiers and has its own retention).
      'allow.auto.create.topics': false,
      'socket.keepalive.enable': true,
      dr_cb: true,
      // A report per failed message only: a send learns of success from its flush (settleWhenFlushed). A report per
      // delivered message cost this thread ~2.8 µs per message (an object of seven fields, a key copy, an event).
      'delivery.report.only.error': true,
      ...librdkafkaSecurity(opts.security ?? {}),
    });
    const log = opts.log.child({ component: 'librdkafka', thread: 'publisher' });
    producer.on('delivery-report', (err) => this.failed(producer, err));
    producer.on('event.error', (err) => {
      this.lastClientError = err.message;
      log.warn({ error: err.message }, 'Kafka client error');
    });
    await new Promise<void>((resolve, reject) =>
      producer.connect({}, (err) => {
        if (!err) return resolve();
        // A refused login shows only as an error event before the connection gives up: a configuration error, as
        // with kafkajs, not a broker to wait for.
        const login = this.lastClientError !== undefined && LOGIN_REFUSED.test(this.lastClientError) ? this.lastClientError : undefined;
        const detail = login ?? this.lastClientError ?? err.message;
        reject(new PipelineError(login ? 'config_invalid' : 'broker_unavailable', `publisher could not connect: ${detail}`, { cause: err }));
      }),
    );
    // Delivery reports are served by librdkafka's own background thread, which hands them to this thread: nothing here
    // polls the client. The library's `setPollInterval` did, from this thread, without the lock its disconnect holds
    // while it deletes the client on a libuv thread: a poll landing then crashes the process (SIGSEGV, or "pure virtual
    // method called" and SIGABRT — seen once in CI at a test's tear-down; a scratch loop polling during disconnects
    // crashed within 20 cycles). The library's own KafkaJS-style producer polls the same way (docs/decisions/0032).
    producer.setPollInBackground(true);
    if (this.closed) {
      this.retired.add(producer);
      void this.disconnect(producer, this.timing.retiredFlushMs);
      throw new PipelineError('broker_unavailable', 'publisher is closed');
    }
    return producer;
  }

  /** A failed message's report: it fails the call its producer serves (a report comes for nothing else). */
  private failed(producer: RdProducer, err: RdError | null): void {
    if (!err) return;
    const delivery = this.serving.get(producer);
    if (delivery && !delivery.settled) delivery.error ??= err;
    if (err.code === ERR.FATAL) this.retire(producer, err);
  }
}
