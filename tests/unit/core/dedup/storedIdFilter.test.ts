import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { StoredIdFilter } from '../../../../services/core/index.ts';

const HOUR = 3_600_000;

function ids(n: number, prefix = ''): string[] {
  return Array.from({ length: n }, () => `${prefix}${randomUUID()}`);
}

describe('StoredIdFilter (the ids a store holds, in front of the duplicate lookup)', () => {
  it('never answers "no" for an id it was given, in any script or length', () => {
    const f = new StoredIdFilter({ capacity: 50_000, horizonMs: 96 * HOUR });
    const given = [...ids(40_000), '', 'x', 'é', '通話-1', '😀😀', 'a'.repeat(500), '\u0000'];
    for (const id of given) f.add(id, 0);
    for (const id of given) assert.equal(f.mightContain(id), true, id);
  });

  it('answers "maybe" for about 1% of ids it never saw while within capacity', () => {
    const f = new StoredIdFilter({ capacity: 100_000, horizonMs: 96 * HOUR });
    for (const id of ids(50_000)) f.add(id, 0);
    const unseen = ids(100_000, 'other-');
    const falseMaybe = unseen.filter((id) => f.mightContain(id)).length / unseen.length;
    assert.ok(falseMaybe < 0.02, `false "maybe" rate ${falseMaybe}`);
    // Ids that differ in one character only (sequential ids from one producer) are told apart as well.
    const g = new StoredIdFilter({ capacity: 100_000, horizonMs: 96 * HOUR });
    for (let i = 0; i < 50_000; i++) g.add(`cdr-${i}`, 0);
    let sequentialMaybe = 0;
    for (let i = 50_000; i < 150_000; i++) if (g.mightContain(`cdr-${i}`)) sequentialMaybe++;
    assert.ok(sequentialMaybe / 100_000 < 0.02, `false "maybe" rate on sequential ids ${sequentialMaybe / 100_000}`);
  });

  it('past capacity within the horizon it keeps every id (more "maybe"s, never a lost id)', () => {
    const f = new StoredIdFilter({ capacity: 2_000, horizonMs: 96 * HOUR });
    const given = ids(10_000);
    given.forEach((id, i) => f.add(id, i)); // all within a few seconds
    assert.equal(f.overCapacity, true);
    for (const id of given) assert.equal(f.mightContain(id), true);
  });

  it('forgets a generation only once its newest id is older than the horizon and an hour', () => {
    const f = new StoredIdFilter({ capacity: 2_000, horizonMs: HOUR });
    const first = ids(1_000);
    for (const id of first) f.add(id, 0); // fills the first generation at t = 0
    const second = ids(1_000);
    for (const id of second) f.add(id, 10); // rotates once (nothing older to keep): first is now the previous one
    assert.equal(f.size, 2_000);
    // Within the horizon and the hour's slack of the first generation's newest id: nothing may be dropped, however full.
    f.add('third-0', 2 * HOUR - 1);
    for (const id of first) assert.equal(f.mightContain(id), true);
    // Past it, the next add drops the first generation (the store forgot those ids by now).
    f.add('third-1', 2 * HOUR + 20);
    assert.ok(f.size < 2_000, `size ${f.size}`);
    const stillMaybe = first.filter((id) => f.mightContain(id)).length;
    assert.ok(stillMaybe < 50, `${stillMaybe} of the forgotten generation still "maybe"`);
    for (const id of [...second, 'third-0', 'third-1']) assert.equal(f.mightContain(id), true);
  });

  it('keeps a generation while a batch that added to it still writes, and a horizon past its release', () => {
    const f = new StoredIdFilter({ capacity: 2_000, horizonMs: HOUR });
    const hold = f.hold();
    const slow = ids(1_000);
    for (const id of slow) f.add(id, 0); // a batch's ids at t = 0; its rows are written much later
    for (const id of ids(1_000)) f.add(id, 10); // rotation: the slow batch's generation is now the previous one
    // Long past its horizon, but the batch still holds it: kept, however full the current one is.
    for (const id of ids(100)) f.add(id, 5 * HOUR);
    for (const id of slow) assert.equal(f.mightContain(id), true, 'a held generation was dropped');
    // Written at 6 h: the store keeps those rows until 7 h, so the filter keeps the ids past that (and the slack).
    f.release(hold, 6 * HOUR);
    f.add('later-0', 7 * HOUR + 10);
    for (const id of slow) assert.equal(f.mightContain(id), true, 'dropped within the horizon of the write');
    f.add('later-1', 8 * HOUR + 20);
    assert.ok(slow.filter((id) => f.mightContain(id)).length < 50, 'never dropped after its release');
  });

  it('keeps ids as long as the longest horizon it is told of', () => {
    const f = new StoredIdFilter({ capacity: 2, horizonMs: HOUR });
    f.holdAtLeast(10 * HOUR);
    f.holdAtLeast(2 * HOUR); // never shortened
    f.add('a', 0);
    f.add('b', 1); // rotation: the previous generation was empty
    f.add('c', 5 * HOUR); // the previous generation ('a') is 5 h old: kept
    assert.equal(f.mightContain('a'), true);
  });

  it('addAndTell answers as mightContain would have just before, and remembers the id', () => {
    const f = new StoredIdFilter({ capacity: 10_000, horizonMs: HOUR });
    const given = ids(3_000);
    for (const id of given) f.add(id, 0);
    for (const id of given) assert.equal(f.addAndTell(id, 1), true);
    const fresh = ids(5_000, 'x-');
    const told = fresh.map((id) => [f.mightContain(id), f.addAndTell(id, 2)] as const);
    for (const [before, answer] of told) assert.equal(answer, before);
    assert.ok(told.filter(([, a]) => a).length < 100, 'few new ids answered "maybe"');
  });

  it('refuses a capacity below two', () => {
    assert.throws(() => new StoredIdFilter({ capacity: 1, horizonMs: HOUR }), /capacity 1/);
  });
});
