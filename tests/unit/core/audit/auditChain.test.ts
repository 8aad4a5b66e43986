import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import {
  AuditChainVerifier,
  GENESIS_HASH,
  checkpointBytes,
  entryHash,
  keyIdOf,
  type AuditCheckpoint,
  type AuditEntry,
  type AuditEntryContent,
} from '../../../../services/core/index.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keyId = keyIdOf(publicKey.export({ type: 'spki', format: 'der' }));
const T0 = Date.UTC(2026, 10, 1);

function chain(n: number, name = 'main', firstSeq = 1, prev = GENESIS_HASH, prevAt: string | null = null): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + i;
    const content: AuditEntryContent = {
      chain: name,
      seq,
      at: new Date(T0 + seq * 1000).toISOString(),
      prev_at: prevAt,
      actor: `user-${seq % 3}`,
      roles: 'auditor',
      action: 'audit.read',
      method: 'GET',
      route: '/v1/audit',
      status: 200,
      outcome: 'ok',
      authority: '',
      case_reference: '',
      legal_basis: '',
      request_id: '',
      subject_type: '',
      subject_token: '',
      subject_month: '',
      rows: seq,
      confidential: false,
      client_ip: '127.0.0.1',
      detail: '',
      prev_hash: prev,
    };
    const e = { ...content, hash: entryHash(content) };
    out.push(e);
    prev = e.hash;
    prevAt = e.at;
  }
  return out;
}

function checkpoint(e: AuditEntry, kind = 'write'): AuditCheckpoint {
  const body = { chain: e.chain, seq: e.seq, hash: e.hash, at: new Date(Date.parse(e.at) + 1).toISOString(), kind };
  return { ...body, key_id: keyId, signature: sign(null, checkpointBytes(body), privateKey).toString('base64') };
}

function verify(entries: AuditEntry[], cps: AuditCheckpoint[] = [], anchors: AuditCheckpoint[] = [], now = T0 + 86_400_000) {
  const v = new AuditChainVerifier([publicKey], now);
  for (const c of cps) v.addCheckpoint(c);
  for (const a of anchors) v.addCheckpoint(a, 'anchor');
  for (const e of [...entries].sort((a, b) => a.seq - b.seq)) v.addEntry(e);
  return v.finish();
}

describe('the audit chain', () => {
  const entries = chain(20);
  const cps = [checkpoint(entries[9]!), checkpoint(entries[19]!)];

  it('an untouched chain verifies', () => {
    const r = verify(entries, cps, [cps[1]!]);
    assert.equal(r.ok, true);
    assert.equal(r.entries, 20);
    assert.deepEqual(r.chains[0]!.last_seq, 20);
  });

  it('one changed field is named', () => {
    const changed = entries.map((e) => (e.seq === 4 ? { ...e, actor: 'mallory' } : e));
    const r = verify(changed, cps);
    assert.deepEqual(r.first_bad_entry, { chain: 'main', seq: 4, problem: 'entry 4: its content does not match its hash (changed)' });
  });

  it('a deleted entry in the middle is named', () => {
    const r = verify(
      entries.filter((e) => e.seq !== 7),
      cps,
    );
    assert.equal(r.first_bad_entry?.seq, 7);
    assert.match(r.first_bad_entry.problem, /entry 7 is missing/);
  });

  it('two swapped entries are named', () => {
    const swapped = entries.map((e) => (e.seq === 12 ? { ...entries[12]!, seq: 12 } : e.seq === 13 ? { ...entries[11]!, seq: 13 } : e));
    const r = verify(swapped, cps);
    assert.equal(r.first_bad_entry?.seq, 12);
  });

  it('the newest entries deleted: the checkpoint, or the anchor, points past the end', () => {
    const r = verify(entries.slice(0, 17), cps);
    assert.equal(r.first_bad_entry?.seq, 18);
    assert.match(r.first_bad_entry.problem, /entries 18 to 20 are missing: the signed checkpoint/);
    const withoutCheckpoint = verify(entries.slice(0, 17), [cps[0]!], [cps[1]!]);
    assert.match(withoutCheckpoint.first_bad_entry!.problem, /anchor kept outside the database/);
    assert.equal(
      verify(entries.slice(0, 17), [cps[0]!]).ok,
      true,
      'without an anchor, deleting entries and their checkpoints is not seen: why the anchor exists',
    );
  });

  it('a chain rewritten with fresh hashes fails its signed checkpoints; a forged checkpoint fails its signature', () => {
    const forgedFrom = (() => {
      const out: AuditEntry[] = [...entries.slice(0, 5)];
      let prev = entries[4]!.hash;
      for (const e of entries.slice(5)) {
        const { hash: _h, ...c } = { ...e, prev_hash: prev, detail: e.seq === 6 ? 'rewritten' : e.detail };
        const h = entryHash(c);
        out.push({ ...c, hash: h });
        prev = h;
      }
      return out;
    })();
    const r = verify(forgedFrom, cps);
    assert.equal(r.ok, false);
    assert.match(r.problems.map((p) => p.problem).join('\n'), /entry 10: differs from the signed checkpoint/);
    const forgedCheckpoint = { ...cps[1]!, seq: 25 };
    assert.match(verify(entries, [cps[0]!, forgedCheckpoint]).problems[0]!.problem, /signature does not verify/);
  });

  it('accepts a head that expired (36 months on), not one deleted early', () => {
    const old = chain(10);
    const later = chain(5, 'main', 11, old[9]!.hash, old[9]!.at);
    const after37Months = Date.UTC(2029, 11, 1);
    assert.equal(verify(later, [], [], after37Months).ok, true);
    const r = verify(later, [], [], T0 + 86_400_000);
    assert.equal(r.first_bad_entry?.seq, 1);
    assert.match(r.first_bad_entry.problem, /entries 1 to 10 are missing/);
  });

  it('two writers on one chain (a fork) are reported', () => {
    const fork = chain(3, 'main', 18, entries[16]!.hash, entries[16]!.at);
    const r = verify([...entries, fork[0]!], cps);
    assert.match(r.problems.map((p) => p.problem).join('\n'), /appears more than once/);
  });
});
