import { randomBytes } from 'node:crypto';
import { deriveMonthKey, openIdentifier, sealIdentifier, type MonthKey } from '../pseudonym/monthKeys.ts';

/**
 * A disclosure receipt's integrity block sealed so that it opens only while *every* key whose identifiers it digests
 * lives: the request month's key, the key of each month the answer gave records of, and each legal hold's key whose
 * copy it gave. Its record and column digests are taken over the records' identifiers, and the rest of each record
 * (cdr_id, event_time, account…) stays in the 10-year table: once one month's identifiers expired, its numbers could
 * be found again by trying them against the digests (found from outside, 2026-12-07: a receipt sealed under the
 * request month's key alone outlived the answered months' keys by up to 12 months).
 *
 * How: the block is sealed under a key derived from a random secret split into one random share per key (the secret
 * is their XOR), each share sealed under its key. Destroying any of the keys makes its share, and so the block, unreadable.
 */
export interface SealedReceipt {
  /** The integrity block (canonical JSON) sealed under the derived key, base64. */
  readonly sealed: string;
  /** Per key, by name (a month `YYYY-MM` or `hold:<id>`), its share sealed under it (base64), in a fixed order. */
  readonly shares: readonly { readonly key: string; readonly share: string }[];
}

const SECRET_BYTES = 32;

function receiptKey(requestId: string, secret: Buffer): MonthKey {
  return deriveMonthKey(`receipt:${requestId}`, requestId, secret);
}

/** Seals `text` for request `requestId` under every one of `keys` (named; at least one). */
export function sealReceipt(requestId: string, text: string, keys: readonly { readonly name: string; readonly key: MonthKey }[]): SealedReceipt {
  if (keys.length === 0) throw new Error('a receipt is sealed under at least one key');
  const secret = Buffer.alloc(SECRET_BYTES);
  const shares: { key: string; share: string }[] = [];
  for (const { name, key } of keys) {
    const share = randomBytes(SECRET_BYTES);
    for (let i = 0; i < SECRET_BYTES; i++) secret[i]! ^= share[i]!;
    shares.push({ key: name, share: sealIdentifier(key, `receipt-share:${requestId}:${name}`, share.toString('base64')).toString('base64') });
    share.fill(0);
  }
  const sealed = sealIdentifier(receiptKey(requestId, secret), `receipt:${requestId}`, text).toString('base64');
  secret.fill(0);
  return { sealed, shares };
}

/**
 * The block of a receipt sealed by `sealReceipt`, or undefined when one of its keys is gone (`keyOf` gives none:
 * destroyed on expiry, or a released hold's). Throws if a share or the block does not open under a key that exists.
 */
export async function openReceipt(
  requestId: string,
  receipt: SealedReceipt,
  keyOf: (name: string) => Promise<MonthKey | null | undefined>,
): Promise<string | undefined> {
  const secret = Buffer.alloc(SECRET_BYTES);
  try {
    for (const { key: name, share } of receipt.shares) {
      const key = await keyOf(name);
      if (!key) return undefined;
      const part = Buffer.from(openIdentifier(key, `receipt-share:${requestId}:${name}`, Buffer.from(share, 'base64')), 'base64');
      if (part.length !== SECRET_BYTES) throw new Error(`a receipt share under ${name} has ${part.length} bytes`);
      for (let i = 0; i < SECRET_BYTES; i++) secret[i]! ^= part[i]!;
      part.fill(0);
    }
    return openIdentifier(receiptKey(requestId, secret), `receipt:${requestId}`, Buffer.from(receipt.sealed, 'base64'));
  } finally {
    secret.fill(0);
  }
}
