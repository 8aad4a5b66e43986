import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../disclosure/canonical.ts';
import { keyIdOf, type AnswerSigner } from '../disclosure/answerIntegrity.ts';

/**
 * The destruction record: what the retention pass destroyed, when, by whom, and how it checked, as a hash-chained log
 * of entries each signed with Ed25519 — so that a third party (an auditor, a regulator) can check a month's report
 * offline, and an edit of the stored log (a changed row count, a removed entry, a back-dated time) is detected.
 *
 * Entry hash = SHA-256 of the entry's canonical JSON (RFC 8785) without `hash` and `signature`; each entry names the
 * hash of the one before (`prev_hash`, a run of 64 zeros for the first). Signature = Ed25519 over
 * `cdr-pipeline/retention-entry/1\n<hash>`. A report of one month carries that month's entries, the signed head of the
 * chain when the report was made, the public key, and its own signature over everything else.
 *
 * Pure: signing takes a signer, verification takes public keys.
 */
export const DESTRUCTION_ENTRY_FORMAT = 'cdr-pipeline/retention-entry/1';
export const DESTRUCTION_REPORT_FORMAT = 'cdr-pipeline/retention-report/1';
export const DESTRUCTION_GENESIS = '0'.repeat(64);

export const destructionEntrySchema = z
  .object({
    seq: z.number().int().min(1),
    prev_hash: z.string(),
    /** The real time the entry was written, after what it records was done and checked (never the pass's `now`). */
    destroyed_at: z.string(),
    /** The pass's clock: the instant the retention rules were applied at (a drill may move it). */
    pass_now: z.string(),
    run_id: z.string(),
    actor: z.string(),
    /** identifiers | traffic | usage | held | pass (one per pass: what it checked, including the Kafka topics). */
    class: z.string(),
    month: z.string(),
    /** Ids of the keys destroyed (month keys, a hold's key); never key material. */
    key_ids: z.array(z.string()),
    rows: z.number().int().min(0),
    keys_destroyed: z.number().int().min(0),
    holds_honoured: z.number().int().min(0),
    verified: z.boolean(),
    /** What verification checked, with the numbers it found (rows left, parts on disk, …). */
    verification: z.record(z.string(), z.unknown()),
    verification_sha256: z.string(),
    signer_key_id: z.string(),
    hash: z.string(),
    signature: z.string(),
  })
  // Strict, as the other two: a key the signature does not cover is a change, not something to drop before checking
  // (found from outside: a report with an added `note` verified "intact").
  .strict();
export type DestructionEntry = z.infer<typeof destructionEntrySchema>;
export type DestructionEntryContent = Omit<DestructionEntry, 'hash' | 'signature' | 'verification_sha256' | 'signer_key_id'>;

export function destructionEntryHash(e: Omit<DestructionEntry, 'hash' | 'signature'>): string {
  return sha256Hex(canonicalJson(e));
}

function entrySigningBytes(hash: string): Buffer {
  return Buffer.from(`${DESTRUCTION_ENTRY_FORMAT}\n${hash}`);
}

/** Completes an entry: the digest of its verification, its hash and its signature. */
export function signDestructionEntry(content: DestructionEntryContent, signer: AnswerSigner): DestructionEntry {
  const body = { ...content, verification_sha256: sha256Hex(canonicalJson(content.verification)), signer_key_id: signer.keyId };
  const hash = destructionEntryHash(body);
  return { ...body, hash, signature: signer.sign(entrySigningBytes(hash)).toString('base64') };
}

export const destructionHeadSchema = z.object({ seq: z.number().int().min(0), hash: z.string(), at: z.string(), signature: z.string() }).strict();
export type DestructionHead = z.infer<typeof destructionHeadSchema>;

function headSigningBytes(h: Omit<DestructionHead, 'signature'>): Buffer {
  return Buffer.from(canonicalJson({ format: `${DESTRUCTION_REPORT_FORMAT}#head`, ...h }));
}

/**
 * One entry of the whole chain as a report carries it: enough to follow the links from the first entry to the head
 * and to check each one's signature, without the content of other months' entries.
 */
export const destructionLinkSchema = z.object({ seq: z.number().int().min(1), month: z.string(), prev: z.string(), hash: z.string() }).strict();
export type DestructionLink = z.infer<typeof destructionLinkSchema>;

/**
 * How many hex digits of each hash a link carries: a pass every hour adds ~8,760 entries a year, and every report
 * carries them all (found in review: ~300 bytes a link, whole, was ~3 MB a year). 64 bits: filling a gap needs an entry
 * whose hash has the removed one's prefix, a second preimage no one computes; the report's signature covers the rest.
 */
export const LINK_HASH_DIGITS = 16;

/** An entry as a link of the chain (DestructionLog.report). */
export function linkOf(e: Pick<DestructionEntry, 'seq' | 'month' | 'prev_hash' | 'hash'>): DestructionLink {
  return { seq: e.seq, month: e.month, prev: e.prev_hash.slice(0, LINK_HASH_DIGITS), hash: e.hash.slice(0, LINK_HASH_DIGITS) };
}
const short = (hash: string): string => hash.slice(0, LINK_HASH_DIGITS);

const reportMembers = {
  format: z.literal(DESTRUCTION_REPORT_FORMAT),
  month: z.string().regex(/^\d{4}-\d{2}$/),
  generated_at: z.string(),
  hash: z.literal('SHA-256'),
  canonicalization: z.literal('RFC 8785'),
  signature_algorithm: z.literal('Ed25519'),
  key_id: z.string(),
  public_key: z.string(),
  /** Every entry of the chain about this month, oldest first. */
  entries: z.array(destructionEntrySchema),
  /** The newest entry of the whole chain when the report was made, signed. */
  chain_head: destructionHeadSchema,
  /**
   * Every entry of the whole chain, first to head, as links (reports made since 2026-12-06): a removed entry of any
   * month breaks them. Before, a report carried its month's entries alone, and an entry deleted from the stored log
   * went unseen (found from outside: a deleted "held purge" entry, report and check both "intact").
   */
  chain_links: z.array(destructionLinkSchema).optional(),
  /**
   * The chain's head as the audit trail last named it (a real pass's `retention.pass` `done` entry), when the report
   * was made: entries removed from the end of the stored record leave a shorter whole chain, which the links alone
   * cannot tell; the audit trail, chained and anchored outside the database, still names the head they came to.
   */
  audited_head: z
    .object({ seq: z.number().int().min(0), hash: z.string(), at: z.string() })
    .strict()
    .optional(),
  /** A sentence a reader can act on: what the report says and how to check it. */
  summary: z.string(),
  signature: z.string(),
};
export const destructionReportSchema = z.object(reportMembers).strict();
export type DestructionReport = z.infer<typeof destructionReportSchema>;

function reportSigningBytes(r: Omit<DestructionReport, 'signature'>): Buffer {
  return Buffer.from(canonicalJson(r));
}

/** A month's report: its entries, the signed head of the chain, signed as a whole. */
/**
 * An entry a pass wrote before destroying (`verification.stage` "begun"): what it was about to do, nothing done yet —
 * so it claims no rows or keys (one that does is no begun entry, and the offline check treats it as any other).
 */
export function isBegun(e: Pick<DestructionEntry, 'verification' | 'rows' | 'keys_destroyed'>): boolean {
  return e.verification['stage'] === 'begun' && e.rows === 0 && e.keys_destroyed === 0;
}

/** What an action acts on: its class, month and (for a released hold) hold. A begun entry and its closing one share it. */
export function actionScope(e: Pick<DestructionEntry, 'class' | 'month' | 'verification'>): string {
  return `${e.class}\u0000${e.month}\u0000${JSON.stringify(e.verification['hold_id'] ?? null)}`;
}

/**
 * What the finished actions did, class by class, and which were not verified. Before 2026-12-06 it named identifiers
 * alone: a month whose released hold's copies were purged read as if nothing else had happened (found by an auditor).
 */
function doneWords(done: readonly DestructionEntry[]): string {
  const verifiedAt = (cls: string): { n: number; at: string } | undefined => {
    const v = done.filter((e) => e.class === cls && e.verified);
    return v.length > 0 ? { n: v.length, at: v[v.length - 1]!.destroyed_at } : undefined;
  };
  const parts: string[] = [];
  const ids = verifiedAt('identifiers');
  if (ids) {
    // Active holds' copies outlive the month's key (each sealed under its hold's own key): said, so that "destroyed"
    // is not read as "no copy anywhere" (found from outside).
    const latest = done.filter((e) => e.class === 'identifiers' && e.verified).at(-1)!;
    const kept =
      latest.holds_honoured > 0
        ? `; ${latest.holds_honoured} legal hold(s) covering the month were active at that pass: their copies of its records, if any, are kept under each hold's own key until the hold is released and a pass purges them`
        : '';
    parts.push(`identifiers destroyed and verified at ${ids.at}${kept}`);
  }
  const held = done.filter((e) => e.class === 'held' && e.verified);
  if (held.length > 0) {
    const holds = new Set(held.map((e) => JSON.stringify(e.verification['hold_id'] ?? e.seq))).size;
    parts.push(`the copies of ${holds} released legal hold(s) purged and verified at ${held[held.length - 1]!.destroyed_at}`);
  }
  const traffic = verifiedAt('traffic');
  if (traffic) parts.push(`traffic records dropped and verified at ${traffic.at}`);
  const usage = verifiedAt('usage');
  if (usage) parts.push(`client addresses cleared and verified at ${usage.at}`);
  const unverified = done.filter((e) => !e.verified && e.class !== 'pass');
  if (unverified.length > 0)
    parts.push(
      `${unverified.length} action(s) NOT verified (${[...new Set(unverified.map((e) => `${e.class} ${e.month}`))].join(', ')}): see their verification`,
    );
  // A drill moves the pass's clock (`cdr retention run --now`, CDR_ALLOW_CLOCK_OVERRIDE): said in the summary, so that
  // a drill's signed report is not read as destruction on schedule (found from outside: "destroyed and verified at"
  // a month before the month's cutoff, the moved clock only inside the entries). Entries written since late 2026-12-06 say
  // so themselves (`verification.clock_moved`), however little the clock moved; older ones are told by a day's gap.
  const moved = done.filter((e) => e.verification['clock_moved'] === true || Math.abs(Date.parse(e.pass_now) - Date.parse(e.destroyed_at)) > MOVED_CLOCK_MS);
  if (moved.length > 0) {
    const last = moved.at(-1)!;
    parts.push(
      `${moved.length} action(s) by a pass whose clock was MOVED (a drill): rules applied as at ${last.pass_now}, carried out at ${last.destroyed_at} — not destruction on schedule`,
    );
  }
  return parts.map((p) => `; ${p}`).join('');
}

/** An entry without `clock_moved` (written before late 2026-12-06) whose pass's clock is this far from when it was written was moved: no pass runs for a day. */
const MOVED_CLOCK_MS = 24 * 3_600_000;

export function buildDestructionReport(input: {
  month: string;
  entries: readonly DestructionEntry[];
  head: { seq: number; hash: string };
  /** Every entry of the stored chain as a link, oldest first (DestructionLog.report reads them). */
  links?: readonly DestructionLink[];
  /** The head the audit trail last named (DestructionLog.report reads it). */
  auditedHead?: { seq: number; hash: string; at: string };
  generatedAt: number;
  signer: AnswerSigner;
}): DestructionReport {
  const { month, entries, signer } = input;
  // Said in the summary too, not left to the check: the stored record this report was made from is not whole.
  const broken = input.links ? linkProblems(input.links, input.head, entries, month, input.auditedHead) : [];
  const at = new Date(input.generatedAt).toISOString();
  const headBody = { seq: input.head.seq, hash: input.head.hash, at };
  const begun = entries.filter(isBegun);
  const done = entries.filter((e) => !isBegun(e));
  const closed = new Set(done.map((d) => `${d.run_id}\u0000${actionScope(d)}`));
  const unfinished = begun.filter((b) => !closed.has(`${b.run_id}\u0000${actionScope(b)}`));
  const summary =
    entries.length === 0
      ? `No retention action is recorded for ${month}${broken.length > 0 ? `. THE STORED RECORD IS NOT WHOLE: ${broken.join('; ')}` : ''}.`
      : `${done.length} retention action(s) recorded for ${month}` +
        doneWords(done) +
        (unfinished.length > 0
          ? `; ${unfinished.length} action(s) begun by a pass that did not record its end (stopped part-way), first at ${unfinished[0]!.destroyed_at}: ` +
            `what it was about to destroy is in their \`planned_rows\`, what was left in the \`before\` counts of the entries after them`
          : '') +
        (broken.length > 0 ? `. THE STORED RECORD IS NOT WHOLE: ${broken.join('; ')}` : '') +
        `. Check offline with: cdr retention verify-report FILE --public-key KEY.pem (the key of ${signer.keyId}).`;
  const body: Omit<DestructionReport, 'signature'> = {
    format: DESTRUCTION_REPORT_FORMAT,
    month,
    generated_at: at,
    hash: 'SHA-256',
    canonicalization: 'RFC 8785',
    signature_algorithm: 'Ed25519',
    key_id: signer.keyId,
    public_key: signer.publicKey,
    entries: [...entries],
    chain_head: { ...headBody, signature: signer.sign(headSigningBytes(headBody)).toString('base64') },
    ...(input.links ? { chain_links: [...input.links] } : {}),
    ...(input.auditedHead ? { audited_head: { ...input.auditedHead } } : {}),
    summary,
  };
  return { ...body, signature: signer.sign(reportSigningBytes(body)).toString('base64') };
}

export interface DestructionReportCheck {
  readonly ok: boolean;
  /** False when the document is no retention report at all (another document, a truncated file): nothing was checked. */
  readonly report: boolean;
  readonly month: string | undefined;
  readonly entries: number;
  readonly key_id: string | undefined;
  /** Whether the signatures were checked against a key the verifier trusts (not only the one the report carries). */
  readonly trusted_key: boolean;
  /** Whether the report carried the whole chain's links (reports made since 2026-12-06), and they were followed. */
  readonly whole_chain?: boolean;
  readonly problems: string[];
}

function idOf(key: KeyObject): string {
  return keyIdOf(key.export({ type: 'spki', format: 'der' }));
}

function verifies(data: Buffer, key: KeyObject, signature: string): boolean {
  try {
    return verifySignature(null, data, key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/**
 * Checks a report offline: its form, its own signature, each entry's verification digest, hash, signature and month,
 * the links between consecutive entries, and the signed chain head (it must not be older than the newest entry).
 * `trustedKeys`: public keys to check against; without one, the key the report carries is used and the answer says so.
 */
export function verifyDestructionReport(doc: unknown, trustedKeys: readonly KeyObject[] = []): DestructionReportCheck {
  // A report with a member added after signing is a changed report (exit 1, the member named), not "no report" (found
  // from outside: an added `note` said "not a retention report — nothing was checked", exit 2).
  const added = addedMembers(doc);
  const parsed = added.length > 0 ? destructionReportSchema.safeParse(stripAdded(doc)) : destructionReportSchema.safeParse(doc);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || 'report'}: ${i.message}`);
    return {
      ok: false,
      report: false,
      month: undefined,
      entries: 0,
      key_id: undefined,
      trusted_key: false,
      problems: [`not a retention report: ${problems.join('; ')}`],
    };
  }
  const report = parsed.data;
  const problems: string[] = [...added];
  let key: KeyObject | undefined;
  let trusted = false;
  if (trustedKeys.length > 0) {
    key = trustedKeys.find((k) => idOf(k) === report.key_id);
    if (!key) problems.push(`signed by ${report.key_id}, which is none of the trusted keys (${trustedKeys.map((k) => idOf(k)).join(', ')})`);
    else trusted = true;
  } else {
    try {
      key = createPublicKey({ key: Buffer.from(report.public_key, 'base64'), format: 'der', type: 'spki' });
      if (idOf(key) !== report.key_id) problems.push('the public key in the report is not the one its key_id names');
    } catch {
      problems.push('the public key in the report is not an SPKI Ed25519 key');
    }
  }
  if (key) {
    const { signature, ...body } = report;
    if (!verifies(reportSigningBytes(body), key, signature)) problems.push('the report signature does not verify: the report was changed after it was signed');
    const { signature: headSignature, ...headBody } = report.chain_head;
    if (!verifies(headSigningBytes(headBody), key, headSignature)) problems.push('the chain head signature does not verify');
  }
  let previous: DestructionEntry | undefined;
  for (const e of report.entries) {
    const { hash, signature, ...content } = e;
    const name = `entry ${e.seq} (${e.class} ${e.month})`;
    if (e.month !== report.month) problems.push(`${name} is about another month than the report (${report.month})`);
    if (sha256Hex(canonicalJson(e.verification)) !== e.verification_sha256) problems.push(`${name}: its verification details do not match their digest`);
    if (destructionEntryHash(content) !== hash) problems.push(`${name}: its content does not match its hash (changed: rows, time, key or verification)`);
    if (e.signer_key_id !== report.key_id && trustedKeys.length === 0) problems.push(`${name}: signed by ${e.signer_key_id}, not by the report's key`);
    const entryKey = e.signer_key_id === report.key_id ? key : trustedKeys.find((k) => idOf(k) === e.signer_key_id);
    if (!entryKey) {
      if (e.signer_key_id !== report.key_id && trustedKeys.length > 0)
        problems.push(`${name}: signed by ${e.signer_key_id}, which is none of the trusted keys`);
    } else if (!verifies(entrySigningBytes(hash), entryKey, signature)) {
      problems.push(`${name}: its signature does not verify`);
    }
    if (previous) {
      if (e.seq <= previous.seq) problems.push(`${name}: out of order after entry ${previous.seq}`);
      else if (e.seq === previous.seq + 1 && e.prev_hash !== previous.hash) problems.push(`${name}: does not follow entry ${previous.seq} (chain broken)`);
    }
    // A begun entry is written before anything is destroyed: nothing verified yet, by design.
    if (!e.verified && e.class !== 'pass' && !isBegun(e)) problems.push(`${name}: the pass recorded that its verification failed`);
    previous = e;
  }
  if (previous && report.chain_head.seq < previous.seq)
    problems.push(`the signed chain head (entry ${report.chain_head.seq}) is older than the report's newest entry ${previous.seq}`);
  if (report.chain_links) {
    problems.push(...linkProblems(report.chain_links, report.chain_head, report.entries, report.month, report.audited_head));
  }
  return {
    ok: problems.length === 0,
    report: true,
    month: report.month,
    entries: report.entries.length,
    key_id: report.key_id,
    trusted_key: trusted,
    whole_chain: report.chain_links !== undefined,
    problems,
  };
}

/** The document without members that are not the report's (or its entries'): what was signed, to check it as such. */
function stripAdded(doc: unknown): unknown {
  if (typeof doc !== 'object' || doc === null) return doc;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(doc)) {
    if (!Object.hasOwn(reportMembers, name)) continue;
    const nested = NESTED[name];
    out[name] = nested === undefined ? value : Array.isArray(value) ? value.map((v: unknown) => only(v, nested.shape)) : only(value, nested.shape);
  }
  return out;
}

/** The members of a report that hold objects of their own shape (an added member inside one is named too). */
const NESTED: Readonly<Record<string, { readonly shape: object; readonly what: string }>> = {
  entries: { shape: destructionEntrySchema.shape, what: 'entry' },
  chain_head: { shape: destructionHeadSchema.shape, what: 'head' },
  chain_links: { shape: destructionLinkSchema.shape, what: 'link' },
  audited_head: { shape: { seq: true, hash: true, at: true }, what: 'audited head' },
};

/** `v` with only the members of `shape` (own names: `constructor` or `__proto__` are not members). */
function only(v: unknown, shape: object): unknown {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter(([k]) => Object.hasOwn(shape, k))) : v;
}

/** Members added to a report after it was signed, at the top or inside its entries, head, links or audited head. */
function addedMembers(doc: unknown): string[] {
  const added: string[] = [];
  if (typeof doc !== 'object' || doc === null || (doc as { format?: unknown }).format !== DESTRUCTION_REPORT_FORMAT) return added;
  for (const [name, value] of Object.entries(doc)) {
    if (!Object.hasOwn(reportMembers, name)) {
      added.push(`member \`${name}\` is not part of the signed report (added after it was signed)`);
      continue;
    }
    const nested = NESTED[name];
    if (nested === undefined) continue;
    const items: (readonly [string, unknown])[] = Array.isArray(value)
      ? (value as unknown[]).map((v, i) => [`${name}[${i}]`, v] as const)
      : [[name, value as unknown] as const];
    for (const [where, v] of items) {
      if (typeof v !== 'object' || v === null) continue;
      for (const k of Object.keys(v))
        if (!Object.hasOwn(nested.shape, k)) added.push(`${where}: member \`${k}\` is not part of the signed ${nested.what} (added after it was signed)`);
    }
  }
  return added;
}

/**
 * The links of the whole chain, followed from the first entry to the head: none missing, each naming the one before,
 * the last the head; the month's entries among them, with the same hashes, and no entry of the month left out.
 */
export function linkProblems(
  links: readonly DestructionLink[],
  head: { readonly seq: number; readonly hash: string },
  entries: readonly Pick<DestructionEntry, 'seq' | 'hash'>[],
  month: string,
  audited?: { readonly seq: number; readonly hash: string; readonly at: string },
): string[] {
  const problems: string[] = [];
  let prev = short(DESTRUCTION_GENESIS);
  let expected = 1;
  for (const link of links) {
    if (link.seq > expected)
      problems.push(`entry ${expected}${link.seq > expected + 1 ? `–${link.seq - 1}` : ''} of the chain is missing (removed from the stored record)`);
    else if (link.seq < expected) problems.push(`entry ${link.seq} of the chain is out of order`);
    if (link.prev !== prev) problems.push(`entry ${link.seq} of the chain does not follow the entry before it (chain broken)`);
    prev = link.hash;
    expected = link.seq + 1;
  }
  const last = links.at(-1);
  if ((last?.seq ?? 0) !== head.seq || (last?.hash ?? short(DESTRUCTION_GENESIS)) !== short(head.hash))
    problems.push(`the chain's links end at entry ${last?.seq ?? 0}, not at the signed head (entry ${head.seq})`);
  const linked = new Map(links.map((l) => [l.seq, l]));
  for (const e of entries) {
    const l = linked.get(e.seq);
    if (!l) problems.push(`entry ${e.seq} of the report is not in the chain`);
    else if (l.hash !== short(e.hash)) problems.push(`entry ${e.seq} of the report is not the one in the chain (another hash)`);
  }
  const end = last?.seq ?? 0;
  if (audited && audited.seq > end) {
    const gone = audited.seq > end + 1 ? `entries ${end + 1}–${audited.seq}` : `entry ${audited.seq}`;
    problems.push(
      `${gone} of the chain, which the audit trail names (retention pass done at ${audited.at}), missing (removed from the end of the stored record)`,
    );
  } else if (audited && audited.seq > 0 && linked.get(audited.seq)?.hash !== short(audited.hash))
    problems.push(`entry ${audited.seq} of the chain is not the one the audit trail names (another hash)`);
  const inReport = new Set(entries.map((e) => e.seq));
  for (const l of links)
    if (l.month === month && !inReport.has(l.seq)) problems.push(`entry ${l.seq} of the chain is about ${month} and missing from the report`);
  return problems;
}

/** Recomputes a stored chain (oldest first): every hash, every link, every signature. Returns the problems found. */
export function verifyDestructionChain(entries: readonly DestructionEntry[], keys: readonly KeyObject[]): string[] {
  const problems: string[] = [];
  let prev = DESTRUCTION_GENESIS;
  let expected = 1;
  const byId = new Map(keys.map((k) => [idOf(k), k]));
  for (const e of entries) {
    const { hash, signature, ...content } = e;
    if (e.seq !== expected) problems.push(`entry ${expected} is missing (found ${e.seq})`);
    if (e.prev_hash !== prev) problems.push(`entry ${e.seq} does not follow the entry before it`);
    if (destructionEntryHash(content) !== hash) problems.push(`entry ${e.seq} was changed after it was written`);
    const key = byId.get(e.signer_key_id);
    if (!key) problems.push(`entry ${e.seq} is signed by an unknown key ${e.signer_key_id}`);
    else if (!verifies(entrySigningBytes(hash), key, signature)) problems.push(`entry ${e.seq}: signature does not verify`);
    prev = hash;
    expected = e.seq + 1;
  }
  return problems;
}
