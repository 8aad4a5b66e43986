/**
 * Composition root of the retention job as its own process (docker-compose): runs the pass hourly
 * (CDR_RETENTION_INTERVAL_MS) against CLICKHOUSE_URL. `cdr start` schedules the same pass in-process.
 */
import { loadConfig } from '../shared/src/config/config.ts';
import { openRuntime } from '../shared/src/runtime/runtime.ts';
import { onShutdownSignal } from '../shared/src/runtime/shutdown.ts';
import { RetentionSchedule } from './scheduler.ts';
import { createRetention } from './wiring.ts';

const config = loadConfig();
const rt = await openRuntime(config, { needKafka: false });
const { pass } = createRetention(rt);
const schedule = new RetentionSchedule(pass, config.retention.intervalMs, rt.log);
onShutdownSignal(rt.log, async () => {
  await schedule.stop();
  await rt.close();
});
schedule.start(1_000);
setInterval(() => undefined, 1 << 30); // keep the process alive between passes
