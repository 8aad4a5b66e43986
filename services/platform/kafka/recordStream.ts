/**
 * Caps on what a compressed Kafka record batch may decompress to, applied while it decompresses.
 *
 * kafkajs hands a codec the compressed records of one batch and expects back the concatenated records (Kafka
 * record format v2: each a zigzag-varint length, then attributes, timestamp delta, offset delta, key, value,
 * headers). A hostile or broken producer can make that output enormous (a 204 KB gzip bomb expands to 200 MB).
 * `RecordStream` takes the decompressed bytes chunk by chunk and keeps only what fits: every record up to
 * `maxRecordBytes`, as long as the batch stays within `maxBatchBytes`. A record over either limit is replaced by a
 * small stand-in at the same offset — no value, its key if small, and a header `cdr-pipeline.oversize` carrying its
 * length — which the consumer loop dead-letters as a stub with a pointer to the original. Memory stays bounded by
 * the caps whatever the input; the bytes of a skipped record are counted, never held.
 */
export const OVERSIZE_HEADER = 'cdr-pipeline.oversize';

export interface RecordLimits {
  /** Largest record as encoded (key, value, headers and their framing) passed on as it is (`recordLimitsOf`). */
  readonly maxRecordBytes: number;
  /** Largest total of passed-on records per batch; later records become stand-ins. */
  readonly maxBatchBytes: number;
}

/** Longest record prefix needed to read attributes, timestamp and offset deltas and a key of up to 256 bytes. */
const HEADER_PREFIX = 1 + 10 + 5 + 5 + 256;
const MAX_KEY_KEPT = 256;

export class RecordStream {
  private readonly out: Buffer[] = [];
  private outBytes = 0;
  /** Bytes received but not consumed yet: at most one record up to the cap, or the start of an oversize one. */
  private carry: Buffer = Buffer.alloc(0);
  /** Bytes of an oversize record still to skip (its stand-in is already out). */
  private skipping = 0;
  records = 0;
  standIns = 0;

  constructor(private readonly limits: RecordLimits) {}

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.skipping > 0) {
      const skip = Math.min(this.skipping, data.length);
      this.skipping -= skip;
      data = data.subarray(skip);
      if (this.skipping > 0) return;
    }
    if (this.carry.length > 0) data = Buffer.concat([this.carry, data]);
    this.carry = Buffer.alloc(0);
    while (data.length > 0) {
      const v = readVarint(data, 0);
      if (!v) break;
      const length = zigzag(v.value);
      if (length < 0) throw new Error('record with a negative length');
      const oversize = length > this.limits.maxRecordBytes || this.outBytes + v.size + length > this.limits.maxBatchBytes;
      if (!oversize) {
        if (data.length < v.size + length) break; // the rest arrives with the next chunk
        this.emit(data.subarray(0, v.size + length));
        data = data.subarray(v.size + length);
        this.records++;
        continue;
      }
      // Oversize: read enough of its start for the stand-in, then skip the rest as it arrives.
      const need = Math.min(length, HEADER_PREFIX);
      if (data.length < v.size + need) break;
      this.emit(standIn(data.subarray(v.size, v.size + need), length));
      this.standIns++;
      this.records++;
      const available = Math.min(data.length - v.size, length);
      data = data.subarray(v.size + available);
      this.skipping = length - available;
      if (this.skipping > 0) return;
    }
    this.carry = Buffer.from(data);
  }

  /** The records, or an error if the input ended inside a record. */
  finish(): Buffer {
    if (this.skipping > 0 || this.carry.length > 0) throw new Error('compressed records end inside a record');
    return Buffer.concat(this.out, this.outBytes);
  }

  private emit(b: Buffer): void {
    this.out.push(Buffer.from(b));
    this.outBytes += b.length;
  }
}

/** The stand-in of an oversize record: same attributes, timestamp and offset deltas, its key if small, no value. */
function standIn(prefix: Buffer, originalLength: number): Buffer {
  let at = 1; // attributes
  const ts = readVarint(prefix, at);
  if (!ts) throw new Error('record too short for its header');
  at += ts.size;
  const od = readVarint(prefix, at);
  if (!od) throw new Error('record too short for its header');
  at += od.size;
  const kl = readVarint(prefix, at);
  let key: Buffer | null = null;
  if (kl) {
    const keyLen = zigzag(kl.value);
    if (keyLen >= 0 && keyLen <= MAX_KEY_KEPT && prefix.length >= at + kl.size + keyLen) key = prefix.subarray(at + kl.size, at + kl.size + keyLen);
  }
  const headerKey = Buffer.from(OVERSIZE_HEADER);
  const headerValue = Buffer.from(String(originalLength));
  const body = Buffer.concat([
    Buffer.from([0]), // attributes
    prefix.subarray(1, 1 + ts.size), // timestamp delta, as it was
    prefix.subarray(1 + ts.size, 1 + ts.size + od.size), // offset delta, as it was
    key ? Buffer.concat([writeZigzag(key.length), key]) : writeZigzag(-1),
    writeZigzag(-1), // value: null
    writeZigzag(1), // one header
    writeZigzag(headerKey.length),
    headerKey,
    writeZigzag(headerValue.length),
    headerValue,
  ]);
  return Buffer.concat([writeZigzag(body.length), body]);
}

/** An unsigned LEB128 varint at `at` (up to 10 bytes), or undefined if the buffer ends first. */
export function readVarint(b: Buffer, at: number): { value: number; size: number } | undefined {
  let value = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (at + i >= b.length) return undefined;
    const byte = b[at + i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, size: i + 1 };
    shift += 7;
  }
  throw new Error('varint longer than 10 bytes');
}

export function zigzag(v: number): number {
  // (v >>> 1) ^ -(v & 1), in floating point so that 64-bit values beyond 2^31 keep their magnitude.
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

export function writeZigzag(n: number): Buffer {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  const bytes: number[] = [];
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0);
  return Buffer.from(bytes);
}
