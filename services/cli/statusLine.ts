/** The live status line of `cdr start`: rates from counter deltas, redrawn in place on a TTY. */
export interface StatusSnapshot {
  stored: number;
  duplicate: number;
  late: number;
  dlq: number;
  lag: number;
  produced: number;
  /** Fraud alerts open now (absent: no fraud service in the process). */
  openAlerts?: number;
  /** Records billing has rated (absent: no billing service in the process). */
  billed?: number;
  /** The process's health in words: `ok`, or the status and its reasons (a stopped consumer says so). */
  health: string;
}

/** One status line from two snapshots `secs` apart. */
export function formatStatus(prev: StatusSnapshot, s: StatusSnapshot, secs: number): string {
  const ingested = s.stored + s.late + s.duplicate + s.dlq - (prev.stored + prev.late + prev.duplicate + prev.dlq);
  const health = s.health === 'ok' ? '' : ` | ${s.health.length > 140 ? `${s.health.slice(0, 137)}...` : s.health}`;
  return `ingested ${Math.round(ingested / Math.max(0.001, secs))}/s | produced ${s.produced} | stored ${s.stored} | late ${s.late} | dup ${s.duplicate} | DLQ ${s.dlq} | lag ${s.lag}${s.billed !== undefined ? ` | billed ${s.billed}` : ''}${s.openAlerts !== undefined ? ` | alerts ${s.openAlerts}` : ''}${health}`;
}

/** A health report in the words of the status line. */
export function healthWords(report: { status: string; reasons: readonly string[] }): string {
  return report.status === 'ok' ? 'ok' : `${report.status.toUpperCase()}: ${report.reasons.join('; ')}`;
}

export class StatusLine {
  private timer: NodeJS.Timeout | undefined;
  private last: StatusSnapshot | undefined;
  private lastAt = 0;
  private ticks = 0;

  constructor(
    private readonly read: () => StatusSnapshot,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  start(intervalMs = 1000): void {
    this.last = this.read();
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = Date.now();
    const s = this.read();
    const line = formatStatus(this.last ?? s, s, (now - this.lastAt) / 1000);
    this.last = s;
    this.lastAt = now;
    this.ticks++;
    // A problem is printed at once, also when stderr is not a terminal; otherwise every fifth line there.
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}`);
    else if (this.ticks % 5 === 0 || s.health !== 'ok') this.out.write(`${line}\n`);
  }
}

/** The status banner's word on the retention schedule: "every 0 min" said nothing of a pass turned off (found from outside). */
export function retentionSchedule(intervalMs: number): string {
  if (intervalMs === 0) return 'off (CDR_RETENTION_INTERVAL_MS=0; run it with cdr retention run)';
  if (intervalMs % 60_000 === 0) return `every ${intervalMs / 60_000} min`;
  if (intervalMs < 600_000) return `every ${Math.round(intervalMs / 100) / 10} s`;
  return `every ${Math.round(intervalMs / 6_000) / 10} min`;
}
