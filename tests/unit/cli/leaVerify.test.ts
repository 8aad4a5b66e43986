/**
 * `cdr lea verify` on a CSV answer and its receipt: today's answers write an absent field as an empty cell that reads
 * back as null; answers signed before (absent fields as "") must still verify, and a changed one must not.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordDigester, answerWriter, buildDestructionReport, keyIdOf, signAnswer, type AnswerSigner } from '../../../services/core/index.ts';
import { verifyAnswerFile } from '../../../services/cli/leaVerifyCommand.ts';
import { verifyReportFile } from '../../../services/cli/retentionCommand.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const der = publicKey.export({ type: 'spki', format: 'der' });
const signer: AnswerSigner = { keyId: keyIdOf(der), publicKey: der.toString('base64'), sign: (d) => sign(null, d, privateKey) };
const header = {
  request_id: 'lea-1',
  authority: 'Police',
  case_reference: 'C-1',
  legal_basis: 'warrant',
  from: '2026-11-01T00:00:00.000Z',
  to: '2026-12-01T00:00:00.000Z',
};

function record(i: number, absent: null | ''): Record<string, unknown> {
  return {
    cdr_id: `c${i}`,
    account_id: 'a',
    event_time: `2026-11-0${i + 1}T10:00:00.000Z`,
    channel: 'voice',
    direction: 'mt',
    sender: '+60123456789',
    recipient: '+60198765432',
    sender_type: 'msisdn',
    recipient_type: 'msisdn',
    status: 'delivered',
    duration_ms: i === 0 ? (absent === null ? null : 0) : 1000,
    provider_id: 'p',
    destination_country: i === 1 ? absent : 'MY',
    mcc: i === 2 ? absent : '502',
    mnc: i === 2 ? absent : '12',
    segments: 1,
    source: 'live',
  };
}

/** A CSV answer of `records` and its receipt, in a directory of their own. */
function writeAnswer(dir: string, records: Record<string, unknown>[], edit: (csv: string) => string = (t) => t): { file: string; receipt: string } {
  const w = answerWriter('csv');
  const d = new RecordDigester();
  let text = w.open(header);
  for (const r of records) text += w.record(d.add(r), r);
  const trailer = { expired_months: [], record_count: records.length };
  const integrity = signAnswer({ ...header, ...trailer }, d.finish(), signer, '2026-12-01T10:00:01.000Z');
  text += w.close(trailer, integrity);
  const file = join(dir, 'answer.csv');
  const receipt = join(dir, 'receipt.json');
  writeFileSync(file, edit(text));
  writeFileSync(receipt, JSON.stringify({ ...header, ...trailer, status: 'answered', identifier_type: 'msisdn', integrity }));
  return { file, receipt };
}

describe('cdr lea verify, CSV answers with absent fields', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-leaverify-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const verify = (f: { file: string; receipt: string }) =>
    verifyAnswerFile({ file: f.file, receipt: f.receipt, signingKeyFile: undefined, dataDir: join(dir, 'no-data-dir') });

  it('verifies an answer whose absent fields are null (empty cells)', () => {
    const r = verify(
      writeAnswer(
        dir,
        [0, 1, 2].map((i) => record(i, null)),
      ),
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
  });

  it('verifies an answer signed when absent fields were "" (its empty cells read as "")', () => {
    const r = verify(
      writeAnswer(
        dir,
        [0, 1, 2].map((i) => record(i, '')),
      ),
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
  });

  it('names only the changed record of an old answer, not every record with an empty cell (found in review)', () => {
    const r = verify(
      writeAnswer(
        dir,
        [0, 1, 2].map((i) => record(i, '')),
        (t) => t.replace('+60198765432', '+60111111111'),
      ),
    );
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems.filter((p) => p.startsWith('record ')).length, 1, r.problems.join('\n'));
  });

  it('names a changed field of either kind of answer', () => {
    for (const absent of [null, ''] as const) {
      const r = verify(
        writeAnswer(
          dir,
          [0, 1, 2].map((i) => record(i, absent)),
          (t) => t.replace('+60198765432', '+60111111111'),
        ),
      );
      assert.equal(r.ok, false, String(absent));
      assert.match(r.problems.join('\n'), /record 1 \(cdr_id c0\): changed/);
    }
  });
});

describe('offline checks refuse a file that gives a member twice (a reader may see either value)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-twice-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a JSON answer with a forged header member placed before the signed one', () => {
    const w = answerWriter('json');
    const d = new RecordDigester();
    const r = record(1, null);
    let text = w.open(header) + w.record(d.add(r), r);
    const trailer = { expired_months: [], record_count: 1 };
    text += w.close(trailer, signAnswer({ ...header, ...trailer }, d.finish(), signer, '2026-12-01T10:00:01.000Z'));
    const file = join(dir, 'answer.json');
    writeFileSync(file, text);
    const args = { file, signingKeyFile: undefined, dataDir: join(dir, 'none') };
    assert.equal(verifyAnswerFile(args).ok, true);
    writeFileSync(file, text.replace('{', '{"authority":"FORGED",'));
    const forged = verifyAnswerFile(args);
    assert.equal(forged.ok, false);
    assert.match(forged.problems[0]!, /"authority" twice in one object/);
  });

  it('a retention report with a member given twice', () => {
    const report = buildDestructionReport({
      month: '2025-11',
      entries: [],
      head: { seq: 1, hash: '0'.repeat(64) },
      generatedAt: Date.UTC(2026, 11, 1),
      signer,
    });
    const file = join(dir, 'report.json');
    const text = JSON.stringify(report);
    writeFileSync(file, text);
    const args = { file, signingKeyFile: undefined, dataDir: join(dir, 'none') };
    assert.equal(verifyReportFile(args).ok, true);
    writeFileSync(file, text.replace('{', '{"summary":"All destroyed, approved.",'));
    const twice = verifyReportFile(args);
    assert.equal(twice.ok, false);
    assert.match(twice.problems[0]!, /"summary" twice in one object/);
  });
});
