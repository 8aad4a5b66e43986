/**
 * The retention pass runs while ingest runs: expired months go, no in-window record is lost or loses
 * its identifiers. (The same pass through the admin API: tests/integration/api/adminRetention.test.ts.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Partitioners, type Kafka } from 'kafkajs';
import pino from 'pino';
import { encodeCdrEvent } from '../../../services/platform/schemas/cdrCodec.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { addMonthsUtc, startOfMonthUtc } from '../../../services/core/retention/retentionCalendar.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import type { RetentionPass, RetentionReport } from '../../../services/retention/retentionPass.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, testSigner, type TestSetup } from '../../support/testEnv.ts';

const R = startOfMonthUtc(Date.now());
const OLD_MONTHS = [-16, -15, -14];

describe('retention while ingest runs', () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  let pass: RetentionPass;
  let fakeNow: number | undefined;
  const passes: RetentionReport[] = [];
  let liveIds: string[] = [];

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '500', CDR_TOPIC_PARTITIONS: '2' });
    const log = createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true }));
    rt = await openRuntime(setup.config, { log });
    kafka = requireKafka(rt);
    ingest = createIngest(rt, { clock: () => fakeNow ?? Date.now() });
    pass = createRetention(rt, { onKeyDestroyed: (m) => ingest.forgetMonth(m), signer: testSigner() }).pass;
    await ingest.start();

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // Phase 1: months that are expired today, ingested back when they were current.
    let produced = 0;
    for (const k of OLD_MONTHS) {
      fakeNow = addMonthsUtc(R, k + 1) + 3600_000;
      const gen = new TrafficGenerator({
        seed: 500 + k,
        scenario: 'normal',
        startTime: addMonthsUtc(R, k + 1) - 1,
        timeSpreadMs: addMonthsUtc(R, k + 1) - addMonthsUtc(R, k) - 2,
      });
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
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('expired the old months while ingest ran', async () => {
    const expired = passes
      .flatMap((p) => p.actions)
      .filter((a) => a.class === 'identifiers')
      .map((a) => a.month)
      .sort();
    assert.deepEqual(
      expired,
      OLD_MONTHS.map((k) => new Date(addMonthsUtc(R, k)).toISOString().slice(0, 7)),
    );
    const { storage } = requireStorage(rt);
    const [keys] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')} WHERE month < {m:Date}`, {
      m: new Date(addMonthsUtc(R, -12)).toISOString().slice(0, 10),
    });
    assert.equal(Number(keys!.n), 0);
  });

  it('checked the Kafka topics that carry identifiers and reported them', () => {
    const topics = passes[0]!.topics ?? [];
    const byName = new Map(topics.map((t) => [t.topic, t]));
    for (const name of [setup.config.kafka.topics.raw, setup.config.kafka.topics.dlq]) {
      const t = byName.get(name);
      assert.ok(t, `${name} in the report: ${JSON.stringify(topics.map((x) => x.topic))}`);
      assert.equal(t.compliant, true, JSON.stringify(t));
      assert.ok(t.max_age_ms !== null && t.max_age_ms <= setup.config.kafka.rawRetentionHours * 3600_000);
    }
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
});
