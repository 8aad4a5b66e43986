/**
 * Ingest and the retention pass at the identifier cutoff, concurrently, as two processes would be: ingest's clock sits
 * one millisecond before the cutoff of month M (so its key ring hands out M's key), records of M stream in, and a pass
 * with its own key ring (another process: ingest's ring is never told) destroys M in the middle of the stream. A batch
 * that fetched M's key before the tombstone re-checks it right before writing (ingestService `beforeWrite`), and the
 * pass destroys again whatever a write already past that check put back. Afterwards no token, vault row, index row or
 * key of M exists, and every record is stored exactly once (the ones after the tombstone without identifiers).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import pino from 'pino';
import { encodeCdrEvent } from '../../../services/platform/schemas/cdrCodec.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { addMonthsUtc, identifierCutoff, monthKeyOf, startOfMonthUtc } from '../../../services/core/retention/retentionCalendar.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { LegalHolds } from '../../../services/platform/holds/legalHolds.ts';
import { MonthKeyRing } from '../../../services/platform/keys/monthKeyRing.ts';
import { DestructionLog } from '../../../services/retention/destructionLog.ts';
import { RetentionPass, type RetentionReport } from '../../../services/retention/retentionPass.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, testSigner, type TestSetup } from '../../support/testEnv.ts';

// The current month: the engine's own TTL backstop (real clock) leaves its tokens alone.
const M_START = startOfMonthUtc(Date.now());
const M = monthKeyOf(M_START);
const CUTOFF = identifierCutoff(M_START);

describe('ingest and the retention pass across the identifier cutoff', { timeout: 300_000 }, () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let report: RetentionReport;
  let produced = 0;
  const ids: string[] = [];

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '200', CDR_TOPIC_PARTITIONS: '2' });
    const log = createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true }));
    rt = await openRuntime(setup.config, { log });
    const { storage, masterKey } = requireStorage(rt);
    ingest = createIngest(rt, { clock: () => CUTOFF - 1 });
    // The pass of "another process": its own key ring, no callback into ingest.
    const passRing = new MonthKeyRing(storage, masterKey);
    const holds = new LegalHolds(storage, passRing, masterKey, () => CUTOFF);
    const pass = new RetentionPass({ storage, keyRing: passRing, holds, record: new DestructionLog(storage, testSigner()), metrics: rt.metrics, log });
    await ingest.start();
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const gen = new TrafficGenerator({
      seed: 77,
      scenario: 'normal',
      startTime: addMonthsUtc(M_START, 1) - 1,
      timeSpreadMs: addMonthsUtc(M_START, 1) - M_START - 2,
    });
    let stop = false;
    const sending = (async () => {
      while (!stop && produced < 60_000) {
        const events = gen.take(100);
        ids.push(...events.map((e) => e.cdr_id));
        await producer.send({ topic: setup.config.kafka.topics.raw, messages: events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
        produced += events.length;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await waitFor('some records of M stored with identifiers', () => ingest.stats.stored >= 1000, 60_000, 50);
    report = await pass.run({ now: CUTOFF, dryRun: false, actor: 'race-test' });
    const afterPass = produced;
    await waitFor('records sent after the pass', () => produced >= afterPass + 1500, 60_000, 50);
    stop = true;
    await sending;
    await producer.disconnect();
    await waitFor('everything ingested', () => ingest.stats.stored + ingest.stats.late + ingest.stats.duplicate >= produced, 120_000, 100);
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('destroyed M while records of M were being written, and verified it', () => {
    const action = report.actions.find((a) => a.class === 'identifiers' && a.month === M);
    assert.ok(action, JSON.stringify(report.actions));
    assert.equal(action.verified, true);
    assert.ok(action.rows > 0);
  });

  it('leaves no token, vault row, index row or key of M, although ingest kept receiving records of M', async () => {
    const { storage } = requireStorage(rt);
    const q = async (sql: string): Promise<number> => Number((await storage.query<{ n: string }>(sql, { m: `${M}-01` }))[0]?.n ?? 0);
    assert.equal(
      await q(`SELECT count() n FROM ${storage.table('cdr')} WHERE toStartOfMonth(event_time) = {m:Date} AND (sender_token != '' OR recipient_token != '')`),
      0,
    );
    assert.equal(await q(`SELECT count() n FROM ${storage.table('identity_vault')} WHERE month = {m:Date}`), 0);
    assert.equal(await q(`SELECT count() n FROM ${storage.table('subscriber_index')} WHERE month = {m:Date}`), 0);
    assert.equal(await q(`SELECT count() n FROM ${storage.table('month_keys')} WHERE month = {m:Date}`), 0);
    assert.ok(ingest.stats.late > 0, 'records arrived after the destruction (stored without identifiers)');
  });

  it('stored every record exactly once', async () => {
    const { storage } = requireStorage(rt);
    const unique = [...new Set(ids)];
    const [row] = await storage.query<{ n: string; d: string }>(
      `SELECT count() n, uniqExact(cdr_id) d FROM ${storage.table('cdr')} FINAL WHERE cdr_id IN {ids:Array(String)}`,
      { ids: unique },
    );
    assert.equal(Number(row!.d), unique.length);
    assert.equal(Number(row!.n), unique.length);
  });
});
