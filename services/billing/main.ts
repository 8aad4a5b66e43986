/**
 * Composition root of the billing service as its own process: config → runtime (no master key: billing never
 * touches an identifier) → billing on cdr.pseudonymised, /healthz and /metrics on CDR_API_HOST:CDR_API_PORT.
 * `cdr start` wires the same service in-process. A consumer that stops for good ends the process with exit code 1.
 */
import { loadConfigAndFiles } from '../platform/config/index.ts';
import { KAFKA_FILE_CHECKS } from '../platform/kafka/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';
import { HealthRegistry, startOpsServer } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, startService } from '../platform/runtime/index.ts';
import { createBilling } from './createBilling.ts';
import { plansFileOf, readPlanFile } from './planFile.ts';

await startService('billing', async () => {
  const config = loadConfigAndFiles(process.env, ['kafka', 'clickhouse', 'billing', 'api'], {
    CDR_BILLING_PLANS_FILE: (path) => readPlanFile(plansFileOf(path)),
    ...KAFKA_FILE_CHECKS,
    ...LOG_FILE_CHECKS,
  });
  const rt = await openRuntime(config, { startLocalKafka: false });
  const health = new HealthRegistry();
  const { service: billing, plans } = await createBilling(rt, { onFatal: (err) => shutdown(`billing stopped: ${err.code}`, 1) });
  health.register('billing', () => {
    const h = billing.health();
    return plans.problem && h.status === 'ok' ? { status: 'degraded', reasons: [plans.problem], detail: h.detail } : h;
  });
  const ops = await startOpsServer({ host: config.api.host, port: config.api.port, log: rt.log, metrics: rt.metrics, health });
  const shutdown = onShutdownSignal(rt.log, async () => {
    plans.unwatch();
    await billing.stop();
    await ops.close();
    await rt.close();
  });
  await billing.start();
  if (process.send) {
    setInterval(
      () => process.send?.({ type: 'stats', stats: { ...billing.stats, rss: process.memoryUsage().rss, health: billing.health().status } }),
      200,
    ).unref();
  }
});
