/**
 * Crash test: a child ingest process is killed with SIGKILL several times mid-stream and restarted on the
 * same data directory. At the end every CDR is stored exactly once in cdr, the subscriber index and the
 * vault — no gap, no repeat — and nothing is left behind in Kafka.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { openStorage, type Storage } from '../../services/platform/clickhouse/storage.ts';
import { createKafka, ensureTopics, pipelineTopics } from '../../services/platform/kafka/kafkaClient.ts';
import { createLogger } from '../../services/platform/observability/logger.ts';
import { planTraffic, type PlannedMessage } from '../../services/generator/trafficPlan.ts';
import { produceTraffic } from '../../services/generator/producer.ts';
import { identifierNeedles, leaks, readTopic, waitFor } from '../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../support/testEnv.ts';
import { caughtUp, exited, startChild } from '../support/children.ts';
import { assertIndexExactlyTwice, assertNoGapNoRepeat } from '../support/integrity.ts';

const INGEST_MAIN = join(import.meta.dirname, '../../services/ingest/main.ts');
const COUNT = 24_000;
const KILLS = 4;
const planOptions = {
  count: COUNT,
  seed: 777,
  scenario: 'mixed' as const,
  duplicates: 0.03,
  malformed: 0.01,
  late: 0.01,
  startTime: Date.now() - 7_200_000,
  eventsPerSecond: 5,
};

interface ChildStats {
  batches: number;
  stored: number;
}

describe('ingest survives kill -9 mid-stream', () => {
  let setup: TestSetup;
  let kafka: Kafka;
  let storage: Storage;
  let logFile: string;
  const plan: PlannedMessage[] = [...planTraffic(planOptions)];
  const expected = { unique: 0, duplicate: 0, malformed: 0, late: 0 };
  for (const m of plan) expected[m.kind]++;
  const kills: { batches: number; delayMs: number }[] = [];

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '300', CDR_INGEST_SESSION_TIMEOUT_MS: '6000', CDR_INGEST_MAX_BYTES_PER_PARTITION: '131072' });
    logFile = join(setup.dataDir, 'ingest-child.log');
    const log = createLogger('warn');
    kafka = createKafka(setup.config.kafka.brokers!, 'crash-test', log);
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, pipelineTopics(setup.config.kafka));
    await admin.disconnect();
    await produceTraffic(kafka, { ...planOptions, topic: setup.config.kafka.topics.raw, rate: 0 });

    let latest: ChildStats = { batches: 0, stored: 0 };
    for (let k = 0; k < KILLS; k++) {
      latest = { batches: 0, stored: 0 };
      const child = startChild<ChildStats>(INGEST_MAIN, setup, logFile, (s) => (latest = s));
      const target = 2 + Math.floor(Math.random() * 8);
      const delayMs = Math.floor(Math.random() * 150);
      await waitFor(`child ${k} to process ${target} batches`, () => latest.batches >= target || child.exitCode !== null, 120_000, 20);
      assert.equal(child.exitCode, null, `child ${k} died on its own; see ${logFile}`);
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      assert.equal(await exited(child), 'SIGKILL');
      kills.push({ batches: latest.batches, delayMs });
    }
    // Its first stats message comes after its signal handlers are installed: a SIGTERM before that would kill it, not
    // stop it (seen in CI when the children before had already rated the whole topic, so it was caught up at once).
    let lastSpoke = false;
    const last = startChild<ChildStats>(INGEST_MAIN, setup, logFile, (s) => ((latest = s), (lastSpoke = true)));
    await waitFor('the last child to start', () => lastSpoke || last.exitCode !== null, 120_000, 20);
    await waitFor('the last child to catch up with the topic', () => caughtUp(kafka, setup.config.ingest.groupId, setup.config.kafka.topics.raw), 240_000, 500);
    last.kill('SIGTERM');
    assert.equal(await exited(last), 0, 'graceful stop exits 0');
    storage = await openStorage(setup.config.clickhouse, setup.config.dataDir);
  });

  after(async () => {
    await storage?.close();
    setup?.cleanup();
  });

  it('was really killed mid-stream several times', () => {
    assert.equal(kills.length, KILLS);
    assert.ok(kills.every((k) => k.batches >= 2));
  });

  it('stores every CDR exactly once in cdr: no gap, no repeat', async () => {
    const stored = plan.filter((m) => m.kind === 'unique' || m.kind === 'late').map((m) => m.cdrId!);
    await assertNoGapNoRepeat(storage, 'cdr', 'cdr_id', stored);
  });

  it('stores every index entry exactly once', async () => {
    await assertIndexExactlyTwice(storage, expected.unique);
  });

  it('holds every indexed identifier in the vault, once per month after merge semantics', async () => {
    const [v] = await storage.query<{ n: string; u: string }>(`SELECT count() n, uniqExact(month, token) u FROM ${storage.table('identity_vault')} FINAL`);
    assert.equal(Number(v!.n), Number(v!.u));
    const [missing] = await storage.query<{ n: string }>(
      `SELECT count() n FROM (SELECT DISTINCT toStartOfMonth(event_time) m, token FROM ${storage.table('subscriber_index')}) i
       LEFT ANTI JOIN ${storage.table('identity_vault')} v ON v.month = i.m AND v.token = i.token`,
    );
    assert.equal(Number(missing!.n), 0);
  });

  it('dead-letters every malformed record at least once and publishes every stored record at least once', async () => {
    const dlq = await readTopic(kafka, setup.config.kafka.topics.dlq);
    const dlqOffsets = new Set(dlq.map((m) => `${String(m.headers!['__connect.errors.partition'])}/${String(m.headers!['__connect.errors.offset'])}`));
    assert.equal(dlqOffsets.size, expected.malformed);
    const published = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    const publishedIds = new Set(published.map((m) => String(m.headers!['cdr_id'])));
    assert.equal(publishedIds.size, expected.unique + expected.late);
  });

  it('wrote no identifier into the child logs', () => {
    const logs = readFileSync(logFile, 'utf8');
    assert.ok(logs.includes('ingest started'));
    // A kill between "batch recorded" and "offsets committed" makes the next child rebuild that exact batch.
    assert.ok(logs.includes('replaying the last recorded batch'), 'at least one kill landed mid-batch and was replayed');
    assert.deepEqual(leaks(logs, identifierNeedles(plan)), []);
  });
});
