import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { OutgoingMessage } from './publisher.ts';
import { unpackMessages, type PackedMessages } from './packedMessages.ts';
import type { RdError, RdModule, RdProducer, RdSliceAnswer } from './nativePublisher.ts';

/**
 * librdkafka through the project's own small binding (native/producer.cc, ADR 0043): the messages of a slice are queued
 * in one call and their delivery reports are counted on librdkafka's side, so JavaScript hears once per slice instead
 * of once per message. Same library, properties and error codes as @confluentinc/kafka-javascript's producer (it is
 * built against that package's librdkafka), presented with the same surface, so NativePublisher drives either.
 */

/** The binding's raw surface (native/producer.cc). */
interface RawProducer {
  connect(timeoutMs: number): void;
  produce(
    topic: string,
    keys: readonly (string | Buffer | null)[],
    values: readonly (Buffer | null)[],
    headerNames: readonly string[],
    headerValues: readonly (string | Buffer)[],
    headerEnds: Uint32Array,
    id: number,
  ): RdSliceAnswer;
  /** Absent from a binding built before 2026-12-07 (then the slice is unpacked for `produce`). */
  producePacked?(
    topic: string,
    values: Uint8Array,
    valueEnds: Uint32Array,
    keys: Uint8Array,
    keyEnds: Uint32Array,
    headerName: string,
    headerValues: Uint8Array,
    headerEnds: Uint32Array,
    from: number,
    to: number,
    id: number,
  ): RdSliceAnswer;
  close(flushMs: number): void;
  injectFatalError(code: number, reason: string): void;
}
interface RawModule {
  readonly Producer: new (
    conf: Record<string, string>,
    onEvent: (kind: number, id: number, code: number, message: string, fatal: boolean) => void,
  ) => RawProducer;
  readonly librdkafkaVersion: string;
}

const DELIVERED = 1;
const ERROR = 2;
const CONNECTED = 3;
const CLOSED = 4;

const PACKAGE_SWITCHES = new Set(['dr_cb', 'dr_msg_cb', 'event_cb', 'rebalance_cb', 'offset_commit_cb']);
const ADDON = fileURLToPath(new URL('../../../native/build/producer.node', import.meta.url));
let loaded: { module: RdModule } | { error: string } | undefined;

/** The binding as an RdModule, or why it cannot be used here (not built, or it does not load). */
export function batchKafka(): { module: RdModule } | { error: string } {
  if (!loaded) {
    try {
      const raw = createRequire(import.meta.url)(ADDON) as RawModule;
      if (typeof raw.Producer !== 'function') throw new Error('the binding has no Producer');
      loaded = {
        module: {
          Producer: class extends BatchProducer {
            /** `connectTimeoutMs`: tests shorten it. */
            constructor(conf: Record<string, string | number | boolean>, connectTimeoutMs?: number) {
              super(raw, conf, connectTimeoutMs);
            }
          },
          librdkafkaVersion: `${raw.librdkafkaVersion}, batch binding`,
        },
      };
    } catch (err) {
      loaded = { error: (err instanceof Error ? err.message : String(err)).split('\n')[0]! };
    }
  }
  return loaded;
}

function rdError(code: number, message: string, fatal: boolean): RdError {
  return Object.assign(new Error(message), { code, isFatal: fatal });
}

export class BatchProducer implements RdProducer {
  private readonly raw: RawProducer;
  private readonly slices = new Map<number, unknown>();
  private nextSlice = 1;
  private onDelivery: ((err: RdError | null, report: { opaque: unknown }) => void) | undefined;
  private onError: ((err: RdError) => void) | undefined;
  private connected: ((err: RdError | null) => void) | undefined;
  private closed: ((err: RdError | null) => void) | undefined;

  constructor(
    native: RawModule,
    conf: Record<string, string | number | boolean>,
    /** As long as kafka-javascript's connect waits for the cluster's first answer (its metadata request). */
    private readonly connectTimeoutMs = 30_000,
  ) {
    const strings: Record<string, string> = {};
    // The package's own switches (delivery reports on, and the like) are not librdkafka properties: this binding always
    // counts every report.
    for (const [k, v] of Object.entries(conf)) if (!PACKAGE_SWITCHES.has(k)) strings[k] = String(v);
    this.raw = new native.Producer(strings, (kind, id, code, message, fatal) => this.event(kind, id, code, message, fatal));
  }

  connect(_opts: Record<string, never>, cb: (err: RdError | null) => void): void {
    this.connected = cb;
    this.raw.connect(this.connectTimeoutMs);
  }

  /** Flushes up to `timeoutMs`, then ends the client; throws if it was already asked to. */
  disconnect(timeoutMs: number, cb: (err: RdError | null) => void): void {
    this.raw.close(timeoutMs);
    this.closed = cb;
  }

  /** One message: a slice of one (headers as the package takes them: one single-entry object per header). */
  produce(
    topic: string,
    _partition: number | null,
    value: Buffer | null,
    key: string | Buffer | null,
    _timestamp: number | null,
    opaque: unknown,
    headers?: Record<string, string | Buffer>[],
  ): unknown {
    const message: OutgoingMessage = headers ? { key, value, headers: Object.assign({}, ...headers) as Record<string, string | Buffer> } : { key, value };
    const answer = this.produceSlice(topic, [message], 0, 1, opaque);
    if (answer.queued === 0) throw rdError(answer.code, answer.message, answer.fatal);
    return true;
  }

  /**
   * Queues `messages[from, to)` in order until librdkafka refuses one; one 'delivery-report' with `opaque` follows once
   * every queued message is reported (carrying the slice's first failure), none if nothing was queued.
   */
  produceSlice(topic: string, messages: readonly OutgoingMessage[], from: number, to: number, opaque: unknown): RdSliceAnswer {
    const n = to - from;
    const keys = new Array<string | Buffer | null>(n);
    const values = new Array<Buffer | null>(n);
    const headerNames: string[] = [];
    const headerValues: (string | Buffer)[] = [];
    const headerEnds = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const m = messages[from + i]!;
      keys[i] = m.key;
      values[i] = m.value;
      if (m.headers)
        for (const name in m.headers) {
          headerNames.push(name);
          headerValues.push(m.headers[name]!);
        }
      headerEnds[i] = headerNames.length;
    }
    const id = this.sliceId();
    const answer = this.raw.produce(topic, keys, values, headerNames, headerValues, headerEnds, id);
    if (answer.queued > 0) this.slices.set(id, opaque);
    return answer;
  }

  /**
   * Queues messages [from, to) of a packed batch straight from its buffers (ADR 0044); answered as `produceSlice`.
   */
  producePacked(topic: string, packed: PackedMessages, from: number, to: number, opaque: unknown): RdSliceAnswer {
    if (!this.raw.producePacked) return this.produceSlice(topic, unpackMessages(packed, from, to), 0, to - from, opaque);
    const id = this.sliceId();
    const p = packed;
    const answer = this.raw.producePacked(topic, p.values, p.valueEnds, p.keys, p.keyEnds, p.headerName, p.headerValues, p.headerEnds, from, to, id);
    if (answer.queued > 0) this.slices.set(id, opaque);
    return answer;
  }

  private sliceId(): number {
    const id = this.nextSlice;
    // The binding takes the id as a 32-bit number.
    this.nextSlice = this.nextSlice === 0xffff_ffff ? 1 : this.nextSlice + 1;
    return id;
  }

  /** librdkafka's test hook: the client fails for good, as after an idempotence failure (tests only). */
  injectFatalError(code: number, reason: string): void {
    this.raw.injectFatalError(code, reason);
  }

  /** Delivery reports and error events come from the binding's own polling thread. */
  setPollInBackground(): unknown {
    return this;
  }

  on(event: 'delivery-report', cb: (err: RdError | null, report: { opaque: unknown }) => void): void;
  on(event: 'event.error', cb: (err: RdError) => void): void;
  on(event: string, cb: ((err: RdError | null, report: { opaque: unknown }) => void) | ((err: RdError) => void)): void {
    if (event === 'delivery-report') this.onDelivery = cb as (err: RdError | null, report: { opaque: unknown }) => void;
    else if (event === 'event.error') this.onError = cb as (err: RdError) => void;
  }

  private event(kind: number, id: number, code: number, message: string, fatal: boolean): void {
    if (kind === DELIVERED) {
      const opaque = this.slices.get(id);
      this.slices.delete(id);
      this.onDelivery?.(code === 0 ? null : rdError(code, message, fatal), { opaque });
    } else if (kind === ERROR) {
      this.onError?.(rdError(code, message, fatal));
    } else if (kind === CONNECTED) {
      const cb = this.connected;
      this.connected = undefined;
      // A client that could not connect is ended here, as the package's connect does: nothing else would, and each
      // retry makes a new one (found in review: five failed connects left 20 threads reporting errors).
      if (code !== 0) this.raw.close(0);
      cb?.(code === 0 ? null : rdError(code, message, false));
    } else if (kind === CLOSED) {
      this.slices.clear();
      const cb = this.closed;
      this.closed = undefined;
      cb?.(null);
    }
  }
}
