import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import canonicalize from 'canonicalize';
import { canonicalFlatJson, canonicalJson } from '../../../../services/core/disclosure/canonical.ts';
import { Prng } from '../../../../services/generator/prng.ts';

/** Strings that exercise JSON escaping and code-unit ordering: controls, quotes, non-BMP characters, RTL, NUL. */
const TRICKY = [
  '',
  'plain',
  'quote"back\\slash',
  'tab\tline\nfeed\r',
  '\u0000nul\u001f',
  'é',
  'e\u0301',
  '😀',
  '\u2028\u2029',
  'עברית',
  '+60 12-345 6789',
  '</script>',
];

describe('canonical JSON (RFC 8785)', () => {
  it('the flat fast path equals the library on records of strings, numbers, booleans and nulls', () => {
    const rng = new Prng(7);
    const keys = ['cdr_id', 'a', 'B', 'é', 'z_1', 'Z', 'segments', 'duration_ms', '😀key', '_', 'hold_id'];
    for (let i = 0; i < 2_000; i++) {
      const rec: Record<string, unknown> = {};
      for (const k of keys) {
        const pick = rng.next();
        if (pick < 0.5) rec[k] = TRICKY[Math.floor(rng.next() * TRICKY.length)]!;
        else if (pick < 0.7) rec[k] = Math.floor(rng.next() * 2 ** 40) * (rng.next() < 0.5 ? -1 : 1);
        else if (pick < 0.8) rec[k] = rng.next() * 1e6;
        else if (pick < 0.9) rec[k] = rng.next() < 0.5;
        else if (pick < 0.95) rec[k] = null;
      }
      assert.equal(canonicalFlatJson(rec), canonicalize(rec), JSON.stringify(rec));
    }
  });

  it('sorts members by UTF-16 code units, whatever order they were written in', () => {
    assert.equal(canonicalFlatJson({ b: 1, a: 2, B: 3, é: 4, '😀': 5 }), '{"B":3,"a":2,"b":1,"é":4,"😀":5}');
    assert.equal(canonicalFlatJson({ a: 2, b: 1 }), canonicalFlatJson({ b: 1, a: 2 }));
  });

  it('leaves out undefined members and hands nested values to the library', () => {
    assert.equal(canonicalFlatJson({ a: undefined, b: { y: 1, x: [2, 'q'] } }), '{"b":{"x":[2,"q"],"y":1}}');
    assert.equal(canonicalJson({ b: 1e21, a: -0 }), '{"a":0,"b":1e+21}');
  });

  it('reports each member value as written, for column digests', () => {
    const seen: string[] = [];
    canonicalFlatJson({ z: 'x"y', a: 12 }, (name, text) => seen.push(`${name}=${text}`));
    assert.deepEqual(seen, ['a=12', 'z="x\\"y"']);
  });
});
