/**
 * Integration test for the local Kafka broker (scripts/kafka.sh + services/shared/src/kafka/localBroker.ts)
 * with the project's Kafka client (kafkajs).
 *
 *   node --import tsx --test tests/integration/localBroker.test.ts
 *
 * Needs Java >= 17, and Maven + Maven Central the first time (jars are cached in .cache/kafka).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type EachBatchPayload } from 'kafkajs';
import {
  KafkaBrokerAlreadyRunningError,
  ensureKafkaInstalled,
  kafkaToolClasspath,
  startLocalBroker,
  type BrokerEvent,
  type LocalBroker,
} from '../../../infra/kafka/localBroker.ts';

const TOPIC = 'cdr.local-broker-test';
const GROUP = 'cdr-local-broker-test-group';
const MESSAGES = 1000;

const brokersToStop = new Set<LocalBroker>();
const dirsToRemove = new Set<string>();

void after(async () => {
  for (const broker of brokersToStop) await broker.stop().catch(() => undefined);
  for (const dir of dirsToRemove) await rm(dir, { recursive: true, force: true });
});

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cdr-kafka-test-'));
  dirsToRemove.add(dir);
  return dir;
}

async function start(dataDir: string, ownerPid?: number): Promise<LocalBroker> {
  const broker = await startLocalBroker(ownerPid === undefined ? { dataDir } : { dataDir, ownerPid });
  brokersToStop.add(broker);
  return broker;
}

async function stop(broker: LocalBroker): Promise<void> {
  await broker.stop();
  brokersToStop.delete(broker);
  assert.equal(isAlive(broker.pid), false, `broker pid ${broker.pid} still alive after stop()`);
}

/**
 * Alive and not a zombie (the broker is re-parented once the start script exits). A main thread that shows Z while
 * other threads are left is still exiting, and still holds the broker's port.
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (!/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return true;
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return process.platform !== 'linux';
  }
}

/** The events' kinds, with the error of each failed restart: what a failed assertion on them needs to say. */
function described(events: readonly BrokerEvent[]): string {
  return events
    .map((e) =>
      e.kind === 'restart_failed' ? `restart_failed (${e.error.message}${e.error.cause instanceof Error ? `: ${e.error.cause.message}` : ''})` : e.kind,
    )
    .join(', ');
}

function client(broker: LocalBroker): Kafka {
  return new Kafka({ clientId: 'local-broker-test', brokers: broker.brokers, logLevel: logLevel.ERROR });
}

async function committedTotal(admin: Admin): Promise<number> {
  // Right after a broker restart the group coordinator may still be loading its state: a retriable error.
  let result: Awaited<ReturnType<Admin['fetchOffsets']>> | undefined;
  for (const deadline = Date.now() + 60_000; !result;) {
    try {
      result = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    } catch (err) {
      if (!(err instanceof Error && (err as Error & { retriable?: boolean }).retriable) || Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
  const [topic] = result;
  assert.ok(topic, 'fetchOffsets returned no topic');
  return topic.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs a group consumer that records every message value and commits after each batch. */
async function runRecordingConsumer(kafka: Kafka, received: string[]): Promise<Consumer> {
  // maxWaitTimeInMs: an idle fetch returns after 0.5 s instead of kafkajs' default 5 s
  const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async (payload: EachBatchPayload) => {
      const { batch } = payload;
      const last = batch.messages.at(-1);
      if (!last) return;
      for (const message of batch.messages) {
        received.push(message.value?.toString() ?? '<null>');
        payload.resolveOffset(message.offset);
      }
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
      await payload.heartbeat();
    },
  });
  return consumer;
}

void describe('local Kafka broker', { timeout: 240_000 }, () => {
  void test('jars are installed and the tool classpath points at them', async () => {
    const { version, libDir } = await ensureKafkaInstalled();
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.equal(kafkaToolClasspath(), `${libDir}${path.sep}*`);
  });

  void test('produce, consume with a group via eachBatch, commit, restart the broker, resume', async (t) => {
    const t0 = Date.now();
    const phase = (name: string): void => t.diagnostic(`${name}: +${Date.now() - t0} ms`);
    const dataDir = await tempDataDir();
    const broker1 = await start(dataDir);
    phase(`broker started (${broker1.version}, ${broker1.brokers.join(',')})`);
    assert.equal(broker1.brokers.length, 1);
    assert.match(broker1.brokers[0] ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(isAlive(broker1.pid), true);

    // a second broker on the same data dir is refused while the first one runs
    await assert.rejects(startLocalBroker({ dataDir }), KafkaBrokerAlreadyRunningError);

    let kafka = client(broker1);
    let admin = kafka.admin();
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true }), true);

    // Idempotent: right after the topic is created a partition may still answer "not the leader", and kafkajs retries
    // the whole request, partitions already written included (CI 2026-12-02: 1,068 of 1,000 written); the broker
    // drops the repeats by sequence number.
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const expected = Array.from({ length: MESSAGES }, (_, i) => `cdr-${i}`);
    for (let i = 0; i < MESSAGES; i += 100) {
      await producer.send({
        topic: TOPIC,
        acks: -1,
        messages: expected.slice(i, i + 100).map((value, j) => ({ key: `msisdn-${(i + j) % 97}`, value })),
      });
    }
    await producer.disconnect();
    phase('topic created, 1000 messages produced');

    const offsets = await admin.fetchTopicOffsets(TOPIC);
    assert.equal(offsets.length, 3);
    assert.equal(
      offsets.reduce((sum, p) => sum + Number(p.high), 0),
      MESSAGES,
    );
    assert.ok(
      offsets.every((p) => Number(p.high) > 0),
      'keys should spread over all 3 partitions',
    );

    const received: string[] = [];
    const consumer1 = await runRecordingConsumer(kafka, received);
    await waitFor(`${MESSAGES} messages`, () => received.length >= MESSAGES, 60_000);
    await sleep(1_000); // anything extra (duplicates) would arrive now
    await consumer1.disconnect();
    phase('consumed (incl. 1 s settle)');

    assert.equal(received.length, MESSAGES, 'exactly the produced number of messages');
    assert.equal(new Set(received).size, MESSAGES, 'all distinct');
    assert.deepEqual([...received].sort(), [...expected].sort());
    assert.equal(await committedTotal(admin), MESSAGES);
    await admin.disconnect();

    await stop(broker1);
    phase('broker stopped');

    // --- restart on the same data dir: topic data and committed offsets must survive
    const broker2 = await start(dataDir);
    phase('broker restarted');
    kafka = client(broker2);
    admin = kafka.admin();
    await admin.connect();
    assert.equal(await committedTotal(admin), MESSAGES, 'committed offsets survived the restart');

    const resumed: string[] = [];
    const consumer2 = await runRecordingConsumer(kafka, resumed);
    // wait until the group is joined and the consumer has polled a few times
    let fetches = 0;
    consumer2.on(consumer2.events.FETCH, () => {
      fetches++;
    });
    await waitFor('consumer to fetch after joining', () => fetches >= 3, 60_000);
    assert.deepEqual(resumed, [], 'no already-committed message is redelivered');
    phase('restarted consumer joined and polled, nothing redelivered');

    // and it does resume: new messages arrive, and only those
    const producer2 = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer2.connect();
    const extra = Array.from({ length: 10 }, (_, i) => `cdr-after-restart-${i}`);
    await producer2.send({ topic: TOPIC, acks: -1, messages: extra.map((value, i) => ({ key: `k${i}`, value })) });
    await producer2.disconnect();
    await waitFor('10 new messages', () => resumed.length >= extra.length, 30_000);
    await sleep(500);
    await consumer2.disconnect();
    assert.deepEqual([...resumed].sort(), [...extra].sort());
    assert.equal(await committedTotal(admin), MESSAGES + extra.length);
    await admin.disconnect();

    await stop(broker2);
    phase('resumed with new messages, broker stopped');
  });

  void test('a supervised broker killed with SIGKILL is started again on its port with its data; stop() ends the supervision', async () => {
    // Found from outside: after a kill -9 of its broker, `cdr start` ran on with /healthz 503 for ever.
    const dataDir = await tempDataDir();
    const broker = await start(dataDir);
    const events: BrokerEvent[] = [];
    broker.supervise((e) => events.push(e), { checkEveryMs: 200 });
    const kafka = client(broker);
    const topic = 'cdr.supervised';
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ value: 'before the kill' }] });
    await producer.disconnect();

    const first = broker.pid;
    process.kill(first, 'SIGKILL');
    await waitFor('the broker to run again', () => events.some((e) => e.kind === 'restarted'), 120_000);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['exited', 'restarted'],
      described(events),
    );
    assert.equal(events[0]?.kind === 'exited' && events[0].pid, first);
    assert.notEqual(broker.pid, first);
    assert.equal(isAlive(broker.pid), true);

    // The same address, the same data: what was written before the kill is read after it, and a new record goes in.
    const again = client(broker);
    const producer2 = again.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer2.connect();
    await producer2.send({ topic, acks: -1, messages: [{ value: 'after the restart' }] });
    await producer2.disconnect();
    const seen: string[] = [];
    const consumer = again.consumer({ groupId: 'cdr-supervised', maxWaitTimeInMs: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
      },
    });
    await waitFor('both records', () => seen.length >= 2, 60_000);
    await consumer.disconnect();
    assert.deepEqual(seen, ['before the kill', 'after the restart']);

    // Stopped on purpose: not started again.
    const last = broker.pid;
    await stop(broker);
    await sleep(1_000);
    assert.equal(isAlive(last), false);
    assert.equal(events.length, 2, described(events));
  });

  void test('stop() during a restart that hangs stops the new JVM at once, not after the start timeout', async () => {
    // Found in review: a restart whose JVM never answered held a stop for kafka.sh's whole start timeout (90 s).
    const dataDir = await tempDataDir();
    const broker = await start(dataDir);
    const events: BrokerEvent[] = [];
    broker.supervise((e) => events.push(e), { checkEveryMs: 200 });
    const first = broker.pid;
    process.kill(first, 'SIGKILL');
    // The restart's JVM, frozen as soon as its pid file names it: it never answers, and SIGTERM waits (KAFKA_STOP_TIMEOUT).
    let frozen = 0;
    await waitFor(
      'the restart to launch a JVM',
      () => {
        const pid = Number(existsSync(path.join(dataDir, 'broker.pid')) ? readFileSync(path.join(dataDir, 'broker.pid'), 'utf8').trim() : 0);
        if (pid > 0 && pid !== first && isAlive(pid)) {
          process.kill(pid, 'SIGSTOP');
          frozen = pid;
        }
        return frozen > 0;
      },
      60_000,
    );
    const before = process.env['KAFKA_STOP_TIMEOUT'];
    process.env['KAFKA_STOP_TIMEOUT'] = '2';
    const began = Date.now();
    try {
      await broker.stop();
    } finally {
      if (before === undefined) delete process.env['KAFKA_STOP_TIMEOUT'];
      else process.env['KAFKA_STOP_TIMEOUT'] = before;
    }
    const tookMs = Date.now() - began;
    brokersToStop.delete(broker);
    assert.equal(isAlive(frozen), false, 'the hung JVM is gone');
    assert.ok(tookMs < 30_000, `stop took ${tookMs} ms`);
    // Neither restarted nor a "did not start again" for the start the stop ended (found in review: an error line at a
    // clean shutdown).
    assert.deepEqual(
      events.map((e) => e.kind),
      ['exited'],
    );
  });

  void test("a port in use is refused in one line, without an earlier run's log (found from outside: ~60 lines of it)", async () => {
    const dataDir = await tempDataDir();
    writeFileSync(path.join(dataDir, 'broker.log'), 'EARLIER RUN: started\nEARLIER RUN: stopped\n');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startLocalBroker({ dataDir, port }), (err: Error) => {
        assert.match(err.message, new RegExp(`port 127\\.0\\.0\\.1:${port} is already in use`));
        assert.doesNotMatch(err.message, /EARLIER RUN/);
        return true;
      });
    } finally {
      server.close();
    }
  });

  void test('kafka.sh with KAFKA_OWNER_PID=0 starts a broker without a watchdog, as ownerPid: 0 does (it refused 0)', async () => {
    const dataDir = await tempDataDir();
    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    const script = path.join(import.meta.dirname, '../../../infra/kafka/kafka.sh');
    const started = spawnSync('bash', [script, 'start', dataDir, String(port)], {
      env: { ...process.env, KAFKA_OWNER_PID: '0' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    try {
      assert.equal(started.status, 0, started.stderr);
      assert.equal(existsSync(path.join(dataDir, 'broker.pid')), true);
      assert.equal(existsSync(path.join(dataDir, 'watchdog.pid')), false, 'no watchdog without an owner');
    } finally {
      spawnSync('bash', [script, 'stop', dataDir], { encoding: 'utf8', timeout: 60_000 });
    }
  });

  // Two CI rehearsals (2026-12-05) failed three start attempts in a row. A port that a client connection holds as its
  // local port is bound without listening: the start script's probe (a connect) finds it free, the broker cannot bind
  // it, and the retries took the saved controller port again. Here a connection of our own holds the saved one.
  void test('a saved controller port held by a connection (bound, not listening) is left for another on the retry', async () => {
    const dataDir = await tempDataDir();
    const listener = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    const held = client.localPort!;
    writeFileSync(path.join(dataDir, 'controller.port'), `${held}\n`);
    try {
      const broker = await start(dataDir);
      const controllerPort = Number(readFileSync(path.join(dataDir, 'controller.port'), 'utf8').trim());
      assert.notEqual(controllerPort, held, 'the retry chose another controller port');
      const log = readFileSync(path.join(dataDir, 'broker.log'), 'utf8');
      assert.match(log, new RegExp(`controller 127\\.0\\.0\\.1:${held} =====`), 'the first attempt did try the held port');
      await stop(broker);
    } finally {
      client.destroy();
      listener.close();
    }
  });

  void test('watchdog stops the broker when the owner process dies', async () => {
    const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
    const ownerPid = owner.pid;
    assert.ok(ownerPid, 'spawned owner process');
    try {
      const dataDir = await tempDataDir();
      const broker = await start(dataDir, ownerPid);
      assert.equal(isAlive(broker.pid), true);
      owner.kill('SIGKILL');
      await waitFor(`broker pid ${broker.pid} to exit after its owner died`, () => !isAlive(broker.pid), 45_000);
      await broker.stop(); // no-op now, must not throw
      brokersToStop.delete(broker);
    } finally {
      owner.kill('SIGKILL');
    }
  });
});
