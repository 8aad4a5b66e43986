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

/**
 * The same canonical form for a flat object of strings, finite numbers, booleans and nulls (an answer's record),
 * without the general library's per-call allocations: for such values RFC 8785 is exactly JSON.stringify of each
 * value, members sorted by UTF-16 code units. `onMember` sees each member's value text (for column digests). Anything
 * else (a nested value, a non-finite number) goes to the library. tests/unit/core/disclosure/canonical.test.ts holds
 * the two equal.
 */
export function canonicalFlatJson(record: Readonly<Record<string, unknown>>, onMember?: (name: string, valueText: string) => void): string {
  const order = orderOf(record);
  const parts = PARTS;
  parts.length = 0;
  for (let i = 0; i < order.keys.length; i++) {
    const k = order.keys[i]!;
    const v = record[k];
    let text: string;
    if (typeof v === 'string' || typeof v === 'boolean' || v === null || (typeof v === 'number' && Number.isFinite(v))) text = JSON.stringify(v);
    else if (v === undefined) continue;
    else text = canonicalJson(v);
    onMember?.(k, text);
    parts.push(order.prefixes[i] + text);
  }
  return `{${parts.join(',')}}`;
}

/** Reused for every record: the members of the one being written. */
const PARTS: string[] = [];

/** Records of one answer share their member order: sort it (and quote each name) once per distinct order. */
let lastKeys: string[] = [];
let lastOrder: { keys: string[]; prefixes: string[] } = { keys: [], prefixes: [] };
function orderOf(record: Readonly<Record<string, unknown>>): { keys: string[]; prefixes: string[] } {
  const keys = Object.keys(record);
  if (keys.length === lastKeys.length && keys.every((k, i) => k === lastKeys[i])) return lastOrder;
  const sorted = [...keys].sort();
  lastKeys = keys;
  lastOrder = { keys: sorted, prefixes: sorted.map((k) => `${JSON.stringify(k)}:`) };
  return lastOrder;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
