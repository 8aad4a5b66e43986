import type { Logger } from 'pino';

/**
 * Graceful shutdown on SIGINT/SIGTERM: runs `stop` once (it finishes or abandons the current batch safely);
 * a second signal exits at once — nothing is lost either way, since uncommitted batches are replayed.
 */
export function onShutdownSignal(log: Logger, stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now; the batch in progress will be replayed on next start');
      process.exit(130);
    }
    stopping = true;
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
