/**
 * Tampering with the audit trail, in the real engine, as someone with write access to ClickHouse would: one changed
 * field, one deleted entry in the middle, two entries swapped, the newest entries deleted, the newest entries deleted
 * together with their checkpoints, the whole chain rewritten with fresh hashes. Each is detected and names the entry;
 * the untouched trail verifies. `cdr audit verify` says the same with its exit code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { entryHash, type AuditEntry } from '../../../services/core/index.ts';
import { AuditTrail, DB_CHECKPOINT_INTERVAL_MS, entryFromRow, readAnchors, verifyAuditTrail } from '../../../services/platform/audit/index.ts';
import type { Storage } from '../../../services/platform/clickhouse/index.ts';
import { chTime } from '../../../services/platform/identity/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { testSetup } from '../../support/testEnv.ts';

const bin = join(import.meta.dirname, '../../../bin/cdr.cjs');

describe('tampering with the audit trail is detected and named', () => {
  const setup = testSetup({ CDR_AUDIT_CHAIN: 'test' });
  let rt: PipelineRuntime;
  let api: TestApi;
  let entries: Record<string, unknown>[] = [];
  let checkpoints: Record<string, unknown>[] = [];
  let last = 0;

  const q = () => requireStorage(rt).storage;
  const t = (name: string) => q().table(name);
  const verify = async () => verifyAuditTrail(q(), [api.signer.publicKeyObject], setup.dataDir, Date.now());
  const restore = async () => {
    await q().command(`TRUNCATE TABLE ${t('audit_log')}`);
    await q().command(`TRUNCATE TABLE ${t('audit_checkpoints')}`);
    await q().insert('audit_log', entries);
    await q().insert('audit_checkpoints', checkpoints);
    const ok = await verify();
    assert.equal(ok.ok, true, JSON.stringify(ok.problems));
  };
  const mutate = async (sql: string, params?: Record<string, unknown>) => q().command(sql, params, { mutations_sync: '2' });

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    api = await openTestApi(rt);
    // Twenty-odd entries: requests answered, refused and denied.
    for (let i = 0; i < 8; i++) await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('legal') });
    for (let i = 0; i < 4; i++) await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('dpo') });
    for (let i = 0; i < 4; i++) await api.app.inject({ method: 'GET', url: '/v1/holds' });
    for (let i = 0; i < 4; i++) await api.app.inject({ method: 'GET', url: '/v1/audit?limit=5', headers: auth('auditor') });
    await snapshot();
    assert.ok(last >= 20, `${last} entries`);
  });

  /** What the restores put back: the trail as it is now (every request adds to it, so take it after the last one). */
  async function snapshot(): Promise<void> {
    await api.services.audit.flush();
    entries = await q().query(`SELECT * FROM ${t('audit_log')} ORDER BY seq`);
    checkpoints = await q().query(`SELECT * FROM ${t('audit_checkpoints')} ORDER BY seq, at`);
    last = entries.length;
  }

  after(async () => {
    await api?.close();
    await rt?.close();
  });

  it('the untouched trail verifies, through the API as well', async () => {
    const r = await verify();
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.equal(r.entries, last);
    assert.ok(r.anchors >= 1, 'an anchor file is kept outside the database');
    const res = await api.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth('auditor') });
    assert.equal(res.json<{ ok: boolean }>().ok, true);
    await snapshot();
  });

  it('anchors every request at once; the database row of its checkpoint follows within the interval', async () => {
    const maxSeq = async (table: string): Promise<number> =>
      Number((await q().query<{ n: string }>(`SELECT max(seq) AS n FROM ${t(table)} WHERE chain = 'test'`))[0]!.n);
    // The trail grows here: whatever happens, the restores of the tests below start from what it is afterwards.
    try {
      const rowsBefore = (await q().query(`SELECT 1 FROM ${t('audit_checkpoints')}`)).length;
      const requests = 12;
      for (let i = 0; i < requests; i++) {
        await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('legal') });
        // Answered means audited: the entry is stored, and the anchor outside the database already names it.
        const newest = await maxSeq('audit_log');
        await new Promise((resolve) => setImmediate(resolve));
        const anchor = readAnchors(setup.dataDir).find((a) => a.chain === 'test');
        assert.equal(anchor?.seq, newest, `the anchor after request ${i + 1}`);
      }
      // Requests a few ms apart: far fewer checkpoint rows than requests (one per request before).
      const rowsAdded = (await q().query(`SELECT 1 FROM ${t('audit_checkpoints')}`)).length - rowsBefore;
      assert.ok(rowsAdded < requests / 2, `${rowsAdded} checkpoint rows for ${requests} requests`);
      // Without a flush, the newest checkpoint reaches the database within the interval.
      await new Promise((resolve) => setTimeout(resolve, DB_CHECKPOINT_INTERVAL_MS + 500));
      assert.equal(await maxSeq('audit_checkpoints'), await maxSeq('audit_log'));
      const r = await verify();
      assert.equal(r.ok, true, JSON.stringify(r.problems));
    } finally {
      await snapshot();
    }
  });

  it('a checkpoint the database refuses is logged: the next request is still served, checkpointed and anchored', async () => {
    const { storage, keyRing } = requireStorage(rt);
    let refuse = 0;
    /** Entries let through before one is refused; -1: none refused. */
    let entriesBeforeRefusal = -1;
    const flaky: Storage = new Proxy(storage, {
      get(target, prop) {
        if (prop === 'insert')
          return async (table: string, ...rest: unknown[]) => {
            if (table === 'audit_checkpoints' && refuse > 0) {
              refuse--;
              throw new Error('the database refused the checkpoint');
            }
            if (table === 'audit_log' && entriesBeforeRefusal >= 0 && entriesBeforeRefusal-- === 0) throw new Error('the database refused the entry');
            return (target.insert as (...a: unknown[]) => Promise<void>)(table, ...rest);
          };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    const trail = await AuditTrail.open({
      storage: flaky,
      keyRing,
      signer: api.signer,
      chain: 'flaky',
      anchorDir: setup.dataDir,
      checkpointMs: 0,
      log: createLogger('silent'),
    });
    try {
      // Past the interval, so the burst's checkpoint row is written at once — and refused.
      await new Promise((resolve) => setTimeout(resolve, DB_CHECKPOINT_INTERVAL_MS + 100));
      refuse = 1;
      await trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The next entry is written (it used to be refused with the checkpoint's error) and its burst checkpointed.
      const second = await trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      await trail.flush();
      assert.equal(refuse, 0, 'the refusal happened');
      assert.equal(readAnchors(setup.dataDir).find((a) => a.chain === 'flaky')?.seq, second.seq);
      const stored = await q().query<{ n: string }>(`SELECT max(seq) AS n FROM ${t('audit_checkpoints')} WHERE chain = 'flaky'`);
      assert.equal(Number(stored[0]!.n), second.seq);
      // Two entries in one burst, the second refused: the first is still checkpointed (anchored) once the burst ends.
      entriesBeforeRefusal = 1;
      const first = trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      const refused = trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      const firstEntry = await first;
      await assert.rejects(refused, /refused the entry/);
      await trail.flush();
      assert.equal(readAnchors(setup.dataDir).find((a) => a.chain === 'flaky')?.seq, firstEntry.seq);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
      const r = await verify();
      assert.equal(r.ok, true, JSON.stringify(r.problems));
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await trail.close();
      // The tests below count the entries of the chain `test` alone: this chain goes, with its anchor.
      await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE chain = 'flaky'`);
      await mutate(`ALTER TABLE ${t('audit_checkpoints')} DELETE WHERE chain = 'flaky'`);
      rmSync(join(setup.dataDir, 'audit-anchor-flaky.json'), { force: true });
      await snapshot();
    }
  });

  it('an anchor file that cannot be written is logged, and the checkpoint row is stored at once', async () => {
    const { storage, keyRing } = requireStorage(rt);
    // A directory where the chain's anchor file belongs: writing the file (a rename onto it) fails.
    const blocked = join(setup.dataDir, 'audit-anchor-blocked.json');
    mkdirSync(join(blocked, 'in-the-way'), { recursive: true });
    const trail = await AuditTrail.open({
      storage,
      keyRing,
      signer: api.signer,
      chain: 'blocked',
      anchorDir: setup.dataDir,
      checkpointMs: 0,
      log: createLogger('silent'),
    });
    try {
      // Within the interval of the start checkpoint: with a working anchor this row would wait up to a second.
      const entry = await trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stored = await q().query<{ n: string }>(`SELECT max(seq) AS n FROM ${t('audit_checkpoints')} WHERE chain = 'blocked'`);
      assert.equal(Number(stored[0]!.n), entry.seq);
      // Marked as not anchored (signed), so its verification does not take the absent anchor for a deleted one.
      const kinds = await q().query<{ kind: string }>(`SELECT kind FROM ${t('audit_checkpoints')} WHERE chain = 'blocked' ORDER BY seq, at`);
      assert.ok(kinds.length > 0 && kinds.every((k) => k.kind.endsWith(' (not anchored)')), JSON.stringify(kinds));
      const own = await verifyAuditTrail(q(), [api.signer.publicKeyObject], setup.dataDir, Date.now(), 'blocked');
      assert.equal(own.ok, true, JSON.stringify(own.problems));
    } finally {
      await trail.close();
      await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE chain = 'blocked'`);
      await mutate(`ALTER TABLE ${t('audit_checkpoints')} DELETE WHERE chain = 'blocked'`);
      rmSync(blocked, { recursive: true, force: true });
      await snapshot();
    }
  });

  it('one changed field', async () => {
    await mutate(`ALTER TABLE ${t('audit_log')} UPDATE actor = 'someone-else' WHERE seq = 5`);
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.first_bad_entry?.seq, 5);
    assert.match(r.first_bad_entry.problem, /content does not match its hash \(changed\)/);
    await restore();
  });

  it('one deleted entry in the middle', async () => {
    await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq = 9`);
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.first_bad_entry?.seq, 9);
    assert.match(r.first_bad_entry.problem, /entry 9 is missing \(deleted\)/);
    await restore();
  });

  it('two entries swapped', async () => {
    // Each keeps its content but takes the other's place in the order.
    await mutate(`ALTER TABLE ${t('audit_log')} UPDATE seq = if(seq = 11, 12, 11) WHERE seq IN (11, 12)`).catch(async () => {
      // seq is a key column (not updatable): delete both and insert them with their places exchanged.
      const two = entries.filter((e) => Number(e['seq']) === 11 || Number(e['seq']) === 12);
      await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq IN (11, 12)`);
      await q().insert(
        'audit_log',
        two.map((e) => ({ ...e, seq: Number(e['seq']) === 11 ? 12 : 11 })),
      );
    });
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.first_bad_entry?.seq, 11);
    await restore();
  });

  it('the newest entries deleted (their checkpoint stays)', async () => {
    await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq > {n:UInt64}`, { n: last - 3 });
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.first_bad_entry?.seq, last - 2);
    assert.match(r.first_bad_entry.problem, new RegExp(`entries ${last - 2} to ${last} are missing.*newest entries deleted`));
    await restore();
  });

  it('the newest entries deleted together with their checkpoints (the anchor outside the database remains)', async () => {
    await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq > {n:UInt64}`, { n: last - 3 });
    await mutate(`ALTER TABLE ${t('audit_checkpoints')} DELETE WHERE seq > {n:UInt64}`, { n: last - 3 });
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.first_bad_entry?.seq, last - 2);
    assert.match(r.first_bad_entry.problem, /anchor kept outside the database/);
    await restore();
  });

  it('the newest entries deleted with their checkpoints and the anchor file: the missing anchor is named', async () => {
    // Found by an outside audit: with the anchor file removed too (it lives in the data directory by default), the
    // truncated trail verified ok. The anchor is written before any checkpoint row, so checkpoints without it say so.
    const anchorFile = join(setup.dataDir, 'audit-anchor-test.json');
    const kept = readFileSync(anchorFile);
    const own = () => verifyAuditTrail(q(), [api.signer.publicKeyObject], setup.dataDir, Date.now(), 'test');
    try {
      assert.equal((await own()).ok, true, 'the untouched trail with its anchor');
      rmSync(anchorFile);
      const alone = await own();
      assert.equal(alone.ok, false, 'the anchor alone deleted');
      assert.match(alone.first_bad_entry?.problem ?? '', /no anchor of chain test in .*signed checkpoint\(s\) of it: the anchor was deleted/);
      await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq > {n:UInt64}`, { n: last - 3 });
      await mutate(`ALTER TABLE ${t('audit_checkpoints')} DELETE WHERE seq > {n:UInt64}`, { n: last - 3 });
      const r = await own();
      assert.equal(r.ok, false);
      assert.match(r.first_bad_entry?.problem ?? '', /no anchor of chain test/);
      // A chain anchored elsewhere (another process's) is not required here.
      assert.equal((await verifyAuditTrail(q(), [api.signer.publicKeyObject], setup.dataDir, Date.now(), 'another-chain')).ok, true);
    } finally {
      writeFileSync(anchorFile, kept);
      await restore();
    }
  });

  it('a start that finds checkpoints but no anchor says so in the log, and writes no false alarm into the chain', async () => {
    // A moved anchor directory, or a chain shared by CLI runs on other hosts, looks the same as a deleted anchor: an
    // entry in the chain would stay 36 months (found in review). The verification of that chain still names it.
    const { storage, keyRing } = requireStorage(rt);
    const lines: string[] = [];
    const log = createLogger('warn', { write: (line: string) => void lines.push(line) });
    const open = () => AuditTrail.open({ storage, keyRing, signer: api.signer, chain: 'unanchored', anchorDir: setup.dataDir, checkpointMs: 0, log });
    let trail = await open();
    try {
      await trail.append({ actor: 'test', action: 'probe', outcome: 'ok' });
      await trail.close();
      rmSync(join(setup.dataDir, 'audit-anchor-unanchored.json'));
      const missing = await verifyAuditTrail(q(), [api.signer.publicKeyObject], setup.dataDir, Date.now(), 'unanchored');
      assert.equal(missing.ok, false);
      trail = await open();
      assert.ok(
        lines.some((l) => l.includes('no anchor of this chain in the anchor directory')),
        lines.join('\n'),
      );
      const breaks = await q().query(`SELECT seq FROM ${t('audit_log')} WHERE chain = 'unanchored' AND action = 'audit.break_detected'`);
      assert.deepEqual(breaks, []);
    } finally {
      await trail.close();
      await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE chain = 'unanchored'`);
      await mutate(`ALTER TABLE ${t('audit_checkpoints')} DELETE WHERE chain = 'unanchored'`);
      rmSync(join(setup.dataDir, 'audit-anchor-unanchored.json'), { force: true });
      await snapshot();
    }
  });

  it('the chain rewritten from an entry on, with fresh hashes (checkpoints need the signing key)', async () => {
    const rewritten: AuditEntry[] = [];
    let prev = '';
    for (const row of entries) {
      const e = entryFromRow(row as never);
      if (e.seq < 6) {
        prev = e.hash;
        continue;
      }
      const { hash: _old, ...content } = { ...e, prev_hash: prev, detail: e.seq === 6 ? 'nothing happened here' : e.detail };
      const hash = entryHash(content);
      rewritten.push({ ...content, hash });
      prev = hash;
    }
    await mutate(`ALTER TABLE ${t('audit_log')} DELETE WHERE seq >= 6`);
    await q().insert(
      'audit_log',
      rewritten.map((e) => ({ ...e, at: chTime(Date.parse(e.at)), prev_at: e.prev_at ? chTime(Date.parse(e.prev_at)) : null })),
    );
    const r = await verify();
    assert.equal(r.ok, false);
    assert.match(r.problems.map((p) => p.problem).join('\n'), /differs from the signed checkpoint/);
    await restore();
  });

  it('cdr audit verify exits 0 on the untouched trail and 1 naming the entry after a change', async () => {
    // A month key under the test's master key, which another master key does not open (as in a store with traffic).
    const month = new Date().toISOString().slice(0, 7);
    await requireStorage(rt).keyRing.keyForWriting(month, Date.now());
    await api.close();
    await rt.close();
    const run = (env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [bin, 'audit', 'verify'], {
        env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn', ...env },
        encoding: 'utf8',
        timeout: 120_000,
      });
    const clean = run();
    assert.equal(clean.status, 0, clean.stderr);
    assert.equal((JSON.parse(clean.stdout) as { ok: boolean }).ok, true);
    // An auditor without the master key (here: another one) verifies all the same: chains and signatures need none
    // (found from outside: it was refused with "the master key does not open the month key").
    const otherKey = run({ CDR_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') });
    assert.equal(otherKey.status, 0, otherKey.stderr);
    assert.equal((JSON.parse(otherKey.stdout) as { ok: boolean }).ok, true);
    // Its own chain's anchor is required: CDR_AUDIT_CHAIN (here `test`), or --chain.
    const anchorFile = join(setup.dataDir, 'audit-anchor-test.json');
    const kept = readFileSync(anchorFile);
    rmSync(anchorFile);
    try {
      const unanchored = run();
      assert.equal(unanchored.status, 1, unanchored.stdout);
      assert.match(unanchored.stdout, /no anchor of chain test in /);
      const named = spawnSync(process.execPath, [bin, 'audit', 'verify', '--chain', 'test'], {
        env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn', CDR_AUDIT_CHAIN: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(named.status, 1, named.stdout);
      // A misspelt chain would leave the real one's anchor unchecked and say ok (found from outside): refused, exit 2.
      const misspelt = spawnSync(process.execPath, [bin, 'audit', 'verify', '--chain', 'tset'], {
        env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn', CDR_AUDIT_CHAIN: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(misspelt.status, 2, misspelt.stdout + misspelt.stderr);
      assert.match(misspelt.stderr, /--chain: the audit trail has no chain "tset" \(it has .*"test"/);
    } finally {
      writeFileSync(anchorFile, kept);
    }
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    await mutate(`ALTER TABLE ${t('audit_log')} UPDATE outcome = 'ok' WHERE seq = 14`);
    await rt.close();
    const broken = run();
    assert.equal(broken.status, 1);
    const report = JSON.parse(broken.stdout) as { ok: boolean; first_bad_entry: { seq: number; chain: string } };
    assert.equal(report.ok, false);
    assert.equal(report.first_bad_entry.seq, 14);
    assert.match(broken.stderr, /test entry 14/);
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    api = await openTestApi(rt);
  });
});
