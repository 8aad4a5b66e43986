import type { KeyObject } from 'node:crypto';
import type { Storage } from '../platform/clickhouse/index.ts';
import { chTime, isoFromCh } from '../platform/identity/index.ts';
import {
  DESTRUCTION_GENESIS,
  linkOf,
  PipelineError,
  buildDestructionReport,
  actionScope,
  canonicalJson,
  isBegun,
  signDestructionEntry,
  verifyDestructionChain,
  type AnswerSigner,
  type DestructionEntry,
  type DestructionEntryContent,
  type DestructionReport,
} from '../core/index.ts';

/**
 * The stored destruction record (`retention_records`): appends signed, hash-chained entries, exports a month's
 * report, and re-checks the whole chain. Appends are serialised in this process; a writer in another process that
 * takes the same `seq` first wins (the insert is deduplicated by seq) and this one retries with the next.
 */
interface RecordRow {
  seq: string | number;
  prev_hash: string;
  destroyed_at: string;
  pass_now: string;
  run_id: string;
  actor: string;
  class: string;
  month: string;
  key_ids: string[];
  rows: string | number;
  keys_destroyed: string | number;
  holds_honoured: string | number;
  verified: boolean | number;
  verification: string;
  verification_sha256: string;
  signer_key_id: string;
  hash: string;
  signature: string;
}

function entryOf(r: RecordRow): DestructionEntry {
  return {
    seq: Number(r.seq),
    prev_hash: r.prev_hash,
    destroyed_at: isoFromCh(r.destroyed_at),
    pass_now: isoFromCh(r.pass_now),
    run_id: r.run_id,
    actor: r.actor,
    class: r.class,
    month: r.month,
    key_ids: r.key_ids,
    rows: Number(r.rows),
    keys_destroyed: Number(r.keys_destroyed),
    holds_honoured: Number(r.holds_honoured),
    verified: r.verified === true || r.verified === 1,
    verification: JSON.parse(r.verification) as Record<string, unknown>,
    verification_sha256: r.verification_sha256,
    signer_key_id: r.signer_key_id,
    hash: r.hash,
    signature: r.signature,
  };
}

function rowOf(e: DestructionEntry): Record<string, unknown> {
  return {
    ...e,
    destroyed_at: chTime(Date.parse(e.destroyed_at)),
    pass_now: chTime(Date.parse(e.pass_now)),
    verification: canonicalJson(e.verification),
  };
}

export type NewDestructionEntry = Omit<DestructionEntryContent, 'seq' | 'prev_hash' | 'destroyed_at'>;

export class DestructionLog {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: Storage,
    private readonly signer: AnswerSigner,
    private readonly clock: () => number = Date.now,
  ) {}

  get keyId(): string {
    return this.signer.keyId;
  }

  /** Appends entries in order; each gets the real time of writing as `destroyed_at`. */
  append(entries: readonly NewDestructionEntry[]): Promise<DestructionEntry[]> {
    const p = this.queue.then(async () => {
      const out: DestructionEntry[] = [];
      for (const e of entries) out.push(await this.appendOne(e));
      return out;
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async appendOne(content: NewDestructionEntry): Promise<DestructionEntry> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const head = await this.head();
      const entry = signDestructionEntry(
        {
          ...content,
          seq: head.seq + 1,
          prev_hash: head.hash,
          destroyed_at: new Date(Math.max(this.clock(), Date.parse(head.at || '1970-01-01T00:00:00Z'))).toISOString(),
        },
        this.signer,
      );
      await this.storage.insert('retention_records', [rowOf(entry)], { insert_deduplicate: 1, insert_deduplication_token: `retention-record:${entry.seq}` });
      const landed = await this.storage.query<{ hash: string }>(`SELECT hash FROM ${this.storage.table('retention_records')} WHERE seq = {s:UInt64}`, {
        s: entry.seq,
      });
      if (landed.length === 1 && landed[0]!.hash === entry.hash) return entry;
    }
    throw new PipelineError('invariant_broken', 'retention record: could not append after 20 attempts (another writer keeps taking the next entry)');
  }

  /** The newest entry's seq, hash and time (seq 0 and the genesis hash for an empty log). */
  async head(): Promise<{ seq: number; hash: string; at: string }> {
    const rows = await this.storage.query<{ seq: string; hash: string; destroyed_at: string }>(
      `SELECT seq, hash, destroyed_at FROM ${this.storage.table('retention_records')} ORDER BY seq DESC LIMIT 1`,
    );
    const r = rows[0];
    return r ? { seq: Number(r.seq), hash: r.hash, at: isoFromCh(r.destroyed_at) } : { seq: 0, hash: DESTRUCTION_GENESIS, at: '' };
  }

  async entriesOf(month: string): Promise<DestructionEntry[]> {
    const rows = await this.storage.query<RecordRow>(`SELECT * FROM ${this.storage.table('retention_records')} WHERE month = {m:String} ORDER BY seq`, {
      m: month,
    });
    return rows.map(entryOf);
  }

  async all(): Promise<DestructionEntry[]> {
    return (await this.storage.query<RecordRow>(`SELECT * FROM ${this.storage.table('retention_records')} ORDER BY seq`)).map(entryOf);
  }

  /**
   * Entries of `cls` that a pass wrote before destroying (`stage: "begun"`) with no entry of a finished action for the
   * same month (and hold) after them: a pass stopped part-way that no pass has followed up yet. Only that class's
   * entries are read (a small table: a few per month).
   */
  async notFollowedUp(cls: string): Promise<DestructionEntry[]> {
    const entries = (
      await this.storage.query<RecordRow>(`SELECT * FROM ${this.storage.table('retention_records')} WHERE class = {c:String} ORDER BY seq`, { c: cls })
    ).map(entryOf);
    const lastDone = new Map<string, number>();
    for (const e of entries) if (!isBegun(e)) lastDone.set(actionScope(e), e.seq);
    return entries.filter((e) => isBegun(e) && (lastDone.get(actionScope(e)) ?? 0) < e.seq);
  }

  /** The signed report of one month (`cdr retention report --month M`). */
  async report(month: string): Promise<DestructionReport> {
    // The audit trail's head first: a pass writes its entries, then its `done` entry, so the links read after it always
    // reach the head it names (read the other way round, a pass finishing in between made a signed false alarm; found
    // in review). Then the whole chain's links, and the head from them: an entry appended meanwhile is in neither (nor
    // in the month's entries, which stop at the head), so the report is of one moment of the log.
    const auditedHead = await this.auditedHead();
    const rows = await this.storage.query<{ seq: string; month: string; prev_hash: string; hash: string }>(
      `SELECT seq, month, prev_hash, hash FROM ${this.storage.table('retention_records')} ORDER BY seq`,
    );
    const links = rows.map((r) => linkOf({ seq: Number(r.seq), month: r.month, prev_hash: r.prev_hash, hash: r.hash }));
    const last = rows.at(-1);
    const head = last ? { seq: Number(last.seq), hash: last.hash } : { seq: 0, hash: DESTRUCTION_GENESIS };
    const entries = (await this.entriesOf(month)).filter((e) => e.seq <= head.seq);
    return buildDestructionReport({ month, entries, head, links, ...(auditedHead ? { auditedHead } : {}), generatedAt: this.clock(), signer: this.signer });
  }

  /**
   * The head of this record that the audit trail last named: the newest `retention.pass` `done` entry's
   * "retention_records A-B, head H" (retentionPass.ts). Its chain is anchored outside the database, so entries removed
   * from the end of this record are seen against it. Undefined when no pass is in the trail (36 months kept).
   */
  private async auditedHead(): Promise<{ seq: number; hash: string; at: string } | undefined> {
    const rows = await this.storage.query<{ detail: string; at: string }>(
      `SELECT detail, at FROM ${this.storage.table('audit_log')} WHERE action = 'retention.pass' AND outcome = 'done' AND position(detail, 'retention_records ') > 0
       ORDER BY at DESC, seq DESC LIMIT 1`,
    );
    const r = rows[0];
    const m = r ? /retention_records \d+-(\d+), head ([0-9a-f]{64})/.exec(r.detail) : null;
    return r && m ? { seq: Number(m[1]), hash: m[2]!, at: isoFromCh(r.at) } : undefined;
  }

  /** Recomputes the whole stored chain against the given public keys. */
  async verify(keys: readonly KeyObject[]): Promise<{ ok: boolean; entries: number; problems: string[] }> {
    const entries = await this.all();
    const problems = verifyDestructionChain(entries, keys);
    return { ok: problems.length === 0, entries: entries.length, problems };
  }
}
