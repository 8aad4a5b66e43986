/**
 * The measured phases of the benchmark. Every phase runs in its own child process (CPU seconds and peak RSS
 * are that process's own), notes the 1-minute load average when it starts, and the CPU seconds the shared
 * Kafka broker JVM spent while it ran (the broker serves every phase and competes for the same 2 cores).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Admin } from 'kafkajs';
import { kafkaToolClasspath } from '../../infra/kafka/localBroker.ts';
import type { AnchorParams, AnchorResult } from '../children/kafkaEngine.ts';
import type { CeilingParams, CeilingResult } from '../children/insertCeiling.ts';
import type { DoneMessage, IngestChildMessage, InsertMessage, ReadyMessage } from '../ingestChild.ts';
import { benchKafka, benchPlan, committed, createTopics, deleteTopics, producePaced, waitCommitted } from './kafkaUtil.ts';
import { cpuSecondsBetween, procCpuSeconds, runTimed, sleep, spawnNode, threadCpuDelta, threadCpuSeconds } from './proc.ts';
import { load1, percentileSorted } from './stats.ts';

/** Environment variables a measured child must not inherit (it always runs embedded, on the bench broker). */
const UNSET = ['CLICKHOUSE_URL', 'CLICKHOUSE_CLUSTER', 'KAFKA_BROKERS', 'CDR_DATA_DIR', 'CDR_MASTER_KEY_FILE', 'NODE_OPTIONS'];

export interface BenchContext {
  readonly brokers: readonly string[];
  readonly brokerPid: number;
  readonly workDir: string;
  readonly admin: Admin;
  readonly partitions: number;
}

export interface PhaseCommon {
  /** 1-minute load average when the phase started. */
  load1: number;
  /** CPU seconds of the broker JVM during the phase. */
  brokerCpuSeconds: number | undefined;
}

function brokerCpu(ctx: BenchContext): number | undefined {
  return procCpuSeconds(ctx.brokerPid);
}
function delta(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : b - a;
}
const shortId = (): string => randomBytes(3).toString('hex');

// ---------------------------------------------------------------------------------------------------------
// Ceiling 1: Kafka's own consumer (ConsumerPerformance)

export interface ConsumerPerfResult extends PhaseCommon {
  records: number;
  /** fetch.nMsg.sec: records/s excluding the group join (rebalance) time. */
  recordsPerSecond: number;
  /** nMsg.sec: including the join. */
  recordsPerSecondInclJoin: number;
  mbPerSecond: number;
  cpuSeconds: number | undefined;
  peakRssMiB: number | undefined;
  wallSeconds: number;
}

export async function runConsumerPerf(ctx: BenchContext, topic: string, records: number): Promise<ConsumerPerfResult> {
  const l = load1();
  const b0 = brokerCpu(ctx);
  const res = await runTimed(
    'java',
    [
      '-cp',
      kafkaToolClasspath(),
      'org.apache.kafka.tools.ConsumerPerformance',
      '--bootstrap-server',
      ctx.brokers.join(','),
      '--topic',
      topic,
      '--num-records',
      String(records),
      '--group',
      `bench-perf-${shortId()}`,
      '--timeout',
      '120000',
    ],
    { timeoutMs: 10 * 60_000 },
  );
  const b1 = brokerCpu(ctx);
  const lines = res.stdout.trim().split('\n');
  const header = lines.findIndex((x) => x.startsWith('start.time'));
  const cols = (lines[header] ?? '').split(',').map((c) => c.trim());
  const vals = (lines[header + 1] ?? '').split(',').map((c) => c.trim());
  const get = (name: string): number => Number(vals[cols.indexOf(name)]);
  if (res.code !== 0 || header < 0) throw new Error(`ConsumerPerformance failed (exit ${res.code}):\n${res.stdout}\n${res.stderr.slice(-3000)}`);
  return {
    records: get('data.consumed.in.nMsg'),
    recordsPerSecond: get('fetch.nMsg.sec'),
    recordsPerSecondInclJoin: get('nMsg.sec'),
    mbPerSecond: get('fetch.MB.sec'),
    cpuSeconds: res.cpuSeconds,
    peakRssMiB: res.peakRssMiB,
    wallSeconds: res.wallSeconds,
    load1: l,
    brokerCpuSeconds: delta(b0, b1),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Ceiling 2: raw ClickHouse insert speed

export interface InsertCeilingPhase extends PhaseCommon {
  result: CeilingResult;
}

export async function runInsertCeiling(ctx: BenchContext, p: Omit<CeilingParams, 'dataDir'>): Promise<InsertCeilingPhase> {
  const dataDir = path.join(ctx.workDir, `ceiling-${shortId()}`);
  mkdirSync(dataDir, { recursive: true });
  const l = load1();
  try {
    const child = spawnNode<CeilingResult>('benchmarks/children/insertCeiling.ts', { env: { BENCH_CEILING: JSON.stringify({ ...p, dataDir }) }, unset: UNSET });
    const result = await child.waitFor((m) => m.type === 'result', 30 * 60_000);
    await child.exited;
    return { result, load1: l, brokerCpuSeconds: undefined };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Anchor: ClickHouse's Kafka table engine

export interface AnchorPhase extends PhaseCommon {
  result: AnchorResult;
  recordsPerSecond: number;
  wallSeconds: number;
}

export async function runAnchor(
  ctx: BenchContext,
  p: { topic: string; records: number; registryUrl: string; settings: string; hash: 'hmac' | 'siphash' },
): Promise<AnchorPhase> {
  const dataDir = path.join(ctx.workDir, `anchor-${shortId()}`);
  mkdirSync(dataDir, { recursive: true });
  const params: AnchorParams = {
    brokers: ctx.brokers.join(','),
    topic: p.topic,
    group: `bench-anchor-${shortId()}`,
    registryUrl: p.registryUrl,
    records: p.records,
    dataDir,
    settings: p.settings,
    hash: p.hash,
    timeoutMs: 30 * 60_000,
  };
  const l = load1();
  const started = performance.now();
  try {
    const child = spawnNode<AnchorResult>('benchmarks/children/kafkaEngine.ts', { env: { BENCH_ANCHOR: JSON.stringify(params) }, unset: UNSET });
    // Broker CPU is sampled around the consumption itself: from the child's start (JVM-free) to its result.
    const b0 = brokerCpu(ctx);
    const result = await child.waitFor((m) => m.type === 'result', 31 * 60_000);
    const b1 = brokerCpu(ctx);
    await child.exited;
    return {
      result,
      recordsPerSecond: result.records / result.seconds,
      wallSeconds: (performance.now() - started) / 1000,
      load1: l,
      brokerCpuSeconds: delta(b0, b1),
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ours: IngestService end to end

export interface OursResult extends PhaseCommon {
  records: number;
  /** Records / seconds from 'ready' (consumer group joined) to all offsets committed. */
  recordsPerSecond: number;
  seconds: number;
  /** Over the last ~75% of the records (from the first poll that saw a quarter committed): excludes warm-up. */
  steadyRecordsPerSecond: number | undefined;
  /** Process start to 'ready': module loading, runtime, migrations, group join. */
  startupSeconds: number;
  /** CPU seconds from 'ready' to done (all threads of the process). */
  cpuSeconds: number;
  cpuSecondsTotal: number;
  peakRssMiB: number;
  /** Main-thread V8 heap at the end (used / total) and external memory, MiB. */
  heap?: DoneMessage['heap'];
  stats: Record<string, number>;
  /** CPU seconds by thread name from 'ready' to all committed (threads alive at the end). */
  threadCpu: Record<string, number>;
  profileFile?: string;
  /** The profile of the (first) prepare worker thread, when the run had one. */
  workerProfileFile?: string;
}

export interface OursOptions {
  topic: string;
  /** Stop once this many records are committed (the topic may hold more). */
  records: number;
  nodeFlags?: string[];
  extraEnv?: Record<string, string>;
  /** Run the ingest child from another checkout (ab.ts variants with `root`). */
  root?: string;
  onInsert?: (m: InsertMessage) => void;
  /** Called after 'ready' (e.g. to start producing); the run then waits for `records` committed. */
  afterReady?: (group: string) => Promise<void>;
  onProgress?: (committed: number) => void;
}

export async function runOurs(ctx: BenchContext, o: OursOptions): Promise<OursResult> {
  const id = shortId();
  const dataDir = path.join(ctx.workDir, `ours-${id}`);
  mkdirSync(dataDir, { recursive: true });
  const group = `bench-ours-${id}`;
  const topics = { ps: `bench.ps.${id}`, dlq: `bench.dlq.${id}`, fa: `bench.fa.${id}` };
  const env: Record<string, string> = {
    KAFKA_BROKERS: ctx.brokers.join(','),
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    CDR_DATA_DIR: dataDir,
    CDR_TOPIC_RAW: o.topic,
    CDR_TOPIC_PSEUDONYMISED: topics.ps,
    CDR_TOPIC_DLQ: topics.dlq,
    CDR_TOPIC_FRAUD_ALERTS: topics.fa,
    CDR_TOPIC_PARTITIONS: String(ctx.partitions),
    CDR_INGEST_GROUP: group,
    CLICKHOUSE_DATABASE: 'cdr',
    CDR_MASTER_KEY: randomBytes(32).toString('base64'),
    CDR_LOG_LEVEL: 'warn',
    CDR_API_PORT: '0',
    ...(o.onInsert ? { BENCH_REPORT_INSERTS: '1' } : {}),
    ...o.extraEnv,
  };
  const l = load1();
  const b0 = brokerCpu(ctx);
  const t0 = performance.now();
  const child = spawnNode<IngestChildMessage>('benchmarks/ingestChild.ts', {
    env,
    nodeFlags: o.nodeFlags ?? [],
    unset: UNSET,
    ...(o.root ? { root: o.root } : {}),
  });
  if (o.onInsert) {
    const cb = o.onInsert;
    child.onMessage((m) => {
      if (m.type === 'insert') cb(m);
    });
  }
  try {
    const ready = (await child.waitFor((m) => m.type === 'ready', 5 * 60_000)) as ReadyMessage;
    const tReady = performance.now();
    const threadsAtReady = threadCpuSeconds(child.pid);
    if (o.afterReady) await o.afterReady(group);
    let exitedEarly: string | undefined;
    void child.exited.then((code) => (exitedEarly = `ingest child exited early (code ${code})\n${child.stderrTail().slice(-4000)}`));
    const { doneAt, quarterAt, quarterCount } = await waitCommitted(ctx.admin, group, o.topic, o.records, {
      everyMs: 100,
      onPoll: o.onProgress,
      abort: () => exitedEarly,
    });
    const b1 = brokerCpu(ctx);
    const threadCpu = threadCpuDelta(child.pid, threadsAtReady, threadCpuSeconds(child.pid));
    child.send({ type: 'stop' });
    const done = (await child.waitFor((m) => m.type === 'done', 120_000)) as DoneMessage;
    await child.exited;
    const seconds = (doneAt - tReady) / 1000;
    return {
      records: o.records,
      recordsPerSecond: o.records / seconds,
      seconds,
      steadyRecordsPerSecond: quarterAt !== undefined ? (o.records - quarterCount) / ((doneAt - quarterAt) / 1000) : undefined,
      startupSeconds: (tReady - t0) / 1000,
      cpuSeconds: cpuSecondsBetween(ready.cpu, done.cpu),
      cpuSecondsTotal: done.usage.cpuSeconds,
      peakRssMiB: done.usage.peakRssMiB,
      heap: done.heap,
      stats: done.stats,
      threadCpu,
      load1: l,
      brokerCpuSeconds: delta(b0, b1),
    };
  } finally {
    await child.kill();
    await deleteTopics(ctx.admin, Object.values(topics)).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Latency: produce → queryable in `cdr`, at a fixed rate

export interface LatencyResult extends PhaseCommon {
  targetRate: number;
  achievedRate: number;
  seconds: number;
  warmupSeconds: number;
  produced: number;
  measured: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  ingestCpuSeconds: number;
  peakRssMiB: number;
}

export async function runLatency(ctx: BenchContext, p: { rate: number; seconds: number; warmupSeconds: number }): Promise<LatencyResult> {
  const topic = `bench.lat.${shortId()}`;
  await createTopics(ctx.admin, [topic], ctx.partitions);
  const inserts = new Map<number, InsertMessage[]>();
  let sendLog: Awaited<ReturnType<typeof producePaced>> | undefined;
  const total = Math.round(p.rate * (p.seconds + p.warmupSeconds));
  const l = load1();
  try {
    const ours = await runOurs(ctx, {
      topic,
      records: total,
      onInsert: (m) => {
        const list = inserts.get(m.partition) ?? [];
        list.push(m);
        inserts.set(m.partition, list);
      },
      afterReady: async (group) => {
        // Let the group settle (every partition assigned) before the clock starts.
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          const d = await ctx.admin.describeGroups([group]).catch(() => undefined);
          if (d?.groups[0]?.state === 'Stable') break;
          await sleep(200);
        }
        const kafka = benchKafka(ctx.brokers, 'cdr-bench-latency');
        sendLog = await producePaced(kafka, {
          topic,
          partitions: ctx.partitions,
          rate: p.rate,
          seconds: p.seconds + p.warmupSeconds,
          plan: benchPlan(total, 99, Date.now()),
        });
      },
    });
    if (!sendLog) throw new Error('latency: nothing was produced');
    // Per record: the first cdr insert covering its offset, minus the moment it was handed to the producer.
    const warmupEnd = sendLog.startedAt + p.warmupSeconds * 1000;
    const lat: number[] = [];
    for (const [partition, sends] of sendLog.sent) {
      const ins = (inserts.get(partition) ?? []).slice().sort((a, b) => a.t - b.t);
      for (const s of sends) {
        for (let i = 0; i < s.times.length; i++) {
          const off = s.base + i;
          const sentAt = s.times[i]!;
          const hit = ins.find((x) => x.minOffset <= off && x.maxOffset >= off);
          if (!hit) continue;
          if (sentAt < warmupEnd) continue;
          lat.push(hit.t - sentAt);
        }
      }
    }
    lat.sort((a, b) => a - b);
    return {
      targetRate: p.rate,
      achievedRate: sendLog.achievedRate,
      seconds: p.seconds,
      warmupSeconds: p.warmupSeconds,
      produced: sendLog.records,
      measured: lat.length,
      p50Ms: percentileSorted(lat, 50),
      p90Ms: percentileSorted(lat, 90),
      p99Ms: percentileSorted(lat, 99),
      maxMs: lat[lat.length - 1] ?? Number.NaN,
      ingestCpuSeconds: ours.cpuSeconds,
      peakRssMiB: ours.peakRssMiB,
      load1: l,
      brokerCpuSeconds: ours.brokerCpuSeconds,
    };
  } finally {
    await deleteTopics(ctx.admin, [topic]).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Profile: the ingest child under --cpu-prof

export async function runProfiled(ctx: BenchContext, p: { topic: string; records: number; profileDir: string }): Promise<OursResult> {
  rmSync(p.profileDir, { recursive: true, force: true });
  mkdirSync(p.profileDir, { recursive: true });
  const res = await runOurs(ctx, { topic: p.topic, records: p.records, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${p.profileDir}`] });
  // One file per thread (tsx's module-loader hooks, the publisher and the prepare workers run on their own): the main
  // thread's is the one that ran the ingest child's entry, a prepare worker's the one that ran prepareWorker.ts.
  const files = readdirSync(p.profileDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(p.profileDir, f));
  files.sort((a, b) => statSync(b).size - statSync(a).size);
  const ran = (f: string, script: string): boolean => readFileSync(f, 'utf8').includes(script);
  const main = files.find((f) => ran(f, 'benchmarks/ingestChild.ts')) ?? files[0];
  const worker = files.find((f) => f !== main && ran(f, 'services/ingest/prepareWorker.ts'));
  return { ...res, ...(main ? { profileFile: main } : {}), ...(worker ? { workerProfileFile: worker } : {}) };
}

export { committed };
