/**
 * A retention pass stopped after it destroyed a month's identifiers and before it recorded that (found from outside:
 * `kill -9` 2.5 s into a real pass left no entry in the destruction record and no audit entry, and the next pass
 * recorded 0 rows at its own time). The stop is a destruction record that refuses the pass's closing entries — what a
 * process killed at that moment leaves behind. Afterwards the record holds the pass's "begun" entry (what it was about
 * to destroy, with the counts before), the audit trail its `started`, and the next pass verifies the month and names
 * the stopped pass; the month's report says so and still verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import pino from 'pino';
import { encodeCdrEvent } from '../../../services/platform/schemas/cdrCodec.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { addMonthsUtc, identifierCutoff, monthKeyOf, startOfMonthUtc } from '../../../services/core/retention/retentionCalendar.ts';
import { verifyDestructionReport } from '../../../services/core/retention/destructionRecord.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { LegalHolds } from '../../../services/platform/holds/legalHolds.ts';
import { DestructionLog, type NewDestructionEntry } from '../../../services/retention/destructionLog.ts';
import { RetentionPass, type RetentionReport } from '../../../services/retention/retentionPass.ts';
import type { DestructionEntry } from '../../../services/core/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, testSigner, type TestSetup } from '../../support/testEnv.ts';

// The current month: the engine's own TTL backstop (real clock) leaves its tokens alone.
const M_START = startOfMonthUtc(Date.now());
const M = monthKeyOf(M_START);
const CUTOFF = identifierCutoff(M_START);

/** The record of a process that dies once the pass has destroyed: its begun entries land, its closing ones never do. */
class DiesBeforeClosingEntries extends DestructionLog {
  override append(entries: readonly NewDestructionEntry[]): Promise<DestructionEntry[]> {
    if (entries.some((e) => e.verification['stage'] !== 'begun')) return Promise.reject(new Error('process killed'));
    return super.append(entries);
  }
}

describe('a retention pass stopped after destroying, before recording', { timeout: 300_000 }, () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let stoppedError: unknown;
  let followUp: RetentionReport;
  let tooSoon: RetentionReport;
  let notExpired: RetentionReport;
  let third: RetentionReport;
  const audit: { action: string; outcome: string; requestId?: string }[] = [];
  const signer = testSigner();
  let record: DestructionLog;

  before(async () => {
    setup = testSetup({ CDR_INGEST_MAX_BATCH: '500', CDR_TOPIC_PARTITIONS: '2' });
    const log = createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true }));
    rt = await openRuntime(setup.config, { log });
    const { storage, keyRing, masterKey } = requireStorage(rt);
    ingest = createIngest(rt, { clock: () => CUTOFF - 1 });
    await ingest.start();
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const gen = new TrafficGenerator({
      seed: 5,
      scenario: 'normal',
      startTime: addMonthsUtc(M_START, 1) - 1,
      timeSpreadMs: addMonthsUtc(M_START, 1) - M_START - 2,
    });
    const events = gen.take(1000);
    await producer.send({ topic: setup.config.kafka.topics.raw, messages: events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
    await waitFor('the records stored', () => ingest.stats.stored >= 1000, 60_000, 50);
    await ingest.stop();

    const holds = new LegalHolds(storage, keyRing, masterKey, () => CUTOFF);
    const sink = { append: async (e: { action: string; outcome: string; requestId?: string }) => audit.push(e) };
    const deps = { storage, keyRing, holds, metrics: rt.metrics, log, audit: sink, settleMs: 100, stoppedAfterMs: 0 };
    const stopped = new RetentionPass({ ...deps, record: new DiesBeforeClosingEntries(storage, signer) });
    stoppedError = await stopped.run({ now: CUTOFF, dryRun: false, actor: 'stopped-pass' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    record = new DestructionLog(storage, signer);
    // Not followed up by a pass right away under the default (a pass of another process may still be at work), nor
    // by one whose `now` has the month still open.
    tooSoon = await new RetentionPass({ ...deps, stoppedAfterMs: undefined, record }).run({ now: CUTOFF, dryRun: false, actor: 'too-soon' });
    notExpired = await new RetentionPass({ ...deps, record }).run({ now: CUTOFF - 1, dryRun: false, actor: 'not-expired' });
    const pass = new RetentionPass({ ...deps, record });
    followUp = await pass.run({ now: CUTOFF, dryRun: false, actor: 'follow-up' });
    third = await pass.run({ now: CUTOFF, dryRun: false, actor: 'third' });
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('the stopped pass destroyed the month (the situation under test)', async () => {
    assert.match(String(stoppedError), /process killed/);
    const { storage } = requireStorage(rt);
    const [v] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('identity_vault')} WHERE month = {m:Date}`, { m: `${M}-01` });
    assert.equal(Number(v!.n), 0);
  });

  it('left a begun entry: what it was about to destroy, with the counts before, nothing claimed as done', async () => {
    const entries = await record.entriesOf(M);
    // Each real pass writes one before it destroys; the stopped pass's is the only one without its closing entry.
    const begun = entries.filter((e) => e.verification['stage'] === 'begun' && e.actor === 'stopped-pass');
    assert.equal(begun.length, 1, JSON.stringify(entries.map((e) => [e.class, e.actor, e.verification['stage']])));
    assert.equal(entries.filter((e) => e.actor === 'stopped-pass').length, 1, 'nothing else of the stopped pass');
    const b = begun[0]!;
    assert.equal(b.actor, 'stopped-pass');
    assert.equal(b.class, 'identifiers');
    assert.equal(b.rows, 0);
    assert.equal(b.keys_destroyed, 0);
    assert.equal(b.verified, false);
    assert.ok(Number(b.verification['planned_rows']) >= 1000, JSON.stringify(b.verification));
    assert.equal(b.verification['planned_keys'], 1);
    assert.ok((b.verification['before'] as { vault: number }).vault > 0);
    assert.equal(b.key_ids.length, 1);
  });

  it('the audit trail has the stopped pass started (its run id) before anything was destroyed', () => {
    const started = audit.filter((e) => e.action === 'retention.pass' && e.outcome === 'started');
    assert.equal(started.length, 5, 'every real pass says it started');
    const stoppedRun = started[0]!.requestId;
    assert.ok(stoppedRun);
    // In this test the error reaches the pass, which records `failed`; a killed process records nothing more.
    assert.deepEqual(
      audit.filter((e) => e.requestId === stoppedRun).map((e) => e.outcome),
      ['started', 'failed'],
    );
    assert.deepEqual(
      audit.filter((e) => e.requestId === followUp.run_id).map((e) => e.outcome),
      ['started', 'done'],
    );
  });

  it('no pass follows it up within stoppedAfterMs of its begun entry, nor with the month still open at its `now`', () => {
    for (const r of [tooSoon, notExpired]) assert.deepEqual(r.actions, [], `${r.actor}: ${JSON.stringify(r.actions)}`);
  });

  it('the next pass verifies the month, with nothing left to count, and names the stopped pass', async () => {
    const a = followUp.actions.find((x) => x.class === 'identifiers' && x.month === M);
    assert.ok(a, JSON.stringify(followUp.actions));
    assert.equal(a.rows, 0);
    assert.equal(a.verified, true);
    const begun = (await record.entriesOf(M)).find((e) => e.verification['stage'] === 'begun' && e.actor === 'stopped-pass')!;
    assert.deepEqual(a.verification?.['after_stopped_runs'], [begun.run_id]);
    assert.deepEqual(await record.notFollowedUp('identifiers'), []);
  });

  it('a pass after that has nothing more to do for the month', () => {
    assert.equal(
      third.actions.some((x) => x.class === 'identifiers' && x.month === M),
      false,
      JSON.stringify(third.actions),
    );
  });

  it("the month's report says an action was begun by a pass that did not record its end, and verifies", async () => {
    const report = await record.report(M);
    assert.match(report.summary, /^1 retention action\(s\) recorded for \d{4}-\d{2}; identifiers destroyed and verified at /);
    assert.match(report.summary, /; 1 action\(s\) begun by a pass that did not record its end \(stopped part-way\), first at \d{4}-/);
    const check = verifyDestructionReport(JSON.parse(JSON.stringify(report)), [signer.publicKeyObject]);
    assert.equal(check.ok, true, check.problems.join('; '));
  });
});
