import { createRequire } from 'node:module';
import { PipelineError, classifyError } from '../../core/index.ts';
import type { CompressionName } from '../config/config.ts';
import { MAX_MESSAGE_BYTES } from './limits.ts';
import { EventLoopSlice } from '../runtime/eventLoopSlice.ts';
import type { KafkaClientSecurity } from './security.ts';
import type { OutgoingMessage, Publisher, PublisherOptions, TopicMessages } from './publisher.ts';
import { largestPackedMessage, messageCount, messagesOf, type PackedMessages } from './packedMessages.ts';

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
/** What queuing a slice of messages did: how many were queued, and why the next one was refused (code 0: none was). */
export interface RdSliceAnswer {
  readonly queued: number;
  readonly code: number;
  readonly message: string;
  readonly fatal: boolean;
}
export interface RdProducer {
  connect(opts: Record<string, never>, cb: (err: RdError | null) => void): void;
  disconnect(timeoutMs: number, cb: (err: RdError | null) => void): void;
  produce(
    topic: string,
    partition: number | null,
    value: Buffer | null,
    key: string | Buffer | null,
    timestamp: number | null,
    opaque: Delivery,
    headers?: Record<string, string | Buffer>[],
  ): unknown;
  /**
   * The project's binding (batchProducer.ts) only: queues `messages[from, to)` in one call; one delivery report with
   * `opaque` covers every message it queued.
   */
  produceSlice?(topic: string, messages: readonly OutgoingMessage[], from: number, to: number, opaque: unknown): RdSliceAnswer;
  /** The project's binding only: `produceSlice` for messages [from, to) of a packed batch (ADR 0044). */
  producePacked?(topic: string, packed: PackedMessages, from: number, to: number, opaque: unknown): RdSliceAnswer;
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
  AUTHENTICATION: -169,
  SSL: -181,
  MSG_TIMED_OUT: -192,
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
/**
 * Whether an `event.error` is the brokers refusing this client's login or certificate. The project's binding passes
 * librdkafka's code (-169 authentication; -181 TLS, a refusal only with "certificate verify failed") and its text with
 * the broker's name in front (`sasl_ssl://host:9093/1: …`: the name alone must not decide — a review found every
 * "Connect … refused" of a SASL listener read as a refused login); the package's passes -1 and only the words after
 * the broker's name, lower-cased ("sasl authentication error").
 */
export function isLoginRefusal(err: { readonly code: number; readonly message: string }): boolean {
  if (err.code === ERR.AUTHENTICATION || err.code === ERR.SASL_AUTHENTICATION_FAILED) return true;
  if (err.code === ERR.SSL) return /certificate verify failed/i.test(err.message);
  return err.code === -1 && /^sasl authentication error/i.test(err.message);
}
/** Codes of a message that never got through: with a refused login remembered, that is the likely reason. */
const UNDELIVERED_CODES = new Set<number>([-192, -195, -187]);

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
/**
 * Messages per call into the project's binding: ~1–2 ms of this thread each, so the event loop still turns between
 * slices (the API of `cdr start` shares it).
 */
const SLICE_MESSAGES = 2_000;
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

/** The pipeline's codec name as librdkafka spells it. */
function codecOf(c: CompressionName): string {
  return c === 'none' ? 'none' : c;
}

/** One `send` call: its messages' delivery reports are counted down; the first failure is kept. */
class Delivery {
  outstanding = 0;
  /** The producer its messages went to. */
  producer: RdProducer | undefined;
  error: RdError | undefined;
  produced = false;
  constructor(
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
  ) {}

  settleIfDone(): void {
    if (!this.produced || this.outstanding > 0) return;
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

export class NativePublisher implements Publisher {
  private producer: RdProducer | undefined;
  private connecting: Promise<RdProducer> | undefined;
  private readonly inFlight = new Set<Delivery>();
  /** Producers being disconnected (the library's disconnect never calls back a second time). */
  private readonly retired = new WeakSet<RdProducer>();
  /** The client's last error event (librdkafka reports a refused login only there, as text). */
  private lastClientError: string | undefined;
  /**
   * The last refused login (SASL, TLS) a client reported, and which client, until a message of it is delivered or it
   * connects: librdkafka goes on to say "1/1 brokers are down", which must not hide it at start-up (found from outside:
   * a wrong password was retried as a broker outage, 30 s per attempt, instead of stopping as a configuration error).
   */
  private loginRefused: { readonly producer: RdProducer; readonly message: string } | undefined;
  /**
   * Whether a client of this publisher ever connected: a login refused after that (a client replaced mid-run, while a
   * password was rotated) is an outage to wait out, as for the client it replaced; only at start-up is it a stop.
   */
  private connectedOnce = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Disconnects under way (a retired producer's among them): `close` waits for them, so none is cut off by the exit. */
  private readonly disconnecting = new Set<Promise<boolean>>();

  constructor(
    private readonly opts: PublisherOptions,
    private readonly rd: RdModule,
    /** How long a disconnect flushes (at close; a failed producer's) and may then stay unanswered (tests shorten them). */
    private readonly timing: DisconnectTiming = DEFAULT_DISCONNECT_TIMING,
  ) {}

  get implementation(): string {
    return `librdkafka ${this.rd.librdkafkaVersion}`;
  }

  async start(): Promise<void> {
    await this.connected();
  }

  async send(batches: readonly TopicMessages[]): Promise<void> {
    for (const b of batches) {
      let size = 0;
      if (b.packed) size = largestPackedMessage(b.packed);
      else for (const m of b.messages) size = Math.max(size, sizeOf(m));
      if (size > MAX_MESSAGE_BYTES)
        throw new PipelineError('record_too_large', `Kafka: a ${size}-byte message for ${b.topic} is over the ${MAX_MESSAGE_BYTES}-byte limit`);
    }
    if (!batches.some((b) => messageCount(b) > 0)) return;
    const producer = await this.connected();
    let delivery!: Delivery;
    const done = new Promise<void>((resolve, reject) => (delivery = new Delivery(resolve, reject)));
    delivery.producer = producer;
    this.inFlight.add(delivery);
    // Queuing costs this thread µs per message (a few with the package's binding, about one with the project's); a
    // 20,000-record batch would hold it in one piece, and the API of `cdr start` shares it. Between slices the event
    // loop runs (delivery reports included).
    const slice = new EventLoopSlice();
    try {
      all: for (const b of batches) {
        // Packed messages go to the binding as they are; to the package's binding (one at a time) as objects.
        const packed = b.packed && producer.producePacked ? b.packed : undefined;
        const messages = packed ? undefined : messagesOf(b);
        const count = messageCount(b);
        const step = packed || producer.produceSlice ? SLICE_MESSAGES : 1;
        for (let from = 0; from < count; from += step) {
          if (slice.spent()) {
            await slice.pause();
            // Meanwhile the producer may have failed or the publisher closed: the call fails, nothing more is queued.
            if (this.closed) delivery.error ??= Object.assign(new Error('publisher closed while the batch was being queued'), { code: ERR.STATE });
            if (delivery.error !== undefined) break all;
          }
          try {
            if (packed || producer.produceSlice) {
              const to = Math.min(from + step, count);
              const answer = packed
                ? producer.producePacked!(b.topic, packed, from, to, delivery)
                : producer.produceSlice!(b.topic, messages!, from, to, delivery);
              if (answer.queued > 0) delivery.outstanding++;
              if (answer.code !== 0) throw Object.assign(new Error(answer.message), { code: answer.code, isFatal: answer.fatal });
            } else {
              const m = messages![from]!;
              const headers = m.headers ? Object.entries(m.headers).map(([k, v]) => ({ [k]: bytesOf(v) })) : undefined;
              producer.produce(b.topic, null, nonNull(m.value), m.key === null ? null : bytesOf(m.key), null, delivery, headers);
              delivery.outstanding++;
            }
          } catch (thrown) {
            // Refused before it was queued (queue full, producer failed or gone): what was queued is still awaited
            // below, nothing more is queued.
            const err = thrown as RdError;
            const coded: RdError = typeof err.code === 'number' ? err : Object.assign(new Error(err.message), { code: ERR.STATE });
            delivery.error ??= coded;
            // After a fatal error (an idempotent producer fenced or out of sequence) or with the client gone, this
            // producer takes nothing more: the retry of the batch starts a new one.
            if (coded.code === ERR.FATAL || coded.code === ERR.STATE || coded.isFatal === true) this.retire(producer, coded, 'failed for good');
            break all;
          }
        }
      }
    } finally {
      delivery.produced = true;
      delivery.settleIfDone();
    }
    try {
      await done;
    } finally {
      this.inFlight.delete(delivery);
    }
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
    const producer = this.producer ?? (await this.connecting?.catch(() => undefined));
    this.producer = undefined;
    // The library's disconnect flushes first.
    if (producer && !this.retired.has(producer)) {
      this.retired.add(producer);
      void this.disconnect(producer, this.timing.closeFlushMs);
    }
    const answers = await Promise.all([...this.disconnecting]);
    const unanswered = answers.filter((a) => !a).length;
    if (unanswered > 0) this.opts.log.warn({ unanswered, graceMs: this.timing.graceMs }, 'Kafka producer did not answer its disconnect; going on without it');
    this.failInFlight(Object.assign(new Error('publisher closed with the message unacknowledged'), { code: ERR.STATE }));
  }

  /** Takes a failed producer out of use: what it had in flight fails, the next send starts a new one. */
  private retire(producer: RdProducer, err: RdError, why: 'failed for good' | 'left a message unacknowledged past its timeout'): void {
    if (this.producer === producer) this.producer = undefined;
    this.failInFlight(err, producer);
    if (this.retired.has(producer)) return;
    this.retired.add(producer);
    this.opts.log.warn({ code: err.code, error: err.message }, `Kafka producer ${why}: a new one takes over`);
    const boundMs = this.timing.retiredFlushMs + this.timing.graceMs;
    void this.disconnect(producer, this.timing.retiredFlushMs).then((answered) => {
      // Said, so that an operator can tell: the library keeps such a client's threads and connections for good (found
      // in review: a long outage may retire a client a minute, and nothing showed what was left behind).
      // A close under way says it for every client it waited for (close(), above): once is enough.
      if (!answered && !this.closed)
        this.opts.log.warn(
          { waitedMs: boundMs },
          'a retired Kafka producer did not answer its disconnect: its threads and connections may stay until the process exits',
        );
    });
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

  /** Ends every call in flight (on `producer`, or on any) with `err`; reports that still come for them are ignored. */
  private failInFlight(err: RdError, producer?: RdProducer): void {
    for (const d of this.inFlight) {
      if (producer !== undefined && d.producer !== producer) continue;
      d.error ??= err;
      d.outstanding = 0;
      d.settleIfDone();
    }
  }

  private connected(): Promise<RdProducer> {
    if (this.closed) return Promise.reject(new PipelineError('broker_unavailable', 'publisher is closed'));
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
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
      ...librdkafkaSecurity(opts.security ?? {}),
    });
    const log = opts.log.child({ component: 'librdkafka', thread: 'publisher' });
    producer.on('delivery-report', (err, report) => this.delivered(err, report.opaque));
    producer.on('event.error', (err) => {
      // A retired client's last words (a disconnect under way) are not this publisher's state any more.
      if (this.retired.has(producer)) return;
      this.lastClientError = err.message;
      if (isLoginRefusal(err)) this.loginRefused = { producer, message: err.message };
      log.warn({ error: err.message }, 'Kafka client error');
    });
    await new Promise<void>((resolve, reject) =>
      producer.connect({}, (err) => {
        if (!err) {
          if (this.loginRefused?.producer === producer) this.loginRefused = undefined;
          this.connectedOnce = true;
          return resolve();
        }
        // A refused login shows only as an error event before the connection gives up: at start-up a configuration
        // error, as with kafkajs, not a broker to wait for. Mid-run (a client replaced after a fault) it stays an
        // outage, as for the client it replaces (found in review: a password rotated while the broker was away for
        // over 30 s stopped the service once timed-out messages replaced the client).
        const login = this.loginRefused?.producer === producer ? this.loginRefused.message : undefined;
        const detail = login ? (this.connectedOnce ? `the brokers refused this client's login: ${login}` : login) : (this.lastClientError ?? err.message);
        reject(
          new PipelineError(login && !this.connectedOnce ? 'config_invalid' : 'broker_unavailable', `publisher could not connect: ${detail}`, { cause: err }),
        );
      }),
    );
    // Delivery reports are served by librdkafka's own background thread, which hands them to this thread: nothing here
    // polls the client. The library's `setPollInterval` did, from this thread, without the lock its disconnect holds
    // while it deletes the client on a libuv thread: a poll landing then crashes the process (SIGSEGV, or "pure virtual
    // method called" and SIGABRT — seen once in CI at a test's tear-down; a scratch loop polling during disconnects
    // crashed within 20 cycles). The library's own KafkaJS-style producer polls the same way (docs/decisions/0032).
    producer.setPollInBackground(true);
    if (this.closed) {
      void this.disconnect(producer, this.timing.retiredFlushMs);
      throw new PipelineError('broker_unavailable', 'publisher is closed');
    }
    this.producer = producer;
    return producer;
  }

  private delivered(err: RdError | null, opaque: unknown): void {
    // A call already settled (its producer failed) ignores the reports that still come.
    if (!(opaque instanceof Delivery) || opaque.outstanding === 0) return;
    opaque.outstanding--;
    const refusal = this.loginRefused?.producer === opaque.producer ? this.loginRefused : undefined;
    if (!err && refusal) this.loginRefused = undefined;
    // Messages that never got through while this client's login is refused (a password rotated under a running
    // pipeline) say so; they stay an outage to wait out (a refusal seen once may pass; stopping the service on it was
    // judged too eager in review), and the reason is in the error the loop logs and health shows.
    if (err && refusal && UNDELIVERED_CODES.has(err.code))
      err = Object.assign(new Error(`${err.message} (the brokers refused this client's login: ${refusal.message})`), { code: err.code, isFatal: err.isFatal });
    if (err) opaque.error ??= err;
    if (err && opaque.producer) {
      if (err.code === ERR.FATAL || err.isFatal === true) this.retire(opaque.producer, err, 'failed for good');
      // A message not acknowledged within its timeout (30 s): the client may be wedged, not the cluster. Seen in CI
      // once after a broker restart (2026-12-07): every retry on the same client timed out again for minutes, each
      // partition's, while a new client reconnects at once. The retry goes through a new client (new connections,
      // metadata and producer id); what the old one still delivers is at least once, as for any retry. Not while the
      // brokers refuse this client's login: the refusal is the reason, and a new client would only meet it again.
      else if (err.code === ERR.MSG_TIMED_OUT && !refusal) this.retire(opaque.producer, err, 'left a message unacknowledged past its timeout');
    }
    opaque.settleIfDone();
  }
}
