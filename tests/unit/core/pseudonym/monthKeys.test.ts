import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import {
  KeyWrapError,
  deriveMonthKey,
  generateMonthKey,
  openIdentifier,
  sealIdentifier,
  tokenAndSeal,
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

describe('tokenAndSeal (one HMAC for the token and the nonce)', () => {
  const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
  const other = deriveMonthKey('2026-11', 'k2', generateMonthKey());
  const ids: [string, string][] = [
    ['msisdn', '+60123456789'],
    ['msisdn', '+447700900123'],
    ['email', 'ünïcödé@xn--bcher-kva.example'],
    ['alphanumeric', 'GB|ACME'],
    ['shortcode', 'MY|32665'],
  ];
  it('gives exactly the token tokenOf gives, and a sealed form that opens to the identifier', () => {
    for (const [type, value] of ids) {
      const { token, sealed } = tokenAndSeal(key, type, value);
      assert.equal(token, tokenOf(key, type, value));
      assert.equal(openIdentifier(key, token, sealed), value);
      assert.throws(() => openIdentifier(other, token, sealed), KeyWrapError);
      assert.throws(() => openIdentifier(key, tokenOf(key, type, `${value}0`), sealed), KeyWrapError, 'bound to its token');
    }
  });
  it('takes its nonce from bytes 16–27 of the token HMAC: deterministic, different per identifier and per type', () => {
    const nonces = new Set<string>();
    for (const [type, value] of ids) {
      const a = tokenAndSeal(key, type, value).sealed;
      assert.deepEqual(tokenAndSeal(key, type, value).sealed, a, 'same identifier, same bytes');
      const mac = createHmac('sha256', key.tokenKey).update(`${type}:${value}`).digest();
      assert.deepEqual(a.subarray(0, 12), mac.subarray(16, 28));
      nonces.add(a.subarray(0, 12).toString('hex'));
      nonces.add(tokenAndSeal(key, `${type}x`, value).sealed.subarray(0, 12).toString('hex'));
    }
    assert.equal(nonces.size, ids.length * 2);
  });
  it('a vault entry sealed the older way (its own nonce HMAC) still opens', () => {
    const token = tokenOf(key, 'msisdn', '+60123456789');
    assert.equal(openIdentifier(key, token, sealIdentifier(key, token, '+60123456789')), '+60123456789');
  });
  it('the sealed form does not contain the identifier or the token', () => {
    const { token, sealed } = tokenAndSeal(key, 'msisdn', '+60123456789');
    assert.ok(!sealed.toString('latin1').includes('60123456789'));
    assert.ok(!sealed.toString('hex').includes(token));
  });
});
