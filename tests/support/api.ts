/**
 * The internal API for tests, built as `cdr start` builds it (its own storage session, the audit trail, holds,
 * the disclosure desk, a signing key), answering through `inject()` or a real socket. Bearer tokens: one per role
 * (`tokenOf(role)`), plus `all` holding every role.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../services/api/app.ts';
import { ROLES, TokenRegistry } from '../../services/api/auth.ts';
import { createApiServices, type ApiServices, type ApiServicesOptions } from '../../services/api/wiring.ts';
import { HealthRegistry } from '../../services/platform/http/index.ts';
import type { PipelineRuntime } from '../../services/platform/runtime/index.ts';
import { loadSigner, type LoadedSigner } from '../../services/platform/signing/index.ts';

export const tokenOf = (role: string): string => `token-of-${role}`;
export const auth = (role: string): Record<string, string> => ({ authorization: `Bearer ${tokenOf(role)}` });

export interface TestApi {
  readonly app: FastifyInstance;
  readonly services: ApiServices;
  readonly signer: LoadedSigner;
  close(): Promise<void>;
}

export async function openTestApi(
  rt: PipelineRuntime,
  opts: Partial<ApiServicesOptions> & { rateLimit?: { max: number; windowMs: number }; extraTokens?: { name: string; token: string; roles: string[] }[] } = {},
): Promise<TestApi> {
  const tokensFile = join(rt.config.dataDir, 'test-api-tokens.json');
  const digest = (t: string): string => createHash('sha256').update(t).digest('hex');
  writeFileSync(
    tokensFile,
    JSON.stringify({
      tokens: [
        ...ROLES.map((r) => ({ name: `test-${r}`, sha256: digest(tokenOf(r)), roles: [r] })),
        { name: 'test-all', sha256: digest(tokenOf('all')), roles: [...ROLES] },
        ...(opts.extraTokens ?? []).map((t) => ({ name: t.name, sha256: digest(t.token), roles: t.roles })),
      ],
    }),
  );
  const signer = opts.signer ?? loadSigner(undefined, rt.config.dataDir, true);
  const services = await createApiServices(rt, { chain: 'test', checkpointMs: 0, ...opts, signer });
  const app = buildApi({
    log: rt.log,
    metrics: rt.metrics,
    health: new HealthRegistry(),
    tokens: TokenRegistry.fromFile(tokensFile),
    services,
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : { rateLimit: { max: 100_000, windowMs: 60_000 } }),
  });
  await app.ready();
  return {
    app,
    services,
    signer,
    async close() {
      await app.close();
      await services.close();
    },
  };
}
