import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactUrl, unknownCdrVariableWarnings, type PipelineConfig } from '../platform/config/index.ts';
import { openStorage } from '../platform/clickhouse/index.ts';
import { createLogger, logDestination, logDestinationName } from '../platform/observability/index.ts';
import { compressionType, publisherInUse } from '../platform/kafka/index.ts';
import { keepPrivate, openRuntime, permissionWarning, requireKafka, onShutdownSignal } from '../platform/runtime/index.ts';
import { SUBSCRIBER_GAP_MS, type ScenarioName } from '../generator/trafficGenerator.ts';
import { buildApi } from '../api/app.ts';
import { HealthRegistry } from '../platform/http/index.ts';
import { TokenRegistry, ensureDevTokens } from '../api/auth.ts';
import { createApiServices } from '../api/wiring.ts';
import { loadSigner } from '../platform/signing/index.ts';
import { sealerInUse } from '../platform/keys/index.ts';
import { RetentionSchedule } from '../retention/scheduler.ts';
import { createRetention } from '../retention/wiring.ts';
import { produceTraffic } from '../generator/producer.ts';
import { createIngest } from '../ingest/createIngest.ts';
import { createBilling } from '../billing/createBilling.ts';
import { createFraud } from '../fraud/createFraud.ts';
import { StatusLine, healthWords, retentionSchedule } from './statusLine.ts';
import { claimDataDir, startPreflight } from './startPreflight.ts';
import { makeDirectories } from '../platform/config/directories.ts';

/** How long a stop waits for the synthetic traffic's send in progress before it stops the consumers anyway. */
const TRAFFIC_STOP_WAIT_MS = 5_000;

export interface StartArgs {
  rate: number;
  seed?: number;
  scenario: ScenarioName;
}

/**
 * `cdr start`: every service in one process (one process per chDB data directory), the local broker
 * unless KAFKA_BROKERS is set, synthetic traffic at --rate, and a live status line. Ctrl-C stops cleanly;
 * starting again on the same data directory resumes where it stopped.
 */
export async function runStart(config: PipelineConfig, args: StartArgs): Promise<void> {
  const dataDir = resolve(config.dataDir);
  // Before anything starts or is written: the data directory, another cdr start holding it, the API's port.
  await startPreflight(config);
  // Before the first file is written: the data directory holds identifiers (docs/data-protection.md).
  if (!config.clickhouse.url || !config.kafka.brokers) keepPrivate(dataDir);
  else makeDirectories(dataDir, 0o700);
  const releaseDataDir = claimDataDir(dataDir);
  // Until the pipeline's own handler is in place (below, once everything is open), a signal ends start-up at once and
  // says so: nothing has been consumed yet, and the local broker's watchdog ends it once this process is gone (found
  // from outside: a Ctrl-C while the broker started exited 130 without a word).
  const stopWhileOpening = (signal: NodeJS.Signals): void => {
    process.stderr.write(
      `\ncdr start: ${signal} while starting: stopped before consuming anything${config.kafka.brokers ? '' : ' (the local broker stops by itself)'}\n`,
    );
    releaseDataDir();
    process.exit(130);
  };
  process.once('SIGINT', stopWhileOpening);
  process.once('SIGTERM', stopWhileOpening);
  const defaultLogFile = resolve(dataDir, 'pipeline.log');
  const log = createLogger(config.logLevel, logDestination(config.logFile, defaultLogFile));
  process.stderr.write(`cdr-pipeline: data in ${dataDir} (logs: ${logDestinationName(config.logFile, defaultLogFile)})\n`);
  for (const warning of unknownCdrVariableWarnings()) process.stderr.write(`warning: ${warning}\n`);
  // With KAFKA_BROKERS / CLICKHOUSE_URL set, nothing of that is started here (found from outside: the line said so anyway).
  const starting = [config.kafka.brokers ? undefined : 'Kafka broker', config.clickhouse.url ? undefined : 'embedded ClickHouse'].filter(Boolean);
  process.stderr.write(
    starting.length > 0
      ? `starting ${starting.join(' and ')}${config.kafka.brokers ? ` (Kafka at ${config.kafka.brokers.join(',')})` : ''}…\n`
      : `connecting to Kafka at ${config.kafka.brokers!.join(',')} and ClickHouse at ${redactUrl(config.clickhouse.url!)}…\n`,
  );
  const rt = await openRuntime(config, { startLocalKafka: true, log });
  const kafka = requireKafka(rt);
  // One process, one event loop: ingest, billing and fraud prepare their batches in slices so API requests are not kept waiting.
  const ingest = createIngest(rt, { sharesEventLoop: true, onFatal: (err) => shutdown(`ingest stopped: ${err.code}: ${err.message}`, 1) });
  // Retention gets its own ClickHouse session on the same data: a pass's synchronous mutation (~10 s embedded)
  // would otherwise stall ingest, whose inserts share one session that runs one statement at a time.
  const retentionStorage = await openStorage(config.clickhouse, config.dataDir);
  const signer = loadSigner(config.audit.signingKeyFile, dataDir, true);
  // The API gets a third session (its reads never wait for ingest's inserts or a retention mutation).
  const services = await createApiServices(rt, {
    signer,
    chain: config.audit.chain ?? 'main',
    anchorDir: config.audit.anchorDir,
    checkpointMs: config.audit.checkpointMs,
    allowClockOverride: config.retention.allowClockOverride,
    maxAnswerRows: config.api.maxAnswerRows,
    queryTimeoutSeconds: config.api.queryTimeoutSeconds,
    queryMaxMemoryBytes: config.api.queryMaxMemoryBytes,
    billingPlansFile: config.billing.plansFile,
  });
  // Billing gets a session of its own as well: its inserts never queue behind ingest's.
  const billingStorage = await openStorage(config.clickhouse, config.dataDir);
  const { service: billing, plans: billingPlans } = await createBilling(rt, {
    storage: billingStorage,
    sharesEventLoop: true,
    onFatal: (err) => shutdown(`billing stopped: ${err.code}: ${err.message}`, 1),
  });
  // Fraud too: its own session, its own group, no identifier.
  const fraudStorage = await openStorage(config.clickhouse, config.dataDir);
  const { service: fraud, rulesFile: fraudRules } = await createFraud(rt, {
    storage: fraudStorage,
    sharesEventLoop: true,
    onFatal: (err) => shutdown(`fraud stopped: ${err.code}: ${err.message}`, 1),
  });
  const { pass } = createRetention(rt, {
    onKeyDestroyed: (month) => ingest.forgetMonth(month),
    storage: retentionStorage,
    audit: services.audit,
    signer: services.audit.signer,
  });
  const schedule = new RetentionSchedule(pass, config.retention.intervalMs, log);
  let tokensFile = config.api.tokensFile;
  let devSecrets: string | undefined;
  if (!tokensFile) {
    const dev = ensureDevTokens(dataDir);
    tokensFile = dev.tokensFile;
    devSecrets = dev.secretsFile;
  }
  for (const [path, what] of [
    [config.api.tokensFile, 'the API tokens file'],
    [config.audit.signingKeyFile, 'the signing key file'],
  ] as const) {
    const exposed = path ? permissionWarning(path, what) : undefined;
    if (exposed) {
      log.warn({ path }, exposed);
      process.stderr.write(`warning: ${exposed}\n`);
    }
  }
  const health = new HealthRegistry();
  if (rt.localBroker) health.register('kafka_broker', () => rt.brokerHealth() ?? { status: 'ok' });
  health.register('ingest', () => ingest.health());
  health.register('retention', () => schedule.health());
  health.register('fraud', () => fraud.health());
  health.register('billing', () => {
    const h = billing.health();
    return billingPlans.problem && h.status === 'ok' ? { status: 'degraded', reasons: [billingPlans.problem], detail: h.detail } : h;
  });
  const app = buildApi({
    log,
    metrics: rt.metrics,
    health,
    tokens: TokenRegistry.fromFile(tokensFile),
    services: { ...services, retention: pass },
    rateLimit: { max: config.api.rateLimit, windowMs: config.api.rateWindowMs },
  });
  const address = await app.listen({ host: config.api.host, port: config.api.port });
  // Where the running API is, for commands that cannot open the embedded store while this process holds it.
  const runFile = resolve(dataDir, 'api.json');
  writeFileSync(runFile, `${JSON.stringify({ pid: process.pid, url: address, started_at: new Date().toISOString() })}\n`, { mode: 0o600 });
  const producerAbort = new AbortController();
  let produced = 0;
  let producing: Promise<unknown> = Promise.resolve();
  const status = new StatusLine(() => ({
    ...ingest.stats,
    produced,
    billed: billing.stats.rated + billing.stats.unrated,
    openAlerts: fraud.stats.open,
    health: healthWords(health.report()),
  }));

  process.off('SIGINT', stopWhileOpening);
  process.off('SIGTERM', stopWhileOpening);
  let stopRequested = false;
  const shutdown = onShutdownSignal(
    log,
    async (reason) => {
      stopRequested = true;
      status.stop();
      process.stderr.write(
        `\nstopping (${reason}): traffic, then ingest, billing and fraud (each finishing its batch in progress), API${config.kafka.brokers ? '' : ', broker'}…\n`,
      );
      log.info({ reason }, 'stopping');
      producerAbort.abort();
      // Bounded: the synthetic producer's send in progress retries on its own clock (found from outside: with the
      // broker frozen the stop waited ~4.5 min for it before the consumers even began to stop). What it has not sent
      // is simply not sent; the process ends it.
      await Promise.race([producing.catch(() => undefined), new Promise((r) => setTimeout(r, TRAFFIC_STOP_WAIT_MS).unref())]);
      await schedule.stop();
      billingPlans.unwatch();
      // Side by side: each consumer finishes and commits its own batch in progress (what one has not consumed yet stays
      // in Kafka for the next start). One after another, a dead broker made each wait out its own deadline in turn
      // (found from outside: a stop took ~95 s). One stop that throws at once must not end the process while another
      // still commits: all three end, the rest closes, and then the first failure fails the stop.
      const stops = await Promise.allSettled([ingest.stop(), billing.stop(), fraud.stop()]);
      await app.close();
      rmSync(runFile, { force: true });
      await services.close();
      await retentionStorage.close();
      await billingStorage.close();
      await fraudStorage.close();
      await rt.close();
      releaseDataDir();
      const failedStop = stops.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failedStop) throw failedStop.reason;
      log.info({ ...ingest.stats }, 'stopped');
      process.stderr.write(`stopped. stored=${ingest.stats.stored} duplicates=${ingest.stats.duplicate} late=${ingest.stats.late} dlq=${ingest.stats.dlq}\n`);
    },
    (line) => process.stderr.write(line),
  );

  try {
    await ingest.start();
    await billing.start();
    await fraud.start();
  } catch (err) {
    // Stopped while the consumers started (a signal, or one of them failing for good): a start cut short by the stop
    // is no failure of its own; the stop finishes and exits with its code (found from outside: SIGTERM here printed
    // "cdr: publisher is closed" and exited 1).
    if (stopRequested) await new Promise<never>(() => undefined);
    throw err;
  }
  process.stderr.write(
    `kafka ${rt.brokers.join(',')} | clickhouse ${config.clickhouse.url ? redactUrl(config.clickhouse.url) : 'embedded (chDB)'} | API ${address} | metrics ${address}/metrics | publisher ${publisherInUse(config.kafka.publisher)}\n` +
      `API tokens: ${tokensFile}${devSecrets ? ` (development bearer tokens per role: ${devSecrets})` : ''}\n` +
      `signing key: ${signer.path}${signer.source === 'generated-dev' ? ' (development key)' : ''}; public key ${signer.keyId} at ${address}/v1/lea/signing-key; OpenAPI ${address}/openapi.json\n` +
      `billing: tariff plans ${billingPlans.file}; statements at ${address}/v1/billing/statements/{account}/{month}\n` +
      `fraud: rules ${fraudRules}; alerts at ${address}/v1/fraud/alerts\n` +
      `ingest: identifiers sealed by ${sealerInUse(config.ingest.sealer)} (CDR_NATIVE_SEALER)\n` +
      `retention pass: ${retentionSchedule(config.retention.intervalMs)}; synthetic traffic: ${args.rate > 0 ? `${args.rate}/s (${args.scenario})` : 'off'}; Ctrl-C to stop\n`,
  );
  schedule.start();
  if (args.rate > 0) {
    producing = produceTraffic(kafka, {
      topic: config.kafka.topics.raw,
      count: Number.MAX_SAFE_INTEGER,
      rate: args.rate,
      seed: args.seed ?? Date.now() % 2_147_483_647,
      scenario: args.scenario,
      duplicates: 0.01,
      malformed: 0.002,
      late: 0.002,
      startTime: Date.now(),
      eventsPerSecond: args.rate,
      subscriberGapMs: SUBSCRIBER_GAP_MS,
      // Beside a schema registry its ids are the producer's, not schemas/registry.json's: plain Avro is read by v1 alone.
      ...(config.ingest.schemaRegistry ? { plainShare: 1 } : {}),
      signal: producerAbort.signal,
      compression: compressionType(config.kafka.compression),
      onProgress: (sent) => {
        produced = sent;
      },
    }).catch((err: unknown) =>
      // Cut short by the stop (its send in progress failed): expected, not an error of the pipeline.
      stopRequested
        ? log.info({ err: (err as Error).message }, 'synthetic traffic stopped with the pipeline')
        : log.error({ err }, 'synthetic traffic stopped'),
    );
  }
  status.start();
}
