/**
 * Month keys and holds around a destruction, on the real engine:
 * - one key per month: creators racing (separate key rings, as separate processes would be) all end up with the one
 *   key that landed — one row per month, the same tokens everywhere;
 * - a long-running process drops a month destroyed by another process within its refresh interval, and zeroes the
 *   derived keys it held;
 * - legal holds are re-synced on the pass's own clock, immediately before destruction: a record the hold names that
 *   arrived after the hold's last copy, in a month whose window closes at the pass, is preserved.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { MonthKeyRing } from '../../../services/platform/keys/monthKeyRing.ts';
import { LegalHolds } from '../../../services/platform/holds/legalHolds.ts';
import { chTime } from '../../../services/platform/identity/index.ts';
import { sealIdentifier, tokenOf } from '../../../services/core/pseudonym/monthKeys.ts';
import { identifierCutoff, monthStartOf } from '../../../services/core/retention/retentionCalendar.ts';
import { DestructionLog } from '../../../services/retention/destructionLog.ts';
import { RetentionPass } from '../../../services/retention/retentionPass.ts';
import { testSetup, testSigner, type TestSetup } from '../../support/testEnv.ts';

describe('month keys and holds around a destruction', { timeout: 300_000 }, () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;

  before(async () => {
    setup = testSetup();
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
  });
  after(async () => {
    await rt?.close();
    setup?.cleanup();
  });

  it('racing creators end with one key per month, and the same tokens', async () => {
    const { storage, masterKey } = requireStorage(rt);
    const rings = Array.from({ length: 4 }, () => new MonthKeyRing(storage, masterKey));
    const months = Array.from({ length: 12 }, (_, i) => `2031-${String(i + 1).padStart(2, '0')}`);
    const at = (m: string): number => monthStartOf(m) + 3600_000;
    const keys = await Promise.all(rings.flatMap((ring) => months.map((m) => ring.keyForWriting(m, at(m)))));
    const rows = await storage.query<{ m: string; n: string }>(
      `SELECT formatDateTime(month, '%Y-%m') m, count() n FROM ${storage.table('month_keys')} WHERE month >= '2031-01-01' AND month < '2032-01-01' GROUP BY m ORDER BY m`,
    );
    assert.deepEqual(
      rows.map((r) => [r.m, Number(r.n)]),
      months.map((m) => [m, 1]),
    );
    for (const [i, m] of months.entries()) {
      const tokens = rings.map((_, r) => tokenOf(keys[r * months.length + i]!, 'msisdn', '+60123456789'));
      assert.equal(new Set(tokens).size, 1, `one token for ${m} whichever ring made it`);
    }
  });

  it('a long-running process drops a month another process destroyed, within its refresh interval', async () => {
    const { storage, masterKey } = requireStorage(rt);
    const longRunning = new MonthKeyRing(storage, masterKey);
    const forgotten: string[] = [];
    longRunning.onDestroyed((m) => forgotten.push(m));
    const key = await longRunning.keyForWriting('2032-03', monthStartOf('2032-03') + 1000);
    assert.ok(key);
    longRunning.startRefresh(200, (err) => assert.fail(String(err)));
    try {
      // The other process: its tombstone, as the retention pass writes it.
      await storage.insert('destroyed_months', [{ month: '2032-03-01', destroyed_at: Date.now(), reason: 'test' }]);
      const deadline = Date.now() + 5000;
      while (forgotten.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(forgotten, ['2032-03']);
      assert.equal(await longRunning.keyForWriting('2032-03', monthStartOf('2032-03') + 2000), null);
      assert.ok(key.tokenKey.every((b) => b === 0) && key.vaultKey.every((b) => b === 0), 'the derived keys were zeroed');
    } finally {
      longRunning.stopRefresh();
    }
  });

  it('a hold preserves a record that arrived after its last copy, in the month the pass destroys', async () => {
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const month = '2030-05';
    const start = monthStartOf(month);
    const cutoff = identifierCutoff(start);
    const number = '+60129990001';
    const key = (await keyRing.keyForWriting(month, start + 1000))!;
    const write = async (cdrId: string, t: number): Promise<void> => {
      const st = tokenOf(key, 'msisdn', number);
      const rtk = tokenOf(key, 'msisdn', '+14155550199');
      await storage.insert('identity_vault', [
        { month: `${month}-01`, token: st, id_type: 'msisdn', sealed: sealIdentifier(key, st, number).toString('base64'), valid: true, first_seen: chTime(t) },
        {
          month: `${month}-01`,
          token: rtk,
          id_type: 'msisdn',
          sealed: sealIdentifier(key, rtk, '+14155550199').toString('base64'),
          valid: true,
          first_seen: chTime(t),
        },
      ]);
      await storage.insert('cdr', [
        {
          cdr_id: cdrId,
          account_id: 'acct-hold',
          event_time: chTime(t),
          submitted_at: chTime(t),
          channel: 'voice',
          direction: 'mo',
          sender_type: 'msisdn',
          recipient_type: 'msisdn',
          sender_token: st,
          recipient_token: rtk,
          status: 'answered',
          src_topic: 'probe',
          ingested_at: chTime(t),
        },
      ]);
    };
    await write('hold-early', start + 86_400_000);
    let holdClock = start + 2 * 86_400_000;
    const holds = new LegalHolds(storage, keyRing, masterKey, () => holdClock);
    const placed = await holds.place({
      caseReference: 'CASE-9',
      reason: 'test',
      identifier: { type: 'msisdn', value: number },
      from: start,
      to: start + 20 * 86_400_000,
      actor: 'legal',
    });
    assert.equal(placed.copied, 1);
    // Arrives after the copy, still in the window (a late-delivered CDR of the same month).
    await write('hold-late', start + 10 * 86_400_000);
    // The pass runs at the cutoff; the holds' clock is the wall clock of that moment (also past the cutoff).
    holdClock = cutoff + 5_000;
    const pass = new RetentionPass({
      storage,
      keyRing,
      holds,
      record: new DestructionLog(storage, testSigner()),
      metrics: rt.metrics,
      log: createLogger('silent'),
      settleMs: 10,
    });
    const report = await pass.run({ now: cutoff, dryRun: false, actor: 'test' });
    assert.ok(report.actions.some((a) => a.class === 'identifiers' && a.month === month && a.verified));
    assert.equal(report.holds_synced, 1, 'the late record was copied right before the destruction');
    const held = await holds.heldRecords({ type: 'msisdn', value: number, valid: true, country: 'MY' }, start, start + 20 * 86_400_000);
    assert.deepEqual(held.map((r) => r.cdr_id).sort(), ['hold-early', 'hold-late']);
    assert.ok(held.every((r) => r.sender === number));
  });
});
