import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  AuditChainVerifier,
  checkpointBytes,
  entryHash,
  GENESIS_HASH,
  monthKeyOf,
  NOT_ANCHORED,
  PipelineError,
  tokenOf,
  type AuditCheckpoint,
  type AuditEntry,
  type AuditEntryContent,
  type ChainReport,
  type MonthKey,
  type NormalisedIdentifier,
} from '../../core/index.ts';
import type { Storage } from '../clickhouse/index.ts';
import { chTime, isoFromCh } from '../identity/index.ts';
import type { MonthKeyRing } from '../keys/index.ts';
import type { LoadedSigner } from '../signing/index.ts';
import { makeDirectories } from '../config/directories.ts';

/**
 * The audit trail: one append-only, hash-chained log of every API request, hold, export, retention run and denied or
 * failed access (core/audit/auditChain.ts says how it is verified). This process writes one chain, one entry at a
 * time; after each burst of entries, and every `checkpointMs`, it signs a checkpoint naming its newest entry and keeps
 * the newest checkpoint in a file outside the database too (the anchor), so that even deleting the newest entries and
 * their checkpoints from the database is detected.
 *
 * The subject of an entry (the identifier a request was about) is stored only as a keyed token under the month key of
 * the month the entry was written in, so data-subject requests can find the disclosures about a person for as long as
 * identifiers live, and no longer.
 */
/** Most time a `write` checkpoint waits for its database row (its anchor file is written at once). */
export const DB_CHECKPOINT_INTERVAL_MS = 1_000;

export interface AuditInput {
  readonly actor: string;
  readonly roles?: readonly string[];
  readonly action: string;
  readonly method?: string;
  readonly route?: string;
  readonly status?: number;
  readonly outcome: string;
  readonly authority?: string;
  readonly caseReference?: string;
  readonly legalBasis?: string;
  readonly requestId?: string;
  readonly subject?: NormalisedIdentifier;
  readonly rows?: number;
  readonly confidential?: boolean;
  readonly clientIp?: string;
  readonly detail?: string;
}

export interface AuditTrailOptions {
  readonly storage: Storage;
  readonly keyRing: MonthKeyRing;
  readonly signer: LoadedSigner;
  readonly chain: string;
  /** Where the anchor files live (one per chain); undefined: no anchor (tests of the database alone). */
  readonly anchorDir: string | undefined;
  readonly checkpointMs: number;
  readonly log: Logger;
  readonly clock?: () => number;
}

interface AuditRow {
  chain: string;
  seq: string | number;
  at: string;
  prev_at: string | null;
  actor: string;
  roles: string;
  action: string;
  method: string;
  route: string;
  status: number;
  outcome: string;
  authority: string;
  case_reference: string;
  legal_basis: string;
  request_id: string;
  subject_type: string;
  subject_token: string;
  subject_month: string;
  rows: string | number;
  confidential: boolean | number;
  client_ip: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

interface CheckpointRow {
  chain: string;
  seq: string | number;
  hash: string;
  at: string;
  kind: string;
  key_id: string;
  signature: string;
}

const ANCHOR_PREFIX = 'audit-anchor-';
/** Bounded text fields: an entry never carries free text of unbounded size. */
const MAX_TEXT = 512;

function text(v: string | undefined, max = MAX_TEXT): string {
  return (v ?? '').slice(0, max);
}

export function entryFromRow(r: AuditRow): AuditEntry {
  return {
    chain: r.chain,
    seq: Number(r.seq),
    at: isoFromCh(r.at),
    prev_at: r.prev_at ? isoFromCh(r.prev_at) : null,
    actor: r.actor,
    roles: r.roles,
    action: r.action,
    method: r.method,
    route: r.route,
    status: Number(r.status),
    outcome: r.outcome,
    authority: r.authority,
    case_reference: r.case_reference,
    legal_basis: r.legal_basis,
    request_id: r.request_id,
    subject_type: r.subject_type,
    subject_token: r.subject_token,
    subject_month: r.subject_month,
    rows: Number(r.rows),
    confidential: r.confidential === true || r.confidential === 1,
    client_ip: r.client_ip,
    detail: r.detail,
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

function rowOf(e: AuditEntry): Record<string, unknown> {
  return { ...e, at: chTime(Date.parse(e.at)), prev_at: e.prev_at ? chTime(Date.parse(e.prev_at)) : null };
}

function checkpointFromRow(r: CheckpointRow): AuditCheckpoint {
  return { chain: r.chain, seq: Number(r.seq), hash: r.hash, at: isoFromCh(r.at), kind: r.kind, key_id: r.key_id, signature: r.signature };
}

/** The anchors (newest checkpoint per chain) kept in a directory. */
export function readAnchors(dir: string | undefined): AuditCheckpoint[] {
  if (!dir || !existsSync(dir)) return [];
  const out: AuditCheckpoint[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(ANCHOR_PREFIX) || !name.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as AuditCheckpoint);
    } catch {
      // An unreadable anchor is reported by verification as a missing one would be: it proves nothing.
    }
  }
  return out;
}

/**
 * The keyed token of an identifier in the audit's records (entries' subjects, disclosed parties): one derivation, so a
 * data-subject export finds both by the same tokens.
 */
function auditTokenOf(key: MonthKey, id: { readonly type: string; readonly value: string }): string {
  return tokenOf(key, `audit:${id.type}`, id.value);
}

/** A party of disclosed records (its normalised identifier), other than the subject asked about. */
export interface DisclosedParty {
  readonly type: string;
  readonly value: string;
  /** How many of the records it is a party of. */
  readonly records?: number;
}

export interface AuditPageQuery {
  readonly chain?: string;
  /** Entries after this one, in (chain, seq) order. */
  readonly after?: { readonly chain: string; readonly seq: number };
  readonly limit: number;
  readonly from?: number;
  readonly to?: number;
  readonly action?: string;
  readonly actor?: string;
}

export class AuditTrail {
  private queue: Promise<unknown> = Promise.resolve();
  /** The newest entry asked for, settled either way: reads wait for it (see `settled`). */
  private lastAppend: Promise<unknown> = Promise.resolve();
  /** A deferred checkpoint row being stored beside the queue (appends do not wait for it; `flush` does). */
  private storing: Promise<void> = Promise.resolve();
  private pending = 0;
  private seq = 0;
  private lastHash = GENESIS_HASH;
  private lastAt: string | null = null;
  private checkpointedSeq = -1;
  private lastAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The newest `write` checkpoint, anchored but not yet in the database (at most one interval old). */
  private unstored: AuditCheckpoint | undefined;
  private storeTimer: NodeJS.Timeout | undefined;
  /** `performance.now()` of the last checkpoint row written to the database. */
  private storedAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  private readonly clock: () => number;

  private constructor(private readonly opts: AuditTrailOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /** Opens this process's chain: continues from its newest entry, says so if that is not where its checkpoints end. */
  static async open(opts: AuditTrailOptions): Promise<AuditTrail> {
    const trail = new AuditTrail(opts);
    await trail.resume();
    return trail;
  }

  get chain(): string {
    return this.opts.chain;
  }

  get publicKey(): KeyObject {
    return this.opts.signer.publicKeyObject;
  }

  /** The key this chain's checkpoints are signed with (the retention pass signs its destruction record with it too). */
  get signer(): LoadedSigner {
    return this.opts.signer;
  }

  private async resume(): Promise<void> {
    const { storage, chain } = this.opts;
    const tail = await storage.query<AuditRow>(`SELECT * FROM ${storage.table('audit_log')} WHERE chain = {c:String} ORDER BY seq DESC LIMIT 1`, { c: chain });
    const last = tail[0] ? entryFromRow(tail[0]) : undefined;
    if (last) {
      this.seq = last.seq;
      this.lastHash = last.hash;
      this.lastAt = last.at;
      this.lastAtMs = Date.parse(last.at);
    }
    // If the newest signed checkpoint (database or anchor) is past the tail, entries were deleted while we were away:
    // continue the chain (the break stays detectable) and write down that it was seen.
    const cps = await storage.query<CheckpointRow>(
      `SELECT * FROM ${storage.table('audit_checkpoints')} WHERE chain = {c:String} ORDER BY seq DESC, at DESC LIMIT 1`,
      {
        c: chain,
      },
    );
    const anchors = readAnchors(this.opts.anchorDir).filter((a) => a.chain === chain);
    const newest = [...cps.map(checkpointFromRow), ...anchors].sort((a, b) => b.seq - a.seq)[0];
    // The anchor is written before any checkpoint row: checkpoints without it mean it was deleted — or that the anchor
    // directory changed, or (a chain shared by CLI runs) that this host never held it. Said in the log, not written into
    // the chain, where a false alarm would stay for 36 months (found in review); `verify` names it for its own chain.
    const newestRow = cps[0] ? checkpointFromRow(cps[0]) : undefined;
    if (this.opts.anchorDir !== undefined && anchors.length === 0 && newestRow && !newestRow.kind.endsWith(NOT_ANCHORED))
      this.opts.log.warn(
        { chain, anchor_dir: this.opts.anchorDir, checkpoint_seq: newestRow.seq },
        'audit trail: no anchor of this chain in the anchor directory, though the database holds its checkpoints (deleted, or the directory changed)',
      );
    if (newest && newest.seq > this.seq) {
      this.opts.log.error({ chain, checkpoint_seq: newest.seq, tail_seq: this.seq }, 'audit trail: entries after the tail are missing (deleted?)');
      await this.append({
        actor: 'system',
        action: 'audit.break_detected',
        outcome: 'break',
        detail: `at start-up the chain ends at entry ${this.seq} but a signed checkpoint of ${newest.at} names entry ${newest.seq}`,
      });
    }
    await this.checkpoint('start');
    if (this.opts.checkpointMs > 0) {
      this.timer = setInterval(() => {
        void this.checkpoint('periodic').catch((err: unknown) => this.opts.log.warn({ err }, 'audit checkpoint failed'));
      }, this.opts.checkpointMs);
      this.timer.unref();
    }
  }

  /** Appends one entry (serialised: one writer per chain). Resolves once it is stored. */
  append(input: AuditInput): Promise<AuditEntry> {
    this.pending++;
    const p = this.queue.then(async () => {
      try {
        const entry = await this.write(input);
        return entry;
      } finally {
        this.pending--;
      }
    });
    // The queue never rejects: a failed entry fails its own request (fail closed), and a failed checkpoint is logged
    // and covered by the next one. (A rejected queue used to fail the next request, leave `pending` counted up for good
    // — so no burst was ever checkpointed again — and surface as an unhandled rejection.)
    // The last entry of a burst checkpoints it, also when that entry itself failed (the ones before it were stored).
    const checkpointIfIdle = async (): Promise<void> => {
      if (this.pending === 0) await this.checkpointNow('write');
    };
    this.queue = p.then(checkpointIfIdle, checkpointIfIdle).catch((err: unknown) => this.opts.log.warn({ err }, 'audit checkpoint failed'));
    this.lastAppend = p.catch(() => undefined);
    return p;
  }

  /**
   * Waits for every entry asked for so far (stored or failed). Reads of the trail in this process call it first, so
   * an entry appended without waiting (how a disclosure ended, written after its last byte) is found by the next read.
   */
  async settled(): Promise<void> {
    await this.lastAppend;
  }

  /**
   * Waits for every entry and checkpoint asked for so far, and stores the newest checkpoint in the database too (a row
   * the database refuses is logged, not thrown: the anchor names that entry).
   */
  async flush(): Promise<void> {
    const storing = this.storing;
    this.queue = this.queue
      .then(() => storing)
      .then(() => this.storeUnstored())
      .catch((err: unknown) => this.opts.log.warn({ err }, 'audit checkpoint failed'));
    await this.queue;
  }

  private async subjectToken(id: NormalisedIdentifier | undefined, now: number): Promise<{ token: string; month: string }> {
    if (!id) return { token: '', month: '' };
    const month = monthKeyOf(now);
    const key = await this.opts.keyRing.keyForWriting(month, now);
    if (!key) return { token: '', month: '' };
    return { token: auditTokenOf(key, id), month };
  }

  private async write(input: AuditInput): Promise<AuditEntry> {
    // Strictly increasing times: the chain's order is also its time order.
    const now = Math.max(this.clock(), this.lastAtMs + 1);
    const subject = await this.subjectToken(input.subject, now);
    const content: AuditEntryContent = {
      chain: this.opts.chain,
      seq: this.seq + 1,
      at: new Date(now).toISOString(),
      prev_at: this.lastAt,
      actor: text(input.actor, 128),
      roles: text((input.roles ?? []).join(','), 256),
      action: text(input.action, 64),
      method: text(input.method, 16),
      route: text(input.route, 256),
      status: input.status ?? 0,
      outcome: text(input.outcome, 64),
      authority: text(input.authority),
      case_reference: text(input.caseReference),
      legal_basis: text(input.legalBasis),
      request_id: text(input.requestId, 128),
      subject_type: input.subject ? input.subject.type : '',
      subject_token: subject.token,
      subject_month: subject.month,
      rows: input.rows ?? 0,
      confidential: input.confidential ?? false,
      client_ip: text(input.clientIp, 64),
      detail: text(input.detail, 2048),
      prev_hash: this.lastHash,
    };
    const entry: AuditEntry = { ...content, hash: entryHash(content) };
    await this.opts.storage.insert('audit_log', [rowOf(entry)]);
    this.seq = entry.seq;
    this.lastHash = entry.hash;
    this.lastAt = entry.at;
    this.lastAtMs = now;
    return entry;
  }

  /** Signs and stores a checkpoint of the newest entry (queued behind pending entries). */
  checkpoint(kind: 'start' | 'periodic' | 'stop' | 'write'): Promise<void> {
    const p = this.queue.then(() => this.checkpointNow(kind));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async checkpointNow(kind: string): Promise<void> {
    if (kind === 'write' && this.checkpointedSeq === this.seq) return;
    const at = new Date(Math.max(this.clock(), this.lastAtMs)).toISOString();
    const signed = (k: string): AuditCheckpoint => {
      const body = { chain: this.opts.chain, seq: this.seq, hash: this.lastHash, at, kind: k };
      return { ...body, key_id: this.opts.signer.keyId, signature: this.opts.signer.sign(checkpointBytes(body)).toString('base64') };
    };
    let cp = signed(kind);
    // The anchor outside the database names the newest entry after every burst: deleting the newest entries is
    // detected whatever the database holds. The database row of a `write` checkpoint waits up to
    // DB_CHECKPOINT_INTERVAL_MS for the next burst's: each row is a small insert (~15 ms here) that every request used
    // to pay, and a verification checks every row's signature. Between rows the hash chain itself still names any
    // changed, missing or inserted entry; a rewrite of the chain from an entry on is caught by the next checkpoint
    // (database or anchor). ADR 0022.
    let anchored = true;
    try {
      this.writeAnchor(cp);
    } catch (err) {
      // The anchor directory cannot be written (full, permissions): said loudly, and the row is stored at once — marked
      // as not anchored, so that a verification does not read the anchor's absence as its deletion (found in review).
      anchored = false;
      this.opts.log.error({ err, chain: cp.chain, seq: cp.seq }, 'audit: the anchor file could not be written');
      cp = signed(`${kind}${NOT_ANCHORED}`);
    }
    this.checkpointedSeq = this.seq;
    // Deferred only while the trail is open and anchored: after close() (a write still in flight then) the row is
    // stored at once.
    if (kind === 'write' && anchored && !this.closed && performance.now() - this.storedAt < DB_CHECKPOINT_INTERVAL_MS) {
      this.unstored = cp;
      this.storeTimer ??= setTimeout(() => {
        this.storeTimer = undefined;
        if (this.closed) return; // the stop checkpoint, stored by close(), names the same entry or a newer one
        // Beside the queue: the row names an entry already stored, so the next entries need not wait for it (under
        // ingest this insert's p99 was ~0.3 s, and a request's write-ahead entry queued behind it).
        this.storing = this.storing.then(() => this.storeUnstored()).catch((err: unknown) => this.opts.log.warn({ err }, 'audit checkpoint failed'));
      }, DB_CHECKPOINT_INTERVAL_MS).unref();
      return;
    }
    this.unstored = cp; // until stored: a failed insert is retried by the next flush, or replaced by a newer checkpoint
    await this.store(cp);
  }

  private async storeUnstored(): Promise<void> {
    if (this.unstored) await this.store(this.unstored);
  }

  private async store(cp: AuditCheckpoint): Promise<void> {
    await this.opts.storage.insert('audit_checkpoints', [{ ...cp, at: chTime(Date.parse(cp.at)) }]);
    this.storedAt = performance.now();
    if (this.unstored && this.unstored.seq <= cp.seq) this.unstored = undefined;
  }

  private writeAnchor(cp: AuditCheckpoint): void {
    const dir = this.opts.anchorDir;
    if (!dir) return;
    makeDirectories(dir, 0o700);
    const path = join(dir, `${ANCHOR_PREFIX}${cp.chain}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(cp)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  }

  /** Stops the periodic checkpoints and closes the chain with a `stop` checkpoint. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.storeTimer) clearTimeout(this.storeTimer);
    this.storeTimer = undefined;
    await this.checkpoint('stop').catch((err: unknown) => this.opts.log.warn({ err }, 'audit: closing checkpoint failed'));
    await this.storing;
  }

  /** A page of entries, oldest first. */
  async page(q: AuditPageQuery): Promise<AuditEntry[]> {
    await this.settled();
    return readEntries(this.opts.storage, q);
  }

  /** Whether parties disclosed at `at` can be recorded: that month's key exists or can be made (not destroyed). */
  async canRecordParties(at: number): Promise<boolean> {
    return (await this.opts.keyRing.keyForWriting(monthKeyOf(at), at)) !== null;
  }

  /**
   * Records that the answer of `requestId` gave out these parties (the other parties of the subject's records): a
   * keyed token of each under the month key of `at`, as an entry's subject token, so a data-subject export finds the
   * disclosure by the same tokens. Called before those records leave.
   */
  async recordParties(requestId: string, parties: readonly DisclosedParty[], at: number): Promise<void> {
    if (parties.length === 0) return;
    const month = monthKeyOf(at);
    const key = await this.opts.keyRing.keyForWriting(month, at);
    if (!key) throw new PipelineError('key_invalid', `no month key of ${month} to record the parties of a disclosure with`);
    const rows = parties.map((p) => ({
      request_id: requestId,
      at: chTime(at),
      party_type: p.type,
      party_token: auditTokenOf(key, p),
      party_month: month,
      records: p.records ?? 0,
    }));
    await this.opts.storage.insert('disclosure_parties', rows);
  }

  /** Requests whose answers gave out a party with one of these tokens (`recordParties`), with its records there. */
  async requestsDisclosing(partyTokens: readonly { month: string; token: string }[]): Promise<Map<string, number>> {
    if (partyTokens.length === 0) return new Map();
    const { storage } = this.opts;
    const rows = await storage.query<{ request_id: string; records: string }>(
      // The IN conditions use the table's key (party_month, party_token); has() keeps the pairs exact (found in review:
      // has() alone read the whole table).
      `SELECT request_id, sum(records) records FROM ${storage.table('disclosure_parties')}
       WHERE party_month IN {months:Array(String)} AND party_token IN {tokens:Array(String)}
         AND has(arrayZip({months:Array(String)}, {tokens:Array(String)}), (party_month, party_token))
       GROUP BY request_id ORDER BY min(at), request_id`,
      { months: partyTokens.map((t) => t.month), tokens: partyTokens.map((t) => t.token) },
    );
    return new Map(rows.map((r) => [r.request_id, Number(r.records)]));
  }

  /** The entries of these requests (by request id) with these actions, oldest first. */
  async ofRequests(requestIds: readonly string[], actions: readonly string[]): Promise<AuditEntry[]> {
    if (requestIds.length === 0) return [];
    await this.settled();
    const { storage } = this.opts;
    const rows = await storage.query<AuditRow>(
      `SELECT * FROM ${storage.table('audit_log')} WHERE request_id IN {ids:Array(String)} AND action IN {actions:Array(String)} ORDER BY at, chain, seq`,
      { ids: [...requestIds], actions: [...actions] },
    );
    return rows.map(entryFromRow);
  }

  /** Entries written about a subject while the given month keys lived (data-subject access). */
  async about(subjectTokens: readonly { month: string; token: string }[], actions: readonly string[]): Promise<AuditEntry[]> {
    if (subjectTokens.length === 0) return [];
    await this.settled();
    const { storage } = this.opts;
    const rows = await storage.query<AuditRow>(
      `SELECT * FROM ${storage.table('audit_log')}
       WHERE has(arrayZip({months:Array(String)}, {tokens:Array(String)}), (subject_month, subject_token)) AND action IN {actions:Array(String)}
       ORDER BY at, chain, seq`,
      { months: subjectTokens.map((p) => p.month), tokens: subjectTokens.map((p) => p.token), actions },
    );
    return rows.map(entryFromRow);
  }

  /**
   * Which of these months (YYYY-MM) have had their key destroyed (a tombstone, asked of the database): requests made in
   * them carry a subject token under that key, or none once it is gone, so none of them can be found by an identifier.
   */
  destroyedMonths(months: readonly string[]): Promise<string[]> {
    return months.length === 0 ? Promise.resolve([]) : this.opts.keyRing.anyDestroyed(months);
  }

  /** The subject tokens an identifier has under every live month key (for finding entries about it). */
  async subjectTokensOf(id: NormalisedIdentifier, months: readonly string[]): Promise<{ month: string; token: string }[]> {
    const out: { month: string; token: string }[] = [];
    for (const month of months) {
      const key = await this.opts.keyRing.existingKey(month);
      if (key) out.push({ month, token: auditTokenOf(key, id) });
    }
    return out;
  }

  /** Recomputes every chain in the database against its checkpoints and the anchors. */
  async verify(now = this.clock()): Promise<ChainReport & { anchors: number }> {
    await this.flush();
    return verifyAuditTrail(this.opts.storage, [this.opts.signer.publicKeyObject], this.opts.anchorDir, now, this.opts.chain);
  }
}

export async function readEntries(storage: Storage, q: AuditPageQuery): Promise<AuditEntry[]> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: q.limit };
  if (q.chain !== undefined) {
    where.push('chain = {chain:String}');
    params['chain'] = q.chain;
  }
  if (q.after !== undefined) {
    where.push('(chain, seq) > ({afterChain:String}, {afterSeq:UInt64})');
    params['afterChain'] = q.after.chain;
    params['afterSeq'] = q.after.seq;
  }
  if (q.from !== undefined) {
    where.push("at >= {from:DateTime64(3, 'UTC')}");
    params['from'] = chTime(q.from);
  }
  if (q.to !== undefined) {
    where.push("at < {to:DateTime64(3, 'UTC')}");
    params['to'] = chTime(q.to);
  }
  if (q.action !== undefined) {
    where.push('action = {action:String}');
    params['action'] = q.action;
  }
  if (q.actor !== undefined) {
    where.push('actor = {actor:String}');
    params['actor'] = q.actor;
  }
  const rows = await storage.query<AuditRow>(
    `SELECT * FROM ${storage.table('audit_log')} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY chain, seq LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map(entryFromRow);
}

const VERIFY_PAGE = 5_000;

/** Verifies every chain in the database: checkpoints and anchors first, then entries page by page. */
export async function verifyAuditTrail(
  storage: Storage,
  trustedKeys: readonly KeyObject[],
  anchorDir: string | undefined,
  now: number,
  /** The chain whose process keeps its anchor in `anchorDir`: an anchor is required for it (`requireAnchor`). */
  anchoredChain?: string,
): Promise<ChainReport & { anchors: number }> {
  const verifier = new AuditChainVerifier(trustedKeys, now);
  const cps = await storage.query<CheckpointRow>(`SELECT * FROM ${storage.table('audit_checkpoints')} ORDER BY chain, seq, at`);
  for (const c of cps) verifier.addCheckpoint(checkpointFromRow(c));
  const anchors = readAnchors(anchorDir);
  for (const a of anchors) verifier.addCheckpoint(a, 'anchor');
  if (anchorDir !== undefined && anchoredChain !== undefined) verifier.requireAnchor(anchoredChain, anchorDir);
  const chains = await storage.query<{ chain: string }>(`SELECT DISTINCT chain FROM ${storage.table('audit_log')} ORDER BY chain`);
  for (const { chain } of chains) {
    let after = -1;
    for (;;) {
      const rows = await storage.query<AuditRow>(
        `SELECT * FROM ${storage.table('audit_log')} WHERE chain = {c:String} AND seq > {after:Int64} ORDER BY seq LIMIT {n:UInt32}`,
        { c: chain, after, n: VERIFY_PAGE },
      );
      for (const r of rows) verifier.addEntry(entryFromRow(r));
      if (rows.length < VERIFY_PAGE) break;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }
  return { ...verifier.finish(), anchors: anchors.length };
}

/** The public key of a PEM text (for verification in another process). */
export function publicKeyFromPem(pem: string): KeyObject {
  return createPublicKey(pem);
}
