/**
 * Months the store can hold (core/billing/statement.ts): YYYY-MM from 1970-01 to 2299-12, the engine's time range.
 * A month outside reached the engine as an impossible time and gave a 500 (outside audit, 2026-12-02).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { MONTH, nextMonth, requireMonth } from '../../../../services/core/billing/statement.ts';

describe('months', () => {
  it('takes YYYY-MM within the engine range', () => {
    for (const m of ['1970-01', '1999-12', '2026-11', '2299-12']) {
      assert.ok(MONTH.test(m), m);
      assert.equal(requireMonth(m, 'bad_request'), m);
    }
  });

  it('refuses the rest with the caller’s code, naming what was given (at most 20 characters) and the rule', () => {
    for (const m of ['1969-12', '2300-01', '0999-02', '9999-12', '2026-13', '2026-00', '2026-1', '2026-011', ' 2026-01', '2026-01\n', 'x'.repeat(500)]) {
      assert.throws(
        () => requireMonth(m, 'config_invalid', '--month'),
        (err: unknown) =>
          err instanceof PipelineError &&
          err.code === 'config_invalid' &&
          err.message.startsWith(`--month: "${m.slice(0, 20)}" is not YYYY-MM, from 1970-01 to 2299-12`) &&
          err.message.length < 120,
        JSON.stringify(m),
      );
    }
    assert.throws(
      () => requireMonth('2026-13', 'bad_request'),
      (err: unknown) => err instanceof PipelineError && err.code === 'bad_request' && /^month: /.test(err.message),
    );
  });

  it('has a next month for every month it takes, zero-padded, across years', () => {
    assert.equal(nextMonth('2026-12'), '2027-01');
    assert.equal(nextMonth('1970-09'), '1970-10');
    assert.equal(nextMonth('2299-11'), '2299-12');
  });
});
