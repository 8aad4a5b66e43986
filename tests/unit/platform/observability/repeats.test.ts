import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { RepeatedLines } from '../../../../services/platform/observability/index.ts';

describe('RepeatedLines: a log line that repeats is counted, not written again', () => {
  it('writes the first of a kind at once, counts the repeats of its window and writes their number when it ends', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const out: string[] = [];
      const lines = new RepeatedLines<string>(30_000, (line, repeated) => out.push(repeated === undefined ? line : `${line} ×${repeated}`));
      for (let i = 0; i < 230; i++) lines.note('connect failed', 'connect failed');
      lines.note('group coordinator gone', 'group coordinator gone');
      assert.deepEqual(out, ['connect failed', 'group coordinator gone']);
      mock.timers.tick(30_000);
      // Each window's repeats are said; a kind that did not repeat adds nothing.
      assert.deepEqual(out, ['connect failed', 'group coordinator gone', 'connect failed ×229']);
      // After its window the kind is written at once again.
      lines.note('connect failed', 'connect failed');
      lines.note('connect failed', 'connect failed');
      assert.deepEqual(out.slice(3), ['connect failed']);
      mock.timers.tick(30_000);
      assert.deepEqual(out.slice(3), ['connect failed', 'connect failed ×1']);
      mock.timers.tick(60_000);
      assert.equal(out.length, 5, 'an ended window writes nothing more');
    } finally {
      mock.timers.reset();
    }
  });
});
