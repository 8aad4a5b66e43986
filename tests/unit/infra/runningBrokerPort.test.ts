/**
 * How `cdr produce` finds the broker a running `cdr start` owns: the port in its data directory, only while the pid
 * recorded beside it is alive (found from outside: a `cdr start` on CDR_LOCAL_KAFKA_PORT=29092 was missed).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runningBrokerPort } from '../../../infra/kafka/localBroker.ts';

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cdr-broker-port-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(d, name), text);
  return d;
}

describe('runningBrokerPort', () => {
  it('gives the recorded port while the recorded pid is alive', () => {
    const d = dir({ 'broker.pid': `${process.pid}\n`, 'broker.port': '29092\n' });
    try {
      assert.equal(runningBrokerPort(d), 29092);
    } finally {
      rmSync(d, { recursive: true });
    }
  });

  it('gives nothing for a broker that is gone, or a directory without one', () => {
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const gone = dir({ 'broker.pid': exited, 'broker.port': '29092' });
    const empty = dir({});
    try {
      assert.equal(runningBrokerPort(gone), undefined);
      assert.equal(runningBrokerPort(empty), undefined);
      assert.equal(runningBrokerPort(path.join(empty, 'no-such-dir')), undefined);
    } finally {
      rmSync(gone, { recursive: true });
      rmSync(empty, { recursive: true });
    }
  });
});

/**
 * A process whose main thread has exited while another thread still runs: its /proc stat says Z, and its files (here a
 * listening socket, as a killed JVM's port) stay open until the last thread is gone. Found in CI: a supervised restart
 * after a SIGKILL took such a broker for gone and met "port already in use".
 */
const EXITING_PROCESS = `
import ctypes, os, socket, sys, threading
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen()
print(listener.getsockname()[1], flush=True)
def last_thread():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=last_thread, daemon=True).start()
ctypes.CDLL(None).pthread_exit(None)
`;

function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** kafka.sh's own liveness check, read by sourcing the script. */
function kafkaShPidAlive(pid: number): boolean {
  const script = path.resolve(import.meta.dirname, '../../../infra/kafka/kafka.sh');
  return spawnSync('bash', ['-c', 'source "$1"; pid_alive "$2"', '_', script, String(pid)]).status === 0;
}

describe('a process whose main thread exited before its other threads', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('is alive until its last thread is gone, for runningBrokerPort and for kafka.sh', async () => {
    // Not skipped without Python: the machine the project names has Python 3, and CI installs its librdkafka client with it.
    assert.equal(spawnSync('python3', ['-c', 'import ctypes, threading'], { stdio: 'ignore' }).status, 0, 'this test needs python3 (with ctypes) on PATH');
    const child = spawn('python3', ['-c', EXITING_PROCESS], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const pid = child.pid ?? 0;
    // Its port, or why there is none: a Python that ends at once (glibc's thread exit without libgcc_s aborts) says so.
    const line = await Promise.race([
      once(child.stdout, 'data').then(([data]) => String(data)),
      once(child, 'exit').then(([code, signal]) => assert.fail(`python3 ended before printing its port (${String(code ?? signal)})`)),
      once(child, 'error').then(([err]) => assert.fail(`python3 did not start: ${String(err)}`)),
    ]);
    const port = Number(line.trim());
    const deadline = Date.now() + 10_000;
    // Polled until the main thread is a zombie; a process gone meanwhile fails the read, and the test, with ENOENT.
    while (state(pid) !== 'Z') {
      assert.ok(Date.now() < deadline, `main thread of ${pid} did not exit (state ${state(pid)})`);
      await sleep(20);
    }
    const d = dir({ 'broker.pid': String(pid), 'broker.port': String(port) });
    try {
      assert.ok(readdirSync(`/proc/${pid}/task`).length > 1, 'another thread is left');
      assert.equal(runningBrokerPort(d), port, 'a process still holding its port is not gone');
      assert.equal(kafkaShPidAlive(pid), true, "kafka.sh's pid_alive agrees");

      child.stdin.end();
      await exited;
      assert.equal(runningBrokerPort(d), undefined, 'gone once its last thread has exited');
      assert.equal(kafkaShPidAlive(pid), false);
    } finally {
      child.kill('SIGKILL');
      rmSync(d, { recursive: true });
    }
  });
});
