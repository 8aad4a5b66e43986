import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { destroyPartition, type Storage } from '../platform/clickhouse/index.ts';
import {
  PipelineError,
  addMonthsUtc,
  identifierCutoff,
  lastExpiredIdentifierMonth,
  monthDateOf,
  monthKeyOf,
  monthStartOf,
  trafficCutoff,
} from '../core/index.ts';
import { chTime } from '../platform/identity/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import type { MonthKeyRing } from '../platform/keys/index.ts';
import type { LegalHolds } from '../platform/holds/index.ts';

/**
 * One retention pass at a given `now` (privacy notice 5.1.2 and 11):
 *
 * 1. re-sync active legal holds, so everything a hold names is preserved before anything is dropped;
 * 2. identifiers: for every month whose cutoff (startOfMonth + 13 months) has passed — drop its
 *    identity-vault and subscriber-index partitions, clear its token columns in `cdr` (synchronous
 *    mutation), write a tombstone and drop its key partition (crypto-shredding), then verify that no
 *    vault row, index row, key or token of the month remains;
 * 3. traffic: drop `cdr` partitions whose year is past startOfYear + 11 years;
 * 4. usage: clear `client_ip` older than 3 years;
 * 5. held: purge the copies and keys of released holds;
 * 6. write one `retention_log` row per action and count `cdr_retention_deleted_total{class}`.
 *
 * Idempotent: a second pass at the same `now` finds nothing. `dryRun` counts without changing anything.
 */
export type RetentionClass = 'identifiers' | 'traffic' | 'usage' | 'held';

export interface RetentionAction {
  class: RetentionClass;
  month: string;
  rows: number;
  keys_destroyed: number;
  holds_honoured: number;
  verified: boolean;
  hold_id?: string;
}

export interface RetentionReport {
  run_id: string;
  now: string;
  dry_run: boolean;
  /** Who ran the pass: the API caller's token name, `cli:<user>`, or `schedule`. */
  actor: string;
  actions: RetentionAction[];
  holds_synced: number;
  duration_ms: number;
}

export interface RetentionDeps {
  readonly storage: Storage;
  readonly keyRing: MonthKeyRing;
  readonly holds: LegalHolds;
  readonly metrics: PipelineMetrics;
  readonly log: Logger;
  /** Called after a month key is destroyed, so in-process caches drop it. */
  readonly onKeyDestroyed?: (month: string) => void;
  /** Where each pass is recorded in the audit trail (who ran it, what it did), when the process keeps one. */
  readonly audit?: RetentionAuditSink;
}

/** The part of the audit trail a retention pass writes to. */
export interface RetentionAuditSink {
  append(entry: { actor: string; action: string; outcome: string; rows?: number; requestId?: string; detail?: string }): Promise<unknown>;
}

export class RetentionError extends PipelineError {}

const SYNC = { mutations_sync: '2' } as const;

function partitionOfMonth(month: string): string {
  return month.replace('-', '');
}

export class RetentionPass {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: RetentionDeps) {}

  /** Runs a pass; concurrent calls run one after the other, never interleaved. */
  run(opts: { now: number; dryRun: boolean; actor?: string }): Promise<RetentionReport> {
    const next = this.queue.then(() => this.runAudited(opts));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runAudited(opts: { now: number; dryRun: boolean; actor?: string }): Promise<RetentionReport> {
    const audit = this.deps.audit;
    const actor = opts.actor ?? 'retention';
    try {
      const report = await this.runExclusive(opts);
      await audit?.append({
        actor,
        action: 'retention.pass',
        outcome: report.dry_run ? 'dry_run' : 'done',
        rows: report.actions.reduce((n, a) => n + a.rows, 0),
        requestId: report.run_id,
        detail: `now ${report.now}; ${report.actions.map((a) => `${a.class} ${a.month}: ${a.rows} rows, ${a.keys_destroyed} keys`).join('; ') || 'nothing to delete'}`,
      });
      return report;
    } catch (err) {
      await audit
        ?.append({ actor, action: 'retention.pass', outcome: 'failed', detail: err instanceof Error ? err.message : String(err) })
        .catch((e: unknown) => this.deps.log.error({ err: e }, 'could not record a failed retention pass in the audit trail'));
      throw err;
    }
  }

  private async runExclusive({ now, dryRun, actor = 'retention' }: { now: number; dryRun: boolean; actor?: string }): Promise<RetentionReport> {
    const started = Date.now();
    const runId = randomUUID();
    const actions: RetentionAction[] = [];
    const holdsSynced = dryRun ? 0 : await this.deps.holds.syncActive();
    actions.push(...(await this.expireIdentifiers(await this.expiredIdentifierMonths(now), now, dryRun)));
    actions.push(...(await this.expireTraffic(now, dryRun)));
    actions.push(...(await this.expireUsage(now, dryRun)));
    actions.push(...(await this.purgeReleasedHolds(dryRun, actor)));
    const report: RetentionReport = {
      run_id: runId,
      now: new Date(now).toISOString(),
      dry_run: dryRun,
      actor,
      actions,
      holds_synced: holdsSynced,
      duration_ms: Date.now() - started,
    };
    if (!dryRun) {
      await this.deps.storage.insert(
        'retention_log',
        actions.map((a) => ({
          run_id: runId,
          run_at: Date.now(),
          pass_now: now,
          class: a.class,
          month: a.month,
          rows: a.rows,
          keys_destroyed: a.keys_destroyed,
          holds_honoured: a.holds_honoured,
          verified: a.verified,
          detail: a.hold_id ?? '',
          actor,
        })),
      );
      for (const a of actions) this.deps.metrics.retentionDeleted.inc({ class: a.class }, a.rows);
    }
    this.deps.log.info({ runId, now: report.now, dryRun, actor, actions: actions.length, durationMs: report.duration_ms }, 'retention pass finished');
    const unverified = actions.filter((a) => !a.verified);
    if (!dryRun && unverified.length > 0) {
      throw new RetentionError(
        'invariant_broken',
        `retention pass ${runId}: verification failed for ${unverified.map((a) => `${a.class} ${a.month}`).join(', ')}`,
      );
    }
    return report;
  }

  /** Months that still have any identifier material (key, vault, index, tokens) and whose cutoff has passed. */
  private async expiredIdentifierMonths(now: number): Promise<string[]> {
    const { storage } = this.deps;
    const last = lastExpiredIdentifierMonth(now);
    const months = new Set<string>();
    for (const r of await storage.query<{ m: string }>(`SELECT DISTINCT formatDateTime(month, '%Y-%m') m FROM ${storage.table('month_keys')}`)) months.add(r.m);
    for (const r of await storage.query<{ p: string }>(
      `SELECT DISTINCT partition p FROM system.parts WHERE database = {db:String} AND table IN ('identity_vault', 'subscriber_index') AND active`,
      { db: storage.database },
    )) {
      months.add(`${r.p.slice(0, 4)}-${r.p.slice(4, 6)}`);
    }
    // Token columns of cdr: months not yet verified clean, plus the newest expired months (a batch that
    // straddled a cutoff may have written tokens after the pass that cleared the month).
    const verified = new Set(
      (await storage.query<{ month: string }>(`SELECT DISTINCT month FROM ${storage.table('retention_log')} WHERE class = 'identifiers' AND verified`)).map(
        (r) => r.month,
      ),
    );
    for (const r of await storage.query<{ p: string }>(
      `SELECT DISTINCT partition p FROM system.parts WHERE database = {db:String} AND table = 'cdr' AND active`,
      { db: storage.database },
    )) {
      const m = `${r.p.slice(0, 4)}-${r.p.slice(4, 6)}`;
      if (!verified.has(m)) months.add(m);
    }
    for (let i = 0; i < 3; i++) months.add(monthKeyOf(addMonthsUtc(monthStartOf(last), -i)));
    return [...months].filter((m) => /^\d{4}-\d{2}$/.test(m) && now >= identifierCutoff(monthStartOf(m))).sort();
  }

  private async countIdentifierMaterial(month: string): Promise<{ vault: number; index: number; tokens: number; keys: number }> {
    const { storage } = this.deps;
    const m = { m: monthDateOf(month) };
    const start = monthStartOf(month);
    const [v] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('identity_vault')} WHERE month = {m:Date}`, m);
    const [i] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('subscriber_index')} WHERE month = {m:Date}`, m);
    const [k] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('month_keys')} WHERE month = {m:Date}`, m);
    const [t] = await storage.query<{ n: string }>(
      `SELECT count() n FROM ${storage.table('cdr')} WHERE event_time >= {a:DateTime64(3)} AND event_time < {b:DateTime64(3)} AND (sender_token != '' OR recipient_token != '')`,
      { a: chTime(start), b: chTime(addMonthsUtc(start, 1)) },
    );
    return { vault: Number(v?.n ?? 0), index: Number(i?.n ?? 0), keys: Number(k?.n ?? 0), tokens: Number(t?.n ?? 0) };
  }

  /**
   * Expires the identifiers of the given months. Partition drops are per month; the token columns of
   * `cdr` are cleared by one synchronous mutation for all months (a mutation costs seconds of scheduling
   * in the embedded engine, whatever its size).
   */
  private async expireIdentifiers(months: string[], now: number, dryRun: boolean): Promise<RetentionAction[]> {
    const { storage } = this.deps;
    const on = storage.onCluster();
    const actions: RetentionAction[] = [];
    let tokensToClear = false;
    for (const month of months) {
      const before = await this.countIdentifierMaterial(month);
      const rows = before.vault + before.index + before.tokens;
      if (rows === 0 && before.keys === 0) continue;
      const start = monthStartOf(month);
      const holds = await this.deps.holds.activeOverlapping(start, addMonthsUtc(start, 1));
      actions.push({ class: 'identifiers', month, rows, keys_destroyed: before.keys > 0 ? 1 : 0, holds_honoured: holds.length, verified: true });
      if (before.tokens > 0) tokensToClear = true;
      if (dryRun) continue;
      const p = partitionOfMonth(month);
      // First make the key unusable for new writes (tombstone), then remove the data, then the key.
      await storage.insert('destroyed_months', [{ month: monthDateOf(month), destroyed_at: now, reason: 'identifier retention: startOfMonth + 13 months' }]);
      this.deps.keyRing.forget(month);
      this.deps.onKeyDestroyed?.(month);
      await destroyPartition(storage, 'identity_vault', `ID '${p}'`);
      await destroyPartition(storage, 'subscriber_index', `ID '${p}'`);
    }
    if (dryRun || actions.length === 0) return actions;
    if (tokensToClear) {
      const boundary = chTime(addMonthsUtc(monthStartOf(lastExpiredIdentifierMonth(now)), 1));
      await storage.command(
        `ALTER TABLE ${storage.table('cdr')}${on} UPDATE sender_token = '', recipient_token = '' WHERE event_time < {b:DateTime64(3)} AND (sender_token != '' OR recipient_token != '')`,
        { b: boundary },
        SYNC,
      );
    }
    for (const a of actions) {
      await destroyPartition(storage, 'month_keys', `ID '${partitionOfMonth(a.month)}'`);
      const after = await this.countIdentifierMaterial(a.month);
      a.verified = after.vault === 0 && after.index === 0 && after.tokens === 0 && after.keys === 0;
      if (!a.verified) this.deps.log.error({ month: a.month, after }, 'identifier material remains after the retention pass');
    }
    return actions;
  }

  private async expireTraffic(now: number, dryRun: boolean): Promise<RetentionAction[]> {
    const { storage } = this.deps;
    const parts = await storage.query<{ p: string; n: string }>(
      `SELECT partition p, sum(rows) n FROM system.parts WHERE database = {db:String} AND table = 'cdr' AND active GROUP BY p ORDER BY p`,
      { db: storage.database },
    );
    const out: RetentionAction[] = [];
    for (const part of parts) {
      const month = `${part.p.slice(0, 4)}-${part.p.slice(4, 6)}`;
      if (now < trafficCutoff(monthStartOf(month))) continue;
      const [c] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('cdr')} WHERE toYYYYMM(event_time) = {p:UInt32}`, {
        p: Number(part.p),
      });
      const action: RetentionAction = { class: 'traffic', month, rows: Number(c?.n ?? 0), keys_destroyed: 0, holds_honoured: 0, verified: true };
      if (!dryRun) {
        await storage.command(`ALTER TABLE ${storage.table('cdr')}${storage.onCluster()} DROP PARTITION ID '${part.p}'`, undefined, SYNC);
        const [after] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('cdr')} WHERE toYYYYMM(event_time) = {p:UInt32}`, {
          p: Number(part.p),
        });
        action.verified = Number(after?.n ?? 0) === 0;
      }
      out.push(action);
    }
    return out;
  }

  private async expireUsage(now: number, dryRun: boolean): Promise<RetentionAction[]> {
    const { storage } = this.deps;
    // addYears clamps 29 Feb to 28 Feb, as usageCutoff does; the coarse bound lets ClickHouse prune partitions.
    const coarse = chTime(Date.UTC(new Date(now).getUTCFullYear() - 3, new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 2));
    // Months past their traffic window go whole with their partition; they are not counted twice here.
    const trafficKept = chTime(Date.UTC(new Date(now).getUTCFullYear() - 10, 0, 1));
    const where = `client_ip != '' AND event_time >= {kept:DateTime64(3)} AND event_time < {coarse:DateTime64(3)} AND addYears(event_time, 3) <= {now:DateTime64(3)}`;
    const params = { coarse, now: chTime(now), kept: trafficKept };
    const byMonth = await storage.query<{ p: string; n: string }>(
      `SELECT toString(toYYYYMM(event_time)) p, count() n FROM ${storage.table('cdr')} WHERE ${where} GROUP BY p ORDER BY p`,
      params,
    );
    const out: RetentionAction[] = byMonth.map((r) => ({
      class: 'usage',
      month: `${r.p.slice(0, 4)}-${r.p.slice(4, 6)}`,
      rows: Number(r.n),
      keys_destroyed: 0,
      holds_honoured: 0,
      verified: true,
    }));
    if (dryRun || out.length === 0) return out;
    await storage.command(`ALTER TABLE ${storage.table('cdr')}${storage.onCluster()} UPDATE client_ip = '' WHERE ${where}`, params, SYNC);
    const [after] = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('cdr')} WHERE ${where}`, params);
    if (Number(after?.n ?? 0) !== 0) for (const a of out) a.verified = false;
    return out;
  }

  private async purgeReleasedHolds(dryRun: boolean, actor: string): Promise<RetentionAction[]> {
    const out: RetentionAction[] = [];
    for (const hold of await this.deps.holds.releasedUnpurged()) {
      if (dryRun) {
        const byMonth = await this.deps.holds.heldRowsByMonth(hold.hold_id);
        let first = true;
        for (const [month, rows] of byMonth) {
          out.push({ class: 'held', month, rows, keys_destroyed: first ? 1 : 0, holds_honoured: 0, verified: true, hold_id: hold.hold_id });
          first = false;
        }
        if (byMonth.size === 0) out.push({ class: 'held', month: '', rows: 0, keys_destroyed: 1, holds_honoured: 0, verified: true, hold_id: hold.hold_id });
        continue;
      }
      const { rowsByMonth, keysDestroyed } = await this.deps.holds.purge(hold.hold_id, actor);
      const remaining = await this.deps.holds.heldRowsByMonth(hold.hold_id);
      let first = true;
      for (const [month, rows] of rowsByMonth) {
        out.push({
          class: 'held',
          month,
          rows,
          keys_destroyed: first ? keysDestroyed : 0,
          holds_honoured: 0,
          verified: remaining.size === 0,
          hold_id: hold.hold_id,
        });
        first = false;
      }
      if (rowsByMonth.size === 0)
        out.push({
          class: 'held',
          month: '',
          rows: 0,
          keys_destroyed: keysDestroyed,
          holds_honoured: 0,
          verified: remaining.size === 0,
          hold_id: hold.hold_id,
        });
    }
    return out;
  }
}
