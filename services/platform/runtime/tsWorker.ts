import { Worker } from 'node:worker_threads';

const BOOTSTRAP = new URL('../../../bin/ts-worker.js', import.meta.url);

/** Starts a worker thread running a TypeScript module (through bin/ts-worker.js, which loads tsx there). */
export function startTsWorker(moduleUrl: URL, data: Record<string, unknown>): Worker {
  return new Worker(BOOTSTRAP, { workerData: { ...data, moduleUrl: moduleUrl.href } });
}
