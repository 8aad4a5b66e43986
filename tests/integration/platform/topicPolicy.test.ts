/**
 * checkTopicPolicy against the real broker: a `cdr.raw` made with the old settings (72 h retention.ms, Kafka's default
 * 7-day segments, CreateTime) is reported at ~10 days and, when asked, corrected to the plan — other topic-level
 * settings kept (alterConfigs replaces the whole set), a retention the operator made shorter kept; a topic made by
 * ensureTopics is compliant as it is; a producer's future timestamp is replaced by the broker's clock.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { checkTopicPolicy, createKafka, ensureTopics, identifierTopicConfigs, type TopicPlan } from '../../../services/platform/kafka/index.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime } from '../../../services/platform/runtime/index.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testBrokers, testSetup, uniqueName } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const POLICY = 72 * HOUR;

function rawPlan(topic: string): TopicPlan {
  const c = identifierTopicConfigs(POLICY);
  return { topic, partitions: 1, retentionMs: c.retentionMs, configs: c.configs, policyMs: POLICY };
}

/** The topic-level configs (set on the topic itself) and the values in force. */
async function topicConfigs(admin: Admin, topic: string): Promise<{ topicLevel: Record<string, string>; inForce: Record<string, string> }> {
  const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2 /* TOPIC */, name: topic }] });
  const topicLevel: Record<string, string> = {};
  const inForce: Record<string, string> = {};
  for (const e of res.resources[0]!.configEntries) {
    inForce[e.configName] = e.configValue;
    if (Number(e.configSource) === 1 /* TOPIC_CONFIG */) topicLevel[e.configName] = e.configValue;
  }
  return { topicLevel, inForce };
}

describe('topic retention policy on the broker', () => {
  let kafka: Kafka;
  let admin: Admin;

  before(async () => {
    kafka = createKafka(testBrokers().split(','), 'topic-policy-test', createLogger('warn'));
    admin = kafka.admin();
    await admin.connect();
  });

  after(async () => {
    await admin?.disconnect();
  });

  async function createOld(topic: string, extra: { name: string; value: string }[] = []): Promise<void> {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: String(POLICY) }, ...extra] }],
    });
  }

  it('reports a raw topic with the old settings as ~72 h + 7 days, and changes nothing without correct', async () => {
    const topic = uniqueName('cdr.raw');
    await createOld(topic);
    const [r] = await checkTopicPolicy(admin, [rawPlan(topic)], { correct: false });
    assert.ok(r);
    assert.equal(r.topic, topic);
    assert.equal(r.error, undefined);
    assert.equal(r.compliant, false);
    assert.equal(r.policy_ms, POLICY);
    assert.equal(r.retention_ms, POLICY);
    assert.equal(r.segment_ms, 7 * DAY);
    assert.equal(r.message_timestamp_type, 'CreateTime');
    assert.equal(r.max_age_ms, 7 * DAY + POLICY + r.check_interval_ms + 60_000);
    assert.ok(r.max_age_ms >= 10 * DAY - 1 && r.max_age_ms <= 10 * DAY + 10 * 60_000, `max age ${r.max_age_ms}`);
    // The local broker of the tests checks every minute (infra/kafka/kafka.sh) and says so.
    if (r.check_interval_source === 'broker') assert.ok(r.check_interval_ms <= 300_000);
    assert.deepEqual(r.corrected, []);
    assert.ok(r.reasons.length > 0);
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
    const { topicLevel } = await topicConfigs(admin, topic);
    assert.deepEqual(topicLevel, { 'retention.ms': String(POLICY) });
  });

  it('corrects it: the plan where it was laxer, other topic-level settings kept; then it is compliant', async () => {
    const topic = uniqueName('cdr.raw');
    await createOld(topic, [{ name: 'max.message.bytes', value: '1500000' }]);
    const plan = rawPlan(topic);
    const [r] = await checkTopicPolicy(admin, [plan], { correct: true });
    assert.ok(r);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.corrected, ['message.timestamp.type', 'retention.ms', 'segment.bytes', 'segment.ms']);
    assert.equal(r.compliant, true);
    assert.equal(r.retention_ms, plan.retentionMs);
    assert.equal(r.segment_ms, HOUR);
    assert.ok(r.max_age_ms! <= POLICY);
    assert.equal(r.previous?.segment_ms, 7 * DAY);
    assert.equal(r.previous?.retention_ms, POLICY);

    const want = {
      'retention.ms': String(plan.retentionMs),
      'segment.ms': String(HOUR),
      'segment.bytes': String(64 * 1024 * 1024),
      'message.timestamp.type': 'LogAppendTime',
      'max.message.bytes': '1500000',
    };
    await waitFor(
      'the new configs in force',
      async () => {
        const { topicLevel } = await topicConfigs(admin, topic);
        return Object.entries(want).every(([k, v]) => topicLevel[k] === v);
      },
      20_000,
    );
    const [again] = await checkTopicPolicy(admin, [plan], { correct: false });
    assert.equal(again?.compliant, true);
    assert.deepEqual(again?.corrected, []);
  });

  it('keeps a retention the operator made shorter, and corrects only the rest', async () => {
    const topic = uniqueName('cdr.raw');
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: String(24 * HOUR) }] }],
    });
    const [r] = await checkTopicPolicy(admin, [rawPlan(topic)], { correct: true });
    assert.ok(r);
    assert.equal(r.error, undefined);
    assert.equal(r.corrected.includes('retention.ms'), false);
    assert.ok(r.corrected.includes('segment.ms'));
    assert.equal(r.retention_ms, 24 * HOUR);
    assert.equal(r.compliant, true);
    await waitFor('segment.ms in force', async () => (await topicConfigs(admin, topic)).topicLevel['segment.ms'] === String(HOUR), 20_000);
    const { topicLevel } = await topicConfigs(admin, topic);
    assert.equal(topicLevel['retention.ms'], String(24 * HOUR));
  });

  it('a topic made by ensureTopics is compliant as it is; a missing topic is reported, not thrown', async () => {
    const topic = uniqueName('cdr.raw');
    const dlq = uniqueName('cdr.dlq');
    const plans = [rawPlan(topic), { ...rawPlan(dlq), partitions: 1 }];
    assert.deepEqual(await ensureTopics(admin, plans), [topic, dlq]);
    const reports = await checkTopicPolicy(admin, plans, { correct: true });
    for (const r of reports) {
      assert.equal(r.error, undefined, r.topic);
      assert.equal(r.compliant, true, r.topic);
      assert.deepEqual(r.corrected, [], r.topic);
      assert.equal(r.message_timestamp_type, 'LogAppendTime');
      assert.ok(r.max_age_ms! <= POLICY);
    }
    const missing = await checkTopicPolicy(admin, [rawPlan(uniqueName('cdr.raw.missing'))], { correct: true });
    assert.equal(missing[0]?.compliant, false);
    assert.match(missing[0]?.error ?? '', /describeConfigs/);
  });

  it('the runtime corrects the pipeline topics at start and logs what it changed', async () => {
    const setup = testSetup();
    const { raw, dlq } = setup.config.kafka.topics;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: raw, numPartitions: setup.config.kafka.partitions, configEntries: [{ name: 'retention.ms', value: String(POLICY) }] },
        { topic: dlq, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: String(14 * DAY) }] },
      ],
    });
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const rt = await openRuntime(setup.config, { log, needStorage: false });
    await rt.close();
    setup.cleanup();
    const corrected = lines.filter((l) => l['msg'] === 'topic settings corrected to the retention policy');
    assert.deepEqual(corrected.map((l) => l['topic']).sort(), [raw, dlq].sort());
    for (const l of corrected) assert.deepEqual(l['corrected'], ['message.timestamp.type', 'retention.ms', 'segment.bytes', 'segment.ms']);
    assert.deepEqual(
      lines.filter((l) => l['msg'] === 'topic settings exceed the retention policy'),
      [],
    );
    await waitFor('the DLQ retention in force', async () => (await topicConfigs(admin, dlq)).topicLevel['retention.ms'] === '255240000', 20_000);
  });

  it('a producer timestamp far in the future is replaced by the broker clock (LogAppendTime)', async () => {
    const topic = uniqueName('cdr.raw');
    await ensureTopics(admin, [rawPlan(topic)]);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const before = Date.now();
    await producer.send({ topic, acks: -1, messages: [{ value: 'x', timestamp: String(Date.UTC(2100, 0, 1)) }] });
    await producer.disconnect();
    const [m] = await readTopic(kafka, topic);
    assert.ok(m);
    const ts = Number(m.timestamp);
    assert.ok(ts >= before - 60_000 && ts <= Date.now() + 60_000, `timestamp ${ts}`);
  });
});
