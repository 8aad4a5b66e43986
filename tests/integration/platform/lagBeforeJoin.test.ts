/**
 * The lag is read from the broker from the start, before the consumer has joined its group. Found from outside
 * (2026-12-06): after an unclean stop the join waits out the old member's session (30-45 s), and meanwhile
 * `cdr_ingest_lag_records` was absent from /metrics and `/healthz` said lag 0 while 30,600 records waited. Here a fresh
 * group's join (the broker's initial rebalance delay, ~3 s) stands in for that wait.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { testSetup } from '../../support/testEnv.ts';

describe('lag before the join', { timeout: 120_000 }, () => {
  const setup = testSetup();
  let rt: PipelineRuntime | undefined;
  let ingest: IngestService | undefined;
  after(async () => {
    await ingest?.stop();
    await rt?.close();
    setup.cleanup();
  });

  it('is read from the broker while the consumer still waits to join its group', async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    const gen = new TrafficGenerator({ seed: 9, scenario: 'normal', startTime: Date.now() - 60_000, ratePerSecond: 20 });
    const producer = requireKafka(rt).producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: gen.take(120).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
    // A member of the group that holds a batch does not rejoin until it is done: the join waits on it, as on an old
    // member's session after a crash.
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let holding = false;
    const old = requireKafka(rt).consumer({ groupId: setup.config.ingest.groupId, rebalanceTimeout: 60_000, sessionTimeout: 30_000 });
    await old.connect();
    await old.subscribe({ topic: setup.config.kafka.topics.raw, fromBeginning: true });
    await old.run({
      eachBatchAutoResolve: false,
      autoCommit: false,
      eachBatch: async () => {
        holding = true;
        await held;
      },
    });
    while (!holding) await new Promise((r) => setTimeout(r, 20));
    ingest = createIngest(rt, {});
    const started = ingest.start();
    setTimeout(() => {
      release();
      void old.disconnect();
    }, 4_000);
    let lagBeforeJoin: number | undefined;
    while (!ingest.status().joined) {
      const s = ingest.status();
      if (s.lagAt !== undefined && lagBeforeJoin === undefined) lagBeforeJoin = s.lag;
      await new Promise((r) => setTimeout(r, 20));
    }
    await started;
    assert.equal(lagBeforeJoin, 120, 'the records waiting, read before the join');
  });
});
