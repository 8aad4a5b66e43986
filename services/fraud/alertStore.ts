import type { Alert, AlertChange, LearnedState, RuleName } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import { chTime, isoFromCh } from '../platform/identity/index.ts';

/**
 * Fraud alerts in ClickHouse (`fraud_alerts`, migration 10): one row per change, the newest version is the alert. The
 * version is the change's position (event time of the change × 8 + the kind's order), so a replayed change lands on the
 * same version and a later change always wins.
 */
export interface AlertRow {
  alert_id: string;
  version: number;
  rule: string;
  severity: string;
  state: string;
  account_id: string;
  destination_country: string;
  range: string;
  token: string;
  token_role: string;
  risk_score: number;
  started_at: number;
  ended_at: number;
  detected_at: number;
  evidence: string;
  changed_at: number;
}

/**
 * A change's rank among the changes of the same instant. `updated` and `escalated` share one: each carries the alert's
 * latest state when a batch hands it out, so of two at one instant the one inserted later is the newer (found in review:
 * ranked below `escalated`, a later batch's `updated` that moved the evidence but not `ended_at` was lost).
 */
const ORDER: Record<AlertChange['change'], number> = { opened: 0, updated: 1, escalated: 1, closed: 3 };

export function rowOf(c: AlertChange, changedAt: number): AlertRow {
  const a = c.alert;
  return {
    alert_id: a.alert_id,
    // A closed alert amended by records read late (`updated`, state still `closed`: fraudDetector's amendClosed) comes
    // after its `closed` row of the same instant: slot 4 of the 8.
    version: Math.max(a.ended_at, a.detected_at) * 8 + (c.change === 'updated' && a.state === 'closed' ? 4 : ORDER[c.change]),
    rule: a.rule,
    severity: a.severity,
    state: a.state,
    account_id: a.key.account_id,
    destination_country: a.key.destination_country ?? '',
    range: a.key.range ?? '',
    token: a.key.token ?? '',
    token_role: a.key.token_role ?? '',
    risk_score: a.risk_score,
    started_at: a.started_at,
    ended_at: a.ended_at,
    detected_at: a.detected_at,
    evidence: JSON.stringify(a.evidence),
    changed_at: changedAt,
  };
}

interface StoredRow {
  alert_id: string;
  rule: string;
  severity: string;
  state: string;
  account_id: string;
  destination_country: string;
  range: string;
  token: string;
  token_role: string;
  risk_score: number;
  started_at: string;
  ended_at: string;
  detected_at: string;
  evidence: string;
}

function alertOf(r: StoredRow): Alert {
  return {
    alert_id: r.alert_id,
    rule: r.rule as RuleName,
    severity: r.severity === 'critical' ? 'critical' : 'warning',
    state: r.state === 'closed' ? 'closed' : 'open',
    key: {
      account_id: r.account_id,
      ...(r.destination_country ? { destination_country: r.destination_country } : {}),
      ...(r.range ? { range: r.range } : {}),
      ...(r.token ? { token: r.token } : {}),
      ...(r.token_role === 'recipient' || r.token_role === 'sender' ? { token_role: r.token_role } : {}),
    },
    risk_score: Number(r.risk_score),
    started_at: Date.parse(isoFromCh(r.started_at)),
    ended_at: Date.parse(isoFromCh(r.ended_at)),
    detected_at: Date.parse(isoFromCh(r.detected_at)),
    evidence: JSON.parse(r.evidence) as Record<string, number | string>,
  };
}

export class AlertStore {
  constructor(private readonly storage: Storage) {}

  /**
   * Each alert's newest row: the highest version, then the latest `changed_at` (the wall time of its batch). Not `FINAL`:
   * the table is partitioned by the month of `started_at`, which a late record can move back, and of two rows of one
   * version in two partitions `FINAL` keeps the later month's — the older state — whichever was inserted later
   * (verified on the engine, 2026-12-06: a late record moves an alert's start and evidence, not its end, so its
   * version). A replayed batch's rows are dropped by its insert token, so a later `changed_at` is a later change.
   */
  private newest(): string {
    return `(SELECT * FROM ${this.storage.table('fraud_alerts')} ORDER BY alert_id, version DESC, changed_at DESC LIMIT 1 BY alert_id)`;
  }

  /** Alerts open now (a restarted detector adopts them: their condition continues them rather than opening new ones). */
  async openAlerts(): Promise<Alert[]> {
    const rows = await this.storage.query<StoredRow>(`SELECT * FROM ${this.newest()} WHERE state = 'open'`);
    return rows.map(alertOf);
  }

  /**
   * Alerts closed within `spanMs` of event time before the newest alert's end, at most `limit` (the newest): a restarted
   * detector adopts them, so a record published again and judged again amends its episode rather than opening it anew.
   */
  async recentlyClosed(spanMs: number, limit = 10_000): Promise<Alert[]> {
    const rows = await this.storage.query<StoredRow>(
      `SELECT * FROM ${this.newest()} WHERE state = 'closed'
         AND ended_at >= (SELECT max(ended_at) FROM ${this.storage.table('fraud_alerts')}) - toIntervalMillisecond({span:UInt64})
       ORDER BY ended_at DESC LIMIT {limit:UInt32}`,
      { span: spanMs, limit },
    );
    return rows.map(alertOf);
  }

  /** What the detector of `groupId` had learned when it last saved it (`saveLearned`), or undefined. */
  async learned(groupId: string): Promise<LearnedState | undefined> {
    const [row] = await this.storage.query<{ state: string }>(
      `SELECT state FROM ${this.storage.table('fraud_learned')} WHERE group_id = {g:String} ORDER BY saved_at DESC LIMIT 1`,
      { g: groupId },
    );
    if (row === undefined) return undefined;
    const state = JSON.parse(row.state) as LearnedState;
    return state.version === 1 && Array.isArray(state.accounts) ? state : undefined;
  }

  /** Keeps what the detector has learned (the newest row per group wins; older ones merge away). */
  async saveLearned(groupId: string, state: LearnedState, at: number): Promise<void> {
    await this.storage.insert('fraud_learned', [{ group_id: groupId, saved_at: at, accounts: state.accounts.length, state: JSON.stringify(state) }]);
  }

  /** Alerts whose activity overlaps [from, to), newest first. */
  async list(from: number, to: number, rule?: string, limit = 1000): Promise<Alert[]> {
    const rows = await this.storage.query<StoredRow>(
      `SELECT * FROM ${this.newest()}
       WHERE started_at < {to:DateTime64(3, 'UTC')} AND ended_at >= {from:DateTime64(3, 'UTC')} ${rule ? 'AND rule = {rule:String}' : ''}
       ORDER BY started_at DESC, alert_id LIMIT {limit:UInt32}`,
      { from: chTime(from), to: chTime(to), limit, ...(rule ? { rule } : {}) },
    );
    return rows.map(alertOf);
  }
}

/** An alert as the API and the topic show it: ISO times. */
export function alertView(a: Alert): Record<string, unknown> {
  return {
    alert_id: a.alert_id,
    rule: a.rule,
    severity: a.severity,
    state: a.state,
    key: a.key,
    risk_score: a.risk_score,
    started_at: new Date(a.started_at).toISOString(),
    ended_at: new Date(a.ended_at).toISOString(),
    detected_at: new Date(a.detected_at).toISOString(),
    evidence: a.evidence,
  };
}
