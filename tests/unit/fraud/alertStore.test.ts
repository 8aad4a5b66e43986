import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert, AlertChange } from '../../../services/core/index.ts';
import { rowOf } from '../../../services/fraud/alertStore.ts';

const T = Date.UTC(2026, 11, 6, 4);
const alert: Alert = {
  alert_id: 'a1',
  rule: 'irsf',
  severity: 'warning',
  key: { account_id: 'acct-1', destination_country: 'LV', range: '37129' },
  risk_score: 50,
  started_at: T,
  ended_at: T + 40_000,
  detected_at: T + 40_000,
  state: 'open',
  evidence: { figure: 5 },
};
const version = (change: AlertChange['change'], over: Partial<Alert> = {}): number => rowOf({ change, alert: { ...alert, ...over } }, T).version;

describe('fraud alert rows', () => {
  it('give every later change of an alert a higher version, a closed alert amended by late records last', () => {
    // The table keeps the newest version (ReplacingMergeTree): an amendment of a closed alert (`updated`, state closed,
    // fraudDetector's amendClosed) at the same instant must win over its `closed` row, or the amendment is lost.
    // `updated` and `escalated` share a rank: each carries the alert's latest state when its batch hands it out, so of
    // two at one instant the later insert is the newer (ranked above, an escalation hid a later batch's update).
    const atSameInstant = [version('opened'), version('updated'), version('closed', { state: 'closed' }), version('updated', { state: 'closed' })];
    assert.deepEqual(
      atSameInstant,
      [...atSameInstant].sort((a, b) => a - b),
    );
    assert.equal(new Set(atSameInstant).size, 4);
    assert.equal(version('escalated'), version('updated'));
    // A change of a later instant wins over every kind of an earlier one.
    assert.ok(version('updated', { ended_at: T + 40_001 }) > version('updated', { state: 'closed' }));
  });
});
