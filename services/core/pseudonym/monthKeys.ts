import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Keys that die. Each UTC month has a random 256-bit key. Two subkeys are derived from it with HKDF:
 * one keys the HMAC tokens, one encrypts identifiers in the vault. Destroying the month key (its only
 * stored form is wrapped under the master key) makes both unrecoverable: crypto-shredding.
 * The master key never leaves this process: it is not written to ClickHouse, Kafka or a log.
 */

export const KEY_BYTES = 32;
const WRAP_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const TOKEN_BYTES = 16;

export class KeyWrapError extends Error {
  override readonly name = 'KeyWrapError';
}

/** A month's key material, unwrapped, held only in memory. */
export interface MonthKey {
  readonly month: string;
  readonly keyId: string;
  readonly tokenKey: Buffer;
  readonly vaultKey: Buffer;
}

export function generateMonthKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function subkey(monthKey: Buffer, purpose: string, month: string): Buffer {
  return Buffer.from(hkdfSync('sha256', monthKey, Buffer.from(`cdr-pipeline/${month}`), Buffer.from(purpose), KEY_BYTES));
}

export function deriveMonthKey(month: string, keyId: string, rawKey: Buffer): MonthKey {
  if (rawKey.length !== KEY_BYTES) throw new KeyWrapError(`month key for ${month} has ${rawKey.length} bytes, expected ${KEY_BYTES}`);
  return { month, keyId, tokenKey: subkey(rawKey, 'token', month), vaultKey: subkey(rawKey, 'vault', month) };
}

/**
 * Wraps a month key under the master key (AES-256-GCM). The month is authenticated data, so a wrapped
 * key copied onto another month's row fails to unwrap. Output: version byte | nonce | tag | ciphertext, base64.
 */
export function wrapMonthKey(masterKey: Buffer, month: string, rawKey: Buffer): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce);
  cipher.setAAD(Buffer.from(`month-key:${month}`));
  const body = Buffer.concat([cipher.update(rawKey), cipher.final()]);
  return Buffer.concat([Buffer.from([WRAP_VERSION]), nonce, cipher.getAuthTag(), body]).toString('base64');
}

export function unwrapMonthKey(masterKey: Buffer, month: string, wrapped: string): Buffer {
  const buf = Buffer.from(wrapped, 'base64');
  if (buf.length !== 1 + NONCE_BYTES + TAG_BYTES + KEY_BYTES || buf[0] !== WRAP_VERSION) {
    throw new KeyWrapError(`wrapped key for ${month} has an unknown format`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, buf.subarray(1, 1 + NONCE_BYTES));
    decipher.setAAD(Buffer.from(`month-key:${month}`));
    decipher.setAuthTag(buf.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(buf.subarray(1 + NONCE_BYTES + TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw new KeyWrapError(`wrapped key for ${month} does not open under this master key`, { cause });
  }
}

/**
 * The keyed token of a normalised identifier: HMAC-SHA-256 under the month's token key, truncated to
 * 128 bits, hex. The type is part of the message so an email and a number never collide.
 */
export function tokenOf(key: MonthKey, type: string, normalisedValue: string): string {
  return createHmac('sha256', key.tokenKey).update(`${type}:${normalisedValue}`).digest().subarray(0, TOKEN_BYTES).toString('hex');
}

/**
 * Encrypts an identifier for the vault (AES-256-GCM under the month's vault key). The nonce is derived
 * from the plaintext (SIV-style), so the same identifier in the same month always gives the same bytes:
 * rewrites are idempotent and a nonce never repeats with a different plaintext. AAD binds it to its token.
 */
export function sealIdentifier(key: MonthKey, token: string, normalisedValue: string): Buffer {
  const nonce = createHmac('sha256', key.vaultKey).update(`nonce:${normalisedValue}`).digest().subarray(0, NONCE_BYTES);
  return sealWithNonce(key, token, normalisedValue, nonce);
}

/** nonce | tag | AES-256-GCM(vault key, identifier), the token and month bound as associated data. */
function sealWithNonce(key: MonthKey, token: string, normalisedValue: string, nonce: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key.vaultKey, nonce);
  cipher.setAAD(Buffer.from(`${key.month}:${token}`));
  const body = cipher.update(normalisedValue, 'utf8');
  const final = cipher.final();
  return Buffer.concat([nonce, cipher.getAuthTag(), body, final]);
}

/**
 * Token and sealed form of a new identifier with one HMAC instead of two: the HMAC-SHA-256 that gives the token
 * (its first 16 bytes, exactly `tokenOf`) gives the seal's nonce too (bytes 16–27). Why that is safe:
 * - the nonce is still a deterministic function of the identifier (and its type) under a month key, so the SIV-style
 *   property of `sealIdentifier` holds: the same identifier gives the same bytes, and two different identifiers share
 *   a nonce only if 96 bits of HMAC output collide (the same bound as a separate nonce HMAC);
 * - HMAC-SHA-256 is a PRF: bytes 16–27 say nothing about bytes 0–15 (the token) or the key, and the nonce is stored
 *   in the clear beside the ciphertext anyway;
 * - the token key only derives (HKDF), it never encrypts; the vault key only encrypts. Destroying the month key still
 *   makes both unrecoverable.
 * `openIdentifier` opens either form (the nonce travels in the sealed bytes); the vault keeps one row per token, so a
 * row sealed by the older two-HMAC form and one sealed by this one are the same identifier either way.
 */
export function tokenAndSeal(key: MonthKey, type: string, normalisedValue: string): { token: string; sealed: Buffer } {
  const mac = createHmac('sha256', key.tokenKey).update(`${type}:${normalisedValue}`).digest();
  const token = mac.toString('hex', 0, TOKEN_BYTES);
  return { token, sealed: sealWithNonce(key, token, normalisedValue, mac.subarray(TOKEN_BYTES, TOKEN_BYTES + NONCE_BYTES)) };
}

/**
 * Token and sealed form (base64) of new identifiers under one month key, as `tokenAndSeal` gives them. The JavaScript
 * one below, or the native sealer of services/platform/keys/nativeSealer.ts (ADR 0040): the same bytes, with both keys
 * scheduled once per month instead of once per identifier. `close` lets go of the key material it holds.
 */
export interface MonthSealer {
  tokenAndSeal(type: string, normalisedValue: string): { token: string; sealed: string };
  close(): void;
}

export type SealerFactory = (key: MonthKey) => MonthSealer;

/** node:crypto per identifier (the sealer where the native one is not built, and the reference it is tested against). */
export const jsSealer: SealerFactory = (key) => ({
  tokenAndSeal(type, normalisedValue) {
    const { token, sealed } = tokenAndSeal(key, type, normalisedValue);
    return { token, sealed: sealed.toString('base64') };
  },
  close() {},
});

export function openIdentifier(key: MonthKey, token: string, sealed: Buffer): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.vaultKey, sealed.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(`${key.month}:${token}`));
    decipher.setAuthTag(sealed.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new KeyWrapError(`vault entry for token of ${key.month} does not open`, { cause });
  }
}
