/**
 * Collapses a log line that repeats: the first of a kind is written at once; the same kind again within `windowMs`
 * is only counted, and the count is written when the window ends (`repeated: N` on a line of its own; a process that
exits inside a window does not write that window's count). kafkajs logs
 * every failed connect and retry of every client: a stop with the broker gone wrote ~230 error lines in a minute
 * (found from outside), burying the lines that said what happened.
 */
export class RepeatedLines<Line> {
  private readonly open = new Map<string, { line: Line; count: number }>();

  constructor(
    private readonly windowMs: number,
    /** Writes one line; `repeated` is set on the summary of a window's repeats (the kind's first line again). */
    private readonly write: (line: Line, repeated: number | undefined) => void,
  ) {}

  /** One occurrence of `kind` (whatever makes two lines the same: level, message, broker, error). */
  note(kind: string, line: Line): void {
    const seen = this.open.get(kind);
    if (seen) {
      seen.count++;
      return;
    }
    this.write(line, undefined);
    setTimeout(() => this.close(kind), this.windowMs).unref();
    this.open.set(kind, { line, count: 0 });
  }

  private close(kind: string): void {
    const seen = this.open.get(kind);
    this.open.delete(kind);
    if (seen && seen.count > 0) this.write(seen.line, seen.count);
  }
}
