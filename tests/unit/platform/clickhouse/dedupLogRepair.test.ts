/**
 * Which deduplication records the repair drops (dedupLogRepair.ts): only block ids the engine would load and no part
 * on disk covers; never one a merge or a mutation kept; nothing at all when a name or a line cannot be read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDedupLog, partRangeOf, staleBlocks, type DedupRecord } from '../../../../services/platform/clickhouse/dedupLogRepair.ts';

const add = (part: string, blockId: string): DedupRecord => ({ op: 'add', part, blockId });
const drop = (part: string, blockId: string): DedupRecord => ({ op: 'drop', part, blockId });

describe('partRangeOf', () => {
  it('reads partition and block range of inserted, merged and mutated parts', () => {
    assert.deepEqual(partRangeOf('all_2_2_0'), { partition: 'all', min: 2, max: 2 });
    assert.deepEqual(partRangeOf('202612_1_40_3'), { partition: '202612', min: 1, max: 40 });
    assert.deepEqual(partRangeOf('202612_1_40_3_57'), { partition: '202612', min: 1, max: 40 });
    assert.deepEqual(partRangeOf('e4f1a0b2c3d4e5f6_7_7_0'), { partition: 'e4f1a0b2c3d4e5f6', min: 7, max: 7 });
  });

  it('is no part for temporary, detached and other directories', () => {
    for (const name of [
      'tmp_insert_all_2_2_0',
      'tmp_merge_all_1_3_1',
      'delete_tmp_all_1_1_0',
      'detached',
      'deduplication_logs',
      'all_3_2_0',
      'all_x_2_0',
      '_1_1_0',
    ])
      assert.equal(partRangeOf(name), undefined, name);
  });
});

describe('parseDedupLog', () => {
  it("reads the engine's records in order", () => {
    assert.deepEqual(parseDedupLog('1\tall_1_1_0\tall_11_22\n1\tall_2_2_0\tall_33_44\n2\tall_1_1_0\tall_11_22\n'), [
      add('all_1_1_0', 'all_11_22'),
      add('all_2_2_0', 'all_33_44'),
      drop('all_1_1_0', 'all_11_22'),
    ]);
    assert.deepEqual(parseDedupLog(''), []);
  });

  it('refuses a file with a line that is not a record (a torn write, another format)', () => {
    assert.equal(parseDedupLog('1\tall_1_1_0\tall_11_22\n1\tall_2_2'), undefined);
    assert.equal(parseDedupLog('3\tall_1_1_0\tall_11_22\n'), undefined);
  });
});

describe('staleBlocks', () => {
  it('finds the block whose part never reached the disk, and only that one', () => {
    const records = [add('all_1_1_0', 'a'), add('all_2_2_0', 'b'), add('all_3_3_0', 'c')];
    assert.deepEqual(staleBlocks(records, ['all_1_1_0', 'all_3_3_0', 'tmp_insert_all_2_2_0', 'detached']), [add('all_2_2_0', 'b')]);
  });

  it('keeps blocks a merge or a mutation covers', () => {
    const records = [add('202612_1_1_0', 'a'), add('202612_2_2_0', 'b'), add('202701_3_3_0', 'c')];
    assert.deepEqual(staleBlocks(records, ['202612_1_2_1', '202701_3_3_0_9']), []);
  });

  it('does not take a part of another partition for cover', () => {
    const records = [add('202612_5_5_0', 'a')];
    assert.deepEqual(staleBlocks(records, ['202701_1_9_2']), [add('202612_5_5_0', 'a')]);
  });

  it('leaves out blocks the log itself dropped already', () => {
    const records = [add('all_1_1_0', 'a'), drop('all_1_1_0', 'a')];
    assert.deepEqual(staleBlocks(records, []), []);
  });

  it('drops nothing when a recorded part name cannot be read', () => {
    assert.equal(staleBlocks([add('all_1_1_0', 'a'), add('weird', 'b')], []), undefined);
  });
});
