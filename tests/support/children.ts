/**
 * Child processes for the integrity suite: start a service entry point with a test setup's environment, read its
 * stats over IPC, wait for its exit, and ask the broker whether a group has caught up with a topic.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import type { TestSetup } from './testEnv.ts';

export function startChild<S>(entry: string, setup: TestSetup, logFile: string, onStats: (s: S) => void, extraEnv: Record<string, string> = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = fork(entry, [], {
    env: { ...process.env, ...setup.env, ...extraEnv },
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  child.on('message', (m: { type?: string; stats?: S }) => {
    if (m.type === 'stats' && m.stats) onStats(m.stats);
  });
  return child;
}

export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode ?? 'gone');
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'gone')));
}

/** True when the group's committed offsets reached every partition's high watermark. */
export async function caughtUp(kafka: Kafka, groupId: string, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(topic);
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const byPartition = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
    return high.every((h) => (byPartition.get(h.partition) ?? -1) >= Number(h.high));
  } catch (err) {
    if (err instanceof Error && (err as Error & { retriable?: boolean }).retriable) return false; // coordinator still loading
    throw err;
  } finally {
    await admin.disconnect();
  }
}
