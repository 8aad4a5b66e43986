/**
 * CDR_LOG_FILE: where the JSON log lines of `cdr start` and the services go (found from outside: only ever
 * `<data dir>/pipeline.log` for `cdr start`, no way to hand them to a container's log collector).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../services/platform/config/index.ts';
import { logDestinationName } from '../../../../services/platform/observability/index.ts';
import { LogFile } from '../../../../services/platform/observability/logger.ts';

const LOGGER = new URL('../../../../services/platform/observability/index.ts', import.meta.url).href;

/** Runs a child that logs one line through `logDestination(logFile, fallback)`; its stdout and stderr. */
function logFrom(logFile: string | undefined, fallback?: string): { stdout: string; stderr: string } {
  const script = `
    import { createLogger, logDestination } from ${JSON.stringify(LOGGER)};
    const dest = logDestination(${JSON.stringify(logFile)}, ${JSON.stringify(fallback)});
    createLogger('info', dest).info({ sender: '+60123456789' }, 'consumer started');
`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

describe('where the log lines go (CDR_LOG_FILE)', () => {
  it('`-` and `stdout` write JSON lines to stdout, redacted as ever', () => {
    for (const to of ['-', 'stdout']) {
      const { stdout, stderr } = logFrom(to, '/nonexistent/never-written.log');
      const line = JSON.parse(stdout.trim()) as { msg: string; sender: string };
      assert.equal(line.msg, 'consumer started');
      assert.equal(line.sender, '[redacted]');
      assert.equal(stderr, '');
    }
  });

  it('`stderr`, or nothing and no fallback, write to stderr', () => {
    for (const to of ['stderr', undefined]) {
      const { stdout, stderr } = logFrom(to);
      assert.equal(stdout, '');
      assert.equal((JSON.parse(stderr.trim()) as { msg: string }).msg, 'consumer started');
    }
  });

  it('a path is a file (its directory created); unset, the fallback file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdr-logdest-'));
    try {
      const chosen = join(dir, 'sub', 'mine.log');
      logFrom(chosen, join(dir, 'fallback.log'));
      assert.match(readFileSync(chosen, 'utf8'), /"msg":"consumer started"/);
      assert.throws(() => readFileSync(join(dir, 'fallback.log')), /ENOENT/);
      logFrom(undefined, join(dir, 'fallback.log'));
      assert.match(readFileSync(join(dir, 'fallback.log'), 'utf8'), /"msg":"consumer started"/);
      assert.equal(logDestinationName(undefined, join(dir, 'fallback.log')), join(dir, 'fallback.log'));
      assert.equal(logDestinationName('-', 'x'), 'stdout');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a log file on a full disk: says once that lines are dropped, keeps a line the failure cut off apart from the next, and says how many when the file takes them again', () => {
    // Found from outside (2026-12-07): a service whose CDR_LOG_FILE was on a full disk froze before serving anything.
    const dir = mkdtempSync(join(tmpdir(), 'cdr-logfile-'));
    try {
      const warned: string[] = [];
      let room = 10_000;
      const file = new LogFile(
        join(dir, 'p.log'),
        (t) => warned.push(t),
        (fd, bytes, offset, length) => {
          if (room <= 0) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
          const n = Math.min(room, length);
          room -= n;
          return writeSync(fd, bytes, offset, n);
        },
      );
      file.write('{"msg":"one"}\n');
      room = 5; // the next line is cut off after 5 bytes
      file.write('{"msg":"two"}\n');
      file.write('{"msg":"three"}\n');
      assert.equal(warned.length, 1);
      room = 10_000;
      file.write('{"msg":"four"}\n');
      const lines = readFileSync(join(dir, 'p.log'), 'utf8').split('\n');
      assert.equal(lines[0], '{"msg":"one"}');
      assert.equal(lines[1], '{"msg');
      const note = JSON.parse(lines[2]!) as { dropped_lines: number; msg: string };
      assert.deepEqual([note.dropped_lines, note.msg], [2, 'the log file takes lines again after ENOSPC']);
      assert.equal(lines[3], '{"msg":"four"}');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is read by the one config module, and a blank value is the default destination (a blank variable is unset)', () => {
    assert.equal(loadConfig({ CDR_LOG_FILE: '-' }, []).logFile, '-');
    assert.equal(loadConfig({}, []).logFile, undefined);
    assert.equal(loadConfig({ CDR_LOG_FILE: '  ' }, []).logFile, undefined);
    assert.equal(loadConfig({ CDR_LOG_FILE: '' }, []).logFile, undefined);
  });
});
