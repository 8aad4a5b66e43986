/**
 * The retention arithmetic of the topics that carry identifiers (services/platform/kafka/topicPolicy.ts): the real
 * age of a record is segment.ms + retention.ms + the broker's check interval + file.delete.delay.ms, and the planned
 * settings keep it within CDR_RAW_RETENTION_HOURS; a topic is judged and corrected against its plan without a broker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ASSUMED_RETENTION_CHECK_INTERVAL_MS,
  assessTopic,
  identifierTopicConfigs,
  maxRecordAgeMs,
  planConfigEntries,
  planPolicyMs,
  retentionWithinPolicy,
  type TopicConfigs,
  type TopicPlan,
} from '../../../../services/platform/kafka/index.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A described topic: `topicLevel` names the values set on the topic itself; the rest are broker defaults. */
function described(values: Record<string, string>, topicLevel: readonly string[] = []): TopicConfigs {
  const defaults: Record<string, string> = {
    'retention.ms': String(7 * DAY),
    'segment.ms': String(7 * DAY),
    'segment.bytes': String(1024 * 1024 * 1024),
    'file.delete.delay.ms': '60000',
    'cleanup.policy': 'delete',
    'message.timestamp.type': 'CreateTime',
    'max.message.bytes': '1048588',
  };
  const all = { ...defaults, ...values };
  return new Map(Object.entries(all).map(([k, v]) => [k, { value: v, topicLevel: topicLevel.includes(k) || k in values }]));
}

function rawPlan(hours = 72): TopicPlan {
  const policyMs = hours * HOUR;
  const c = identifierTopicConfigs(policyMs);
  return { topic: 'cdr.raw', partitions: 3, retentionMs: c.retentionMs, configs: c.configs, policyMs };
}

describe('topic retention arithmetic', () => {
  it('the default 72 h policy: 1 h segments, retention.ms 255,240,000 (70 h 54 min), a record gone after 72 h at most', () => {
    const r = retentionWithinPolicy(72 * HOUR);
    assert.deepEqual(r, { retentionMs: 255_240_000, segmentMs: 3_600_000, fileDeleteDelayMs: 60_000 });
    assert.equal(maxRecordAgeMs({ ...r, checkIntervalMs: ASSUMED_RETENTION_CHECK_INTERVAL_MS }), 72 * HOUR);
  });

  it('short policies get segments of policy/24; every policy from 1 h to 30 days adds up exactly', () => {
    const oneHour = retentionWithinPolicy(HOUR);
    assert.deepEqual(oneHour, { retentionMs: 3_090_000, segmentMs: 150_000, fileDeleteDelayMs: 60_000 });
    assert.equal(retentionWithinPolicy(12 * HOUR).segmentMs, 1_800_000);
    assert.equal(retentionWithinPolicy(24 * HOUR).segmentMs, HOUR);
    for (let h = 1; h <= 24 * 30; h++) {
      const r = retentionWithinPolicy(h * HOUR);
      assert.ok(r.segmentMs <= HOUR && r.segmentMs <= (h * HOUR) / 24);
      assert.ok(r.retentionMs > 0);
      assert.equal(maxRecordAgeMs({ ...r, checkIntervalMs: ASSUMED_RETENTION_CHECK_INTERVAL_MS }), h * HOUR, `${h} h`);
    }
  });

  it('what the auditor found: 72 h retention with the default 7-day segments means up to 10 days', () => {
    const age = maxRecordAgeMs({ retentionMs: 72 * HOUR, segmentMs: 7 * DAY, fileDeleteDelayMs: 60_000, checkIntervalMs: 300_000 });
    assert.equal(age, 72 * HOUR + 7 * DAY + 360_000);
    assert.equal(maxRecordAgeMs({ retentionMs: null, segmentMs: HOUR, fileDeleteDelayMs: 0, checkIntervalMs: 0 }), null);
  });

  it('refuses a policy that leaves no room', () => {
    assert.throws(() => retentionWithinPolicy(0), RangeError);
    assert.throws(() => retentionWithinPolicy(300_000), RangeError);
  });

  it('identifier topics: LogAppendTime, pinned delete delay, delete cleanup; entries carry retention.ms from the plan', () => {
    const plan = rawPlan();
    assert.deepEqual(Object.fromEntries(planConfigEntries(plan).map((e) => [e.name, e.value])), {
      'retention.ms': '255240000',
      'cleanup.policy': 'delete',
      'segment.ms': '3600000',
      'segment.bytes': String(64 * 1024 * 1024),
      'file.delete.delay.ms': '60000',
      'message.timestamp.type': 'LogAppendTime',
    });
    assert.equal(planPolicyMs(plan), 72 * HOUR);
    // A plain plan literal (as tests write them): held to what its own settings give with Kafka's defaults.
    assert.equal(planPolicyMs({ topic: 'x', partitions: 1, retentionMs: HOUR }), HOUR + 7 * DAY + 300_000 + 60_000);
    assert.deepEqual(planConfigEntries({ topic: 'x', partitions: 1, retentionMs: HOUR }), [{ name: 'retention.ms', value: '3600000' }]);
  });
});

describe('assessing a topic against its plan', () => {
  it('a topic created from the plan is compliant', () => {
    const plan = rawPlan();
    const configs = described(Object.fromEntries(planConfigEntries(plan).map((e) => [e.name, e.value])));
    const a = assessTopic(plan, configs, 300_000);
    assert.equal(a.compliant, true);
    assert.equal(a.maxAgeMs, 72 * HOUR);
    assert.deepEqual(a.reasons, []);
    // The local broker checks every minute: four minutes to spare.
    assert.equal(assessTopic(plan, configs, 60_000).maxAgeMs, 72 * HOUR - 240_000);
  });

  it('the old settings (72 h retention, default segments, CreateTime) are not compliant; a correction sets the plan', () => {
    const plan = rawPlan();
    const a = assessTopic(plan, described({ 'retention.ms': String(72 * HOUR) }), 300_000);
    assert.equal(a.compliant, false);
    assert.equal(a.maxAgeMs, 72 * HOUR + 7 * DAY + 360_000);
    assert.equal(a.reasons.length, 2);
    assert.deepEqual(Object.fromEntries(a.required), {
      'message.timestamp.type': 'LogAppendTime',
      'retention.ms': '255240000',
      'segment.ms': '3600000',
      'segment.bytes': String(64 * 1024 * 1024),
    });
  });

  it('a stricter value the operator set is kept; an unlimited retention is not', () => {
    const plan = rawPlan();
    const a = assessTopic(plan, described({ 'retention.ms': String(24 * HOUR), 'segment.bytes': String(1024 * 1024) }), 300_000);
    assert.equal(a.compliant, false);
    assert.equal(a.required.has('retention.ms'), false);
    assert.equal(a.required.has('segment.bytes'), false);
    assert.equal(a.required.get('segment.ms'), '3600000');
    const unlimited = assessTopic(plan, described({ 'retention.ms': '-1' }), 300_000);
    assert.equal(unlimited.maxAgeMs, null);
    assert.equal(unlimited.required.get('retention.ms'), '255240000');
  });

  it('a sum within the policy is compliant whatever each setting is (a longer segment for a shorter retention)', () => {
    const plan = rawPlan();
    const a = assessTopic(
      plan,
      described({ 'retention.ms': String(10 * HOUR), 'segment.ms': String(24 * HOUR), 'message.timestamp.type': 'LogAppendTime' }),
      300_000,
    );
    assert.equal(a.compliant, true);
    assert.equal(a.required.size, 0);
  });

  it('LogAppendTime missing alone makes a topic non-compliant; compaction without delete too', () => {
    const plan = rawPlan();
    const planned = Object.fromEntries(planConfigEntries(plan).map((e) => [e.name, e.value]));
    const create = assessTopic(plan, described({ ...planned, 'message.timestamp.type': 'CreateTime' }), 300_000);
    assert.equal(create.compliant, false);
    assert.deepEqual([...create.required.keys()], ['message.timestamp.type']);
    const compact = assessTopic(plan, described({ ...planned, 'cleanup.policy': 'compact' }), 300_000);
    assert.equal(compact.compliant, false);
    assert.equal(compact.required.get('cleanup.policy'), 'delete');
    assert.equal(assessTopic(plan, described({ ...planned, 'cleanup.policy': 'compact,delete' }), 300_000).compliant, true);
  });

  it('a broker that checks less often than assumed: retention.ms is lowered to make room', () => {
    const plan = rawPlan();
    const planned = Object.fromEntries(planConfigEntries(plan).map((e) => [e.name, e.value]));
    const a = assessTopic(plan, described(planned), 900_000);
    assert.equal(a.compliant, false);
    assert.equal(a.required.get('retention.ms'), String(255_240_000 - 600_000));
  });

  it('a topic without an identifier policy is held to its planned retention', () => {
    const plan: TopicPlan = { topic: 'cdr.pseudonymised', partitions: 3, retentionMs: 7 * DAY, configs: { 'segment.ms': String(DAY) } };
    assert.equal(assessTopic(plan, described({ 'retention.ms': String(7 * DAY), 'segment.ms': String(DAY) }), 300_000).compliant, true);
    const old = assessTopic(plan, described({ 'retention.ms': String(7 * DAY) }), 300_000);
    assert.equal(old.compliant, false);
    assert.deepEqual(Object.fromEntries(old.required), { 'segment.ms': String(DAY) });
  });
});
