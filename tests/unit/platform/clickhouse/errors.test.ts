import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clickhouseCodeOf, storageError } from '../../../../services/platform/clickhouse/index.ts';

/** An error as @clickhouse/client throws it (code as a string) and as chDB throws it (code in the message). */
const serverError = (code: number, text: string): Error => Object.assign(new Error(text), { code: String(code), type: 'X' });
const chdbError = (code: number, text: string): Error => Object.assign(new Error(`Code: ${code}. DB::Exception: ${text}`), { code: 'CHDB_INSERT' });

describe('ClickHouse errors in the error model', () => {
  it('reads the code from a server error and from chDB text', () => {
    assert.equal(clickhouseCodeOf(serverError(60, 'Table x does not exist')), 60);
    assert.equal(clickhouseCodeOf(chdbError(27, 'Cannot parse input')), 27);
    assert.equal(clickhouseCodeOf(new Error('no code here')), undefined);
  });

  const cases: [Error, boolean, string][] = [
    [serverError(241, 'Memory limit exceeded'), true, 'storage_unavailable'],
    [serverError(252, 'Too many parts'), true, 'storage_unavailable'],
    [chdbError(209, 'Timeout'), false, 'storage_unavailable'],
    [chdbError(27, 'Cannot parse input'), true, 'record_rejected'],
    [chdbError(27, 'Cannot parse input'), false, 'storage_rejected'],
    [serverError(60, 'Unknown table'), false, 'storage_rejected'],
    [serverError(62, 'Syntax error'), true, 'storage_rejected'],
    [serverError(516, 'Authentication failed'), false, 'config_invalid'],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false, 'storage_unavailable'],
    [serverError(9999, 'something new'), false, 'unexpected'],
  ];
  for (const [err, isInsert, code] of cases) {
    it(`${err.message.slice(0, 40)} (${isInsert ? 'insert' : 'query'}) → ${code}`, () => {
      const e = storageError(err, 'insert into cdr', isInsert);
      assert.equal(e.code, code);
      assert.match(e.message, /^ClickHouse insert into cdr failed: /);
    });
  }
});
