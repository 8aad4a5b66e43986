/**
 * Health tells the truth, on the real broker and engine, through `/healthz` as operators read it:
 * - a consumer that makes no progress while records wait is `degraded`, and lag is the broker's (it grows while
 *   nothing is fetched) — also as the metric `cdr_ingest_lag_records`;
 * - a storage outage is `degraded` with its reason; recovery is `ok` again;
 * - an error no retry can fix stops the consumer: `down`, with the reason, and the composition root is told once;
 * - the ingest process exits non-zero when its consumer stops for good.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import kafkajs, { type Kafka } from 'kafkajs';
import { PipelineError } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import type { Storage } from '../../../services/platform/clickhouse/index.ts';
import { HealthRegistry, opsRoutes } from '../../../services/platform/http/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { exited, startChild } from '../../support/children.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

interface Report {
  status: string;
  reasons: string[];
  components: { ingest: { lag: number; state: string } };
}

describe('health tells the truth', () => {
  const setup = testSetup({ CDR_CONSUMER_STALL_MS: '1500', CDR_INGEST_MAX_BATCH: '200' });
  const gen = new TrafficGenerator({ seed: 5, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 20 });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  let app: FastifyInstance;
  let mode: 'ok' | 'outage' | 'rejected' = 'ok';
  const fatal: PipelineError[] = [];

  const produce = async (n: number): Promise<void> => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: gen.take(n).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
  };
  const healthz = async (): Promise<{ code: number; body: Report }> => {
    const res = await app.inject('/healthz');
    return { code: res.statusCode, body: res.json<Report>() };
  };

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    kafka = requireKafka(rt);
    const { storage } = requireStorage(rt);
    // The real engine behind a switch: an outage (retryable), or a refusal no retry fixes (a schema error).
    const switched: Storage = {
      ...storage,
      insert: async (table, rows, settings, shape) => {
        if (table === 'cdr' && mode === 'outage') throw new PipelineError('storage_unavailable', 'injected outage: ClickHouse unreachable');
        if (table === 'cdr' && mode === 'rejected')
          throw new PipelineError('storage_rejected', 'injected: ClickHouse insert into cdr failed: Code: 16. No such column');
        return storage.insert(table, rows, settings, shape);
      },
    };
    ingest = createIngest(rt, { storage: switched, onFatal: (err) => fatal.push(err) });
    const health = new HealthRegistry();
    health.register('ingest', () => ingest.health());
    app = Fastify();
    await app.register(opsRoutes, { metrics: rt.metrics, health });
    await produce(300);
    await ingest.start();
    await waitFor('the first records stored', () => ingest.stats.stored >= 300);
  });

  after(async () => {
    await app?.close();
    await ingest?.stop();
    await rt?.close();
  });

  it('is ok while the consumer keeps up', async () => {
    await waitFor('lag read from the broker', () => ingest.status().lagAt !== undefined && ingest.status().lag === 0, 20_000, 100);
    const h = await healthz();
    assert.equal(h.code, 200);
    assert.equal(h.body.status, 'ok');
  });

  it('is degraded when nothing is committed while records wait, with the broker lag as a metric', async () => {
    ingest.loop.pause();
    await produce(250);
    await waitFor('the stall to show', async () => (await healthz()).code === 503, 20_000, 200);
    const h = await healthz();
    assert.equal(h.body.status, 'degraded');
    assert.ok(
      h.body.reasons.some((r) => /ingest: no batch committed for \d+ s while 250 records wait/.test(r)),
      h.body.reasons.join(' | '),
    );
    assert.equal(h.body.components.ingest.lag, 250);
    const metrics = await rt.metrics.registry.metrics();
    const lag = [...metrics.matchAll(/cdr_ingest_lag_records\{partition="\d+"\} (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
    assert.equal(lag, 250);
    // And how old that reading is, at this scrape (the lag is read every few seconds while the broker answers).
    const age = Number(/^cdr_consumer_lag_age_seconds\{consumer="ingest"\} (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(age >= 0 && age < 30, `lag age ${age} s`);
    ingest.loop.resume();
    await waitFor('ok again after catching up', async () => (await healthz()).code === 200, 30_000, 200);
  });

  it('counts a stall from when records began to wait, not from the last commit before an idle spell', async () => {
    // Found from outside (2026-12-06): the first burst after 72 s idle was "no batch committed for 72 s while 73658
    // records wait" 2 s after it arrived. Here: 6 s idle (the stall threshold is 1.5 s), then records that wait.
    await waitFor('caught up', () => ingest.status().lag === 0, 20_000, 100);
    await new Promise((r) => setTimeout(r, 6_000));
    ingest.loop.pause();
    await produce(40);
    await waitFor('the stall to show', async () => (await healthz()).code === 503, 20_000, 100);
    const reason = (await healthz()).body.reasons.find((r) => /no batch committed for/.test(r)) ?? '';
    const seconds = Number(/no batch committed for (\d+) s/.exec(reason)?.[1]);
    assert.ok(seconds <= 3, reason);
    ingest.loop.resume();
    await waitFor('ok again after catching up', async () => (await healthz()).code === 200, 30_000, 200);
  });

  it('is degraded with the reason during a storage outage, ok again after it', async () => {
    mode = 'outage';
    await produce(50);
    await waitFor('the outage to show', async () => (await healthz()).code === 503, 20_000, 100);
    const h = await healthz();
    assert.equal(h.body.status, 'degraded');
    assert.ok(
      h.body.reasons.some((r) => r.includes('storage_unavailable')),
      h.body.reasons.join(' | '),
    );
    mode = 'ok';
    await waitFor('ok after the outage', async () => (await healthz()).code === 200, 30_000, 200);
    assert.equal(fatal.length, 0);
  });

  it('is down with the reason when an error no retry fixes stops the consumer, and says so once', async () => {
    mode = 'rejected';
    await produce(20);
    await waitFor('the consumer to stop', () => ingest.status().state === 'failed', 20_000, 100);
    const h = await healthz();
    assert.equal(h.code, 503);
    assert.equal(h.body.status, 'down');
    assert.ok(
      h.body.reasons.some((r) => r.includes('failed: storage_rejected')),
      h.body.reasons.join(' | '),
    );
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]!.code, 'storage_rejected');
  });
});

describe('an idle consumer', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let ingest: IngestService;
  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('says how many partitions it holds before any record of them arrives', async () => {
    // Found from outside: `partitions: 0` for a member that held every partition but had fetched nothing yet.
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('the group join', () => ingest.status().joined, 60_000, 100);
    const h = ingest.health();
    assert.equal(ingest.status().batches, 0, 'nothing was consumed');
    assert.equal((h.detail as { partitions: number }).partitions, setup.config.kafka.partitions);
    assert.ok(setup.config.kafka.partitions > 1, 'the check means something only with several partitions');
    await ingest.stop();
    assert.equal(ingest.status().partitions, 0, 'a stopped member holds nothing');
  });
});

describe('a consumer group shared with another process', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let foreign: kafkajs.Consumer | undefined;
  after(async () => {
    await foreign?.disconnect();
    await ingest?.stop();
    await rt?.close();
  });

  it('is degraded, naming the cause, while this process stores into an embedded engine; ok again once it is alone', async () => {
    // Found from outside: a second `cdr start` with another data directory on the same KAFKA_BROKERS joined the same
    // groups and took half the partitions into its own store; both said ok.
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('the group join', () => ingest.status().joined, 60_000, 100);
    assert.equal(ingest.health().status, 'ok');
    const embedded = requireStorage(rt).storage.embedded;
    // Another process's member, as a second `cdr start` would add it.
    foreign = createKafkaFor(setup.config.kafka.brokers!).consumer({ groupId: setup.config.ingest.groupId, sessionTimeout: 10_000 });
    await foreign.connect();
    await foreign.subscribe({ topic: setup.config.kafka.topics.raw, fromBeginning: true });
    let foreignJoined = false;
    foreign.on(foreign.events.GROUP_JOIN, () => (foreignJoined = true));
    await foreign.run({ eachBatch: async () => undefined, autoCommit: false });
    await waitFor('the other member to join', () => foreignJoined, 60_000, 100);
    if (embedded) {
      await waitFor('health to say the group is shared', () => ingest.health().status === 'degraded', 30_000, 200);
      const reasons = ingest.health().reasons ?? [];
      assert.ok(
        reasons.some((r) => r.includes(`consumer group ${setup.config.ingest.groupId} has 1 member(s) in other processes`) && r.includes('CDR_INGEST_GROUP')),
        reasons.join(' | '),
      );
      await foreign.disconnect();
      foreign = undefined;
      await waitFor('ok once alone again', () => ingest.health().status === 'ok', 60_000, 200);
    } else {
      // A ClickHouse server is one store for every member: sharing the group is how ingest scales out.
      await waitFor('the rebalance to settle', () => ingest.status().joined && ingest.status().partitions < setup.config.kafka.partitions, 30_000, 200);
      assert.equal(ingest.health().status, 'ok', JSON.stringify(ingest.health()));
    }
  });
});

describe('an ingest process that cannot go on', () => {
  const setup = testSetup();
  it('exits non-zero, and says why', async () => {
    const logFile = join(setup.dataDir, 'child.log');
    // A first run with one master key creates this month's key; the second run gets another master key, which cannot
    // open it: no retry can fix that, and start-up refuses it (exit 2) before consuming anything.
    const first = startChild(join(import.meta.dirname, '../../../services/ingest/main.ts'), setup, logFile, () => undefined);
    const kafka = createKafkaFor(setup.config.kafka.brokers!);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const gen = new TrafficGenerator({ seed: 6, scenario: 'normal', startTime: Date.now() - 60_000 });
    await producer.send({ topic: setup.config.kafka.topics.raw, messages: gen.take(20).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await waitFor('the first run to store them', () => logHas(logFile, 'ingest started'), 60_000, 200);
    await new Promise((r) => setTimeout(r, 3000));
    first.kill('SIGTERM');
    assert.equal(await exited(first), 0);
    await producer.send({ topic: setup.config.kafka.topics.raw, messages: gen.take(20).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
    const second = startChild(join(import.meta.dirname, '../../../services/ingest/main.ts'), setup, logFile, () => undefined, {
      CDR_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited(second), new Promise<string>((r) => (timer = setTimeout(() => r('still running after 60 s'), 60_000)))]);
    clearTimeout(timer);
    if (code === 'still running after 60 s') second.kill('SIGKILL');
    assert.equal(code, 2);
    assert.ok(logHas(logFile, 'does not open the month key'), 'the process names the cause');
  });
});

function createKafkaFor(brokers: readonly string[]): Kafka {
  return new kafkajs.Kafka({ clientId: 'health-test', brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING });
}

function logHas(file: string, text: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes(text);
  } catch {
    return false;
  }
}
