/**
 * The destruction record from the command line, as a data protection officer would use it: a retention drill
 * (`cdr retention run --now …` with CDR_ALLOW_CLOCK_OVERRIDE=1) destroys a month; `cdr retention report --month M --out F`
 * exports its signed report; `cdr retention verify-report F` says it is intact (exit 0) against the trusted key; the
 * same file with one number changed is refused (exit 1) with the entry and what changed named.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireStore } from '../../../services/platform/runtime/runtime.ts';
import { TrafficGenerator } from '../../../services/generator/trafficGenerator.ts';
import { storeDirectly } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';

const bin = join(import.meta.dirname, '../../../bin/cdr.cjs');
const setup = testSetup();
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn', ...env }, encoding: 'utf8', timeout: 300_000 });

const MONTH = '2027-03';
const END = Date.UTC(2027, 3, 1);

describe('cdr retention report / verify-report', { timeout: 600_000 }, () => {
  const file = join(setup.dataDir, 'report.json');
  let passReport: { actions: { class: string; month: string; verified: boolean; key_ids?: string[] }[]; record?: { last_seq: number } };

  before(async () => {
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    const gen = new TrafficGenerator({ seed: 5, scenario: 'normal', startTime: END - 1, timeSpreadMs: END - Date.UTC(2027, 2, 1) - 2 });
    await storeDirectly(rt, gen.take(300), END - 1);
    await rt.close();
    const r = run(['retention', 'run', '--now', '2028-04-01T00:00:00Z'], { CDR_ALLOW_CLOCK_OVERRIDE: '1' });
    assert.equal(r.status, 0, r.stderr);
    passReport = JSON.parse(r.stdout) as typeof passReport;
  });
  after(() => setup.cleanup());

  it('the drill destroyed the month, verified, and says where it is in the record', () => {
    const action = passReport.actions.find((a) => a.class === 'identifiers' && a.month === MONTH);
    assert.ok(action?.verified, JSON.stringify(passReport.actions));
    assert.equal(action.key_ids?.length, 1);
    assert.ok((passReport.record?.last_seq ?? 0) >= 2, 'an entry per action and one for the pass');
  });

  it('exports a signed report that verifies offline against the trusted key', () => {
    const r = run(['retention', 'report', '--month', MONTH, '--out', file]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(readFileSync(file, 'utf8')) as { month: string; entries: { class: string; rows: number; verified: boolean }[]; key_id: string };
    assert.equal(report.month, MONTH);
    assert.ok(report.entries.some((e) => e.class === 'identifiers' && e.rows > 0 && e.verified));
    const v = run(['retention', 'verify-report', file, '--json']);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const check = JSON.parse(v.stdout) as { ok: boolean; trusted_key: boolean; key_id: string; entries: number };
    assert.equal(check.ok, true);
    assert.equal(check.trusted_key, true, 'checked against the development signing key of the data directory');
    assert.equal(check.key_id, report.key_id);
  });

  it('a report with one number changed is refused, and the entry named', () => {
    const report = JSON.parse(readFileSync(file, 'utf8')) as { entries: { seq: number; class: string; rows: number }[] };
    const entry = report.entries.find((e) => e.class === 'identifiers')!;
    entry.rows += 1;
    const edited = join(setup.dataDir, 'report-edited.json');
    writeFileSync(edited, JSON.stringify(report, null, 2));
    const v = run(['retention', 'verify-report', edited]);
    assert.equal(v.status, 1, v.stdout + v.stderr);
    assert.match(v.stdout, /NOT intact/);
    assert.match(v.stdout, new RegExp(`entry ${entry.seq} \\(identifiers ${MONTH}\\): its content does not match its hash`));
  });

  it('a member added to the report is a change (exit 1, named), not "no report" (found from outside)', () => {
    const report = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    report['note'] = 'all fine';
    const edited = join(setup.dataDir, 'report-noted.json');
    writeFileSync(edited, JSON.stringify(report, null, 2));
    const v = run(['retention', 'verify-report', edited]);
    assert.equal(v.status, 1, v.stdout + v.stderr);
    assert.match(v.stdout, /NOT intact/);
    assert.match(v.stdout, /member `note` is not part of the signed report/);
  });

  it('an entry deleted from the stored record is named by the next report of any month, and by its check', async () => {
    // Found from outside (2026-12-06): a deleted entry of the month, report and check both "intact".
    const entries = (JSON.parse(readFileSync(file, 'utf8')) as { entries: { seq: number }[] }).entries;
    const gone = entries[0]!.seq;
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    try {
      const store = requireStore(rt);
      await store.command(`ALTER TABLE ${store.table('retention_records')} DELETE WHERE seq = ${gone} SETTINGS mutations_sync = 2`);
    } finally {
      await rt.close();
    }
    const after = join(setup.dataDir, 'report-after-delete.json');
    // Another month's report sees it too: the links are of the whole chain.
    for (const month of [MONTH, '2020-01']) {
      const r = run(['retention', 'report', '--month', month, '--out', after]);
      // Made all the same (the evidence), said on stderr and exit 1 (found from outside: exit 0, "N entries … signed").
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /THE REPORT'S CHECK FOUND PROBLEMS in the stored destruction record/);
      assert.match(r.stderr, new RegExp(`entry ${gone} of the chain is missing \\(removed from the stored record\\)`));
      const report = JSON.parse(readFileSync(after, 'utf8')) as { summary: string };
      assert.match(report.summary, new RegExp(`THE STORED RECORD IS NOT WHOLE: entry ${gone} of the chain is missing`), month);
      const v = run(['retention', 'verify-report', after]);
      assert.equal(v.status, 1, v.stdout + v.stderr);
      assert.match(v.stdout, new RegExp(`entry ${gone} of the chain is missing \\(removed from the stored record\\)`), month);
    }
  });

  it('the newest entry deleted from the stored record is named against the head the audit trail names', async () => {
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    let newest: number;
    try {
      const store = requireStore(rt);
      newest = Number((await store.query<{ n: string }>(`SELECT max(seq) n FROM ${store.table('retention_records')}`))[0]!.n);
      await store.command(`ALTER TABLE ${store.table('retention_records')} DELETE WHERE seq = ${newest} SETTINGS mutations_sync = 2`);
    } finally {
      await rt.close();
    }
    const after = join(setup.dataDir, 'report-after-tail.json');
    const r = run(['retention', 'report', '--month', MONTH, '--out', after]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`entry ${newest} of the chain, which the audit trail names`));
    const v = run(['retention', 'verify-report', after]);
    assert.equal(v.status, 1, v.stdout + v.stderr);
    assert.match(
      v.stdout,
      new RegExp(
        `entry ${newest} of the chain, which the audit trail names \\(retention pass done at [^)]+\\), missing \\(removed from the end of the stored record\\)`,
      ),
    );
  });

  it('an entry moved to another month is named by the report of the month it left (the whole stored record is checked)', async () => {
    // Found from outside (2026-12-07): with an entry's month changed, that month's report and its check both said
    // "intact" (the entry was no longer among the month's entries, and the links carry hashes only).
    const entries = (JSON.parse(readFileSync(file, 'utf8')) as { entries: { seq: number }[] }).entries;
    const moved = entries.at(-1)!.seq;
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    try {
      const store = requireStore(rt);
      await store.command(`ALTER TABLE ${store.table('retention_records')} UPDATE month = '2020-01' WHERE seq = ${moved} SETTINGS mutations_sync = 2`);
    } finally {
      await rt.close();
    }
    const r = run(['retention', 'report', '--month', MONTH, '--out', join(setup.dataDir, 'report-after-move.json')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`stored record: entry ${moved} was changed after it was written`));
  });

  it('the newest entries deleted with the audit trail’s tail are named through the audit trail’s own check', async () => {
    // Found from outside (2026-12-07): with the audit trail's newest entries removed too, the head it names agreed with
    // the shortened record, and the report said "intact"; only cdr audit verify told.
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    try {
      const store = requireStore(rt);
      const newest = Number((await store.query<{ n: string }>(`SELECT max(seq) n FROM ${store.table('audit_log')}`))[0]!.n);
      await store.command(`ALTER TABLE ${store.table('audit_log')} DELETE WHERE seq >= ${newest - 1} SETTINGS mutations_sync = 2`);
    } finally {
      await rt.close();
    }
    const r = run(['retention', 'report', '--month', MONTH, '--out', join(setup.dataDir, 'report-after-audit-tail.json')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /stored record: the audit trail, which names the record's newest entries, does not verify \(chain \S+, entry \d+: /);
  });

  it('says exit 2 for a file that is no retention report (a law-enforcement answer, {}), not "changed"', () => {
    for (const [name, doc] of [
      ['lea-answer.json', { request_id: 'lea-1', records: [], receipt: { signature: 'x' } }],
      ['empty.json', {}],
    ] as const) {
      const other = join(setup.dataDir, name);
      writeFileSync(other, JSON.stringify(doc));
      const v = run(['retention', 'verify-report', other, '--json']);
      assert.equal(v.status, 2, v.stdout + v.stderr);
      const result = JSON.parse(v.stdout) as { ok: boolean; report: boolean; problems: string[] };
      assert.deepEqual([result.ok, result.report], [false, false]);
      assert.match(result.problems[0]!, /^not a retention report/);
      // In words, it says so first — not "NOT intact" and a line about keys it never looked at (found from outside).
      const text = run(['retention', 'verify-report', other]);
      assert.equal(text.status, 2, text.stdout + text.stderr);
      assert.match(text.stdout, /^\S+: not a retention report — nothing was checked\n {2}- /);
      assert.doesNotMatch(text.stdout, /NOT intact|signatures checked/);
    }
  });

  it('refuses a month that is not YYYY-MM with exit 2', () => {
    const r = run(['retention', 'report', '--month', '2027-13']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--month/);
  });
});
