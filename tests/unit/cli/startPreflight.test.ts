import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimDataDir, startPreflightProblems } from '../../../services/cli/startPreflight.ts';
import { startExitingProcess } from '../../support/exitingProcess.ts';
import { directoryProblem as dataDirProblem } from '../../../services/platform/config/directories.ts';

describe('cdr start pre-flight: the data directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'cdr-preflight-'));

  it('takes a directory that exists, or one that can be created below a writable one', () => {
    assert.equal(dataDirProblem(root), undefined);
    assert.equal(dataDirProblem(join(root, 'new', 'deeper')), undefined);
  });

  it('names a file where the directory should be, or on its path', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    assert.match(dataDirProblem(file)!, /a-file is a file, not a directory$/);
    assert.match(dataDirProblem(join(file, 'data'))!, /cannot be created/);
  });

  it('names a directory this user cannot write (as root every directory is writable: then not asserted)', () => {
    const locked = join(root, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    const problem = dataDirProblem(join(locked, 'data'));
    if (process.getuid?.() === 0) assert.equal(problem, undefined);
    else assert.match(problem!, /locked is not writable by this user \(it would be created in /);
    chmodSync(locked, 0o700);
  });

  it('claims the directory with its pid and removes only its own claim', () => {
    const dir = join(root, 'claimed');
    mkdirSync(dir);
    const listeners = process.listenerCount('exit');
    const release = claimDataDir(dir);
    assert.equal(readFileSync(join(dir, 'cdr-start.pid'), 'utf8').trim(), String(process.pid));
    assert.equal(process.listenerCount('exit'), listeners + 1, 'an exit takes the claim with it');
    release();
    assert.throws(() => readFileSync(join(dir, 'cdr-start.pid')), /ENOENT/);
    assert.equal(process.listenerCount('exit'), listeners, 'a release removes its exit listener');
    // Taken over meanwhile by another process: not removed.
    const again = claimDataDir(dir);
    writeFileSync(join(dir, 'cdr-start.pid'), '999999\n');
    again();
    assert.equal(readFileSync(join(dir, 'cdr-start.pid'), 'utf8').trim(), '999999');
    rmSync(root, { recursive: true, force: true });
  });
});

describe('cdr start pre-flight: another cdr start still exiting', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('counts a claim whose process is still exiting (no command line to read) as held', async () => {
    const dying = await startExitingProcess();
    const dir = mkdtempSync(join(tmpdir(), 'cdr-preflight-exiting-'));
    const inputs = { dataDir: dir, apiHost: undefined, apiPort: undefined, localBroker: false, localKafkaPort: undefined };
    try {
      writeFileSync(join(dir, 'cdr-start.pid'), `${dying.pid}\n`);
      assert.deepEqual(
        (await startPreflightProblems(inputs)).map((p) => p.replace(dir, '<dir>')),
        [`CDR_DATA_DIR (or --data-dir): <dir> is still held by a cdr start that is exiting (pid ${dying.pid}): try again in a moment`],
      );
      dying.child.stdin?.end();
      await dying.exited;
      assert.deepEqual(await startPreflightProblems(inputs), [], 'taken over once it is gone');
    } finally {
      dying.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
