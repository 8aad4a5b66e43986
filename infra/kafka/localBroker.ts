/**
 * A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1,
 * for tests, benchmarks and local development. Thin wrapper around infra/kafka/kafka.sh, which
 * fetches the broker jars from Maven Central (infra/kafka/pom.xml) into .cache/kafka/<version>/libs
 * and runs them with the installed Java >= 17. See docs/kafka-local.md.
 *
 * Existing broker for the same dataDir: startLocalBroker() does NOT reuse it; it throws
 * KafkaBrokerAlreadyRunningError. A live broker from an earlier run is either owned by another live
 * process (whose watchdog will stop it when that process exits, possibly in the middle of our run)
 * or was started by hand; silently sharing it would make test results depend on leftovers.
 * A stale pid file (process gone, or pid reused by something else) is cleaned up and ignored.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LocalBrokerOptions {
  /** Directory holding config, KRaft metadata, topic data, pid and log files. Created if missing. */
  dataDir: string;
  /** Client (PLAINTEXT) port on 127.0.0.1. 0 or undefined: reuse the port of the previous run on this
   *  dataDir if it is free, else pick a free one. */
  port?: number;
  /** The broker is stopped by a watchdog once this process is gone. Default process.pid.
   *  0 disables the watchdog (the broker then runs until stop() / `infra/kafka/kafka.sh stop`). */
  ownerPid?: number;
}

export interface LocalBroker {
  /** Bootstrap servers for clients, e.g. ["127.0.0.1:41234"]. */
  readonly brokers: string[];
  /** pid of the broker JVM (the current one, after a supervised restart). */
  readonly pid: number;
  /** Absolute data dir. */
  readonly dataDir: string;
  /** Broker stdout/stderr (log4j console output). */
  readonly logFile: string;
  /** Kafka version running. */
  readonly version: string;
  /** SIGTERM, wait for exit (SIGKILL after 30 s). Idempotent. Ends a supervision first. */
  stop(): Promise<void>;
  /**
   * Starts the broker again, on the same port and data, whenever its JVM ends other than by stop() (killed, out of
   * memory, crashed), and tells `onEvent` of each exit and restart. A restart that fails is tried again with a
   * growing wait (2 s up to 30 s) for as long as the supervision runs. Returns a function that ends it.
   */
  supervise(onEvent: (event: BrokerEvent) => void, options?: { checkEveryMs?: number }): () => void;
}

/** What a supervised broker went through (LocalBroker.supervise). */
export type BrokerEvent =
  | { readonly kind: 'exited'; readonly pid: number }
  | { readonly kind: 'restarted'; readonly pid: number; readonly downMs: number }
  | { readonly kind: 'restart_failed'; readonly attempt: number; readonly retryInMs: number; readonly error: Error };

export interface LocalKafkaErrorOptions {
  cause?: unknown;
  /** Last lines of the broker log / script output; also appended to the message. */
  logTail?: string;
}

/** Base class of every error thrown by this module. */
export class LocalKafkaError extends Error {
  readonly logTail: string | undefined;

  constructor(message: string, options: LocalKafkaErrorOptions = {}) {
    const tail = options.logTail?.trimEnd();
    super(tail ? `${message}\n${tail}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.logTail = tail;
  }
}

/** Fetching the jars (Maven) failed, or Java/Maven are missing. */
export class KafkaInstallError extends LocalKafkaError {}

/** The broker did not start or did not become ready in time. */
export class KafkaStartError extends LocalKafkaError {}

/** A broker started earlier for the same data dir is still running (see module comment). */
export class KafkaBrokerAlreadyRunningError extends KafkaStartError {
  readonly runningPid: number | undefined;
  readonly runningPort: number | undefined;

  constructor(message: string, details: { pid: number | undefined; port: number | undefined }, options: LocalKafkaErrorOptions = {}) {
    super(message, options);
    this.runningPid = details.pid;
    this.runningPort = details.port;
  }
}

/** The broker could not be stopped. */
export class KafkaStopError extends LocalKafkaError {}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = path.join(REPO_ROOT, 'infra', 'kafka', 'kafka.sh');
const POM = path.join(REPO_ROOT, 'infra', 'kafka', 'pom.xml');

const FETCH_TIMEOUT_MS = 15 * 60_000;
/** infra/kafka/kafka.sh gives up after KAFKA_START_TIMEOUT (90 s); this is only a backstop. */
const START_TIMEOUT_MS = 5 * 60_000;
const STOP_TIMEOUT_MS = 2 * 60_000;
const SCRIPT_EXIT_ALREADY_RUNNING = 3;
const LOG_TAIL_LINES = 60;

interface ScriptResult {
  stdout: string;
  stderr: string;
}

class ScriptFailure extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
    cause: unknown,
  ) {
    super(`infra/kafka/kafka.sh ${args.join(' ')} failed (${exitCode !== null ? `exit code ${exitCode}` : `signal ${signal ?? '?'}`})`, { cause });
    this.name = 'ScriptFailure';
  }
}

function runScript(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [SCRIPT, ...args],
      { env, timeout: timeoutMs, killSignal: 'SIGTERM', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const exitCode = typeof error.code === 'number' ? error.code : null;
          reject(new ScriptFailure(args, exitCode, error.signal ?? null, stdout, stderr, error));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

function lastLines(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

/** The broker log's last lines written from byte `from` on (what this start attempt wrote), or undefined. */
async function readLogTail(dataDir: string, n = LOG_TAIL_LINES, from = 0): Promise<string | undefined> {
  try {
    const log = await readFile(path.join(dataDir, 'broker.log'));
    // Shorter than before: kafka.sh moved a large log aside and began a new one, all of it this attempt's.
    const written = log.subarray(log.length >= from ? from : 0).toString('utf8');
    return written.trim() === '' ? undefined : lastLines(written, n);
  } catch {
    return undefined;
  }
}

/**
 * The lines of what this start attempt wrote to the broker log (from byte `from`) that say what went wrong: ERROR and
 * FATAL lines and exceptions, at most `n`. A broker that exits during start-up can log its reason long before its last
 * lines (seen in a CI rehearsal, 2026-12-05: the tail showed only INFO lines).
 */
async function readLogErrors(dataDir: string, from: number, n = 15): Promise<string | undefined> {
  try {
    const log = await readFile(path.join(dataDir, 'broker.log'));
    const lines = log
      .subarray(log.length >= from ? from : 0)
      .toString('utf8')
      .split('\n')
      .filter((l) => /\b(ERROR|FATAL)\b|Exception|Error:/.test(l));
    return lines.length === 0 ? undefined : lines.slice(0, n).join('\n');
  } catch {
    return undefined;
  }
}

function logSize(dataDir: string): number {
  try {
    return statSync(path.join(dataDir, 'broker.log')).size;
  } catch {
    return 0;
  }
}

function readIntFile(file: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The port of the broker running for `dataDir` (its pid file names a live process), or undefined: how a client
 * finds the broker a `cdr start` owns, whatever port that one was given.
 */
export function runningBrokerPort(dataDir: string): number | undefined {
  const dir = path.resolve(dataDir);
  const pid = readIntFile(path.join(dir, 'broker.pid'));
  return pid !== undefined && isAlive(pid) ? readIntFile(path.join(dir, 'broker.port')) : undefined;
}

/**
 * Alive and not a zombie (kill -0 succeeds on zombies until they are reaped). A process whose main thread shows Z
 * while other threads are left is still exiting: a killed JVM's threads tear down its memory and only then close
 * its files, the listening port among them. Taking it for gone let a supervised restart meet "port already in use"
 * (seen in CI after a SIGKILL on a busy host).
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = mainThreadState(pid);
  if (state === undefined) return process.platform !== 'linux';
  return (state !== 'Z' && state !== 'X') || otherThreadsLeft(pid);
}

/**
 * A process still exiting: its main thread has exited (a zombie), other threads are left and hold its files. Its command line
 * then reads empty, so a check by command line takes it for something else (`cdr start`'s claim on its data directory).
 */
export function isExiting(pid: number): boolean {
  const state = mainThreadState(pid);
  return (state === 'Z' || state === 'X') && otherThreadsLeft(pid);
}

/** The main thread's state letter from /proc (R, S, Z…), or undefined where there is no /proc entry. */
function mainThreadState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function otherThreadsLeft(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return false;
  }
}

/** Kafka version from KAFKA_VERSION or <kafka.version> in infra/kafka/pom.xml (as infra/kafka/kafka.sh does). */
function kafkaVersion(): string {
  const fromEnv = process.env['KAFKA_VERSION'];
  if (fromEnv) return fromEnv;
  let pom: string;
  try {
    pom = readFileSync(POM, 'utf8');
  } catch (cause) {
    throw new KafkaInstallError(`cannot read ${POM}`, { cause });
  }
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom);
  if (!match?.[1]) throw new KafkaInstallError(`no <kafka.version> in ${POM}`);
  return match[1].trim();
}

function libDirFor(version: string): string {
  return path.join(REPO_ROOT, '.cache', 'kafka', version, 'libs');
}

let installPromise: Promise<{ version: string; libDir: string }> | undefined;

/**
 * Makes sure the broker jars are in .cache/kafka/<version>/libs (runs Maven once; later calls are
 * instant). Concurrent calls, also from other processes, are serialised by the script.
 */
export async function ensureKafkaInstalled(): Promise<{ version: string; libDir: string }> {
  installPromise ??= (async () => {
    const version = kafkaVersion();
    const libDir = libDirFor(version);
    if (existsSync(path.join(libDir, '.complete'))) return { version, libDir };
    try {
      const { stdout } = await runScript(['fetch'], process.env, FETCH_TIMEOUT_MS);
      const printed = lastLines(stdout, 1).trim();
      if (path.resolve(printed) !== path.resolve(libDir)) {
        throw new KafkaInstallError(`infra/kafka/kafka.sh fetch printed '${printed}', expected '${libDir}'`);
      }
    } catch (err) {
      if (err instanceof LocalKafkaError) throw err;
      const output = err instanceof ScriptFailure ? lastLines(`${err.stdout}\n${err.stderr}`, LOG_TAIL_LINES) : undefined;
      throw new KafkaInstallError(`fetching Kafka ${version} jars with Maven failed`, { cause: err, logTail: output });
    }
    return { version, libDir };
  })();
  try {
    return await installPromise;
  } catch (err) {
    installPromise = undefined; // allow a retry
    throw err;
  }
}

/**
 * Java classpath (`<libDir>/*`) with the broker and CLI tools, e.g. for
 * `java -cp <cp> org.apache.kafka.tools.ConsumerPerformance --bootstrap-server ... --topic ... --messages N`.
 * Throws if the jars are not fetched yet: await ensureKafkaInstalled() first.
 */
export function kafkaToolClasspath(): string {
  const version = kafkaVersion();
  const libDir = libDirFor(version);
  if (!existsSync(path.join(libDir, '.complete'))) {
    throw new KafkaInstallError(`Kafka ${version} jars are not in ${libDir}; await ensureKafkaInstalled() first`);
  }
  return `${libDir}${path.sep}*`;
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      server.close(() => resolve(bound));
    });
  });
}

async function isPortFree(port: number): Promise<boolean> {
  try {
    await listenOnce(port);
    return true;
  } catch {
    return false;
  }
}

async function choosePort(dataDir: string, requested: number | undefined, preferPrevious: boolean): Promise<number> {
  if (requested !== undefined && requested !== 0) {
    if (!Number.isInteger(requested) || requested < 1 || requested > 65535) {
      throw new KafkaStartError(`invalid port ${requested}`);
    }
    return requested;
  }
  const previous = readIntFile(path.join(dataDir, 'broker.port'));
  const previousController = readIntFile(path.join(dataDir, 'controller.port'));
  if (preferPrevious && previous !== undefined && (await isPortFree(previous))) return previous;
  for (;;) {
    const port = await listenOnce(0);
    // the script puts the controller on the first free port above the broker port
    if (port < 65535 && port !== previousController) return port;
  }
}

/**
 * Starts (formatting on first use) a broker for opts.dataDir and resolves once it answers Kafka
 * requests on 127.0.0.1. Typical times on a 2-core machine: ~3-5 s (plus a one-off Maven fetch).
 */
export async function startLocalBroker(opts: LocalBrokerOptions): Promise<LocalBroker> {
  const dataDir = path.resolve(opts.dataDir);
  const ownerPid = opts.ownerPid ?? process.pid;
  if (!Number.isInteger(ownerPid) || ownerPid < 0) throw new KafkaStartError(`invalid ownerPid ${ownerPid}`);

  try {
    await mkdir(dataDir, { recursive: true });
  } catch (cause) {
    throw new KafkaStartError(`cannot create Kafka data dir ${dataDir}`, { cause });
  }
  const { version } = await ensureKafkaInstalled();
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (ownerPid > 0) env['KAFKA_OWNER_PID'] = String(ownerPid);
  else delete env['KAFKA_OWNER_PID'];

  const autoPort = opts.port === undefined || opts.port === 0;
  let port = await choosePort(dataDir, opts.port, true);
  // A restart on a data directory starts on the port of its last run when that is free.
  const previousPort = readIntFile(path.join(dataDir, 'broker.port'));
  let samePortWaits = 0;
  for (let attempt = 1; ; attempt++) {
    // Only what this attempt writes to the log explains its failure (found from outside: a port in use printed ~60
    // lines of an earlier run's log after the right one-line reason).
    const logFrom = logSize(dataDir);
    try {
      await runScript(['start', dataDir, String(port)], env, START_TIMEOUT_MS);
      break;
    } catch (err) {
      if (err instanceof ScriptFailure && err.exitCode === SCRIPT_EXIT_ALREADY_RUNNING) {
        const runningPid = readIntFile(path.join(dataDir, 'broker.pid'));
        const runningPort = readIntFile(path.join(dataDir, 'broker.port'));
        throw new KafkaBrokerAlreadyRunningError(
          `a Kafka broker is already running for ${dataDir} (pid ${runningPid ?? '?'}, 127.0.0.1:${runningPort ?? '?'}); ` +
            `not starting a second one. Stop it with: infra/kafka/kafka.sh stop ${dataDir}`,
          { pid: runningPid, port: runningPort },
          { cause: err },
        );
      }
      const scriptOutput = err instanceof ScriptFailure ? err.stderr : '';
      // An auto-picked port (or the controller port above it) can be grabbed by someone else between picking and
      // binding — other brokers start side by side in the integrity suite: retry on fresh ports. A broker that exits
      // during start-up counts too: one did in a CI rehearsal (2026-12-04) with no bind error in its log's tail.
      const bindFailed = /already in use|BindException|exited during startup/.test(scriptOutput);
      // The ports of the run that just stopped can be held a moment longer (its sockets closing, or a client's
      // connection on the controller port above): wait for them before moving a restart elsewhere (a CI rehearsal,
      // 2026-12-05: a restart's controller port was "already in use", and the two fresh ports tried next failed too).
      if (autoPort && bindFailed && port === previousPort && samePortWaits < 5) {
        samePortWaits++;
        process.stderr.write(`local Kafka: 127.0.0.1:${port} (or the controller port above it) still in use; trying it again in 2 s\n`);
        await new Promise((r) => setTimeout(r, 2_000));
        attempt--;
        continue;
      }
      if (autoPort && attempt < 3 && bindFailed) {
        const errors = await readLogErrors(dataDir, logFrom, 5);
        process.stderr.write(`local Kafka: start on 127.0.0.1:${port} failed (attempt ${attempt}); trying other ports${errors ? `\n${errors}` : ''}\n`);
        port = await choosePort(dataDir, 0, false);
        // And another controller port: the script would take the saved one again when nothing listens on it, though
        // it may be what could not be bound (both retries of two CI rehearsals failed the way the first one did).
        rmSync(path.join(dataDir, 'controller.port'), { force: true });
        continue;
      }
      // The script prints the broker log tail on failure; otherwise add it ourselves.
      let logTail = lastLines(scriptOutput, LOG_TAIL_LINES + 10);
      if (!scriptOutput.includes('----- last ')) {
        const brokerLog = await readLogTail(dataDir, LOG_TAIL_LINES, logFrom);
        if (brokerLog) logTail += `\n----- last lines of ${path.join(dataDir, 'broker.log')} -----\n${brokerLog}`;
      }
      const errors = await readLogErrors(dataDir, logFrom);
      if (errors) logTail = `----- errors this attempt logged -----\n${errors}\n${logTail}`;
      throw new KafkaStartError(`Kafka ${version} broker failed to start in ${dataDir} on 127.0.0.1:${port}`, {
        cause: err,
        logTail,
      });
    }
  }

  const pid = readIntFile(path.join(dataDir, 'broker.pid'));
  if (pid === undefined || !isAlive(pid)) {
    throw new KafkaStartError(`broker reported ready but its pid file in ${dataDir} is missing or stale`, {
      logTail: await readLogTail(dataDir),
    });
  }

  let currentPid = pid;
  let supervision: { readonly end: () => void; restarting: Promise<void> | undefined } | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Not restarted while (or after) it is stopped; a restart under way finishes first, so it is the one stopped.
      // Its JVM is stopped at once too: a start that hangs (a JVM that never answers) would otherwise hold the stop
      // for kafka.sh's whole start timeout (90 s; found in review). Before the JVM is launched there is nothing to
      // stop yet, and the stop below, after the restart ends, takes what it launched.
      const restarting = supervision?.restarting;
      supervision?.end();
      if (restarting) await runScript(['stop', dataDir], process.env, STOP_TIMEOUT_MS).catch(() => undefined);
      await restarting?.catch(() => undefined);
      try {
        await runScript(['stop', dataDir], process.env, STOP_TIMEOUT_MS);
      } catch (err) {
        stopping = undefined; // allow a retry
        const scriptOutput = err instanceof ScriptFailure ? lastLines(err.stderr, 20) : '';
        throw new KafkaStopError(`failed to stop Kafka broker pid ${pid} (${dataDir})`, {
          cause: err,
          logTail: [scriptOutput, await readLogTail(dataDir, 30)].filter(Boolean).join('\n'),
        });
      }
    })();
    return stopping;
  };

  const supervise = (onEvent: (event: BrokerEvent) => void, options: { checkEveryMs?: number } = {}): (() => void) => {
    supervision?.end();
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    // The wait between failed starts, cut short by end(): a stop does not wait out a 30 s back-off (found in review).
    let wakeUp: (() => void) | undefined;
    const pause = (ms: number): Promise<void> =>
      new Promise<void>((resolve) => {
        // Ended while the start ran (a stop): no wait at all — the wake-up was spent before this pause began.
        if (ended) return resolve();
        const t = setTimeout(resolve, ms);
        t.unref();
        wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
    const self = {
      end: () => {
        ended = true;
        if (timer) clearTimeout(timer);
        wakeUp?.();
        if (supervision === self) supervision = undefined;
      },
      restarting: undefined as Promise<void> | undefined,
    };
    supervision = self;
    const every = options.checkEveryMs ?? 1_000;
    const next = (ms: number): void => {
      if (ended) return;
      timer = setTimeout(check, ms);
      // The supervision alone keeps no process alive.
      timer.unref();
    };
    const restart = async (downSince: number): Promise<void> => {
      for (let attempt = 1; !ended; attempt++) {
        try {
          // The same port: clients know the broker by it. KAFKA_OWNER_PID (env) starts the watchdog again with it.
          await runScript(['start', dataDir, String(port)], env, START_TIMEOUT_MS);
        } catch (err) {
          // Stopped meanwhile (a stop ends the start it finds under way): not a failure to tell anyone of.
          if (ended) return;
          // Started by someone else meanwhile (exit 3): that broker is the one watched now.
          if (!(err instanceof ScriptFailure && err.exitCode === SCRIPT_EXIT_ALREADY_RUNNING)) {
            const retryInMs = Math.min(30_000, 2_000 * 2 ** Math.min(attempt - 1, 4));
            const stderr = err instanceof ScriptFailure ? lastLines(err.stderr, 5) : '';
            const error = new KafkaStartError(`the local Kafka broker did not start again in ${dataDir} on 127.0.0.1:${port}`, {
              cause: err,
              ...(stderr ? { logTail: stderr } : {}),
            });
            onEvent({ kind: 'restart_failed', attempt, retryInMs, error });
            await pause(retryInMs);
            continue;
          }
        }
        const restarted = readIntFile(path.join(dataDir, 'broker.pid'));
        if (restarted !== undefined && isAlive(restarted)) {
          currentPid = restarted;
          onEvent({ kind: 'restarted', pid: restarted, downMs: Date.now() - downSince });
          return;
        }
        // Started, and gone already: a failed start like the others (said, and waited for), not a retry at once.
        const retryInMs = Math.min(30_000, 2_000 * 2 ** Math.min(attempt - 1, 4));
        const tail = await readLogTail(dataDir, 10);
        const error = new KafkaStartError(`the local Kafka broker started again in ${dataDir} but exited at once`, tail ? { logTail: tail } : {});
        onEvent({ kind: 'restart_failed', attempt, retryInMs, error });
        await pause(retryInMs);
      }
    };
    const check = (): void => {
      if (ended || stopping) return;
      if (isAlive(currentPid)) return next(every);
      onEvent({ kind: 'exited', pid: currentPid });
      self.restarting = restart(Date.now()).finally(() => {
        self.restarting = undefined;
        next(every);
      });
    };
    next(every);
    return self.end;
  };

  return {
    brokers: [`127.0.0.1:${port}`],
    get pid() {
      return currentPid;
    },
    dataDir,
    logFile: path.join(dataDir, 'broker.log'),
    version,
    stop,
    supervise,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// A local KRaft cluster: several combined broker+controller nodes on loopback, for tests of broker loss.

export interface LocalClusterOptions {
  /** Parent directory; node N keeps its data in `<dataDir>/node-N`. */
  dataDir: string;
  /** Number of nodes (default 3). Replication factor min(3, nodes); min.insync.replicas 2 from 3 nodes on. */
  nodes?: number;
  /** As for startLocalBroker (default: this process). */
  ownerPid?: number;
}

export interface LocalClusterNode {
  readonly id: number;
  readonly port: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  /** pid of the node's JVM while it runs. */
  pid(): number | undefined;
  /** Ends the node's JVM with the signal (default SIGKILL: a crash) and waits until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again on the same ports and data, and waits until it answers. */
  restart(): Promise<void>;
}

export interface LocalCluster {
  readonly brokers: string[];
  readonly nodes: readonly LocalClusterNode[];
  readonly version: string;
  /** Stops every node that runs. Idempotent. */
  stop(): Promise<void>;
}

function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Starts a KRaft cluster of `nodes` nodes on free loopback ports; resolves when every node answers. */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const n = opts.nodes ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new KafkaStartError(`invalid node count ${n}`);
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const { version } = await ensureKafkaInstalled();
  const ownerPid = opts.ownerPid ?? process.pid;
  const ports: number[] = [];
  while (ports.length < 2 * n) {
    const p = await listenOnce(0);
    if (!ports.includes(p)) ports.push(p);
  }
  const cid = clusterId();
  const voters = Array.from({ length: n }, (_, i) => `${i + 1}@127.0.0.1:${ports[n + i]}`).join(',');
  const nodeEnv = (id: number): NodeJS.ProcessEnv => ({
    ...process.env,
    KAFKA_NODE_ID: String(id),
    KAFKA_QUORUM_VOTERS: voters,
    KAFKA_CLUSTER_ID: cid,
    KAFKA_REPLICATION: String(Math.min(3, n)),
    KAFKA_CONTROLLER_PORT: String(ports[n + id - 1]),
    ...(ownerPid > 0 ? { KAFKA_OWNER_PID: String(ownerPid) } : {}),
  });
  const nodes: LocalClusterNode[] = Array.from({ length: n }, (_, i) => {
    const id = i + 1;
    const dir = path.join(dataDir, `node-${id}`);
    const port = ports[i]!;
    const start = async (): Promise<void> => {
      await mkdir(dir, { recursive: true });
      try {
        await runScript(['start', dir, String(port)], nodeEnv(id), START_TIMEOUT_MS);
      } catch (err) {
        const out = err instanceof ScriptFailure ? lastLines(`${err.stdout}\n${err.stderr}`, LOG_TAIL_LINES) : undefined;
        throw new KafkaStartError(`cluster node ${id} did not start on 127.0.0.1:${port}`, { cause: err, logTail: out });
      }
    };
    return {
      id,
      port,
      controllerPort: ports[n + i]!,
      dataDir: dir,
      pid: () => {
        const pid = readIntFile(path.join(dir, 'broker.pid'));
        return pid !== undefined && isAlive(pid) ? pid : undefined;
      },
      kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
        const pid = readIntFile(path.join(dir, 'broker.pid'));
        if (pid === undefined || !isAlive(pid)) return;
        process.kill(pid, signal);
        for (let t = 0; t < 600 && isAlive(pid); t++) await new Promise((r) => setTimeout(r, 100));
        if (isAlive(pid)) throw new KafkaStopError(`node ${id} (pid ${pid}) did not end after ${signal}`);
      },
      restart: start,
    };
  });
  const started = await Promise.allSettled(nodes.map((node) => node.restart()));
  const failed = started.find((r) => r.status === 'rejected');
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => runScript(['stop', node.dataDir], process.env, STOP_TIMEOUT_MS).catch(() => undefined)));
  };
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { brokers: nodes.map((node) => `127.0.0.1:${node.port}`), nodes, version, stop };
}
