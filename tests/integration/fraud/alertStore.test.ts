/**
 * Fraud alerts in the real engine: an alert whose start moved back into the month before (a record of the attack read
 * late, across a month's end) has rows in two partitions of `fraud_alerts` (by `started_at`), which background merges
 * never combine. The newest version is still the alert — listed once, as it is now, and not adopted as open after it
 * closed — because `FINAL` merges across partitions (ClickHouse's default; `do_not_merge_across_partitions_select_final`
 * would break it, and this test would say so).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert, AlertChange } from '../../../services/core/index.ts';
import { AlertStore, rowOf } from '../../../services/fraud/alertStore.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStore, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { testSetup } from '../../support/testEnv.ts';

const MIDNIGHT = Date.UTC(2026, 11, 1); // 2026-12-01T00:00:00Z
const opened: Alert = {
  alert_id: 'irsf-across-months',
  rule: 'irsf',
  severity: 'warning',
  key: { account_id: 'acct-1', destination_country: 'LV', range: '37129' },
  risk_score: 40,
  started_at: MIDNIGHT + 10_000,
  ended_at: MIDNIGHT + 90_000,
  detected_at: MIDNIGHT + 90_000,
  state: 'open',
  evidence: { calls_to_high_risk_range: 5 },
};
// A call of 23:59:50 on 30 November, read after the others: the alert now starts in November.
const stretched: Alert = { ...opened, started_at: MIDNIGHT - 10_000, evidence: { calls_to_high_risk_range: 6 } };
const closed: Alert = { ...stretched, state: 'closed' };
const other: Alert = { ...opened, alert_id: 'velocity-in-december', rule: 'velocity', key: { account_id: 'acct-2' } };

describe('fraud alert store', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let store: AlertStore;
  // Each write a later wall time, as each batch of the fraud consumer has.
  let tick = 0;
  const write = async (changes: AlertChange[]): Promise<void> => {
    const rows = changes.map((c) => rowOf(c, MIDNIGHT + 200_000 + tick++));
    await requireStore(rt).insert('fraud_alerts', rows);
  };

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    store = new AlertStore(requireStore(rt));
  });
  after(async () => {
    await rt?.close();
    setup.cleanup();
  });

  it('lists an alert whose start moved into the month before once, in its newest state', async () => {
    await write([
      { change: 'opened', alert: opened },
      { change: 'opened', alert: other },
    ]);
    await write([{ change: 'updated', alert: stretched }]);
    const partitions = await requireStore(rt).query<{ n: number }>(
      `SELECT uniqExact(_partition_id) n FROM ${requireStore(rt).table('fraud_alerts')} WHERE alert_id = 'irsf-across-months'`,
    );
    assert.equal(Number(partitions[0]?.n), 2, 'the test needs the alert in two partitions');
    const listed = await store.list(MIDNIGHT - 3_600_000, MIDNIGHT + 3_600_000);
    assert.deepEqual(
      listed.map((a) => [a.alert_id, a.started_at, a.evidence['calls_to_high_risk_range'] ?? null]),
      [
        ['velocity-in-december', MIDNIGHT + 10_000, 5],
        ['irsf-across-months', MIDNIGHT - 10_000, 6],
      ],
    );
    // A span that only the alert's newest version overlaps (its late start, in November) finds it, as it is now.
    assert.deepEqual(
      (await store.list(MIDNIGHT - 3_600_000, MIDNIGHT - 5_000)).map((a) => [a.alert_id, a.started_at]),
      [['irsf-across-months', MIDNIGHT - 10_000]],
    );
    assert.deepEqual(
      (await store.list(MIDNIGHT - 3_600_000, MIDNIGHT + 3_600_000, 'irsf')).map((a) => a.alert_id),
      ['irsf-across-months'],
    );
  });

  it('does not adopt it as open once it closed, with its open row left in the later month', async () => {
    assert.deepEqual((await store.openAlerts()).map((a) => a.alert_id).sort(), ['irsf-across-months', 'velocity-in-december']);
    await write([{ change: 'closed', alert: closed }]);
    assert.deepEqual(
      (await store.openAlerts()).map((a) => a.alert_id),
      ['velocity-in-december'],
    );
    const listed = await store.list(MIDNIGHT - 3_600_000, MIDNIGHT + 3_600_000, 'irsf');
    assert.deepEqual(
      listed.map((a) => [a.alert_id, a.state]),
      [['irsf-across-months', 'closed']],
    );
    // A restarted detector adopts it as closed (its records, published again, amend it rather than open it again):
    // within the span before the newest alert's end, in its newest state; one that ended longer before, not.
    assert.deepEqual(
      (await store.recentlyClosed(3_600_000)).map((a) => [a.alert_id, a.state, a.started_at]),
      [['irsf-across-months', 'closed', MIDNIGHT - 10_000]],
    );
    await write([
      { change: 'closed', alert: { ...other, alert_id: 'long-ago', ended_at: MIDNIGHT - 7_200_000, started_at: MIDNIGHT - 7_300_000, state: 'closed' } },
    ]);
    assert.deepEqual(
      (await store.recentlyClosed(3_600_000)).map((a) => a.alert_id),
      ['irsf-across-months'],
    );
  });

  it('keeps a later batch’s update of the same instant over an escalation (each carries the alert’s latest state)', async () => {
    // Found in review (2026-12-06): `escalated` ranked above `updated`, so an update that moved the evidence but not
    // `ended_at` (a late call, delivered records of a scan) lost to the escalation stored before it.
    const base: Alert = { ...other, alert_id: 'escalated-then-updated', severity: 'critical', risk_score: 85, evidence: { figure: 25 } };
    await write([{ change: 'escalated', alert: base }]);
    await write([{ change: 'updated', alert: { ...base, risk_score: 86, evidence: { figure: 26 } }, storeOnly: true }]);
    const [a] = (await store.openAlerts()).filter((x) => x.alert_id === 'escalated-then-updated');
    assert.deepEqual([a?.risk_score, a?.evidence['figure']], [86, 26]);
  });

  it('keeps a later update of the same version whose start moved back into the month before (another partition)', async () => {
    // Found in review, verified on the engine (2026-12-06): of two rows of one version in November's and December's
    // partitions, FINAL keeps December's — the older state here — whichever was inserted later.
    const first: Alert = { ...opened, alert_id: 'moved-back', started_at: MIDNIGHT + 10_000, evidence: { figure: 5 } };
    const later: Alert = { ...first, started_at: MIDNIGHT - 10_000, evidence: { figure: 6 } };
    await write([{ change: 'updated', alert: first }]);
    await write([{ change: 'updated', alert: later, storeOnly: true }]);
    assert.equal(rowOf({ change: 'updated', alert: first }, 0).version, rowOf({ change: 'updated', alert: later }, 0).version, 'one version');
    const [a] = (await store.openAlerts()).filter((x) => x.alert_id === 'moved-back');
    assert.deepEqual([a?.started_at, a?.evidence['figure']], [MIDNIGHT - 10_000, 6]);
    const listed = (await store.list(MIDNIGHT - 3_600_000, MIDNIGHT + 3_600_000)).filter((x) => x.alert_id === 'moved-back');
    assert.deepEqual(
      listed.map((x) => [x.started_at, x.evidence['figure']]),
      [[MIDNIGHT - 10_000, 6]],
    );
  });
});
