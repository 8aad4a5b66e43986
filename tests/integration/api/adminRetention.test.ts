/**
 * `POST /v1/admin/retention/run` through `inject()` on the real engine: authenticated, authorised by role, the
 * report shape of docs/contract.md, 4xx with a message on bad requests; `/healthz` and `/metrics` without a token.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { addMonthsUtc, startOfMonthUtc } from '../../../services/core/retention/retentionCalendar.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { HealthRegistry } from '../../../services/platform/http/health.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { buildApi } from '../../../services/api/app.ts';
import { TokenRegistry } from '../../../services/api/auth.ts';
import type { RetentionReport } from '../../../services/retention/retentionPass.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import { storeDirectly } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';

const R = startOfMonthUtc(Date.now());
const tokens = { admin: 'admin-secret-token', auditor: 'auditor-secret-token' };
const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

describe('admin retention API', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let app: FastifyInstance;

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('warn') });
    const gen = new TrafficGenerator({ seed: 7, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
    await storeDirectly(rt, gen.take(50));
    const tokensFile = join(setup.dataDir, 'tokens.json');
    const digest = (t: string): string => createHash('sha256').update(t).digest('hex');
    writeFileSync(
      tokensFile,
      JSON.stringify({
        tokens: [
          { name: 'ops', sha256: digest(tokens.admin), roles: ['admin'] },
          { name: 'aud', sha256: digest(tokens.auditor), roles: ['auditor'] },
        ],
      }),
    );
    app = buildApi({
      log: rt.log,
      metrics: rt.metrics,
      health: new HealthRegistry(),
      tokens: TokenRegistry.fromFile(tokensFile),
      retention: createRetention(rt).pass,
    });
  });

  after(async () => {
    await app?.close();
    await rt?.close();
  });

  it('needs a bearer token and the admin role', async () => {
    const none = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {} });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ error: string }>().error, 'unauthenticated');
    const wrong = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {}, headers: auth('nope') });
    assert.equal(wrong.statusCode, 401);
    const auditor = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {}, headers: auth(tokens.auditor) });
    assert.equal(auditor.statusCode, 403);
    assert.equal(auditor.json<{ error: string }>().error, 'forbidden');
    assert.match(auditor.json<{ message: string }>().message, /admin/);
  });

  it('runs a dry pass with the report shape of the contract and destroys nothing', async () => {
    const future = new Date(addMonthsUtc(R, 14)).toISOString();
    const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: future, dry_run: true }, headers: auth(tokens.admin) });
    assert.equal(res.statusCode, 200);
    const body = res.json<RetentionReport>();
    assert.equal(body.now, future);
    assert.equal(body.dry_run, true);
    const m = new Date(R).toISOString().slice(0, 7);
    const current = body.actions.find((a) => a.class === 'identifiers' && a.month === m);
    assert.ok(current, 'the current month, expired by then, is listed');
    assert.ok(current.rows > 0 && current.keys_destroyed === 1);
    const { storage } = requireStorage(rt);
    const [still] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')}`);
    assert.equal(Number(still!.n), 1, 'a dry run destroys nothing');
  });

  it('rejects bad requests with a 4xx and a message', async () => {
    const badNow = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: 'yesterday' }, headers: auth(tokens.admin) });
    assert.equal(badNow.statusCode, 400);
    assert.deepEqual(Object.keys(badNow.json<object>()).sort(), ['error', 'message']);
    const extra = await app.inject({
      method: 'POST',
      url: '/v1/admin/retention/run',
      payload: { now: '2026-01-01T00:00:00Z', delete_everything: true },
      headers: auth(tokens.admin),
    });
    assert.equal(extra.statusCode, 400);
    const badJson = await app.inject({
      method: 'POST',
      url: '/v1/admin/retention/run',
      payload: '{"dry_run":',
      headers: { ...auth(tokens.admin), 'content-type': 'application/json' },
    });
    assert.equal(badJson.statusCode, 400);
    assert.equal(badJson.json<{ error: string }>().error, 'bad_request');
    const unknown = await app.inject({ method: 'GET', url: '/v1/nothing', headers: auth(tokens.admin) });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<{ error: string }>().error, 'not_found');
  });

  it('serves liveness and metrics without a token', async () => {
    const health = await app.inject('/healthz');
    assert.equal(health.statusCode, 200);
    assert.equal(health.json<{ status: string }>().status, 'ok');
    const metrics = await app.inject('/metrics');
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="401"\} 2/);
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="403"\} 1/);
  });
});
