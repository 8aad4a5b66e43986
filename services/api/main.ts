/**
 * Composition root of the internal API as its own process (docker-compose): the /v1 routes, /healthz, /metrics
 * and /openapi.json on CDR_API_HOST:CDR_API_PORT, against CLICKHOUSE_URL. Needs CDR_API_TOKENS_FILE and
 * CDR_SIGNING_KEY_FILE (the development files exist only under `cdr start`).
 */
import { PipelineError } from '../core/index.ts';
import { checkDirectory, loadConfigAndFiles } from '../platform/config/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';
import { checkMasterKeyFile } from '../platform/keys/index.ts';
import { plansFileOf, readPlanFile } from '../billing/planFile.ts';
import { HealthRegistry } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, permissionWarning, startService } from '../platform/runtime/index.ts';
import { checkSigningKeyFile, loadSigner } from '../platform/signing/index.ts';
import { createRetention } from '../retention/wiring.ts';
import { buildApi } from './app.ts';
import { TokenRegistry } from './auth.ts';
import { createApiServices } from './wiring.ts';

await startService('api', async () => {
  const config = loadConfigAndFiles(
    process.env,
    ['clickhouse', 'masterKey', 'api', 'audit', 'retention', 'billing'],
    {
      CDR_MASTER_KEY_FILE: checkMasterKeyFile,
      // As cdr start checks it (found from outside: a file as the anchor directory failed after the migrations, ENOTDIR, exit 1).
      CDR_AUDIT_ANCHOR_DIR: checkDirectory,
      CDR_SIGNING_KEY_FILE: checkSigningKeyFile,
      CDR_API_TOKENS_FILE: (path) => TokenRegistry.fromFile(path),
      CDR_BILLING_PLANS_FILE: (path) => readPlanFile(plansFileOf(path)),
      ...LOG_FILE_CHECKS,
    },
    // Named with every other problem in one message (they came in a second one, after the rest was fixed).
    (env) => [
      ...(env['CDR_API_TOKENS_FILE']?.trim() ? [] : ['CDR_API_TOKENS_FILE: required for the API as its own process']),
      ...(env['CDR_SIGNING_KEY_FILE']?.trim() || !env['CLICKHOUSE_URL']?.trim()
        ? []
        : ['CDR_SIGNING_KEY_FILE: required for the API as its own process (with a ClickHouse server)']),
    ],
  );
  if (!config.api.tokensFile) throw new PipelineError('invariant_broken', 'CDR_API_TOKENS_FILE was checked at start-up');
  const tokens = TokenRegistry.fromFile(config.api.tokensFile);
  const signer = loadSigner(config.audit.signingKeyFile, config.dataDir, !config.clickhouse.url);
  const rt = await openRuntime(config, { needKafka: false });
  for (const [path, what] of [
    [config.api.tokensFile, 'the API tokens file'],
    [signer.path, 'the signing key file'],
  ] as const) {
    const exposed = permissionWarning(path, what);
    if (exposed) rt.log.warn({ path }, exposed);
  }
  const services = await createApiServices(rt, {
    signer,
    chain: config.audit.chain ?? 'api',
    anchorDir: config.audit.anchorDir,
    checkpointMs: config.audit.checkpointMs,
    allowClockOverride: config.retention.allowClockOverride,
    maxAnswerRows: config.api.maxAnswerRows,
    queryTimeoutSeconds: config.api.queryTimeoutSeconds,
    queryMaxMemoryBytes: config.api.queryMaxMemoryBytes,
    // The plans POST /v1/billing/rerate prices with: the operator's file, as billing's (it was the shipped example).
    billingPlansFile: config.billing.plansFile,
  });
  const { pass } = createRetention(rt, { audit: services.audit, signer: services.audit.signer });
  const app = buildApi({
    log: rt.log,
    metrics: rt.metrics,
    health: new HealthRegistry(),
    tokens,
    services: { ...services, retention: pass },
    rateLimit: { max: config.api.rateLimit, windowMs: config.api.rateWindowMs },
  });
  await app.listen({ host: config.api.host, port: config.api.port });
  onShutdownSignal(rt.log, async () => {
    await app.close();
    await services.close();
    await rt.close();
  });
});
