/**
 * LZ4 frame decoding, one block at a time (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md and
 * lz4_Block_format.md). Kafka's LZ4 codec (record format v2) is the standard LZ4 frame. lz4-napi decodes a whole
 * frame into one buffer; a frame can expand 255-fold, so a decompression bomb would be held in memory at once.
 * Decoding block by block hands each block's output to the caller (recordStream.ts caps what is kept), so memory
 * stays at one block (≤ 4 MiB) plus the 64 KiB history that linked blocks may refer to. Checksums are not
 * verified: the broker already checked the record batch's CRC32C.
 */
const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MIN = 0x184d2a50;
const SKIPPABLE_MAX = 0x184d2a5f;
const HISTORY = 64 * 1024;
/** Copies up to this many bytes are made byte by byte (cheaper than a native call). */
const SHORT_COPY = 32;
const BLOCK_MAX: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

export class Lz4FormatError extends Error {
  override readonly name = 'Lz4FormatError';
}

/** Yields the decompressed output of every block of every frame in `src`, in order. */
export function* lz4FrameBlocks(src: Buffer): Generator<Buffer> {
  let at = 0;
  while (at < src.length) {
    if (src.length - at < 4) throw new Lz4FormatError('truncated frame magic');
    const magic = src.readUInt32LE(at);
    if (magic >= SKIPPABLE_MIN && magic <= SKIPPABLE_MAX) {
      if (src.length - at < 8) throw new Lz4FormatError('truncated skippable frame');
      at += 8 + src.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Lz4FormatError('not an LZ4 frame');
    at += 4;
    const flg = src[at]!;
    const bd = src[at + 1]!;
    if (flg >> 6 !== 1) throw new Lz4FormatError('unsupported LZ4 frame version');
    const independent = (flg & 0x20) !== 0;
    const blockChecksum = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const dictId = (flg & 0x01) !== 0;
    const blockMax = BLOCK_MAX[(bd >> 4) & 0x07];
    if (!blockMax) throw new Lz4FormatError('unsupported LZ4 block size');
    at += 2 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1; // FLG, BD, content size, dictionary id, header checksum
    // The output window: history of up to 64 KiB (linked blocks refer back into it), then the block being decoded.
    const window = Buffer.allocUnsafe(HISTORY + blockMax);
    let history = 0;
    for (;;) {
      if (src.length - at < 4) throw new Lz4FormatError('truncated block size');
      const word = src.readUInt32LE(at);
      at += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      if (size > blockMax || src.length - at < size) throw new Lz4FormatError('block larger than the frame allows or truncated');
      const start = HISTORY; // output always starts after the history region
      let produced: number;
      if (word & 0x80000000) {
        src.copy(window, start, at, at + size);
        produced = size;
      } else {
        produced = decodeBlock(src, at, at + size, window, start, start + blockMax, independent ? start : HISTORY - history) - start;
      }
      at += size + (blockChecksum ? 4 : 0);
      yield Buffer.from(window.subarray(start, start + produced));
      if (!independent) {
        // Keep the last 64 KiB of output (previous history + this block) as the next block's history.
        const keep = Math.min(HISTORY, history + produced);
        window.copy(window, HISTORY - keep, start + produced - keep, start + produced);
        history = keep;
      }
    }
    at += contentChecksum ? 4 : 0;
  }
}

/**
 * Decodes one LZ4 block from src[from, to) into dst starting at `out`, never writing past `limit` nor reading a
 * match before `lowest` (the start of the history this block may use). Returns the end of the output.
 */
export function decodeBlock(src: Buffer, from: number, to: number, dst: Buffer, out: number, limit: number, lowest: number): number {
  let i = from;
  let o = out;
  while (i < to) {
    const token = src[i++]!;
    let literals = token >> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (i >= to) throw new Lz4FormatError('truncated literal length');
        b = src[i++]!;
        literals += b;
      } while (b === 255);
    }
    if (i + literals > to || o + literals > limit) throw new Lz4FormatError('literals overrun');
    // Short runs byte by byte: most sequences of record data are a few bytes, and Buffer#copy costs a native call
    // (a sixth of fraud's time went to it; benchmarks/results/ab-fraud-detector-2026-12-05.md).
    if (literals > SHORT_COPY) src.copy(dst, o, i, i + literals);
    else for (let k = 0; k < literals; k++) dst[o + k] = src[i + k]!;
    i += literals;
    o += literals;
    if (i >= to) break; // the last sequence has literals only
    if (i + 2 > to) throw new Lz4FormatError('truncated match offset');
    const offset = src[i]! | (src[i + 1]! << 8);
    i += 2;
    let match = token & 15;
    if (match === 15) {
      let b: number;
      do {
        if (i >= to) throw new Lz4FormatError('truncated match length');
        b = src[i++]!;
        match += b;
      } while (b === 255);
    }
    match += 4;
    let m = o - offset;
    if (offset === 0 || m < lowest) throw new Lz4FormatError('match offset outside the window');
    if (o + match > limit) throw new Lz4FormatError('match overrun');
    if (offset >= match && match > SHORT_COPY) {
      dst.copy(dst, o, m, m + match);
      o += match;
    } else {
      // A short or overlapping copy (a repeated pattern): byte by byte, as the format defines it.
      for (let k = 0; k < match; k++) dst[o++] = dst[m++]!;
    }
  }
  return o;
}
