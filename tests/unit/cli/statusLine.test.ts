import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, healthWords, retentionSchedule, type StatusSnapshot } from '../../../services/cli/statusLine.ts';

const snap = (over: Partial<StatusSnapshot>): StatusSnapshot => ({ stored: 0, duplicate: 0, late: 0, dlq: 0, lag: 0, produced: 0, health: 'ok', ...over });

describe('the status line of cdr start', () => {
  it('shows rates from counter deltas and the lag', () => {
    const line = formatStatus(snap({}), snap({ stored: 900, duplicate: 50, late: 25, dlq: 25, lag: 7, produced: 1000 }), 2);
    assert.equal(line, 'ingested 500/s | produced 1000 | stored 900 | late 25 | dup 50 | DLQ 25 | lag 7');
  });

  it('says in words when a consumer is stopped or retrying', () => {
    const down = healthWords({ status: 'down', reasons: ['ingest: failed: unsupported: Snappy compression not implemented'] });
    assert.equal(down, 'DOWN: ingest: failed: unsupported: Snappy compression not implemented');
    assert.match(formatStatus(snap({}), snap({ health: down }), 1), /\| DOWN: ingest: failed: unsupported/);
    assert.equal(healthWords({ status: 'ok', reasons: [] }), 'ok');
  });
});

describe('retention schedule in the start banner', () => {
  it('says off when the pass is off, and seconds under a minute', () => {
    // Found from outside: CDR_RETENTION_INTERVAL_MS=0 (never) printed "every 0 min", as did any interval under 30 s.
    assert.match(retentionSchedule(0), /^off \(CDR_RETENTION_INTERVAL_MS=0/);
    assert.equal(retentionSchedule(20_000), 'every 20 s');
    assert.equal(retentionSchedule(1_500), 'every 1.5 s');
    assert.equal(retentionSchedule(3_600_000), 'every 60 min');
    assert.equal(retentionSchedule(90_000), 'every 90 s');
    assert.equal(retentionSchedule(61_000), 'every 61 s');
    assert.equal(retentionSchedule(630_000), 'every 10.5 min');
  });
});
