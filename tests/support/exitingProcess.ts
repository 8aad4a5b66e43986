import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A process whose main thread has exited while another thread still runs: its /proc stat says Z, and its files (here a
 * listening socket, as a killed JVM's port) stay open until the last thread is gone. Found in CI: a supervised restart
 * after a SIGKILL took such a broker for gone and met "port already in use". Linux only; needs python3 with ctypes.
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

export function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

export interface ExitingProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** Settles once the last thread has exited. */
  readonly exited: Promise<void>;
}

/** A Python process as described above, once its main thread is a zombie; stdin's end lets its last thread go. */
export async function startExitingProcess(): Promise<ExitingProcess> {
  // Not skipped without Python: the machine the project names has Python 3, and CI installs its librdkafka client with it.
  assert.equal(spawnSync('python3', ['-c', 'import ctypes, threading'], { stdio: 'ignore' }).status, 0, 'this test needs python3 (with ctypes) on PATH');
  const child = spawn('python3', ['-c', EXITING_PROCESS], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid ?? 0;
  try {
    // Its port, or why there is none: a Python that ends at once (glibc's thread exit without libgcc_s aborts) says so.
    const line = await Promise.race([
      once(child.stdout, 'data').then(([data]) => String(data)),
      once(child, 'exit').then(([code, signal]) => assert.fail(`python3 ended before printing its port (${String(code ?? signal)})`)),
      once(child, 'error').then(([err]) => assert.fail(`python3 did not start: ${String(err)}`)),
    ]);
    const deadline = Date.now() + 10_000;
    // Polled until the main thread is a zombie; a process gone meanwhile fails the read, and the test, with ENOENT.
    while (state(pid) !== 'Z') {
      assert.ok(Date.now() < deadline, `main thread of ${pid} did not exit (state ${state(pid)})`);
      await sleep(20);
    }
    assert.ok(readdirSync(`/proc/${pid}/task`).length > 1, 'another thread is left');
    return { child, pid, port: Number(line.trim()), exited };
  } catch (err) {
    // Not left behind holding the test's event loop open through its stdin.
    child.kill('SIGKILL');
    throw err;
  }
}
