import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  largestPackedMessage,
  messageCount,
  messagesOf,
  PackedStrings,
  unpackMessages,
  type PackedMessages,
} from '../../../../services/platform/kafka/packedMessages.ts';

function packed(values: string[], keys: string[], ids: string[]): PackedMessages {
  const v = new PackedStrings(1);
  const k = new PackedStrings(1);
  const h = new PackedStrings(1);
  values.forEach((s) => v.add(s));
  keys.forEach((s) => k.add(s));
  ids.forEach((s) => h.add(s));
  const [vs, ks, hs] = [v.finish(), k.finish(), h.finish()];
  return { values: vs.bytes, valueEnds: vs.ends, keys: ks.bytes, keyEnds: ks.ends, headerName: 'cdr_id', headerValues: hs.bytes, headerEnds: hs.ends };
}

describe('packed messages', () => {
  it('PackedStrings writes UTF-8 back to back past its size hint, each string ending where it says', () => {
    // Multi-byte characters (2, 3 and 4 bytes), empty strings, a U+0000, and far more bytes than the hint of 1.
    const strings = Array.from({ length: 2000 }, (_, i) => ['', 'acct-1', 'Jürgen', '日本', '😀x', 'a\u0000b'][i % 6]! + String(i % 3 === 0 ? '' : i));
    const w = new PackedStrings(1);
    for (const s of strings) w.add(s);
    const { bytes, ends } = w.finish();
    assert.equal(ends.length, strings.length);
    assert.equal(bytes.byteLength, Buffer.byteLength(strings.join('')));
    const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    strings.forEach((s, i) => assert.equal(all.toString('utf8', i === 0 ? 0 : ends[i - 1], ends[i]), s));
    // Its own ArrayBuffer, never Node's shared pool (it is transferred to another thread).
    assert.notEqual(bytes.buffer.byteLength, 8192);
  });

  it('unpacks into the messages it was packed from, a range of them too', () => {
    const p = packed(['v0', '', 'v2ü'], ['k0', '', 'Kunde-ü'], ['c0', 'c1', 'c2']);
    const all = unpackMessages(p);
    assert.deepEqual(
      all.map((m) => [m.key, m.value!.toString(), m.headers]),
      [
        ['k0', 'v0', { cdr_id: 'c0' }],
        ['', '', { cdr_id: 'c1' }],
        ['Kunde-ü', 'v2ü', { cdr_id: 'c2' }],
      ],
    );
    assert.ok(all[1]!.value !== null && all[1]!.value.length === 0, 'an empty value stays a value');
    assert.deepEqual(unpackMessages(p, 1, 3), all.slice(1));
    assert.deepEqual(unpackMessages(p, 2, 2), []);
    assert.equal(messageCount({ topic: 't', packed: p }), 3);
    assert.deepEqual(messagesOf({ topic: 't', packed: p }), all);
    const objects = [{ key: 'k', value: null }];
    assert.equal(messagesOf({ topic: 't', messages: objects }), objects, 'objects pass through as they are');
    assert.equal(messageCount({ topic: 't', messages: objects }), 1);
  });

  it('measures the largest message as the publishers count it (value + key + header name and value + 64)', () => {
    const p = packed(['x'.repeat(10), 'y'.repeat(300), 'z'], ['k', 'kk', 'ü'], ['c0', 'c1', 'c-222']);
    // The second: 300 + 2 + 'cdr_id' (6) + 2 + 64.
    assert.equal(largestPackedMessage(p), 374);
    assert.equal(largestPackedMessage(packed([], [], [])), 0);
  });
});
