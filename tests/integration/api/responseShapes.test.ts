/**
 * The OpenAPI document says what every route sends on success (services/api/responseDocs.ts), and this holds every
 * route's real responses to it: each body is validated against the schema the document gives for its path, method,
 * status and content type (found from outside: every success was documented as "any object", so a response could
 * not disagree with the document). Real engine, seeded records, billing rows, a fraud alert and a retention pass.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RatedRow } from '../../../services/billing/ratedRow.ts';
import { rowOf as alertRowOf } from '../../../services/fraud/alertStore.ts';
import { SUCCESS_DOCS } from '../../../services/api/responseDocs.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { storeDirectly } from '../../support/seed.ts';
import { assertDocumented, openApiOf } from '../../support/documented.ts';
import { testSetup, testSigner } from '../../support/testEnv.ts';

const SUBJECT = '+6591234567';
const now = Date.now();
const MONTH_START = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
const MONTH = new Date(MONTH_START).toISOString().slice(0, 7);

describe('every route’s responses match the OpenAPI document', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let api: TestApi;
  let doc: Awaited<ReturnType<typeof openApiOf>>;
  const checked = new Set<string>();

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    const gen = new TrafficGenerator({ seed: 71, scenario: 'normal', startTime: now - 3_600_000, ratePerSecond: 1 });
    // A record without a duration, MCC, MNC or country among them: the document says null.
    await storeDirectly(rt, [
      ...Array.from({ length: 3 }, () => ({
        ...gen.next(),
        channel: 'sms' as const,
        sender_type: 'alphanumeric' as const,
        sender: 'SHOP',
        recipient: SUBJECT,
      })),
      {
        ...gen.next(),
        channel: 'voice' as const,
        sender_type: 'msisdn' as const,
        sender: '+6581234567',
        recipient: SUBJECT,
        duration_ms: null,
        mcc: null,
        mnc: null,
        destination_country: null,
      },
    ]);
    const { storage } = requireStorage(rt);
    const rated: RatedRow = {
      account_id: 'acct-shapes',
      event_time: MONTH_START + 60_000,
      cdr_id: 'shape-1',
      revision: 1,
      channel: 'sms',
      direction: 'mt',
      status: 'delivered',
      destination_country: 'SG',
      recipient_range: '6591',
      recipient_number_type: 'mobile',
      provider_id: 'prov-shapes',
      segments: 1,
      duration_ms: 0,
      event_price: 25_000,
      event_cost: 12_000,
      event_currency: 'SGD',
      rated: true,
      unrated_reason: '',
      currency: 'SGD',
      amount_micros: 25_000,
      cost_micros: 12_000,
      billable_seconds: 0,
      plan_id: 'p',
      plan_version: 1,
      basis: 'event',
      rated_at: now,
      src_partition: 0,
      src_offset: '0',
    };
    await storage.insert('billing_rated', [rated]);
    await storage.insert('fraud_alerts', [
      alertRowOf(
        {
          change: 'opened',
          alert: {
            alert_id: 'alert-shapes',
            rule: 'velocity',
            severity: 'warning',
            key: { account_id: 'acct-shapes' },
            risk_score: 60,
            started_at: now - 60_000,
            ended_at: now - 30_000,
            detected_at: now - 40_000,
            state: 'open',
            evidence: { records: 100 },
          },
        },
        now,
      ),
    ]);
    const retention = createRetention(rt, { signer: testSigner() });
    api = await openTestApi(rt, { retention: retention.pass });
    doc = await openApiOf(api.app);
  });

  after(async () => {
    await api?.close();
    await rt?.close();
  });

  async function call(role: string | undefined, method: string, route: string, url: string, payload?: object, accept?: string) {
    const res = await api.app.inject({
      method: method as 'GET',
      url,
      headers: { ...(role ? auth(role) : {}), ...(accept ? { accept } : {}) },
      ...(payload ? { payload } : {}),
    });
    assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
    await assertDocumented(api.app, method, route, res);
    checked.add(`${method} ${route}`);
    return res;
  }

  it('validates a real response of every documented route', async () => {
    const from = new Date(now - 86_400_000).toISOString();
    const to = new Date(now + 60_000).toISOString();
    const ask = { authority: 'A', case_reference: 'C-1', legal_basis: 'L', identifier: { type: 'msisdn', value: SUBJECT }, from, to };
    await call(undefined, 'GET', '/healthz', '/healthz');
    await call(undefined, 'GET', '/metrics', '/metrics');
    await call(undefined, 'GET', '/openapi.json', '/openapi.json');
    const lea = await call('lea-officer', 'POST', '/v1/lea/requests', '/v1/lea/requests', ask);
    assert.ok(
      lea.json<{ records: { duration_ms: unknown }[] }>().records.some((r) => r.duration_ms === null),
      'a null is in the answer',
    );
    for (const accept of ['application/x-ndjson', 'text/csv']) await call('lea-officer', 'POST', '/v1/lea/requests', '/v1/lea/requests', ask, accept);
    const requestId = lea.json<{ request_id: string }>().request_id;
    await call('lea-officer', 'GET', '/v1/lea/requests/:id', `/v1/lea/requests/${requestId}`);
    await call('auditor', 'GET', '/v1/lea/signing-key', '/v1/lea/signing-key');
    const hold = await call('legal', 'POST', '/v1/holds', '/v1/holds', {
      case_reference: 'H-1',
      identifier: { type: 'msisdn', value: SUBJECT },
      from,
      to,
      reason: 'r',
    });
    const holdId = hold.json<{ hold_id: string }>().hold_id;
    await call('legal', 'GET', '/v1/holds', '/v1/holds');
    await call('legal', 'GET', '/v1/holds/:id', `/v1/holds/${holdId}`);
    await call('legal', 'DELETE', '/v1/holds/:id', `/v1/holds/${holdId}`);
    const dsar = await call('dpo', 'POST', '/v1/dsar', '/v1/dsar', { identifier: { type: 'msisdn', value: SUBJECT } });
    for (const accept of ['application/x-ndjson', 'text/csv'])
      await call('dpo', 'POST', '/v1/dsar', '/v1/dsar', { identifier: { type: 'msisdn', value: SUBJECT } }, accept);
    await call('dpo', 'GET', '/v1/dsar/:id', `/v1/dsar/${String(dsar.headers['x-request-id'])}`);
    await call('auditor', 'GET', '/v1/audit', '/v1/audit?limit=5');
    await call('auditor', 'GET', '/v1/audit/verify', '/v1/audit/verify');
    const usage = `/v1/billing/usage?account_id=acct-shapes&from=${MONTH}-01T00:00:00Z&group_by=day,channel,country,provider`;
    const rows = await call('billing', 'GET', '/v1/billing/usage', usage);
    assert.equal(rows.json<{ rows: unknown[] }>().rows.length, 1);
    await call('billing', 'GET', '/v1/billing/usage', `${usage}&format=csv`);
    await call('billing', 'GET', '/v1/billing/statements/:account/:month', `/v1/billing/statements/acct-shapes/${MONTH}`);
    await call('billing', 'GET', '/v1/billing/providers/:provider/costs/:month', `/v1/billing/providers/prov-shapes/costs/${MONTH}`);
    const alerts = await call('fraud', 'GET', '/v1/fraud/alerts', '/v1/fraud/alerts');
    assert.equal(alerts.json<{ alerts: unknown[] }>().alerts.length, 1);
    await call('admin', 'POST', '/v1/admin/retention/run', '/v1/admin/retention/run', { dry_run: true });
    await call('auditor', 'GET', '/v1/retention/reports/:month', `/v1/retention/reports/${MONTH}`);
    // Close and re-rate need billing's plans: tests/integration/billing/billing.test.ts holds their answers to the
    // document; here, that it names a schema for them.
    for (const route of ['POST /v1/billing/close', 'POST /v1/billing/rerate']) {
      const [method, path] = route.split(' ') as [string, string];
      assert.ok(doc.paths[path]?.[method.toLowerCase()]?.responses['200']?.content?.['application/json']?.schema, route);
      checked.add(route);
    }
    assert.deepEqual([...checked].sort(), Object.keys(SUCCESS_DOCS).sort(), 'every documented route was called');
    // And every route of the document is documented: a new route without an entry would fall back to "any object".
    const inDocument = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    assert.deepEqual(inDocument.sort(), Object.keys(SUCCESS_DOCS).sort(), 'every route of the document has its success documented');
  });

  it('documents the errors every /v1 route can answer, and an optional body for a retention run', () => {
    const lea = doc.paths['/v1/lea/requests']?.['post']?.responses ?? {};
    for (const code of ['400', '401', '403', '413', '415', '422', '429', '503']) assert.ok(lea[code], `POST /v1/lea/requests lists ${code}`);
    const hold = doc.paths['/v1/holds/{id}']?.['get']?.responses ?? {};
    for (const code of ['404', '414']) assert.ok(hold[code], `GET /v1/holds/{id} lists ${code}`);
    const run = doc.paths['/v1/admin/retention/run']?.['post'] as { requestBody?: { required?: boolean } } | undefined;
    assert.equal(run?.requestBody?.required, false);
    const metrics = doc.paths['/metrics']?.['get']?.responses['200']?.content ?? {};
    assert.deepEqual(Object.keys(metrics), ['text/plain']);
  });
});
