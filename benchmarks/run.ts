/**
 * `npm run bench`: our end-to-end ingest against anchors, side by side on this machine.
 *
 * One local Kafka broker (temp data dir, 127.0.0.1, stopped at the end), topics pre-filled with N records of
 * the project's generator, then BENCH_RUNS rounds of, each in its own child process:
 *   ceiling 1  Kafka's ConsumerPerformance on the topic (consume only)
 *   ceiling 2  raw embedded-ClickHouse insert speed of equivalent rows into the real `cdr` table
 *   anchor     ClickHouse's Kafka table engine (AvroConfluent) → MV with keyed hashes → `cdr`, in embedded chDB
 *   ours       IngestService end to end (vault, cdr + index view, cdr.pseudonymised) until the group has committed N
 * then produce→queryable latency at 50% of our median rate, a CPU profile of the ingest child, and the stage
 * micro-benchmarks. Medians go to stdout and benchmarks/RESULTS.md; everything to benchmarks/results/last-run.json.
 *
 * Environment: BENCH_RECORDS (1000000), BENCH_RUNS (3), BENCH_PARTITIONS (4), BENCH_LATENCY_SECONDS (30),
 * BENCH_PROFILE_RECORDS (400000), BENCH_CEILING_ROWS (200000), BENCH_ANCHOR_SETTINGS, BENCH_ANCHOR_HASH
 * (hmac|siphash), BENCH_BROKER_MESSAGE_MAX_BYTES (0 = Kafka's 1 MiB default), BENCH_SKIP (comma list of
 * consumerperf,ceiling,anchor,ours,latency,profile,stages), BENCH_RESULTS (output file), BENCH_VERBOSE=1,
 * BENCH_DATASETS (cache,otp: the first is the one every phase uses; each further one gets its own topics and its own
 * anchor and ours runs in every round, so both ratios come from the same run).
 * See benchmarks/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem, availableParallelism } from 'node:os';
import path from 'node:path';
import type { Admin } from 'kafkajs';
import type { LocalBroker } from '../infra/kafka/localBroker.ts';
import { startSchemaRegistry, type MiniRegistry } from './lib/schemaRegistry.ts';
import { benchKafka, benchPlan, createTopics, prefill, startBenchBroker, type BenchDataset, type FillResult } from './lib/kafkaUtil.ts';
import {
  runAnchor,
  runConsumerPerf,
  runInsertCeiling,
  runLatency,
  runOurs,
  runProfiled,
  type AnchorPhase,
  type BenchContext,
  type ConsumerPerfResult,
  type InsertCeilingPhase,
  type LatencyResult,
  type OursResult,
} from './lib/phases.ts';
import { REPO_ROOT } from './lib/proc.ts';
import { fmt, fmtInt, load1, median, pct } from './lib/stats.ts';
import { projectInclusive, summariseCpuProfile, type ProfileSummary } from './lib/cpuProfile.ts';
import { runStagesInChild, stagesMarkdown, type StagesReport } from './stages.ts';
import { loadConfig } from '../services/platform/config/config.ts';
import type { CeilingVariant } from './children/insertCeiling.ts';

const env = process.env;
const int = (name: string, def: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got '${v}'`);
  return Math.floor(n);
};

// 2,000,000 did not fit the ~20 min budget on this 2-core machine (ours alone is ~3.5 min per run): 1,000,000.
const N = int('BENCH_RECORDS', 1_000_000);
const RUNS = Math.max(1, int('BENCH_RUNS', 3));
const PARTITIONS = Math.max(1, int('BENCH_PARTITIONS', 4));
const LATENCY_SECONDS = int('BENCH_LATENCY_SECONDS', 30);
const LATENCY_WARMUP = 5;
const PROFILE_RECORDS = Math.min(N, int('BENCH_PROFILE_RECORDS', 300_000));
const OURS_NODE_FLAGS = (env['BENCH_OURS_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);
const CEILING_ROWS = Math.min(N, int('BENCH_CEILING_ROWS', 200_000));
const CEILING_VARIANTS: CeilingVariant[] = ['project', 'client-json', 'raw-tsv'];
const ANCHOR_SETTINGS =
  env['BENCH_ANCHOR_SETTINGS'] ?? 'kafka_num_consumers = 2, kafka_max_block_size = 262144, kafka_flush_interval_ms = 1000, kafka_thread_per_consumer = 0';
const ANCHOR_HASH = (env['BENCH_ANCHOR_HASH'] ?? 'hmac') === 'siphash' ? 'siphash' : 'hmac';
const BROKER_MAX_MESSAGE_BYTES = int('BENCH_BROKER_MESSAGE_MAX_BYTES', 0);
const SKIP = new Set(
  (env['BENCH_SKIP'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const OUT = path.resolve(REPO_ROOT, env['BENCH_RESULTS'] ?? 'benchmarks/RESULTS.md');
/** Next to a custom BENCH_RESULTS file (so side experiments do not replace the main run's data), else results/last-run.json. */
const JSON_OUT = env['BENCH_RESULTS'] ? OUT.replace(/(\.md)?$/, '.json') : path.resolve(REPO_ROOT, 'benchmarks/results/last-run.json');
const SEED = 20_260_401;
const DATASETS: BenchDataset[] = (env['BENCH_DATASETS'] ?? 'cache,otp').split(',').map((d) => {
  const v = d.trim();
  if (v !== 'cache' && v !== 'otp') throw new Error(`BENCH_DATASETS: cache or otp, not '${v}'`);
  return v;
});
const PRIMARY: BenchDataset = DATASETS[0] ?? 'cache';
const EXTRA: BenchDataset[] = DATASETS.slice(1).filter((d) => d !== PRIMARY);
/** The data set the CPU profile is taken on (BENCH_PROFILE_DATASET; default the high-cardinality one when it runs). */
const PROFILE_DATASET: BenchDataset = (() => {
  const v = env['BENCH_PROFILE_DATASET'] ?? (DATASETS.includes('otp') ? 'otp' : PRIMARY);
  if (v !== 'cache' && v !== 'otp') throw new Error(`BENCH_PROFILE_DATASET: cache or otp, not '${v}'`);
  if (!DATASETS.includes(v)) throw new Error(`BENCH_PROFILE_DATASET=${v} is not among BENCH_DATASETS`);
  return v;
})();
/** Topics of a further data set. */
const extraTopics = (d: BenchDataset): { raw: string; confluent: string } => ({ raw: `bench.raw.${d}`, confluent: `bench.raw.${d}.confluent` });

const log = (s: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

interface RunRound {
  run: number;
  /** Code version when this round's ingest child started. */
  code?: string;
  consumerPerf?: ConsumerPerfResult;
  ceiling?: InsertCeilingPhase;
  anchor?: AnchorPhase;
  ours?: OursResult;
  /** The same two phases on each further data set (BENCH_DATASETS). */
  more?: Partial<Record<BenchDataset, { anchor?: AnchorPhase; ours?: OursResult }>>;
}

interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  java: string;
  kafka: string;
  clickhouse: string;
  packages: Record<string, string>;
  load1AtStart: number;
  code: string;
}

/** The last commit that changed services/, and whether services/ has uncommitted changes (others edit it while we run). */
export function codeVersion(): string {
  try {
    const sha = execFileSync('git', ['log', '-1', '--format=%h', '--', 'services'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'services'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    return `services@${sha}${dirty ? '+uncommitted changes' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** Older reports recorded HEAD; map such a sha to the last commit that changed services/ at that point. */
function servicesVersion(code: string): string {
  if (!/^[0-9a-f]{7,40}$/.test(code)) return code;
  try {
    return `services@${execFileSync('git', ['log', '-1', '--format=%h', code, '--', 'services'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()}`;
  } catch {
    return code;
  }
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function machine(kafka: string): Machine {
  let java = '?';
  try {
    java = execFileSync('bash', ['-c', 'java -version 2>&1 | head -n 1'], { encoding: 'utf8' }).trim() || '?';
  } catch {
    // java missing: ConsumerPerformance will fail and say so
  }
  let cpuModel = cpus()[0]?.model ?? '?';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    // not Linux
  }
  return {
    nproc: availableParallelism(),
    cpuModel,
    memoryGiB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    java,
    kafka,
    clickhouse: '?',
    packages: Object.fromEntries(
      ['kafkajs', '@confluentinc/kafka-javascript', '@clickhouse/client', 'chdb', 'avsc', 'libphonenumber-js'].map((p) => [p, pkgVersion(p)]),
    ),
    load1AtStart: load1(),
    code: codeVersion(),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const workDir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-'));
  log(`N=${N.toLocaleString('en')} records, ${RUNS} run(s), ${PARTITIONS} partitions, work dir ${workDir}`);
  let broker: LocalBroker | undefined;
  let registry: MiniRegistry | undefined;
  const rounds: RunRound[] = [];
  let fill: FillResult | undefined;
  let latency: LatencyResult | undefined;
  let profile:
    { run: OursResult; summary: ProfileSummary; inclusive: ReturnType<typeof projectInclusive>; saved?: string; worker?: ProfileSummary } | undefined;
  let stages: StagesReport | undefined;
  let mach: Machine | undefined;
  const errors: string[] = [];
  const admin: { current: Admin | undefined } = { current: undefined };
  try {
    broker = await startBenchBroker(path.join(workDir, 'kafka'), BROKER_MAX_MESSAGE_BYTES);
    log(`Kafka ${broker.version} broker pid ${broker.pid} on ${broker.brokers.join(',')}`);
    mach = machine(broker.version);
    const kafka = benchKafka(broker.brokers);
    admin.current = kafka.admin();
    await admin.current.connect();
    const ctx: BenchContext = { brokers: broker.brokers, brokerPid: broker.pid, workDir, admin: admin.current, partitions: PARTITIONS };
    const raw = 'bench.raw';
    const rawConfluent = 'bench.raw.confluent';
    const needConfluent = !SKIP.has('anchor');
    await createTopics(
      admin.current,
      [
        raw,
        ...(needConfluent ? [rawConfluent] : []),
        ...EXTRA.flatMap((d) => (needConfluent ? [extraTopics(d).raw, extraTopics(d).confluent] : [extraTopics(d).raw])),
      ],
      PARTITIONS,
    );
    log(`pre-filling ${raw}${needConfluent ? ` and ${rawConfluent}` : ''} with ${N.toLocaleString('en')} records…`);
    let done = 0;
    let next = 250_000;
    fill = await prefill(kafka, {
      mixed: raw,
      ...(needConfluent ? { confluentOnly: rawConfluent } : {}),
      plan: benchPlan(N, SEED, Date.now() - 2 * 3_600_000, PRIMARY),
      onProgress: (n) => {
        done += n;
        if (done >= next) {
          log(`  ${done.toLocaleString('en')} produced`);
          next += 250_000;
        }
      },
    });
    log(
      `pre-filled in ${fill.seconds.toFixed(1)} s (${fmtInt(fill.records / fill.seconds)} records/s per topic), ${fill.plainRecords.toLocaleString('en')} plain Avro, avg value ${(fill.bytesMixed / fill.records).toFixed(0)} B`,
    );

    for (const d of EXTRA) {
      log(`pre-filling the ${d} data set (${extraTopics(d).raw}${needConfluent ? ` and ${extraTopics(d).confluent}` : ''})…`);
      const f = await prefill(kafka, {
        mixed: extraTopics(d).raw,
        ...(needConfluent ? { confluentOnly: extraTopics(d).confluent } : {}),
        plan: benchPlan(N, SEED + 1, Date.now() - 2 * 3_600_000, d),
      });
      log(`  pre-filled in ${f.seconds.toFixed(1)} s`);
    }

    if (needConfluent) {
      registry = await startSchemaRegistry();
    }

    for (let r = 1; r <= RUNS; r++) {
      const round: RunRound = { run: r };
      rounds.push(round);
      if (!SKIP.has('consumerperf')) {
        log(`run ${r}/${RUNS}: ceiling 1, Kafka ConsumerPerformance (load ${load1().toFixed(2)})`);
        round.consumerPerf = await runConsumerPerf(ctx, raw, N);
        log(`  ${fmtInt(round.consumerPerf.recordsPerSecond)} records/s (fetch), ${fmtInt(round.consumerPerf.recordsPerSecondInclJoin)} incl. group join`);
      }
      if (!SKIP.has('ceiling')) {
        log(`run ${r}/${RUNS}: ceiling 2, ClickHouse insert into cdr (load ${load1().toFixed(2)})`);
        round.ceiling = await runInsertCeiling(ctx, { rowsPerCase: CEILING_ROWS, batchSizes: [20_000], variants: CEILING_VARIANTS });
        if (mach) mach.clickhouse = round.ceiling.result.clickhouseVersion;
        for (const c of round.ceiling.result.cases)
          log(`  ${c.variant.padEnd(16)} ${fmtInt(c.rowsPerSecond)} rows/s (${fmtInt(c.rowsPerSecondWithSerialise)} with serialisation)`);
      }
      if (!SKIP.has('anchor') && registry) {
        log(`run ${r}/${RUNS}: anchor, ClickHouse Kafka engine (load ${load1().toFixed(2)})`);
        round.anchor = await runAnchor(ctx, { topic: rawConfluent, records: N, registryUrl: registry.url, settings: ANCHOR_SETTINGS, hash: ANCHOR_HASH });
        if (mach) mach.clickhouse = round.anchor.result.clickhouseVersion;
        log(
          `  ${fmtInt(round.anchor.recordsPerSecond)} records/s, ${fmt(round.anchor.result.cpuSeconds)} CPU-s, peak RSS ${fmtInt(round.anchor.result.usage.peakRssMiB)} MiB`,
        );
      }
      if (!SKIP.has('ours')) {
        round.code = codeVersion();
        log(`run ${r}/${RUNS}: ours, IngestService end to end at ${round.code} (load ${load1().toFixed(2)})`);
        let shown = 0;
        round.ours = await runOurs(ctx, {
          topic: raw,
          records: N,
          nodeFlags: OURS_NODE_FLAGS,
          onProgress: (n) => {
            if (n - shown >= 250_000) {
              shown = n;
              log(`  ${n.toLocaleString('en')} committed`);
            }
          },
        });
        log(`  ${fmtInt(round.ours.recordsPerSecond)} records/s, ${fmt(round.ours.cpuSeconds)} CPU-s, peak RSS ${fmtInt(round.ours.peakRssMiB)} MiB`);
      }
      for (const d of EXTRA) {
        const more: { anchor?: AnchorPhase; ours?: OursResult } = {};
        round.more = { ...round.more, [d]: more };
        const t = extraTopics(d);
        if (!SKIP.has('anchor') && registry) {
          log(`run ${r}/${RUNS}: anchor on the ${d} data set (load ${load1().toFixed(2)})`);
          more.anchor = await runAnchor(ctx, { topic: t.confluent, records: N, registryUrl: registry.url, settings: ANCHOR_SETTINGS, hash: ANCHOR_HASH });
          log(`  ${fmtInt(more.anchor.recordsPerSecond)} records/s, ${fmt(more.anchor.result.cpuSeconds)} CPU-s`);
        }
        if (!SKIP.has('ours')) {
          log(`run ${r}/${RUNS}: ours on the ${d} data set (load ${load1().toFixed(2)})`);
          more.ours = await runOurs(ctx, { topic: t.raw, records: N, nodeFlags: OURS_NODE_FLAGS });
          log(`  ${fmtInt(more.ours.recordsPerSecond)} records/s, ${fmt(more.ours.cpuSeconds)} CPU-s, peak RSS ${fmtInt(more.ours.peakRssMiB)} MiB`);
        }
      }
    }

    const oursRates = rounds.map((r) => r.ours?.recordsPerSecond).filter((x): x is number => x !== undefined);
    if (!SKIP.has('latency') && LATENCY_SECONDS > 0) {
      const rate = oursRates.length > 0 ? Math.max(100, Math.round(median(oursRates) / 2)) : int('BENCH_LATENCY_RATE', 2_000);
      log(`latency: producing at ${rate.toLocaleString('en')} records/s for ${LATENCY_SECONDS + LATENCY_WARMUP} s (load ${load1().toFixed(2)})`);
      try {
        latency = await runLatency(ctx, { rate, seconds: LATENCY_SECONDS, warmupSeconds: LATENCY_WARMUP });
        log(
          `  p50 ${fmt(latency.p50Ms, 0)} ms, p99 ${fmt(latency.p99Ms, 0)} ms over ${latency.measured.toLocaleString('en')} records (achieved ${fmtInt(latency.achievedRate)}/s)`,
        );
      } catch (err) {
        errors.push(`latency: ${String(err)}`);
        log(`  latency failed: ${String(err)}`);
      }
    }
    if (!SKIP.has('profile') && PROFILE_RECORDS > 0) {
      log(`profile: ingest child with --cpu-prof over ${PROFILE_RECORDS.toLocaleString('en')} records (load ${load1().toFixed(2)})`);
      const dir = path.join(workDir, 'profile');
      const run = await runProfiled(ctx, {
        topic: PROFILE_DATASET === PRIMARY ? raw : extraTopics(PROFILE_DATASET).raw,
        records: PROFILE_RECORDS,
        profileDir: dir,
      });
      if (run.profileFile) {
        const summary = summariseCpuProfile(run.profileFile, 15);
        const inclusive = projectInclusive(run.profileFile, 12);
        const savedDir = path.join(REPO_ROOT, 'benchmarks', 'results');
        mkdirSync(savedDir, { recursive: true });
        const saved = path.join(savedDir, 'ingest.cpuprofile');
        copyFileSync(run.profileFile, saved);
        const worker = run.workerProfileFile ? summariseCpuProfile(run.workerProfileFile, 15) : undefined;
        profile = { run, summary, inclusive, saved, ...(worker ? { worker } : {}) };
        log(
          `  ${fmtInt(run.recordsPerSecond)} records/s under the profiler; GC ${pct(summary.gcMs / Math.max(1, summary.totalMs - summary.idleMs))} of busy time`,
        );
      }
    }
  } catch (err) {
    errors.push(String(err instanceof Error ? (err.stack ?? err.message) : err));
    log(`FAILED: ${String(err)}`);
  } finally {
    await registry?.close().catch(() => undefined);
    await admin.current?.disconnect().catch(() => undefined);
    await broker?.stop().catch((e: unknown) => log(`broker stop failed: ${String(e)}`));
    rmSync(workDir, { recursive: true, force: true });
  }

  if (!SKIP.has('stages')) {
    log(`stage micro-benchmarks (load ${load1().toFixed(2)})`);
    try {
      stages = await runStagesInChild({ records: 50_000, insertRows: 60_000, log: (s) => log(s) });
    } catch (err) {
      errors.push(`stages: ${String(err)}`);
    }
  }

  const totalMinutes = (Date.now() - started) / 60_000;
  const settings = settingsObject();
  writeReport(renderResults(settings, { machine: mach, fill, rounds, latency, profile, stages, errors, totalMinutes }));
  mkdirSync(path.dirname(JSON_OUT), { recursive: true });
  writeFileSync(
    JSON_OUT,
    JSON.stringify(
      {
        settings,
        machine: mach,
        fill,
        rounds,
        latency,
        profile: profile ? { ...profile.summary, inclusive: profile.inclusive, run: profile.run } : undefined,
        stages,
        errors,
        totalMinutes,
      },
      null,
      2,
    ),
  );
  console.log(`\n${summaryTable(rounds)}\n\n${datasetsTable(rounds)}\n`);
  log(`done in ${totalMinutes.toFixed(1)} min; wrote ${path.relative(REPO_ROOT, OUT)} and ${path.relative(REPO_ROOT, JSON_OUT)}`);
  if (errors.length > 0) {
    console.error(errors.join('\n'));
    process.exitCode = 1;
  }
}

interface Settings {
  records: number;
  runs: number;
  partitions: number;
  seed: number;
  anchorSettings: string;
  anchorHash: string;
  brokerMessageMaxBytes: number;
  oursNodeFlags: string[];
  ingestMaxBatch: string;
  latencySeconds: number;
  profileRecords: number;
  ceilingRows: number;
  skip: string[];
  datasets?: string[];
  profileDataset?: string;
  /** The BENCH_* variables of the command line. */
  benchEnv: string;
  generatedAt: string;
}

function settingsObject(): Settings {
  return {
    records: N,
    runs: RUNS,
    partitions: PARTITIONS,
    seed: SEED,
    anchorSettings: ANCHOR_SETTINGS,
    anchorHash: ANCHOR_HASH,
    brokerMessageMaxBytes: BROKER_MAX_MESSAGE_BYTES,
    oursNodeFlags: OURS_NODE_FLAGS,
    ingestMaxBatch: env['CDR_INGEST_MAX_BATCH'] ?? String(loadConfig({}).ingest.maxBatchRecords),
    latencySeconds: LATENCY_SECONDS,
    profileRecords: PROFILE_RECORDS,
    ceilingRows: CEILING_ROWS,
    skip: [...SKIP],
    datasets: [PRIMARY, ...EXTRA],
    profileDataset: PROFILE_DATASET,
    benchEnv: Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_'))
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
    generatedAt: new Date().toISOString(),
  };
}

/** `run.ts --render`: rewrites RESULTS.md from results/last-run.json (e.g. after a change to the report format). */
function renderFromJson(): void {
  const j = JSON.parse(readFileSync(JSON_OUT, 'utf8')) as {
    settings: Partial<Settings> & { records: number };
    machine?: Machine;
    fill?: FillResult;
    rounds: RunRound[];
    latency?: LatencyResult;
    profile?: ProfileSummary & { inclusive: ReturnType<typeof projectInclusive>; run: OursResult };
    stages?: StagesReport;
    errors: string[];
    totalMinutes: number;
  };
  const st: Settings = {
    ...settingsObject(),
    ...j.settings,
    oursNodeFlags: j.settings.oursNodeFlags ?? [],
    ingestMaxBatch: j.settings.ingestMaxBatch ?? String(loadConfig({}).ingest.maxBatchRecords),
    benchEnv: j.settings.benchEnv ?? '',
    generatedAt: j.settings.generatedAt ?? statSync(JSON_OUT).mtime.toISOString(),
  };
  if (j.machine) j.machine.code = servicesVersion(j.machine.code);
  for (const rd of j.rounds) if (rd.code) rd.code = servicesVersion(rd.code);
  const profile = j.profile ? { run: j.profile.run, summary: j.profile, inclusive: j.profile.inclusive } : undefined;
  writeReport(
    renderResults(st, {
      machine: j.machine,
      fill: j.fill,
      rounds: j.rounds,
      latency: j.latency,
      profile,
      stages: j.stages,
      errors: j.errors,
      totalMinutes: j.totalMinutes,
    }),
  );
  console.log(`re-rendered ${path.relative(REPO_ROOT, OUT)} from ${path.relative(REPO_ROOT, JSON_OUT)}`);
}

/** Keeps the hand-written notes block of the previous report. */
function writeReport(report: string): void {
  const previous = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  const notes = /<!-- BEGIN NOTES -->[\s\S]*<!-- END NOTES -->/.exec(previous)?.[0];
  writeFileSync(OUT, notes ? `${report}\n${notes}\n` : report);
}

// ---------------------------------------------------------------------------------------------------------
// Reporting

interface Row {
  name: string;
  rate: number[];
  steady?: number[];
  cpuPerM: number[];
  brokerCpuPerM: number[];
  rss: number[];
  note: string;
}

function rowsOf(rounds: readonly RunRound[]): { rows: Row[]; ours?: Row; anchor?: Row; consumer?: Row; ceilingProject?: Row; ceilingBest?: Row } {
  const rows: Row[] = [];
  const cp = rounds.map((r) => r.consumerPerf).filter((x): x is ConsumerPerfResult => !!x);
  let consumer: Row | undefined;
  if (cp.length) {
    consumer = {
      name: 'Ceiling 1 — Kafka ConsumerPerformance (consume only, JVM)',
      rate: cp.map((c) => c.recordsPerSecond),
      cpuPerM: cp.map((c) => ((c.cpuSeconds ?? Number.NaN) / c.records) * 1e6),
      brokerCpuPerM: cp.map((c) => ((c.brokerCpuSeconds ?? Number.NaN) / c.records) * 1e6),
      rss: cp.map((c) => c.peakRssMiB ?? Number.NaN),
      note: 'fetch.nMsg.sec (excl. group join); CPU and RSS from /usr/bin/time -v (JVM start included)',
    };
    rows.push(consumer);
  }
  const ce = rounds.map((r) => r.ceiling).filter((x): x is InsertCeilingPhase => !!x);
  let ceilingProject: Row | undefined;
  let ceilingBest: Row | undefined;
  if (ce.length) {
    const variants = ce[0]!.result.cases.map((c) => c.variant);
    for (const v of variants) {
      const cases = ce.map((c) => c.result.cases.find((x) => x.variant === v)).filter((x) => !!x);
      const label: Record<string, string> = {
        project: 'Ceiling 2a — ClickHouse insert, project path (storage.insert with CDR_SHAPE: RowBinary through a spool file), cdr + index view',
        'client-json': 'Ceiling 2b — @clickhouse/client JSONEachRow objects (the path before 2026-11-29 07:40), cdr + index view',
        'raw-json': 'Ceiling 2c — chDB raw insert, pre-serialised JSONEachRow Buffer (insert call only)',
        'raw-tsv': 'Ceiling 2d — chDB raw insert, pre-serialised TSV Buffer (insert call only)',
        'raw-jsoncompact': 'Ceiling 2e — chDB raw insert, JSONCompactEachRow Buffer (insert call only)',
      };
      const row: Row = {
        name: label[v] ?? v,
        rate: cases.map((c) => c.rowsPerSecond),
        cpuPerM: cases.map((c) => (c.insertCpuSeconds / c.rows) * 1e6),
        brokerCpuPerM: [],
        rss: ce.map((c) => c.result.usage.peakRssMiB),
        note: `batches of ${cases[0]?.batch.toLocaleString('en')} rows; CPU = insert calls only; RSS = whole child (all variants)`,
      };
      rows.push(row);
      if (v === 'project') ceilingProject = row;
      if (!ceilingBest || median(row.rate) > median(ceilingBest.rate)) ceilingBest = row;
    }
  }
  const an = rounds.map((r) => r.anchor).filter((x): x is AnchorPhase => !!x);
  let anchor: Row | undefined;
  if (an.length) {
    anchor = {
      name: `Anchor — ClickHouse Kafka engine (AvroConfluent → MV, ${an[0]!.result.hash === 'siphash' ? 'sipHash128Keyed' : 'HMAC-SHA-256'} tokens → cdr)`,
      rate: an.map((a) => a.recordsPerSecond),
      steady: an.map((a) => a.result.steadyRecordsPerSecond ?? Number.NaN),
      cpuPerM: an.map((a) => (a.result.cpuSeconds / a.result.records) * 1e6),
      brokerCpuPerM: an.map((a) => ((a.brokerCpuSeconds ?? Number.NaN) / a.result.records) * 1e6),
      rss: an.map((a) => a.result.usage.peakRssMiB),
      note: 'from MV attach to count() = N; writes cdr only (no vault, index or publish)',
    };
    rows.push(anchor);
  }
  const ou = rounds.map((r) => r.ours).filter((x): x is OursResult => !!x);
  let ours: Row | undefined;
  if (ou.length) {
    ours = {
      name: 'Ours — IngestService end to end (vault + cdr + index view + cdr.pseudonymised)',
      rate: ou.map((o) => o.recordsPerSecond),
      steady: ou.map((o) => o.steadyRecordsPerSecond ?? Number.NaN),
      cpuPerM: ou.map((o) => (o.cpuSeconds / o.records) * 1e6),
      brokerCpuPerM: ou.map((o) => ((o.brokerCpuSeconds ?? Number.NaN) / o.records) * 1e6),
      rss: ou.map((o) => o.peakRssMiB),
      note: 'from group joined to committed offsets = high watermarks',
    };
    rows.push(ours);
  }
  return {
    rows,
    ...(ours ? { ours } : {}),
    ...(anchor ? { anchor } : {}),
    ...(consumer ? { consumer } : {}),
    ...(ceilingProject ? { ceilingProject } : {}),
    ...(ceilingBest ? { ceilingBest } : {}),
  };
}

function summaryTable(rounds: readonly RunRound[]): string {
  const { rows, ours, anchor, consumer, ceilingProject, ceilingBest } = rowsOf(rounds);
  const lines: string[] = [];
  lines.push('| system | records/s (median) | min – max | last 75%, records/s | CPU-s per 1M records | broker CPU-s per 1M | peak RSS MiB | notes |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    const lo = Math.min(...r.rate);
    const hi = Math.max(...r.rate);
    lines.push(
      `| ${r.name} | **${fmtInt(median(r.rate))}** | ${fmtInt(lo)} – ${fmtInt(hi)} | ${r.steady ? fmtInt(median(r.steady)) : '–'} | ${fmt(median(r.cpuPerM))} | ${r.brokerCpuPerM.length ? fmt(median(r.brokerCpuPerM)) : '–'} | ${fmtInt(median(r.rss))} | ${r.note} |`,
    );
  }
  if (ours) {
    const o = median(ours.rate);
    lines.push('');
    lines.push('Ours as a fraction of:');
    lines.push('');
    lines.push('| reference | ours / reference (throughput) | same, last 75% | reference CPU per record / ours |');
    lines.push('| --- | ---: | ---: | ---: |');
    const ratio = (name: string, ref: Row | undefined): void => {
      if (!ref) return;
      const steady = ref.steady && ours.steady ? pct(median(ours.steady) / median(ref.steady)) : '–';
      lines.push(`| ${name} | ${pct(o / median(ref.rate))} | ${steady} | ${pct(median(ref.cpuPerM) / median(ours.cpuPerM))} |`);
    };
    ratio('anchor (ClickHouse Kafka engine)', anchor);
    ratio('ceiling 1 (Kafka consumer)', consumer);
    ratio('ceiling 2a (ClickHouse insert via the project path, cdr + index view)', ceilingProject);
    ratio(`ceiling 2, best format (${ceilingBest?.name.split(' — ')[0] ?? ''})`, ceilingBest);
  }
  return lines.join('\n');
}

/** Ours against the anchor on every data set of the run: the two ratios issue 15 asks for, from the same rounds. */
function datasetsTable(rounds: readonly RunRound[]): string {
  const lines = [
    '| data set | ours records/s | ours CPU-s per 1M | ours peak RSS MiB | anchor records/s | anchor CPU-s per 1M | ratio: anchor CPU per record / ours |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const describe: Record<BenchDataset, string> = {
    cache: 'cache-friendly (20,000-subscriber pool)',
    otp: 'high cardinality (a new subscriber per record, OTP-like)',
  };
  for (const d of [PRIMARY, ...EXTRA]) {
    const phases = rounds.map((r) => (d === PRIMARY ? { anchor: r.anchor, ours: r.ours } : (r.more?.[d] ?? {})));
    const ours = phases.map((p) => p.ours).filter((x): x is OursResult => !!x);
    const anchor = phases.map((p) => p.anchor).filter((x): x is AnchorPhase => !!x);
    if (ours.length === 0 && anchor.length === 0) continue;
    const oursCpu = ours.length ? median(ours.map((o) => (o.cpuSeconds / o.records) * 1e6)) : Number.NaN;
    const anchorCpu = anchor.length ? median(anchor.map((a) => (a.result.cpuSeconds / a.result.records) * 1e6)) : Number.NaN;
    lines.push(
      `| ${describe[d]} | ${ours.length ? fmtInt(median(ours.map((o) => o.recordsPerSecond))) : '–'} | ${fmt(oursCpu)} | ${ours.length ? fmtInt(median(ours.map((o) => o.peakRssMiB))) : '–'} | ${anchor.length ? fmtInt(median(anchor.map((a) => a.recordsPerSecond))) : '–'} | ${fmt(anchorCpu)} | ${Number.isFinite(oursCpu) && Number.isFinite(anchorCpu) ? `**${(anchorCpu / oursCpu).toFixed(2)}**` : '–'} |`,
    );
  }
  return lines.join('\n');
}

function renderResults(
  st: Settings,
  r: {
    machine: Machine | undefined;
    fill: FillResult | undefined;
    rounds: RunRound[];
    latency: LatencyResult | undefined;
    profile: { run: OursResult; summary: ProfileSummary; inclusive: ReturnType<typeof projectInclusive>; saved?: string; worker?: ProfileSummary } | undefined;
    stages: StagesReport | undefined;
    errors: string[];
    totalMinutes: number;
  },
): string {
  const L: string[] = [];
  const m = r.machine;
  const envShown = st.benchEnv;
  L.push('# Benchmark results');
  L.push('');
  L.push(
    `Generated by \`${envShown ? `${envShown} ` : ''}npm run bench\` on ${st.generatedAt} in ${r.totalMinutes.toFixed(1)} min. Re-running overwrites this file except the notes block at the end. What each figure means, and the caveats: [README.md](README.md).`,
  );
  L.push('');
  L.push('## Machine');
  L.push('');
  if (m) {
    L.push(`- ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, ${m.memoryGiB.toFixed(1)} GiB RAM, Linux ${m.kernel}`);
    L.push(`- Node ${m.node}; Java: ${m.java}; Kafka ${m.kafka} (local single-node KRaft broker, 127.0.0.1); ClickHouse ${m.clickhouse} (embedded chDB)`);
    L.push(
      `- npm: ${Object.entries(m.packages)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    L.push(`- 1-minute load average at start: ${m.load1AtStart.toFixed(2)} (the machine is shared; each phase's load is listed below)`);
    const codes = [...new Set(r.rounds.map((x) => x.code).filter((x): x is string => !!x))];
    L.push(
      `- Code measured: \`${m.code}\` at start${codes.length > 1 || (codes[0] && codes[0] !== m.code) ? `; **services/ changed during the run** — ours ran at ${r.rounds.map((x) => `run ${x.run}: \`${x.code ?? '?'}\``).join(', ')}` : ''}`,
    );
  }
  L.push('');
  L.push('## Setup');
  L.push('');
  L.push(
    `- Data: ${st.records.toLocaleString('en')} records from the project generator (\`planTraffic\`, scenario \`normal\`, seed ${st.seed}, no duplicates / malformed / late), keyed by cdr_id, default kafkajs partitioner, **no compression**, acks=-1.${r.fill ? ` ${r.fill.plainRecords.toLocaleString('en')} (${pct(r.fill.plainRecords / r.fill.records)}) plain Avro, the rest Confluent-framed (schema id 1); average value ${(r.fill.bytesMixed / r.fill.records).toFixed(0)} B. Pre-fill took ${r.fill.seconds.toFixed(0)} s.` : ''}`,
  );
  L.push(
    `- Data sets: ${(st.datasets ?? ['cache']).map((d, i) => `\`${d}\` (${d === 'otp' ? 'a new subscriber for every record: ≥ 1 distinct identifier per record, no cache hits' : '20,000-subscriber zipf-skewed pool: caches hit'}; topics ${i === 0 ? '`bench.raw`, `bench.raw.confluent`' : `\`bench.raw.${d}\`, \`bench.raw.${d}.confluent\``})`).join('; ')}. Anchor and ours run on each in every round.`,
  );
  L.push(
    `- Topics: \`bench.raw\` (${st.partitions} partitions; ceilings 1 and ours) and \`bench.raw.confluent\` (the same records, every one Confluent-framed, for the anchor: AvroConfluent cannot read unframed messages). A 60-line schema registry stand-in on 127.0.0.1 serves the ids of \`schemas/registry.json\`.`,
  );
  L.push(
    `- Broker: scripts/kafka.sh defaults${st.brokerMessageMaxBytes ? `, except \`message.max.bytes=${st.brokerMessageMaxBytes}\` (BENCH_BROKER_MESSAGE_MAX_BYTES)` : ' (message.max.bytes = Kafka default 1 MiB)'}.`,
  );
  L.push(
    `- Anchor: \`ENGINE = Kafka\` with \`${st.anchorSettings}\`, \`kafka_format = 'AvroConfluent'\`; a materialized view computes ${st.anchorHash === 'hmac' ? "`lower(hex(substring(HMAC('SHA256', type:identifier, key), 1, 16)))`, the same token function ingest uses" : '`hex(sipHash128Keyed((k0, k1), type:identifier))`'} for sender and recipient and writes the project's real \`cdr\` table (openStorage + applyMigrations), without the subscriber_index view (dropped: the anchor writes cdr only).`,
  );
  L.push(
    `- Ours: \`benchmarks/ingestChild.ts\` = services/ingest/main.ts without the HTTP app: config → openRuntime → IngestService, defaults (CDR_INGEST_MAX_BATCH=${st.ingestMaxBatch}, 4 partitions consumed concurrently), CDR_LOG_LEVEL=warn, fresh group and data dir per run${st.oursNodeFlags.length ? `, node flags \`${st.oursNodeFlags.join(' ')}\`` : ''}.`,
  );
  L.push(`- Each phase is its own process. Runs are interleaved (ceiling 1, ceiling 2, anchor, ours; ×${st.runs}) so background load hits all of them alike.`);
  L.push('');
  L.push(`## Both data sets: ours against the anchor (median of ${st.runs})`);
  L.push('');
  L.push(datasetsTable(r.rounds));
  L.push('');
  L.push(
    'The issue-15 goal: a ratio ≥ 0.7 on the cache-friendly set and ≥ 0.5 at high cardinality. The anchor writes `cdr` only (no vault, index, normalisation or publish). The ceilings and the latency phase below use the first data set; the CPU profile the one it names.',
  );
  L.push('');
  L.push(`## Throughput, ${PRIMARY === 'cache' ? 'cache-friendly' : 'high-cardinality'} data set (median of ${st.runs})`);
  L.push('');
  L.push(summaryTable(r.rounds));
  L.push('');
  L.push(
    'CPU-s = user+system seconds of the measured process, all threads (for ClickHouse: its engine threads too), over the measured interval; the broker JVM is shared and listed separately. Peak RSS = VmHWM of the process.',
  );
  L.push('');
  L.push('### Per run');
  L.push('');
  L.push('| run | phase | load1 at start | records/s | CPU-s | broker CPU-s | peak RSS MiB | detail |');
  L.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const rd of r.rounds) {
    const c = rd.consumerPerf;
    if (c)
      L.push(
        `| ${rd.run} | ConsumerPerformance | ${fmt(c.load1, 2)} | ${fmtInt(c.recordsPerSecond)} | ${fmt(c.cpuSeconds)} | ${fmt(c.brokerCpuSeconds)} | ${fmtInt(c.peakRssMiB)} | ${fmtInt(c.recordsPerSecondInclJoin)}/s incl. join, ${fmt(c.mbPerSecond)} MB/s, wall ${fmt(c.wallSeconds)} s |`,
      );
    const ce = rd.ceiling;
    if (ce)
      for (const k of ce.result.cases)
        L.push(
          `| ${rd.run} | insert ${k.variant} | ${fmt(ce.load1, 2)} | ${fmtInt(k.rowsPerSecond)} | ${fmt(k.insertCpuSeconds)} | – | ${fmtInt(ce.result.usage.peakRssMiB)} | ${k.rows.toLocaleString('en')} rows; ${fmtInt(k.rowsPerSecondWithSerialise)} rows/s incl. serialisation |`,
        );
    const a = rd.anchor;
    if (a)
      L.push(
        `| ${rd.run} | anchor (Kafka engine) | ${fmt(a.load1, 2)} | ${fmtInt(a.recordsPerSecond)} | ${fmt(a.result.cpuSeconds)} | ${fmt(a.brokerCpuSeconds)} | ${fmtInt(a.result.usage.peakRssMiB)} | ${fmt(a.result.seconds)} s; first rows after ${fmt(a.result.firstRowSeconds)} s; last 75% at ${fmtInt(a.result.steadyRecordsPerSecond)}/s |`,
      );
    for (const [d, more] of Object.entries(rd.more ?? {})) {
      const ma = more.anchor;
      if (ma)
        L.push(
          `| ${rd.run} | anchor, ${d} data set | ${fmt(ma.load1, 2)} | ${fmtInt(ma.recordsPerSecond)} | ${fmt(ma.result.cpuSeconds)} | ${fmt(ma.brokerCpuSeconds)} | ${fmtInt(ma.result.usage.peakRssMiB)} | ${fmt(ma.result.seconds)} s |`,
        );
      const mo = more.ours;
      if (mo)
        L.push(
          `| ${rd.run} | ours, ${d} data set | ${fmt(mo.load1, 2)} | ${fmtInt(mo.recordsPerSecond)} | ${fmt(mo.cpuSeconds)} | ${fmt(mo.brokerCpuSeconds)} | ${fmtInt(mo.peakRssMiB)} | ${fmt(mo.seconds)} s; stored ${fmtInt(mo.stats['stored'])}, dlq ${fmtInt(mo.stats['dlq'])} |`,
        );
    }
    const o = rd.ours;
    if (o)
      L.push(
        `| ${rd.run} | ours (IngestService) @ ${rd.code ?? '?'} | ${fmt(o.load1, 2)} | ${fmtInt(o.recordsPerSecond)} | ${fmt(o.cpuSeconds)} | ${fmt(o.brokerCpuSeconds)} | ${fmtInt(o.peakRssMiB)} | ${fmt(o.seconds)} s; last 75% at ${fmtInt(o.steadyRecordsPerSecond)}/s; start-up ${fmt(o.startupSeconds)} s; stored ${fmtInt(o.stats['stored'])}, dup ${fmtInt(o.stats['duplicate'])}, dlq ${fmtInt(o.stats['dlq'])}, batches ${fmtInt(o.stats['batches'])} |`,
      );
  }
  L.push('');
  L.push('## Latency: produce → queryable');
  L.push('');
  const lt = r.latency;
  if (lt) {
    L.push(
      `At ${fmtInt(lt.targetRate)} records/s (50% of our median throughput; achieved ${fmtInt(lt.achievedRate)}/s), ${lt.seconds} s measured after a ${lt.warmupSeconds} s warm-up, ${lt.measured.toLocaleString('en')} records, load1 ${fmt(lt.load1, 2)} at start:`,
    );
    L.push('');
    L.push('| p50 | p90 | p99 | max | ingest CPU-s | peak RSS MiB |');
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
    L.push(
      `| ${fmt(lt.p50Ms, 0)} ms | ${fmt(lt.p90Ms, 0)} ms | ${fmt(lt.p99Ms, 0)} ms | ${fmt(lt.maxMs, 0)} ms | ${fmt(lt.ingestCpuSeconds)} | ${fmtInt(lt.peakRssMiB)} |`,
    );
    L.push('');
    L.push(
      "Measured per record: from the moment the benchmark's producer handed it to kafkajs `send()` (acks=-1) to the moment the ingest child's `storage.insert('cdr', …)` call covering its offset returned (from then on it answers SELECTs in the same engine). The offset commit follows a few ms later and is not included; the vault insert and the cdr.pseudonymised publish happen before the cdr insert (which also writes the index through the view) and are included. Both clocks are the same machine's wall clock.",
    );
  } else {
    L.push('Not measured in this run.');
  }
  L.push('');
  L.push('## CPU profile of the ingest child (hot path)');
  L.push('');
  const p = r.profile;
  if (p) {
    const busy = p.summary.totalMs - p.summary.idleMs;
    L.push(
      `\`node --cpu-prof\` on the ingest child over ${p.run.records.toLocaleString('en')} records of the ${st.profileDataset ?? 'cache'} data set (${fmtInt(p.run.recordsPerSecond)} records/s under the profiler); main thread, ${(busy / 1000).toFixed(1)} s busy of ${(p.summary.totalMs / 1000).toFixed(1)} s sampled. Self time aggregated by function name + script + line; shares are of busy (non-idle) time. ClickHouse's own work runs on chDB threads and is not in this JS profile. Profile: \`benchmarks/results/ingest.cpuprofile\` (open in Chrome DevTools).`,
    );
    L.push('');
    L.push('| # | self | incl. | function | location |');
    L.push('| ---: | ---: | ---: | --- | --- |');
    p.summary.top.forEach((t, i) => L.push(`| ${i + 1} | ${pct(t.selfShare)} | ${pct(t.totalShare)} | \`${t.name}\` | ${t.location} |`));
    L.push('');
    L.push('By category (self time):');
    L.push('');
    L.push('| category | self |');
    L.push('| --- | ---: |');
    for (const c of p.summary.byCategory.filter((c) => c.category !== '(idle)' && c.selfShare >= 0.005)) L.push(`| ${c.category} | ${pct(c.selfShare)} |`);
    L.push('');
    L.push('Project functions by inclusive time (what each stage costs with everything it calls):');
    L.push('');
    L.push('| inclusive | function | location |');
    L.push('| ---: | --- | --- |');
    for (const c of p.inclusive) L.push(`| ${pct(c.totalShare)} | \`${c.name}\` | ${c.location} |`);
    if (p.worker) {
      const w = p.worker;
      L.push('');
      L.push(
        `The prepare worker thread of the same run (decode, validate, normalise, tokenise, seal, Avro, RowBinary: ADR 0029): ${((w.totalMs - w.idleMs) / 1000).toFixed(1)} s busy of ${(w.totalMs / 1000).toFixed(1)} s sampled, self time:`,
      );
      L.push('');
      L.push('| # | self | incl. | function | location |');
      L.push('| ---: | ---: | ---: | --- | --- |');
      w.top.forEach((t, i) => L.push(`| ${i + 1} | ${pct(t.selfShare)} | ${pct(t.totalShare)} | \`${t.name}\` | ${t.location} |`));
      L.push('');
      L.push('| category (worker) | self |');
      L.push('| --- | ---: |');
      for (const c of w.byCategory.filter((c) => c.category !== '(idle)' && c.selfShare >= 0.005)) L.push(`| ${c.category} | ${pct(c.selfShare)} |`);
    }
  } else {
    L.push('Not measured in this run.');
  }
  L.push('');
  L.push('## Stage micro-benchmarks (`benchmarks/stages.ts`)');
  L.push('');
  L.push(r.stages ? stagesMarkdown(r.stages) : 'Not measured in this run.');
  L.push('');
  if (r.errors.length) {
    L.push('## Errors');
    L.push('');
    L.push('```');
    L.push(r.errors.join('\n'));
    L.push('```');
    L.push('');
  }
  return L.join('\n');
}

if (process.argv.includes('--render')) renderFromJson();
else await main();
