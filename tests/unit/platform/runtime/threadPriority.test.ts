import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { lowerThreadPriority } from '../../../../services/platform/runtime/threadPriority.ts';
import { startTsWorker } from '../../../../services/platform/runtime/tsWorker.ts';

interface WorkerAnswer {
  readonly first: boolean;
  readonly niceAfterFirst: number;
  readonly second: boolean;
  readonly niceAfterSecond: number;
}

/** Runs lowerThreadPriority(first) then (second) in a thread of its own (a thread cannot raise itself back). */
function inWorker(first: number, second: number): Promise<WorkerAnswer> {
  const worker = startTsWorker(new URL('../../../support/fixtures/priorityWorker.ts', import.meta.url), { first, second });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: WorkerAnswer) => void worker.terminate().then(() => resolve(m)));
    worker.once('error', reject);
  });
}

describe('lowerThreadPriority', () => {
  it('does nothing for 0, a negative or a non-number, and says so', () => {
    const before = getPriority(process.pid);
    for (const nice of [0, -5, Number.NaN]) assert.equal(lowerThreadPriority(nice), false);
    assert.equal(getPriority(process.pid), before);
  });

  it('lowers the calling thread only, and never raises it (Linux); elsewhere changes nothing and says so', async () => {
    const before = getPriority(process.pid);
    const a = await inWorker(6, 3);
    assert.equal(getPriority(process.pid), before, 'the main thread keeps its priority');
    if (process.platform !== 'linux') {
      assert.equal(a.first, false);
      assert.equal(a.second, false);
      return;
    }
    // A new thread starts at its creator's nice value (0 unless the tests themselves run niced).
    const expected = Math.max(before, 6);
    assert.deepEqual(a, { first: true, niceAfterFirst: expected, second: true, niceAfterSecond: expected });
    // Above 19 is clamped to the lowest priority there is.
    const b = await inWorker(40, 0);
    assert.equal(b.first, true);
    assert.equal(b.niceAfterFirst, 19);
  });
});
