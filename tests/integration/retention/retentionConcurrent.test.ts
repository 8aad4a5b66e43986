/**
 * The retention pass runs while ingest runs: expired months go, no in-window record is lost or loses
 * its identifiers. The same pass through the admin API: authenticated, authorised by role, the brief's
 * report shape, and 4xx with a message on bad requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Partitioners, type Kafka } from 'kafkajs';
import pino from 'pino';
import { encodeCdrEvent } from '../../../services/platform/schemas/cdrCodec.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { addMonthsUtc, startOfMonthUtc } from '../../../services/core/retention/retentionCalendar.ts';
import { openRuntime, requireKafka, requireStorage, type Runtime } from '../../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { buildApp } from '../../../services/api/app.ts';
import { TokenRegistry } from '../../../services/api/auth.ts';
import { IngestService } from '../../../services/ingest/ingestService.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import type { RetentionPass, RetentionReport } from '../../../services/retention/retentionPass.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';

const R = startOfMonthUtc(Date.now());
const OLD_MONTHS = [-16, -15, -14];

describe('retention while ingest runs', () => {
  let setup: TestSetup;
  let rt: Runtime;
  let kafka: Kafka;
  let ingest: IngestService;
  let pass: RetentionPass;
  let app: FastifyInstance;
  let fakeNow: number | undefined;
  const passes: RetentionReport[] = [];
  let liveIds: string[] = [];
  const tokens = { admin: 'admin-secret-token', auditor: 'auditor-secret-token' };

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '500', CDR_TOPIC_PARTITIONS: '2' });
    const log = createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true }));
    rt = await openRuntime(setup.config, { log });
    kafka = requireKafka(rt);
    const { storage, keyRing } = requireStorage(rt);
    ingest = new IngestService({ kafka, brokers: rt.brokers, storage, keyRing, config: setup.config, log, metrics: rt.metrics, clock: () => fakeNow ?? Date.now() });
    pass = createRetention(rt, (m) => ingest.forgetMonth(m)).pass;
    const tokensFile = join(setup.dataDir, 'tokens.json');
    const digest = (t: string): string => createHash('sha256').update(t).digest('hex');
    writeFileSync(tokensFile, JSON.stringify({ tokens: [{ name: 'ops', sha256: digest(tokens.admin), roles: ['admin'] }, { name: 'aud', sha256: digest(tokens.auditor), roles: ['auditor'] }] }));
    app = buildApp({ log, metrics: rt.metrics, tokens: TokenRegistry.fromFile(tokensFile), retention: pass });
    await ingest.start();

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // Phase 1: months that are expired today, ingested back when they were current.
    let produced = 0;
    for (const k of OLD_MONTHS) {
      fakeNow = addMonthsUtc(R, k + 1) + 3600_000;
      const gen = new TrafficGenerator({ seed: 500 + k, scenario: 'normal', startTime: addMonthsUtc(R, k + 1) - 1, timeSpreadMs: addMonthsUtc(R, k + 1) - addMonthsUtc(R, k) - 2 });
      const events = gen.take(200);
      await producer.send({ topic: setup.config.kafka.topics.raw, messages: events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
      produced += events.length;
      await waitFor('old month ingested', () => ingest.stats.stored >= produced, 60_000, 50);
    }
    fakeNow = undefined;

    // Phase 2: live traffic, sent in bursts while passes run at the real now.
    const gen = new TrafficGenerator({ seed: 4242, scenario: 'mixed', startTime: Date.now() - 600_000, ratePerSecond: 200 });
    const sending = (async () => {
      for (let burst = 0; burst < 12; burst++) {
        const events = gen.take(250);
        liveIds.push(...events.map((e) => e.cdr_id));
        await producer.send({ topic: setup.config.kafka.topics.raw, messages: events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const passing = (async () => {
      for (let i = 0; i < 3; i++) passes.push(await pass.run({ now: Date.now(), dryRun: false }));
    })();
    await Promise.all([sending, passing]);
    liveIds = [...new Set(liveIds)];
    await producer.disconnect();
    await waitFor('live traffic ingested', () => ingest.stats.stored + ingest.stats.duplicate >= produced + 3000, 120_000, 100);
  });

  after(async () => {
    await app?.close();
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('expired the old months while ingest ran', async () => {
    const expired = passes.flatMap((p) => p.actions).filter((a) => a.class === 'identifiers').map((a) => a.month).sort();
    assert.deepEqual(expired, OLD_MONTHS.map((k) => new Date(addMonthsUtc(R, k)).toISOString().slice(0, 7)));
    const { storage } = requireStorage(rt);
    const [keys] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')} WHERE month < {m:Date}`, { m: new Date(addMonthsUtc(R, -12)).toISOString().slice(0, 10) });
    assert.equal(Number(keys!.n), 0);
  });

  it('lost no in-window record and cleared none of their identifiers', async () => {
    const { storage } = requireStorage(rt);
    const rows = await storage.query<{ cdr_id: string; sender_token: string; recipient_token: string; late: boolean }>(
      `SELECT cdr_id, sender_token, recipient_token, late FROM ${storage.table('cdr')} WHERE cdr_id IN {ids:Array(String)}`,
      { ids: liveIds },
    );
    assert.equal(rows.length, liveIds.length, 'every live record stored once');
    assert.equal(rows.filter((r) => r.late || r.sender_token === '' || r.recipient_token === '').length, 0);
    const [missing] = await storage.query<{ n: string }>(
      `SELECT count() n FROM (SELECT DISTINCT toStartOfMonth(event_time) m, token FROM ${storage.table('subscriber_index')} WHERE cdr_id IN {ids:Array(String)}) i
       LEFT ANTI JOIN ${storage.table('identity_vault')} v ON v.month = i.m AND v.token = i.token`,
      { ids: liveIds },
    );
    assert.equal(Number(missing!.n), 0, 'every live identifier is in the vault');
  });

  it('the admin API needs a bearer token and the admin role', async () => {
    const none = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {} });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ error: string }>().error, 'unauthenticated');
    const wrong = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {}, headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.statusCode, 401);
    const auditor = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: {}, headers: { authorization: `Bearer ${tokens.auditor}` } });
    assert.equal(auditor.statusCode, 403);
    assert.match(auditor.json<{ message: string }>().message, /admin/);
  });

  it('runs a dry pass through the API with the brief report shape', async () => {
    const future = new Date(addMonthsUtc(R, 14)).toISOString();
    const res = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: future, dry_run: true }, headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(res.statusCode, 200);
    const body = res.json<RetentionReport>();
    assert.equal(body.now, future);
    assert.equal(body.dry_run, true);
    assert.ok(Array.isArray(body.actions));
    const m = new Date(R).toISOString().slice(0, 7);
    const current = body.actions.find((a) => a.class === 'identifiers' && a.month === m);
    assert.ok(current, 'the current month, expired by then, is listed');
    assert.ok(current.rows > 0 && current.keys_destroyed === 1);
    const { storage } = requireStorage(rt);
    const [still] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')}`);
    assert.ok(Number(still!.n) > 0, 'a dry run destroys nothing');
  });

  it('rejects bad requests with a 4xx and a message', async () => {
    const badNow = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: 'yesterday' }, headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(badNow.statusCode, 400);
    assert.deepEqual(Object.keys(badNow.json<object>()).sort(), ['error', 'message']);
    const extra = await app.inject({ method: 'POST', url: '/v1/admin/retention/run', payload: { now: '2026-01-01T00:00:00Z', delete_everything: true }, headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(extra.statusCode, 400);
    const unknown = await app.inject({ method: 'GET', url: '/v1/nothing', headers: { authorization: `Bearer ${tokens.admin}` } });
    assert.equal(unknown.statusCode, 404);
  });

  it('serves liveness and metrics without a token', async () => {
    assert.equal((await app.inject('/healthz')).statusCode, 200);
    const metrics = await app.inject('/metrics');
    assert.match(metrics.body, /cdr_retention_deleted_total\{class="identifiers"\} \d+/);
    assert.match(metrics.body, /cdr_api_requests_total\{route="\/v1\/admin\/retention\/run",status="401"\} 2/);
  });
});
