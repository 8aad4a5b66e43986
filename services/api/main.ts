/**
 * Composition root of the internal API as its own process (docker-compose): the /v1 routes, /healthz, /metrics
 * and /openapi.json on CDR_API_HOST:CDR_API_PORT, against CLICKHOUSE_URL. Needs CDR_API_TOKENS_FILE (there is
 * no development token file outside `cdr start`).
 */
import { PipelineError } from '../core/index.ts';
import { loadConfig } from '../platform/config/index.ts';
import { HealthRegistry } from '../platform/http/index.ts';
import { onShutdownSignal, openRuntime, permissionWarning, startService } from '../platform/runtime/index.ts';
import { createRetention } from '../retention/wiring.ts';
import { buildApi } from './app.ts';
import { TokenRegistry } from './auth.ts';

await startService('api', async () => {
  const config = loadConfig(process.env, ['clickhouse', 'masterKey', 'api', 'retention']);
  if (!config.api.tokensFile) throw new PipelineError('config_invalid', 'invalid configuration: CDR_API_TOKENS_FILE: required for the API as its own process');
  const tokens = TokenRegistry.fromFile(config.api.tokensFile);
  const rt = await openRuntime(config, { needKafka: false });
  const exposed = permissionWarning(config.api.tokensFile, 'the API tokens file');
  if (exposed) rt.log.warn({ path: config.api.tokensFile }, exposed);
  const { pass } = createRetention(rt);
  const app = buildApi({
    log: rt.log,
    metrics: rt.metrics,
    health: new HealthRegistry(),
    tokens,
    retention: pass,
    allowClockOverride: config.retention.allowClockOverride,
  });
  await app.listen({ host: config.api.host, port: config.api.port });
  onShutdownSignal(rt.log, async () => {
    await app.close();
    await rt.close();
  });
});
