import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { duplicateMemberOf } from '../../../../services/core/index.ts';

describe('duplicate members of a JSON object', () => {
  it('finds a name given twice in one object, at any depth, compared decoded', () => {
    const cases: [string, string][] = [
      ['{"dry_run":true,"dry_run":false}', 'dry_run'],
      ['{"identifier":{"type":"msisdn","value":"1","value":"2"}}', 'value'],
      ['{"a":1, "\\u0061" : 2}', 'a'],
      ['[{"x":[{"k":1,"k":1}]}]', 'k'],
      ['{"a":"}","b":{"c":"\\"","c":0}}', 'c'],
    ];
    for (const [text, name] of cases) {
      JSON.parse(text);
      assert.equal(duplicateMemberOf(text), name, text);
    }
  });

  it('lets through the same name in different objects, names that only look alike, and names inside strings', () => {
    for (const text of [
      '{"a":{"a":1},"b":[{"a":2},{"a":3}]}',
      '{"a":1,"A":2,"a ":3}',
      '{"x":"\\"a\\":1,\\"a\\":2","y":["a","a"]}',
      '{"k":"{\\"k\\":1}","j":"[:]"}',
      '"a"',
      '[]',
      '{}',
      '{"é":1,"e\\u0301":2}',
    ]) {
      JSON.parse(text);
      assert.equal(duplicateMemberOf(text), undefined, text);
    }
  });
});
