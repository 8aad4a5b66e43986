import { accessSync, closeSync, constants, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pino, { type Logger, type DestinationStream } from 'pino';
import { makeDirectories } from '../config/directories.ts';

/**
 * Central logger. Redaction is configured here once: any field that could carry an identifier, a key
 * or a token mapping is censored wherever it appears, so a careless `log.info({ event })` leaks nothing.
 * Code must still never put identifiers into message strings; a test scans the logs for them.
 */
export const REDACTED_PATHS = [
  'sender',
  'recipient',
  'identifier',
  'value',
  'msisdn',
  'email',
  'token',
  'tokens',
  'key',
  'masterKey',
  'wrappedKey',
  'client_ip',
  '*.sender',
  '*.recipient',
  '*.identifier',
  '*.value',
  '*.msisdn',
  '*.email',
  '*.token',
  '*.tokens',
  '*.key',
  '*.masterKey',
  '*.wrappedKey',
  '*.client_ip',
  '*.*.sender',
  '*.*.recipient',
  '*.*.identifier',
  '*.*.value',
  '*.*.token',
  '*.*.key',
  'sender_token',
  'recipient_token',
  '*.sender_token',
  '*.recipient_token',
  'password',
  '*.password',
  '*.*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
];

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cdr-pipeline' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/**
 * Where a process's JSON log lines go (CDR_LOG_FILE): `-` or `stdout` → stdout (containers collect it), `stderr` →
 * stderr, anything else a file (appended, its directory created); unset → `fallback` (a file), or stderr without one.
 */
function logTarget(logFile: string | undefined, fallback: string | undefined): 1 | 2 | string {
  const where = logFile ?? fallback;
  if (where === undefined || where === 'stderr') return 2;
  if (where === '-' || where === 'stdout') return 1;
  return where;
}

/**
 * CDR_LOG_FILE as `logDestination` will open it (its directory created, the file appended to): for
 * `loadConfigAndFiles`. Found from outside: an unwritable one was taken silently — no log at all — and the stop
 * crashed ("sonic boom is not ready yet").
 */
export const LOG_FILE_CHECKS: Readonly<Record<string, (path: string) => unknown>> = {
  CDR_LOG_FILE: (path) => {
    const target = logTarget(path, undefined);
    if (typeof target === 'number') return;
    try {
      // A file that exists is only checked, not opened: a FIFO would block start-up until a reader came, and its
      // close would end that reader.
      if (existsSync(target)) {
        accessSync(target, constants.W_OK);
        return;
      }
      // One level at a time (makeDirectories: `/proc/x` made the check spin at 100% CPU). Private (0700, 0600), as
      // `cdr start` keeps what it writes: made here, before its umask is set (found in review).
      makeDirectories(dirname(resolve(target)), 0o700);
      closeSync(openSync(target, 'a', 0o600));
    } catch (err) {
      throw new Error(`CDR_LOG_FILE: cannot write ${target} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  },
};

export function logDestination(logFile: string | undefined, fallback?: string): DestinationStream {
  const target = logTarget(logFile, fallback);
  if (typeof target === 'number') return pino.destination({ dest: target, sync: false });
  // A regular file (or one to be made) is written line by line (LogFile). Anything else — a FIFO, /dev/stdout on a
  // pipe — keeps the asynchronous destination: opening a FIFO without a reader, or writing to a slow pipe, would hold
  // the event loop (found in review).
  let regular = true;
  try {
    regular = statSync(target).isFile();
  } catch {
    // Not there yet: made as a regular file.
  }
  return regular ? new LogFile(target) : pino.destination({ dest: target, mkdir: true, sync: false });
}

/**
 * A log file written line by line, that never stops the process. Found from outside (2026-12-07): with pino's
 * asynchronous file destination, a full disk (ENOSPC) froze a service before it served anything — the failed write's
 * error went unhandled and the exit handler's flush retried it for ever — with nothing said anywhere. Here a line that
 * cannot be written is dropped and counted; stderr is told once when the file stops taking lines, and the file itself
 * when it takes them again. Lines are few (status and batch events, not one per record), so a write each costs little.
 */
export class LogFile implements DestinationStream {
  private readonly fd: number;
  private dropped = 0;
  private failing: string | undefined;
  /** A line was cut off by the failure: the next one written starts on a line of its own. */
  private partial = false;

  constructor(
    private readonly path: string,
    private readonly warn: (text: string) => void = (text) => void process.stderr.write(text),
    private readonly writeBytes: (fd: number, bytes: Buffer, offset: number, length: number) => number = writeSync,
  ) {
    makeDirectories(dirname(resolve(path)), 0o700);
    this.fd = openSync(path, 'a', 0o600);
  }

  write(line: string): void {
    if (
      this.failing !== undefined &&
      !this.put(
        `${this.partial ? '\n' : ''}${JSON.stringify({ level: 40, time: Date.now(), service: 'cdr-pipeline', dropped_lines: this.dropped, msg: `the log file takes lines again after ${this.failing}` })}\n`,
      )
    ) {
      this.dropped++;
      return;
    }
    if (this.failing !== undefined) {
      this.failing = undefined;
      this.dropped = 0;
      this.partial = false;
    }
    if (!this.put(line)) this.dropped++;
  }

  /** Writes the whole line, or says why not (once per spell of failures). */
  private put(line: string): boolean {
    const bytes = Buffer.from(line, 'utf8');
    let at = 0;
    try {
      while (at < bytes.length) at += this.writeBytes(this.fd, bytes, at, bytes.length - at);
      return true;
    } catch (err) {
      if (at > 0) this.partial = true;
      if (this.failing === undefined) {
        this.failing = (err as NodeJS.ErrnoException).code ?? 'an error';
        this.warn(`cdr-pipeline: cannot write the log file ${this.path} (${this.failing}): its lines are dropped until it can be written again\n`);
      }
      return false;
    }
  }
}

/** What `logDestination` writes to, in words for a start-up line. */
export function logDestinationName(logFile: string | undefined, fallback?: string): string {
  const target = logTarget(logFile, fallback);
  return target === 1 ? 'stdout' : target === 2 ? 'stderr' : target;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };
const NOT_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg']);

/**
 * One pino record (already redacted) as a line for a person at a terminal: `cdr: warning: <message> (field=value, …)`.
 * An error field gives its message only (its stack is for the services' JSON logs).
 */
export function commandLogLine(record: Record<string, unknown>): string {
  const level = LEVEL_NAMES[Number(record['level'])] ?? 'log';
  const fields = Object.entries(record)
    .filter(([k, v]) => !NOT_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => {
      const err = v as { message?: unknown } | null;
      const text =
        k === 'err' && err !== null && typeof err === 'object' && typeof err.message === 'string' ? err.message : typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${text}`;
    });
  return `cdr: ${level}: ${typeof record['msg'] === 'string' ? record['msg'] : ''}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}\n`;
}

/**
 * The logger of the one-shot commands (`cdr retention run`, `cdr billing …`, `cdr audit verify`, `cdr produce`): the
 * same redaction, warnings and errors only unless CDR_LOG_LEVEL asks for more, written to stderr as plain lines — their
 * stdout carries the answer (often JSON), and a JSON log line among a person's output read as noise (found from
 * outside). The services and `cdr start` keep JSON logs.
 */
export function createCommandLogger(level: string, write: (line: string) => void = (line) => void process.stderr.write(line)): Logger {
  return createLogger(level === 'info' ? 'warn' : level, {
    write(line: string): void {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        write(line);
        return;
      }
      write(commandLogLine(record));
    },
  });
}
