// Entry point of every worker thread. Loader hooks registered with module.register() (what tsx does, from
// bin/cdr.js or from `--import tsx`) do not reach worker threads on Node 20, so a worker registers tsx for
// itself, then imports the TypeScript module it was started for.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.moduleUrl);
