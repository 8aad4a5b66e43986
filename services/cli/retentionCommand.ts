import { userInfo } from 'node:os';
import { PipelineError, isoInstantProblem, parseIsoInstant } from '../core/index.ts';
import type { PipelineConfig } from '../platform/config/index.ts';
import { openProcessAudit } from '../platform/audit/index.ts';
import { createLogger } from '../platform/observability/index.ts';
import { openRuntime } from '../platform/runtime/index.ts';
import { createRetention } from '../retention/wiring.ts';

/**
 * `cdr retention run [--now ISO] [--dry-run]`: one pass, JSON report on stdout. Opens the storage itself,
 * so with the embedded engine it needs the data directory to itself (stop `cdr start`, or call its
 * `POST /v1/admin/retention/run`). `--now` moves the clock of a dry run; a real run takes it only with
 * CDR_ALLOW_CLOCK_OVERRIDE=1 (tests and retention drills). The report and the retention log name the OS user.
 */
export async function runRetention(config: PipelineConfig, args: { now?: string; dryRun: boolean }): Promise<void> {
  let now = Date.now();
  if (args.now !== undefined) {
    const at = parseIsoInstant(args.now);
    if (at === undefined) throw new PipelineError('config_invalid', isoInstantProblem('--now', args.now));
    if (!args.dryRun && !config.retention.allowClockOverride) {
      throw new PipelineError(
        'config_invalid',
        '--now: only a dry run may move the clock (a real run destroys at the real time); add --dry-run, or set CDR_ALLOW_CLOCK_OVERRIDE=1 for a retention drill',
      );
    }
    now = at;
  }
  const rt = await openRuntime(config, { needKafka: false, log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel) });
  try {
    const audit = await openProcessAudit(rt, 'cli');
    try {
      const { pass } = createRetention(rt, { audit });
      const report = await pass.run({ now, dryRun: args.dryRun, actor: `cli:${safeUser()}` });
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } finally {
      await audit.close();
    }
  } finally {
    await rt.close();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
