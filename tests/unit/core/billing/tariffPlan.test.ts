import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlanBook, PipelineError } from '../../../../services/core/index.ts';

const GOOD = `plans:
  - id: standard
    version: 1
    active_from: 2026-01-01T00:00:00Z
    active_to: 2026-07-01T00:00:00Z
    accounts: ["*"]
    currency: EUR
    rates:
      - channel: sms
        country: MY
        price: 12000
        cost: 8000
  - id: standard
    version: 2
    active_from: 2026-07-01T00:00:00Z
    accounts: ["*"]
    currency: EUR
    rates:
      - channel: sms
        country: "*"
        prefix: "6017"
        price: 15000
        cost: 9000
`;

function problemsOf(text: string): string {
  try {
    parsePlanBook(text, 'plans.yaml');
  } catch (err) {
    assert.ok(err instanceof PipelineError);
    assert.equal(err.code, 'config_invalid');
    return err.message;
  }
  assert.fail('the plan file was accepted');
}

describe('tariff plan files', () => {
  it('reads versions with their activation windows, rates and a digest per version', () => {
    const book = parsePlanBook(GOOD, 'plans.yaml');
    assert.equal(book.plans.length, 2);
    const [v1, v2] = book.plans;
    assert.equal(v1!.activeTo, Date.parse('2026-07-01T00:00:00Z'));
    assert.equal(v2!.activeTo, Number.POSITIVE_INFINITY);
    assert.equal(v2!.rates[0]!.prefix, '6017');
    assert.equal(v2!.rates[0]!.line, 19);
    assert.match(v1!.digest, /^[0-9a-f]{64}$/);
    assert.notEqual(v1!.digest, v2!.digest);
  });

  it('reads the same plans written as JSON', () => {
    const json = JSON.stringify({
      plans: [
        {
          id: 'p',
          version: 1,
          active_from: '2026-01-01T00:00:00Z',
          currency: 'USD',
          rates: [{ channel: 'voice', price: 60000, cost: 1, first_increment_s: 1, increment_s: 1 }],
        },
      ],
    });
    const book = parsePlanBook(json, 'plans.json');
    assert.equal(book.plans[0]!.rates[0]!.firstIncrementS, 1);
    assert.equal(book.plans[0]!.currency, 'USD');
  });

  it('refuses an overlapping activation window, naming the line of the later plan and of the one it overlaps', () => {
    const text = GOOD.replace('    active_from: 2026-07-01T00:00:00Z', '    active_from: 2026-06-01T00:00:00Z');
    const message = problemsOf(text);
    assert.match(message, /line 13: plan standard version 2 overlaps version 1 \(line 2\)/);
  });

  it('refuses two different plans for one account at overlapping times', () => {
    const message = problemsOf(`${GOOD}  - id: other
    version: 1
    active_from: 2026-03-01T00:00:00Z
    accounts: ["acme", "*"]
    currency: EUR
    trust_event_price: true
`);
    assert.match(message, /line 24: plan other and plan standard both apply to account "\*"/);
  });

  it('refuses an unknown currency, naming its line', () => {
    const message = problemsOf(
      GOOD.replace(
        '    currency: EUR\n    rates:\n      - channel: sms\n        country: "*"',
        '    currency: EUX\n    rates:\n      - channel: sms\n        country: "*"',
      ),
    );
    assert.match(message, /line 17: unknown currency "EUX"/);
  });

  it('names every problem at once: bad channel, country, prefix, money and seconds, unknown fields, bad instants', () => {
    const message = problemsOf(`plans:
  - id: p
    version: 0
    active_from: 2026-01-01
    currency: eur
    colour: red
    rates:
      - channel: fax
        country: XX
        prefix: "+60"
        price: 1.5
        cost: -1
        first_increment_s: 0
        discount: 3
`);
    for (const expected of [
      /line 3: "version" must be a positive integer/,
      /line 4: "active_from" must be an ISO 8601 instant with a zone/,
      /line 5: unknown currency "eur"/,
      /line 6: unknown plan field "colour"/,
      /line 8: "channel" must be one of/,
      /line 8: "country" must be an ISO 3166 alpha-2 code/,
      /line 8: "prefix" must be digits/,
      /line 8: "price" must be a whole number of micro-units/,
      /line 8: "cost" must be a whole number of micro-units/,
      /line 8: "first_increment_s" must be whole seconds/,
      /line 8: unknown rate field "discount"/,
    ])
      assert.match(message, expected);
  });

  it('refuses YAML that is not YAML, with its line', () => {
    assert.match(problemsOf('plans:\n  - id: p\n    version: [1\n'), /line \d+:/);
    assert.match(problemsOf('prices: []\n'), /expected a top-level "plans:" list/);
  });

  it('refuses a plan with no rates that does not trust the event price', () => {
    assert.match(
      problemsOf('plans:\n  - id: p\n    version: 1\n    active_from: 2026-01-01T00:00:00Z\n    currency: EUR\n'),
      /line 1: "rates" must be a non-empty list|"rates" must be a non-empty list/,
    );
  });
});
