import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { PipelineError } from '../core/index.ts';
import { directoryProblem, type PipelineConfig } from '../platform/config/index.ts';
import { isExiting, runningBrokerPort } from '../../infra/kafka/localBroker.ts';
import { runningStart } from './runningApi.ts';

/**
 * What `cdr start` checks before it starts anything, beyond the variables' values and files (`loadConfigAndFiles`):
 * the data directory can be used and no other `cdr start` holds it, and the API's port (and the local broker's) is free. Each problem names its
 * variable; all of them in one `config_invalid` error (exit 2). Found from outside (2026-12-04): a port in use was a
 * bare `EADDRINUSE` (exit 1) after the broker and the engine had started and keys had been written; a file as data
 * directory a raw `EEXIST`/`ENOTDIR`; a second `cdr start` on the same directory was told to stop "the" broker with
 * `kafka.sh stop` — the running pipeline's.
 */
export async function startPreflight(config: PipelineConfig): Promise<void> {
  const problems = await startPreflightProblems({
    dataDir: config.dataDir,
    apiHost: config.api.host,
    apiPort: config.api.port,
    localBroker: !config.kafka.brokers,
    localKafkaPort: config.kafka.localPort,
  });
  if (problems.length > 0) throw new PipelineError('config_invalid', `cannot start: ${problems.join('; ')}`);
}

/** What the preflight looks at; a value left out was itself invalid (named by the configuration's own message). */
export interface PreflightInputs {
  readonly dataDir: string;
  readonly apiHost: string | undefined;
  readonly apiPort: number | undefined;
  readonly localBroker: boolean;
  readonly localKafkaPort: number | undefined;
}

/**
 * The preflight's inputs read from the environment as the configuration reads them, each left out when it does not
 * parse: for a configuration that failed, so that its message names these problems too, in one round (found from
 * outside, 2026-12-07: a data directory that was a file and a port in use came in a second message, after the first
 * one's problems were fixed).
 */
export function preflightInputsOf(env: NodeJS.ProcessEnv): PreflightInputs {
  const text = (name: string): string | undefined => (env[name]?.trim() ? env[name].trim() : undefined);
  const port = (name: string, otherwise: number): number | undefined => {
    const v = text(name);
    if (v === undefined) return otherwise;
    return /^\d{1,5}$/.test(v) && Number(v) <= 65535 ? Number(v) : undefined;
  };
  return {
    dataDir: text('CDR_DATA_DIR') ?? '.data',
    apiHost: text('CDR_API_HOST') ?? '127.0.0.1',
    apiPort: port('CDR_API_PORT', 8080),
    localBroker: text('KAFKA_BROKERS') === undefined,
    localKafkaPort: port('CDR_LOCAL_KAFKA_PORT', 19092),
  };
}

export async function startPreflightProblems(inputs: PreflightInputs): Promise<string[]> {
  const problems: string[] = [];
  const dataDir = resolve(inputs.dataDir);
  const unusable = directoryProblem(dataDir);
  if (unusable) problems.push(`CDR_DATA_DIR (or --data-dir): ${unusable}`);
  else {
    const holder = startHolding(dataDir);
    if (holder !== undefined && isExiting(holder))
      problems.push(`CDR_DATA_DIR (or --data-dir): ${dataDir} is still held by a cdr start that is exiting (pid ${holder}): try again in a moment`);
    else if (holder !== undefined)
      problems.push(
        `CDR_DATA_DIR (or --data-dir): ${dataDir} is in use by a running cdr start (pid ${holder}): stop that one first (Ctrl-C in its terminal, or kill -INT ${holder}), or choose another data directory`,
      );
  }
  if (inputs.apiPort !== undefined && inputs.apiPort !== 0 && inputs.apiHost !== undefined) {
    const taken = await portProblem(inputs.apiHost, inputs.apiPort).catch(() => undefined);
    if (taken) problems.push(taken);
  }
  // The local broker's port, unless this data directory's own broker holds it (a killed run's, which the start reuses
  // or replaces): found from outside, a port in use was found only once the engine had opened and the claim was taken.
  const localBroker = inputs.localBroker && unusable === undefined && inputs.localKafkaPort !== undefined;
  if (localBroker && runningBrokerPort(resolve(dataDir, 'kafka')) !== inputs.localKafkaPort) {
    const taken = await portProblem('127.0.0.1', inputs.localKafkaPort, 'CDR_LOCAL_KAFKA_PORT');
    if (taken) problems.push(taken);
  }
  return problems;
}

/** The pid of another live `cdr start` holding this data directory (its claim file, or its API receipt), if any. */
function startHolding(dataDir: string): number | undefined {
  const claimed = readPid(resolve(dataDir, CLAIM_FILE));
  if (claimed !== undefined && claimed !== process.pid && isNodeProcess(claimed)) return claimed;
  try {
    const run = runningStart(dataDir);
    if (run && run.pid !== process.pid && isNodeProcess(run.pid)) return run.pid;
  } catch {
    // An unreadable receipt is no running start.
  }
  return undefined;
}

const CLAIM_FILE = 'cdr-start.pid';

/**
 * Marks the data directory as held by this process from the start (the API receipt `api.json` comes only once the API
 * listens, ~20 s later); the returned function removes the mark if it is still this process's. A mark left by a crash
 * names a pid that is gone, or not a Node process, and is taken over.
 */
export function claimDataDir(dataDir: string): () => void {
  const file = resolve(dataDir, CLAIM_FILE);
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  const release = (): void => {
    // Released by hand (a stop): the exit listener goes too, so a process that claims again and again holds one.
    process.removeListener('exit', release);
    if (readPid(file) === process.pid) rmSync(file, { force: true });
  };
  // Whatever ends the process — a start-up that fails after the claim included (found from outside: a broker that
  // could not start left the mark) — takes the mark with it; only a kill -9 leaves it, to be taken over.
  process.once('exit', release);
  return release;
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Alive, and (where /proc says) a Node process: a pid reused by something else is not a `cdr start`. One still
 * exiting has no command line to read, and still holds the engine and the API port: it counts. (Any process exiting
 * under the claim's pid counts, a stranger that reused it too: then the start is refused for the milliseconds it
 * takes to exit.)
 */
function isNodeProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return true;
  }
  return /node/.test(cmdline) || (cmdline === '' && isExiting(pid));
}

/** Why nothing can listen on host:port (in use, not permitted, no such address), naming its variable, or undefined. */
function portProblem(host: string, port: number, variable = 'CDR_API_PORT'): Promise<string | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') done(`${variable}: ${host}:${port} is in use by another program; stop it or choose a free port`);
      else if (err.code === 'EACCES') done(`${variable}: ${host}:${port} needs privileges this user does not have; choose a port above 1023`);
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') done(`CDR_API_HOST: ${host} is not an address of this machine`);
      else done(`${variable}: ${host}:${port} cannot be listened on (${err.code ?? 'error'})`);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(undefined)));
  });
}
