/**
 * Kafka side of the benchmark: topic creation, pre-filling with the project's generator, committed-offset
 * progress of a consumer group, and a paced producer that remembers when each record was sent.
 */
import { Kafka, logLevel, type Admin, type Message } from 'kafkajs';
import { startLocalBroker, type LocalBroker } from '../../infra/kafka/localBroker.ts';
import { frameConfluent } from '../../services/platform/schemas/cdrCodec.ts';
import { planTraffic, type PlanOptions } from '../../services/generator/trafficPlan.ts';
import { sleep } from './proc.ts';

process.env['KAFKAJS_NO_PARTITIONER_WARNING'] ??= '1';

/**
 * The benchmark's own broker (temp data dir, free port on 127.0.0.1, watchdog tied to this process).
 * `messageMaxBytes` > 0 raises the broker's message.max.bytes (needed to measure ingest before f80abe6, which
 * published a whole 20,000-record chunk in one request and retried MESSAGE_TOO_LARGE forever).
 */
export async function startBenchBroker(dataDir: string, messageMaxBytes: number): Promise<LocalBroker> {
  if (messageMaxBytes > 0) {
    const extra = `message.max.bytes=${messageMaxBytes}`;
    const prev = process.env['KAFKA_SERVER_PROPS_EXTRA'];
    process.env['KAFKA_SERVER_PROPS_EXTRA'] = prev ? `${prev}\n${extra}` : extra;
  }
  return startLocalBroker({ dataDir, port: 0 });
}

export function benchKafka(brokers: readonly string[], clientId = 'cdr-bench'): Kafka {
  return new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.ERROR, retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 } });
}

export async function createTopics(admin: Admin, topics: readonly string[], partitions: number): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })) });
}

export async function deleteTopics(admin: Admin, topics: readonly string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 30_000 });
}

/** The traffic every benchmark phase consumes: clean, realistic, deterministic (no duplicates, DLQ or late records). */
/**
 * The data sets: `cache` — the generator's default pool of 20,000 subscribers, so per-identifier caches hit;
 * `otp` — a subscriber never seen before for every record (one-time passwords, notifications: millions of distinct
 * numbers a month), where no per-identifier cache helps. `BENCH_DATASET` picks the default.
 */
export type BenchDataset = 'cache' | 'otp';

export function benchDataset(): BenchDataset {
  const v = process.env['BENCH_DATASET'] ?? 'cache';
  if (v !== 'cache' && v !== 'otp') throw new Error(`BENCH_DATASET must be cache or otp, not ${v}`);
  return v;
}

export function benchPlan(count: number, seed: number, startTime: number, dataset: BenchDataset = benchDataset()): PlanOptions {
  return {
    count,
    seed,
    scenario: 'normal',
    duplicates: 0,
    malformed: 0,
    late: 0,
    startTime,
    eventsPerSecond: 2_000,
    plainShare: 0.1,
    ...(dataset === 'otp' ? { subscribers: 'fresh' as const } : {}),
  };
}

export interface FillResult {
  records: number;
  bytesMixed: number;
  plainRecords: number;
  seconds: number;
}

/**
 * Pre-fills `mixed` with the generator's records exactly as `cdr produce` writes them (Confluent-framed,
 * ~10% plain Avro, keyed by cdr_id, default partitioner, no compression, acks=-1) and, when given,
 * `confluentOnly` with the very same records, every one Confluent-framed (schema id 1), for the
 * ClickHouse Kafka-engine anchor, whose AvroConfluent format cannot read unframed messages.
 */
export async function prefill(
  kafka: Kafka,
  opts: { mixed: string; confluentOnly?: string; plan: PlanOptions; onProgress?: (n: number) => void },
): Promise<FillResult> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const started = performance.now();
  const BATCH = 10_000;
  const IN_FLIGHT = 2;
  const inFlight = new Set<Promise<unknown>>();
  let mixed: Message[] = [];
  let framed: Message[] = [];
  let records = 0;
  let bytesMixed = 0;
  let plainRecords = 0;
  const flush = async (): Promise<void> => {
    if (mixed.length === 0) return;
    const topicMessages = [{ topic: opts.mixed, messages: mixed }];
    if (opts.confluentOnly) topicMessages.push({ topic: opts.confluentOnly, messages: framed });
    const n = mixed.length;
    mixed = [];
    framed = [];
    const p = producer.sendBatch({ topicMessages, acks: -1 }).then(() => opts.onProgress?.(n));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  };
  try {
    for (const m of planTraffic(opts.plan)) {
      records++;
      bytesMixed += m.value.length;
      const plain = m.value[0] !== 0;
      if (plain) plainRecords++;
      mixed.push({ key: m.key, value: m.value });
      if (opts.confluentOnly) framed.push({ key: m.key, value: plain ? frameConfluent(1, m.value) : m.value });
      if (mixed.length >= BATCH) await flush();
    }
    await flush();
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  return { records, bytesMixed, plainRecords, seconds: (performance.now() - started) / 1000 };
}

/** Sum of high watermarks of a topic. */
export async function topicEnd(admin: Admin, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
}

/** Records committed by a group on a topic (sum over partitions of the committed offset; -1 counts as 0). */
export async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] });
  let sum = 0;
  for (const t of res) for (const p of t.partitions) sum += Math.max(0, Number(p.offset));
  return sum;
}

/**
 * Polls the group's committed offsets until they reach `target` records; returns the time (performance.now)
 * of the first poll that saw the target, and of the first poll that saw at least a quarter of it.
 */
export async function waitCommitted(
  admin: Admin,
  groupId: string,
  topic: string,
  target: number,
  opts: { everyMs?: number; timeoutMs?: number; onPoll?: (n: number) => void; abort?: () => string | undefined } = {},
): Promise<{ doneAt: number; quarterAt: number | undefined; quarterCount: number }> {
  const every = opts.everyMs ?? 200;
  const deadline = performance.now() + (opts.timeoutMs ?? 30 * 60_000);
  let quarterAt: number | undefined;
  let quarterCount = 0;
  for (;;) {
    const n = await committed(admin, groupId, topic);
    const now = performance.now();
    if (n >= target / 4 && quarterAt === undefined) {
      quarterAt = now;
      quarterCount = n;
    }
    opts.onPoll?.(n);
    if (n >= target) return { doneAt: now, quarterAt: quarterAt === now ? undefined : quarterAt, quarterCount };
    const why = opts.abort?.();
    if (why) throw new Error(why);
    if (now > deadline) throw new Error(`group ${groupId} committed ${n} of ${target} records before the timeout`);
    await sleep(every);
  }
}

export interface PacedSendLog {
  /** Per partition: send time (epoch ms, fractional) of offset baseOffset + i, in offset order. */
  readonly sent: Map<number, { base: number; times: number[] }[]>;
  readonly records: number;
  readonly seconds: number;
  readonly achievedRate: number;
  /** Epoch ms when producing started. */
  readonly startedAt: number;
}

/**
 * Produces the generator's records at `rate` records/s for `seconds`, in small batches every `tickMs`,
 * round-robin over `partitions` explicit partitions, and records when each one was handed to the producer
 * (the "produced" instant for latency). Offsets come from the broker's acknowledgements.
 */
export async function producePaced(
  kafka: Kafka,
  opts: { topic: string; partitions: number; rate: number; seconds: number; plan: PlanOptions; tickMs?: number },
): Promise<PacedSendLog> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const tick = opts.tickMs ?? 20;
  const total = Math.round(opts.rate * opts.seconds);
  const sent = new Map<number, { base: number; times: number[] }[]>();
  const pending = new Set<Promise<void>>();
  const gen = planTraffic({ ...opts.plan, count: total });
  const started = performance.now();
  const t0 = performance.timeOrigin + started;
  let produced = 0;
  let rr = 0;
  try {
    while (produced < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate) + 1);
      const messages: (Message & { partition: number })[] = [];
      while (produced + messages.length < due) {
        const next = gen.next();
        if (next.done) break;
        messages.push({ key: next.value.key, value: next.value.value, partition: rr++ % opts.partitions });
      }
      if (messages.length > 0) {
        produced += messages.length;
        const at = performance.timeOrigin + performance.now();
        const perPartition = new Map<number, number>();
        for (const m of messages) perPartition.set(m.partition, (perPartition.get(m.partition) ?? 0) + 1);
        const p = producer.send({ topic: opts.topic, messages, acks: -1 }).then((meta) => {
          for (const md of meta) {
            const n = perPartition.get(md.partition) ?? 0;
            const list = sent.get(md.partition) ?? [];
            list.push({ base: Number(md.baseOffset), times: new Array<number>(n).fill(at) });
            sent.set(md.partition, list);
          }
        });
        pending.add(p);
        void p.finally(() => pending.delete(p)).catch(() => undefined);
      }
      await sleep(tick);
    }
    await Promise.all(pending);
  } finally {
    await producer.disconnect();
  }
  const seconds = (performance.timeOrigin + performance.now() - t0) / 1000;
  return { sent, records: produced, seconds, achievedRate: produced / seconds, startedAt: t0 };
}

export interface FilledBench {
  readonly broker: LocalBroker;
  readonly admin: Admin;
  readonly fill: FillResult;
  /** Disconnects the admin and stops the broker; never throws. */
  close(): Promise<void>;
}

/**
 * ab.ts and bench:quick: the benchmark broker with topic `bench.raw` (`partitions`) pre-filled with `records`
 * generator records (seed 20260401, event times from `startTime`). Cleans up after itself if filling fails.
 */
export async function startFilledBench(
  workDir: string,
  partitions: number,
  records: number,
  startTime: number,
  dataset: BenchDataset = benchDataset(),
): Promise<FilledBench> {
  const broker = await startBenchBroker(`${workDir}/kafka`, Number(process.env['BENCH_BROKER_MESSAGE_MAX_BYTES'] ?? 0));
  const kafka = benchKafka(broker.brokers);
  const admin = kafka.admin();
  const close = async (): Promise<void> => {
    await admin.disconnect().catch(() => undefined);
    await broker.stop().catch(() => undefined);
  };
  try {
    await admin.connect();
    await createTopics(admin, ['bench.raw'], partitions);
    const fill = await prefill(kafka, { mixed: 'bench.raw', plan: benchPlan(records, 20_260_401, startTime, dataset) });
    return { broker, admin, fill, close };
  } catch (err) {
    await close();
    throw err;
  }
}
