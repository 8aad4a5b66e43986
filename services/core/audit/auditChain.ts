import { verify as verifySignature, type KeyObject } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../disclosure/canonical.ts';
import { keyIdOf } from '../disclosure/answerIntegrity.ts';
import { addMonthsUtc, startOfMonthUtc } from '../retention/retentionCalendar.ts';

/**
 * The audit trail's integrity, after AWS CloudTrail's log file validation: every entry carries the SHA-256 of its
 * own content including the previous entry's hash (a chain), and signed checkpoints name the newest entry at a
 * moment (periodically, and after each burst of writes). Editing, deleting, inserting or reordering any entry breaks
 * the chain; deleting the newest entries leaves a checkpoint (or the anchor kept outside the database) pointing past
 * the end. Rewriting the whole chain needs the signing key.
 *
 * Entries are kept 36 months (usage data, docs/data-protection.md): whole months expire from the start of the
 * chain. A chain that starts after its first entry is accepted only if the entry before it is old enough to have
 * expired (`prev_at` is part of the hashed content).
 */
export const AUDIT_RETENTION_MONTHS = 36;
export const GENESIS_HASH = '0'.repeat(64);
export const CHECKPOINT_FORMAT = 'cdr-pipeline/audit-checkpoint/1';

/** An audit entry as hashed and stored. Identifiers never appear: only a keyed token of the subject, and its month. */
export interface AuditEntry {
  readonly chain: string;
  readonly seq: number;
  /** ISO 8601 UTC, milliseconds. */
  readonly at: string;
  /** When the previous entry of the chain was written (null for the first). */
  readonly prev_at: string | null;
  readonly actor: string;
  readonly roles: string;
  readonly action: string;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly outcome: string;
  readonly authority: string;
  readonly case_reference: string;
  readonly legal_basis: string;
  readonly request_id: string;
  readonly subject_type: string;
  /** HMAC token of the subject under the month key of `subject_month`: unlinkable once that key is destroyed. */
  readonly subject_token: string;
  readonly subject_month: string;
  readonly rows: number;
  readonly confidential: boolean;
  readonly client_ip: string;
  readonly detail: string;
  readonly prev_hash: string;
  readonly hash: string;
}

export type AuditEntryContent = Omit<AuditEntry, 'hash'>;

export function entryHash(content: AuditEntryContent): string {
  return sha256Hex(canonicalJson(content));
}

export interface AuditCheckpoint {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  /** `write` (after a burst of entries), `periodic`, `start`, `stop`. */
  readonly kind: string;
  readonly key_id: string;
  readonly signature: string;
}

export function checkpointBytes(c: Omit<AuditCheckpoint, 'signature' | 'key_id'>): Buffer {
  return Buffer.from(canonicalJson({ format: CHECKPOINT_FORMAT, chain: c.chain, seq: c.seq, hash: c.hash, at: c.at, kind: c.kind }));
}

export interface ChainProblem {
  readonly chain: string;
  /** The first entry that is wrong or missing. */
  readonly seq: number;
  readonly problem: string;
}

export interface ChainReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly chains: { chain: string; first_seq: number; last_seq: number; entries: number; checkpoints: number; last_checkpoint_at: string | null }[];
  readonly first_bad_entry: ChainProblem | null;
  readonly problems: ChainProblem[];
}

interface ChainState {
  firstSeq: number;
  lastSeq: number;
  lastHash: string;
  lastAt: string | null;
  entries: number;
  seen: Set<number> | undefined;
  checkpoints: Map<number, AuditCheckpoint[]>;
  checkpointCount: number;
  lastCheckpoint: AuditCheckpoint | undefined;
  /** A valid anchor (the newest checkpoint kept outside the database) was given for the chain. */
  anchored: boolean;
}

const MAX_PROBLEMS = 50;

/** Ends the kind of a checkpoint whose anchor file could not be written (AuditTrail signs it so; `requireAnchor`). */
export const NOT_ANCHORED = ' (not anchored)';

/**
 * Verifies chains fed in order: checkpoints and anchors first (`addCheckpoint`), then entries of each chain by
 * ascending seq (`addEntry`, any number of pages), then `finish`.
 */
export class AuditChainVerifier {
  private readonly chains = new Map<string, ChainState>();
  private readonly problems: ChainProblem[] = [];
  private total = 0;
  /** The trusted keys by key id (an id costs a DER export and a hash: once, not once per checkpoint). */
  private readonly keysById: ReadonlyMap<string, KeyObject>;

  constructor(
    trustedKeys: readonly KeyObject[],
    private readonly now: number,
  ) {
    this.keysById = new Map(trustedKeys.map((k) => [keyIdOf(k.export({ type: 'spki', format: 'der' })), k]));
  }

  private state(chain: string): ChainState {
    let s = this.chains.get(chain);
    if (!s) {
      s = {
        firstSeq: 0,
        lastSeq: 0,
        lastHash: GENESIS_HASH,
        lastAt: null,
        entries: 0,
        seen: undefined,
        checkpoints: new Map(),
        checkpointCount: 0,
        lastCheckpoint: undefined,
        anchored: false,
      };
      this.chains.set(chain, s);
    }
    return s;
  }

  private problem(chain: string, seq: number, problem: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ chain, seq, problem });
  }

  /**
   * Checks a checkpoint's signature; a valid one is remembered to compare with the entry it names. `anchor`: the
   * newest checkpoint of a chain as kept outside the database (the anchor file), so deleting the newest entries
   * together with their checkpoints in the database still leaves a signed statement past the end.
   */
  addCheckpoint(c: AuditCheckpoint, where: 'database' | 'anchor' = 'database'): void {
    const what = where === 'anchor' ? `the anchor kept outside the database (${c.at})` : `checkpoint at ${c.at}`;
    const key = this.keysById.get(c.key_id);
    let valid = false;
    if (key) {
      try {
        valid = verifySignature(null, checkpointBytes(c), key, Buffer.from(c.signature, 'base64'));
      } catch {
        valid = false;
      }
    }
    if (!valid) {
      this.problem(c.chain, c.seq, key ? `${what}: its signature does not verify (changed)` : `${what}: signed by an unknown key ${c.key_id}`);
      return;
    }
    const s = this.state(c.chain);
    const cp = where === 'anchor' ? { ...c, kind: `${c.kind} (anchor)` } : c;
    const list = s.checkpoints.get(c.seq) ?? [];
    list.push(cp);
    s.checkpoints.set(c.seq, list);
    s.checkpointCount++;
    if (where === 'anchor') s.anchored = true;
    if (!s.lastCheckpoint || cp.seq > s.lastCheckpoint.seq || (cp.seq === s.lastCheckpoint.seq && cp.at > s.lastCheckpoint.at)) s.lastCheckpoint = cp;
  }

  /** The next entry of its chain, by ascending seq. */
  addEntry(e: AuditEntry): void {
    this.total++;
    const s = this.state(e.chain);
    const { hash, ...content } = e;
    if (s.entries === 0) {
      s.firstSeq = e.seq;
      if (e.seq !== 1) {
        // The chain's head expired (whole months, 36 months on) — or was deleted.
        const prevAt = e.prev_at ? Date.parse(e.prev_at) : NaN;
        const expiredBy = Number.isFinite(prevAt) ? addMonthsUtc(startOfMonthUtc(prevAt), AUDIT_RETENTION_MONTHS) : Infinity;
        if (!(expiredBy <= this.now))
          this.problem(e.chain, 1, `entries 1 to ${e.seq - 1} are missing, and the entry before ${e.seq} is not old enough to have expired`);
      }
    } else if (e.seq === s.lastSeq) {
      this.problem(e.chain, e.seq, `entry ${e.seq} appears more than once (inserted, or two writers on one chain)`);
      s.entries++;
      return;
    } else if (e.seq !== s.lastSeq + 1) {
      this.problem(
        e.chain,
        s.lastSeq + 1,
        `entr${e.seq - s.lastSeq - 1 === 1 ? `y ${s.lastSeq + 1} is` : `ies ${s.lastSeq + 1} to ${e.seq - 1} are`} missing (deleted)`,
      );
    } else if (e.prev_hash !== s.lastHash) {
      this.problem(
        e.chain,
        e.seq,
        `entry ${e.seq} does not follow entry ${s.lastSeq} (its prev_hash is not that entry's hash: reordered, replaced or rewritten)`,
      );
    }
    if (entryHash(content) !== hash) this.problem(e.chain, e.seq, `entry ${e.seq}: its content does not match its hash (changed)`);
    for (const c of s.checkpoints.get(e.seq) ?? []) {
      if (c.hash !== hash)
        this.problem(
          e.chain,
          e.seq,
          `entry ${e.seq}: differs from the signed checkpoint of ${c.at}${c.kind.endsWith('(anchor)') ? ' kept outside the database' : ''} (rewritten)`,
        );
    }
    s.entries++;
    s.lastSeq = e.seq;
    s.lastHash = hash;
    s.lastAt = e.at;
  }

  /**
   * Requires an anchor for `chain` (the chain whose process keeps its anchor in the directory given) once the database
   * holds a checkpoint of it: the process writes the anchor before any checkpoint row, and again at each start. Without
   * it, deleting the newest entries with their checkpoints leaves nothing past the end (found by an outside audit:
   * `rm` of the anchor file, then of the tail, verified ok). Call after the checkpoints and anchors, before `finish`.
   */
  requireAnchor(chain: string, where: string): void {
    const s = this.chains.get(chain);
    if (!s || s.anchored || s.checkpointCount === 0) return;
    // Its newest checkpoint says its anchor could not be written (an unwritable directory): absent, not deleted.
    if (s.lastCheckpoint?.kind.endsWith(NOT_ANCHORED)) return;
    this.problem(
      chain,
      (s.lastCheckpoint?.seq ?? 0) + 1,
      `no anchor of chain ${chain} in ${where}, though the database holds ${s.checkpointCount} signed checkpoint(s) of it: the anchor was deleted, or this is not the directory that chain's process anchors in; entries after ${s.lastCheckpoint?.seq ?? 0} cannot be vouched for`,
    );
  }

  /** Ends verification: a checkpoint past the last entry means the newest entries were deleted. */
  finish(): ChainReport {
    for (const [chain, s] of this.chains) {
      const last = s.lastCheckpoint;
      if (last && last.seq > s.lastSeq) {
        const where = last.kind.endsWith('(anchor)') ? 'the anchor kept outside the database' : 'the signed checkpoint';
        this.problem(
          chain,
          s.lastSeq + 1,
          `entries ${s.lastSeq + 1} to ${last.seq} are missing: ${where} of ${last.at} names entry ${last.seq} (newest entries deleted)`,
        );
      }
    }
    const sorted = [...this.problems].sort((a, b) => (a.chain === b.chain ? a.seq - b.seq : a.chain < b.chain ? -1 : 1));
    return {
      ok: sorted.length === 0,
      entries: this.total,
      chains: [...this.chains.entries()]
        .filter(([, s]) => s.entries > 0 || s.checkpointCount > 0)
        .map(([chain, s]) => ({
          chain,
          first_seq: s.firstSeq,
          last_seq: s.lastSeq,
          entries: s.entries,
          checkpoints: s.checkpointCount,
          last_checkpoint_at: s.lastCheckpoint?.at ?? null,
        })),
      first_bad_entry: sorted[0] ?? null,
      problems: sorted,
    };
  }
}
