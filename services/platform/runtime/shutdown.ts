import type { Logger } from 'pino';

/**
 * Graceful shutdown: on SIGINT/SIGTERM, or when a component stops for good (`shutdown(reason, 1)`), runs `stop`
 * once (it finishes or abandons the batch in progress safely) and exits with the given code. A second signal
 * exits at once — nothing is lost either way, since uncommitted batches are replayed.
 */
export type Shutdown = (reason: string, exitCode?: number) => void;

/**
 * `tell`: where a person watching sees the second signal's consequence (cdr start's terminal; its log is a file) —
 * the services run alone log to stdout, which is their terminal already.
 */
export function onShutdownSignal(log: Logger, stop: (reason: string) => Promise<void>, tell?: (line: string) => void): Shutdown {
  let stopping = false;
  const shutdown: Shutdown = (reason, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    if (exitCode !== 0) log.error({ reason, exitCode }, 'stopping: a component cannot go on');
    stop(reason).then(
      () => process.exit(exitCode),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(exitCode === 0 ? 1 : exitCode);
      },
    );
  };
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now; the batch in progress will be replayed on next start');
      tell?.(
        `second ${signal}: exiting now without waiting for the stop; batches in progress are not committed and are replayed at the next start (nothing is lost)\n`,
      );
      process.exit(130);
    }
    shutdown(signal, 0);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return shutdown;
}
