import type { OutgoingMessage, TopicMessages } from './publisher.ts';

/**
 * A topic's messages as bytes: each message's value, key and one header's value back to back, with end offsets
 * (ADR 0044). Ingest's prepare worker writes them and the project's binding queues them straight from these buffers,
 * so the main thread makes no object per message to publish: no message, no Buffer view, no headers object, all of
 * which lived until the batch was stored and were copied by the young-generation collector on the way.
 *
 * Message i's value is `values[valueEnds[i-1], valueEnds[i])` (from 0 for the first); its key and header value the
 * same way. A key here is never null (an empty one is empty), and every message carries the header `headerName`.
 */
export interface PackedMessages {
  readonly values: Uint8Array;
  readonly valueEnds: Uint32Array;
  /** UTF-8. */
  readonly keys: Uint8Array;
  readonly keyEnds: Uint32Array;
  readonly headerName: string;
  /** UTF-8. */
  readonly headerValues: Uint8Array;
  readonly headerEnds: Uint32Array;
}

/** Strings written as UTF-8 back to back, with each one's end offset. */
export class PackedStrings {
  private buf: Buffer;
  private pos = 0;
  private ends: Uint32Array;
  private count = 0;

  /** `expected`: how many strings (and `bytesEach` their usual UTF-8 length): room is made for that many up front. */
  constructor(expected = 64, bytesEach = 16) {
    // Its own ArrayBuffer (never Node's shared pool): the bytes may be transferred to another thread.
    this.buf = Buffer.allocUnsafeSlow(Math.max(64, expected * bytesEach));
    this.ends = new Uint32Array(Math.max(16, expected));
  }

  add(s: string): void {
    // At most 3 bytes per UTF-16 unit.
    if (this.pos + s.length * 3 > this.buf.length) {
      const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + s.length * 3));
      this.buf.copy(next, 0, 0, this.pos);
      this.buf = next;
    }
    if (this.count === this.ends.length) {
      const next = new Uint32Array(this.ends.length * 2);
      next.set(this.ends);
      this.ends = next;
    }
    // ASCII byte by byte (ids and accounts are short): cheaper than a call into the runtime, as in rowBinary.ts. The
    // first other character hands the whole string to Buffer#write.
    const buf = this.buf;
    const at = this.pos;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    this.pos += i === s.length ? i : buf.write(s, at, 'utf8');
    this.ends[this.count++] = this.pos;
  }

  finish(): { bytes: Uint8Array; ends: Uint32Array } {
    return { bytes: new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.pos), ends: this.ends.subarray(0, this.count) };
  }
}

export function messageCount(b: TopicMessages): number {
  return b.packed ? b.packed.valueEnds.length : b.messages.length;
}

/** The messages as objects (a packed batch unpacked), for the publishers that take objects. */
export function messagesOf(b: TopicMessages): readonly OutgoingMessage[] {
  return b.packed ? unpackMessages(b.packed) : b.messages;
}

/** The largest message's size as publishers count it (value, key, header; plus 64 for the record's own fields). */
export function largestPackedMessage(p: PackedMessages): number {
  let largest = 0;
  for (let i = 0, v0 = 0, k0 = 0, h0 = 0; i < p.valueEnds.length; i++) {
    const v = p.valueEnds[i]!;
    const k = p.keyEnds[i]!;
    const h = p.headerEnds[i]!;
    largest = Math.max(largest, v - v0 + k - k0 + h - h0);
    v0 = v;
    k0 = k;
    h0 = h;
  }
  return p.valueEnds.length === 0 ? 0 : 64 + Buffer.byteLength(p.headerName) + largest;
}

/**
 * The messages as objects, for the publishers that take objects (the package's binding, the kafkajs thread): the same
 * bytes, keys and header values as strings (they were strings before they were packed).
 */
export function unpackMessages(p: PackedMessages, from = 0, to = p.valueEnds.length): OutgoingMessage[] {
  const values = Buffer.from(p.values.buffer, p.values.byteOffset, p.values.byteLength);
  const keys = Buffer.from(p.keys.buffer, p.keys.byteOffset, p.keys.byteLength);
  const headers = Buffer.from(p.headerValues.buffer, p.headerValues.byteOffset, p.headerValues.byteLength);
  const out = new Array<OutgoingMessage>(to - from);
  for (let i = from; i < to; i++) {
    const v0 = i === 0 ? 0 : p.valueEnds[i - 1]!;
    const k0 = i === 0 ? 0 : p.keyEnds[i - 1]!;
    const h0 = i === 0 ? 0 : p.headerEnds[i - 1]!;
    out[i - from] = {
      key: keys.toString('utf8', k0, p.keyEnds[i]),
      value: values.subarray(v0, p.valueEnds[i]),
      headers: { [p.headerName]: headers.toString('utf8', h0, p.headerEnds[i]) },
    };
  }
  return out;
}
