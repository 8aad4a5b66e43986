/** The live status line of `cdr start`: rates from counter deltas, redrawn in place on a TTY. */
export interface StatusSnapshot {
  stored: number;
  duplicate: number;
  late: number;
  dlq: number;
  lag: number;
  produced: number;
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
    const prev = this.last ?? s;
    const secs = Math.max(0.001, (now - this.lastAt) / 1000);
    const ingested = s.stored + s.late + s.duplicate + s.dlq - (prev.stored + prev.late + prev.duplicate + prev.dlq);
    const line = `ingested ${Math.round(ingested / secs)}/s | produced ${s.produced} | stored ${s.stored} | late ${s.late} | dup ${s.duplicate} | DLQ ${s.dlq} | lag ${s.lag}`;
    this.last = s;
    this.lastAt = now;
    this.ticks++;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}`);
    else if (this.ticks % 5 === 0) this.out.write(`${line}\n`);
  }
}
