/**
 * The native publisher's pure parts: how the pipeline's TLS and SASL settings become librdkafka properties, and how
 * librdkafka's error codes land in the error model; and, against a stand-in for the binding, how a send settles on
 * delivery reports, a fatal error, a close and a refused login — and, against a stand-in for the project's batch
 * binding (ADR 0043), how it settles on one report per slice, a slice queued part-way and a fatal refusal. (The publishing itself is proven against the real
 * broker in tests/integration/platform/publisher.test.ts.)
 */
import pino from 'pino';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyNativeError,
  type DisconnectTiming,
  librdkafkaSecurity,
  NativePublisher,
  type RdError,
  type RdModule,
  type RdProducer,
  type RdSliceAnswer,
  isLoginRefusal,
} from '../../../../services/platform/kafka/nativePublisher.ts';
import type { OutgoingMessage } from '../../../../services/platform/kafka/publisher.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { createLogger } from '../../../../services/platform/observability/logger.ts';

function rdError(code: number, message = 'x'): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

describe('librdkafkaSecurity', () => {
  it('plain TCP without authentication', () => {
    assert.deepEqual(librdkafkaSecurity({}), { 'security.protocol': 'plaintext' });
  });

  it('TLS with a private CA, a client certificate, and verification off when asked', () => {
    assert.deepEqual(librdkafkaSecurity({ ssl: { ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: false } }), {
      'security.protocol': 'ssl',
      'ssl.ca.pem': 'CA',
      'ssl.certificate.pem': 'CERT',
      'ssl.key.pem': 'KEY',
      'enable.ssl.certificate.verification': false,
      'ssl.endpoint.identification.algorithm': 'none',
    });
    // Verification stays on (librdkafka's default) unless turned off.
    assert.deepEqual(librdkafkaSecurity({ ssl: { ca: 'CA', rejectUnauthorized: true } }), { 'security.protocol': 'ssl', 'ssl.ca.pem': 'CA' });
    assert.deepEqual(librdkafkaSecurity({ ssl: true }), { 'security.protocol': 'ssl' });
  });

  it('SASL mechanisms in librdkafka spelling, over TLS or plain TCP', () => {
    assert.deepEqual(librdkafkaSecurity({ sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } }), {
      'security.protocol': 'sasl_plaintext',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'u',
      'sasl.password': 'p',
    });
    const both = librdkafkaSecurity({ ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'p' } });
    assert.equal(both['security.protocol'], 'sasl_ssl');
    assert.equal(both['sasl.mechanisms'], 'PLAIN');
  });
});

describe('classifyNativeError', () => {
  it('what waiting does not cure (an invalid argument, a policy or version the broker refuses) is the model’s default', () => {
    for (const code of [-186, -170, 35, 44, 76]) assert.equal(classifyNativeError(rdError(code)).code, 'unexpected', String(code));
  });

  it('a record the broker refuses is the record’s problem (dead letter)', () => {
    for (const code of [2, 10, 18, 87]) {
      const e = classifyNativeError(rdError(code, 'Broker: Message size too large'));
      assert.equal(e.code, 'record_too_large', String(code));
      assert.equal(e.disposition, 'dead-letter');
    }
  });

  it('authentication and authorisation are configuration (stop)', () => {
    for (const code of [-169, -181, 29, 31, 58]) assert.equal(classifyNativeError(rdError(code)).code, 'config_invalid', String(code));
  });

  it('timeouts, transport and fenced producers are the broker being away (retry)', () => {
    for (const code of [-192, -195, -187, -150, 3, 6]) {
      const e = classifyNativeError(rdError(code, 'Local: Message timed out\nsecond line'));
      assert.equal(e.code, 'broker_unavailable', String(code));
      assert.equal(e.disposition, 'retry');
      assert.equal(e.message, 'Kafka: Local: Message timed out');
    }
  });
});

/** A stand-in for the binding's Producer: records what it is given, answers as told. */
class FakeProducer implements RdProducer {
  static made: FakeProducer[] = [];
  static connectError: { event?: string; events?: (string | { message: string; code: number })[]; error?: Error & { code: number } } = {};
  readonly produced: { topic: string; value: Buffer | null; key: string | Buffer | null; opaque: unknown; headers?: Record<string, string | Buffer>[] }[] = [];
  disconnects = 0;
  /** How the next disconnect goes: answered, thrown at once (the library's "Producer not connected"), or never answered. */
  disconnectAnswer: 'answer' | 'throw' | 'never' = 'answer';
  backgroundPolling = false;
  throwOnProduce: (Error & { code?: number }) | undefined;
  private readonly handlers = new Map<string, (...args: never[]) => void>();
  constructor(readonly conf: Record<string, string | number | boolean>) {
    FakeProducer.made.push(this);
  }
  connect(_opts: Record<string, never>, cb: (err: RdError | null) => void): void {
    const { event, events, error } = FakeProducer.connectError;
    for (const e of [...(event ? [event] : []), ...(events ?? [])])
      this.emit('event.error', typeof e === 'string' ? Object.assign(new Error(e), { code: -1 }) : Object.assign(new Error(e.message), { code: e.code }));
    setImmediate(() => cb(error ?? null));
  }
  disconnect(_timeoutMs: number, cb: (err: RdError | null) => void): void {
    this.disconnects++;
    if (this.disconnectAnswer === 'throw') throw new Error('Producer not connected');
    if (this.disconnectAnswer === 'answer') setImmediate(() => cb(null));
  }
  flush(_timeoutMs: number, cb: (err: RdError | null) => void): void {
    setImmediate(() => cb(null));
  }
  produce(
    topic: string,
    _p: number | null,
    value: Buffer | null,
    key: string | Buffer | null,
    _t: number | null,
    opaque: unknown,
    headers?: Record<string, string | Buffer>[],
  ): unknown {
    if (this.throwOnProduce) throw this.throwOnProduce;
    this.produced.push({ topic, value, key, opaque, ...(headers ? { headers } : {}) });
    return true;
  }
  setPollInBackground(set: boolean): void {
    this.backgroundPolling = set;
  }
  on(event: string, cb: (...args: never[]) => void): void {
    this.handlers.set(event, cb);
  }
  emit(event: string, ...args: unknown[]): void {
    (this.handlers.get(event) as ((...a: unknown[]) => void) | undefined)?.(...args);
  }
  /** Delivery reports for everything produced so far, failing the ones `fail` picks. */
  report(fail: (i: number) => (Error & { code: number }) | null = () => null): void {
    this.produced.forEach((m, i) => this.emit('delivery-report', fail(i), { opaque: m.opaque }));
    this.produced.length = 0;
  }
}

const fakeModule: RdModule = { Producer: FakeProducer, librdkafkaVersion: 'fake' };
const log = createLogger('silent');
const opts = { brokers: ['127.0.0.1:9'], clientId: 't', log };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const quick: DisconnectTiming = { closeFlushMs: 200, retiredFlushMs: 300, graceMs: 100 };

/** A publisher (its warnings kept in `lines`) whose first producer failed for good and never answers its disconnect. */
async function retiredSilently(): Promise<{ p: NativePublisher; first: FakeProducer; lines: string[] }> {
  FakeProducer.made = [];
  const lines: string[] = [];
  const p = new NativePublisher({ ...opts, log: pino({ level: 'warn' }, { write: (l: string) => lines.push(l) }) }, fakeModule, quick);
  await p.start();
  const first = FakeProducer.made[0]!;
  first.disconnectAnswer = 'never';
  first.throwOnProduce = Object.assign(new Error('Producing not allowed since a previous fatal error'), { code: -150 });
  await assert.rejects(p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]));
  return { p, first, lines };
}

describe('NativePublisher (against a stand-in for the binding)', () => {
  it('configures an idempotent, acks=all producer that never creates topics and partitions as Java does', async () => {
    FakeProducer.made = [];
    FakeProducer.connectError = {};
    const p = new NativePublisher({ ...opts, compression: 'zstd' }, fakeModule);
    await p.start();
    const conf = FakeProducer.made[0]!.conf;
    assert.equal(conf['enable.idempotence'], true);
    assert.equal(conf['acks'], 'all');
    assert.equal(conf['allow.auto.create.topics'], false);
    assert.equal(conf['partitioner'], 'murmur2_random');
    assert.equal(conf['compression.codec'], 'zstd');
    assert.equal(FakeProducer.made[0]!.backgroundPolling, true, 'delivery reports served by librdkafka, not polled from this thread');
    await p.close();
  });

  it('resolves a send only when every message is reported delivered; one failed report fails the send', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule);
    await p.start();
    const fake = FakeProducer.made[0]!;
    let settled = false;
    const ok = p
      .send([
        {
          topic: 'a',
          messages: [
            { key: 'k', value: Buffer.from('1') },
            { key: 'k', value: Buffer.from('2') },
          ],
        },
      ])
      .then(() => (settled = true));
    await tick();
    assert.equal(fake.produced.length, 2);
    fake.emit('delivery-report', null, { opaque: fake.produced[0]!.opaque });
    await tick();
    assert.equal(settled, false, 'one of two reported: not yet');
    fake.emit('delivery-report', null, { opaque: fake.produced[1]!.opaque });
    await ok;
    fake.produced.length = 0;
    const failed = p.send([
      {
        topic: 'a',
        messages: [
          { key: 'k', value: Buffer.from('3') },
          { key: 'k', value: Buffer.from('4') },
        ],
      },
    ]);
    await tick();
    fake.report((i) => (i === 1 ? Object.assign(new Error('Broker: Not enough in-sync replicas'), { code: 19 }) : null));
    await assert.rejects(failed, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    const tooLarge = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('5') }] }]);
    await tick();
    fake.report(() => Object.assign(new Error('Broker: Message size too large'), { code: 10 }));
    await assert.rejects(tooLarge, (e: unknown) => e instanceof PipelineError && e.code === 'record_too_large');
    await p.close();
  });

  it('after a fatal error fails what is in flight and sends the retry through a new producer', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule);
    await p.start();
    const first = FakeProducer.made[0]!;
    const inFlight = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    first.throwOnProduce = Object.assign(new Error('Producing not allowed since a previous fatal error'), { code: -150 });
    await assert.rejects(
      p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('2') }] }]),
      (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable',
    );
    await assert.rejects(inFlight, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    assert.equal(first.disconnects, 1);
    const retry = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('2') }] }]);
    await tick();
    assert.equal(FakeProducer.made.length, 2, 'a new producer');
    FakeProducer.made[1]!.report();
    await retry;
    // A late report for the old producer's message changes nothing.
    first.emit('delivery-report', null, { opaque: undefined });
    await p.close();
    await p.close();
    assert.equal(first.disconnects, 1);
    assert.equal(FakeProducer.made[1]!.disconnects, 1);
  });

  it('a message timed out retires the client: what it had in flight fails, the retry goes through a new one', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule, quick);
    await p.start();
    const first = FakeProducer.made[0]!;
    const a = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    const b = p.send([{ topic: 'b', messages: [{ key: 'k', value: Buffer.from('2') }] }]);
    await tick();
    // Only the first message's report comes, a timeout; the other call's would never come from a wedged client.
    first.emit('delivery-report', Object.assign(new Error('Local: Message timed out'), { code: -192 }), { opaque: first.produced[0]!.opaque });
    await assert.rejects(a, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable' && /timed out/.test(e.message));
    await assert.rejects(b, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    assert.equal(first.disconnects, 1, 'the wedged client is let go');
    const retry = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    assert.equal(FakeProducer.made.length, 2, 'a new client');
    FakeProducer.made[1]!.report();
    await retry;
    await p.close();
    assert.equal(first.disconnects, 1);
  });

  it('a disconnect that throws or never answers does not hold close() past its flush time and grace; close waits for a retired producer’s', async () => {
    FakeProducer.made = [];
    const throwing = new NativePublisher(opts, fakeModule);
    await throwing.start();
    FakeProducer.made[0]!.disconnectAnswer = 'throw';
    await throwing.close();
    // Flush and grace of 10 s and 15 s at close shortened: close() goes on 200 + 100 ms after it asked.
    const silent = new NativePublisher(opts, fakeModule, quick);
    await silent.start();
    FakeProducer.made[1]!.disconnectAnswer = 'never';
    const started = Date.now();
    await silent.close();
    const waited = Date.now() - started;
    assert.ok(waited >= 290 && waited < 2_000, `close() went on after ${waited} ms`);
    assert.equal(FakeProducer.made[1]!.disconnects, 1);
    await silent.close();
    assert.equal(FakeProducer.made[1]!.disconnects, 1, 'a second close asks nothing more');
  });

  it('close() waits for the disconnect of a producer retired just before it', async () => {
    const { p, first, lines } = await retiredSilently();
    assert.equal(first.disconnects, 1, 'retired: its disconnect asked for');
    const started = Date.now();
    await p.close();
    assert.ok(Date.now() - started >= 390, 'close() waited for the retired producer’s disconnect (its flush + grace)');
    await tick();
    assert.equal(lines.filter((l) => l.includes('did not answer its disconnect')).length, 1, `said once, by close(): ${lines.join('')}`);
  });

  it('a retired producer that never answers its disconnect is said in the log once its flush and grace are over', async () => {
    const { p, lines } = await retiredSilently();
    const unanswered = (): string[] => lines.filter((l) => l.includes('did not answer its disconnect'));
    assert.deepEqual(unanswered(), [], 'not before its flush time and grace');
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(unanswered().length, 1, lines.join(''));
    assert.match(unanswered()[0]!, /"waitedMs":400/);
    // A retired producer that answers says nothing more.
    const second = FakeProducer.made.length;
    const next = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('2') }] }]);
    await tick();
    FakeProducer.made[second]!.report(() => Object.assign(new Error('fatal'), { code: -150 }));
    await assert.rejects(next);
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(unanswered().length, 1);
    await p.close();
  });

  it('fails a send still unacknowledged at close, and refuses sends after it', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule);
    await p.start();
    const pending = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    await p.close();
    await assert.rejects(pending, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    await assert.rejects(
      p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('x') }] }]),
      (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable',
    );
  });

  it('hands keys and header values over as UTF-8 bytes (a U+0000 inside is kept), empty values as empty', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule);
    await p.start();
    const fake = FakeProducer.made[0]!;
    const sent = p.send([{ topic: 'a', messages: [{ key: 'a\u0000b-ü', value: Buffer.alloc(0), headers: { h: 'x\u0000y' } }] }]);
    await tick();
    const m = fake.produced[0]!;
    assert.deepEqual(m.key, Buffer.from('a\u0000b-ü'));
    assert.notEqual(m.value, null);
    assert.equal(m.value!.length, 0);
    assert.deepEqual(m.headers, [{ h: Buffer.from('x\u0000y') }]);
    fake.report();
    await sent;
    await p.close();
  });

  it('a login the brokers refuse is a configuration error; a broker away is one to wait for', async () => {
    FakeProducer.made = [];
    FakeProducer.connectError = {
      event: 'SASL authentication error: Authentication failed (after 2ms in state AUTH_REQ)',
      error: Object.assign(new Error('broker transport failure'), { code: -195 }),
    };
    await assert.rejects(
      new NativePublisher(opts, fakeModule).start(),
      (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && /SASL/.test(e.message),
    );
    // librdkafka goes on to say the brokers are down: the refusal before it still decides (found from outside).
    FakeProducer.connectError = {
      events: ['SASL authentication error: Authentication failed: Invalid username or password (after 3ms in state AUTH_REQ)', '1/1 brokers are down'],
      error: Object.assign(new Error('broker transport failure'), { code: -195 }),
    };
    await assert.rejects(
      new NativePublisher(opts, fakeModule).start(),
      (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && /Invalid username or password/.test(e.message),
    );
    FakeProducer.connectError = { error: Object.assign(new Error('broker transport failure'), { code: -195 }) };
    await assert.rejects(new NativePublisher(opts, fakeModule).start(), (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    // The project's binding passes librdkafka's words with the broker's name in front: a SASL listener that does not
    // answer is an outage, not a refused login (found in review: the name alone matched "SASL").
    FakeProducer.connectError = {
      events: [
        { message: 'sasl_ssl://127.0.0.1:9093/bootstrap: Connect to ipv4#127.0.0.1:9093 failed: Connection refused', code: -195 },
        { message: '1/1 brokers are down', code: -187 },
      ],
      error: Object.assign(new Error('Local: Broker transport failure'), { code: -195 }),
    };
    await assert.rejects(new NativePublisher(opts, fakeModule).start(), (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    FakeProducer.connectError = {
      events: [{ message: 'sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed: Invalid username or password', code: -169 }],
      error: Object.assign(new Error('Local: Broker transport failure'), { code: -195 }),
    };
    await assert.rejects(new NativePublisher(opts, fakeModule).start(), (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid');
    FakeProducer.connectError = {};
  });

  it('a login refused to a client that replaces one mid-run (a password rotated while the broker was away) is an outage, not a stop', async () => {
    FakeProducer.made = [];
    FakeProducer.connectError = {};
    const p = new NativePublisher(opts, fakeModule, quick);
    await p.start();
    const first = FakeProducer.made[0]!;
    const timedOut = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    first.report(() => Object.assign(new Error('Local: Message timed out'), { code: -192 }));
    await assert.rejects(timedOut, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    FakeProducer.connectError = {
      events: [{ message: 'sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed: Invalid username or password', code: -169 }],
      error: Object.assign(new Error('Local: Broker transport failure'), { code: -195 }),
    };
    try {
      await assert.rejects(
        p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]),
        (e: unknown) =>
          e instanceof PipelineError && e.code === 'broker_unavailable' && /refused this client's login: .*Invalid username or password/.test(e.message),
      );
    } finally {
      FakeProducer.connectError = {};
    }
    // The login works again: the next try connects and delivers.
    const retry = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    await tick();
    FakeProducer.made.at(-1)!.report();
    await retry;
    await p.close();
  });

  it("isLoginRefusal: librdkafka's code decides where the binding passes it; the package's words where it does not", () => {
    const cases: [number, string, boolean][] = [
      [-169, 'sasl_ssl://b:9093/1: SASL authentication error: Authentication failed', true],
      [-195, 'sasl_ssl://b:9093/1: Connect to ipv4#10.0.0.1:9093 failed: Connection refused', false],
      [-195, 'sasl_plaintext://b:9092/1: Disconnected: verify that security.protocol is correctly configured, broker might require SASL authentication', false],
      [-181, 'ssl://b:9093/1: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified', true],
      [-181, 'ssl://b:9093/1: SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?', false],
      [-187, '1/1 brokers are down', false],
      [-1, 'sasl authentication error', true],
      [-1, 'ssl handshake failed', false],
    ];
    for (const [code, message, expected] of cases) assert.equal(isLoginRefusal({ code, message }), expected, message);
  });

  it("messages that time out while the brokers refuse this client's login (a password rotated mid-run) say so and stay an outage; a delivery clears it", async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, fakeModule);
    await p.start();
    const fake = FakeProducer.made[0]!;
    fake.emit('event.error', Object.assign(new Error('SASL authentication error: Authentication failed: Invalid username or password'), { code: -1 }));
    fake.emit('event.error', Object.assign(new Error('1/1 brokers are down'), { code: -1 }));
    const refused = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('1') }] }]);
    await tick();
    fake.report(() => Object.assign(new Error('Local: Message timed out'), { code: -192 }));
    await assert.rejects(
      refused,
      (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable' && /refused this client's login: SASL authentication error/.test(e.message),
    );
    // The login works again: a delivered message clears the refusal; a later timeout is an outage again.
    const ok = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('2') }] }]);
    await tick();
    fake.report();
    await ok;
    const timedOut = p.send([{ topic: 'a', messages: [{ key: 'k', value: Buffer.from('3') }] }]);
    await tick();
    fake.report(() => Object.assign(new Error('Local: Message timed out'), { code: -192 }));
    await assert.rejects(timedOut, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable' && !/login/.test(e.message));
    // That timeout (no refusal known) retired the client; the one refused before it was kept (a new client would meet
    // the refusal at connect and stop the service).
    assert.equal(fake.disconnects, 1);
    assert.equal(FakeProducer.made.length, 1);
    await p.close();
  });
});

/** A stand-in for the project's batch binding (ADR 0043): a slice of messages per call, one report per slice. */
class FakeSliceProducer extends FakeProducer {
  readonly slices: { topic: string; from: number; to: number; opaque: unknown }[] = [];
  /** What the next call answers for a slice of `n` messages. */
  answer: (n: number, call: number) => RdSliceAnswer = (n) => ({ queued: n, code: 0, message: '', fatal: false });
  private calls = 0;
  produceSlice(topic: string, _messages: readonly OutgoingMessage[], from: number, to: number, opaque: unknown): RdSliceAnswer {
    const a = this.answer(to - from, this.calls++);
    if (a.queued > 0) this.slices.push({ topic, from, to: from + a.queued, opaque });
    return a;
  }
  reportSlices(fail: (i: number) => (Error & { code: number }) | null = () => null): void {
    this.slices.forEach((s, i) => this.emit('delivery-report', fail(i), { opaque: s.opaque }));
    this.slices.length = 0;
  }
}
const sliceModule: RdModule = { Producer: FakeSliceProducer, librdkafkaVersion: 'fake, batch binding' };
/**
 * Event-loop turns until `done` holds (at most 200). The publisher queues for 8 ms, then lets the loop run
 * (EventLoopSlice): on a loaded machine a 2,000-message slice can take longer, and the rest comes a turn later (one
 * turn was assumed, and failed in CI).
 */
async function turnsUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await tick();
}
const messagesOf = (n: number): OutgoingMessage[] => Array.from({ length: n }, (_, i) => ({ key: `k${i % 3}`, value: Buffer.from(`m${i}`) }));

describe('NativePublisher with a binding that takes slices (against a stand-in)', () => {
  it('queues 4,500 messages in calls of at most 2,000 and resolves once every slice is answered', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, sliceModule);
    await p.start();
    const fake = FakeProducer.made[0] as FakeSliceProducer;
    let settled = false;
    const sent = p.send([{ topic: 'a', messages: messagesOf(4_500) }]).then(() => (settled = true));
    await turnsUntil(() => fake.slices.length >= 3);
    assert.deepEqual(
      fake.slices.map((s) => [s.from, s.to]),
      [
        [0, 2_000],
        [2_000, 4_000],
        [4_000, 4_500],
      ],
    );
    assert.equal(fake.produced.length, 0, 'no message one by one');
    const last = fake.slices.pop()!;
    fake.reportSlices();
    await tick();
    assert.equal(settled, false, 'two of three slices answered: not yet');
    fake.emit('delivery-report', null, { opaque: last.opaque });
    await sent;
    await p.close();
  });

  it('a slice queued part-way (queue full) fails the send retryably once what was queued is answered, and keeps the client', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, sliceModule);
    await p.start();
    const fake = FakeProducer.made[0] as FakeSliceProducer;
    fake.answer = (n, call) =>
      call === 1 ? { queued: 700, code: -184, message: 'Local: Queue full', fatal: false } : { queued: n, code: 0, message: '', fatal: false };
    let settled = false;
    const sent = p.send([{ topic: 'a', messages: messagesOf(4_500) }]);
    void sent.catch(() => (settled = true));
    await turnsUntil(() => fake.slices.length >= 2);
    // A few turns more: a slice queued after the refusal would show now.
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(
      fake.slices.map((s) => [s.from, s.to]),
      [
        [0, 2_000],
        [2_000, 2_700],
      ],
      'nothing after the refusal',
    );
    fake.emit('delivery-report', null, { opaque: fake.slices[0]!.opaque });
    await tick();
    assert.equal(settled, false, 'the part queued is still awaited');
    fake.emit('delivery-report', null, { opaque: fake.slices[1]!.opaque });
    await assert.rejects(sent, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    assert.equal(fake.disconnects, 0, 'a full queue does not retire the client');
    await p.close();
  });

  it('a refusal marked fatal with its original code (45, as librdkafka gives it) retires the client; the retry goes through a new one', async () => {
    FakeProducer.made = [];
    const p = new NativePublisher(opts, sliceModule);
    await p.start();
    const first = FakeProducer.made[0] as FakeSliceProducer;
    first.answer = () => ({ queued: 0, code: 45, message: 'test_fatal_error: out of order sequence', fatal: true });
    await assert.rejects(p.send([{ topic: 'a', messages: messagesOf(10) }]), (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    assert.equal(first.disconnects, 1, 'retired');
    const retry = p.send([{ topic: 'a', messages: messagesOf(10) }]);
    await tick();
    assert.equal(FakeProducer.made.length, 2, 'a new client');
    (FakeProducer.made[1] as FakeSliceProducer).reportSlices();
    await retry;
    // A report marked fatal retires the client as well.
    const second = FakeProducer.made[1] as FakeSliceProducer;
    const failing = p.send([{ topic: 'a', messages: messagesOf(10) }]);
    await tick();
    second.reportSlices(() => Object.assign(new Error('Local: Purged in queue'), { code: -152, isFatal: true }));
    await assert.rejects(failing, (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable');
    assert.equal(second.disconnects, 1, 'retired after a fatal report');
    await p.close();
  });
});
