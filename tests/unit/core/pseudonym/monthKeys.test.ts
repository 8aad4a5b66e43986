import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  KeyWrapError,
  deriveMonthKey,
  generateMonthKey,
  openIdentifier,
  sealIdentifier,
  tokenOf,
  unwrapMonthKey,
  wrapMonthKey,
} from '../../../../services/core/pseudonym/monthKeys.ts';

const master = randomBytes(32);

describe('month key wrapping', () => {
  it('round-trips under the master key', () => {
    const raw = generateMonthKey();
    const wrapped = wrapMonthKey(master, '2025-03', raw);
    assert.deepEqual(unwrapMonthKey(master, '2025-03', wrapped), raw);
  });
  it('the wrapped form does not contain the key', () => {
    const raw = generateMonthKey();
    const wrapped = Buffer.from(wrapMonthKey(master, '2025-03', raw), 'base64');
    assert.equal(wrapped.indexOf(raw), -1);
  });
  it('fails under another master key', () => {
    const wrapped = wrapMonthKey(master, '2025-03', generateMonthKey());
    assert.throws(() => unwrapMonthKey(randomBytes(32), '2025-03', wrapped), KeyWrapError);
  });
  it('fails when moved to another month (month is authenticated)', () => {
    const wrapped = wrapMonthKey(master, '2025-03', generateMonthKey());
    assert.throws(() => unwrapMonthKey(master, '2025-04', wrapped), KeyWrapError);
  });
  it('fails when tampered with', () => {
    const buf = Buffer.from(wrapMonthKey(master, '2025-03', generateMonthKey()), 'base64');
    buf[buf.length - 1] = buf[buf.length - 1]! ^ 1;
    assert.throws(() => unwrapMonthKey(master, '2025-03', buf.toString('base64')), KeyWrapError);
  });
});

describe('tokens', () => {
  const march = deriveMonthKey('2025-03', 'k1', generateMonthKey());
  const april = deriveMonthKey('2025-04', 'k2', generateMonthKey());
  it('are stable within a month', () => {
    assert.equal(tokenOf(march, 'msisdn', '+60123456789'), tokenOf(march, 'msisdn', '+60123456789'));
  });
  it('differ across months', () => {
    assert.notEqual(tokenOf(march, 'msisdn', '+60123456789'), tokenOf(april, 'msisdn', '+60123456789'));
  });
  it('differ between identifiers and between types', () => {
    assert.notEqual(tokenOf(march, 'msisdn', '+60123456789'), tokenOf(march, 'msisdn', '+60123456788'));
    assert.notEqual(tokenOf(march, 'msisdn', 'x'), tokenOf(march, 'email', 'x'));
  });
  it('are 128-bit hex and not a plain hash of the number', async () => {
    const t = tokenOf(march, 'msisdn', '+60123456789');
    assert.match(t, /^[0-9a-f]{32}$/);
    const { createHash } = await import('node:crypto');
    assert.ok(!createHash('sha256').update('+60123456789').digest('hex').startsWith(t));
    assert.ok(!createHash('sha256').update('msisdn:+60123456789').digest('hex').startsWith(t));
  });
  it('are the same for a key derived again from the same raw key (a restart)', () => {
    const raw = generateMonthKey();
    assert.equal(tokenOf(deriveMonthKey('2025-05', 'a', raw), 'email', 'a@b.example'), tokenOf(deriveMonthKey('2025-05', 'a', raw), 'email', 'a@b.example'));
  });
});

describe('vault sealing', () => {
  const key = deriveMonthKey('2025-03', 'k1', generateMonthKey());
  it('opens back to the normalised identifier', () => {
    const token = tokenOf(key, 'email', 'jörg@xn--bcher-kva.example');
    assert.equal(openIdentifier(key, token, sealIdentifier(key, token, 'jörg@xn--bcher-kva.example')), 'jörg@xn--bcher-kva.example');
  });
  it('is deterministic per identifier (idempotent rewrites) and differs between identifiers', () => {
    const t1 = tokenOf(key, 'msisdn', '+60123456789');
    assert.deepEqual(sealIdentifier(key, t1, '+60123456789'), sealIdentifier(key, t1, '+60123456789'));
    const t2 = tokenOf(key, 'msisdn', '+60123456788');
    assert.notDeepEqual(sealIdentifier(key, t2, '+60123456788').subarray(0, 12), sealIdentifier(key, t1, '+60123456789').subarray(0, 12));
  });
  it('does not open under another month key or bound to another token', () => {
    const token = tokenOf(key, 'msisdn', '+60123456789');
    const sealed = sealIdentifier(key, token, '+60123456789');
    assert.throws(() => openIdentifier(deriveMonthKey('2025-03', 'k2', generateMonthKey()), token, sealed), KeyWrapError);
    assert.throws(() => openIdentifier(key, 'f'.repeat(32), sealed), KeyWrapError);
  });
  it('ciphertext does not contain the identifier', () => {
    const token = tokenOf(key, 'msisdn', '+60123456789');
    assert.equal(sealIdentifier(key, token, '+60123456789').indexOf('+60123456789'), -1);
  });
});
