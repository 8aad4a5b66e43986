/**
 * Composition root of the ingest service as its own process (docker-compose, scale-out, crash tests):
 * config → runtime → ingest, /healthz and /metrics on CDR_API_HOST:CDR_API_PORT. `cdr start` wires the same
 * service in-process. A consumer that stops for good ends the process with exit code 1; a start-up problem with
 * exit code 2 (configuration, master key) or 1.
 */
import { loadConfigAndFiles } from '../platform/config/index.ts';
import { KAFKA_FILE_CHECKS } from '../platform/kafka/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';
import { checkMasterKeyFile } from '../platform/keys/index.ts';
import { HealthRegistry, startOpsServer } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, startService } from '../platform/runtime/index.ts';
import { createIngest } from './createIngest.ts';

await startService('ingest', async () => {
  const config = loadConfigAndFiles(process.env, ['kafka', 'clickhouse', 'masterKey', 'ingest', 'api'], {
    CDR_MASTER_KEY_FILE: checkMasterKeyFile,
    ...KAFKA_FILE_CHECKS,
    ...LOG_FILE_CHECKS,
  });
  const rt = await openRuntime(config, { startLocalKafka: false });
  const health = new HealthRegistry();
  const ingest = createIngest(rt, { onFatal: (err) => shutdown(`ingest stopped: ${err.code}`, 1) });
  health.register('ingest', () => ingest.health());
  const ops = await startOpsServer({ host: config.api.host, port: config.api.port, log: rt.log, metrics: rt.metrics, health });
  const shutdown = onShutdownSignal(rt.log, async () => {
    await ingest.stop();
    await ops.close();
    await rt.close();
  });
  await ingest.start();
  if (process.send) {
    // Tell a supervising parent (tests) how to read progress.
    setInterval(
      () => process.send?.({ type: 'stats', stats: { ...ingest.stats, rss: process.memoryUsage().rss, health: ingest.health().status } }),
      200,
    ).unref();
  }
});
