import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveMonthKey, openReceipt, sealReceipt, type MonthKey } from '../../../../services/core/index.ts';

const keyOf = (name: string): MonthKey => deriveMonthKey(name, `id-${name}`, randomBytes(32));

describe('a receipt sealed under several keys', () => {
  const keys = ['2026-12', '2025-12', 'hold:hold-1'].map((name) => ({ name, key: keyOf(name) }));
  const ring = new Map(keys.map((k) => [k.name, k.key]));
  const lookup = async (name: string) => ring.get(name);
  const text = JSON.stringify({ format: 'cdr-pipeline/signed-answer/2', record_digests: 'ab'.repeat(64) });

  it('opens while every key lives, and names each key it needs without holding anything of the text', async () => {
    const sealed = sealReceipt('lea-1', text, keys);
    assert.deepEqual(
      sealed.shares.map((s) => s.key),
      ['2026-12', '2025-12', 'hold:hold-1'],
    );
    assert.ok(!sealed.sealed.includes('signed-answer') && !JSON.stringify(sealed.shares).includes('record_digests'));
    assert.equal(await openReceipt('lea-1', sealed, lookup), text);
  });

  it('does not open once any one of its keys is gone', async () => {
    const sealed = sealReceipt('lea-2', text, keys);
    for (const gone of keys.map((k) => k.name))
      assert.equal(await openReceipt('lea-2', sealed, async (name) => (name === gone ? null : ring.get(name))), undefined, gone);
  });

  it('refuses a share or a block moved to another request, or a share under another key', async () => {
    const a = sealReceipt('lea-3', text, keys);
    const b = sealReceipt('lea-4', text, keys);
    await assert.rejects(openReceipt('lea-4', a, lookup));
    await assert.rejects(openReceipt('lea-3', { sealed: a.sealed, shares: [b.shares[0]!, ...a.shares.slice(1)] }, lookup));
    await assert.rejects(
      openReceipt('lea-3', { sealed: a.sealed, shares: [{ key: '2026-12', share: a.shares[1]!.share }, a.shares[1]!, a.shares[2]!] }, lookup),
    );
    // Each sealing draws new shares: the same text twice is sealed differently.
    assert.notEqual(a.sealed, sealReceipt('lea-3', text, keys).sealed);
  });

  it('needs at least one key', () => {
    assert.throws(() => sealReceipt('lea-5', text, []));
  });
});
