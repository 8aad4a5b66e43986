/**
 * Constants of the messages between the prepare pool and its workers (preparePool.ts, prepareWorker.ts), apart from
 * both: the worker module starts a thread's work when loaded, so the pool imports only types from it.
 */

/** The reply id of the one message a worker sends unasked: it could not lower its priority (ADR 0034). */
export const NICE_REPORT = -1;
