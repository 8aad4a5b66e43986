import type { Logger } from 'pino';

/**
 * Graceful shutdown: on SIGINT/SIGTERM, or when a component stops for good (`shutdown(reason, 1)`), runs `stop`
 * once (it finishes or abandons the batch in progress safely) and exits with the given code. A second signal
 * exits at once — nothing is lost either way, since uncommitted batches are replayed.
 */
export type Shutdown = (reason: string, exitCode?: number) => void;

export function onShutdownSignal(log: Logger, stop: (reason: string) => Promise<void>): Shutdown {
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
      process.exit(130);
    }
    shutdown(signal, 0);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return shutdown;
}
