import { existsSync, readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { PipelineError, duplicateMemberOf, givenTwiceProblem, recordsFromCsv, verifyAnswer, type VerifyAnswerReport } from '../core/index.ts';
import { trustedPublicKey } from '../platform/signing/index.ts';

/**
 * `cdr lea verify FILE [--receipt R] [--public-key K]`: checks a signed answer offline and names what changed.
 *
 * FILE is a JSON answer (self-contained), or an NDJSON or CSV answer together with its receipt (`GET
 * /v1/lea/requests/{id}`, which holds the signed integrity block). The signature is checked against a trusted
 * public key: --public-key, else the key of CDR_SIGNING_KEY_FILE, else the development key of the data directory;
 * with none of them, against the key the answer carries, and the output says it was not checked against a trusted
 * one. Exit 0: unchanged; 1: changed (each change named); 2: the command could not check.
 */
export interface LeaVerifyArgs {
  readonly file: string;
  readonly receipt?: string;
  readonly publicKey?: string;
  readonly json?: boolean;
  readonly signingKeyFile: string | undefined;
  readonly dataDir: string;
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new PipelineError('config_invalid', `${what} ${path} is not JSON`, { cause });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The records of an answer file, and its header and integrity when the file carries them (the JSON form). */
function readAnswer(path: string): {
  header?: Record<string, unknown>;
  integrity?: unknown;
  records: Record<string, unknown>[];
  form: string;
  /** CSV only: the records as answers signed before absent fields were null wrote them (empty cells as ""). */
  legacyRecords?: () => Record<string, unknown>[];
  /** A member given twice in one object of the file (JSON or NDJSON): a reader may see either value. */
  twice?: string;
} {
  if (!existsSync(path)) throw new PipelineError('config_invalid', `no such file: ${path}`);
  const text = readFileSync(path, 'utf8');
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    let notAnAnswer = false;
    try {
      const doc = JSON.parse(text) as unknown;
      if (isObject(doc) && Array.isArray(doc['records'])) {
        const { records, integrity, ...header } = doc;
        // JSON.parse keeps the last of a member given twice; another reader (or a person) may see the first: such a file
        // is not the one that was signed, whatever its values verify to (found in review).
        const twice = duplicateMemberOf(text);
        return { header, integrity, records: (records as unknown[]).filter(isObject), form: 'json', ...(twice !== undefined ? { twice } : {}) };
      }
      // One JSON object that is neither an answer nor a record (`{}`, a receipt, a retention report): say so, rather
      // than taking it for a streamed answer of one record.
      if (isObject(doc) && !('cdr_id' in doc)) notAnAnswer = true;
    } catch {
      // Not one JSON document: one record per line.
    }
    if (notAnAnswer)
      throw new PipelineError(
        'config_invalid',
        `${path} is no law-enforcement answer: a JSON answer has "records", a streamed one a record with a cdr_id per line`,
      );
    let twice: string | undefined;
    const records = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          const r = JSON.parse(l) as unknown;
          if (isObject(r)) {
            twice ??= duplicateMemberOf(l);
            return r;
          }
        } catch {
          // fall through
        }
        throw new PipelineError('config_invalid', `${path}: line ${i + 1} is not a JSON record`);
      });
    return { records, form: 'ndjson', ...(twice !== undefined ? { twice } : {}) };
  }
  if (trimmed.startsWith('cdr_id,')) return { records: recordsFromCsv(text), form: 'csv', legacyRecords: () => recordsFromCsv(text, { emptyAsNull: false }) };
  throw new PipelineError('config_invalid', `${path} is neither a JSON answer, nor NDJSON, nor CSV`);
}

function trustedKeys(args: LeaVerifyArgs): { keys: KeyObject[]; from: string | undefined } {
  const trusted = trustedPublicKey(args);
  return trusted ? { keys: [trusted.key], from: trusted.from } : { keys: [], from: undefined };
}

export function verifyAnswerFile(args: LeaVerifyArgs): VerifyAnswerReport & { form: string; trusted_key_from: string | null } {
  const answer = readAnswer(args.file);
  let header = answer.header;
  let integrity = answer.integrity;
  let receipt = false;
  if (args.receipt) {
    const r = readJson(args.receipt, 'receipt');
    if (!isObject(r)) throw new PipelineError('config_invalid', `receipt ${args.receipt} is not a JSON object`);
    header = r;
    integrity = r['integrity'];
    receipt = true;
    if (integrity === null || integrity === undefined)
      throw new PipelineError(
        'config_invalid',
        `receipt ${args.receipt} holds no integrity block (a key it was sealed under is gone — the request month's, a month it answered, or a legal hold's whose copy it gave — or the answer did not finish)`,
      );
  } else if (answer.form !== 'json') {
    throw new PipelineError(
      'config_invalid',
      `${args.file} is a streamed (${answer.form}) answer: give its receipt too (--receipt, from GET /v1/lea/requests/{id}, or GET /v1/dsar/{id} for a data-subject export)`,
    );
  }
  const { keys, from } = trustedKeys(args);
  let report = verifyAnswer({ header: header ?? {}, records: answer.records, integrity, trustedKeys: keys, receipt });
  // A CSV answer signed before absent fields were null (2026-12) wrote them as "": it verifies when read so. A changed
  // answer verifies neither way; its report is the reading's that names fewer problems, so an old answer with one
  // changed cell names that cell, not every record with an empty one (found in review).
  if (!report.ok && answer.legacyRecords) {
    const legacy = verifyAnswer({ header: header ?? {}, records: answer.legacyRecords(), integrity, trustedKeys: keys, receipt });
    if (legacy.ok || legacy.problems.length < report.problems.length) report = legacy;
  }
  if (answer.twice !== undefined)
    report = {
      ...report,
      ok: false,
      problems: [givenTwiceProblem(answer.twice), ...report.problems],
    };
  return { ...report, form: answer.form, trusted_key_from: from ?? null };
}

export function printAnswerReport(r: ReturnType<typeof verifyAnswerFile>, file: string): string {
  const lines = [`${file}: ${r.form} answer, ${r.records} records, signed by ${r.key_id ?? 'unknown key'}`];
  lines.push(
    r.key_trusted
      ? `signature checked against the trusted key in ${r.trusted_key_from}`
      : r.trusted_key_from
        ? `the signing key is not the trusted key in ${r.trusted_key_from}`
        : 'signature checked against the key the answer carries only: no trusted key given (--public-key, CDR_SIGNING_KEY_FILE); compare the key id with GET /v1/lea/signing-key',
  );
  if (r.unchecked.length > 0) lines.push(`not checked (absent from the receipt): ${r.unchecked.join(', ')}`);
  if (r.ok) lines.push('OK: unchanged since it was signed');
  else lines.push('CHANGED:', ...r.problems.map((p) => `  - ${p}`));
  return `${lines.join('\n')}\n`;
}
