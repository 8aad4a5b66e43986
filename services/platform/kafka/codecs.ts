import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';
import { compressFrameSync } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { DecompressStream, compress as zstdCompress } from 'zstd-napi';
import type { CompressionName } from '../config/config.ts';
import { lz4FrameBlocks } from './lz4.ts';
import { RecordStream, readVarint, type RecordLimits } from './recordStream.ts';

/**
 * Every Kafka compression codec, for kafkajs (which ships gzip only: a snappy, lz4 or zstd topic used to crash the
 * consumer with KafkaJSNotImplemented). Libraries: snappy (napi-rs), zstd-napi, lz4-napi for our own LZ4
 * frames, and a block-by-block LZ4 frame decoder of ours (lz4.ts). gzip is replaced too, so that every codec
 * decompresses through `RecordStream`, which caps a record and a batch (a decompression bomb costs CPU, not
 * memory). kafkajs keeps codecs in a module-level table, so `registerCodecs` is called once per thread that uses
 * kafkajs (the main thread in createKafka, the publisher thread for compression).
 */

const { CompressionCodecs, CompressionTypes } = kafkajs;

export function compressionType(name: CompressionName): number {
  switch (name) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      return CompressionTypes.Snappy;
    case 'lz4':
      return CompressionTypes.LZ4;
    case 'zstd':
      return CompressionTypes.ZSTD;
  }
}

/** As `recordLimitsOf` gives for the defaults (1 MiB and its framing slack). */
export const DEFAULT_RECORD_LIMITS: RecordLimits = { maxRecordBytes: 1024 * 1024 + 64 * 1024, maxBatchBytes: 32 * 1024 * 1024 };
let limits: RecordLimits = DEFAULT_RECORD_LIMITS;

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const gzip = promisify(zlib.gzip);

/** Feeds decompressed chunks through a RecordStream under the current limits. */
async function capped(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const records = new RecordStream(limits);
  for await (const chunk of chunks) records.push(chunk);
  return records.finish();
}

/** A Node stream (zlib, zstd) fed one buffer, read chunk by chunk. */
async function* streamed(stream: NodeJS.ReadWriteStream, input: Buffer): AsyncGenerator<Buffer> {
  stream.end(input);
  for await (const chunk of stream) yield chunk as Buffer;
}

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

/**
 * Snappy as Kafka carries it: the Java client writes xerial's framing (magic, version, then length-prefixed raw
 * blocks); other clients may write one raw block. Snappy expands at most ~21-fold, so a raw block is bounded by the
 * fetch size; xerial blocks are decoded one at a time.
 */
function* snappyChunks(input: Buffer): Generator<Buffer> {
  if (input.length >= 16 && input.subarray(0, 8).equals(XERIAL_MAGIC)) {
    let at = 16; // magic (8), version (4), compatible version (4)
    while (at < input.length) {
      if (input.length - at < 4) throw new Error('truncated xerial snappy block length');
      const size = input.readUInt32BE(at);
      at += 4;
      if (input.length - at < size) throw new Error('truncated xerial snappy block');
      yield snappyBlock(input.subarray(at, at + size));
      at += size;
    }
    return;
  }
  yield snappyBlock(input);
}

function snappyBlock(block: Buffer): Buffer {
  const declared = readVarint(block, 0);
  // A raw block states its length first; a hostile one may lie, but snappy cannot expand past ~21× its input.
  if (!declared || declared.value > Math.max(64 * 1024 * 1024, block.length * 32)) throw new Error('snappy block declares an impossible length');
  return snappyUncompress(block) as Buffer;
}

const CODECS: Record<Exclude<CompressionName, 'none'>, Codec> = {
  gzip: {
    compress: async (encoder) => gzip(encoder.buffer),
    decompress: async (buffer) => capped(streamed(zlib.createUnzip({ chunkSize: 64 * 1024 }), buffer)),
  },
  snappy: {
    compress: async (encoder) => snappyCompress(encoder.buffer),
    decompress: async (buffer) => capped(snappyChunks(buffer)),
  },
  lz4: {
    // Independent 64 KiB blocks, no checksums: what Kafka's own LZ4 stream writes and reads.
    compress: async (encoder) => compressFrameSync(encoder.buffer),
    decompress: async (buffer) => capped(lz4FrameBlocks(buffer)),
  },
  zstd: {
    compress: async (encoder) => zstdCompress(encoder.buffer),
    // windowLogMax 27 (128 MiB) is zstd's own default ceiling; Kafka producers use far less.
    decompress: async (buffer) => capped(streamed(new DecompressStream({ windowLogMax: 27 }), buffer)),
  },
};

/**
 * Installs the codecs into kafkajs with the given limits (idempotent; the latest limits win). Returns the limits in
 * force, for tests.
 */
export function registerCodecs(recordLimits: RecordLimits = DEFAULT_RECORD_LIMITS): RecordLimits {
  limits = recordLimits;
  const table = CompressionCodecs as unknown as Record<number, () => Codec>;
  table[CompressionTypes.GZIP] = () => CODECS.gzip;
  table[CompressionTypes.Snappy] = () => CODECS.snappy;
  table[CompressionTypes.LZ4] = () => CODECS.lz4;
  table[CompressionTypes.ZSTD] = () => CODECS.zstd;
  return limits;
}
