import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * RFC 8785 JSON Canonicalization (the `canonicalize` library): sorted member names, ECMAScript number and string
 * forms. What is hashed or signed is always this form, so whitespace, member order or a re-serialising tool
 * never changes a digest, and a verifier in any language can recompute it.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('canonicalJson: the value has no JSON form');
  return text;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
