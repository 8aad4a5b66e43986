/**
 * A real Kafka cluster: three KRaft nodes on loopback (infra/kafka/localBroker.ts startLocalCluster), topics with
 * replication factor 3 and min.insync.replicas 2. While records keep arriving, the broker that leads a partition of
 * cdr.raw is killed with SIGKILL mid-stream and restarted a few seconds later. Ingest never stops, and every CDR is
 * stored exactly once (no gap, no repeat), indexed twice and published.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs, { type Kafka } from 'kafkajs';
import { startLocalCluster, type LocalCluster } from '../../infra/kafka/localBroker.ts';
import { TrafficGenerator } from '../../services/generator/index.ts';
import { createIngest } from '../../services/ingest/createIngest.ts';
import type { IngestService } from '../../services/ingest/ingestService.ts';
import { PartitionedSender } from '../../services/platform/kafka/index.ts';
import { createLogger } from '../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../services/platform/runtime/index.ts';
import { caughtUp } from '../support/children.ts';
import { assertIndexExactlyTwice, assertNoGapNoRepeat, sendThroughLeaderChanges } from '../support/integrity.ts';
import { readTopic, waitFor } from '../support/pipelineProbe.ts';
import { testSetup } from '../support/testEnv.ts';

const { Partitioners } = kafkajs;
const BURSTS = 40;
const PER_BURST = 400;

describe('ingest on a 3-node cluster survives the loss of a partition leader', () => {
  const clusterDir = mkdtempSync(join(tmpdir(), 'cdr-test-cluster-'));
  let cluster: LocalCluster;
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  const ids: string[] = [];
  const states = new Set<string>();
  let killed = -1;
  let storedWhenKilled = 0;
  let topicReplicas: number[] = [];
  let minIsr = '';
  let sampler: NodeJS.Timeout | undefined;

  before(async () => {
    cluster = await startLocalCluster({ dataDir: clusterDir, nodes: 3 });
    const setup = testSetup({
      KAFKA_BROKERS: cluster.brokers.join(','),
      CDR_TOPIC_PARTITIONS: '3',
      CDR_INGEST_MAX_BATCH: '500',
      CDR_INGEST_SESSION_TIMEOUT_MS: '10000',
    });
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    kafka = requireKafka(rt);
    const raw = setup.config.kafka.topics.raw;
    const admin = kafka.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [raw] });
    topicReplicas = meta.topics[0]!.partitions.map((p) => p.replicas.length);
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2 /* TOPIC */, name: raw, configNames: ['min.insync.replicas'] }],
    });
    minIsr = configs.resources[0]!.configEntries[0]!.configValue;

    ingest = createIngest(rt);
    await ingest.start();
    sampler = setInterval(() => states.add(ingest.status().state), 50);

    const gen = new TrafficGenerator({ seed: 333, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 100 });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, retry: { retries: 20 } });
    await producer.connect();
    // One send per partition, as ingest's publisher and the generator do (services/platform/kafka/partitionedSend.ts):
    // kafkajs's own multi-partition send can drop the partition whose leader is killed mid-send.
    const sender = new PartitionedSender(kafka, () => producer);
    for (let b = 0; b < BURSTS; b++) {
      const events = gen.take(PER_BURST);
      ids.push(...events.map((e) => e.cdr_id));
      await sendThroughLeaderChanges(sender, raw, events, 10);
      if (b === 12) {
        await waitFor('ingest under way', () => ingest.stats.stored > 2000, 60_000, 50);
        const leaders = await admin.fetchTopicMetadata({ topics: [raw] });
        killed = leaders.topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
        storedWhenKilled = ingest.stats.stored;
        await cluster.nodes.find((n) => n.id === killed)!.kill('SIGKILL');
      }
      if (b === 24) await cluster.nodes.find((n) => n.id === killed)!.restart();
      await new Promise((r) => setTimeout(r, 100));
    }
    await sender.close();
    await producer.disconnect();
    await admin.disconnect();
    try {
      await waitFor(
        'ingest to catch up',
        () => {
          // A stopped consumer never catches up: say so now rather than after the whole wait.
          const state = ingest.status().state;
          if (state === 'failed' || state === 'stopped') throw new Error(`ingest ${state} before catching up`);
          return caughtUp(kafka, setup.config.ingest.groupId, raw);
        },
        240_000,
        500,
      );
    } catch (err) {
      // Say where it stood: the loop's own view, its health, and the group's offsets against the log ends.
      const a = kafka.admin();
      await a.connect();
      const high = await a.fetchTopicOffsets(raw).catch(() => []);
      const committed = await a.fetchOffsets({ groupId: setup.config.ingest.groupId, topics: [raw] }).catch(() => []);
      const meta = await a.fetchTopicMetadata({ topics: [raw] }).catch(() => ({ topics: [] }));
      await a.disconnect();
      throw new Error(
        `${(err as Error).message}; killed broker ${killed}; states ${[...states].join(',')}; status ${JSON.stringify(ingest.status())}; ` +
          `health ${JSON.stringify(ingest.health())}; stats ${JSON.stringify(ingest.stats)}; high ${JSON.stringify(high)}; committed ${JSON.stringify(committed)}; ` +
          `leaders ${JSON.stringify(meta.topics[0]?.partitions.map((p) => [p.partitionId, p.leader, p.isr]))}`,
        { cause: err },
      );
    }
  });

  after(async () => {
    clearInterval(sampler);
    await ingest?.stop();
    await rt?.close();
    await cluster?.stop();
    rmSync(clusterDir, { recursive: true, force: true });
  });

  it('runs its topics with replication factor 3 and min.insync.replicas 2', () => {
    assert.deepEqual(topicReplicas, [3, 3, 3]);
    assert.equal(minIsr, '2');
  });

  it('lost the leader of partition 0 mid-stream, and ingest never stopped', () => {
    assert.ok(killed >= 1, 'a leader was killed');
    assert.ok(storedWhenKilled > 0 && storedWhenKilled < ids.length);
    assert.ok(!states.has('failed') && !states.has('stopped'), [...states].join(','));
  });

  // Until 2026-12-02 this was reported as TODO: in 3 of 6 CI runs records acknowledged by a kafkajs producer across the
  // killed leader were missing (from cdr.raw: the test's producer; from cdr.pseudonymised: ingest's publisher). Cause:
  // kafkajs's multi-partition send skips, on its own retry, a partition whose leader moved to a broker that had
  // already answered. Both producers now send one partition per send (ADR 0030): 9 of 9 runs green, against 2 of 4
  // failing before, on 2026-12-02.
  it('stores every CDR exactly once, indexes it twice and publishes it', async () => {
    const { storage } = requireStorage(rt);
    await assertNoGapNoRepeat(storage, 'cdr', 'cdr_id', ids);
    await assertIndexExactlyTwice(storage, ids.length);
    // Right after a leader change the new leader's high watermark can trail its log until the followers catch up, so
    // a read bounded by it may stop short: read again (for up to a minute) before calling anything missing.
    let missing: string[] = ids;
    let read: Awaited<ReturnType<typeof readTopic>> = [];
    for (const deadline = Date.now() + 60_000; ;) {
      read = await readTopic(kafka, rt.config.kafka.topics.pseudonymised);
      const published = new Set(read.map((m) => String(m.headers!['cdr_id'])));
      missing = ids.filter((id) => !published.has(id));
      if (missing.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    if (missing.length > 0) {
      // Say where the missing ones came from and what the topic holds, so a failure can be diagnosed from CI output.
      const where = await storage.query<{ src_partition: number; first: string; last: string; n: string; ingested_from: string; ingested_to: string }>(
        `SELECT src_partition, min(toUInt64(src_offset)) AS first, max(toUInt64(src_offset)) AS last, count() AS n,
                toString(min(ingested_at)) AS ingested_from, toString(max(ingested_at)) AS ingested_to
         FROM ${storage.table('cdr')} WHERE cdr_id IN {ids:Array(String)} GROUP BY src_partition`,
        { ids: missing },
      );
      const a = kafka.admin();
      await a.connect();
      const offsets = await a.fetchTopicOffsets(rt.config.kafka.topics.pseudonymised).finally(() => a.disconnect());
      assert.fail(
        `${missing.length} stored records were not found on ${rt.config.kafka.topics.pseudonymised}: raw positions ${JSON.stringify(where)}; ` +
          `topic offsets ${JSON.stringify(offsets)}; messages read ${read.length}; killed broker ${killed} at ${storedWhenKilled} stored`,
      );
    }
  });
});
