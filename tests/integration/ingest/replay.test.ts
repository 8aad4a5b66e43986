/**
 * A replayed batch is published and counted once. Ingest records each batch's range before writing it and commits
 * its offset after; a crash (or a broker death, or a partition taken away) between the writes and the commit leaves
 * the range to be replayed. The store was always right (the inserts are deduplicated), but the replay used to publish
 * the batch again on cdr.pseudonymised and cdr.dlq and count it again (found from outside: 132,000 records counted for
 * 128,400 produced after a broker kill; 41 records in cdr.dlq twice).
 *
 * Two states, on the real broker and engine:
 * - written, commit lost: ingest runs to the end, stops, and each partition's committed offset is moved back to the
 *   start of its last recorded batch — exactly what a kill between the writes and the commit leaves. A new ingest
 *   replays those batches: nothing is published, nothing counted, the store unchanged;
 * - recorded, not written: the cdr insert of one batch fails for good (the process stops as it would on a crash after
 *   the publish). A new ingest replays it: it is written and counted, so the two runs' counts add up to what was sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import kafkajs from 'kafkajs';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';
import type { Storage } from '../../../services/platform/clickhouse/storage.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import { createBilling } from '../../../services/billing/createBilling.ts';
import type { BillingStats } from '../../../services/billing/billingService.ts';
import type { IngestService, IngestStats } from '../../../services/ingest/ingestService.ts';
import { planTraffic, type PlannedMessage } from '../../../services/generator/trafficPlan.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { produceTraffic } from '../../../services/generator/producer.ts';
import { caughtUp } from '../../support/children.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';
import { assertIndexExactlyTwice, assertNoGapNoRepeat } from '../../support/integrity.ts';

const { Partitioners } = kafkajs;
const PARTITIONS = 3;
const COUNT = 3_000;

interface Expected {
  stored: number;
  duplicate: number;
  dlq: number;
  ids: string[];
}

/**
 * The plan, then at the end of every partition a copy of a record sent earlier (a duplicate judged against the store),
 * a record that cannot be decoded and a new valid record, so that each partition's last batch has a recorded decision,
 * a dead letter (unless a fetch boundary falls just before the last record) and always a record to store — a batch
 * with nothing to store cannot be told written or not (docs/guarantees.md).
 */
async function send(setup: TestSetup, rt: PipelineRuntime, seed: number): Promise<Expected> {
  const options = {
    count: COUNT,
    seed,
    scenario: 'normal' as const,
    duplicates: 0.02,
    malformed: 0.01,
    late: 0,
    startTime: Date.now() - 3_600_000,
    eventsPerSecond: 20,
  };
  const plan: PlannedMessage[] = [...planTraffic(options)];
  const e: Expected = { stored: 0, duplicate: 0, dlq: 0, ids: [] };
  for (const m of plan) {
    if (m.kind === 'unique') {
      e.stored++;
      e.ids.push(m.cdrId!);
    } else if (m.kind === 'duplicate') e.duplicate++;
    else e.dlq++;
  }
  const kafka = requireKafka(rt);
  const topic = setup.config.kafka.topics.raw;
  await produceTraffic(kafka, { ...options, topic, rate: 0 });
  const copied = plan.find((m) => m.kind === 'unique')!;
  const fresh = new TrafficGenerator({ seed: seed + 1, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 20 }).take(PARTITIONS);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++) {
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { key: copied.key, value: copied.value, partition: p },
        { key: `garbage-${p}`, value: Buffer.concat([Buffer.from([0x03]), randomBytes(64)]), partition: p },
        { key: fresh[p]!.cdr_id, value: encodeCdrEvent(fresh[p]!), partition: p },
      ],
    });
  }
  await producer.disconnect();
  e.duplicate += PARTITIONS;
  e.dlq += PARTITIONS;
  e.stored += PARTITIONS;
  e.ids.push(...fresh.map((f) => f.cdr_id));
  return e;
}

async function runToTheEnd(setup: TestSetup, rt: PipelineRuntime, ingest: IngestService, beforeStop?: () => void): Promise<void> {
  const kafka = requireKafka(rt);
  await ingest.start();
  await waitFor(
    'ingest to commit the whole topic',
    () => caughtUp(kafka, setup.config.ingest.groupId, setup.config.kafka.topics.raw),
    120_000,
    200,
    () => ingest.stats,
  );
  beforeStop?.();
  await ingest.stop();
}

async function topicSize(rt: PipelineRuntime, topic: string): Promise<number> {
  return (await readTopic(requireKafka(rt), topic)).length;
}

/** What a kill between the writes and the commit leaves: each partition's last recorded batch of `group` uncommitted. */
async function rewindToLastBatches(rt: PipelineRuntime, group: string, topic: string): Promise<number> {
  const { storage } = requireStorage(rt);
  const last = await storage.query<{ partition: number; from: string }>(
    `SELECT partition, max(from_offset) AS from FROM ${storage.table('ingest_batches')}
     WHERE consumer_group = {g:String} AND topic = {t:String} GROUP BY partition`,
    { g: group, t: topic },
  );
  const admin = requireKafka(rt).admin();
  await admin.connect();
  await admin.setOffsets({ groupId: group, topic, partitions: last.map((l) => ({ partition: Number(l.partition), offset: l.from })) });
  await admin.disconnect();
  return last.length;
}

function sum(a: IngestStats, b: IngestStats): Pick<IngestStats, 'stored' | 'duplicate' | 'dlq' | 'late'> {
  return { stored: a.stored + b.stored, duplicate: a.duplicate + b.duplicate, dlq: a.dlq + b.dlq, late: a.late + b.late };
}

describe('a replayed batch is published and counted once', () => {
  describe('written, commit lost', () => {
    let setup: TestSetup;
    let rt: PipelineRuntime;
    let expected: Expected;
    let first: IngestStats;
    let second: IngestStats;
    let replayed = 0;
    const sizes = { pseudonymised: [0, 0], dlq: [0, 0] };

    before(async () => {
      setup = testSetup({ CDR_TOPIC_PARTITIONS: String(PARTITIONS), CDR_INGEST_MAX_BATCH: '300' });
      rt = await openRuntime(setup.config, { log: createLogger('info', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
      expected = await send(setup, rt, 4242);
      const one = createIngest(rt);
      await runToTheEnd(setup, rt, one);
      first = one.stats;
      const { topics } = setup.config.kafka;
      sizes.pseudonymised[0] = await topicSize(rt, topics.pseudonymised);
      sizes.dlq[0] = await topicSize(rt, topics.dlq);

      replayed = await rewindToLastBatches(rt, setup.config.ingest.groupId, topics.raw);

      const two = createIngest(rt);
      await runToTheEnd(setup, rt, two);
      second = two.stats;
      sizes.pseudonymised[1] = await topicSize(rt, topics.pseudonymised);
      sizes.dlq[1] = await topicSize(rt, topics.dlq);
    });

    after(async () => {
      await rt?.close();
      setup?.cleanup();
    });

    it('the first run counted everything sent', () => {
      assert.deepEqual(
        { stored: first.stored, duplicate: first.duplicate, dlq: first.dlq, late: first.late },
        { stored: expected.stored, duplicate: expected.duplicate, dlq: expected.dlq, late: 0 },
      );
    });

    it('the replay of the written batches counts nothing again', () => {
      assert.equal(replayed, PARTITIONS, 'a recorded batch for every partition');
      assert.ok(second.batches >= PARTITIONS, `the second run replayed ${second.batches} batches`);
      assert.deepEqual(
        { stored: second.stored, duplicate: second.duplicate, dlq: second.dlq, late: second.late },
        { stored: 0, duplicate: 0, dlq: 0, late: 0 },
      );
    });

    it('publishes nothing again on cdr.pseudonymised or cdr.dlq', () => {
      // At least: a batch retried on a loaded machine publishes again (at least once); the replay adds nothing.
      assert.ok(sizes.pseudonymised[0]! >= expected.stored, `${sizes.pseudonymised[0]} published for ${expected.stored} stored`);
      assert.equal(sizes.pseudonymised[1], sizes.pseudonymised[0]);
      assert.ok(sizes.dlq[0]! >= expected.dlq, `${sizes.dlq[0]} dead letters for ${expected.dlq}`);
      assert.equal(sizes.dlq[1], sizes.dlq[0]);
    });

    it('the store holds every record exactly once', async () => {
      const { storage } = requireStorage(rt);
      await assertNoGapNoRepeat(storage, 'cdr', 'cdr_id', expected.ids);
      await assertIndexExactlyTwice(storage, expected.stored);
    });
  });

  describe('recorded, not written', () => {
    let setup: TestSetup;
    let rt: PipelineRuntime;
    let expected: Expected;
    let first: IngestStats;
    let second: IngestStats;
    let refused = 0;
    let landedButFailed = 0;
    let pseudonymisedIds = new Set<string>();
    let deadLetterOffsets = new Set<string>();
    let lingeringClaims = -1;

    before(async () => {
      setup = testSetup({ CDR_TOPIC_PARTITIONS: String(PARTITIONS), CDR_INGEST_MAX_BATCH: '300' });
      rt = await openRuntime(setup.config, { log: createLogger('info', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
      expected = await send(setup, rt, 4343);
      const { storage } = requireStorage(rt);
      // The real engine, but the fourth cdr insert fails for good, after its batch was recorded, published and its
      // vault rows written: the loop stops as a process would that died there.
      let cdrInserts = 0;
      let failedToken: unknown;
      const failing: Storage = {
        ...storage,
        insert: async (table, rows, settings, shape) => {
          if (table === 'cdr' && ++cdrInserts === 4) {
            refused++;
            failedToken = settings?.['insert_deduplication_token'];
            throw new PipelineError('invariant_broken', 'injected: the process dies before this cdr insert');
          }
          return storage.insert(table, rows, settings, shape);
        },
      };
      const one = createIngest(rt, { storage: failing });
      await one.start();
      await waitFor(
        'the injected failure to stop ingest',
        () => one.status().state === 'failed',
        60_000,
        50,
        () => one.stats,
      );
      await one.stop();
      first = one.stats;

      // The replay of that batch meets the other half-way fault: its cdr insert lands, but the call reports a failure
      // (a server's answer lost on the way). The retry finds the rows stored; it must still count them, once.
      const landsButFails: Storage = {
        ...storage,
        insert: async (table, rows, settings, shape) => {
          await storage.insert(table, rows, settings, shape);
          if (table === 'cdr' && landedButFailed === 0 && failedToken !== undefined && settings?.['insert_deduplication_token'] === failedToken) {
            landedButFailed++;
            throw new PipelineError('storage_unavailable', 'injected: the insert landed but its answer was lost');
          }
        },
      };
      const two = createIngest(rt, { storage: landsButFails });
      // Every batch is stored by now: no attempt's claims may be left behind (the failed attempt's among them).
      await runToTheEnd(setup, rt, two, () => {
        lingeringClaims = 0;
        for (let p = 0; p < PARTITIONS; p++) lingeringClaims += two.claimedRanges(p);
      });
      second = two.stats;
      const { topics } = setup.config.kafka;
      pseudonymisedIds = new Set((await readTopic(requireKafka(rt), topics.pseudonymised)).map((m) => String(m.headers?.['cdr_id'])));
      deadLetterOffsets = new Set(
        (await readTopic(requireKafka(rt), topics.dlq)).map(
          (m) => `${String(m.headers?.['__connect.errors.partition'])}/${String(m.headers?.['__connect.errors.offset'])}`,
        ),
      );
    });

    after(async () => {
      await rt?.close();
      setup?.cleanup();
    });

    it('stopped the first run short of the end, and the replay met a write that landed but failed', () => {
      assert.equal(refused, 1);
      assert.equal(landedButFailed, 1, 'the replayed batch was written by the second run');
      assert.equal(lingeringClaims, 0, 'the attempt whose write failed left no claims behind once its retry was stored');
      assert.ok(first.stored < expected.stored, `the first run stored ${first.stored} of ${expected.stored}`);
    });

    it('the two runs count together exactly what was sent', () => {
      assert.deepEqual(sum(first, second), { stored: expected.stored, duplicate: expected.duplicate, dlq: expected.dlq, late: 0 });
    });

    it('published every stored record and every dead letter at least once', () => {
      assert.deepEqual(
        expected.ids.filter((id) => !pseudonymisedIds.has(id)),
        [],
      );
      assert.equal(deadLetterOffsets.size, expected.dlq);
    });

    it('the store holds every record exactly once', async () => {
      const { storage } = requireStorage(rt);
      await assertNoGapNoRepeat(storage, 'cdr', 'cdr_id', expected.ids);
      await assertIndexExactlyTwice(storage, expected.stored);
    });
  });

  describe('billing: written, commit lost', () => {
    let setup: TestSetup;
    let rt: PipelineRuntime;
    let expected: Expected;
    let first: BillingStats;
    let second: BillingStats;
    let replayed = 0;

    const runBilling = async (): Promise<BillingStats> => {
      const billing = await createBilling(rt);
      await billing.service.start();
      const { groupId } = setup.config.billing;
      await waitFor(
        'billing to commit the whole topic',
        () => caughtUp(requireKafka(rt), groupId, setup.config.kafka.topics.pseudonymised),
        120_000,
        200,
        () => billing.service.stats,
      );
      await billing.service.stop();
      billing.plans.unwatch();
      return billing.service.stats;
    };

    before(async () => {
      setup = testSetup({ CDR_TOPIC_PARTITIONS: String(PARTITIONS), CDR_INGEST_MAX_BATCH: '300', CDR_BILLING_MAX_BATCH: '300' });
      rt = await openRuntime(setup.config, { log: createLogger('info', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
      expected = await send(setup, rt, 4444);
      await runToTheEnd(setup, rt, createIngest(rt));
      first = await runBilling();
      replayed = await rewindToLastBatches(rt, setup.config.billing.groupId, setup.config.kafka.topics.pseudonymised);
      second = await runBilling();
    });

    after(async () => {
      await rt?.close();
      setup?.cleanup();
    });

    it('the first run rated every stored record once', () => {
      assert.equal(first.rated + first.unrated, expected.stored);
      assert.equal(first.duplicate, 0);
    });

    it('the replay of the written batches counts nothing again', () => {
      assert.equal(replayed, PARTITIONS, 'a recorded batch for every partition');
      assert.ok(second.batches >= PARTITIONS, `the second run replayed ${second.batches} batches`);
      assert.deepEqual(
        { rated: second.rated, unrated: second.unrated, duplicate: second.duplicate, dlq: second.dlq },
        { rated: 0, unrated: 0, duplicate: 0, dlq: 0 },
      );
    });

    it('billing_rated holds every record once', async () => {
      const { storage } = requireStorage(rt);
      await assertNoGapNoRepeat(storage, 'billing_rated', 'cdr_id', expected.ids);
    });
  });
});
