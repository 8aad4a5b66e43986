/**
 * The block-by-block LZ4 frame decoder (services/platform/kafka/lz4.ts) against frames written by the reference
 * library's compressor (lz4-napi, the LZ4 C library): every kind of input a Kafka batch can hold — none of it
 * compressible, all of it, short and long literal runs and matches, overlapping matches (a repeated pattern shorter
 * than its match), several blocks with history — decodes byte for byte. Crafted blocks check what the compressor never
 * writes: a match reaching before its window, an offset of 0, truncation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { decodeBlock, lz4FrameBlocks, Lz4FormatError } from '../../../../services/platform/kafka/lz4.ts';

/** A seeded byte source, so a failure names an input that can be made again. */
function bytes(seed: number, n: number, alphabet = 256): Buffer {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % alphabet;
  }
  return out;
}

function decoded(frame: Buffer): Buffer {
  return Buffer.concat([...lz4FrameBlocks(frame)]);
}

/** Records of the kind the pipeline publishes: the same field names and values over and over, ids and tokens not. */
function recordLike(n: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; parts.join('').length < n; i++)
    parts.push(
      JSON.stringify({
        cdr_id: `cdr-${i * 7919}`,
        account_id: `acct-${i % 13}`,
        recipient_token: bytes(i, 16).toString('hex'),
        status: 'delivered',
        segments: 1,
      }),
    );
  return Buffer.from(parts.join('\n')).subarray(0, n);
}

const INPUTS: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['one byte', Buffer.from('x')],
  ['15 bytes (a literal run that fits the token)', Buffer.from('abcdefghijklmno')],
  ['random, 300 bytes (incompressible)', bytes(1, 300)],
  ['random, 200 KiB (stored blocks)', bytes(2, 200 * 1024)],
  ['one byte repeated, 100,000 times (an overlapping match at offset 1)', Buffer.alloc(100_000, 0x61)],
  ['a 3-byte pattern repeated (overlap shorter than the match)', Buffer.from('abc'.repeat(30_000))],
  ['a 7-byte pattern, 20 times (short overlapping matches)', Buffer.from('0123456'.repeat(20))],
  ['a small alphabet, 150 KiB (many short matches over several blocks)', bytes(3, 150 * 1024, 4)],
  ['records, 1 KiB', recordLike(1024)],
  ['records, 300 KiB (blocks linked by history)', recordLike(300 * 1024)],
];

describe('LZ4 frames decoded block by block', () => {
  for (const [name, input] of INPUTS) {
    it(`decodes what the reference compressor wrote: ${name}`, () => {
      const frame = compressFrameSync(input);
      // The reference decoder agrees on the input (a check of the test's own frame).
      assert.ok(decompressFrameSync(frame).equals(input));
      const out = decoded(frame);
      assert.equal(out.length, input.length);
      assert.ok(out.equals(input), `${name}: first difference at ${out.findIndex((b, i) => b !== input[i])}`);
    });
  }

  it('decodes two frames back to back as their concatenation', () => {
    const a = recordLike(5_000);
    const b = Buffer.from('xyz'.repeat(1_000));
    assert.ok(decoded(Buffer.concat([compressFrameSync(a), compressFrameSync(b)])).equals(Buffer.concat([a, b])));
  });

  describe('crafted blocks', () => {
    const dst = (): Buffer => Buffer.alloc(256);
    it('copies literal runs of every length class (in the token, and with extra length bytes)', () => {
      for (const n of [1, 14, 15, 16, 40, 269, 270]) {
        const lit = bytes(n, n);
        const header = n < 15 ? [n << 4] : [0xf0, ...lengthBytes(n - 15)];
        const out = Buffer.alloc(n + 8);
        const end = decodeBlock(Buffer.from([...header, ...lit]), 0, header.length + n, out, 0, out.length, 0);
        assert.equal(end, n);
        assert.ok(out.subarray(0, n).equals(lit), `literal run of ${n}`);
      }
    });

    it('copies a match that overlaps its own output (offset 2, 10 bytes: a repeated pair)', () => {
      // 2 literals "ab", then a match at offset 2 of 4 + 6 bytes, then the end.
      const block = Buffer.from([0x26, 0x61, 0x62, 0x02, 0x00, 0x00]);
      const out = dst();
      const end = decodeBlock(block, 0, block.length - 1, out, 0, out.length, 0);
      assert.equal(out.subarray(0, end).toString(), 'ababababababab'.slice(0, 12));
    });

    it('copies matches of every length class, overlapping or not', () => {
      const lit = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'); // 72 literals
      for (const offset of [1, 3, 8, 31, 72])
        for (const match of [4, 5, 18, 19, 33, 64, 100, 300]) {
          const tokenMatch = Math.min(match - 4, 15);
          const block = Buffer.from([
            0xf0 | tokenMatch,
            ...lengthBytes(lit.length - 15),
            ...lit,
            offset & 0xff,
            offset >> 8,
            ...(match - 4 >= 15 ? lengthBytes(match - 4 - 15) : []),
          ]);
          const out = Buffer.alloc(lit.length + match);
          const end = decodeBlock(block, 0, block.length, out, 0, out.length, 0);
          const expected = Buffer.from(lit);
          const all = Buffer.alloc(lit.length + match);
          expected.copy(all);
          for (let k = 0; k < match; k++) all[lit.length + k] = all[lit.length + k - offset]!;
          assert.equal(end, lit.length + match);
          assert.ok(out.equals(all), `offset ${offset}, match ${match}`);
        }
    });

    it('refuses a match reaching before its window, an offset of 0, and truncated input', () => {
      const refuse = (block: number[], lowest = 0): void =>
        assert.throws(() => decodeBlock(Buffer.from(block), 0, block.length, dst(), 0, 256, lowest), Lz4FormatError);
      refuse([0x10, 0x61, 0x05, 0x00]); // offset 5 after 1 byte of output
      refuse([0x10, 0x61, 0x00, 0x00]); // offset 0
      refuse([0x10, 0x61, 0x01, 0x00], 1); // within the buffer but before the block's own start (independent blocks)
      refuse([0xf0]); // literal length byte missing
      refuse([0x30, 0x61]); // three literals announced, one present
      refuse([0x10, 0x61, 0x01]); // offset cut short
      assert.throws(() => decodeBlock(Buffer.from([0x40, 1, 2, 3, 4]), 0, 5, Buffer.alloc(2), 0, 2, 0), Lz4FormatError); // literals overrun the output
      // A match longer than the output has room for: 1 literal, then offset 1 for 4 + 15 + 10 bytes into 16.
      assert.throws(() => decodeBlock(Buffer.from([0x1f, 0x61, 0x01, 0x00, 0x0a]), 0, 5, Buffer.alloc(16), 0, 16, 0), Lz4FormatError);
      // A short match (byte by byte) just past the end: 1 literal, offset 1, 4 bytes, into 4.
      assert.throws(() => decodeBlock(Buffer.from([0x10, 0x61, 0x01, 0x00]), 0, 4, Buffer.alloc(4), 0, 4, 0), Lz4FormatError);
    });
  });
});

/** The extra length bytes of a literal or match length beyond the token's 15: 255s, then the rest. */
function lengthBytes(rest: number): number[] {
  const out: number[] = [];
  while (rest >= 255) {
    out.push(255);
    rest -= 255;
  }
  out.push(rest);
  return out;
}
