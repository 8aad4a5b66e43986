import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, PipelineError, classifyError, type PipelineErrorCode } from '../../../../services/core/index.ts';

describe('the error model', () => {
  it('gives every code a disposition and an HTTP status that agree', () => {
    for (const [code, rule] of Object.entries(ERROR_CODES)) {
      assert.ok(['retry', 'dead-letter', 'stop'].includes(rule.disposition), code);
      if (rule.disposition === 'dead-letter') assert.ok(rule.http >= 400 && rule.http < 500, `${code}: input at fault is a 4xx`);
      if (rule.disposition === 'stop') assert.equal(rule.http, 500, `${code}: a stop is our fault, 500`);
      if (rule.disposition === 'retry') assert.ok(rule.http >= 500, `${code}: transient is 5xx`);
    }
    assert.equal(new PipelineError('not_found', 'x').httpStatus, 404);
    assert.equal(new PipelineError('method_not_allowed', 'x').httpStatus, 405);
  });

  it('retries transient codes without limit and unclassified errors a few times only', () => {
    assert.equal(new PipelineError('storage_unavailable', 'x').maxAttempts, Number.POSITIVE_INFINITY);
    const unknown = new PipelineError('unexpected', 'x');
    assert.equal(unknown.disposition, 'retry');
    assert.ok(unknown.maxAttempts >= 2 && unknown.maxAttempts <= 10);
  });

  it('tells kafkajs not to retry a stop or a dead-letter', () => {
    const codes: [PipelineErrorCode, boolean][] = [
      ['invariant_broken', false],
      ['decode_failed', false],
      ['broker_unavailable', true],
    ];
    for (const [code, retriable] of codes) assert.equal(new PipelineError(code, 'x').retriable, retriable, code);
  });

  it('classifies socket failures as transient for the I/O in progress', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    assert.equal(classifyError(refused, 'storage').code, 'storage_unavailable');
    assert.equal(classifyError(refused, 'broker').code, 'broker_unavailable');
    assert.equal(classifyError(new Error('socket hang up'), 'storage').code, 'storage_unavailable');
  });

  it('classifies programming errors as stop and anything else as unexpected', () => {
    assert.equal(classifyError(new TypeError('x is not a function')).disposition, 'stop');
    assert.equal(classifyError(new Error('something odd')).code, 'unexpected');
    assert.equal(classifyError('a string').code, 'unexpected');
    const known = new PipelineError('validation_failed', 'x');
    assert.equal(classifyError(known), known, 'a PipelineError passes through unchanged');
  });
});
