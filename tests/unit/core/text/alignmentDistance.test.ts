import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { alignmentDistance } from '../../../../services/core/index.ts';

describe('alignmentDistance', () => {
  it('counts edits, a swap of neighbours as one', () => {
    assert.equal(alignmentDistance('from', 'from'), 0);
    assert.equal(alignmentDistance('form', 'from'), 1);
    assert.equal(alignmentDistance('fro', 'from'), 1);
    assert.equal(alignmentDistance('confidental', 'confidential'), 1);
    assert.equal(alignmentDistance('kitten', 'sitting'), 3);
    assert.equal(alignmentDistance('', 'to'), 2);
    assert.equal(alignmentDistance('ca', 'abc'), 3);
  });
});
