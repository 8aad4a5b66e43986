/**
 * Billing end to end on the real broker and engine: generated traffic of October 2026 in three currencies goes
 * through ingest and billing; duplicates on another partition and a redelivery of every batch change no total;
 * aggregates (usage API, JSON and CSV) equal the sum over the individually rated records to the micro-unit; closing
 * October freezes its statements; a late October record becomes exactly one adjustment of November; a re-rate after
 * a plan change gives the new totals and keeps the old figures; reconciliation finds exactly the planted differences.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { billableSeconds, PipelineError, type CdrEvent } from '../../../services/core/index.ts';
import { createBilling, type Billing } from '../../../services/billing/createBilling.ts';
import { readPlanFile } from '../../../services/billing/planFile.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { BillingStore } from '../../../services/billing/billingStore.ts';
import { billingReconcile, billingRerate } from '../../../services/cli/billingCommand.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStore, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { assertDocumented } from '../../support/documented.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;
const OCT = Date.parse('2026-10-01T00:00:00Z');
const NOV = Date.parse('2026-11-01T00:00:00Z');
const DEC = Date.parse('2026-12-01T00:00:00Z');
const MID_OCT = Date.parse('2026-10-15T00:00:00Z');
const RECORDS = 3_000;

const PLANS_V1 = `plans:
  - id: eur-standard
    version: 1
    active_from: 2026-01-01T00:00:00Z
    accounts: ["*"]
    currency: EUR
    rates:
      - channel: sms
        country: "*"
        price: 50000
        cost: 30000
      - channel: sms
        country: MY
        prefix: "6017"
        price: 25000
        cost: 11000
      - channel: voice
        country: "*"
        price: 60000
        cost: 30000
  - id: usd-partners
    version: 1
    active_from: 2026-01-01T00:00:00Z
    ACTIVE_TO
    accounts: [acct-0001, acct-0002]
    currency: USD
    rates:
      - channel: sms
        country: "*"
        price: 40000
        cost: 20000
      - channel: voice
        country: "*"
        price: 50000
        cost: 25000
        first_increment_s: 1
        increment_s: 1
  - id: myr-local
    version: 1
    active_from: 2026-01-01T00:00:00Z
    accounts: [acct-0003]
    currency: MYR
    rates:
      - channel: sms
        country: "*"
        price: 90000
        cost: 45000
`;
// The plan change: USD prices double from 15 October (version 1 ends there, version 2 begins).
const PLANS_V2 = `${PLANS_V1.replace('    ACTIVE_TO\n', '    active_to: 2026-10-15T00:00:00Z\n')}  - id: usd-partners
    version: 2
    active_from: 2026-10-15T00:00:00Z
    accounts: [acct-0001, acct-0002]
    currency: USD
    rates:
      - channel: sms
        country: "*"
        price: 80000
        cost: 40000
      - channel: voice
        country: "*"
        price: 100000
        cost: 50000
        first_increment_s: 1
        increment_s: 1
`;

interface Money {
  records: number;
  amount: number;
  cost: number;
}

function byCurrency(rows: readonly { currency: string; amount_micros: number; cost_micros: number; records?: number }[]): Map<string, Money> {
  const m = new Map<string, Money>();
  for (const r of rows) {
    const v = m.get(r.currency) ?? { records: 0, amount: 0, cost: 0 };
    v.records += r.records ?? 1;
    v.amount += r.amount_micros;
    v.cost += r.cost_micros;
    m.set(r.currency, v);
  }
  return m;
}

describe('billing: rated records, exact aggregates, month close, re-rating, reconciliation', () => {
  const setup = testSetup();
  const plansFile = join(setup.dataDir, 'plans.yaml');
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let billing: Billing;
  let api: TestApi;
  const events: CdrEvent[] = [];
  let republished = 0;

  const produce = async (list: readonly CdrEvent[]): Promise<void> => {
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: list.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
  };
  const billed = (): number => billing.service.stats.rated + billing.service.stats.unrated;

  before(async () => {
    writeFileSync(plansFile, PLANS_V1.replace('    ACTIVE_TO\n', ''));
    rt = await openRuntime({ ...setup.config, billing: { ...setup.config.billing, plansFile } }, { log: createLogger('silent') });
    const gen = new TrafficGenerator({
      seed: 1210,
      scenario: 'normal',
      startTime: OCT + 60_000,
      ratePerSecond: RECORDS / ((NOV - OCT - 3_600_000) / 1000),
      accounts: 5,
    });
    // Spread over October whatever the arrival process drew: every time of a record moves by the same amount.
    gen.take(RECORDS).forEach((e, i) => {
      const shift = OCT + 60_000 + Math.floor((i * (NOV - OCT - 3_600_000)) / RECORDS) - e.event_time;
      events.push({
        ...e,
        event_time: e.event_time + shift,
        submitted_at: e.submitted_at + shift,
        delivered_at: e.delivered_at === null ? null : e.delivered_at + shift,
        // Every 97th carries no price at all (no currency): the plan's lines rate it (docs/billing.md).
        ...(i % 97 === 0 ? { currency: '', price: 0, cost: 0 } : {}),
      });
    });
    assert.ok(events.every((e) => e.event_time >= OCT && e.event_time < NOV));
    await produce(events);
    ingest = createIngest(rt);
    await ingest.start();
    billing = await createBilling(rt);
    await billing.service.start();
    await waitFor('ingest stored every record', () => ingest.stats.stored + ingest.stats.dlq + ingest.stats.duplicate >= RECORDS, 180_000);
    await waitFor('billing rated every stored record', () => billed() >= ingest.stats.stored, 180_000);
    // Duplicates on another partition: 200 pseudonymised events sent again by a producer that does not key them.
    const published = await readTopic(requireKafka(rt), setup.config.kafka.topics.pseudonymised);
    const again = published.slice(0, 200);
    const producer = requireKafka(rt).producer();
    await producer.connect();
    await producer.send({
      topic: setup.config.kafka.topics.pseudonymised,
      acks: -1,
      messages: again.map((m, i) => ({ value: m.value, headers: m.headers ?? {}, partition: i % 3 })),
    });
    await producer.disconnect();
    republished = again.length;
    await waitFor('billing saw the copies', () => billing.service.stats.duplicate >= republished, 120_000);
    api = await openTestApi(rt, { billingPlansFile: plansFile });
  });

  after(async () => {
    await api?.close();
    await billing?.service.stop();
    await ingest?.stop();
    await rt?.close();
  });

  const ratedOctober = () => billing.store.ratedRecords(OCT, NOV);
  /** A statement read through the API: its status and its adjustments as [concerns_month, currency, records, amount, reason, final]. */
  const adjustmentsOf = async (account: string, month: string) => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/billing/statements/${account}/${month}`, headers: auth('billing') });
    const s = res.json<{
      status: string;
      adjustments: { concerns_month: string; currency: string; records: number; amount_micros: number; reason: string; final: boolean }[];
    }>();
    return {
      statusCode: res.statusCode,
      status: s.status,
      adjustments: s.adjustments.map((a) => [a.concerns_month, a.currency, a.records, a.amount_micros, a.reason, a.final]),
    };
  };

  it('rates every stored record once, in three currencies, and counts the unrated ones instead of pricing them at zero', async () => {
    const rated = await ratedOctober();
    assert.equal(rated.length, ingest.stats.stored + ingest.stats.late);
    assert.equal(new Set(rated.map((r) => r.cdr_id)).size, rated.length);
    const currencies = new Set(rated.filter((r) => r.rated).map((r) => r.currency));
    assert.deepEqual([...currencies].sort(), ['EUR', 'MYR', 'USD']);
    const unrated = rated.filter((r) => !r.rated);
    assert.ok(unrated.length > 0, 'channels without a rate (email, push…) are unrated');
    assert.ok(unrated.every((r) => r.amount_micros === 0 && r.currency === ''));
    assert.equal(billing.service.stats.unrated, unrated.length);
    assert.ok(billing.service.stats.duplicate >= republished);
    const metrics = await rt.metrics.registry.getSingleMetricAsString('cdr_billing_records_total');
    assert.match(metrics, new RegExp(`cdr_billing_records_total\\{outcome="rated"\\} ${rated.length - unrated.length}\\b`));
    assert.match(metrics, new RegExp(`cdr_billing_records_total\\{outcome="unrated"\\} ${unrated.length}\\b`));
    assert.match(metrics, /cdr_billing_records_total\{outcome="duplicate"\} [1-9]/);
  });

  it('stores a record without a price (no currency) and rates it by its plan’s line, like any other', async () => {
    const priceless = events.filter((e) => e.currency === '');
    assert.ok(priceless.length > 10);
    const rated = new Map((await ratedOctober()).map((r) => [r.cdr_id, r]));
    for (const e of priceless) {
      const r = rated.get(e.cdr_id);
      assert.ok(r, `${e.cdr_id} (no price) was stored and reached billing, not the DLQ`);
      if (e.channel === 'sms' || e.channel === 'voice') {
        assert.ok(r.rated, `${e.cdr_id} (${e.channel}) is rated by a line`);
        assert.ok(['EUR', 'USD', 'MYR'].includes(r.currency) && r.amount_micros > 0);
      }
    }
  });

  it('prices records by the plan of their account, the longest range prefix and voice increments', async () => {
    const rated = new Map((await ratedOctober()).map((r) => [r.cdr_id, r]));
    let checked = 0;
    for (const e of events) {
      const r = rated.get(e.cdr_id);
      if (!r || !r.rated) continue;
      if (e.account_id === 'acct-0001' || e.account_id === 'acct-0002') {
        assert.equal(r.currency, 'USD');
        const expected = e.channel === 'sms' ? Math.max(1, e.segments) * 40_000 : Math.floor((50_000 * billableSeconds(e.duration_ms ?? 0, 1, 1) + 30) / 60);
        assert.equal(r.amount_micros, expected, `${e.channel} ${e.cdr_id}`);
        checked++;
      } else if (e.account_id === 'acct-0003') {
        assert.equal(r.currency, 'MYR');
        assert.equal(r.amount_micros, Math.max(1, e.segments) * 90_000);
        checked++;
      }
    }
    assert.ok(checked > 100, `${checked} records checked`);
  });

  it('usage aggregates equal the sum over the rated records to the micro-unit, by day and by month, in JSON and CSV', async () => {
    const rated = (await ratedOctober()).filter((r) => r.rated);
    const expected = byCurrency(rated);
    for (const groupBy of ['month', 'day', 'day,channel,country,provider', 'month,provider', 'day,status', 'none']) {
      const res = await api.app.inject({
        method: 'GET',
        url: `/v1/billing/usage?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=${groupBy}`,
        headers: auth('billing'),
      });
      assert.equal(res.statusCode, 200, res.body);
      const rows = res.json<{ rows: { currency: string; amount_micros: number; cost_micros: number; records: number; account_id: string }[] }>().rows;
      assert.deepEqual(byCurrency(rows), expected, groupBy);
      for (const r of rows) for (const v of [r.amount_micros, r.cost_micros, r.records]) assert.ok(Number.isSafeInteger(v));
      const csv = await api.app.inject({
        method: 'GET',
        url: `/v1/billing/usage?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=${groupBy}&format=csv`,
        headers: auth('billing'),
      });
      assert.equal(csv.statusCode, 200);
      assert.match(String(csv.headers['content-type']), /^text\/csv/);
      const [header, ...lines] = csv.body.trim().split('\r\n');
      const cols = header!.split(',');
      const csvRows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
      assert.equal(csvRows.length, rows.length);
      // The CSV has the JSON's columns, every grouped-by dimension included (found from outside: `status` was missing),
      // and the same values row by row.
      assert.deepEqual([...cols].sort(), Object.keys(rows[0] ?? {}).sort(), `${groupBy}: CSV columns`);
      rows.forEach((r, i) => {
        for (const [k, v] of Object.entries(r)) assert.equal(csvRows[i]![k], String(v), `${groupBy}: row ${i} ${k}`);
      });
      assert.deepEqual(
        byCurrency(
          csvRows.map((r) => ({
            currency: r['currency']!,
            amount_micros: Number(r['amount_micros']),
            cost_micros: Number(r['cost_micros']),
            records: Number(r['records']),
          })),
        ),
        expected,
      );
    }
    // The same figures as ClickHouse views, for SQL users (migration 9).
    const storage = requireStore(rt);
    const daily = await storage.query<{ currency: string; records: string; amount_micros: string; cost_micros: string }>(
      `SELECT currency, sum(records) AS records, sum(amount_micros) AS amount_micros, sum(cost_micros) AS cost_micros FROM ${storage.table('billing_usage_daily')}
       WHERE day >= '2026-10-01' AND day < '2026-11-01' GROUP BY currency`,
    );
    assert.deepEqual(
      byCurrency(
        daily.map((d) => ({ currency: d.currency, records: Number(d.records), amount_micros: Number(d.amount_micros), cost_micros: Number(d.cost_micros) })),
      ),
      expected,
    );
    const perAccount = byCurrency(rated.filter((r) => r.account_id === 'acct-0003'));
    const one = await api.app.inject({
      method: 'GET',
      url: '/v1/billing/usage?account_id=acct-0003&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=month',
      headers: auth('billing'),
    });
    assert.deepEqual(byCurrency(one.json<{ rows: [] }>().rows), perAccount);
  });

  it('reads blank parameters as not given: every account, and the month to date without a range', async () => {
    const get = (qs: string) => api.app.inject({ method: 'GET', url: `/v1/billing/usage?${qs}`, headers: auth('billing') });
    const all = await get('from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=month');
    const blank = await get('account_id=&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=month&format=');
    assert.equal(blank.statusCode, 200, blank.body);
    assert.ok(all.json<{ rows: unknown[] }>().rows.length > 0);
    assert.deepEqual(blank.json(), all.json());
    const template = await get('account_id=&from=&to=&group_by=month');
    assert.equal(template.statusCode, 200, template.body);
    assert.deepEqual(template.json(), (await get('group_by=month')).json(), 'blank is absent: the month to date');
  });

  it('refuses bad usage queries with a 400 that names the problem, and other roles', async () => {
    const bad = [
      ['from=yesterday&to=2026-11-01T00:00:00Z', /from/],
      ['from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z', /after/],
      ['from=2026-01-01T00:00:00Z&to=2027-06-01T00:00:00Z', /400 days/],
      ['from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=colour', /colour/],
      ['from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&group_by=day,month', /not both/],
      ['from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&format=xml', /format/],
    ] as const;
    for (const [qs, message] of bad) {
      const res = await api.app.inject({ method: 'GET', url: `/v1/billing/usage?${qs}`, headers: auth('billing') });
      assert.equal(res.statusCode, 400, qs);
      assert.match(res.json<{ message: string }>().message, message);
    }
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/billing/usage?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z' })).statusCode, 401);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/billing/usage?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z', headers: auth('fraud') })).statusCode,
      403,
    );
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0001/2026-13', headers: auth('billing') })).statusCode, 400);
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/billing/statements/nobody/2026-10', headers: auth('billing') })).statusCode, 404);
  });

  it('a redelivery of every batch (the group rewound to the start) changes no total', async () => {
    const before = byCurrency((await ratedOctober()).filter((r) => r.rated));
    const seen = billing.service.stats.duplicate + billed();
    await billing.service.stop();
    const admin = requireKafka(rt).admin();
    await admin.connect();
    await admin.resetOffsets({ groupId: setup.config.billing.groupId, topic: setup.config.kafka.topics.pseudonymised, earliest: true });
    await admin.disconnect();
    billing = await createBilling(rt);
    await billing.service.start();
    await waitFor('billing read the topic again', () => billing.service.stats.duplicate + billed() >= seen, 120_000);
    assert.deepEqual(byCurrency((await ratedOctober()).filter((r) => r.rated)), before);
    // Every record read again is a copy (found from outside: a rewound group's records were counted `rated` again).
    assert.equal(billed(), 0);
    assert.equal(billing.service.stats.duplicate, seen);
  });

  let octoberDigest = '';
  it('closes October: statements frozen with a digest; skipping it, closing again or closing an unfinished month is refused', async () => {
    // November first would skip October, which has records: refused (skipped, October could never be closed).
    await assert.rejects(
      billing.store.close('2026-11', 'test'),
      (e: unknown) => e instanceof PipelineError && e.code === 'conflict' && /^2026-10 has billed records and is not closed: close it first/.test(e.message),
    );
    // Two closes at once (a retried request, a second operator): one closes, the other is told it is closed.
    const both = await Promise.allSettled([billing.store.close('2026-10', 'test'), billing.store.close('2026-10', 'test')]);
    const [first, second] = both;
    if (first.status !== 'fulfilled' || second.status !== 'rejected') throw new Error(`expected one close and one refusal: ${first.status}, ${second.status}`);
    assert.ok(second.reason instanceof PipelineError && second.reason.code === 'conflict' && /already closed/.test(second.reason.message));
    const closed = first.value;
    const storage = requireStore(rt);
    const [written] = await storage.query<{ closures: string; statements: string }>(
      `SELECT (SELECT count() FROM ${storage.table('billing_closures')} WHERE month = '2026-10') AS closures,
              (SELECT count() FROM ${storage.table('billing_statements')} WHERE month = '2026-10') AS statements`,
    );
    assert.deepEqual([Number(written!.closures), Number(written!.statements)], [1, 5]);
    assert.equal(closed.accounts, 5);
    assert.equal(closed.adjustments, 0);
    const res = await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-10', headers: auth('billing') });
    assert.equal(res.statusCode, 200);
    const s = res.json<{
      status: string;
      digest: string;
      digest_verified: boolean;
      lines: { currency: string; amount_micros: number; minutes: number }[];
      totals: { total_micros: number }[];
    }>();
    assert.equal(s.status, 'closed');
    assert.equal(s.digest_verified, true);
    assert.match(s.digest, /^[0-9a-f]{64}$/);
    const own = byCurrency((await ratedOctober()).filter((r) => r.rated && r.account_id === 'acct-0004'));
    assert.equal(s.lines.find((l) => l.currency === 'EUR')!.amount_micros, own.get('EUR')!.amount);
    octoberDigest = s.digest;
    await assert.rejects(billing.store.close('2026-10', 'test'), (e: unknown) => e instanceof PipelineError && e.code === 'conflict');
    await assert.rejects(billing.store.close('2026-12', 'test'), (e: unknown) => e instanceof PipelineError && /not ended/.test(e.message));
  });

  let lateAmount = 0;
  it('a late October record is exactly one adjustment of November; October’s statement and digest do not change', async () => {
    const gen = new TrafficGenerator({ seed: 99, scenario: 'normal', startTime: OCT + 20 * 86_400_000, ratePerSecond: 1, accounts: 5 });
    const late = { ...gen.next(), account_id: 'acct-0004', channel: 'sms' as const, segments: 3 };
    const stored = ingest.stats.stored;
    await produce([late]);
    await waitFor(
      'the late record is rated',
      async () => ingest.stats.stored > stored && (await ratedOctober()).some((r) => r.cdr_id === late.cdr_id),
      120_000,
    );
    lateAmount = (await ratedOctober()).find((r) => r.cdr_id === late.cdr_id)!.amount_micros;
    assert.ok(lateAmount > 0);
    const oct = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-10', headers: auth('billing') })).json<{
      digest: string;
      digest_verified: boolean;
    }>();
    assert.equal(oct.digest, octoberDigest);
    assert.equal(oct.digest_verified, true);
    const nov = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-11', headers: auth('billing') })).json<{
      status: string;
      adjustments: { concerns_month: string; records: number; amount_micros: number; reason: string; final: boolean }[];
    }>();
    assert.equal(nov.status, 'open');
    assert.deepEqual(
      nov.adjustments.map((a) => [a.concerns_month, a.records, a.amount_micros, a.reason, a.final]),
      [['2026-10', 1, lateAmount, 'late_records', false]],
    );
  });

  let septemberAmount = 0;
  it('a record of September, passed over empty when October closed, is an adjustment of November: no month left that can never close', async () => {
    const gen = new TrafficGenerator({ seed: 98, scenario: 'normal', startTime: Date.parse('2026-09-20T00:00:00Z'), ratePerSecond: 1, accounts: 5 });
    const late = { ...gen.next(), account_id: 'acct-0003', channel: 'sms' as const, segments: 2, destination_country: 'MY' };
    const stored = ingest.stats.stored;
    await produce([late]);
    const rated = async () => (await billing.store.ratedRecords(Date.parse('2026-09-01T00:00:00Z'), OCT)).find((r) => r.cdr_id === late.cdr_id);
    await waitFor('the September record is rated', async () => ingest.stats.stored > stored && (await rated()) !== undefined, 120_000);
    septemberAmount = (await rated())!.amount_micros;
    assert.equal(septemberAmount, 2 * 90_000, 'myr-local: two segments');
    // September cannot close (October did) and has no statement of its own, which says where its records went.
    await assert.rejects(billing.store.close('2026-09', 'test'), (e: unknown) => e instanceof PipelineError && e.code === 'conflict');
    const sep = await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0003/2026-09', headers: auth('billing') });
    assert.equal(sep.statusCode, 404);
    assert.match(sep.json<{ message: string }>().message, /closed empty; its late records are adjustments of the next month to close/);
    const nov = await adjustmentsOf('acct-0003', '2026-11');
    assert.equal(nov.status, 'open');
    assert.deepEqual(nov.adjustments, [['2026-09', 'MYR', 1, septemberAmount, 'late_records', false]]);
  });

  it('re-rating after a plan change gives the new totals, keeps the old figures and records who re-rated', async () => {
    const usdBefore = (await ratedOctober()).filter((r) => r.rated && r.currency === 'USD' && Date.parse(r.event_time) >= MID_OCT);
    writeFileSync(plansFile, PLANS_V2);
    const config = { ...setup.config, billing: { ...setup.config.billing, plansFile } };
    // The CLI's own path (opening the store) — this test process holds the embedded store in the same process, which
    // chDB allows (several sessions per process).
    // Found from outside: `--account ""` re-rated every account, and a phone number was stored as a run's account.
    for (const args of [{ account: '' }, { plan: ' ' }, { account: '+60123456789' }, { account: 'alice@example.com' }])
      await assert.rejects(
        billingRerate(config, { from: '2026-10-15T00:00:00Z', to: '2026-11-01T00:00:00Z', ...args }),
        (e: unknown) =>
          e instanceof PipelineError && e.code === 'config_invalid' && /^--(account|plan): /.test(e.message) && !/60123456789|alice/.test(e.message),
      );
    const report = await billingRerate(config, { from: '2026-10-15T00:00:00Z', to: '2026-11-01T00:00:00Z' });
    // Changed: every USD record after the change (new prices), and the unrated records of those accounts (their plan
    // version changed, their figures stay zero).
    const unratedUsdAccounts = (await ratedOctober()).filter(
      (r) => !r.rated && ['acct-0001', 'acct-0002'].includes(r.account_id) && Date.parse(r.event_time) >= MID_OCT,
    );
    assert.equal(report.changed, usdBefore.length + unratedUsdAccounts.length);
    const usdAfter = (await ratedOctober()).filter((r) => r.rated && r.currency === 'USD' && Date.parse(r.event_time) >= MID_OCT);
    const byId = new Map(events.map((e) => [e.cdr_id, e]));
    for (const r of usdAfter) {
      const e = byId.get(r.cdr_id)!;
      const expected = e.channel === 'sms' ? Math.max(1, e.segments) * 80_000 : Math.floor((100_000 * billableSeconds(e.duration_ms ?? 0, 1, 1) + 30) / 60);
      assert.equal(r.amount_micros, expected);
    }
    const sum = (rows: readonly { amount_micros: number }[]) => rows.reduce((a, r) => a + r.amount_micros, 0);
    assert.deepEqual(report.after.find((t) => t.currency === 'USD')?.amount_micros, sum(usdAfter));
    assert.deepEqual(report.before.find((t) => t.currency === 'USD')?.amount_micros, sum(usdBefore));
    const storage = requireStore(rt);
    const kept = await storage.query<{ n: string; amount: string }>(
      `SELECT count() AS n, sum(amount_micros) AS amount FROM ${storage.table('billing_rated_history')} WHERE rerate_id = {id:String}`,
      { id: report.rerate_id },
    );
    assert.deepEqual([Number(kept[0]!.n), Number(kept[0]!.amount)], [report.changed, sum(usdBefore)]);
    const runs = await storage.query<{ actor: string; changed: string }>(
      `SELECT actor, changed FROM ${storage.table('billing_rerates')} WHERE rerate_id = {id:String}`,
      { id: report.rerate_id },
    );
    assert.equal(runs.length, 1);
    assert.match(runs[0]!.actor, /^cli:/);
    const audit = await storage.query<{ action: string }>(`SELECT action FROM ${storage.table('audit_log')} WHERE request_id = {id:String}`, {
      id: report.rerate_id,
    });
    assert.deepEqual(
      audit.map((a) => a.action),
      ['billing.rerate'],
    );
  });

  it('closing November carries the late record as one adjustment and the re-rate of closed October as others', async () => {
    // What a close of November that failed before its closure row left: readers must not see it, and the retry must
    // write November whole (before the fix, the orphan adjustment cancelled the late record's).
    const failedAt = Date.parse('2026-12-01T00:05:00Z');
    await requireStore(rt).insert('billing_adjustments', [
      {
        adjustment_id: 'orphan-of-a-failed-close',
        account_id: 'acct-0004',
        currency: 'EUR',
        concerns_month: '2026-10',
        applies_to_month: '2026-11',
        records: 1,
        segments: 3,
        amount_micros: lateAmount,
        cost_micros: 0,
        reason: 'late_records',
        created_at: failedAt,
      },
    ]);
    await requireStore(rt).insert('billing_statements', [
      { month: '2026-11', account_id: 'acct-0004', closed_at: failedAt, closed_by: 'failed', body: '{"lines":[],"adjustments":[]}', digest: 'orphan' },
    ]);
    const closed = await billing.store.close('2026-11', 'test');
    assert.ok(closed.adjustments >= 2);
    const nov = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-11', headers: auth('billing') })).json<{
      status: string;
      digest_verified: boolean;
      adjustments: { concerns_month: string; records: number; amount_micros: number; final: boolean }[];
      totals: { currency: string; adjustment_micros: number }[];
    }>();
    assert.equal(nov.status, 'closed');
    assert.equal(nov.digest_verified, true);
    assert.deepEqual(
      nov.adjustments.map((a) => [a.concerns_month, a.records, a.amount_micros, a.final]),
      [['2026-10', 1, lateAmount, true]],
    );
    assert.equal(nov.totals.find((t) => t.currency === 'EUR')!.adjustment_micros, lateAmount);
    const myr = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0003/2026-11', headers: auth('billing') })).json<{
      adjustments: { concerns_month: string; records: number; amount_micros: number; final: boolean }[];
    }>();
    assert.deepEqual(
      myr.adjustments.map((a) => [a.concerns_month, a.records, a.amount_micros, a.final]),
      [['2026-09', 1, septemberAmount, true]],
    );
    const usd = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0001/2026-11', headers: auth('billing') })).json<{
      adjustments: { reason: string; records: number; amount_micros: number }[];
    }>();
    assert.equal(usd.adjustments.length, 1);
    assert.equal(usd.adjustments[0]!.reason, 'rerate');
    assert.equal(usd.adjustments[0]!.records, 0);
    assert.ok(usd.adjustments[0]!.amount_micros > 0, 'prices doubled');
    const oct = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-10', headers: auth('billing') })).json<{
      digest: string;
    }>();
    assert.equal(oct.digest, octoberDigest);
    // The usage of November's month row carries its adjustments.
    const usage = await api.app.inject({
      method: 'GET',
      url: '/v1/billing/usage?account_id=acct-0004&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&group_by=month',
      headers: auth('billing'),
    });
    const rows = usage.json<{ rows: { currency: string; adjustment_micros: number }[] }>().rows;
    assert.equal(rows.find((r) => r.currency === 'EUR')?.adjustment_micros, lateAmount);
    // Split by country: the adjustments are a row of their own (records 0), with the traffic rows' fields in their
    // order, in place after the traffic rows of its account and month (found from outside: appended at the end, fields
    // reordered; then before those rows, its empty country sorting first).
    const split = (
      await api.app.inject({
        method: 'GET',
        url: '/v1/billing/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&group_by=month,country',
        headers: auth('billing'),
      })
    ).json<{ rows: Record<string, string | number>[] }>().rows;
    const adjustmentRows = split.filter((r) => r['records'] === 0);
    assert.ok(adjustmentRows.length >= 1 && adjustmentRows.every((r) => Number(r['adjustment_micros']) !== 0));
    for (const r of split) assert.deepEqual(Object.keys(r), Object.keys(split[0]!));
    const keyOf = (r: Record<string, string | number>) =>
      [r['account_id'], r['month'], r['records'] === 0 ? '\uffff' : r['destination_country'], r['currency']].join('\u0000');
    const order = split.map((r) => keyOf(r));
    assert.deepEqual(order, [...order].sort());
    // Each adjustment row is the last of its account and month.
    split.forEach((r, i) => {
      if (r['records'] !== 0) return;
      const next = split[i + 1];
      assert.ok(
        next === undefined || next['account_id'] !== r['account_id'] || next['month'] !== r['month'] || next['records'] === 0,
        JSON.stringify([r, next]),
      );
    });
    assert.ok(DEC > NOV);
  });

  it('reconciliation against an invoice with planted differences finds exactly those', async () => {
    const provider = events.find((e) => e.channel === 'sms')!.provider_id;
    const ours = await billing.store.providerCost(provider, '2026-10');
    assert.ok(ours.length >= 10, `${ours.length} cells`);
    const toDecimal = (micros: number): string => `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
    const lines = ['day,destination_country,currency,records,cost'];
    ours.forEach((c, i) => {
      if (i === 1) return; // planted: a cell the invoice lacks
      const cost = i === 3 ? c.cost_micros + 500_000 : c.cost_micros; // planted: 0.50 more
      const records = i === 5 ? c.records + 2 : c.records; // planted: two records more at the same cost
      lines.push(`${c.day},${c.destination_country},${c.currency},${records},${toDecimal(cost)}`);
    });
    lines.push('2026-10-31,IS,EUR,4,1.250000'); // planted: a cell we have no traffic for
    lines.push('2026-10-30,,EUR,1,0.100000'); // planted: traffic without a destination country (an empty cell)
    const invoice = join(setup.dataDir, 'invoice.csv');
    writeFileSync(invoice, `${lines.join('\n')}\n`);
    const report = await billingReconcile({ ...setup.config, billing: { ...setup.config.billing, plansFile } }, { provider, month: '2026-10', invoice });
    const key = (d: { day: string; destination_country: string; currency: string }) => `${d.day}|${d.destination_country}|${d.currency}`;
    assert.deepEqual(
      report.differences.map((d) => [key(d), d.kind, d.delta_micros]).sort(),
      [
        [key(ours[1]!), 'missing_in_invoice', -ours[1]!.cost_micros],
        [key(ours[3]!), 'cost_differs', 500_000],
        [key(ours[5]!), 'records_differ', 0],
        ['2026-10-31|IS|EUR', 'missing_in_ours', 1_250_000],
        ['2026-10-30||EUR', 'missing_in_ours', 100_000],
      ].sort(),
    );
    writeFileSync(invoice, 'day,destination_country,currency,cost\n2026-10-01,MY,EUR,1.5\n2026-10-02,MY,EUX,abc\n');
    await assert.rejects(
      billingReconcile({ ...setup.config, billing: { ...setup.config.billing, plansFile } }, { provider, month: '2026-10', invoice }),
      (e: unknown) => e instanceof PipelineError && /line 3: currency "EUX"/.test(e.message) && /line 3: cost/.test(e.message),
    );
    // Found from outside: days not on the calendar were read as days without our traffic, `0x2` records as 2, and
    // costs past 2^53 micro-units were rounded.
    writeFileSync(
      invoice,
      'day,destination_country,currency,cost,records\n2026-10-31,MY,EUR,1.5,2\n2026-10-32,MY,EUR,1,1\n2026-10-00,MY,EUR,1,1\n2026-10-05,MY,EUR,1,0x2\n2026-10-06,MY,EUR,1,1e1\n2026-10-07,MY,EUR,9007199254.740993,1\n',
    );
    await assert.rejects(
      billingReconcile({ ...setup.config, billing: { ...setup.config.billing, plansFile } }, { provider, month: '2026-10', invoice }),
      (e: unknown) =>
        e instanceof PipelineError &&
        e.code === 'config_invalid' &&
        /line 3: day "2026-10-32" is not a date/.test(e.message) &&
        /line 4: day "2026-10-00" is not a date/.test(e.message) &&
        /line 5: records "0x2" is not a count/.test(e.message) &&
        /line 6: records "1e1" is not a count/.test(e.message) &&
        /line 7: cost: "9007199254.740993" is over a billion/.test(e.message) &&
        !/line 2:/.test(e.message),
    );
    // An empty or impossible --provider is a usage error, whichever way the command reaches the store.
    for (const bad of ['', '+60123456789', 'a b'])
      await assert.rejects(
        billingReconcile({ ...setup.config, billing: { ...setup.config.billing, plansFile } }, { provider: bad, month: '2026-10', invoice }),
        (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && /^--provider: /.test(e.message) && !e.message.includes('60123456789'),
      );
  });

  it('late records of two closed months are one pending adjustment each; what November already carried is not counted again', async () => {
    const gen = new TrafficGenerator({ seed: 97, scenario: 'normal', startTime: OCT + 25 * 86_400_000, ratePerSecond: 1, accounts: 5 });
    const lateOct = { ...gen.next(), account_id: 'acct-0004', channel: 'sms' as const, segments: 1 };
    const lateNov = { ...gen.next(), account_id: 'acct-0004', channel: 'sms' as const, segments: 2, event_time: NOV + 9 * 86_400_000 };
    // And one its plan has no rate for: unrated, in closed October (found from outside: on no statement at all).
    const lateUnrated = { ...gen.next(), account_id: 'acct-0004', channel: 'whatsapp' as const, segments: 1, currency: '', price: 0, cost: 0 };
    const stored = ingest.stats.stored;
    await produce([lateOct, lateNov, lateUnrated]);
    const amountOf = async (id: string) => (await billing.store.ratedRecords(OCT, DEC)).find((r) => r.cdr_id === id)?.amount_micros;
    await waitFor(
      'both late records are rated',
      async () =>
        ingest.stats.stored >= stored + 3 &&
        (await amountOf(lateOct.cdr_id)) !== undefined &&
        (await amountOf(lateNov.cdr_id)) !== undefined &&
        (await amountOf(lateUnrated.cdr_id)) !== undefined,
      120_000,
    );
    const dec = await adjustmentsOf('acct-0004', '2026-12');
    assert.equal(dec.statusCode, 200);
    assert.equal(dec.status, 'open');
    // October's re-rate and first late record were settled when November closed: only the new records are pending,
    // and the re-rate (before that close) is not named again.
    assert.deepEqual(dec.adjustments, [
      ['2026-10', '', 1, 0, 'unrated_records', false],
      ['2026-10', 'EUR', 1, await amountOf(lateOct.cdr_id), 'late_records', false],
      ['2026-11', 'EUR', 1, await amountOf(lateNov.cdr_id), 'late_records', false],
    ]);
    // Listed, not priced: no total without a currency.
    const decStatement = (await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2026-12', headers: auth('billing') })).json<{
      totals: { currency: string }[];
    }>();
    assert.deepEqual(
      decStatement.totals.map((t) => t.currency),
      ['EUR'],
    );
    // A re-rate of October after November closed is a reason only for the accounts whose October figures it changed
    // (found from outside: an account no run touched got "late_records+rerate"; then, 2026-12-06, one whose October
    // records all arrived after the only run over October, for all accounts, that changed others').
    const rerun = (id: string, account: string, plan: string) => ({
      rerate_id: id,
      at: Date.now(),
      actor: 'test',
      from_time: OCT,
      to_time: NOV,
      account_id: account,
      plan_id: plan,
      records: 1,
      changed: 1,
      before: '',
      after: '',
    });
    // What a run replaced: one record's figures of `account` in October.
    const replaced = (id: string, account: string) => ({
      rerate_id: id,
      account_id: account,
      event_time: OCT + 86_400_000,
      cdr_id: `replaced-by-${id}`,
      revision: 1,
      rated: true,
      currency: 'EUR',
      amount_micros: 1,
      cost_micros: 1,
      plan_id: 'eur-standard',
      plan_version: 1,
    });
    await requireStore(rt).insert('billing_rerates', [
      rerun('rerate-of-another-account', 'acct-0001', ''),
      rerun('rerate-of-another-plan', '', 'usd-partners'),
      rerun('rerate-of-all-that-changed-others', '', ''),
    ]);
    await requireStore(rt).insert('billing_rated_history', [
      replaced('rerate-of-another-account', 'acct-0001'),
      replaced('rerate-of-all-that-changed-others', 'acct-0002'),
    ]);
    assert.deepEqual(
      (await adjustmentsOf('acct-0004', '2026-12')).adjustments.map((a) => a[4]),
      ['unrated_records', 'late_records', 'late_records'],
    );
    // A run that moved only the plan version of acct-0004's October records (they carry their own prices): on record,
    // and no reason (found from outside, 2026-12-06: "late_records+rerate" for an account whose figures no run changed).
    await requireStore(rt).insert('billing_rerates', [rerun('rerate-of-its-plan-version', '', 'eur-standard')]);
    await requireStore(rt).insert('billing_rated_history', [{ ...replaced('rerate-of-its-plan-version', 'acct-0004'), figures_changed: false }]);
    assert.deepEqual(
      (await adjustmentsOf('acct-0004', '2026-12')).adjustments.map((a) => a[4]),
      ['unrated_records', 'late_records', 'late_records'],
    );
    await requireStore(rt).insert('billing_rerates', [rerun('rerate-of-its-plan', '', 'eur-standard')]);
    await requireStore(rt).insert('billing_rated_history', [replaced('rerate-of-its-plan', 'acct-0004')]);
    assert.deepEqual(
      (await adjustmentsOf('acct-0004', '2026-12')).adjustments.map((a) => a[4]),
      ['unrated_records', 'late_records+rerate', 'late_records'],
    );
    // Once 2026's traffic retention is over (2037-01-01) its rated records go (retention pass, table TTL): its closed
    // months are then not compared with what is left, which would show every record as a negative adjustment.
    const in2037 = new BillingStore(requireStore(rt), () => Date.parse('2037-01-01T00:00:00Z'));
    assert.deepEqual([...(await in2037.pendingAdjustments('2037-01')).values()].flat(), []);
    const in2036 = new BillingStore(requireStore(rt), () => Date.parse('2036-12-31T23:59:59Z'));
    assert.equal([...(await in2036.pendingAdjustments('2036-12')).values()].flat().length, 3, 'kept until then');
    // Only a month whose close would carry them (found from outside: every open month, 2031-07 too, showed the same
    // pending adjustments, owed again on each): December, and February only while December and January hold no billed
    // record (a close of February passes them over; found in review); a month not begun is a 404.
    const inMarch = new BillingStore(requireStore(rt), () => Date.parse('2027-03-15T00:00:00Z'));
    assert.equal((await inMarch.statement('acct-0004', '2026-12'))!.adjustments.length, 3);
    assert.equal((await inMarch.statement('acct-0004', '2027-02'))!.adjustments.length, 3);
    const notBegun = await api.app.inject({ method: 'GET', url: '/v1/billing/statements/acct-0004/2031-07', headers: auth('billing') });
    assert.equal(notBegun.statusCode, 404);
    assert.match(notBegun.json<{ message: string }>().message, /2031-07: the month has not begun \(it begins 2031-07-01T00:00:00\.000Z\)/);
  });

  it('close through a month closes, in order, each month a close of it would refuse to skip, then it; once done, nothing', async () => {
    // Through the API on this suite's store: November is closed already, so there is nothing to do, and no error.
    const again = await api.app.inject({ method: 'POST', url: '/v1/billing/close', headers: auth('billing'), payload: { through: '2026-11' } });
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), { through: '2026-11', closed: [] });
    await assertDocumented(api.app, 'POST', '/v1/billing/close', again);
    // The audit trail has the close `started` before it changed anything (a process killed part-way leaves it), then
    // the route's own entry; a refused body (below) starts nothing.
    const trail = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
    const closes = trail
      .json<{ entries: Record<string, unknown>[] }>()
      .entries.filter((e) => e['action'] === 'billing.close')
      .map((e) => [e['seq'], e['outcome'], e['detail'], e['request_id']] as const)
      .sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(
      closes.slice(-2).map(([, outcome, detail]) => [outcome, detail]),
      [
        ['started', 'through 2026-11'],
        ['ok', 'through 2026-11: nothing closed'],
      ],
      JSON.stringify(closes),
    );
    const [startedId, endedId] = closes.slice(-2).map((c) => c[3]);
    assert.match(String(startedId), /^[0-9a-f-]{36}$/);
    assert.equal(endedId, startedId, 'the started entry and the closing one share a request id');
    const both = await api.app.inject({
      method: 'POST',
      url: '/v1/billing/close',
      headers: auth('billing'),
      payload: { month: '2026-11', through: '2026-11' },
    });
    assert.equal(both.statusCode, 400);
    assert.match(both.json<{ message: string }>().message, /exactly one of "month"/);
    const afterRefusal = await api.app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth('auditor') });
    assert.equal(
      afterRefusal.json<{ entries: Record<string, unknown>[] }>().entries.filter((e) => e['action'] === 'billing.close' && e['outcome'] === 'started').length,
      closes.filter(([, outcome]) => outcome === 'started').length,
      'a refused close starts nothing',
    );
    // A store whose clock reads May 2027, with rated records in January and March 2027 (written as billing writes them:
    // ingest refuses event times ahead of its clock): December and February hold none and are passed over.
    const storage = requireStore(rt);
    await storage.command(`INSERT INTO ${storage.table('billing_rated')}
      (account_id, event_time, cdr_id, revision, channel, direction, status, destination_country, recipient_range, recipient_number_type, provider_id,
       segments, duration_ms, event_price, event_cost, event_currency, rated, unrated_reason, currency, amount_micros, cost_micros, billable_seconds,
       plan_id, plan_version, basis, rated_at, src_partition, src_offset)
      SELECT concat('acct-000', toString(1 + number % 2)), toDateTime64(['2027-01-10 00:00:00', '2027-03-20 00:00:00'][1 + intDiv(number, 2)], 3, 'UTC'),
        concat('through-', toString(number)), 0, 'sms', 'mt', 'delivered', 'MY', '6017', 'mobile', 'p0', 1, 0, 0, 0, '', true, '', 'EUR', 1000, 500, 0,
        'eur-standard', 1, 'segment', now64(3), 0, '0'
      FROM numbers(4)`);
    const future = new BillingStore(storage, () => Date.parse('2027-05-01T00:00:00Z'));
    // The pending adjustments are on the months a close of which would carry them: not past January, which has records.
    const pendingOn = async (m: string) => (await future.statement('acct-0004', m))?.adjustments.filter((a) => !a.final).length ?? 0;
    assert.deepEqual([await pendingOn('2026-12'), await pendingOn('2027-01'), await pendingOn('2027-02'), await pendingOn('2027-04')], [3, 3, 0, 0]);
    await assert.rejects(
      future.close('2027-04', 'test'),
      (e: unknown) => e instanceof PipelineError && e.code === 'conflict' && /^2027-01 has billed records/.test(e.message),
    );
    await assert.rejects(future.closeThrough('2027-05', 'test'), (e: unknown) => e instanceof PipelineError && /not ended/.test(e.message));
    const closed = await future.closeThrough('2027-04', 'test');
    assert.deepEqual(
      closed.map((c) => [c.month, c.accounts]),
      [
        ['2027-01', 3], // acct-0001 and -0002 with records, acct-0004 with the pending adjustments of October and November
        ['2027-03', 2],
        ['2027-04', 0],
      ],
    );
    assert.deepEqual(
      closed[0]!.statements.find((s) => s.account_id === 'acct-0004')!.adjustments.map((a) => [a.concerns_month, a.records, a.final]),
      [
        ['2026-10', 1, true],
        ['2026-10', 1, true],
        ['2026-11', 1, true],
      ],
    );
    assert.deepEqual(await future.closeThrough('2027-04', 'test'), []);
    assert.deepEqual(await future.closeThrough('2027-02', 'test'), []);
    assert.deepEqual([...(await future.closedMonths())].sort(), ['2026-10', '2026-11', '2027-01', '2027-03', '2027-04']);
    // Ingest runs on: a late record of May is rated just after the run chose June as the next month to close. The run
    // closes May first instead of failing (a stranger's kill -9 and restart, with the backlog being rated, hit this).
    const rateOne = (day: string, id: string) =>
      storage.command(`INSERT INTO ${storage.table('billing_rated')}
        (account_id, event_time, cdr_id, revision, channel, direction, status, destination_country, recipient_range, recipient_number_type, provider_id,
         segments, duration_ms, event_price, event_cost, event_currency, rated, unrated_reason, currency, amount_micros, cost_micros, billable_seconds,
         plan_id, plan_version, basis, rated_at, src_partition, src_offset)
        VALUES ('acct-0002', toDateTime64('${day} 00:00:00', 3, 'UTC'), '${id}', 0, 'sms', 'mt', 'delivered', 'MY', '6017', 'mobile', 'p0', 1, 0, 0, 0, '',
                true, '', 'EUR', 1000, 500, 0, 'eur-standard', 1, 'segment', now64(3), 0, '0')`);
    await rateOne('2027-06-10', 'through-june');
    let armed = true;
    const racing: typeof storage = {
      ...storage,
      query: async <T>(sql: string, params?: Record<string, unknown>, settings?: Parameters<typeof storage.query>[2]): Promise<T[]> => {
        const rows = await storage.query<T>(sql, params, settings);
        if (armed && sql.includes('min(event_time)')) {
          armed = false;
          await rateOne('2027-05-20', 'through-late-may');
        }
        return rows;
      },
    };
    const raced = await new BillingStore(racing, () => Date.parse('2027-08-01T00:00:00Z')).closeThrough('2027-07', 'test');
    assert.equal(armed, false, 'the late May record was rated mid-run');
    assert.deepEqual(
      raced.map((c) => c.month),
      ['2027-05', '2027-06', '2027-07'],
    );
  });

  it('a version in use edited in place while running is refused: the plans in force stay, billing and API alike', async () => {
    // Found from outside: the running billing and the API's re-rate took an edited version (6500 → 6600) although
    // billing_plans refused it at the next start.
    const digests = (book: { plans: readonly { id: string; version: number; digest: string }[] }): string =>
      JSON.stringify(book.plans.map((p) => [p.id, p.version, p.digest]));
    writeFileSync(plansFile, PLANS_V2);
    const inForce = digests(readPlanFile(plansFile));
    // Both watch the file (every 5 s): both take the current one, with nothing asking.
    await waitFor(
      'billing and the API took the current file',
      () => digests(billing.plans.current()) === inForce && digests(api.services.billingPlans()) === inForce,
      20_000,
    );
    writeFileSync(plansFile, PLANS_V2.replace('        price: 80000', '        price: 81000'));
    await waitFor('the edit refused', () => billing.plans.problem !== undefined, 15_000);
    assert.match(billing.plans.problem ?? '', /plan usd-partners version 2 differs from the version already in use/);
    await new Promise((r) => setTimeout(r, 6_000)); // the API's watch has looked too
    assert.equal(digests(billing.plans.current()), inForce);
    assert.equal(digests(api.services.billingPlans()), inForce);
    // Re-rating October's second half (rated at version 2 by the test before) changes nothing: the edit is not used.
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/billing/rerate',
      headers: { ...auth('billing'), 'content-type': 'application/json' },
      payload: { from: '2026-10-15T00:00:00Z', to: '2026-11-01T00:00:00Z', account_id: 'acct-0001' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ changed: number }>().changed, 0, 'nothing re-rated at the edited price');
    await assertDocumented(api.app, 'POST', '/v1/billing/rerate', res);
    writeFileSync(plansFile, PLANS_V2);
  });

  it('refuses a re-rate naming a plan that is neither in force nor on record (a typo ran and was audited)', async () => {
    const res = await api.app.inject({
      method: 'POST',
      url: '/v1/billing/rerate',
      headers: { ...auth('billing'), 'content-type': 'application/json' },
      payload: { from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z', plan_id: 'usd-partnerz' },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json<{ message: string }>().message, 'plan_id: no tariff plan "usd-partnerz" in the plans file or on record');
  });

  it('refuses to start on a plan file with an overlapping window, naming the line', async () => {
    const bad = join(setup.dataDir, 'bad-plans.yaml');
    writeFileSync(
      bad,
      PLANS_V2.replace(
        'active_from: 2026-10-15T00:00:00Z\n    accounts: [acct-0001, acct-0002]\n    currency: USD\n    rates:\n      - channel: sms\n        country: "*"\n        price: 80000',
        'active_from: 2026-10-01T00:00:00Z\n    accounts: [acct-0001, acct-0002]\n    currency: USD\n    rates:\n      - channel: sms\n        country: "*"\n        price: 80000',
      ),
    );
    await assert.rejects(
      createBilling({ ...rt, config: { ...rt.config, billing: { ...rt.config.billing, plansFile: bad } } }),
      (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && /line \d+: plan usd-partners version 2 overlaps version 1/.test(e.message),
    );
  });
});
