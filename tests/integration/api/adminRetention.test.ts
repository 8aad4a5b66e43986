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
import { createApiServices, type ApiServices } from '../../../services/api/wiring.ts';
import { loadSigner } from '../../../services/platform/signing/index.ts';
import type { RetentionPass, RetentionReport } from '../../../services/retention/retentionPass.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import { storeDirectly } from '../../support/seed.ts';
import { testSetup, testSigner } from '../../support/testEnv.ts';

const R = startOfMonthUtc(Date.now());
const tokens = { admin: 'admin-secret-token', auditor: 'auditor-secret-token', lea: 'lea-secret-token', dpo: 'dpo-secret-token' };
const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

describe('admin retention API with CDR_ALLOW_CLOCK_OVERRIDE=1 (a retention drill)', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let app: FastifyInstance;
  let services: ApiServices | undefined;
  let pass: RetentionPass;
  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('warn') });
    pass = createRetention(rt, { signer: testSigner() }).pass;
    const tokensFile = join(setup.dataDir, 'tokens.json');
    writeFileSync(
      tokensFile,
      JSON.stringify({
        tokens: [
          { name: 'drill', sha256: createHash('sha256').update(tokens.admin).digest('hex'), roles: ['admin'] },
          { name: 'officer', sha256: createHash('sha256').update(tokens.lea).digest('hex'), roles: ['lea-officer'] },
          { name: 'dpo', sha256: createHash('sha256').update(tokens.dpo).digest('hex'), roles: ['dpo'] },
        ],
      }),
    );
    app = buildApi({
      log: rt.log,
      metrics: rt.metrics,
      health: new HealthRegistry(),
      tokens: TokenRegistry.fromFile(tokensFile),
      services: (services = await createApiServices(rt, {
        signer: loadSigner(undefined, setup.dataDir, true),
        chain: 'test',
        checkpointMs: 0,
        retention: pass,
        allowClockOverride: true,
      })),
    });
  });
  after(async () => {
    await app?.close();
    await services?.close();
    await rt?.close();
  });
  it('lets a real run take `now`', async () => {
    const at = new Date(addMonthsUtc(R, 1)).toISOString();
    const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: at, dry_run: false }, headers: auth(tokens.admin) });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<RetentionReport>().now, at);
    assert.equal(res.json<RetentionReport>().actor, 'drill');
    // A drill says so in its report and in every entry of the signed record, however little the clock moved (found in
    // review: a destruction report guessed a drill from a day's gap alone).
    assert.equal(res.json<RetentionReport>().clock_moved, true);
    const hourAhead = new Date(Date.now() + 3_600_000).toISOString();
    const near = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: hourAhead }, headers: auth(tokens.admin) });
    assert.equal(near.json<RetentionReport>().clock_moved, true);
    const onTheClock = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {}, headers: auth(tokens.admin) });
    assert.equal(onTheClock.json<RetentionReport>().clock_moved, undefined);
    const passes = (await pass.record.all()).filter((e) => e.class === 'pass');
    assert.deepEqual(
      passes.map((e) => e.verification['clock_moved']),
      [true, true, undefined],
    );
  });

  it("refuses a law-enforcement request before it starts once a drill destroyed this month's key, and says why", async () => {
    // Found from outside (2026-12-07): the answer began (201, headers, `"records":[`) and was cut off at its first page
    // with a party, which it could not put on record; the receipt said failed with 1 record, the log nothing.
    await storeDirectly(rt, new TrafficGenerator({ seed: 8, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 }).take(20));
    const [row] = await requireStorage(rt).storage.query<{ n: string }>(`SELECT count() n FROM ${requireStorage(rt).storage.table('cdr')}`);
    assert.equal(Number(row!.n), 20);
    const drill = await app.inject({
      method: 'POST',
      url: '/v1/admin/retention/run',
      payload: { now: new Date(addMonthsUtc(R, 13)).toISOString(), dry_run: false },
      headers: auth(tokens.admin),
    });
    assert.equal(drill.statusCode, 200);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/lea/requests',
      payload: {
        authority: 'Royal Malaysia Police',
        case_reference: 'KL-2026-0042',
        legal_basis: 'Criminal Procedure Code s.116B',
        identifier: { type: 'msisdn', value: '+60123456789' },
        from: new Date(R).toISOString(),
        to: new Date(Date.now() + 60_000).toISOString(),
      },
      headers: auth(tokens.lea),
    });
    assert.equal(res.statusCode, 503, res.body);
    assert.match(
      res.json<{ message: string }>().message,
      /^this month's identifier key \(\d{4}-\d{2}\) was destroyed, by a retention pass whose clock was moved past it/,
    );
    assert.equal(res.headers['location'], undefined);
  });

  it('a data-subject export after the drill names the months it could not search for disclosures', async () => {
    // Found from outside (2026-12-07): the export said `disclosures: []`, `withheld: 0` while law enforcement answered
    // 503 — an empty list read as "nothing was disclosed". Runs after the test above: this month's key is destroyed.
    const res = await app.inject({
      method: 'POST',
      url: '/v1/dsar',
      payload: { identifier: { type: 'msisdn', value: '+60123456789' } },
      headers: auth(tokens.dpo),
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ disclosures: unknown[]; disclosures_unsearchable_months: string[] }>();
    const thisMonth = new Date(R).toISOString().slice(0, 7);
    assert.ok(body.disclosures_unsearchable_months.includes(thisMonth), JSON.stringify(body.disclosures_unsearchable_months));
    assert.deepEqual(body.disclosures_unsearchable_months, [...body.disclosures_unsearchable_months].sort(), 'oldest first');
  });
});

describe('admin retention API', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let app: FastifyInstance;
  let services: ApiServices | undefined;

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
      services: (services = await createApiServices(rt, {
        signer: loadSigner(undefined, setup.dataDir, true),
        chain: 'test',
        checkpointMs: 0,
        retention: createRetention(rt, { signer: testSigner() }).pass,
      })),
      rateLimit: { max: 100_000, windowMs: 60_000 },
    });
  });

  after(async () => {
    await app?.close();
    await services?.close();
    await rt?.close();
  });

  it('serves the signed destruction report of a month, and refuses a month that is not YYYY-MM', async () => {
    const ok = await app.inject({ method: 'GET', url: '/v1/retention/reports/2026-01', headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(ok.statusCode, 200, ok.body);
    const report = ok.json<{ format: string; month: string; entries: unknown[]; signature: string }>();
    assert.equal(report.format, 'cdr-pipeline/retention-report/1');
    assert.equal(report.month, '2026-01');
    assert.ok(report.signature.length > 0);
    const bad = await app.inject({ method: 'GET', url: '/v1/retention/reports/2026-13', headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.ok(bad.json<{ message: string }>().message.length > 0);
    const none = await app.inject({ method: 'GET', url: '/v1/retention/reports/2026-01' });
    assert.equal(none.statusCode, 401);
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

  it('takes fields it does not read only beside an explicit dry_run (ADR 0041): an unread "dryRun" never makes a pass real', async () => {
    const { storage } = requireStorage(rt);
    const keys = async () => Number((await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')}`))[0]!.n);
    const before = await keys();
    const future = new Date(addMonthsUtc(R, 14)).toISOString();
    const drill = await app.inject({
      method: 'POST',
      url: '/v1/admin/retention/run',
      payload: { now: future, dry_run: true, note: 'drill of the week', ticket: 7 },
      headers: auth(tokens.admin),
    });
    assert.equal(drill.statusCode, 200, drill.body);
    assert.equal(drill.json<RetentionReport>().dry_run, true);
    assert.ok(!drill.body.includes('drill of the week'));
    // Without dry_run the pass would be real: any other field is refused, a misspelt dry_run named.
    const typo = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: future, dryRun: true }, headers: auth(tokens.admin) });
    assert.equal(typo.statusCode, 400);
    assert.match(typo.json<{ message: string }>().message, /^body: "dryRun" is not a field of this request: did you mean "dry_run"\? \(without "dry_run"/);
    assert.equal(await keys(), before, 'nothing was destroyed');
  });

  it('a real run cannot move the clock: `now` is for dry runs (or drills with CDR_ALLOW_CLOCK_OVERRIDE=1)', async () => {
    const future = new Date(addMonthsUtc(R, 14)).toISOString();
    for (const payload of [{ now: future }, { now: future, dry_run: false }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload, headers: auth(tokens.admin) });
      assert.equal(res.statusCode, 400);
      assert.match(res.json<{ message: string }>().message, /only a dry run may move the clock.*CDR_ALLOW_CLOCK_OVERRIDE=1/);
    }
    const { storage } = requireStorage(rt);
    const [keys] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')}`);
    assert.equal(Number(keys!.n), 1, 'nothing was destroyed');
  });

  it('coerces nothing: "false", 0 or null for dry_run are refused', async () => {
    for (const dry_run of ['false', 0, null, 'true', 1]) {
      const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { dry_run }, headers: auth(tokens.admin) });
      assert.equal(res.statusCode, 400, `dry_run: ${JSON.stringify(dry_run)}`);
      assert.equal(res.json<{ error: string }>().error, 'bad_request');
    }
  });

  it('refuses dates that are not on the calendar, with a 400 and never a 500', async () => {
    for (const now of ['2026-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '2026-12-01T25:00:00Z', '2026-12-01T10:00:00', '9'.repeat(60)]) {
      const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now, dry_run: true }, headers: auth(tokens.admin) });
      assert.equal(res.statusCode, 400, now);
      assert.match(res.json<{ message: string }>().message, /^now: /);
    }
  });

  it('records who ran each pass, in the report and in the retention log', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { dry_run: false }, headers: auth(tokens.admin) });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<RetentionReport>().actor, 'ops');
    const dry = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { dry_run: true }, headers: auth(tokens.admin) });
    assert.equal(dry.json<RetentionReport>().actor, 'ops');
    // Every field is optional, so no body — or an empty JSON one — is a real run at the real clock.
    const bare = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', headers: auth(tokens.admin) });
    assert.equal(bare.statusCode, 200, bare.body);
    assert.equal(bare.json<RetentionReport>().dry_run, false);
    const empty = await app.inject({
      method: 'POST',
      url: '/v1/admin/retention/run',
      payload: '',
      headers: { ...auth(tokens.admin), 'content-type': 'application/json' },
    });
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal(empty.json<RetentionReport>().dry_run, false);
  });

  it('answers a known path with a wrong method 405 and Allow, and a 401 with WWW-Authenticate', async () => {
    const wrong = await app.inject({ method: 'GET', url: '/v1/admin/retention/run', headers: auth(tokens.admin) });
    assert.equal(wrong.statusCode, 405);
    assert.equal(wrong.headers['allow'], 'POST');
    assert.equal(wrong.json<{ error: string }>().error, 'method_not_allowed');
    const none = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {} });
    assert.match(String(none.headers['www-authenticate']), /^Bearer realm="cdr-pipeline"/);
  });

  it('names the action of a request refused before its handler ran, and of a destruction report read', async () => {
    const refused = await app.inject({
      method: 'GET',
      url: '/v1/billing/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z',
      headers: auth(tokens.auditor),
    });
    assert.equal(refused.statusCode, 403);
    await app.inject({ method: 'GET', url: '/v1/retention/reports/2026-01', headers: auth(tokens.admin) });
    const res = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth(tokens.auditor) });
    const entries = res.json<{ entries: { action: string; route: string; status: number }[] }>().entries;
    const usage = entries.filter((e) => e.route === '/v1/billing/usage');
    assert.deepEqual(
      usage.map((e) => [e.action, e.status]),
      [['billing.usage', 403]],
    );
    assert.ok(entries.some((e) => e.route === '/v1/retention/reports/:month' && e.action === 'retention.report'));
    assert.ok(!entries.some((e) => e.action === 'api.request' && e.route !== 'unmatched' && e.status !== 405), 'every matched route has its own name');
  });

  it('audits the /v1 requests no route matched (404, 405, and the 401 before them), never quoting the path', async () => {
    const audited = async (): Promise<{ action: string; method: string; route: string; status: number; outcome: string }[]> => {
      const res = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth(tokens.auditor) });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ entries: { action: string; method: string; route: string; status: number; outcome: string }[] }>().entries;
    };
    const unmatched = (entries: { action: string; method: string; route: string; status: number; outcome: string }[]): string[] =>
      entries.filter((e) => e.action === 'api.request').map((e) => `${e.method} ${e.route} ${e.status} ${e.outcome}`);
    const beforeEntries = await audited();
    const before = beforeEntries.length;
    const earlier = unmatched(beforeEntries);
    const calls: [string, string, string | undefined, number][] = [
      ['PUT', '/v1/admin/retention/run', tokens.admin, 405],
      ['DELETE', '/v1/admin/retention/run', tokens.admin, 405],
      ['GET', '/v1/nothing/+60123456789', tokens.admin, 404],
      ['GET', '/v1/nothing', undefined, 401],
    ];
    for (const [method, url, token, status] of calls) {
      const res = await app.inject({ method: method as 'GET', url, headers: token ? auth(token) : {} });
      assert.equal(res.statusCode, status, `${method} ${url}`);
    }
    const after = await audited();
    assert.ok(after.length >= before + calls.length, `${after.length - before} new entries`);
    // What this test added: the unmatched entries now, less those of the tests before it (a 405 among them).
    const added = unmatched(after);
    for (const e of earlier) added.splice(added.indexOf(e), 1);
    // A 405 is recorded under the template of the path it tried (an auditor sees which route), the rest as `unmatched`.
    assert.deepEqual(added.sort(), [
      'DELETE /v1/admin/retention/run 405 rejected',
      'GET unmatched 401 unauthenticated',
      'GET unmatched 404 rejected',
      'PUT /v1/admin/retention/run 405 rejected',
    ]);
    assert.ok(!JSON.stringify(after).includes('60123456789'), 'no path as sent in the audit trail');
  });

  it('serves liveness and metrics without a token', async () => {
    const health = await app.inject('/healthz');
    assert.equal(health.statusCode, 200);
    assert.equal(health.json<{ status: string }>().status, 'ok');
    const metrics = await app.inject('/metrics');
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="401"\} 3/);
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="403"\} 1/);
    // The PUT and DELETE of the test before: counted under the route they tried, not as `unmatched`.
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="405"\} [1-9]/);
  });
});
