import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Cuts a long synchronous loop into slices of about `sliceMs`. A consumer's batch (5,000 records decoded, validated,
 * pseudonymised, encoded) holds the main thread for 100–300 ms in one piece; in the same process the API's requests
 * and Kafka's heartbeats wait that long at each of their awaits. Between slices the event loop runs whatever I/O
 * finished, so a request waits at most one slice per await (benchmarks/results/queries-under-ingest-*.md).
 *
 * Use: `const slice = new EventLoopSlice(); for (…) { if (slice.spent()) await slice.pause(); … }`. Only where the
 * thread is shared with something that waits (the API in `cdr start`): the interleaving cost a standalone ingest
 * 2–8% CPU per record on this machine (benchmarks/results/queries-under-ingest-2026-12-02.md).
 */
export class EventLoopSlice {
  private since = performance.now();

  constructor(private readonly sliceMs: number = DEFAULT_SLICE_MS) {}

  /** True when this task has held the thread for a whole slice (never, for an infinite slice). */
  spent(): boolean {
    return this.sliceMs !== Number.POSITIVE_INFINITY && performance.now() - this.since >= this.sliceMs;
  }

  /** Gives the event loop one turn (I/O callbacks, timers, other tasks' continuations), then starts a new slice. */
  async pause(): Promise<void> {
    await nextTurn();
    this.since = performance.now();
  }
}

export const DEFAULT_SLICE_MS = 8;
