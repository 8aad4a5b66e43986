import { Partitioners, type Kafka, type Message } from 'kafkajs';
import { PartitionedSender } from '../platform/kafka/index.ts';
import { planTraffic, type PlanOptions, type PlannedKind } from './trafficPlan.ts';

/**
 * Sends a traffic plan to the raw topic as the routing layer would: keyed by cdr_id (so a duplicate
 * lands on the same partition as its original), in batches, paced to `rate` records/s (0: as fast as
 * the broker takes them), with several sends in flight.
 */
export interface ProduceOptions extends PlanOptions {
  readonly topic: string;
  /** Records per second; 0 = unlimited. */
  readonly rate: number;
  readonly onProgress?: (sent: number) => void;
  readonly signal?: AbortSignal;
  /** kafkajs CompressionTypes value (default none). */
  readonly compression?: number;
}

/** `attack_records`: the `unique` records that belong to the scenario's attacks (what the fraud rules could see). */
export type ProduceCounts = Record<PlannedKind, number> & { sent: number; attack_records: number };

/** A send failed part-way: `counts.sent` is what the broker acknowledged before (the other counts: what was planned). */
export class ProduceInterrupted extends Error {
  constructor(
    readonly counts: ProduceCounts,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'ProduceInterrupted';
  }
}

const BATCH = 500;
const IN_FLIGHT = 4;

export async function produceTraffic(kafka: Kafka, opts: ProduceOptions): Promise<ProduceCounts> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // One send per partition: kafkajs's multi-partition send can drop a partition whose leader moves mid-send.
  const sender = new PartitionedSender(kafka, () => producer);
  const counts: ProduceCounts = { sent: 0, unique: 0, duplicate: 0, malformed: 0, late: 0, attack_records: 0 };
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let batch: Message[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const messages = batch;
    batch = [];
    const p = sender.send(opts.topic, messages, { acks: -1, ...(opts.compression ? { compression: opts.compression } : {}) }).then(() => {
      counts.sent += messages.length;
      opts.onProgress?.(counts.sent);
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
  };
  try {
    let planned = 0;
    for (const m of planTraffic(opts)) {
      if (opts.signal?.aborted) break;
      counts[m.kind]++;
      if (m.kind === 'unique' && m.attack !== undefined) counts.attack_records++;
      planned++;
      batch.push({ key: m.key, value: m.value });
      if (batch.length >= (opts.rate > 0 ? Math.max(1, Math.min(BATCH, Math.ceil(opts.rate / 10))) : BATCH)) {
        await flush();
        if (opts.rate > 0) {
          const due = started + (planned / opts.rate) * 1000;
          const wait = due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
    }
    await flush();
    await Promise.all(inFlight);
  } catch (err) {
    // Let the sends still in flight end, so that `sent` is what the broker took (found from outside: a run that failed
    // part-way said nothing of what had been acknowledged).
    await Promise.allSettled(inFlight);
    throw new ProduceInterrupted(counts, err);
  } finally {
    await sender.close();
    await producer.disconnect();
  }
  return counts;
}
