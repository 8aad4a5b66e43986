import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecentIds, RecentScopedIds } from '../../../../services/core/dedup/recentIds.ts';

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

  it('RecentScopedIds: a pair is known only in the scope it was added under, within capacity', () => {
    const r = new RecentScopedIds(100);
    r.add('2026-11-01', 'tok');
    assert.equal(r.has('2026-11-01', 'tok'), true);
    assert.equal(r.has('2026-12-01', 'tok'), false);
    assert.equal(r.has('2026-11-01', 'other'), false);
    // The same id seen since under another scope: the first pair reads as absent (callers then only work again).
    r.add('2026-12-01', 'tok');
    assert.equal(r.has('2026-12-01', 'tok'), true);
    assert.equal(r.has('2026-11-01', 'tok'), false);
    for (let i = 0; i < 1000; i++) r.add('2026-12-01', `id-${i}`);
    assert.ok(r.size <= 100);
    for (let i = 950; i < 1000; i++) assert.equal(r.has('2026-12-01', `id-${i}`), true, `id-${i}`);
    assert.equal(r.has('2026-12-01', 'id-0'), false);
  });

  it('RecentScopedIds never reads a pair as present that was not added, across generation turnovers', () => {
    const r = new RecentScopedIds(10);
    const added = new Set<string>();
    // Tokens recur under two scopes while generations turn over (capacity 10, 200 adds).
    for (let i = 0; i < 200; i++) {
      const scope = i % 3 === 0 ? 'm1' : 'm2';
      const id = `t${i % 13}`;
      r.add(scope, id);
      added.add(`${scope}/${id}`);
      for (const s of ['m1', 'm2', 'm3'])
        for (let j = 0; j < 13; j++) if (r.has(s, `t${j}`)) assert.ok(added.has(`${s}/t${j}`), `${s}/t${j} read as present, never added`);
      assert.ok(r.size <= 10);
      assert.equal(r.has(scope, id), true);
    }
  });
});
