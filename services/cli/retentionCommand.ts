import type { PipelineConfig } from '../platform/config/index.ts';
import { PipelineError } from '../core/index.ts';
import { createLogger } from '../platform/observability/index.ts';
import { openRuntime } from '../platform/runtime/index.ts';
import { createRetention } from '../retention/wiring.ts';

/**
 * `cdr retention run [--now ISO] [--dry-run]`: one pass, JSON report on stdout. Opens the storage itself,
 * so with the embedded engine it needs the data directory to itself (stop `cdr start`, or call its
 * `POST /v1/admin/retention/run`).
 */
export async function runRetention(config: PipelineConfig, args: { now?: string; dryRun: boolean }): Promise<void> {
  let now = Date.now();
  if (args.now !== undefined) {
    now = Date.parse(args.now);
    if (!Number.isFinite(now) || !/^\d{4}-\d{2}-\d{2}T/.test(args.now))
      throw new PipelineError('config_invalid', `--now: "${args.now}" is not an ISO 8601 instant`);
  }
  const rt = await openRuntime(config, { needKafka: false, log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel) });
  try {
    const { pass } = createRetention(rt);
    const report = await pass.run({ now, dryRun: args.dryRun, actor: 'cli' });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await rt.close();
  }
}
