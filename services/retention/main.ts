/**
 * Composition root of the retention job as its own process (docker-compose): runs the pass hourly
 * (CDR_RETENTION_INTERVAL_MS) against CLICKHOUSE_URL. `cdr start` schedules the same pass in-process.
 */
import { loadConfig } from '../platform/config/config.ts';
import { openRuntime } from '../platform/runtime/runtime.ts';
import { onShutdownSignal } from '../platform/runtime/shutdown.ts';
import { buildApp } from '../api/app.ts';
import { RetentionSchedule } from './scheduler.ts';
import { createRetention } from './wiring.ts';

const config = loadConfig();
const rt = await openRuntime(config, { needKafka: false });
const { pass } = createRetention(rt);
const schedule = new RetentionSchedule(pass, config.retention.intervalMs, rt.log);
// Liveness and cdr_retention_deleted_total for Prometheus; the HTTP server also keeps the process alive between passes.
const app = buildApp({ log: rt.log, metrics: rt.metrics, health: () => ({ retention: schedule.lastReport ?? null }) });
await app.listen({ host: config.api.host, port: config.api.port });
onShutdownSignal(rt.log, async () => {
  await schedule.stop();
  await app.close();
  await rt.close();
});
schedule.start(1_000);
