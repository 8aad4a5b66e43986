import { randomUUID } from 'node:crypto';
import {
  addMicros,
  sortUsageRows,
  exactMicros,
  requireMonth,
  monthStart,
  nextMonth,
  PipelineError,
  quotedValue,
  planBody,
  rate,
  sealStatement,
  statementDigest,
  trafficCutoff,
  type CostCell,
  type PlanBook,
  type Statement,
  type StatementAdjustment,
  type StatementLine,
} from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import { chTime, isoFromCh } from '../platform/identity/index.ts';
import { ratingInputOf, rowOf, type RatedRow } from './ratedRow.ts';

/**
 * Billing's reads and writes in ClickHouse: plans, usage aggregates, statements and month close, adjustments,
 * re-rating and the provider cost cells reconciliation compares. Every figure is summed from `billing_rated FINAL`
 * (one row per CDR, newest rating revision), so aggregates equal the sum over the individually rated records by
 * construction, whatever arrived twice or was re-rated.
 */
export type UsageDimension = 'day' | 'month' | 'channel' | 'country' | 'provider' | 'status';

export interface UsageQuery {
  readonly accountId?: string;
  readonly from: number;
  readonly to: number;
  readonly groupBy: readonly UsageDimension[];
}

export interface UsageRow {
  account_id: string;
  day?: string;
  month?: string;
  channel?: string;
  destination_country?: string;
  provider_id?: string;
  status?: string;
  records: number;
  segments: number;
  duration_ms: number;
  currency: string;
  amount_micros: number;
  cost_micros: number;
  adjustment_micros: number;
}

const DIMENSION_SQL: Record<UsageDimension, { expr: string; as: keyof UsageRow }> = {
  day: { expr: "toString(toDate(event_time, 'UTC'))", as: 'day' },
  month: { expr: "formatDateTime(event_time, '%Y-%m', 'UTC')", as: 'month' },
  channel: { expr: 'channel', as: 'channel' },
  country: { expr: 'destination_country', as: 'destination_country' },
  provider: { expr: 'provider_id', as: 'provider_id' },
  status: { expr: 'status', as: 'status' },
};

interface Totals {
  records: number;
  segments: number;
  duration_ms: number;
  billable_seconds: number;
  amount_micros: number;
  cost_micros: number;
}

/** One month's close: statements frozen, adjustments issued, and the digest over the statements' digests. */
export interface CloseResult {
  month: string;
  accounts: number;
  adjustments: number;
  digest: string;
  statements: Statement[];
}

export class BillingStore {
  /** Closes of this store run one at a time: two at once could both pass the checks and close a month twice. */
  private closing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: Storage,
    private readonly clock: () => number = Date.now,
  ) {}

  private t(name: string): string {
    return this.storage.table(name);
  }

  /**
   * Rows a close wrote count only once its closure row landed (written last, with the same `closed_at`): a close that
   * failed part-way leaves statements and adjustments no reader may see, and its retry writes its own.
   */
  private completedClose(monthColumn: string, timeColumn: string): string {
    return `(${monthColumn}, ${timeColumn}) IN (SELECT month, closed_at FROM ${this.t('billing_closures')})`;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.closing.then(work, work);
    this.closing = run.catch(() => undefined);
    return run;
  }

  /**
   * Records the plans of the file in `billing_plans`. A plan version already recorded with other content is refused:
   * a published price list never changes under its version (bump the version, with a new activation time).
   */
  async recordPlans(book: PlanBook, source: string): Promise<void> {
    const existing = await this.storage.query<{ plan_id: string; version: number; digest: string; active_to: string | null }>(
      `SELECT plan_id, version, argMax(digest, loaded_at) AS digest, argMax(active_to, loaded_at) AS active_to FROM ${this.t('billing_plans')} GROUP BY plan_id, version`,
    );
    const known = new Map(existing.map((p) => [`${p.plan_id}@${p.version}`, p]));
    const changed = book.plans.filter((p) => known.has(`${p.id}@${p.version}`) && known.get(`${p.id}@${p.version}`)!.digest !== p.digest);
    if (changed.length > 0)
      throw new PipelineError(
        'config_invalid',
        `tariff plan file ${source}: ${changed.map((p) => `line ${p.line}: plan ${p.id} version ${p.version} differs from the version already in use`).join('; ')}; a loaded version never changes what it charges: end it (active_to) and give the new prices a new version`,
      );
    const endOf = (p: { activeTo: number }): number | null => (p.activeTo === Number.POSITIVE_INFINITY ? null : p.activeTo);
    const fresh = book.plans.filter((p) => {
      const k = known.get(`${p.id}@${p.version}`);
      return !k || (k.active_to === null ? null : Date.parse(`${k.active_to.replace(' ', 'T')}Z`)) !== endOf(p);
    });
    if (fresh.length === 0) return;
    await this.storage.insert(
      'billing_plans',
      fresh.map((p) => ({
        plan_id: p.id,
        version: p.version,
        active_from: p.activeFrom,
        active_to: endOf(p),
        currency: p.currency,
        digest: p.digest,
        body: planBody(p),
        source,
        loaded_at: this.clock(),
      })),
    );
  }

  /** Usage aggregates, one row per group and currency; adjustments carried by a month are added to its rows. */
  async usage(q: UsageQuery): Promise<UsageRow[]> {
    const dims = q.groupBy.map((d) => DIMENSION_SQL[d]);
    const select = dims.map((d) => `${d.expr} AS ${d.as}`);
    const rows = await this.storage.query<UsageRow>(
      `SELECT account_id, ${select.length ? `${select.join(', ')}, ` : ''}currency,
              count() AS records, sum(segments) AS segments, sum(duration_ms) AS duration_ms,
              sum(toInt128(amount_micros)) AS amount_micros, sum(toInt128(cost_micros)) AS cost_micros, toInt64(0) AS adjustment_micros
       FROM ${this.t('billing_rated')} FINAL
       WHERE rated AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}
         ${q.accountId !== undefined ? 'AND account_id = {account:String}' : ''}
       GROUP BY account_id, ${dims.map((d) => d.as).join(', ')}${dims.length ? ', ' : ''}currency
       ORDER BY account_id, ${dims.map((d) => d.as).join(', ')}${dims.length ? ', ' : ''}currency`,
      { from: chTime(q.from), to: chTime(q.to), ...(q.accountId !== undefined ? { account: q.accountId } : {}) },
      { output_format_json_quote_64bit_integers: 0 },
    );
    // Adjustments belong to the statement month that carries them: shown on month rows (or, grouped by day, on the
    // first day of that month) in a row of their own when the grouping splits by channel, country or provider.
    const adjustments = await this.storage.query<{ account_id: string; applies_to_month: string; currency: string; amount: number }>(
      `SELECT account_id, applies_to_month, currency, sum(toInt128(amount_micros)) AS amount FROM ${this.t('billing_adjustments')}
       WHERE applies_to_month >= {fromMonth:String} AND applies_to_month <= {toMonth:String} AND ${this.completedClose('applies_to_month', 'created_at')}
         AND currency != ''
         ${q.accountId !== undefined ? 'AND account_id = {account:String}' : ''}
       GROUP BY account_id, applies_to_month, currency`,
      {
        fromMonth: new Date(q.from).toISOString().slice(0, 7),
        toMonth: new Date(q.to - 1).toISOString().slice(0, 7),
        ...(q.accountId !== undefined ? { account: q.accountId } : {}),
      },
      { output_format_json_quote_64bit_integers: 0 },
    );
    const splits = q.groupBy.some((d) => d === 'channel' || d === 'country' || d === 'provider' || d === 'status');
    let added = false;
    for (const a of adjustments) {
      const start = monthStart(a.applies_to_month);
      if (start < q.from || start >= q.to) continue;
      const period: Partial<UsageRow> = {};
      if (q.groupBy.includes('month')) period.month = a.applies_to_month;
      if (q.groupBy.includes('day')) period.day = `${a.applies_to_month}-01`;
      const match = splits
        ? undefined
        : rows.find((r) => r.account_id === a.account_id && r.currency === a.currency && r.month === period.month && r.day === period.day);
      if (match) match.adjustment_micros = addMicros(match.adjustment_micros, exactMicros(a.amount, 'an adjustment'), 'an adjustment total');
      else {
        // Fields in the order of the traffic rows' (found from outside: they came in another order in JSON).
        const extra: Record<string, string | number> = { account_id: a.account_id };
        for (const d of q.groupBy) extra[DIMENSION_SQL[d].as] = d === 'month' ? (period.month ?? '') : d === 'day' ? (period.day ?? '') : '';
        Object.assign(extra, {
          currency: a.currency,
          records: 0,
          segments: 0,
          duration_ms: 0,
          amount_micros: 0,
          cost_micros: 0,
          adjustment_micros: exactMicros(a.amount, 'an adjustment'),
        });
        rows.push(extra as unknown as UsageRow);
        added = true;
      }
    }
    // In the traffic rows' order, each after the traffic rows of its account and period (found from outside: appended
    // at the end; then, on 2026-12-06, before them, its empty channel or country sorting first).
    if (added) {
      const splitFields = new Set<string>(q.groupBy.filter((d) => d !== 'month' && d !== 'day').map((d) => DIMENSION_SQL[d].as));
      sortUsageRows(rows, ['account_id', ...q.groupBy.map((d) => DIMENSION_SQL[d].as), 'currency'], splitFields);
    }
    return rows.map((r) => ({
      ...r,
      records: Number(r.records),
      segments: Number(r.segments),
      duration_ms: Number(r.duration_ms),
      amount_micros: exactMicros(r.amount_micros, 'a usage amount'),
      cost_micros: exactMicros(r.cost_micros, 'a usage cost'),
    }));
  }

  private async monthLines(month: string, accountId?: string): Promise<Map<string, { lines: StatementLine[]; unrated: number }>> {
    const rows = await this.storage.query<Totals & { account_id: string; currency: string; rated: boolean }>(
      `SELECT account_id, rated, currency, count() AS records, sum(segments) AS segments, sum(duration_ms) AS duration_ms,
              sum(billable_seconds) AS billable_seconds, sum(toInt128(amount_micros)) AS amount_micros, sum(toInt128(cost_micros)) AS cost_micros
       FROM ${this.t('billing_rated')} FINAL
       WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} ${accountId !== undefined ? 'AND account_id = {account:String}' : ''}
       GROUP BY account_id, rated, currency ORDER BY account_id, currency`,
      { from: chTime(monthStart(month)), to: chTime(monthStart(nextMonth(month))), ...(accountId !== undefined ? { account: accountId } : {}) },
      { output_format_json_quote_64bit_integers: 0 },
    );
    const out = new Map<string, { lines: StatementLine[]; unrated: number }>();
    for (const r of rows) {
      const entry = out.get(r.account_id) ?? { lines: [], unrated: 0 };
      if (!r.rated) entry.unrated += Number(r.records);
      else
        entry.lines.push({
          currency: r.currency,
          records: Number(r.records),
          segments: Number(r.segments),
          duration_ms: Number(r.duration_ms),
          billable_seconds: Number(r.billable_seconds),
          // Not refused here: a statement must exist for every account, and a close must not stop for one of them.
          // A figure past 2^53 marks its statement `exact: false` (core/billing/statement.ts sealStatement).
          amount_micros: Number(r.amount_micros),
          cost_micros: Number(r.cost_micros),
        });
      out.set(r.account_id, entry);
    }
    return out;
  }

  /** The first month after `after` (exclusive; from the beginning without one) and before `before` holding rated records. */
  private async firstOpenMonthWithRecords(after: string | undefined, before: string): Promise<string | undefined> {
    const rows = await this.storage.query<{ m: string }>(
      `SELECT formatDateTime(min(event_time), '%Y-%m', 'UTC') AS m, count() AS n FROM ${this.t('billing_rated')}
       WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} HAVING n > 0`,
      { from: chTime(after === undefined ? 0 : monthStart(nextMonth(after))), to: chTime(monthStart(before)) },
    );
    return rows[0]?.m;
  }

  /**
   * Months before `before`'s last closed month that have no closure of their own, and hold rated records now. Such a
   * month was passed over empty — a close refuses to skip a month with records — so it closed with nothing, and its
   * records, all late, are adjustments of the next month that closes (it can never be closed itself: months close in
   * order). Partition pruning keeps this to the passed-over months' parts (normally none).
   */
  private async passedOverMonthsWithRecords(closed: ReadonlySet<string>, before: string): Promise<string[]> {
    const last = [...closed]
      .filter((m) => m < before)
      .sort()
      .pop();
    if (last === undefined) return [];
    const rows = await this.storage.query<{ m: string }>(
      `SELECT DISTINCT formatDateTime(event_time, '%Y-%m', 'UTC') AS m FROM ${this.t('billing_rated')}
       WHERE event_time < {to:DateTime64(3, 'UTC')} AND toYYYYMM(event_time) NOT IN {closed:Array(UInt32)} ORDER BY m`,
      { to: chTime(monthStart(last)), closed: [...closed].map((m) => Number(m.replace('-', ''))) },
    );
    return rows.map((r) => r.m);
  }

  async closedMonths(): Promise<Set<string>> {
    const rows = await this.storage.query<{ month: string }>(`SELECT DISTINCT month FROM ${this.t('billing_closures')}`);
    return new Set(rows.map((r) => r.month));
  }

  /** The closed statement as stored (null when the month is not closed for that account). */
  async closedStatement(accountId: string, month: string): Promise<(Statement & { digest_verified: boolean }) | null> {
    const rows = await this.storage.query<{ body: string; digest: string }>(
      `SELECT body, digest FROM ${this.t('billing_statements')}
       WHERE month = {month:String} AND account_id = {account:String} AND ${this.completedClose('month', 'closed_at')} LIMIT 1`,
      { month, account: accountId },
    );
    if (rows.length === 0) return null;
    const body = JSON.parse(rows[0]!.body) as Statement;
    return { ...body, digest: rows[0]!.digest, digest_verified: statementDigest(body) === rows[0]!.digest };
  }

  /**
   * What changed in closed months before `month` since they closed, per account × currency × closed month: the
   * difference between the records as rated now and the frozen statement plus the adjustments already issued.
   * `closedMonths`: the closed months, when the caller has just read them. A fixed handful of grouped queries,
   * however many months have closed (four per closed month took an open statement to 2 s after 61 closes on 2M rated
   * records, 21–28 s under ingest).
   */
  async pendingAdjustments(month: string, accountId?: string, closedMonths?: ReadonlySet<string>): Promise<Map<string, StatementAdjustment[]>> {
    const closedSet = closedMonths ?? (await this.closedMonths());
    const passedOver = new Set(await this.passedOverMonthsWithRecords(closedSet, month));
    // A month past its traffic retention (startOfYear + 11 years) has lost its rated records by design: nothing of it
    // is late any more, and its frozen statement stays as it was.
    const now = this.clock();
    const months = [...[...closedSet].filter((m) => m < month), ...passedOver].filter((m) => now < trafficCutoff(monthStart(m))).sort();
    const out = new Map<string, StatementAdjustment[]>();
    if (months.length === 0) return out;
    const account = accountId !== undefined ? 'AND account_id = {account:String}' : '';
    const params = { months, yyyymm: months.map((m) => Number(m.replace('-', ''))), ...(accountId !== undefined ? { account: accountId } : {}) };
    type Figures = { records: number; segments: number; amount: number; cost: number };
    const [rated, unrated, frozen, issued, closures, rerates, touched] = await Promise.all([
      // The partition key is toYYYYMM(event_time): the IN prunes to the closed months' parts.
      this.storage.query<Figures & { month: string; account_id: string; currency: string; plans: string[] }>(
        `SELECT formatDateTime(event_time, '%Y-%m', 'UTC') AS month, account_id, currency, count() AS records, sum(segments) AS segments,
                sum(toInt128(amount_micros)) AS amount, sum(toInt128(cost_micros)) AS cost, groupUniqArray(plan_id) AS plans
         FROM ${this.t('billing_rated')} FINAL
         WHERE rated AND toYYYYMM(event_time) IN {yyyymm:Array(UInt32)} ${account}
         GROUP BY month, account_id, currency`,
        params,
        { output_format_json_quote_64bit_integers: 0 },
      ),
      // Unrated records too: one arriving late in a closed month is on no statement otherwise (found from outside: only
      // the metric moved). They become adjustments without a currency or an amount, reason `unrated_records`.
      this.storage.query<{ month: string; account_id: string; records: number }>(
        `SELECT formatDateTime(event_time, '%Y-%m', 'UTC') AS month, account_id, count() AS records
         FROM ${this.t('billing_rated')} FINAL
         WHERE NOT rated AND toYYYYMM(event_time) IN {yyyymm:Array(UInt32)} ${account}
         GROUP BY month, account_id`,
        params,
        { output_format_json_quote_64bit_integers: 0 },
      ),
      this.storage.query<{ month: string; account_id: string; body: string }>(
        `SELECT month, account_id, body FROM ${this.t('billing_statements')}
         WHERE month IN {months:Array(String)} AND ${this.completedClose('month', 'closed_at')} ${account}`,
        params,
      ),
      this.storage.query<Figures & { month: string; account_id: string; currency: string }>(
        `SELECT concerns_month AS month, account_id, currency, sum(records) AS records, sum(segments) AS segments,
                sum(toInt128(amount_micros)) AS amount, sum(toInt128(cost_micros)) AS cost
         FROM ${this.t('billing_adjustments')}
         WHERE concerns_month IN {months:Array(String)} AND ${this.completedClose('applies_to_month', 'created_at')} ${account}
         GROUP BY month, account_id, currency`,
        params,
        { output_format_json_quote_64bit_integers: 0 },
      ),
      // Both small: one row per close, one per re-rate run.
      this.storage.query<{ month: string; closed_at: number }>(
        `SELECT month, toUnixTimestamp64Milli(closed_at) AS closed_at FROM ${this.t('billing_closures')}`,
        {},
        { output_format_json_quote_64bit_integers: 0 },
      ),
      this.storage.query<{ rerate_id: string; at: number }>(
        `SELECT rerate_id, toUnixTimestamp64Milli(at) AS at FROM ${this.t('billing_rerates')} WHERE changed > 0`,
        {},
        { output_format_json_quote_64bit_integers: 0 },
      ),
      // Which run changed which account's figures in which month: the figures each run replaced are on record. Only the
      // runs after the latest month's last close can be a reason (a month is settled at least that late), so the runs
      // of long ago are not read (found in review: every run × account × month came back).
      this.storage.query<{ rerate_id: string; account_id: string; month: string }>(
        `SELECT DISTINCT rerate_id, account_id, formatDateTime(event_time, '%Y-%m', 'UTC') AS month
         FROM ${this.t('billing_rated_history')}
         WHERE toYYYYMM(event_time) IN {yyyymm:Array(UInt32)} ${account} AND figures_changed
           AND rerate_id IN (SELECT rerate_id FROM ${this.t('billing_rerates')} WHERE changed > 0
                             AND at > (SELECT max(closed_at) FROM ${this.t('billing_closures')} WHERE month >= {latest:String}))`,
        { ...params, latest: months[months.length - 1]! },
      ),
    ]);
    // A close settles every earlier month as it stands then, so a closed month's differences are what changed since the
    // last close of it or a later month; a re-rate run after that is (part of) the reason — for the accounts whose
    // figures of that month it changed only (found from outside: an account no run touched got "late_records+rerate";
    // then an account whose records of the month all arrived after the only run that covered it, 2026-12-06; then one
    // whose records carry their own prices, where a run moved only the plan version, 2026-12-06 evening).
    const changedBy = new Set(touched.map((r) => `${r.rerate_id}\u0000${r.account_id}\u0000${r.month}`));
    const rerun = (m: string, account: string): boolean => {
      const settled = Math.max(...closures.filter((c) => c.month >= m).map((c) => Number(c.closed_at)));
      return rerates.some((r) => Number(r.at) > settled && changedBy.has(`${r.rerate_id}\u0000${account}\u0000${m}`));
    };
    const base = new Map<string, Figures & { month: string; account: string; currency: string }>();
    const add = (m: string, acct: string, currency: string, d: Figures, sign: number): void => {
      const k = `${m}\u0000${acct}\u0000${currency}`;
      const v = base.get(k) ?? { month: m, account: acct, currency, records: 0, segments: 0, amount: 0, cost: 0 };
      v.records += sign * Number(d.records);
      v.segments += sign * Number(d.segments);
      v.amount += sign * Number(d.amount);
      v.cost += sign * Number(d.cost);
      base.set(k, v);
    };
    for (const r of rated) add(r.month, r.account_id, r.currency, r, 1);
    const none = { segments: 0, amount: 0, cost: 0 };
    for (const u of unrated) add(u.month, u.account_id, '', { ...none, records: Number(u.records) }, 1);
    for (const f of frozen) {
      const s = JSON.parse(f.body) as Statement;
      add(f.month, f.account_id, '', { ...none, records: Number(s.unrated_records ?? 0) }, -1);
      for (const l of s.lines)
        add(f.month, f.account_id, l.currency, { records: l.records, segments: l.segments, amount: l.amount_micros, cost: l.cost_micros }, -1);
    }
    for (const i of issued) add(i.month, i.account_id, i.currency, i, -1);
    const changed = [...base.values()]
      .filter((v) => v.records !== 0 || v.segments !== 0 || v.amount !== 0 || v.cost !== 0)
      .sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0));
    for (const v of changed) {
      const reasons =
        v.currency === '' ? ['unrated_records'] : [v.records !== 0 ? 'late_records' : '', rerun(v.month, v.account) ? 'rerate' : ''].filter(Boolean);
      const list = out.get(v.account) ?? [];
      list.push({
        adjustment_id: '',
        concerns_month: v.month,
        currency: v.currency,
        records: v.records,
        segments: v.segments,
        amount_micros: v.amount,
        cost_micros: v.cost,
        reason: reasons.join('+') || 'late_records',
        final: false,
      });
      out.set(v.account, list);
    }
    return out;
  }

  private async issuedAdjustments(month: string, accountId: string): Promise<StatementAdjustment[]> {
    const rows = await this.storage.query<{
      adjustment_id: string;
      concerns_month: string;
      currency: string;
      records: number;
      segments: number;
      amount_micros: number;
      cost_micros: number;
      reason: string;
    }>(
      `SELECT adjustment_id, concerns_month, currency, records, segments, amount_micros, cost_micros, reason FROM ${this.t('billing_adjustments')}
       WHERE account_id = {account:String} AND applies_to_month = {month:String} AND ${this.completedClose('applies_to_month', 'created_at')}
       ORDER BY concerns_month, currency, adjustment_id`,
      { account: accountId, month },
      { output_format_json_quote_64bit_integers: 0 },
    );
    return rows.map((r) => ({
      ...r,
      records: Number(r.records),
      segments: Number(r.segments),
      amount_micros: Number(r.amount_micros),
      cost_micros: Number(r.cost_micros),
      final: true,
    }));
  }

  /** A statement: the frozen one of a closed month, or the current figures of an open month (status `open`). */
  async statement(accountId: string, month: string): Promise<(Statement & { digest_verified?: boolean }) | null> {
    requireMonth(month, 'bad_request');
    const closed = await this.closedStatement(accountId, month);
    if (closed) return closed;
    if (this.clock() >= trafficCutoff(monthStart(month)))
      throw new PipelineError(
        'not_found',
        `no statement for account ${accountId} in ${month}: the month is past its retention (10 years after its year), and its rated records and statements are deleted with its traffic data`,
      );
    const closedMonths = await this.closedMonths();
    if (closedMonths.has(month)) return null; // closed, and this account had nothing that month
    const laterClosed = [...closedMonths].filter((m) => m > month).sort()[0];
    if (laterClosed !== undefined)
      throw new PipelineError(
        'not_found',
        `no statement for account ${accountId} in ${month}: it held no billed records when ${laterClosed} closed, so it closed empty; its late records are adjustments of the next month to close`,
      );
    const lines = (await this.monthLines(month, accountId)).get(accountId);
    // A month that has not begun holds nothing to bill (a record dated ahead of the clock aside).
    if (!lines && this.clock() < monthStart(month))
      throw new PipelineError(
        'not_found',
        `no statement for account ${accountId} in ${month}: the month has not begun (it begins ${new Date(monthStart(month)).toISOString()})`,
      );
    // What changed in closed months is carried by the month whose close comes next: shown on every open month, the same
    // adjustments were owed on each, and a sum of open statements counted them again and again (found from outside:
    // 2031-07 "open" with December's 777,819 adjustments). Shown on each open month a close of which would carry them:
    // the first after the last close, and later ones while every month between holds no billed record (a close passes
    // those over, found in review).
    const latestClosed = [...closedMonths].sort().at(-1);
    const carriesPending =
      latestClosed === undefined ||
      month === nextMonth(latestClosed) ||
      (month > latestClosed && (await this.firstOpenMonthWithRecords(latestClosed, month)) === undefined);
    const pending = carriesPending ? ((await this.pendingAdjustments(month, accountId, closedMonths)).get(accountId) ?? []) : [];
    const issued = await this.issuedAdjustments(month, accountId);
    if (!lines && pending.length === 0 && issued.length === 0) return null;
    return sealStatement({
      account_id: accountId,
      month,
      status: 'open',
      closed_at: null,
      closed_by: null,
      lines: lines?.lines ?? [],
      unrated_records: lines?.unrated ?? 0,
      adjustments: [...issued, ...pending],
    });
  }

  /**
   * Closes a month: every account's statement is frozen with its digest, and what changed in earlier closed months
   * since they closed becomes adjustments carried by this month's statements. A month closes once, after it ended.
   */
  close(month: string, actor: string): Promise<CloseResult> {
    return this.exclusive(async () => {
      const result = await this.closeOne(month, actor);
      if ('skipped' in result)
        throw new PipelineError('conflict', `${result.skipped} has billed records and is not closed: close it first (months close in order)`);
      return result;
    });
  }

  /** Closes `month`, or names the earlier open month with billed records that must close first. */
  private async closeOne(month: string, actor: string): Promise<CloseResult | { skipped: string }> {
    requireMonth(month, 'bad_request');
    const now = this.clock();
    if (now < monthStart(nextMonth(month)))
      throw new PipelineError('bad_request', `${month} has not ended yet (it ends ${new Date(monthStart(nextMonth(month))).toISOString()})`);
    const closed = await this.closedMonths();
    if (closed.has(month)) throw new PipelineError('conflict', `${month} is already closed; later changes appear as adjustments in the next open month`);
    const later = [...closed].filter((m) => m > month);
    if (later.length > 0) throw new PipelineError('conflict', `a later month (${later.sort()[0]}) is already closed: months close in order`);
    // Nor may a month be skipped: an earlier month with billed records after the last closed one (or, before the first
    // close, any) is closed first — skipped, it could never be closed, and its late records would change it in place.
    const lastClosed = [...closed].sort().pop();
    const skipped = await this.firstOpenMonthWithRecords(lastClosed, month);
    if (skipped !== undefined) return { skipped };
    const usage = await this.monthLines(month);
    const pending = await this.pendingAdjustments(month, undefined, closed);
    const adjustmentRows: Record<string, unknown>[] = [];
    const issued = new Map<string, StatementAdjustment[]>();
    for (const [account, list] of pending) {
      issued.set(
        account,
        list.map((a) => {
          const adjustment = { ...a, adjustment_id: randomUUID(), final: true };
          adjustmentRows.push({
            adjustment_id: adjustment.adjustment_id,
            account_id: account,
            currency: a.currency,
            concerns_month: a.concerns_month,
            applies_to_month: month,
            records: a.records,
            segments: a.segments,
            amount_micros: a.amount_micros,
            cost_micros: a.cost_micros,
            reason: a.reason,
            created_at: now,
          });
          return adjustment;
        }),
      );
    }
    const accounts = [...new Set([...usage.keys(), ...issued.keys()])].sort();
    const closedAt = new Date(now).toISOString();
    const statements = accounts.map((account) =>
      sealStatement({
        account_id: account,
        month,
        status: 'closed',
        closed_at: closedAt,
        closed_by: actor,
        lines: usage.get(account)?.lines ?? [],
        unrated_records: usage.get(account)?.unrated ?? 0,
        adjustments: issued.get(account) ?? [],
      }),
    );
    const digest = statementDigest({ month, statements: statements.map((s) => s.digest) } as never);
    await this.storage.insert('billing_adjustments', adjustmentRows);
    await this.storage.insert(
      'billing_statements',
      statements.map((s) => {
        const { digest: d, ...body } = s;
        return { month, account_id: s.account_id, closed_at: now, closed_by: actor, body: JSON.stringify({ ...body, digest: d }), digest: d };
      }),
    );
    // Written last: a close that failed before this line is not a close, and can run again (its rows are ignored).
    await this.storage.insert('billing_closures', [{ month, closed_at: now, closed_by: actor, accounts: accounts.length, digest }]);
    return { month, accounts: accounts.length, adjustments: adjustmentRows.length, digest, statements };
  }

  /**
   * Closes, in order, every month up to and including `through` that a close of `through` would otherwise refuse to
   * skip (each still-open month with billed records), then `through` itself; months without records are passed over
   * as a single close would. Nothing to do (through already closed, or before the last closed month) answers an empty
   * list, so a monthly job can run it again safely. Each close is complete on its own: a failure leaves the months
   * before it closed and reports the error.
   */
  async closeThrough(through: string, actor: string, onClosed?: (result: CloseResult) => void | Promise<void>): Promise<CloseResult[]> {
    requireMonth(through, 'bad_request');
    if (this.clock() < monthStart(nextMonth(through)))
      throw new PipelineError('bad_request', `${through} has not ended yet (it ends ${new Date(monthStart(nextMonth(through))).toISOString()})`);
    return this.exclusive(async () => {
      const results: CloseResult[] = [];
      for (;;) {
        const last = [...(await this.closedMonths())].sort().pop();
        if (last !== undefined && last >= through) return results;
        const next = (await this.firstOpenMonthWithRecords(last, through)) ?? through;
        let result: CloseResult | { skipped: string };
        try {
          result = await this.closeOne(next, actor);
        } catch (err) {
          // Say what did close before the failure: those months stay closed, and a new run carries on from there.
          if (results.length === 0 || !(err instanceof PipelineError)) throw err;
          const closed = results.map((r) => r.month);
          throw new PipelineError(err.code, `closed ${closed.join(', ')}; then ${next} failed: ${err.message}`, { cause: err });
        }
        // A late record of an earlier open month was rated since `next` was chosen (ingest runs on): close that first.
        if ('skipped' in result) continue;
        results.push(result);
        await onClosed?.(result);
      }
    });
  }

  /**
   * Re-rates the records of [from, to) (one account, or records rated under one plan, optionally) with the plans
   * given: rows whose figures change get a new revision; the figures they replace go to `billing_rated_history`
   * with the run; the run is recorded in `billing_rerates` with the totals before and after per currency.
   */
  async rerate(opts: { from: number; to: number; accountId?: string; planId?: string; book: PlanBook; actor: string }): Promise<RerateReport> {
    if (opts.planId !== undefined && !opts.book.plans.some((p) => p.id === opts.planId)) {
      // Neither in force nor ever recorded: a typo, which would re-rate the range's unrated records alone and say
      // nothing (found from outside: `--plan nosuchplan` answered 200 with 0 records, recorded and audited).
      const [known] = await this.storage.query<{ n: string }>(`SELECT count() AS n FROM ${this.t('billing_plans')} WHERE plan_id = {plan:String}`, {
        plan: opts.planId,
      });
      if (Number(known?.n ?? 0) === 0)
        throw new PipelineError('bad_request', `plan_id: no tariff plan ${quotedValue(opts.planId)} in the plans file or on record`);
    }
    const rerateId = randomUUID();
    const now = this.clock();
    const filters = [
      `event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}`,
      opts.accountId !== undefined ? 'account_id = {account:String}' : '',
      opts.planId !== undefined ? '(plan_id = {plan:String} OR NOT rated)' : '',
    ].filter(Boolean);
    const params = {
      from: chTime(opts.from),
      to: chTime(opts.to),
      ...(opts.accountId !== undefined ? { account: opts.accountId } : {}),
      ...(opts.planId !== undefined ? { plan: opts.planId } : {}),
    };
    const before = new Map<string, { records: number; amount: number; cost: number }>();
    const after = new Map<string, { records: number; amount: number; cost: number }>();
    const bump = (
      m: Map<string, { records: number; amount: number; cost: number }>,
      r: { rated: boolean; currency: string; amount_micros: number; cost_micros: number },
    ): void => {
      const k = r.rated ? r.currency : '(unrated)';
      const v = m.get(k) ?? { records: 0, amount: 0, cost: 0 };
      v.records++;
      // Never refused here: the run's writes are under way (found in review: a refusal mid-run left records re-rated
      // and no run on record). A total past 2^53 marks the report `exact: false`.
      v.amount += r.amount_micros;
      v.cost += r.cost_micros;
      m.set(k, v);
    };
    let records = 0;
    let changed = 0;
    const pageSize = 20_000;
    let cursor: { t: string; id: string; account: string } | undefined;
    for (;;) {
      const page = await this.storage.query<RatedRow & { event_time_text: string; event_ms: number }>(
        `SELECT *, toString(event_time) AS event_time_text, toUnixTimestamp64Milli(event_time) AS event_ms FROM ${this.t('billing_rated')} FINAL
         WHERE ${filters.join(' AND ')} ${cursor ? "AND (account_id, event_time, cdr_id) > ({ca:String}, {ct:DateTime64(3, 'UTC')}, {ci:String})" : ''}
         ORDER BY account_id, event_time, cdr_id LIMIT ${pageSize}`,
        { ...params, ...(cursor ? { ca: cursor.account, ct: cursor.t, ci: cursor.id } : {}) },
        { output_format_json_quote_64bit_integers: 0 },
      );
      if (page.length === 0) break;
      const replaced: Record<string, unknown>[] = [];
      const fresh: RatedRow[] = [];
      for (const raw of page) {
        const { event_time_text: _text, event_ms, ...stored } = raw;
        const old: RatedRow = {
          ...stored,
          event_time: Number(event_ms),
          amount_micros: Number(stored.amount_micros),
          cost_micros: Number(stored.cost_micros),
          event_price: Number(stored.event_price),
          event_cost: Number(stored.event_cost),
          duration_ms: Number(stored.duration_ms),
          revision: Number(stored.revision),
          rated_at: now,
        };
        records++;
        bump(before, old);
        const rating = rate(opts.book, ratingInputOf(old));
        const next = rowOf(old, rating, now, now, old.src_partition, old.src_offset);
        bump(after, next);
        if (
          next.rated === old.rated &&
          next.currency === old.currency &&
          next.amount_micros === old.amount_micros &&
          next.cost_micros === old.cost_micros &&
          next.plan_id === old.plan_id &&
          next.plan_version === old.plan_version
        )
          continue;
        changed++;
        fresh.push(next);
        replaced.push({
          // A plan version moved alone (prices the record carries itself) is on record, but no reason `rerate`.
          figures_changed:
            next.rated !== old.rated || next.currency !== old.currency || next.amount_micros !== old.amount_micros || next.cost_micros !== old.cost_micros,
          rerate_id: rerateId,
          account_id: old.account_id,
          event_time: old.event_time,
          cdr_id: old.cdr_id,
          revision: old.revision,
          rated: old.rated,
          currency: old.currency,
          amount_micros: old.amount_micros,
          cost_micros: old.cost_micros,
          plan_id: old.plan_id,
          plan_version: old.plan_version,
        });
      }
      await this.storage.insert('billing_rated_history', replaced);
      await this.storage.insert('billing_rated', fresh);
      const last = page[page.length - 1]!;
      cursor = { account: last.account_id, t: last.event_time_text, id: last.cdr_id };
      if (page.length < pageSize) break;
    }
    const summary = (m: Map<string, { records: number; amount: number; cost: number }>) =>
      [...m.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([currency, v]) => ({ currency, records: v.records, amount_micros: v.amount, cost_micros: v.cost }));
    const report: RerateReport = {
      rerate_id: rerateId,
      at: new Date(now).toISOString(),
      actor: opts.actor,
      from: new Date(opts.from).toISOString(),
      to: new Date(opts.to).toISOString(),
      account_id: opts.accountId ?? null,
      plan_id: opts.planId ?? null,
      records,
      changed,
      before: summary(before),
      after: summary(after),
    };
    const inexact = [...report.before, ...report.after].some((t) => !Number.isSafeInteger(t.amount_micros) || !Number.isSafeInteger(t.cost_micros));
    if (inexact) (report as { exact?: false }).exact = false;
    await this.storage.insert('billing_rerates', [
      {
        rerate_id: rerateId,
        at: now,
        actor: opts.actor,
        from_time: opts.from,
        to_time: opts.to,
        account_id: opts.accountId ?? '',
        plan_id: opts.planId ?? '',
        records,
        changed,
        before: JSON.stringify(report.before),
        after: JSON.stringify(report.after),
      },
    ]);
    return report;
  }

  /** Our cost of one provider's traffic in a month, per day × destination country × currency. */
  async providerCost(provider: string, month: string): Promise<CostCell[]> {
    requireMonth(month, 'bad_request');
    const rows = await this.storage.query<CostCell>(
      `SELECT toString(toDate(event_time, 'UTC')) AS day, destination_country, currency, count() AS records, sum(toInt128(cost_micros)) AS cost_micros
       FROM ${this.t('billing_rated')} FINAL
       WHERE provider_id = {provider:String} AND rated AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}
       GROUP BY day, destination_country, currency ORDER BY day, destination_country, currency`,
      { provider, from: chTime(monthStart(month)), to: chTime(monthStart(nextMonth(month))) },
      { output_format_json_quote_64bit_integers: 0 },
    );
    return rows.map((r) => ({
      ...r,
      records: Number(r.records),
      cost_micros: exactMicros(r.cost_micros, `the ${r.currency} cost of ${r.day}, ${r.destination_country || 'no country'}`),
    }));
  }

  /** The individually rated records of a period (tests and disputes): one row per CDR, newest revision. */
  async ratedRecords(from: number, to: number, accountId?: string): Promise<RatedRecord[]> {
    const rows = await this.storage.query<Omit<RatedRecord, 'event_time'> & { event_at: string }>(
      `SELECT cdr_id, account_id, rated, currency, amount_micros, cost_micros, toString(event_time) AS event_at FROM ${this.t('billing_rated')} FINAL
       WHERE event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} ${accountId !== undefined ? 'AND account_id = {account:String}' : ''}`,
      { from: chTime(from), to: chTime(to), ...(accountId !== undefined ? { account: accountId } : {}) },
      { output_format_json_quote_64bit_integers: 0 },
    );
    return rows.map(({ event_at, ...r }) => ({
      ...r,
      event_time: isoFromCh(event_at),
      amount_micros: Number(r.amount_micros),
      cost_micros: Number(r.cost_micros),
    }));
  }
}

export interface RatedRecord {
  readonly cdr_id: string;
  readonly account_id: string;
  readonly rated: boolean;
  readonly currency: string;
  readonly amount_micros: number;
  readonly cost_micros: number;
  readonly event_time: string;
}

export interface RerateReport {
  readonly rerate_id: string;
  readonly at: string;
  readonly actor: string;
  readonly from: string;
  readonly to: string;
  readonly account_id: string | null;
  readonly plan_id: string | null;
  readonly records: number;
  readonly changed: number;
  readonly before: readonly { currency: string; records: number; amount_micros: number; cost_micros: number }[];
  readonly after: readonly { currency: string; records: number; amount_micros: number; cost_micros: number }[];
  /** Present (false) when a total is past ±(2^53 − 1) micro-units: it is the nearest number, not the exact sum. */
  readonly exact?: false;
}
