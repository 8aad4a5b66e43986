/**
 * A law-enforcement request spanning expired, held and live months, on the real engine after a real retention pass:
 * each month is answered as it should be and named — "expired" (key destroyed, no hold), "held" (answered from a legal
 * hold's copy after expiry), "answered" (live), "no_traffic" (live, nothing there) — and "expired" is never confused
 * with "no traffic".
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CdrEvent } from '../../../services/core/index.ts';
import { addMonthsUtc, canonicalJson, monthKeyOf, sealIdentifier, startOfMonthUtc, verifyAnswer } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { LegalHolds } from '../../../services/platform/holds/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { createRetention } from '../../../services/retention/wiring.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { storeDirectly } from '../../support/seed.ts';
import { DisclosureDesk, type MonthAnswer } from '../../../services/api/disclosure/disclosureDesk.ts';
import { normaliseIdentifier } from '../../../services/core/index.ts';
import { testSetup, testSigner } from '../../support/testEnv.ts';

const SUBJECT = '+447911123456';
/** A second subject, whose R-12 records only a confidential hold keeps. */
const SECRET = '+447911654321';
const DAY = 86_400_000;

describe('a request across expired, held and live months', () => {
  const setup = testSetup();
  const R = startOfMonthUtc(Date.now());
  const month = (k: number) => addMonthsUtc(R, k);
  const gen = new TrafficGenerator({ seed: 41, scenario: 'normal', startTime: Date.now(), ratePerSecond: 1 });
  let rt: PipelineRuntime;
  let api: TestApi;
  const byMonth = new Map<number, CdrEvent[]>();

  const at = (t: number): CdrEvent => {
    const e = gen.next();
    return {
      ...e,
      event_time: t,
      submitted_at: t,
      delivered_at: t + 1000,
      channel: 'sms',
      direction: 'mt',
      sender_type: 'alphanumeric',
      sender: 'ACMEBANK',
      recipient: SUBJECT,
      destination_country: 'GB',
      mcc: '234',
      mnc: '15',
    };
  };

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    // R-13 written while its window was open (it closed today or earlier); are live by the wall clock.
    for (const [k, n] of [
      [-13, 3],
      [-12, 4],
      [-11, 2],
      [-1, 5],
    ] as const) {
      // R-1's records lie early in the month: the request below reaches 13 calendar months from its start.
      const events = Array.from({ length: n }, (_, i) => at(month(k) + (k === -1 ? 2 : 20) * DAY + i * 3_600_000));
      byMonth.set(k, events);
      await storeDirectly(rt, events, month(k) + 25 * DAY);
    }
    // A hold on R-12 from its second record on, placed while its identifiers are there: the rest of R-12 expires
    // (found from outside: a month held in part was answered "held", and that the rest of it expired was not said).
    const { storage, keyRing, masterKey } = requireStorage(rt);
    await new LegalHolds(storage, keyRing, masterKey).place({
      caseReference: 'HOLD-12',
      reason: 'preservation order',
      identifier: { type: 'msisdn', value: SUBJECT },
      from: month(-12) + 20 * DAY + 3_600_000,
      to: month(-11) + DAY,
      actor: 'legal-test',
    });
    // One record 6 hours ahead of the clock (ingest takes up to CDR_MAX_FUTURE_SKEW_MS ahead).
    const ahead = at(Date.now() + 6 * 3_600_000);
    byMonth.set(100, [ahead]);
    await storeDirectly(rt, [ahead]);
    const secret = Array.from({ length: 2 }, (_, i) => ({ ...at(month(-12) + 21 * DAY + i * 3_600_000), recipient: SECRET }));
    byMonth.set(-120, secret);
    await storeDirectly(rt, secret, month(-12) + 25 * DAY);
    await new LegalHolds(storage, keyRing, masterKey).place({
      caseReference: 'SECRET-12',
      reason: 'investigation',
      identifier: { type: 'msisdn', value: SECRET },
      from: month(-12),
      to: month(-11),
      actor: 'legal-test',
      confidential: true,
    });
    // The retention pass at the start of next month destroys the keys of R-13 and R-12 (the hold keeps its copy of
    // the state a request finds once R-12 has expired too. (The clock is moved for the pass only; the API
    // below runs on the wall clock, where R-12's window is open but its key is gone: expired all the same.)
    const report = await createRetention(rt, { signer: testSigner() }).pass.run({ now: month(1) + DAY, dryRun: false, actor: 'test' });
    const destroyed = report.actions.filter((a) => a.class === 'identifiers').map((a) => a.month);
    assert.deepEqual(destroyed.sort(), [monthKeyOf(month(-13)), monthKeyOf(month(-12))]);
    api = await openTestApi(rt);
  });

  after(async () => {
    await api?.close();
    await rt?.close();
  });

  /** A law-enforcement request of case `caseReference` about `identifier`, over [from, to). */
  const askLea = (caseReference: string, identifier: Record<string, string>, from: number, to: number) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/lea/requests',
      headers: auth('lea-officer'),
      payload: {
        authority: 'Metropolitan Police',
        case_reference: caseReference,
        legal_basis: 'Investigatory Powers Act 2016 s.61',
        identifier,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
      },
    });

  it('answers live months, answers the held month from the hold, names the expired one, and says where there was no traffic', async () => {
    const res = await askLea('MP-77', { type: 'msisdn', value: '07911 123456', country: 'GB' }, month(-13) + 15 * DAY, month(-1) + 10 * DAY);
    assert.equal(res.statusCode, 201, res.body);
    const a = res.json<{
      records: { cdr_id: string; source: string; hold_id?: string; recipient: string }[];
      months: { month: string; status: string; records: number; expired_parts?: { from: string; to: string }[] }[];
      expired_months: string[];
      integrity: unknown;
    }>();
    const status = Object.fromEntries(a.months.map((m) => [m.month, `${m.status}:${m.records}`]));
    assert.equal(status[monthKeyOf(month(-13))], 'expired:0');
    // held in part (three records), the rest of it expired — said as such, and listed among the expired months.
    assert.equal(status[monthKeyOf(month(-12))], 'held:3');
    const iso = (t: number): string => new Date(t).toISOString();
    assert.deepEqual(a.months.find((m) => m.month === monthKeyOf(month(-12)))!.expired_parts, [
      { from: iso(month(-12)), to: iso(month(-12) + 20 * DAY + 3_600_000) },
    ]);
    assert.equal(status[monthKeyOf(month(-11))], 'answered:2');
    assert.equal(status[monthKeyOf(month(-1))], 'answered:5');
    for (let k = -10; k <= -2; k++) assert.equal(status[monthKeyOf(month(k))], 'no_traffic:0', monthKeyOf(month(k)));
    assert.deepEqual(a.expired_months, [monthKeyOf(month(-13)), monthKeyOf(month(-12))]);
    assert.equal(res.headers['x-expired-months'], `${monthKeyOf(month(-13))},${monthKeyOf(month(-12))}`);
    const held = a.records.filter((r) => r.source === 'held');
    assert.deepEqual(
      held.map((r) => r.cdr_id).sort(),
      byMonth
        .get(-12)!
        .slice(1)
        .map((e) => e.cdr_id)
        .sort(),
    );
    assert.ok(
      held.every((r) => r.hold_id?.startsWith('hold-') && r.recipient === SUBJECT),
      'held records carry the identifiers the hold preserved',
    );
    const live = a.records.filter((r) => r.source === 'live').map((r) => r.cdr_id);
    assert.deepEqual(live.sort(), [...byMonth.get(-11)!, ...byMonth.get(-1)!].map((e) => e.cdr_id).sort());
    assert.ok(!a.records.some((r) => byMonth.get(-13)!.some((e) => e.cdr_id === r.cdr_id)), 'nothing of the expired month');
    assert.deepEqual(verifyAnswer({ header: a, records: a.records, integrity: a.integrity, trustedKeys: [api.signer.publicKeyObject] }).problems, []);
  });

  it('a data-subject export answers held months from a hold’s copy, but not from a confidential hold’s', async () => {
    const dsar = async (value: string) => {
      const res = await api.app.inject({ method: 'POST', url: '/v1/dsar', headers: auth('dpo'), payload: { identifier: { type: 'msisdn', value } } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{
        records: { cdr_id: string; source: string }[];
        months: { month: string; status: string; records: number }[];
        withheld: { holds: number };
        holds: { case_reference: string }[];
      }>();
    };
    // The data held about the subject includes a hold's copy (found from outside: the export said "expired" for
    // months a hold kept, while a law-enforcement request at the same moment answered them).
    const open = await dsar(SUBJECT);
    const status = Object.fromEntries(open.months.map((m) => [m.month, `${m.status}:${m.records}`]));
    assert.equal(status[monthKeyOf(month(-12))], 'held:3');
    assert.deepEqual(
      open.records
        .filter((r) => r.source === 'held')
        .map((r) => r.cdr_id)
        .sort(),
      byMonth
        .get(-12)!
        .slice(1)
        .map((e) => e.cdr_id)
        .sort(),
    );
    // By default up to a week ahead: a record ahead of the clock is the subject's too (found from outside: left out).
    assert.ok(open.records.some((r) => r.cdr_id === byMonth.get(100)![0]!.cdr_id));
    assert.deepEqual(
      open.holds.map((h) => h.case_reference),
      ['HOLD-12'],
    );
    // A confidential hold must not tip the subject off: its copy is not exported, and it is counted as withheld.
    const secret = await dsar(SECRET);
    assert.equal(secret.months.find((m) => m.month === monthKeyOf(month(-12)))?.status, 'expired');
    assert.deepEqual(secret.records, []);
    assert.equal(secret.withheld.holds, 1);
    assert.deepEqual(secret.holds, []);
    // Law enforcement gets that copy.
    const lea = await askLea('MP-78', { type: 'msisdn', value: SECRET }, month(-12), month(-11));
    assert.equal(lea.statusCode, 201, lea.body);
    assert.equal(lea.json<{ records: unknown[] }>().records.length, 2);
  });

  it('pages live months as one range: pages cross month boundaries, order and per-month counts stay exact', async () => {
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const holds = new LegalHolds(storage, keyRing, masterKey);
    const id = normaliseIdentifier(SUBJECT, 'msisdn');
    const from = month(-13) + 15 * DAY;
    const to = month(-1) + 10 * DAY;
    // Counts the queries that read the subscriber index (each page's lookup, and a separate count).
    let indexReads = 0;
    const counted: typeof storage = {
      ...storage,
      query: <T>(sql: string, params?: Record<string, unknown>, settings?: Parameters<typeof storage.query>[2]) => {
        if (sql.includes(storage.table('subscriber_index'))) indexReads++;
        return storage.query<T>(sql, params, settings);
      },
    };
    const answer = async (pageSize: number) => {
      indexReads = 0;
      const desk = new DisclosureDesk({ storage: counted, keyRing, holds, pageSize });
      const plan = await desk.plan(id, from, to, Date.now(), true);
      const months: MonthAnswer[] = [];
      const pages: { cdr_id: string; event_time: string; source: string }[][] = [];
      for await (const page of desk.pages(plan, (m) => months.push(m))) pages.push(page);
      return { plan, months, pages, indexReads };
    };
    const whole = await answer(2_000);
    const paged = await answer(3);
    // The plan counted each live month in one query: its estimates are the months' real counts.
    const estimates = Object.fromEntries(paged.plan.months.map((m) => [m.month, m.estimate]));
    assert.equal(estimates[monthKeyOf(month(-11))], 2);
    assert.equal(estimates[monthKeyOf(month(-1))], 5);
    assert.equal(estimates[monthKeyOf(month(-5))], 0);
    assert.equal(paged.plan.estimate, 3 + 2 + 5);
    // A one-page answer is counted from the index page the plan read, and its records restored from it: one index read.
    // Several pages: the plan's first page (which the answer starts with), a count, then the index from where it ended.
    assert.deepEqual(
      whole.plan.months.map((m) => [m.month, m.estimate]),
      paged.plan.months.map((m) => [m.month, m.estimate]),
      'the same estimates whether counted apart or from the one page',
    );
    assert.equal(whole.plan.liveFirst?.hits.length, 2 + 5);
    assert.equal(whole.plan.liveFirst?.last, undefined);
    assert.equal(paged.plan.liveFirst?.hits.length, 3);
    assert.notEqual(paged.plan.liveFirst?.last, undefined);
    assert.equal(whole.indexReads, 1);
    // 7 live records in pages of 3: pages of 3, 3 and 1 — the first read while planning, the other two after the count.
    assert.equal(paged.indexReads, 1 + 1 + 2);
    assert.ok(
      paged.pages.every((p) => p.length >= 1 && p.length <= 3),
      'no page larger than asked',
    );
    const livePages = paged.pages.filter((p) => p.every((r) => r.source === 'live'));
    assert.ok(
      livePages.some((p) => new Set(p.map((r) => r.event_time.slice(0, 7))).size > 1),
      'a page holds the end of one month and the start of another',
    );
    const flat = paged.pages.flat();
    assert.deepEqual(
      flat.map((r) => r.cdr_id),
      whole.pages.flat().map((r) => r.cdr_id),
      'same records in the same order whatever the page size',
    );
    const live = flat.filter((r) => r.source === 'live');
    const sorted = [...live].sort((a, b) => (a.event_time < b.event_time ? -1 : a.event_time > b.event_time ? 1 : a.cdr_id < b.cdr_id ? -1 : 1));
    assert.deepEqual(live, sorted, 'live records in (event_time, cdr_id) order');
    assert.deepEqual(paged.months, whole.months, 'months and their counts do not depend on paging');
    assert.deepEqual(
      paged.months.map((m) => m.month),
      [...paged.months.map((m) => m.month)].sort(),
      'months in calendar order',
    );
    assert.equal(paged.months.find((m) => m.month === monthKeyOf(month(-1)))?.records, 5);
  });

  it('keeps a receipt’s integrity block only while every key it digests lives: each answered month’s and each hold’s', async () => {
    // Found from outside (2026-12-07): the block's record digests are taken over the identifiers, and the rest of each
    // record stays in the 10-year table; sealed under the request month's key alone, a receipt outlived the answered
    // months' keys, and a number came back from it in under 10,000 guesses.
    const ask = async (ref: string, from: number, to: number) => {
      const res = await askLea(ref, { type: 'msisdn', value: SUBJECT }, from, to);
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ request_id: string; integrity: unknown; records: { source: string; hold_id?: string }[] }>();
    };
    const receipt = async (id: string) => {
      const res = await api.app.inject({ method: 'GET', url: `/v1/lea/requests/${id}`, headers: auth('lea-officer') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ integrity: unknown }>().integrity;
    };
    const live11 = await ask('R-11', month(-11), month(-10)); // answered from R-11's live records
    const held12 = await ask('R-12', month(-12), month(-11)); // answered from HOLD-12's copy alone
    const live1 = await ask('R-1', month(-1), month(0)); // answered from R-1's live records
    assert.deepEqual([live11.records.length, held12.records.length, live1.records.length], [2, 3, 5]);
    for (const a of [live11, held12, live1]) assert.deepEqual(await receipt(a.request_id), a.integrity, 'the receipt carries the answer’s block');
    // A receipt as it was stored before 2026-12-07 (under the request month's key alone): R-11's again, copied.
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const [row] = await storage.query<Record<string, unknown> & { subject_month: string }>(
      `SELECT * FROM ${storage.table('disclosure_requests')} FINAL WHERE request_id = {id:String}`,
      { id: live11.request_id },
    );
    const legacyId = `${live11.request_id}-legacy`;
    const subjectKey = (await keyRing.existingKey(row!.subject_month))!;
    await storage.insert('disclosure_requests', [
      {
        ...row,
        request_id: legacyId,
        receipt_sealed: sealIdentifier(subjectKey, `receipt:${legacyId}`, canonicalJson(live11.integrity)).toString('base64'),
        receipt_keys: '',
      },
    ]);
    assert.deepEqual(await receipt(legacyId), live11.integrity, 'an old receipt still opens while its months live');

    // R-11's key destroyed (a pass a month on): the receipt that digests its numbers loses its block; the others keep theirs.
    const report = await createRetention(rt, { signer: testSigner() }).pass.run({ now: month(2) + DAY, dryRun: false, actor: 'test' });
    assert.ok(report.actions.some((x) => x.class === 'identifiers' && x.month === monthKeyOf(month(-11))));
    assert.equal(await receipt(live11.request_id), null);
    assert.equal(await receipt(legacyId), null, 'an old receipt, sealed under the request month alone, is withheld too');
    assert.deepEqual(await receipt(held12.request_id), held12.integrity);
    assert.deepEqual(await receipt(live1.request_id), live1.integrity);

    // The hold released and its copy purged (with its key): the receipt answered from that copy loses its block too.
    const holdId = held12.records[0]!.hold_id!;
    await new LegalHolds(storage, keyRing, masterKey).release(holdId, 'legal-test');
    await createRetention(rt, { signer: testSigner() }).pass.run({ now: month(2) + 2 * DAY, dryRun: false, actor: 'test' });
    assert.equal(await new LegalHolds(storage, keyRing, masterKey).keyOf(holdId), undefined, 'the hold’s key is gone');
    assert.equal(await receipt(held12.request_id), null);
    assert.deepEqual(await receipt(live1.request_id), live1.integrity);
  });
});
