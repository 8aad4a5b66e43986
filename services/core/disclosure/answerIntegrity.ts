import { createHash, createPublicKey, hash, randomBytes, verify as verifySignature, type Hash, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalFlatJson, canonicalJson, sha256Hex } from './canonical.ts';

/**
 * Integrity-assured answers (law-enforcement answers, data-subject exports): ETSI TS 102 657 asks for the signed
 * integrity of delivered data; we go further and make a changed answer say *what* changed.
 *
 * An answer is a JSON document: header members (request id, authority, case reference, legal basis, months…), the
 * `records`, and an `integrity` block. The block holds a SHA-256 digest of every header member, the SHA-256 of the
 * records in canonical form (RFC 8785, one per line), a short digest per record and one per record field (a
 * "column"), and an Ed25519 signature over the canonical block. A verifier recomputes them all: a changed header
 * member, a changed record and the changed field, records added or removed, or an edited block are each named.
 *
 * Pure: the signer is passed in, verification takes public keys.
 */
export const ANSWER_FORMAT = 'cdr-pipeline/signed-answer/2';
/** Answers signed before 2026-12-06: digests of the identifier and of the parties' columns unsalted (still verified). */
export const ANSWER_FORMAT_1 = 'cdr-pipeline/signed-answer/1';
/**
 * The header member holding an answer's salt (format 2): random, in the answer itself, never in its receipt. The
 * identifier's digest is taken over it, so a receipt's digest cannot be reversed by trying numbers (found from outside:
 * `integrity.fields.identifier` was a plain SHA-256 of the identifier, found from a receipt in 6,790 guesses).
 */
export const SALT_MEMBER = 'integrity_salt';
/** Header members digested with the salt. */
const SALTED_MEMBERS: ReadonlySet<string> = new Set(['identifier']);
/**
 * Record fields that hold a party's identifier: in format 2 each value is digested behind its record's `cdr_id` and
 * `event_time`, so a receipt's column digest (over one subscriber's number in every record, say) cannot be reversed
 * by trying numbers without the records themselves — while a verifier holding them (any answer form) recomputes it.
 */
const IDENTIFIER_COLUMNS: ReadonlySet<string> = new Set(['sender', 'recipient']);
/** Bytes of each per-record digest (a SHA-256 prefix): enough to say which record changed; the full digest protects. */
const RECORD_DIGEST_BYTES = 8;

export interface AnswerSigner {
  /** `ed25519:` + the first 16 hex digits of SHA-256 over the public key (SPKI DER). */
  readonly keyId: string;
  /** The public key, SPKI DER, base64. */
  readonly publicKey: string;
  sign(data: Buffer): Buffer;
}

export const answerIntegritySchema = z
  .object({
    format: z.enum([ANSWER_FORMAT, ANSWER_FORMAT_1]),
    hash: z.literal('SHA-256'),
    canonicalization: z.literal('RFC 8785'),
    signature_algorithm: z.literal('Ed25519'),
    key_id: z.string(),
    public_key: z.string(),
    signed_at: z.string(),
    fields: z.record(z.string(), z.string()),
    record_count: z.number().int().min(0),
    records_sha256: z.string(),
    record_digests: z.string(),
    record_fields: z.record(z.string(), z.string()),
    signature: z.string(),
  })
  // A key the signature does not cover is a change, not something to drop before checking (as for retention reports).
  .strict();
export type AnswerIntegrity = z.infer<typeof answerIntegritySchema>;

/** The key id of a public key (SPKI DER). */
export function keyIdOf(spkiDer: Buffer): string {
  return `ed25519:${sha256Hex(spkiDer).slice(0, 16)}`;
}

/**
 * Digests records one at a time (bounded memory: a few hashes and 8 bytes per record), in answer order.
 * `add` returns the record's canonical JSON, which the answer writers emit as is.
 */
export class RecordDigester {
  private readonly all = createHash('sha256');
  private readonly columns = new Map<string, Hash>();
  private digests = Buffer.alloc(RECORD_DIGEST_BYTES * 1024);
  private count = 0;

  /** `format`: of the answer being signed or checked (ANSWER_FORMAT for a new one). */
  constructor(private readonly format: string = ANSWER_FORMAT) {}

  add(record: Readonly<Record<string, unknown>>): string {
    const index = this.count;
    const salted = this.format !== ANSWER_FORMAT_1;
    // The record's own cdr_id and event_time, before its parties' values in their column digests. Members come in
    // canonical (sorted) order: `cdr_id` and `event_time` before `recipient` and `sender`.
    let behind = '';
    // Each member's value text feeds its column digest (its values in answer order) as the canonical line is built.
    const line = canonicalFlatJson(record, (field, valueText) => {
      let h = this.columns.get(field);
      if (!h) {
        h = createHash('sha256');
        this.columns.set(field, h);
      }
      if (salted) {
        if (field === 'cdr_id' || field === 'event_time') behind += `${valueText}\u0000`;
        else if (IDENTIFIER_COLUMNS.has(field)) h.update(behind);
      }
      h.update(valueText).update('\n');
    });
    this.all.update(line).update('\n');
    // One-shot hashing: no Hash object (and its native context) per record.
    const d = hash('sha256', line, 'buffer');
    if ((index + 1) * RECORD_DIGEST_BYTES > this.digests.length) {
      const grown = Buffer.alloc(this.digests.length * 2);
      this.digests.copy(grown);
      this.digests = grown;
    }
    d.copy(this.digests, index * RECORD_DIGEST_BYTES, 0, RECORD_DIGEST_BYTES);
    this.count++;
    return line;
  }

  get recordCount(): number {
    return this.count;
  }

  finish(): Pick<AnswerIntegrity, 'record_count' | 'records_sha256' | 'record_digests' | 'record_fields'> {
    const record_fields: Record<string, string> = {};
    for (const [field, h] of [...this.columns.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) record_fields[field] = h.digest('hex');
    return {
      record_count: this.count,
      records_sha256: this.all.digest('hex'),
      record_digests: this.digests.subarray(0, this.count * RECORD_DIGEST_BYTES).toString('hex'),
      record_fields,
    };
  }
}

/** The digest of one header member: the identifier behind the answer's salt (format 2), the others as they are. */
function memberDigest(name: string, value: unknown, salt: unknown, format: string): string {
  const text = canonicalJson(value ?? null);
  return format !== ANSWER_FORMAT_1 && SALTED_MEMBERS.has(name) ? sha256Hex(`${typeof salt === 'string' ? salt : ''}\u0000${text}`) : sha256Hex(text);
}

/** The digest of each header member (everything but `records` and `integrity`). */
export function fieldDigests(header: Readonly<Record<string, unknown>>, format: string = ANSWER_FORMAT): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(header).sort()) {
    if (name === 'records' || name === 'integrity') continue;
    out[name] = memberDigest(name, header[name], header[SALT_MEMBER], format);
  }
  return out;
}

/** A fresh salt for an answer's header (`SALT_MEMBER`): 128 random bits. */
export function answerSalt(): string {
  return randomBytes(16).toString('hex');
}

/** Signs an answer: its header members and the digests of its records, as digested. */
export function signAnswer(
  header: Readonly<Record<string, unknown>>,
  records: ReturnType<RecordDigester['finish']>,
  signer: AnswerSigner,
  signedAt: string,
  /** ANSWER_FORMAT_1 only to make an answer as it was signed before 2026-12-06 (tests of the verifier). */
  format: typeof ANSWER_FORMAT | typeof ANSWER_FORMAT_1 = ANSWER_FORMAT,
): AnswerIntegrity {
  const unsigned: Omit<AnswerIntegrity, 'signature'> = {
    format,
    hash: 'SHA-256',
    canonicalization: 'RFC 8785',
    signature_algorithm: 'Ed25519',
    key_id: signer.keyId,
    public_key: signer.publicKey,
    signed_at: signedAt,
    fields: fieldDigests(header, format),
    ...records,
  };
  return { ...unsigned, signature: signer.sign(Buffer.from(canonicalJson(unsigned))).toString('base64') };
}

export interface VerifyAnswerInput {
  /** The answer's header members (a whole answer document may be passed: `records` and `integrity` are skipped). */
  readonly header: Readonly<Record<string, unknown>>;
  readonly records: readonly Readonly<Record<string, unknown>>[];
  readonly integrity: unknown;
  /** Public keys to trust. Empty: the signature is checked under the key the answer carries (and said so). */
  readonly trustedKeys: readonly KeyObject[];
  /**
   * The header comes from a receipt (`GET /v1/lea/requests/{id}`) next to a streamed answer: signed members the
   * receipt lacks (the identifier) are listed as not checked, and members it adds are ignored.
   */
  readonly receipt?: boolean;
}

export interface VerifyAnswerReport {
  readonly ok: boolean;
  readonly key_id: string | null;
  /** True when the signing key was one of the trusted keys. */
  readonly key_trusted: boolean;
  readonly records: number;
  /** What was changed, added or removed, in words; empty when ok. */
  readonly problems: string[];
  /** Signed members that could not be checked (absent from a receipt). */
  readonly unchecked: string[];
}

const MAX_NAMED_RECORDS = 20;

export function verifyAnswer(input: VerifyAnswerInput): VerifyAnswerReport {
  const problems: string[] = [];
  const unchecked: string[] = [];
  const parsed = answerIntegritySchema.safeParse(input.integrity);
  if (!parsed.success) {
    return {
      ok: false,
      key_id: null,
      key_trusted: false,
      records: input.records.length,
      problems: [`integrity: missing or malformed (${parsed.error.issues.map((i) => `${i.path.join('.') || 'block'}: ${i.message}`).join('; ')})`],
      unchecked,
    };
  }
  const integrity = parsed.data;

  // 1. The block itself: signed by whom, and unchanged?
  const { signature, ...unsigned } = integrity;
  const signedBytes = Buffer.from(canonicalJson(unsigned));
  let keyTrusted = false;
  let key: KeyObject | undefined;
  if (input.trustedKeys.length > 0) {
    key = input.trustedKeys.find((k) => keyIdOf(k.export({ type: 'spki', format: 'der' })) === integrity.key_id);
    if (!key) problems.push(`integrity.key_id: signed by ${integrity.key_id}, which is not a trusted key`);
    else keyTrusted = true;
  } else {
    try {
      key = createPublicKey({ key: Buffer.from(integrity.public_key, 'base64'), format: 'der', type: 'spki' });
      if (keyIdOf(key.export({ type: 'spki', format: 'der' })) !== integrity.key_id) {
        problems.push('integrity.public_key: does not match integrity.key_id');
        key = undefined;
      }
    } catch {
      problems.push('integrity.public_key: not a public key');
    }
  }
  if (key) {
    let valid = false;
    try {
      valid = verifySignature(null, signedBytes, key, Buffer.from(signature, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid) problems.push('integrity: the signature does not match the integrity block (the block itself was changed, or signed by another key)');
  }

  // 2. Header members, each against its signed digest.
  const header = input.header;
  for (const [name, digest] of Object.entries(integrity.fields)) {
    if (!(name in header)) {
      if (input.receipt) unchecked.push(name);
      else problems.push(`${name}: missing (it is part of the signed answer)`);
      continue;
    }
    // A salted member read beside a receipt (which never carries the salt) cannot be checked: said, not failed.
    if (integrity.format !== ANSWER_FORMAT_1 && SALTED_MEMBERS.has(name) && !(SALT_MEMBER in header)) {
      if (input.receipt) unchecked.push(name);
      else problems.push(`${name}: cannot be checked without ${SALT_MEMBER}`);
      continue;
    }
    if (memberDigest(name, header[name], header[SALT_MEMBER], integrity.format) !== digest) problems.push(`${name}: changed`);
  }
  if (!input.receipt) {
    for (const name of Object.keys(header)) {
      if (name === 'records' || name === 'integrity' || name in integrity.fields) continue;
      problems.push(`${name}: added (not part of the signed answer)`);
    }
  }

  // 3. Records: which changed, which field, added or removed.
  const digester = new RecordDigester(integrity.format);
  for (const r of input.records) digester.add(r);
  const got = digester.finish();
  const width = RECORD_DIGEST_BYTES * 2;
  const signedCount = integrity.record_count;
  const changed: number[] = [];
  const common = Math.min(signedCount, got.record_count);
  for (let i = 0; i < common; i++) {
    if (got.record_digests.slice(i * width, (i + 1) * width) !== integrity.record_digests.slice(i * width, (i + 1) * width)) changed.push(i);
  }
  if (got.record_count !== signedCount) {
    problems.push(
      `records: ${got.record_count} in the answer, ${signedCount} signed (${got.record_count < signedCount ? 'records removed' : 'records added'}${changed.length > 0 ? `; the first difference at record ${changed[0]! + 1}` : ` after record ${common}`})`,
    );
  } else if (changed.length > 0) {
    const fields = Object.keys({ ...integrity.record_fields, ...got.record_fields })
      .filter((f) => integrity.record_fields[f] !== got.record_fields[f])
      .sort();
    // The parties' digests are taken behind cdr_id and event_time (format 2): with either changed, theirs differ too,
    // whether or not they were changed themselves.
    const behindChanged = integrity.format !== ANSWER_FORMAT_1 && (fields.includes('cdr_id') || fields.includes('event_time'));
    const sure = behindChanged ? fields.filter((f) => !IDENTIFIER_COLUMNS.has(f)) : fields;
    const maybe = behindChanged ? fields.filter((f) => IDENTIFIER_COLUMNS.has(f)) : [];
    const fieldWords =
      sure.length > 0
        ? `field${sure.length > 1 ? 's' : ''} ${sure.join(', ')}${maybe.length > 0 ? `, perhaps ${maybe.join(', ')} (digested behind cdr_id and event_time)` : ''}`
        : 'fields unknown';
    for (const i of changed.slice(0, MAX_NAMED_RECORDS)) {
      const id = input.records[i]?.['cdr_id'];
      problems.push(
        `record ${i + 1}${typeof id === 'string' ? ` (cdr_id ${id})` : ''}: changed (${changed.length === 1 ? fieldWords : `across the changed records: ${fieldWords}`})`,
      );
    }
    if (changed.length > MAX_NAMED_RECORDS) problems.push(`… and ${changed.length - MAX_NAMED_RECORDS} more changed records`);
  } else if (got.records_sha256 !== integrity.records_sha256) {
    problems.push('records: their digest differs from the signed one');
  }
  return { ok: problems.length === 0, key_id: integrity.key_id, key_trusted: keyTrusted, records: got.record_count, problems, unchecked };
}
