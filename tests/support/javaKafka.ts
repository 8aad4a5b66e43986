/**
 * The Java Kafka client shipped in the broker jars, driven from tests: a producer and a consumer the project did not
 * write (tests/support/fixtures/KafkaTool.java, run as a single-file source program on the installed Java 17).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureKafkaInstalled, kafkaToolClasspath } from '../../infra/kafka/localBroker.ts';

const run = promisify(execFile);
const TOOL = join(import.meta.dirname, 'fixtures', 'KafkaTool.java');

export interface RawRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

function encodeFile(records: readonly RawRecord[]): Buffer {
  const parts: Buffer[] = [];
  const len = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  for (const r of records) {
    parts.push(r.key ? Buffer.concat([len(r.key.length), r.key]) : len(-1));
    parts.push(r.value ? Buffer.concat([len(r.value.length), r.value]) : len(-1));
  }
  return Buffer.concat(parts);
}

async function java(args: string[]): Promise<string> {
  await ensureKafkaInstalled();
  const { stdout } = await run('java', ['-cp', kafkaToolClasspath(), TOOL, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 180_000 });
  return stdout.trim();
}

/** Produces the records with the Java producer and the given `compression.type`. */
export async function javaProduce(bootstrap: string, topic: string, compression: string, records: readonly RawRecord[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-java-'));
  try {
    const file = join(dir, 'records.bin');
    writeFileSync(file, encodeFile(records));
    const out = await java(['produce', bootstrap, topic, compression, file]);
    const m = /produced (\d+)/.exec(out);
    if (!m) throw new Error(`unexpected output of the Java producer: ${out}`);
    return Number(m[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads a topic with the Java consumer: how many records, and a digest of their sorted values. */
export async function javaConsume(bootstrap: string, topic: string, count: number, timeoutMs = 60_000): Promise<{ count: number; digest: string }> {
  const out = await java(['consume', bootstrap, topic, String(count), String(timeoutMs)]);
  const m = /consumed (\d+) ([0-9a-f]{64})/.exec(out);
  if (!m) throw new Error(`unexpected output of the Java consumer: ${out}`);
  return { count: Number(m[1]), digest: m[2]! };
}

/** The digest javaConsume computes, over values as this process knows them. */
export function valuesDigest(values: readonly (Buffer | null)[]): string {
  const sorted = values.map((v) => (v === null ? '<null>' : v.toString('hex'))).sort();
  const h = createHash('sha256');
  for (const v of sorted) h.update(`${v}\n`);
  return h.digest('hex');
}
