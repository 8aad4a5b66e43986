import { randomUUID } from 'node:crypto';
import type { Storage } from '../clickhouse/index.ts';
import {
  PipelineError,
  identifierCutoff,
  monthDateOf,
  monthStartOf,
  deriveMonthKey,
  generateMonthKey,
  unwrapMonthKey,
  wrapMonthKey,
  type MonthKey,
} from '../../core/index.ts';

/**
 * The ring of month keys: wrapped in ClickHouse (`month_keys`), unwrapped only in this process's memory.
 * A key is created on first use for a month whose identifier window is still open and that was never
 * destroyed; a destroyed or expired month yields `null`, and its records are stored without identifiers.
 */
export class MonthKeyRing {
  private readonly cache = new Map<string, MonthKey | null>();
  private readonly pending = new Map<string, Promise<MonthKey | null>>();
  private readonly destroyedListeners: ((month: string) => void)[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly masterKey: Buffer,
  ) {}

  /** The key of a month, created if the month may still hold identifiers at `now`; null when it may not. */
  async keyForWriting(month: string, now: number): Promise<MonthKey | null> {
    if (now >= identifierCutoff(monthStartOf(month))) return null;
    const cached = this.cache.get(month);
    if (cached !== undefined) return cached;
    let p = this.pending.get(month);
    if (!p) {
      p = this.loadOrCreate(month).finally(() => this.pending.delete(month));
      this.pending.set(month, p);
    }
    return p;
  }

  /** The key of a month if it exists; never creates one. For lookups (LEA, DSAR). */
  async existingKey(month: string): Promise<MonthKey | null> {
    const cached = this.cache.get(month);
    if (cached !== undefined) return cached;
    if (await this.isDestroyed(month)) return null;
    const key = await this.readKey(month);
    if (key) this.cache.set(month, key);
    return key;
  }

  /** Drops a month from memory after its key was destroyed (its derived keys are zeroed); later requests see it as destroyed. */
  forget(month: string): void {
    const had = this.cache.get(month);
    if (had) {
      had.tokenKey.fill(0);
      had.vaultKey.fill(0);
    }
    this.cache.set(month, null);
    for (const listener of this.destroyedListeners) listener(month);
  }

  /** Called with each month this ring learns was destroyed (here or, via `refreshDestroyed`, by another process). */
  onDestroyed(listener: (month: string) => void): void {
    this.destroyedListeners.push(listener);
  }

  /**
   * Re-reads the tombstones every `intervalMs`, so a key destroyed by another process (the CLI, the retention job)
   * leaves this long-running process's memory within that interval. Stopped by `stopRefresh`; never keeps a process alive.
   */
  startRefresh(intervalMs: number, onError: (err: unknown) => void): void {
    this.stopRefresh();
    this.refreshTimer = setInterval(() => void this.refreshDestroyed().catch(onError), intervalMs);
    this.refreshTimer.unref();
  }

  stopRefresh(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** Whether any of these months has a tombstone now (asked of the database, not of this ring's memory). */
  anyDestroyed(months: readonly string[]): Promise<string[]> {
    return destroyedAmong(this.storage, months);
  }

  /**
   * Checks, before anything runs, that the master key opens the newest month key stored (a wrong key would make every
   * new token unlinkable to the stored ones and every stored identifier unreadable). No stored key: nothing to check.
   */
  async verifyMasterKey(source: string): Promise<void> {
    const rows = await this.storage.query<{ m: string; wrapped_key: string }>(
      `SELECT formatDateTime(month, '%Y-%m') AS m, wrapped_key FROM ${this.storage.table('month_keys')} ORDER BY created_at DESC LIMIT 1`,
    );
    const row = rows[0];
    if (!row) return;
    try {
      unwrapMonthKey(this.masterKey, row.m, row.wrapped_key).fill(0);
    } catch (cause) {
      throw new PipelineError(
        'key_invalid',
        `the master key (${source}) does not open the month key of ${row.m} stored in ClickHouse: is CDR_MASTER_KEY / CDR_MASTER_KEY_FILE the key this data was written with? Refusing to start: new tokens would not link to the stored ones and no stored identifier could be read`,
        { cause },
      );
    }
  }

  /** Re-reads tombstones so a key destroyed by another process is dropped from this one's memory. */
  async refreshDestroyed(): Promise<void> {
    const rows = await this.storage.query<{ m: string }>(`SELECT formatDateTime(month, '%Y-%m') AS m FROM ${this.storage.table('destroyed_months')}`);
    // Only news: a month this ring already holds as destroyed was already forgotten (and its listeners told).
    for (const r of rows) if (this.cache.get(r.m) !== null) this.forget(r.m);
  }

  private async isDestroyed(month: string): Promise<boolean> {
    const rows = await this.storage.query<{ n: string }>(`SELECT count() AS n FROM ${this.storage.table('destroyed_months')} WHERE month = {m:Date}`, {
      m: monthDateOf(month),
    });
    return Number(rows[0]?.n ?? 0) > 0;
  }

  private async readKey(month: string): Promise<MonthKey | null> {
    // One key per month is enforced at creation (deduplicated inserts, below). Data written before that rule could
    // hold two: everyone picks the smallest key_id, and the retention pass destroys the whole month either way.
    const rows = await this.storage.query<{ key_id: string; wrapped_key: string }>(
      `SELECT key_id, wrapped_key FROM ${this.storage.table('month_keys')} WHERE month = {m:Date} ORDER BY key_id LIMIT 1`,
      { m: monthDateOf(month) },
    );
    const row = rows[0];
    if (!row) return null;
    return deriveMonthKey(month, row.key_id, unwrapMonthKey(this.masterKey, month, row.wrapped_key));
  }

  private async loadOrCreate(month: string): Promise<MonthKey | null> {
    if (await this.isDestroyed(month)) {
      this.cache.set(month, null);
      return null;
    }
    let key = await this.readKey(month);
    // Racing creators (threads, processes) each insert a key under the same deduplication token: the engine keeps
    // the first and silently drops the rest, so all of them read back the one that landed. Should a generation's
    // insert leave nothing (its partition dropped by hand after the token was used), the next generation is tried,
    // in the same order by everyone.
    for (let generation = 1; !key && generation <= 3; generation++) {
      const raw = generateMonthKey();
      await this.storage.insert(
        'month_keys',
        [{ month: monthDateOf(month), key_id: randomUUID(), wrapped_key: wrapMonthKey(this.masterKey, month, raw), created_at: Date.now() }],
        { insert_deduplicate: 1, insert_deduplication_token: `month-key:${month}:${generation}` },
      );
      raw.fill(0);
      key = await this.readKey(month);
    }
    if (!key) throw new PipelineError('key_unavailable', `month key for ${month} was written but cannot be read back`);
    this.cache.set(month, key);
    return key;
  }
}

/**
 * Which of these months (`YYYY-MM`) have a tombstone in `destroyed_months` now, asked of the database. For processes
 * that hold no key ring too (fraud: a destroyed month's token is not written again).
 */
export async function destroyedAmong(storage: Storage, months: readonly string[]): Promise<string[]> {
  if (months.length === 0) return [];
  const rows = await storage.query<{ m: string }>(
    `SELECT DISTINCT formatDateTime(month, '%Y-%m') AS m FROM ${storage.table('destroyed_months')} WHERE month IN {ms:Array(Date)}`,
    { ms: months.map(monthDateOf) },
  );
  return rows.map((r) => r.m);
}
