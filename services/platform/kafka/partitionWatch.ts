/**
 * What each partition of a consumed topic is waiting on, from the offsets read at each lag poll: pure logic, no I/O
 * (the consumer loop reads the offsets and asks this what they mean).
 *
 * Two things the group-wide lag cannot say (both found from outside, 2026-12-06):
 * - **Records behind an open transaction.** The lag is counted to the last stable offset (LSO), the end a
 *   read-committed consumer can read to. A producer that dies inside a transaction holds the LSO at that
 *   transaction's first record until the broker times it out (up to 15 min): everything after it — other producers'
 *   committed records too — waits, while the lag says 0. Seen here as records past the LSO (`high − stable`) with the
 *   LSO not moving.
 * - **One partition stalled while the others move.** The loop's stall rule is for the member as a whole: commits on
 *   partitions 0–3 kept it quiet while 4–7 waited.
 */

/** One partition's offsets from one read: the group's committed offset (-1: none), the log's start, its LSO and end. */
export interface PartitionOffsets {
  readonly partition: number;
  readonly committed: number;
  readonly low: number;
  /** The last stable offset (listed at READ_COMMITTED). */
  readonly stable: number;
  /** The high watermark (listed at READ_UNCOMMITTED); never below `stable` once read. */
  readonly high: number;
}

export interface PartitionReading {
  readonly partition: number;
  /** Records the group can read and has not committed: LSO − committed (the log's start if nothing is committed). */
  readonly lag: number;
  /** Records past the LSO: in, or behind, a transaction still open. Not in `lag`: nobody can read them yet. */
  readonly unstable: number;
}

export interface PartitionAlarm {
  /**
   * `open_transaction`: records wait past an LSO that has not moved (a producer's transaction has been open all that
   * time). `no_commit`: a partition this member holds has records to read and its committed offset has not moved.
   */
  readonly kind: 'open_transaction' | 'no_commit';
  readonly partition: number;
  readonly records: number;
  /** Since when, at the latest, the partition has waited so. */
  readonly since: number;
  /** How long that is, at the time the alarm was raised (ms). */
  readonly forMs: number;
}

interface Seen {
  committed: number;
  lag: number;
  /** When the committed offset last moved, or when records began to wait (0 → some). */
  progressSince: number;
  stable: number;
  unstable: number;
  /** When the LSO last moved, or when records first stood past it. */
  stableSince: number;
}

export class PartitionWatch {
  private readonly seen = new Map<number, Seen>();
  private lastReadAt: number | undefined;

  /**
   * Takes one read made at `at` and returns each partition's lag and unstable records. A partition no longer in the
   * read (a topic re-created smaller) is forgotten.
   */
  observe(read: readonly PartitionOffsets[], at: number): PartitionReading[] {
    // Records that were not waiting at the read before came after it: they wait since then at the earliest.
    const before = this.lastReadAt ?? at;
    const readings: PartitionReading[] = [];
    const present = new Set<number>();
    for (const o of read) {
      present.add(o.partition);
      const position = o.committed >= 0 ? o.committed : o.low;
      const lag = Math.max(0, o.stable - position);
      // The two ends are read by two requests: records appended between them can show an LSO past the end.
      const unstable = Math.max(0, o.high - Math.max(o.stable, position));
      readings.push({ partition: o.partition, lag, unstable });
      const s = this.seen.get(o.partition);
      if (!s) {
        this.seen.set(o.partition, { committed: o.committed, lag, progressSince: before, stable: o.stable, unstable, stableSince: before });
        continue;
      }
      if (o.committed !== s.committed) s.progressSince = at;
      else if (s.lag === 0 && lag > 0) s.progressSince = before;
      if (o.stable !== s.stable) s.stableSince = at;
      else if (s.unstable === 0 && unstable > 0) s.stableSince = before;
      s.committed = o.committed;
      s.lag = lag;
      s.stable = o.stable;
      s.unstable = unstable;
    }
    for (const p of [...this.seen.keys()]) if (!present.has(p)) this.seen.delete(p);
    this.lastReadAt = at;
    return readings;
  }

  /**
   * The partitions waiting too long: any partition whose LSO holds still with records past it for `openTransactionMs`
   * (a writer's transactions may last minutes: a stall threshold of its own), and those of `held` (this member's) whose
   * committed offset holds still with records to read for `stallMs`. Others' partitions are theirs
   * to report: in a group of several processes each would otherwise call the whole group unhealthy.
   */
  alarms(now: number, limits: { readonly stallMs: number; readonly openTransactionMs: number }, held: ReadonlySet<number>): PartitionAlarm[] {
    const { stallMs, openTransactionMs } = limits;
    const alarms: PartitionAlarm[] = [];
    for (const [partition, s] of [...this.seen].sort((a, b) => a[0] - b[0])) {
      if (s.unstable > 0 && now - s.stableSince > openTransactionMs)
        alarms.push({ kind: 'open_transaction', partition, records: s.unstable, since: s.stableSince, forMs: now - s.stableSince });
      if (held.has(partition) && s.lag > 0 && now - s.progressSince > stallMs)
        alarms.push({ kind: 'no_commit', partition, records: s.lag, since: s.progressSince, forMs: now - s.progressSince });
    }
    return alarms;
  }

  /** The member was given `partitions` at `at`: their progress is measured from then at the earliest. */
  heldFrom(partitions: readonly number[], at: number): void {
    for (const p of partitions) {
      const s = this.seen.get(p);
      if (s) s.progressSince = Math.max(s.progressSince, at);
    }
  }
}

/** The alarms as health reasons: one sentence per kind, naming the partitions. */
export function alarmReasons(alarms: readonly PartitionAlarm[]): string[] {
  const reasons: string[] = [];
  const seconds = (a: PartitionAlarm): number => Math.round(a.forMs / 1000);
  const open = alarms.filter((a) => a.kind === 'open_transaction');
  if (open.length > 0) {
    const records = open.reduce((n, a) => n + a.records, 0);
    const oldest = Math.max(...open.map(seconds));
    reasons.push(
      `${records} records wait behind a producer's transaction open for at least ${oldest} s on ${partitionList(open)} ` +
        '(the last stable offset has not moved); they are read when the producer commits or aborts it, at the latest ' +
        "when the broker's transaction timeout ends it",
    );
  }
  const stalled = alarms.filter((a) => a.kind === 'no_commit');
  if (stalled.length > 0) {
    const records = stalled.reduce((n, a) => n + a.records, 0);
    const oldest = Math.max(...stalled.map(seconds));
    reasons.push(`no commit for up to ${oldest} s on ${partitionList(stalled)} while ${records} records wait there`);
  }
  return reasons;
}

function partitionList(alarms: readonly PartitionAlarm[]): string {
  const ids = alarms.map((a) => a.partition);
  return ids.length === 1 ? `partition ${ids[0]}` : `partitions ${ids.join(', ')}`;
}
