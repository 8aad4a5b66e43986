/**
 * `node --import tsx benchmarks/publisherBindings.ts`: what publishing costs through each librdkafka binding
 * (ADR 0043) — @confluentinc/kafka-javascript's `Producer` (one call and one delivery event per message) against the
 * project's batch binding (native/producer.cc: one call and one answer per slice) — both driven by NativePublisher
 * exactly as ingest drives it. Own broker; BENCH_PUB_MESSAGES (default 200,000) keyed 150-byte messages with a
 * `cdr_id` header, as ingest publishes `cdr.pseudonymised`, in sends of 10,000 with two in flight (two partitions'
 * batches); BENCH_RUNS rounds (default 3), each binding in its own child process, interleaved.
 *
 * Reported per message: the main thread's busy time (event-loop utilisation: what stays on the thread ingest and the
 * API share) and the whole process's CPU (librdkafka's threads included); the broker's is not counted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { NativePublisher, nativeKafka, type RdModule } from '../services/platform/kafka/nativePublisher.ts';
import { batchKafka } from '../services/platform/kafka/batchProducer.ts';
import { createLogger } from '../services/platform/observability/logger.ts';
import type { OutgoingMessage } from '../services/platform/kafka/publisher.ts';
import { benchKafka, createTopics, startBenchBroker } from './lib/kafkaUtil.ts';

const MESSAGES = Number(process.env['BENCH_PUB_MESSAGES'] ?? 200_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const SEND = 10_000;

interface Result {
  binding: string;
  implementation: string;
  mainUsPerMessage: number;
  processUsPerMessage: number;
  messagesPerSecond: number;
}

async function child(binding: string, brokers: string, topic: string): Promise<Result> {
  const loaded = binding === 'batch' ? batchKafka() : nativeKafka();
  if (!('module' in loaded)) throw new Error(`${binding} binding does not load: ${loaded.error}`);
  const module: RdModule = loaded.module;
  const publisher = new NativePublisher({ brokers: [brokers], clientId: 'bench-pub', log: createLogger('warn') }, module);
  await publisher.start();
  // One packed buffer of values, as ingest's prepare worker hands them over; keys repeat as accounts do.
  const packed = Buffer.alloc(150 * SEND, 7);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += SEND) {
    const messages: OutgoingMessage[] = [];
    for (let i = 0; i < SEND; i++)
      messages.push({ key: `account-${i % 5_000}`, value: packed.subarray(i * 150, i * 150 + 150), headers: { cdr_id: `cdr-${sent + i}-0a1b2c3d4e5f` } });
    await Promise.all([publisher.send([{ topic, messages: messages.slice(0, SEND / 2) }]), publisher.send([{ topic, messages: messages.slice(SEND / 2) }])]);
  }
  const seconds = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  await publisher.close();
  return {
    binding,
    implementation: publisher.implementation,
    mainUsPerMessage: (elu.active * 1000) / MESSAGES,
    processUsPerMessage: (cpu.user + cpu.system) / MESSAGES,
    messagesPerSecond: MESSAGES / seconds,
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

if (process.env['BENCH_PUB_CHILD']) {
  const [binding, brokers, topic] = process.env['BENCH_PUB_CHILD'].split(' ');
  console.log(JSON.stringify(await child(binding!, brokers!, topic!)));
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-pub-'));
  const broker = await startBenchBroker(dir, 0);
  const admin = benchKafka(broker.brokers).admin();
  await admin.connect();
  const results: Result[] = [];
  try {
    for (let run = 1; run <= RUNS; run++)
      for (const binding of ['package', 'batch']) {
        const topic = `bench.pub.${binding}.${run}`;
        await createTopics(admin, [topic], 4);
        const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
          env: { ...process.env, BENCH_PUB_CHILD: `${binding} ${broker.brokers.join(',')} ${topic}` },
          encoding: 'utf8',
        });
        const r = JSON.parse(out.trim().split('\n').at(-1)!) as Result;
        results.push(r);
        console.log(
          `run ${run} ${r.implementation}: main ${r.mainUsPerMessage.toFixed(2)} µs/message, process ${r.processUsPerMessage.toFixed(2)} µs/message, ${Math.round(r.messagesPerSecond).toLocaleString('en')} messages/s`,
        );
      }
  } finally {
    await admin.disconnect();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n| binding | main thread µs per message | process µs per message | messages/s |\n| --- | ---: | ---: | ---: |`);
  for (const binding of ['package', 'batch']) {
    const rs = results.filter((r) => r.binding === binding);
    console.log(
      `| ${rs[0]!.implementation} | ${median(rs.map((r) => r.mainUsPerMessage)).toFixed(2)} | ${median(rs.map((r) => r.processUsPerMessage)).toFixed(2)} | ${Math.round(median(rs.map((r) => r.messagesPerSecond))).toLocaleString('en')} |`,
    );
  }
}
