/**
 * Composition root of the fraud service as its own process: config → runtime (no master key: fraud never touches an
 * identifier) → fraud on cdr.pseudonymised, /healthz and /metrics on CDR_API_HOST:CDR_API_PORT. `cdr start` wires the
 * same service in-process. A consumer that stops for good ends the process with exit code 1.
 */
import { loadConfigAndFiles } from '../platform/config/index.ts';
import { KAFKA_FILE_CHECKS } from '../platform/kafka/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';
import { HealthRegistry, startOpsServer } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, startService } from '../platform/runtime/index.ts';
import { createFraud, readRulesFile } from './createFraud.ts';

await startService('fraud', async () => {
  const config = loadConfigAndFiles(process.env, ['kafka', 'clickhouse', 'fraud', 'api'], {
    CDR_FRAUD_RULES_FILE: readRulesFile,
    ...KAFKA_FILE_CHECKS,
    ...LOG_FILE_CHECKS,
  });
  const rt = await openRuntime(config, { startLocalKafka: false });
  const health = new HealthRegistry();
  const { service: fraud } = await createFraud(rt, { onFatal: (err) => shutdown(`fraud stopped: ${err.code}`, 1) });
  health.register('fraud', () => fraud.health());
  const ops = await startOpsServer({ host: config.api.host, port: config.api.port, log: rt.log, metrics: rt.metrics, health });
  const shutdown = onShutdownSignal(rt.log, async () => {
    await fraud.stop();
    await ops.close();
    await rt.close();
  });
  await fraud.start();
  if (process.send) {
    setInterval(() => process.send?.({ type: 'stats', stats: { ...fraud.stats, rss: process.memoryUsage().rss, health: fraud.health().status } }), 200).unref();
  }
});
