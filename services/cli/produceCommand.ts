import { resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { runningBrokerPort } from '../../infra/kafka/localBroker.ts';
import { PipelineError } from '../core/index.ts';
import type { PipelineConfig } from '../platform/config/index.ts';
import { compressionType, createKafka, ensureTopics, kafkaClientSecurity, pipelineTopics, recordLimitsOf } from '../platform/kafka/index.ts';
import { createCommandLogger } from '../platform/observability/index.ts';
import { SUBSCRIBER_GAP_MS, type ScenarioName } from '../generator/trafficGenerator.ts';
import { produceTraffic, ProduceInterrupted, type ProduceCounts } from '../generator/producer.ts';
import { firstAttackIndex, type PlanOptions } from '../generator/trafficPlan.ts';

/** How far ahead `cdr produce` looks for a scenario's first attack when a run held none (~1-2 s of generation). */
const ATTACK_SEARCH_RECORDS = 500_000;

export interface ProduceArgs {
  count: number;
  rate: number;
  seed: number;
  scenario: ScenarioName;
  duplicates: number;
  malformed: number;
  late: number;
  spreadMonths: number;
  quiet?: boolean;
}

/** `cdr produce`: to KAFKA_BROKERS, or the local broker a running `cdr start` owns. */
export async function runProduce(config: PipelineConfig, args: ProduceArgs): Promise<void> {
  const log = createCommandLogger(config.logLevel);
  // Without KAFKA_BROKERS: the broker running for this data directory, on whatever port its `cdr start` gave it
  // (found from outside: one started with CDR_LOCAL_KAFKA_PORT was missed), else the configured local port.
  const brokers = config.kafka.brokers ?? [`127.0.0.1:${runningBrokerPort(resolve(config.dataDir, 'kafka')) ?? config.kafka.localPort}`];
  const kafka = createKafka(brokers, `${config.kafka.clientId}-producer`, log, recordLimitsOf(config.kafka), kafkaClientSecurity(config.kafka.security));
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (cause) {
    // kafkajs says only "Connection error: connect ECONNREFUSED …" after its retries: say where and what to do.
    throw new PipelineError(
      'broker_unavailable',
      `no Kafka broker answers at ${brokers.join(', ')}: start the pipeline first (cdr start) or set KAFKA_BROKERS (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
  }
  await ensureTopics(admin, pipelineTopics(config.kafka));
  await admin.disconnect();
  const bar =
    args.quiet || !process.stderr.isTTY
      ? undefined
      : new SingleBar(
          { format: 'producing [{bar}] {percentage}% | {value}/{total} | {rate}/s | ETA {eta}s', hideCursor: true, stream: process.stderr },
          Presets.shades_classic,
        );
  bar?.start(args.count, 0, { rate: 0 });
  const started = Date.now();
  // Not a terminal (a script, a log): a plain progress line on stderr every few seconds instead of the bar.
  const LINE_EVERY_MS = 5_000;
  let lastLine = started;
  const progressLine = (sent: number): void => {
    const now = Date.now();
    if (args.quiet || bar || now - lastLine < LINE_EVERY_MS) return;
    lastLine = now;
    process.stderr.write(`cdr produce: ${sent}/${args.count} sent (${Math.round(sent / Math.max(0.001, (now - started) / 1000))}/s)\n`);
  };
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const summary = (counts: ProduceCounts, extra: Record<string, unknown> = {}): void => {
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(
      `${JSON.stringify({ topic: config.kafka.topics.raw, ...counts, seconds: Number(seconds.toFixed(2)), per_second: Math.round(counts.sent / seconds), seed: args.seed, scenario: args.scenario, ...extra })}\n`,
    );
  };
  const plan: PlanOptions = {
    count: args.count,
    seed: args.seed,
    scenario: args.scenario,
    duplicates: args.duplicates,
    malformed: args.malformed,
    late: args.late,
    startTime: Date.now() - 60_000,
    eventsPerSecond: args.rate > 0 ? args.rate : 10_000,
    ...(args.spreadMonths > 0 ? { spreadMs: args.spreadMonths * 30 * 24 * 3600 * 1000 } : {}),
    subscriberGapMs: SUBSCRIBER_GAP_MS,
  };
  let counts: ProduceCounts;
  try {
    counts = await produceTraffic(kafka, {
      ...plan,
      topic: config.kafka.topics.raw,
      rate: args.rate,
      signal: ac.signal,
      compression: compressionType(config.kafka.compression),
      // Beside a schema registry its ids are the producer's, not schemas/registry.json's: plain Avro is read by v1 alone.
      ...(config.ingest.schemaRegistry ? { plainShare: 1 } : {}),
      onProgress: (sent) => {
        bar?.update(sent, { rate: Math.round(sent / Math.max(0.001, (Date.now() - started) / 1000)) });
        progressLine(sent);
      },
    });
  } catch (err) {
    bar?.stop();
    if (!(err instanceof ProduceInterrupted)) throw err;
    // What the broker acknowledged before the failure, on stdout as a complete run's summary is (`complete: false`),
    // so a script knows where to resume; the error itself goes to stderr and the exit code is non-zero.
    summary(err.counts, { complete: false });
    throw err.cause;
  }
  bar?.stop();
  // Ctrl-C ends the run early, with what was acknowledged until then.
  summary(counts, { complete: !ac.signal.aborted });
  if (!ac.signal.aborted && args.scenario !== 'normal' && counts.attack_records === 0) process.stderr.write(`${noAttackWarning(plan, args.rate)}\n`);
}

/**
 * Found from outside: `cdr produce --scenario range_scan --count 20000` sent no record of a scan, and nothing said so.
 * Scenarios that date their attacks in event time need minutes of it; an unpaced run dates 10,000 records a second.
 */
function noAttackWarning(plan: PlanOptions, rate: number): string {
  const spanS = plan.count / plan.eventsPerSecond;
  const first = firstAttackIndex(plan, ATTACK_SEARCH_RECORDS);
  const where =
    first === undefined
      ? `none is within the first ${ATTACK_SEARCH_RECORDS.toLocaleString('en')} records of this seed at this rate`
      : `with this seed and rate the first is record ${(first + 1).toLocaleString('en')}, and an attack lasts minutes of event time beyond it`;
  return (
    `cdr produce: none of these ${plan.count.toLocaleString('en')} records is part of a ${plan.scenario} attack ("attack_records": 0). ` +
    `They span ${spanS < 10 ? spanS.toFixed(1) : Math.round(spanS)} s of event time (${rate > 0 ? `--rate ${rate} dates ${rate} a second` : '--rate 0 dates 10,000 a second'}); ${where}. ` +
    `Send more records, or at a lower --rate (more event time each), or replay hours of it through the rules: cdr fraud evaluate --scenario ${plan.scenario}`
  );
}
