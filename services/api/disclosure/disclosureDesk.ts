import { randomUUID } from 'node:crypto';
import {
  canonicalJson,
  identifierCutoff,
  monthKeyOf,
  monthStartOf,
  monthsInRange,
  addMonthsUtc,
  openIdentifier,
  openReceipt,
  sealReceipt,
  tokenOf,
  type AnswerIntegrity,
  type SealedReceipt,
  type MonthKey,
  type NormalisedIdentifier,
} from '../../core/index.ts';
import type { Storage } from '../../platform/clickhouse/index.ts';
import type { LegalHold, LegalHolds } from '../../platform/holds/index.ts';
import {
  chTime,
  countLive,
  indexPage,
  restoreHits,
  type IndexPage,
  isoFromCh,
  monthKeyDestroyed,
  pageLive,
  positionOf,
  type PagePosition,
  type RestoredRecord,
} from '../../platform/identity/index.ts';
import type { MonthKeyRing } from '../../platform/keys/index.ts';

/**
 * The disclosure desk: the only door through which identifiers leave the vault. It plans an answer month by month
 * (live data while the identifier window is open and the month key lives; a legal hold's copy after that; otherwise
 * expired), streams its records page by page, and keeps each request (no identifier: a token under the month key,
 * the signed receipt sealed under every key whose identifiers it digests) so the request can be shown again without
 * its records.
 */
export type MonthStatus = 'answered' | 'no_traffic' | 'expired' | 'held';

export interface MonthAnswer {
  readonly month: string;
  readonly status: MonthStatus;
  readonly records: number;
  /**
   * A `held` month that holds cover only in part: the spans of the asked range (ISO instants, from inclusive, to
   * exclusive) no hold covers, whose records expired. Such a month is in `expired_months` too.
   */
  readonly expired_parts?: readonly { readonly from: string; readonly to: string }[];
}

/**
 * The months an answer could not answer in whole because their records expired: wholly, or in part beside a hold
 * (found from outside: a hold over a month's last day made the whole month "held" and hid that the rest had expired).
 */
export function expiredMonthsOf(months: readonly MonthAnswer[]): string[] {
  return months.filter((m) => m.status === 'expired' || (m.expired_parts?.length ?? 0) > 0).map((m) => m.month);
}

/** The parts of [from, to) that none of the spans covers, in order. */
export function uncoveredParts(from: number, to: number, spans: readonly { from: number; to: number }[]): { from: number; to: number }[] {
  const sorted = [...spans].sort((a, b) => a.from - b.from);
  const out: { from: number; to: number }[] = [];
  let at = from;
  for (const sp of sorted) {
    if (sp.to <= at) continue;
    if (sp.from >= to) break;
    if (sp.from > at) out.push({ from: at, to: Math.min(sp.from, to) });
    at = Math.max(at, sp.to);
    if (at >= to) break;
  }
  if (at < to) out.push({ from: at, to });
  return out;
}

interface MonthPlan {
  readonly month: string;
  readonly from: number;
  readonly to: number;
  readonly source: 'live' | 'held' | 'expired' | 'none';
  readonly key?: MonthKey;
  readonly holds?: readonly { hold: LegalHold; key: MonthKey }[];
  /** Of a `held` month: what no hold covers. */
  readonly expiredParts?: readonly { from: number; to: number }[];
  readonly estimate: number;
}

export interface AnswerPlan {
  readonly id: NormalisedIdentifier;
  readonly months: readonly MonthPlan[];
  readonly estimate: number;
  /**
   * The first index page over every live month, read while planning (undefined without live months). When it holds
   * every live record (`last` undefined: most answers) the pages restore these instead of reading the index again;
   * otherwise the answer starts with it and reads on from `last`.
   */
  readonly liveFirst?: IndexPage;
}

export type DisclosureKind = 'lea' | 'dsar';

export interface DisclosureRequestMeta {
  readonly kind: DisclosureKind;
  readonly requestId: string;
  readonly requestedAt: number;
  readonly requestedBy: string;
  readonly authority: string;
  readonly caseReference: string;
  readonly legalBasis: string;
  readonly confidential: boolean;
  readonly identifier: NormalisedIdentifier;
  readonly from: number;
  readonly to: number;
  readonly format: string;
}

/** A stored request as `GET /v1/lea/requests/{id}` shows it: no identifier, no record. */
export interface DisclosureReceipt {
  readonly request_id: string;
  readonly kind: DisclosureKind;
  readonly status: string;
  readonly requested_by: string;
  readonly authority: string;
  readonly case_reference: string;
  readonly legal_basis: string;
  readonly identifier_type: string;
  readonly from: string;
  readonly to: string;
  readonly answered_at: string;
  readonly confidential: boolean;
  readonly format: string;
  readonly months: MonthAnswer[];
  readonly expired_months: string[];
  readonly record_count: number;
  readonly finished_at: string | null;
  /** The answer's signed integrity block while the month key of the request lives; null after (or if unfinished). */
  readonly integrity: AnswerIntegrity | null;
}

interface RequestRow {
  request_id: string;
  kind: DisclosureKind;
  requested_at: string;
  requested_by: string;
  authority: string;
  case_reference: string;
  legal_basis: string;
  confidential: boolean | number;
  id_type: string;
  from_time: string;
  to_time: string;
  answer_format: string;
  status: string;
  record_count: string | number;
  months: string;
  subject_token: string;
  subject_month: string;
  receipt_sealed: string;
  /** The shares of the receipt's sealing key, each under its key (core/disclosure/receiptSeal.ts); '' before 2026-12-07. */
  receipt_keys?: string;
  finished_at: string | null;
  version: string | number;
}

export interface DisclosureDeskDeps {
  /** The API's own storage session (reads never queue behind ingest's inserts). */
  readonly storage: Storage;
  readonly keyRing: MonthKeyRing;
  readonly holds: LegalHolds;
  readonly pageSize?: number;
}

export const DEFAULT_PAGE_SIZE = 2_000;

export function newRequestId(kind: DisclosureKind): string {
  return `${kind}-${randomUUID()}`;
}

/**
 * The longest range a disclosure may ask for, in calendar months: longer than anything is kept (traffic 10 years,
 * identifiers 12 months, held copies while their hold lasts). Months outside the identifier window cost no query:
 * they are answered `expired` (or from a hold's copy), so a long range is an answer, not a 400.
 */
export const MAX_DISCLOSURE_MONTHS = 15 * 12;

/** The latest `to` a range starting at `from` may have (MAX_DISCLOSURE_MONTHS calendar months). */
export function latestRangeEnd(from: number): number {
  const d = new Date(from);
  return Date.UTC(
    d.getUTCFullYear(),
    d.getUTCMonth() + MAX_DISCLOSURE_MONTHS,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  );
}

/** The start of the identifier window at `now`: the oldest month whose identifiers may still exist. */
export function identifierWindowStart(now: number): number {
  return addMonthsUtc(monthStartOf(monthKeyOf(now)), -12);
}

export class DisclosureDesk {
  private readonly pageSize: number;
  /** How answers ended, still being written (see `recordEnd`): a request's receipt waits for its own. */
  private readonly ending = new Map<string, Promise<void>>();

  constructor(private readonly deps: DisclosureDeskDeps) {
    this.pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
  }

  /**
   * Plans the answer: for each month of [from, to), where its records come from and about how many there are.
   * `allowHeld`: months past the window are answered from active legal holds' copies (law enforcement), or from those
   * of holds not flagged confidential (a data-subject export: the data held about the subject includes a hold's copy,
   * found from outside; a confidential hold must not tip them off).
   */
  async plan(id: NormalisedIdentifier, from: number, to: number, now: number, allowHeld: boolean | 'not-confidential'): Promise<AnswerPlan> {
    await this.deps.keyRing.refreshDestroyed();
    const holds = allowHeld ? (await this.deps.holds.activeFor(id)).filter((h) => allowHeld === true || !h.hold.confidential) : [];
    // First where each month's records would come from; then one count over all live months (one query, not one
    // per month: a whole-window request spans 14 months).
    const sources: { month: string; from: number; to: number; key?: MonthKey; none?: true }[] = [];
    for (const month of monthsInRange(from, to)) {
      const start = monthStartOf(month);
      const mFrom = Math.max(from, start);
      const mTo = Math.min(to, addMonthsUtc(start, 1));
      const windowOpen = now < identifierCutoff(start);
      if (windowOpen) {
        const key = await this.deps.keyRing.existingKey(month);
        if (key) {
          sources.push({ month, from: mFrom, to: mTo, key });
          continue;
        }
        if (!(await monthKeyDestroyed(this.deps.storage, month))) {
          sources.push({ month, from: mFrom, to: mTo, none: true });
          continue;
        }
      }
      sources.push({ month, from: mFrom, to: mTo });
    }
    const liveKeys = sources.flatMap((m) => (m.key ? [m.key] : []));
    // The index's first page says how many records each month holds when it holds them all (most answers): then it is
    // the count, and the pages restore these records without a second look. A larger answer is counted apart. The
    // index gives positions and tokens only: no identifier is opened before the request is on record.
    const first = liveKeys.length > 0 ? await indexPage(this.deps.storage, liveKeys, id, from, to, undefined, this.pageSize) : undefined;
    let liveCounts: Map<string, number>;
    if (first && first.last === undefined) {
      liveCounts = new Map();
      for (const h of first.hits) liveCounts.set(h.event_time.slice(0, 7), (liveCounts.get(h.event_time.slice(0, 7)) ?? 0) + 1);
    } else liveCounts = await countLive(this.deps.storage, liveKeys, id, from, to);
    const months: MonthPlan[] = [];
    let estimate = 0;
    for (const { month, from: mFrom, to: mTo, key, none } of sources) {
      let plan: MonthPlan;
      if (key) plan = { month, from: mFrom, to: mTo, source: 'live', key, estimate: liveCounts.get(month) ?? 0 };
      else if (none) plan = { month, from: mFrom, to: mTo, source: 'none', estimate: 0 };
      else {
        const covering = holds.filter((h) => Date.parse(h.hold.from) < mTo && Date.parse(h.hold.to) > mFrom);
        let n = 0;
        for (const h of covering)
          n += await this.deps.holds.countHeld(h.hold.hold_id, Math.max(mFrom, Date.parse(h.hold.from)), Math.min(mTo, Date.parse(h.hold.to)));
        const expiredParts = uncoveredParts(
          mFrom,
          mTo,
          covering.map((h) => ({ from: Date.parse(h.hold.from), to: Date.parse(h.hold.to) })),
        );
        plan =
          n > 0
            ? { month, from: mFrom, to: mTo, source: 'held', holds: covering, expiredParts, estimate: n }
            : { month, from: mFrom, to: mTo, source: 'expired', estimate: 0 };
      }
      months.push(plan);
      estimate += plan.estimate;
    }
    return { id, months, estimate, ...(first ? { liveFirst: first } : {}) };
  }

  /** The months a plan can already say are expired (before any record is read). */
  static expiredMonths(plan: AnswerPlan): string[] {
    return plan.months.filter((m) => m.source === 'expired' || (m.source === 'held' && (m.expiredParts?.length ?? 0) > 0)).map((m) => m.month);
  }

  /**
   * The planned records, page by page, in month order then (event_time, cdr_id); `onMonth` gets each month's
   * final count once its records are all given. A record held by two holds is given once.
   */
  async *pages(plan: AnswerPlan, onMonth: (m: MonthAnswer) => void): AsyncGenerator<RestoredRecord[]> {
    const months = plan.months;
    for (let i = 0; i < months.length;) {
      const m = months[i]!;
      if (m.source === 'live' || m.source === 'none') {
        // A run of months answered from live data is paged as one range: three queries per page, not per month.
        let j = i;
        while (j < months.length && (months[j]!.source === 'live' || months[j]!.source === 'none')) j++;
        yield* this.liveRun(plan, months.slice(i, j), onMonth);
        i = j;
        continue;
      }
      let count = 0;
      if (m.source === 'held' && m.holds) {
        const given = new Set<string>();
        for (const h of m.holds) {
          const hFrom = Math.max(m.from, Date.parse(h.hold.from));
          const hTo = Math.min(m.to, Date.parse(h.hold.to));
          let after: PagePosition | undefined;
          for (;;) {
            const page = await this.deps.holds.pageHeld(h.hold.hold_id, h.key, hFrom, hTo, after, this.pageSize);
            if (page.length === 0) break;
            after = positionOf(page[page.length - 1]!);
            const fresh = page.filter((r) => !given.has(r.cdr_id));
            for (const r of fresh) given.add(r.cdr_id);
            count += fresh.length;
            if (fresh.length > 0) yield fresh;
            if (page.length < this.pageSize) break;
          }
        }
        const parts = (m.expiredParts ?? []).map((p) => ({ from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString() }));
        onMonth(
          count > 0
            ? { month: m.month, status: 'held', records: count, ...(parts.length > 0 ? { expired_parts: parts } : {}) }
            : { month: m.month, status: 'expired', records: 0 },
        );
      } else {
        onMonth({ month: m.month, status: 'expired', records: 0 });
      }
      i++;
    }
  }

  /** The records of consecutive live (or traffic-less) months, page by page; then each month's count, in order. */
  private async *liveRun(plan: AnswerPlan, run: readonly MonthPlan[], onMonth: (m: MonthAnswer) => void): AsyncGenerator<RestoredRecord[]> {
    const keys = run.flatMap((m) => (m.source === 'live' && m.key ? [m.key] : []));
    const planned = plan.liveFirst;
    // The plan's first page spans every live month; this run may be only some of them (a destroyed month between).
    const wholeRange = keys.length === plan.months.filter((m) => m.source === 'live' && m.key).length;
    const counts = new Map<string, number>();
    const count = (records: readonly RestoredRecord[]): void => {
      for (const r of records) {
        const month = r.event_time.slice(0, 7);
        counts.set(month, (counts.get(month) ?? 0) + 1);
      }
    };
    if (keys.length > 0) {
      const from = run[0]!.from;
      const to = run[run.length - 1]!.to;
      let after: PagePosition | undefined;
      let more = true;
      if (planned && (planned.last === undefined || wholeRange)) {
        // The plan's first page starts the answer: all of it when it holds every live record (this run's are those of
        // its months), else the first page of a run that spans every live month, the index read on from its end.
        const months = new Set(keys.map((k) => k.month));
        const hits = planned.last === undefined ? planned.hits.filter((h) => months.has(h.event_time.slice(0, 7))) : planned.hits;
        const records = await restoreHits(this.deps.storage, keys, hits);
        count(records);
        if (records.length > 0) yield records;
        after = planned.last;
        more = after !== undefined;
      }
      while (more) {
        const page = await pageLive(this.deps.storage, keys, plan.id, from, to, after, this.pageSize);
        count(page.records);
        if (page.records.length > 0) yield page.records;
        after = page.last;
        more = after !== undefined;
      }
    }
    for (const m of run) {
      const n = counts.get(m.month) ?? 0;
      onMonth({ month: m.month, status: n > 0 ? 'answered' : 'no_traffic', records: n });
    }
  }

  /** Records a request before its first record leaves (a crash mid-answer still leaves it on record). */
  async begin(meta: DisclosureRequestMeta): Promise<void> {
    const subject = await this.subjectOf(meta.identifier, meta.requestedAt);
    await this.deps.storage.insert('disclosure_requests', [
      this.row(meta, subject, { status: 'started', recordCount: 0, months: [], receipt: '', finishedAt: null }),
    ]);
  }

  /** The legal holds whose copies a plan answers from (their keys seal the receipt too). */
  static holdsOf(plan: AnswerPlan): string[] {
    return [...new Set(plan.months.flatMap((m) => (m.source === 'held' ? (m.holds ?? []).map((h) => h.hold.hold_id) : [])))].sort();
  }

  /**
   * Records how a request ended, with its signed receipt sealed under every key whose identifiers it digests: the
   * request month's, each month it gave records of, each hold in `holdIds` (DisclosureDesk.holdsOf the plan). A key
   * already gone (a month destroyed while the answer streamed) leaves the receipt without its block.
   */
  async finish(
    meta: DisclosureRequestMeta,
    outcome: { status: 'answered' | 'failed' | 'aborted'; recordCount: number; months: MonthAnswer[]; integrity: AnswerIntegrity | null },
    now: number,
    holdIds: readonly string[] = [],
  ): Promise<void> {
    const subject = await this.subjectOf(meta.identifier, meta.requestedAt);
    let receipt: SealedReceipt | undefined;
    if (outcome.integrity && subject.key) {
      // Copies: the ring zeroes a destroyed month's key in place (MonthKeyRing.forget), and a share sealed under a
      // zeroed key would open for anyone (found in review).
      const copy = (key: MonthKey): MonthKey => ({ ...key, tokenKey: Buffer.from(key.tokenKey), vaultKey: Buffer.from(key.vaultKey) });
      const keys: { name: string; key: MonthKey }[] = [{ name: subject.month, key: copy(subject.key) }];
      const months = [subject.month];
      let complete = true;
      for (const m of outcome.months) {
        if (m.status !== 'answered' || m.month === subject.month) continue;
        const key = await this.deps.keyRing.existingKey(m.month);
        if (key) keys.push({ name: m.month, key: copy(key) });
        else complete = false;
        months.push(m.month);
      }
      for (const holdId of holdIds) {
        const key = await this.deps.holds.keyOf(holdId);
        if (key) keys.push({ name: `hold:${holdId}`, key });
        else complete = false;
      }
      // None destroyed meanwhile (by this process's pass, or another's): else no block is kept.
      if (complete && keys.every((k) => k.key.vaultKey.some((b) => b !== 0)) && (await this.deps.keyRing.anyDestroyed(months)).length === 0)
        receipt = sealReceipt(meta.requestId, canonicalJson(outcome.integrity), keys);
      for (const k of keys) {
        k.key.tokenKey.fill(0);
        k.key.vaultKey.fill(0);
      }
    }
    await this.deps.storage.insert('disclosure_requests', [
      this.row(meta, subject, {
        status: outcome.status,
        recordCount: outcome.recordCount,
        months: outcome.months,
        receipt: receipt?.sealed ?? '',
        receiptKeys: receipt ? JSON.stringify(receipt.shares) : '',
        finishedAt: now,
      }),
    ]);
  }

  /**
   * Runs the writes that record how an answer ended without keeping its reader waiting: the answer's last byte
   * leaves, then its request row and audit entry are written (the write-ahead `started` ones went before the first
   * record). A receipt read in this process waits for them; `settled` waits for all (shutdown).
   */
  recordEnd(requestId: string, write: () => Promise<void>): void {
    const done = write().finally(() => {
      if (this.ending.get(requestId) === done) this.ending.delete(requestId);
    });
    this.ending.set(requestId, done);
  }

  /** Waits until every answer's end is recorded (or has failed and been logged by its writer). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.ending.values()]);
  }

  /** A stored request (no identifier, no record); undefined when unknown or of another kind. */
  async receipt(requestId: string, kind: DisclosureKind): Promise<DisclosureReceipt | undefined> {
    await this.ending.get(requestId)?.catch(() => undefined);
    const rows = await this.deps.storage.query<RequestRow>(
      `SELECT * FROM ${this.deps.storage.table('disclosure_requests')} FINAL WHERE request_id = {id:String} AND kind = {k:String}`,
      { id: requestId, k: kind },
    );
    const r = rows[0];
    if (!r) return undefined;
    let integrity: AnswerIntegrity | null = null;
    const months = JSON.parse(r.months || '[]') as MonthAnswer[];
    // A key another process destroyed since this one last looked is gone here too before the block is opened.
    if (r.receipt_sealed !== '') await this.deps.keyRing.refreshDestroyed();
    if (r.receipt_sealed !== '' && r.receipt_keys) {
      // Opens only while every key whose identifiers it digests lives (the request month's, each answered month's, each
      // hold's whose copy it gave).
      const shares = JSON.parse(r.receipt_keys) as SealedReceipt['shares'];
      const text = await openReceipt(r.request_id, { sealed: r.receipt_sealed, shares }, (name) =>
        name.startsWith('hold:') ? this.deps.holds.keyOf(name.slice('hold:'.length)) : this.deps.keyRing.existingKey(name),
      );
      if (text !== undefined) integrity = JSON.parse(text) as AnswerIntegrity;
    } else if (r.receipt_sealed !== '' && r.subject_month !== '' && (await this.legacyReceiptLives(months))) {
      // Sealed before 2026-12-07: under the request month's key alone.
      const key = await this.deps.keyRing.existingKey(r.subject_month);
      if (key) integrity = JSON.parse(openIdentifier(key, `receipt:${r.request_id}`, Buffer.from(r.receipt_sealed, 'base64'))) as AnswerIntegrity;
    }
    return {
      request_id: r.request_id,
      kind: r.kind,
      status: r.status,
      requested_by: r.requested_by,
      authority: r.authority,
      case_reference: r.case_reference,
      legal_basis: r.legal_basis,
      identifier_type: r.id_type,
      from: isoFromCh(r.from_time),
      to: isoFromCh(r.to_time),
      answered_at: isoFromCh(r.requested_at),
      confidential: r.confidential === true || r.confidential === 1,
      format: r.answer_format,
      months,
      expired_months: expiredMonthsOf(months),
      record_count: Number(r.record_count),
      finished_at: r.finished_at ? isoFromCh(r.finished_at) : null,
      integrity,
    };
  }

  /**
   * Whether a receipt sealed before 2026-12-07 (under the request month's key alone) may still give its block out:
   * while every month it answered keeps its key, and only if it answered no month from a hold's copy (which holds it
   * used was not kept). Its digests give the answered numbers away once their months' keys are gone (found from
   * outside), so such a block is withheld from then on, as a new receipt's no longer opens.
   */
  private async legacyReceiptLives(months: readonly MonthAnswer[]): Promise<boolean> {
    for (const m of months) {
      if (m.status === 'held' && m.records > 0) return false;
      if (m.status === 'answered' && !(await this.deps.keyRing.existingKey(m.month))) return false;
    }
    return true;
  }

  /** The token of a subject under the month key of `at` (created if needed: the month is inside the window). */
  private async subjectOf(id: NormalisedIdentifier, at: number): Promise<{ token: string; month: string; key: MonthKey | null }> {
    const month = monthKeyOf(at);
    const key = await this.deps.keyRing.keyForWriting(month, at);
    return key ? { token: tokenOf(key, `audit:${id.type}`, id.value), month, key } : { token: '', month: '', key: null };
  }

  private row(
    meta: DisclosureRequestMeta,
    subject: { token: string; month: string },
    state: { status: string; recordCount: number; months: MonthAnswer[]; receipt: string; receiptKeys?: string; finishedAt: number | null },
  ): RequestRow {
    return {
      request_id: meta.requestId,
      kind: meta.kind,
      requested_at: chTime(meta.requestedAt),
      requested_by: meta.requestedBy,
      authority: meta.authority,
      case_reference: meta.caseReference,
      legal_basis: meta.legalBasis,
      confidential: meta.confidential,
      id_type: meta.identifier.type,
      from_time: chTime(meta.from),
      to_time: chTime(meta.to),
      answer_format: meta.format,
      status: state.status,
      record_count: state.recordCount,
      months: JSON.stringify(state.months),
      subject_token: subject.token,
      subject_month: subject.month,
      receipt_sealed: state.receipt,
      receipt_keys: state.receiptKeys ?? '',
      finished_at: state.finishedAt === null ? null : chTime(state.finishedAt),
      // Later states win (ReplacingMergeTree on version): started, then how it ended.
      version: state.status === 'started' ? 1 : 2,
    };
  }
}
