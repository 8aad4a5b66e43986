/**
 * Composition root of the retention job as its own process (docker-compose): runs the pass every
 * CDR_RETENTION_INTERVAL_MS against CLICKHOUSE_URL, serves /healthz and /metrics (cdr_retention_deleted_total),
 * and records each pass in the audit trail (needs CDR_SIGNING_KEY_FILE with a ClickHouse server).
 * `cdr start` schedules the same pass in-process.
 */
import { openProcessAudit } from '../platform/audit/index.ts';
import { loadConfigAndFiles } from '../platform/config/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';
import { checkMasterKeyFile } from '../platform/keys/index.ts';
import { checkSigningKeyFile } from '../platform/signing/index.ts';
import { HealthRegistry, startOpsServer } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, startService } from '../platform/runtime/index.ts';
import { RetentionSchedule } from './scheduler.ts';
import { createRetention } from './wiring.ts';

await startService('retention', async () => {
  const config = loadConfigAndFiles(process.env, ['clickhouse', 'masterKey', 'api', 'audit', 'retention'], {
    CDR_MASTER_KEY_FILE: checkMasterKeyFile,
    ...LOG_FILE_CHECKS,
    CDR_SIGNING_KEY_FILE: checkSigningKeyFile,
  });
  const rt = await openRuntime(config, { needKafka: false });
  // Every pass is recorded in the audit trail (chain "retention" unless CDR_AUDIT_CHAIN says otherwise).
  const audit = await openProcessAudit(rt, 'retention');
  const { pass } = createRetention(rt, { audit, signer: audit.signer });
  const schedule = new RetentionSchedule(pass, config.retention.intervalMs, rt.log);
  const health = new HealthRegistry();
  health.register('retention', () => schedule.health());
  // The HTTP server also keeps the process alive between passes.
  const ops = await startOpsServer({ host: config.api.host, port: config.api.port, log: rt.log, metrics: rt.metrics, health });
  onShutdownSignal(rt.log, async () => {
    await schedule.stop();
    await ops.close();
    await audit.close();
    await rt.close();
  });
  schedule.start(1_000);
});
