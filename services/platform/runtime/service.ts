import { PipelineError, classifyError } from '../../core/index.ts';

/**
 * The body of a service's `main.ts`: an error while starting ends the process with one line naming the problem —
 * exit 2 for configuration (a bad variable, a wrong master key), 1 for anything else — instead of a stack trace.
 */
export async function startService(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const e = err instanceof PipelineError ? err : classifyError(err);
    process.stderr.write(`${name}: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'config_invalid' || e.code === 'key_invalid' ? 2 : 1);
  }
}
