/**
 * Money figures are exact or refused, never wrapped, and a statement past the exact range says so (found from outside: eleven records of
 * 999,999,999.999999 VND summed to …988 instead of …989 in usage, statements and the CLI, and 9,300 records at the
 * largest price a record may carry summed past Int64 to a negative total). Rated rows are written straight into
 * billing_rated on the real engine; usage, statements and provider costs are read through the store and the API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineError } from '../../../services/core/index.ts';
import { BillingStore } from '../../../services/billing/billingStore.ts';
import type { RatedRow } from '../../../services/billing/ratedRow.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { testSetup } from '../../support/testEnv.ts';

const now = Date.now();
const monthStartMs = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
const MONTH = new Date(monthStartMs).toISOString().slice(0, 7);

function row(account: string, i: number, currency: string, amount: number): RatedRow {
  return {
    account_id: account,
    event_time: monthStartMs + 60_000 + i,
    cdr_id: `${account}-${i}`,
    revision: 1,
    channel: 'sms',
    direction: 'mt',
    status: 'delivered',
    destination_country: 'VN',
    recipient_range: '',
    recipient_number_type: 'mobile',
    provider_id: `prov-${account}`,
    segments: 1,
    duration_ms: 0,
    event_price: amount,
    event_cost: amount,
    event_currency: currency,
    rated: true,
    unrated_reason: '',
    currency,
    amount_micros: amount,
    cost_micros: amount,
    billable_seconds: 0,
    plan_id: 'trusting',
    plan_version: 1,
    basis: 'event',
    rated_at: now,
    src_partition: 0,
    src_offset: String(i),
  };
}

describe('billing money: exact to the micro-unit, or refused', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let store: BillingStore;
  let api: TestApi;

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    const { storage } = requireStorage(rt);
    const rows: RatedRow[] = [
      // Exactly 2^53 − 1 in two records: the largest total given exactly.
      row('acct-edge', 0, 'VND', 4_503_599_627_370_495),
      row('acct-edge', 1, 'VND', 4_503_599_627_370_496),
      // 11 × 999,999,999,999,999 = 10,999,999,999,999,989: past 2^53.
      ...Array.from({ length: 11 }, (_, i) => row('acct-big', i, 'VND', 999_999_999_999_999)),
      // 9,300 × 10^15 = 9.3 × 10^18: past Int64 (it wrapped to −9,146,744,073,709,552,000).
      ...Array.from({ length: 9_300 }, (_, i) => row('acct-wrap', i, 'USD', 1_000_000_000_000_000)),
    ];
    await storage.insert('billing_rated', rows);
    store = new BillingStore(storage);
    api = await openTestApi(rt);
  });

  after(async () => {
    await api?.close();
    await rt?.close();
  });

  const usage = (account: string) => store.usage({ accountId: account, from: monthStartMs, to: monthStartMs + 32 * 86_400_000, groupBy: ['month'] });

  it('gives a total of exactly 2^53 − 1 micro-units as it is, in usage and in the statement', async () => {
    const rows = await usage('acct-edge');
    assert.deepEqual(
      rows.map((r) => [r.amount_micros, r.cost_micros]),
      [[Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]],
    );
    const s = await store.statement('acct-edge', MONTH);
    assert.equal(s?.lines[0]?.amount_micros, Number.MAX_SAFE_INTEGER);
    assert.equal(s?.totals[0]?.total_micros, Number.MAX_SAFE_INTEGER);
  });

  it('refuses, never rounds, a total past 2^53 or past Int64: store, usage API (JSON and CSV), provider costs', async () => {
    for (const account of ['acct-big', 'acct-wrap']) {
      await assert.rejects(usage(account), (e: unknown) => e instanceof PipelineError && e.code === 'amount_out_of_range', account);
      for (const url of [
        `/v1/billing/usage?account_id=${account}&group_by=month`,
        `/v1/billing/usage?account_id=${account}&group_by=month&format=csv`,
        `/v1/billing/usage?account_id=${account}&group_by=day,channel,country,provider`,
        `/v1/billing/providers/prov-${account}/costs/${MONTH}`,
      ]) {
        const res = await api.app.inject({ method: 'GET', url, headers: auth('billing') });
        assert.equal(res.statusCode, 422, `${url}: ${res.body}`);
        const body = res.json<{ error: string; message: string }>();
        assert.equal(body.error, 'amount_out_of_range', url);
        assert.match(body.message, /beyond ±9007199254740991 micro-units .* nothing was rounded/, url);
        assert.ok(!res.body.includes('10999999999999988') && !res.body.includes('-9146744073709552'), 'no rounded or wrapped figure');
      }
    }
  });

  it('gives a statement past 2^53 all the same, marked exact: false, and never wrapped (a close must not stop for one account)', async () => {
    const big = await store.statement('acct-big', MONTH);
    assert.equal(big?.exact, false);
    // The nearest number to 10,999,999,999,999,989: within a few micro-units, never a wrapped or negative total.
    assert.ok(
      BigInt(big?.totals[0]?.total_micros ?? 0) - 10_999_999_999_999_989n <= 2n && BigInt(big?.totals[0]?.total_micros ?? 0) - 10_999_999_999_999_989n >= -2n,
    );
    const wrap = await store.statement('acct-wrap', MONTH);
    assert.equal(wrap?.exact, false);
    assert.ok(Math.abs((wrap?.totals[0]?.total_micros ?? 0) - 9.3e18) / 9.3e18 < 1e-12, 'past Int64, not wrapped');
    const res = await api.app.inject({ method: 'GET', url: `/v1/billing/statements/acct-big/${MONTH}`, headers: auth('billing') });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /"exact":false/);
    const edge = await store.statement('acct-edge', MONTH);
    assert.equal(edge?.exact, undefined);
  });

  it('the daily views SQL users read sum in Int128 too: exact digits, no wrap (migration 17)', async () => {
    const { storage } = requireStorage(rt);
    const view = await storage.query<{ amount: string; cost: string }>(
      `SELECT toString(sum(amount_micros)) AS amount, toString(sum(cost_micros)) AS cost FROM ${storage.table('billing_usage_daily')} WHERE account_id = 'acct-wrap'`,
    );
    assert.equal(view[0]?.amount, String(9_300n * 10n ** 15n));
    const provider = await storage.query<{ cost: string }>(
      `SELECT toString(sum(cost_micros)) AS cost FROM ${storage.table('billing_provider_daily')} WHERE provider_id = 'prov-acct-big'`,
    );
    assert.equal(provider[0]?.cost, '10999999999999989');
  });

  it('other accounts are not held back by one whose totals are out of range', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/billing/usage?account_id=acct-edge&group_by=month', headers: auth('billing') });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /"amount_micros":9007199254740991/);
  });
});
