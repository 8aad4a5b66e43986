import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecentIds } from '../../../../services/core/dedup/recentIds.ts';

describe('RecentIds', () => {
  it('remembers what it saw', () => {
    const r = new RecentIds(10);
    r.add('a');
    assert.equal(r.has('a'), true);
    assert.equal(r.has('b'), false);
  });
  it('stays within capacity and always keeps the newest half', () => {
    const r = new RecentIds(100);
    for (let i = 0; i < 1000; i++) r.add(`id-${i}`);
    assert.ok(r.size <= 100);
    for (let i = 950; i < 1000; i++) assert.equal(r.has(`id-${i}`), true, `id-${i}`);
    assert.equal(r.has('id-0'), false);
  });
});
