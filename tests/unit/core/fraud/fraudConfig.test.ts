import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULT_FRAUD_CONFIG, parseFraudConfig, PipelineError, thresholdsFor } from '../../../../services/core/index.ts';

function problemsOf(text: string): string {
  try {
    parseFraudConfig(text, 'rules.yaml');
  } catch (err) {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'config_invalid');
    return err.message;
  }
  assert.fail('the rules file was accepted');
}

describe('fraud rule thresholds', () => {
  it('reads the shipped file, and fills what a file leaves out with the defaults', () => {
    const shipped = parseFraudConfig(readFileSync(new URL('../../../../config/fraud-rules.yaml', import.meta.url), 'utf8'), 'config/fraud-rules.yaml');
    assert.equal(shipped.rules.sms_pumping.warning, 6);
    assert.deepEqual(shipped.rules.sms_pumping.overrides, [{ country: 'LV', warning: 4, critical: 10 }]);
    const partial = parseFraudConfig('rules:\n  velocity:\n    warning: 9\n', 'x');
    assert.equal(partial.rules.velocity.warning, 9);
    assert.equal(partial.rules.velocity.critical, DEFAULT_FRAUD_CONFIG.rules.velocity.critical);
    assert.equal(partial.rules.irsf.windowS, DEFAULT_FRAUD_CONFIG.rules.irsf.windowS);
  });

  it('takes a network override before a country override, and the rule’s own thresholds otherwise', () => {
    const c = parseFraudConfig(
      'rules:\n  sms_pumping:\n    overrides:\n      - { country: LV, warning: 4, critical: 10 }\n      - { network: "247-01", warning: 2 }\n',
      'x',
    );
    assert.deepEqual(thresholdsFor(c.rules.sms_pumping, 'LV', '247-01'), { warning: 2, critical: 15 });
    assert.deepEqual(thresholdsFor(c.rules.sms_pumping, 'LV', '247-02'), { warning: 4, critical: 10 });
    assert.deepEqual(thresholdsFor(c.rules.sms_pumping, 'MY', '502-12'), { warning: 6, critical: 15 });
  });

  it('names every bad line: unknown rules and fields, critical below warning, bad overrides, bad lists', () => {
    const message = problemsOf(`close_after_s: 5
rules:
  sms_pumping:
    warning: 10
    critical: 5
    colour: red
    overrides:
      - { country: XX, warning: 1 }
      - { warning: 1 }
  irsf:
    high_risk_countries: [lv]
  teleportation:
    warning: 1
`);
    for (const expected of [
      /line 1: "close_after_s" must be whole seconds/,
      /line 5: sms_pumping.critical \(5\) must not be below its warning \(10\)/,
      /line 6: unknown field "colour" of rule sms_pumping/,
      /line 8: override country must be an ISO 3166 alpha-2 code/,
      /line 9: an override names a country or a network/,
      /line 11: irsf.high_risk_countries must be a list of codes/,
      /line 12: unknown rule "teleportation"/,
    ])
      assert.match(message, expected);
  });

  it('refuses YAML that is not YAML, with its line', () => {
    assert.match(problemsOf('rules:\n  velocity: [1\n'), /line \d+:/);
  });
});
