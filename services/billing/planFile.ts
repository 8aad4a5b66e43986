import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePlanBook, PipelineError, type PlanBook } from '../core/index.ts';

/** The tariff plans shipped with the package: every account's own event price trusted, and example rates. */
export const DEFAULT_PLANS_FILE = fileURLToPath(new URL('../../config/billing-plans.yaml', import.meta.url));

export function plansFileOf(configured: string | undefined): string {
  return resolve(configured ?? DEFAULT_PLANS_FILE);
}

/** Reads and checks a plan file; every problem is named with its line (core/billing/tariffPlan.ts). */
export function readPlanFile(file: string): PlanBook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new PipelineError('config_invalid', `tariff plan file ${file} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  return parsePlanBook(text, file);
}

/** How long recording a changed file may take before it counts as not taken (tried again at the next check). */
const ADMIT_TIMEOUT_MS = 60_000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PipelineError('unavailable', `recording the changed tariff plans took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The plans billing rates with, re-read when the file changes (checked at most every `checkMs`, and every `checkMs`
 * by `watch()` while nothing asks). A changed file is taken only once it passes the checks and `admit` accepts it
 * (billing records its plans in `billing_plans`, which refuses a version already in use with other prices): until then
 * the previous plans stay in force, and when it is refused `problem` says why until the file changes again.
 */
export class PlanSource {
  private book: PlanBook;
  private mtimeMs: number;
  private checkedAt = 0;
  /** A changed file being admitted: no other check starts meanwhile. */
  private admitting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  problem: string | undefined;

  constructor(
    readonly file: string,
    private readonly admit: (book: PlanBook) => Promise<void> | void = () => undefined,
    private readonly checkMs = 5_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.book = readPlanFile(file);
    this.mtimeMs = statSync(file).mtimeMs;
  }

  current(): PlanBook {
    if (this.clock() - this.checkedAt >= this.checkMs) this.check();
    return this.book;
  }

  /** Looks at the file now (the watch's timer calls it directly: a tick a few ms early must not skip a check). */
  private check(): void {
    const now = this.clock();
    if (this.admitting === undefined) {
      this.checkedAt = now;
      let m: number | undefined;
      try {
        m = statSync(this.file).mtimeMs;
        if (m !== this.mtimeMs) {
          const next = readPlanFile(this.file);
          const seen = m;
          this.admitting = (async () => {
            try {
              await withTimeout(Promise.resolve(this.admit(next)), ADMIT_TIMEOUT_MS);
              this.book = next;
              this.problem = undefined;
              this.mtimeMs = seen;
            } catch (err) {
              this.problem = err instanceof Error ? err.message : String(err);
              // Refused (the plans are wrong): settled until the file changes again. Anything else (the store did not
              // answer) is tried again at the next check.
              if (err instanceof PipelineError && err.code === 'config_invalid') this.mtimeMs = seen;
            } finally {
              this.admitting = undefined;
            }
          })();
        }
      } catch (err) {
        this.problem = err instanceof Error ? err.message : String(err);
      }
    }
  }

  /** Settles a change being admitted (tests; a caller that must see a change it just made). */
  async settled(): Promise<void> {
    await this.admitting;
  }

  /** Checks the file every `checkMs` even while nothing asks for the plans, so a bad change shows in health at once. */
  watch(): this {
    this.timer ??= setInterval(() => this.check(), this.checkMs).unref();
    return this;
  }

  unwatch(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
