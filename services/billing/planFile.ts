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

/**
 * The plans billing rates with, re-read when the file changes (checked at most every `checkMs`). A changed file that
 * does not pass the checks is not taken: the previous plans stay in force and `problem` says why until it is fixed.
 */
export class PlanSource {
  private book: PlanBook;
  private mtimeMs: number;
  private checkedAt = 0;
  problem: string | undefined;

  constructor(
    readonly file: string,
    private readonly onChange: (book: PlanBook) => Promise<void> | void = () => undefined,
    private readonly checkMs = 5_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.book = readPlanFile(file);
    this.mtimeMs = statSync(file).mtimeMs;
  }

  current(): PlanBook {
    const now = this.clock();
    if (now - this.checkedAt >= this.checkMs) {
      this.checkedAt = now;
      try {
        const m = statSync(this.file).mtimeMs;
        if (m !== this.mtimeMs) {
          const next = readPlanFile(this.file);
          this.mtimeMs = m;
          this.book = next;
          this.problem = undefined;
          void this.onChange(next);
        }
      } catch (err) {
        this.problem = err instanceof Error ? err.message : String(err);
      }
    }
    return this.book;
  }
}
