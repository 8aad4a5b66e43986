import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const shutdownModule = join(import.meta.dirname, '../../../../services/platform/runtime/shutdown.ts');

/** A process whose stop never ends, signalled twice: what it prints and how it exits. */
async function signalledTwice(withTell: boolean): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const script = `
    import pino from 'pino';
    const { onShutdownSignal } = await import(${JSON.stringify(shutdownModule)});
    onShutdownSignal(pino(), () => new Promise(() => {}), ${withTell ? '(line) => process.stderr.write(line)' : 'undefined'});
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let gone = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (c) => {
      gone = true;
      resolve(c);
    }),
  );
  for (let waited = 0; !stdout.includes('ready'); waited += 20) {
    if (gone || waited > 30_000) throw new Error(`the child never got ready:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGINT');
  return { code: await exited, stderr, stdout };
}

describe('onShutdownSignal', () => {
  it('a second signal exits 130 at once and says so where a person watches (found from outside: only in the log file)', async () => {
    const told = await signalledTwice(true);
    assert.equal(told.code, 130, told.stderr);
    assert.match(told.stderr, /^second SIGINT: exiting now without waiting for the stop; .*replayed at the next start \(nothing is lost\)$/m);
    // The log line stays (stdout here) either way.
    assert.match(told.stdout, /second signal: exiting now/);
    const silent = await signalledTwice(false);
    assert.equal(silent.code, 130);
    assert.doesNotMatch(silent.stderr, /second SIGINT/);
  });
});
