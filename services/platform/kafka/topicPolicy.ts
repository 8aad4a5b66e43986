import type { Admin, ConfigResourceTypes, DescribeConfigResponse } from 'kafkajs';
import type { TopicPlan } from './kafkaClient.ts';

/**
 * How long a record really stays on a topic, and keeping the topics that carry identifiers (`cdr.raw`, `cdr.dlq`)
 * within their policy (CDR_RAW_RETENTION_HOURS).
 *
 * Kafka deletes whole segments, and a segment only once its newest record is older than `retention.ms`. A segment
 * collects records for up to `segment.ms`; the broker looks for such segments every `log.retention.check.interval.ms`
 * (a broker setting, default 5 min) and removes the files `file.delete.delay.ms` later. So the oldest record of a
 * segment can be as old as
 *
 *     segment.ms + retention.ms + log.retention.check.interval.ms + file.delete.delay.ms
 *
 * before it is gone from disk. With Kafka's default `segment.ms` (7 days), a 72 h `retention.ms` means up to ~10 days.
 * The identifier topics therefore get `segment.ms` = min(1 h, policy / 24) and `retention.ms` = what is left of the
 * policy; `message.timestamp.type=LogAppendTime` makes "newest record" the broker's clock, so a producer's future
 * timestamp cannot hold a segment back (nothing in the pipeline reads a record's Kafka timestamp).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The broker's `log.retention.check.interval.ms` assumed when it cannot be read (Kafka's default; docs/operations.md). */
export const ASSUMED_RETENTION_CHECK_INTERVAL_MS = 300_000;
/** `file.delete.delay.ms` set explicitly on the identifier topics (Kafka's default, pinned). */
export const FILE_DELETE_DELAY_MS = 60_000;
/** Kafka's default `segment.ms` (`log.roll.hours` = 168). */
export const KAFKA_DEFAULT_SEGMENT_MS = 7 * DAY;
/**
 * `segment.bytes` of the identifier topics. It only ever makes deletion earlier (the bound above comes from
 * `segment.ms`); it also caps a record batch, so it stays far above `message.max.bytes` (1 MiB by default), and
 * large enough that a busy partition does not pile up thousands of segment files.
 */
export const IDENTIFIER_SEGMENT_BYTES = 64 * 1024 * 1024;

/** The settings that decide how long a record stays: those of the topic and the broker's check interval. */
export interface RetentionSettings {
  /** `retention.ms`; null = unlimited (-1). */
  readonly retentionMs: number | null;
  readonly segmentMs: number;
  readonly fileDeleteDelayMs: number;
  readonly checkIntervalMs: number;
}

/** The longest a record can stay on disk under these settings; null when unbounded (retention.ms -1). */
export function maxRecordAgeMs(s: RetentionSettings): number | null {
  if (s.retentionMs === null) return null;
  return s.segmentMs + s.retentionMs + s.checkIntervalMs + s.fileDeleteDelayMs;
}

/** The settings of a topic whose records must be gone from disk `policyMs` after they were written. */
export interface PolicyRetention {
  readonly retentionMs: number;
  readonly segmentMs: number;
  readonly fileDeleteDelayMs: number;
}

/**
 * `segment.ms` = min(1 h, policy / 24), `retention.ms` = policy − segment.ms − check interval − file.delete.delay.ms,
 * so that maxRecordAgeMs(...) = policy exactly. For the default 72 h: segment.ms 3,600,000, retention.ms 255,240,000
 * (70 h 54 min). Throws when the policy leaves no room (it is at least 1 h: CDR_RAW_RETENTION_HOURS).
 */
export function retentionWithinPolicy(policyMs: number, checkIntervalMs: number = ASSUMED_RETENTION_CHECK_INTERVAL_MS): PolicyRetention {
  if (!Number.isSafeInteger(policyMs) || policyMs <= 0) throw new RangeError(`policy must be a positive number of milliseconds: ${policyMs}`);
  const segmentMs = Math.min(HOUR, Math.floor(policyMs / 24));
  const retentionMs = policyMs - segmentMs - checkIntervalMs - FILE_DELETE_DELAY_MS;
  if (retentionMs < 1) throw new RangeError(`a policy of ${policyMs} ms leaves no retention after segment.ms, the check interval and file.delete.delay.ms`);
  return { retentionMs, segmentMs, fileDeleteDelayMs: FILE_DELETE_DELAY_MS };
}

/** The topic configs of a topic that carries identifiers, with `retention.ms` (kept apart: TopicPlan.retentionMs). */
export function identifierTopicConfigs(policyMs: number): { retentionMs: number; configs: Record<string, string> } {
  const r = retentionWithinPolicy(policyMs);
  return {
    retentionMs: r.retentionMs,
    configs: {
      'cleanup.policy': 'delete',
      'segment.ms': String(r.segmentMs),
      'segment.bytes': String(IDENTIFIER_SEGMENT_BYTES),
      'file.delete.delay.ms': String(r.fileDeleteDelayMs),
      'message.timestamp.type': 'LogAppendTime',
    },
  };
}

/** Every config entry a plan creates a topic with (retention.ms from `retentionMs`, the rest from `configs`). */
export function planConfigEntries(plan: TopicPlan): { name: string; value: string }[] {
  const entries = [{ name: 'retention.ms', value: String(plan.retentionMs) }];
  for (const [name, value] of Object.entries(plan.configs ?? {})) if (name !== 'retention.ms') entries.push({ name, value });
  return entries;
}

/**
 * The longest a record may stay on the plan's topic: its `policyMs`, or else what its own settings give with the
 * assumed check interval (a topic without an identifier policy is held to the retention it was planned with).
 */
export function planPolicyMs(plan: TopicPlan): number {
  if (plan.policyMs !== undefined) return plan.policyMs;
  const c = plan.configs ?? {};
  return (
    maxRecordAgeMs({
      retentionMs: plan.retentionMs,
      segmentMs: numberOr(c['segment.ms'], KAFKA_DEFAULT_SEGMENT_MS),
      fileDeleteDelayMs: numberOr(c['file.delete.delay.ms'], FILE_DELETE_DELAY_MS),
      checkIntervalMs: ASSUMED_RETENTION_CHECK_INTERVAL_MS,
    }) ?? Number.MAX_SAFE_INTEGER
  );
}

/** Numeric settings where a lower value is stricter: the operator may go lower, never higher. */
const AT_MOST = new Set(['retention.ms', 'segment.ms', 'segment.bytes', 'file.delete.delay.ms']);

/** The config of a topic as described: value and whether it is set on the topic itself (dynamic topic config). */
export type TopicConfigs = ReadonlyMap<string, { readonly value: string | null; readonly topicLevel: boolean }>;

export interface TopicAssessment {
  readonly policyMs: number;
  readonly settings: RetentionSettings;
  readonly maxAgeMs: number | null;
  readonly timestampType: string | null;
  readonly compliant: boolean;
  /** Why not compliant: setting names and numbers, never a record's content. */
  readonly reasons: string[];
  /** The values the plan requires that are laxer (or different) now: name → value to set. */
  readonly required: ReadonlyMap<string, string>;
}

/**
 * Compares a topic's configs with its plan (pure). Numeric settings count as compliant when the sum stays within
 * the policy, whatever each one is: an operator may trade a longer segment.ms for a shorter retention.ms.
 * `required` lists what a correction sets: each planned numeric value the topic exceeds (a stricter value stays),
 * `retention.ms` lowered further when the broker checks less often than assumed, and the exact settings
 * (`message.timestamp.type`; a `cleanup.policy` without `delete`).
 */
export function assessTopic(plan: TopicPlan, configs: TopicConfigs, checkIntervalMs: number): TopicAssessment {
  const policyMs = planPolicyMs(plan);
  const value = (name: string): string | null => configs.get(name)?.value ?? null;
  const settings = settingsOf(configs, checkIntervalMs);
  const maxAgeMs = maxRecordAgeMs(settings);
  const reasons: string[] = [];
  const required = new Map<string, string>();

  const planned = new Map(planConfigEntries(plan).map((e) => [e.name, e.value]));
  // The room the policy leaves for retention.ms with the planned segment.ms and delay and the broker's real interval.
  const plannedSegment = numberOr(planned.get('segment.ms'), KAFKA_DEFAULT_SEGMENT_MS);
  const plannedDelay = numberOr(planned.get('file.delete.delay.ms'), FILE_DELETE_DELAY_MS);
  const room = Math.max(1, policyMs - plannedSegment - plannedDelay - checkIntervalMs);
  planned.set('retention.ms', String(Math.min(plan.retentionMs, room)));

  if (maxAgeMs === null) reasons.push('retention.ms is unlimited (-1)');
  else if (maxAgeMs > policyMs)
    reasons.push(`records can stay ${maxAgeMs} ms (segment.ms + retention.ms + check interval + file.delete.delay.ms), policy ${policyMs} ms`);
  const cleanup = value('cleanup.policy');
  const wantCleanup = planned.get('cleanup.policy');
  if (
    cleanup !== null &&
    !cleanup
      .split(',')
      .map((s) => s.trim())
      .includes('delete')
  ) {
    reasons.push(`cleanup.policy is ${cleanup}: retention.ms does not delete`);
    required.set('cleanup.policy', wantCleanup ?? 'delete');
  }
  const timestampType = value('message.timestamp.type');
  const wantTimestamp = planned.get('message.timestamp.type');
  if (wantTimestamp !== undefined && timestampType !== wantTimestamp) {
    reasons.push(`message.timestamp.type is ${timestampType ?? 'unknown'}: a producer's timestamp decides when a segment may go`);
    required.set('message.timestamp.type', wantTimestamp);
  }
  if (reasons.length > 0) {
    for (const [name, want] of planned) {
      if (!AT_MOST.has(name)) continue;
      const now = configs.has(name) ? value(name) : null;
      const current = now === null ? null : Number(now);
      // Unknown, unlimited (-1) or above the plan: lowered to the plan's value.
      if (current === null || !Number.isFinite(current) || current < 0 || current > Number(want)) required.set(name, want);
    }
  }
  return { policyMs, settings, maxAgeMs, timestampType, compliant: reasons.length === 0, reasons, required };
}

function settingsOf(configs: TopicConfigs, checkIntervalMs: number): RetentionSettings {
  const retention = numberOr(configs.get('retention.ms')?.value ?? undefined, -1);
  return {
    retentionMs: retention < 0 ? null : retention,
    segmentMs: numberOr(configs.get('segment.ms')?.value ?? undefined, KAFKA_DEFAULT_SEGMENT_MS),
    fileDeleteDelayMs: numberOr(configs.get('file.delete.delay.ms')?.value ?? undefined, FILE_DELETE_DELAY_MS),
    checkIntervalMs,
  };
}

function numberOr(v: string | undefined | null, fallback: number): number {
  if (v === undefined || v === null || v.trim() === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

/** One topic's state against its plan; JSON-friendly (the retention report carries it). No identifier in it. */
export interface TopicPolicyReport {
  readonly topic: string;
  /** The longest a record may stay on the topic. */
  readonly policy_ms: number;
  /** `retention.ms` in force (after a correction); null = unlimited, or not known (error). */
  readonly retention_ms: number | null;
  readonly segment_ms: number | null;
  /** segment.ms + retention.ms + check interval + file.delete.delay.ms in force; null = unbounded or not known. */
  readonly max_age_ms: number | null;
  readonly compliant: boolean;
  /** Names of the settings this call changed. */
  readonly corrected: string[];
  readonly error?: string;
  /** Why not compliant (setting names and numbers), empty when compliant. */
  readonly reasons: string[];
  readonly message_timestamp_type: string | null;
  /** The broker's `log.retention.check.interval.ms` used in max_age_ms: read from the brokers, or assumed (5 min). */
  readonly check_interval_ms: number;
  readonly check_interval_source: 'broker' | 'assumed';
  /** The state before a correction (only when something was corrected). */
  readonly previous?: { readonly retention_ms: number | null; readonly segment_ms: number; readonly max_age_ms: number | null };
}

const TOPIC = 2 as ConfigResourceTypes;
const BROKER = 4 as ConfigResourceTypes;
/** kafkajs ConfigSource.TOPIC_CONFIG: a value set on the topic itself (what alterConfigs replaces). */
const TOPIC_CONFIG_SOURCE = 1;

/**
 * Describes the configs of the plans' topics, reports each against its plan and, with `correct`, alters those that
 * are not compliant: what exceeds the plan is set to the plan's value, a setting the operator made stricter is left
 * as it is. kafkajs's alterConfigs is not incremental (it replaces the topic's whole set of topic-level configs), so
 * the complete set is sent: every topic-level value now set, with the corrected ones replaced.
 *
 * Never throws: a topic that cannot be described or altered (missing, no DescribeConfigs/AlterConfigs permission)
 * has `error` and `compliant: false`. The broker's check interval is read when the brokers allow it (the largest of
 * them), else assumed to be 5 min (Kafka's default; docs/operations.md).
 */
export async function checkTopicPolicy(admin: Admin, plans: readonly TopicPlan[], opts: { correct: boolean }): Promise<TopicPolicyReport[]> {
  const interval = await brokerCheckIntervalMs(admin);
  const checkIntervalMs = interval ?? ASSUMED_RETENTION_CHECK_INTERVAL_MS;
  const base = { check_interval_ms: checkIntervalMs, check_interval_source: interval === null ? ('assumed' as const) : ('broker' as const) };
  const reports: TopicPolicyReport[] = [];
  for (const plan of plans) {
    let configs: Map<string, { value: string | null; topicLevel: boolean }>;
    try {
      configs = await describeTopic(admin, plan.topic);
    } catch (err) {
      reports.push({
        topic: plan.topic,
        policy_ms: planPolicyMs(plan),
        retention_ms: null,
        segment_ms: null,
        max_age_ms: null,
        compliant: false,
        corrected: [],
        error: `describeConfigs: ${errorText(err)}`,
        reasons: ['topic configuration could not be read'],
        message_timestamp_type: null,
        ...base,
      });
      continue;
    }
    const before = assessTopic(plan, configs, checkIntervalMs);
    const report = {
      topic: plan.topic,
      policy_ms: before.policyMs,
      retention_ms: before.settings.retentionMs,
      segment_ms: before.settings.segmentMs,
      max_age_ms: before.maxAgeMs,
      compliant: before.compliant,
      corrected: [] as string[],
      reasons: before.reasons,
      message_timestamp_type: before.timestampType,
      ...base,
    };
    if (!opts.correct || before.compliant || before.required.size === 0) {
      reports.push(report);
      continue;
    }
    // The full set of topic-level configs, with the corrections. A value the broker hides (sensitive) could not be
    // sent back and would be lost: such a topic is left to the operator.
    const entries = new Map<string, string>();
    const hidden = [...configs].filter(([, c]) => c.topicLevel && c.value === null).map(([name]) => name);
    if (hidden.length > 0) {
      reports.push({ ...report, error: `not corrected: topic-level ${hidden.join(', ')} cannot be read back, and alterConfigs replaces every one` });
      continue;
    }
    for (const [name, c] of configs) if (c.topicLevel && c.value !== null) entries.set(name, c.value);
    for (const [name, v] of before.required) entries.set(name, v);
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: TOPIC, name: plan.topic, configEntries: [...entries].map(([name, value]) => ({ name, value })) }],
      });
    } catch (err) {
      reports.push({ ...report, error: `alterConfigs: ${errorText(err)}` });
      continue;
    }
    const now = new Map(configs);
    for (const [name, value] of before.required) now.set(name, { value, topicLevel: true });
    const after = assessTopic(plan, now, checkIntervalMs);
    reports.push({
      ...report,
      retention_ms: after.settings.retentionMs,
      segment_ms: after.settings.segmentMs,
      max_age_ms: after.maxAgeMs,
      compliant: after.compliant,
      reasons: after.reasons,
      message_timestamp_type: after.timestampType,
      corrected: [...before.required.keys()].sort(),
      previous: { retention_ms: before.settings.retentionMs, segment_ms: before.settings.segmentMs, max_age_ms: before.maxAgeMs },
    });
  }
  return reports;
}

async function describeTopic(admin: Admin, topic: string): Promise<Map<string, { value: string | null; topicLevel: boolean }>> {
  let res: DescribeConfigResponse | undefined;
  // Right after createTopics a broker may not know the topic yet.
  for (let attempt = 0; ; attempt++) {
    try {
      res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC, name: topic }] });
      break;
    } catch (err) {
      if (attempt >= 4 || (err as { type?: unknown }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
    }
  }
  const resource = res.resources.find((r) => r.resourceName === topic);
  if (!resource) throw new Error('the broker did not describe the topic');
  if (resource.errorCode !== 0) throw new Error(resource.errorMessage || `error code ${resource.errorCode}`);
  const out = new Map<string, { value: string | null; topicLevel: boolean }>();
  for (const e of resource.configEntries) out.set(e.configName, { value: e.configValue, topicLevel: Number(e.configSource) === TOPIC_CONFIG_SOURCE });
  return out;
}

/** The largest `log.retention.check.interval.ms` of the brokers, or null when it cannot be read. */
async function brokerCheckIntervalMs(admin: Admin): Promise<number | null> {
  try {
    const { brokers } = await admin.describeCluster();
    if (brokers.length === 0) return null;
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: brokers.map((b) => ({ type: BROKER, name: String(b.nodeId), configNames: ['log.retention.check.interval.ms'] })),
    });
    const values = res.resources.map((r) => Number(r.configEntries.find((e) => e.configName === 'log.retention.check.interval.ms')?.configValue));
    if (values.length !== brokers.length || values.some((v) => !Number.isFinite(v) || v <= 0)) return null;
    return Math.max(...values);
  } catch {
    return null;
  }
}

function errorText(err: unknown): string {
  const e = err as { type?: unknown; message?: unknown };
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  return (typeof e?.type === 'string' ? `${e.type}: ${msg}` : msg).slice(0, 300);
}
