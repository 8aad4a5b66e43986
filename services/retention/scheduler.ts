import type { Logger } from 'pino';
import type { ComponentHealth } from '../platform/http/index.ts';
import type { RetentionPass } from './retentionPass.ts';

/**
 * Runs the retention pass on real time: shortly after start, then every `intervalMs` (hourly by
 * default). A failed pass is logged and tried again at the next tick; it never stops the pipeline.
 */
export class RetentionSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  lastReport: { at: string; actions: number; ok: boolean } | undefined;

  constructor(
    private readonly pass: RetentionPass,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  start(firstDelayMs = 5_000): void {
    if (this.intervalMs <= 0) return;
    const tick = (): void => {
      this.running = this.pass.run({ now: this.clock(), dryRun: false, actor: 'schedule' }).then(
        (r) => {
          this.lastReport = { at: r.now, actions: r.actions.length, ok: true };
        },
        (err: unknown) => {
          this.lastReport = { at: new Date(this.clock()).toISOString(), actions: 0, ok: false };
          this.log.error({ err }, 'scheduled retention pass failed');
        },
      );
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, firstDelayMs);
    this.timer.unref();
  }

  /** Degraded after a failed pass (until a pass succeeds again); the pass is retried at the next tick. */
  health(): ComponentHealth {
    const detail = { interval_ms: this.intervalMs, last_pass: this.lastReport ?? null };
    if (this.intervalMs <= 0) return { status: 'ok', detail: { ...detail, scheduled: false } };
    if (this.lastReport && !this.lastReport.ok)
      return { status: 'degraded', reasons: [`the retention pass at ${this.lastReport.at} failed; see the log`], detail };
    return { status: 'ok', detail };
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
