/**
 * Shared assertions and readers for integration tests: read a whole topic, wait for a condition,
 * collect the identifiers a traffic plan contains (to prove they appear nowhere they must not).
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import { normaliseIdentifier, recipientTypeOf } from '../../services/core/identity/normalise.ts';
import type { PlannedMessage } from '../../services/generator/trafficPlan.ts';

/** A wait longer than this is reported on stderr (the test runner shows it beside the file's results). */
const SLOW_WAIT_MS = 20_000;

export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 120_000,
  everyMs = 200,
  /** What to say about the state when it times out (a service's stats and health): CI's log is all there is then. */
  state?: () => unknown,
): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    if (await check()) {
      // A wait that succeeds but takes this long is where a slow or crashed run spent its time: CI's log shows it.
      const tookMs = Date.now() - started;
      if (tookMs > SLOW_WAIT_MS) process.stderr.write(`slow wait: ${what} took ${(tookMs / 1000).toFixed(1)} s\n`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `; state: ${JSON.stringify(state())}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs one step of a test's set-up or tear-down; one that takes over 20 s is reported on stderr (when it passes 20 s and when it ends), as a slow wait is. */
export async function timedStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  // Said while it runs too: a process that dies inside the step (the crash this was added for) says where it was.
  const watch = setTimeout(() => process.stderr.write(`slow step: ${what} still running after ${SLOW_WAIT_MS / 1000} s\n`), SLOW_WAIT_MS);
  watch.unref();
  try {
    return await step();
  } finally {
    clearTimeout(watch);
    const tookMs = Date.now() - started;
    if (tookMs > SLOW_WAIT_MS) process.stderr.write(`slow step: ${what} took ${(tookMs / 1000).toFixed(1)} s\n`);
  }
}

/** Every message currently in a topic (all partitions, up to the high watermarks at call time). */
export async function readTopic(kafka: Kafka, topic: string): Promise<KafkaMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const targets = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  const total = [...targets.values()].reduce((a, b) => a + b, 0) - offsets.reduce((a, o) => a + Number(o.low), 0);
  const out: KafkaMessage[] = [];
  if (total <= 0) return out;
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map<number, number>();
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (Number(m.offset) < (targets.get(batch.partition) ?? 0)) out.push(m);
        }
        seen.set(batch.partition, Number(batch.lastOffset()) + 1);
        if ([...targets.entries()].every(([p, high]) => high === 0 || (seen.get(p) ?? 0) >= high)) resolve();
      },
    });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([done, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`reading ${topic} timed out`)), 60_000)))]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return out;
}

/** The personal identifiers of a plan, in the forms that could leak: as sent, normalised, digits only. */
export function identifierNeedles(plan: readonly PlannedMessage[]): string[] {
  const needles = new Set<string>();
  for (const m of plan) {
    const e = m.event;
    if (!e) continue;
    const country = e.destination_country;
    const recipientType = recipientTypeOf(e.channel, e.recipient, e.direction, country);
    const parts: [string, 'msisdn' | 'email' | 'other'][] = [
      [e.sender, e.sender_type === 'email' ? 'email' : e.sender_type === 'msisdn' ? 'msisdn' : 'other'],
      [e.recipient, recipientType === 'email' ? 'email' : recipientType === 'msisdn' ? 'msisdn' : 'other'],
    ];
    for (const [raw, type] of parts) {
      if (type === 'other') continue;
      const n = normaliseIdentifier(raw, type, country);
      if (!n.valid) continue;
      needles.add(n.value);
      if (type === 'msisdn') needles.add(n.value.slice(1));
      else needles.add(raw.trim());
    }
  }
  return [...needles].filter((n) => n.length >= 8);
}

/** Needles found in a haystack (empty when clean). */
export function leaks(haystack: string, needles: readonly string[]): string[] {
  return needles.filter((n) => haystack.includes(n)).slice(0, 5);
}
