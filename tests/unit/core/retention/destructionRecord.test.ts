/**
 * The destruction record's report, checked offline: an untouched report verifies; each kind of edit an interested party
 * might make — a row count, a time, a key id, a verification detail, a removed entry, a re-signed report under another
 * key, an old chain head — is detected and named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  DESTRUCTION_GENESIS,
  buildDestructionReport,
  linkOf,
  keyIdOf,
  signDestructionEntry,
  verifyDestructionChain,
  verifyDestructionReport,
  type AnswerSigner,
  type DestructionEntry,
  type DestructionLink,
  type DestructionReport,
} from '../../../../services/core/index.ts';

function signer(): AnswerSigner & { publicKeyObject: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { keyId: keyIdOf(der), publicKey: der.toString('base64'), publicKeyObject: publicKey, sign: (d) => sign(null, d, privateKey) };
}

function chain(s: AnswerSigner): DestructionEntry[] {
  const out: DestructionEntry[] = [];
  let prev = DESTRUCTION_GENESIS;
  const items = [
    { class: 'identifiers', month: '2025-11', rows: 1200, key_ids: ['k-1'], keys_destroyed: 1 },
    { class: 'usage', month: '2022-12', rows: 40, key_ids: [], keys_destroyed: 0 },
    { class: 'pass', month: '', rows: 1240, key_ids: [], keys_destroyed: 1 },
    { class: 'identifiers', month: '2025-12', rows: 900, key_ids: ['k-2'], keys_destroyed: 1 },
  ];
  for (const [i, it] of items.entries()) {
    const e = signDestructionEntry(
      {
        ...it,
        seq: i + 1,
        prev_hash: prev,
        destroyed_at: new Date(Date.UTC(2026, 11, 1, 0, i)).toISOString(),
        pass_now: '2026-12-01T00:00:00.000Z',
        run_id: 'run-1',
        actor: 'schedule',
        holds_honoured: 0,
        verified: true,
        verification: { after: { vault: 0, index: 0, tokens: 0, keys: 0 }, on_disk: [{ table: 'month_keys', parts: 0, directories: 0 }] },
      },
      s,
    );
    out.push(e);
    prev = e.hash;
  }
  return out;
}

/** The whole chain as a report carries it (DestructionLog.report). */
function linksOf(entries: readonly DestructionEntry[]): DestructionLink[] {
  return entries.map(linkOf);
}

function reportOf(s: AnswerSigner, entries: DestructionEntry[], month = '2025-11', links: DestructionLink[] | null = linksOf(entries)): DestructionReport {
  const head = entries[entries.length - 1]!;
  return buildDestructionReport({
    month,
    entries: entries.filter((e) => e.month === month),
    head: { seq: head.seq, hash: head.hash },
    ...(links ? { links } : {}),
    generatedAt: Date.UTC(2026, 11, 2),
    signer: s,
  });
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('destruction record', () => {
  const s = signer();
  const entries = chain(s);

  it('an untouched report verifies, against the trusted key and against its own', () => {
    const r = reportOf(s, entries);
    const trusted = verifyDestructionReport(clone(r), [s.publicKeyObject]);
    assert.deepEqual(trusted.problems, []);
    assert.equal(trusted.ok, true);
    assert.equal(trusted.trusted_key, true);
    assert.equal(trusted.entries, 1);
    const own = verifyDestructionReport(clone(r));
    assert.equal(own.ok, true);
    assert.equal(own.trusted_key, false);
  });

  it('names a changed row count, time, key id or verification detail', () => {
    const r = reportOf(s, entries);
    const edits: [string, (x: DestructionReport) => void, RegExp][] = [
      ['rows', (x) => (x.entries[0]!.rows = 12), /entry 1 .*content does not match|report signature/],
      ['time', (x) => (x.entries[0]!.destroyed_at = '2027-06-01T00:00:00.000Z'), /entry 1 .*content does not match|report signature/],
      ['key id', (x) => (x.entries[0]!.key_ids = ['k-other']), /entry 1 .*content does not match|report signature/],
      ['verification', (x) => ((x.entries[0]!.verification['after'] as { tokens: number }).tokens = 5), /verification details do not match/],
    ];
    for (const [what, edit, expected] of edits) {
      const x = clone(r);
      edit(x);
      const check = verifyDestructionReport(x, [s.publicKeyObject]);
      assert.equal(check.ok, false, what);
      assert.ok(
        check.problems.some((p) => expected.test(p)),
        `${what}: ${check.problems.join(' | ')}`,
      );
    }
  });

  it('refuses a field the signatures do not cover, naming it, at the top, in an entry or in the chain head', () => {
    // Found from outside: an added `"note":"approved by DPO"` was dropped before checking, and the report verified.
    const r = reportOf(s, entries);
    // And found from outside (2026-12-06): then it said "not a retention report — nothing was checked" (exit 2). It is a
    // report that was changed: named, and the rest checked.
    const added: [string, (x: Record<string, unknown> & DestructionReport) => void, RegExp][] = [
      ['top', (x) => (x['note'] = 'approved by DPO'), /^member `note` is not part of the signed report/],
      [
        'entry',
        (x) => ((x.entries[0] as unknown as Record<string, unknown>)['comment'] = 'x'),
        /^entries\[0\]: member `comment` is not part of the signed entry/,
      ],
      ['head', (x) => ((x.chain_head as unknown as Record<string, unknown>)['by'] = 'x'), /^chain_head: member `by` is not part of the signed head/],
      // Found in review: inside the links too, and names an `in` check took for members.
      [
        'link',
        (x) => ((x.chain_links![1] as unknown as Record<string, unknown>)['ok'] = true),
        /^chain_links\[1\]: member `ok` is not part of the signed link/,
      ],
      ['constructor', (x) => ((x as Record<string, unknown>)['constructor'] = 'x'), /^member `constructor` is not part of the signed report/],
    ];
    for (const [where, add, expected] of added) {
      const x = clone(r) as Record<string, unknown> & DestructionReport;
      add(x);
      const check = verifyDestructionReport(x, [s.publicKeyObject]);
      assert.equal(check.ok, false, where);
      assert.equal(check.report, true, where);
      assert.equal(check.problems.length, 1, `${where}: ${check.problems.join(' | ')}`);
      assert.match(check.problems[0]!, expected, where);
    }
    // An added member beside another change: both named.
    const both = clone(r) as Record<string, unknown> & DestructionReport;
    both['note'] = 'x';
    both.entries[0]!.rows += 1;
    assert.equal(verifyDestructionReport(both, [s.publicKeyObject]).problems.length, 3, 'the member, the entry hash and the report signature');
  });

  it('detects a removed entry and a report re-signed by another key', () => {
    const x = clone(reportOf(s, entries));
    x.entries = [];
    assert.ok(verifyDestructionReport(x, [s.publicKeyObject]).problems.some((p) => /report signature does not verify/.test(p)));
    const mallory = signer();
    const forged = reportOf(mallory, chain(mallory));
    const check = verifyDestructionReport(forged, [s.publicKeyObject]);
    assert.equal(check.ok, false);
    assert.ok(check.problems.some((p) => /none of the trusted keys/.test(p)));
  });

  it('refuses an entry of another month and a chain head older than the entries', () => {
    const wrongMonth = buildDestructionReport({
      month: '2025-11',
      entries: [entries[3]!],
      head: { seq: 4, hash: entries[3]!.hash },
      generatedAt: 0,
      signer: s,
    });
    assert.ok(verifyDestructionReport(wrongMonth, [s.publicKeyObject]).problems.some((p) => /another month/.test(p)));
    const oldHead = buildDestructionReport({ month: '2025-12', entries: [entries[3]!], head: { seq: 2, hash: entries[1]!.hash }, generatedAt: 0, signer: s });
    assert.ok(verifyDestructionReport(oldHead, [s.publicKeyObject]).problems.some((p) => /chain head .* older/.test(p)));
  });

  it('carries the whole chain: an entry of any month removed from the stored record is named, in the check and the summary', () => {
    // Found from outside (2026-12-06): the "held purge" entry deleted from retention_records; the month's report and
    // its check both said "intact" (entries of one month are not consecutive in the chain, so no link was followed).
    const intact = verifyDestructionReport(reportOf(s, entries), [s.publicKeyObject]);
    assert.deepEqual([intact.ok, intact.whole_chain, intact.problems], [true, true, []]);
    // Entries 1 to 3 (the newest, 4, taken away leaves a shorter whole chain: see the test of the audit trail's head).
    for (const removed of [0, 1, 2]) {
      const left = entries.filter((e) => e.seq !== removed + 1);
      // The report is made by the system from what is stored: honest about the gap, signed.
      const r = reportOf(s, left, '2025-11');
      const check = verifyDestructionReport(clone(r), [s.publicKeyObject]);
      assert.equal(check.ok, false, `entry ${removed + 1} removed`);
      assert.ok(
        check.problems.some((p) => p.startsWith(`entry ${removed + 1} of the chain is missing`)),
        check.problems.join(' | '),
      );
      assert.match(r.summary, new RegExp(`THE STORED RECORD IS NOT WHOLE: entry ${removed + 1} of the chain is missing`));
    }
    // A link left out of the report file by hand breaks its signature and the links.
    const x = clone(reportOf(s, entries));
    x.chain_links = x.chain_links!.filter((l) => l.seq !== 2);
    const edited = verifyDestructionReport(x, [s.publicKeyObject]);
    assert.ok(edited.problems.some((p) => /report signature does not verify/.test(p)));
    assert.ok(edited.problems.some((p) => p.startsWith('entry 2 of the chain is missing')));
    // An entry made up to fill the gap (another content, so another hash) does not link to the entry after it.
    const filled = linksOf(entries);
    filled[1] = { ...filled[1]!, hash: 'f'.repeat(16) };
    assert.ok(
      verifyDestructionReport(reportOf(s, entries, '2025-11', filled), [s.publicKeyObject]).problems.includes(
        'entry 3 of the chain does not follow the entry before it (chain broken)',
      ),
    );
    // A link is small: 16 hex digits of each hash.
    assert.deepEqual(Object.keys(linksOf(entries)[0]!).sort(), ['hash', 'month', 'prev', 'seq']);
    assert.equal(linksOf(entries)[0]!.hash.length, 16);
    // An entry of the month in the chain but not in the report.
    const short = buildDestructionReport({
      month: '2025-12',
      entries: [],
      head: { seq: 4, hash: entries[3]!.hash },
      links: linksOf(entries),
      generatedAt: 0,
      signer: s,
    });
    assert.ok(verifyDestructionReport(short, [s.publicKeyObject]).problems.includes('entry 4 of the chain is about 2025-12 and missing from the report'));
    // The newest entries taken away leave a shorter whole chain: the head the audit trail names says they are missing.
    const audited = { seq: 4, hash: entries[3]!.hash, at: '2026-12-01T00:05:00.000Z' };
    /** The report of 2025-11 over the chain's first `n` entries, with the audit trail's head after all four. */
    const over = (n: number) =>
      buildDestructionReport({
        month: '2025-11',
        entries: [entries[0]!],
        head: { seq: n, hash: entries[n - 1]!.hash },
        links: linksOf(entries.slice(0, n)),
        auditedHead: audited,
        generatedAt: 0,
        signer: s,
      });
    const cut = over(2);
    const cutCheck = verifyDestructionReport(clone(cut), [s.publicKeyObject]);
    assert.deepEqual(cutCheck.problems, [
      'entries 3–4 of the chain, which the audit trail names (retention pass done at 2026-12-01T00:05:00.000Z), missing (removed from the end of the stored record)',
    ]);
    assert.match(cut.summary, /THE STORED RECORD IS NOT WHOLE: entries 3–4/);
    // The whole chain with the same audited head: nothing to say.
    assert.deepEqual(verifyDestructionReport(over(4), [s.publicKeyObject]).problems, []);
    // A report made before the links were carried still verifies (and says it could not follow the whole chain).
    const old = verifyDestructionReport(reportOf(s, entries, '2025-11', null), [s.publicKeyObject]);
    assert.deepEqual([old.ok, old.whole_chain], [true, false]);
  });

  it('the summary says when the pass’s clock was moved (a drill), with the clock and the real time', () => {
    // Found from outside (2026-12-06): a drill's report said "identifiers destroyed and verified at <real time>", a month
    // before the month's cutoff; the moved clock was only inside the entries.
    const drill = entries.map((e) => ({ ...e, pass_now: '2027-01-01T00:00:00.000Z' }));
    const r = reportOf(s, drill, '2025-11');
    assert.match(
      r.summary,
      /1 action\(s\) by a pass whose clock was MOVED \(a drill\): rules applied as at 2027-01-01T00:00:00\.000Z, carried out at 2026-12-01T00:00:00\.000Z/,
    );
    // The chain's own entries (passes on the real clock): nothing said.
    assert.doesNotMatch(reportOf(s, entries).summary, /MOVED/);
    // A drill an hour ahead: its entries say so themselves (found in review: under a day's gap it read as on schedule).
    const hourAhead = entries.map((e) => ({ ...e, pass_now: '2026-12-01T01:00:00.000Z' }));
    assert.doesNotMatch(reportOf(s, hourAhead, '2025-11').summary, /MOVED/);
    const marked = hourAhead.map((e) => ({ ...e, verification: { ...e.verification, clock_moved: true } }));
    assert.match(
      reportOf(s, marked, '2025-11').summary,
      /1 action\(s\) by a pass whose clock was MOVED \(a drill\): rules applied as at 2026-12-01T01:00:00\.000Z/,
    );
  });

  it('is not fooled by a document of another kind', () => {
    const check = verifyDestructionReport({ records: [] }, [s.publicKeyObject]);
    assert.equal(check.ok, false);
    assert.match(check.problems[0]!, /not a retention report/);
  });

  it('recomputes a whole stored chain: a gap, an edit and a foreign signature are each found', () => {
    assert.deepEqual(verifyDestructionChain(entries, [s.publicKeyObject]), []);
    const gap = [entries[0]!, entries[2]!, entries[3]!];
    assert.ok(verifyDestructionChain(gap, [s.publicKeyObject]).some((p) => /entry 2 is missing/.test(p)));
    const edited = clone(entries);
    edited[1]!.rows = 1;
    assert.ok(verifyDestructionChain(edited, [s.publicKeyObject]).some((p) => /entry 2 was changed/.test(p)));
    assert.ok(verifyDestructionChain(entries, [signer().publicKeyObject]).some((p) => /unknown key/.test(p)));
  });
});

describe('destruction record: begun entries (written before a pass destroys)', () => {
  const s = signer();
  /** A chain of `items` (verified unless said), all of month 2025-11. */
  function chainOf(
    items: { run: string; stage?: 'begun'; verified?: boolean; rows?: number; class?: string; holdId?: string; holds?: number }[],
  ): DestructionEntry[] {
    const out: DestructionEntry[] = [];
    let prev = DESTRUCTION_GENESIS;
    for (const [i, it] of items.entries()) {
      const begun = it.stage === 'begun';
      const e = signDestructionEntry(
        {
          class: it.class ?? 'identifiers',
          month: '2025-11',
          rows: it.rows ?? (begun ? 0 : 1200),
          key_ids: ['k-1'],
          keys_destroyed: begun ? 0 : 1,
          seq: i + 1,
          prev_hash: prev,
          destroyed_at: new Date(Date.UTC(2026, 11, 1, 0, i)).toISOString(),
          pass_now: '2026-12-01T00:00:00.000Z',
          run_id: it.run,
          actor: 'schedule',
          holds_honoured: it.holds ?? 0,
          verified: it.verified ?? !begun,
          verification: {
            ...(begun ? { stage: 'begun', planned_rows: 1200, planned_keys: 1 } : { after: { vault: 0 } }),
            ...(it.holdId ? { hold_id: it.holdId } : {}),
          },
        },
        s,
      );
      out.push(e);
      prev = e.hash;
    }
    return out;
  }

  it('a begun entry followed by its own pass is no problem and no extra action in the summary', () => {
    const r = reportOf(s, chainOf([{ run: 'a', stage: 'begun' }, { run: 'a' }]));
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, []);
    assert.match(r.summary, /^1 retention action\(s\) recorded for 2025-11; identifiers destroyed and verified at 2026-12-01T00:01:00.000Z\. Check/);
  });
  it('the summary names what each class did, and what was not verified', () => {
    // Found by an auditor: a month whose released hold's copies were purged read "identifiers destroyed" alone.
    const r = reportOf(
      s,
      chainOf([
        { run: 'a' },
        { run: 'a', class: 'held', holdId: 'hold-1' },
        { run: 'a', class: 'held', holdId: 'hold-2' },
        { run: 'a', class: 'traffic', verified: false },
      ]),
    );
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, [
      'entry 4 (traffic 2025-11): the pass recorded that its verification failed',
    ]);
    assert.match(
      r.summary,
      /^4 retention action\(s\) recorded for 2025-11; identifiers destroyed and verified at 2026-12-01T00:00:00\.000Z; the copies of 2 released legal hold\(s\) purged and verified at 2026-12-01T00:02:00\.000Z; 1 action\(s\) NOT verified \(traffic 2025-11\): see their verification\. Check/,
    );
  });
  it('the summary says when active legal holds keep copies of the month’s identifiers past their destruction', () => {
    // Found from outside (2026-12-06): a month with holds honoured read "identifiers destroyed and verified" alone.
    const r = reportOf(s, chainOf([{ run: 'a', holds: 2 }]));
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, []);
    assert.match(
      r.summary,
      /identifiers destroyed and verified at 2026-12-01T00:00:00\.000Z; 2 legal hold\(s\) covering the month were active at that pass: their copies of its records, if any, are kept under each hold's own key until the hold is released and a pass purges them\. Check/,
    );
  });
  it('a begun entry its pass never closed is named in the summary with its time, and the report still verifies', () => {
    const r = reportOf(s, chainOf([{ run: 'a', stage: 'begun' }, { run: 'b', stage: 'begun' }, { run: 'b' }]));
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, []);
    assert.match(r.summary, /^1 retention action\(s\) recorded for 2025-11; identifiers destroyed and verified at 2026-12-01T00:02:00.000Z; /);
    assert.match(r.summary, /; 1 action\(s\) begun by a pass that did not record its end \(stopped part-way\), first at 2026-12-01T00:00:00.000Z: /);
  });
  it('an entry marked begun that claims rows is no begun entry: its failed verification is a problem', () => {
    const r = reportOf(s, chainOf([{ run: 'a', stage: 'begun', rows: 5 }, { run: 'a' }]));
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, [
      'entry 1 (identifiers 2025-11): the pass recorded that its verification failed',
    ]);
  });
  it('an entry that is not begun and says its verification failed is still a problem', () => {
    const r = reportOf(
      s,
      chainOf([
        { run: 'a', stage: 'begun' },
        { run: 'a', verified: false },
      ]),
    );
    assert.deepEqual(verifyDestructionReport(clone(r), [s.publicKeyObject]).problems, [
      'entry 2 (identifiers 2025-11): the pass recorded that its verification failed',
    ]);
  });
});
