import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventLoopSlice } from '../../../../services/platform/runtime/eventLoopSlice.ts';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('EventLoopSlice', () => {
  it('is not spent before its slice has passed, and is after', () => {
    const slice = new EventLoopSlice(20);
    assert.equal(slice.spent(), false);
    busy(25);
    assert.equal(slice.spent(), true);
  });

  it('an infinite slice is never spent (a process with nothing else on its thread)', () => {
    const slice = new EventLoopSlice(Number.POSITIVE_INFINITY);
    busy(5);
    assert.equal(slice.spent(), false);
  });

  it('pause lets callbacks queued meanwhile run, and starts a fresh slice', async () => {
    const slice = new EventLoopSlice(5);
    let ran = false;
    setImmediate(() => (ran = true));
    busy(6);
    assert.equal(slice.spent(), true);
    await slice.pause();
    assert.equal(ran, true);
    assert.equal(slice.spent(), false);
  });

  it('a long loop cut into slices lets a timer fire before the loop ends; one piece would not', async () => {
    const run = async (sliced: boolean): Promise<{ firedAt: number; loopEnd: number }> => {
      let firedAt = Number.POSITIVE_INFINITY;
      setTimeout(() => (firedAt = performance.now()), 1);
      const slice = new EventLoopSlice(5);
      for (let i = 0; i < 20; i++) {
        if (sliced && slice.spent()) await slice.pause();
        busy(2);
      }
      const loopEnd = performance.now();
      await new Promise((r) => setTimeout(r, 5));
      return { firedAt, loopEnd };
    };
    const whole = await run(false);
    assert.ok(whole.firedAt > whole.loopEnd, 'without slices the timer waits for the whole loop');
    const sliced = await run(true);
    assert.ok(sliced.firedAt < sliced.loopEnd - 10, `the timer fired ${sliced.loopEnd - sliced.firedAt} ms before the loop ended`);
  });
});
