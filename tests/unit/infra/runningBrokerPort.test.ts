/**
 * How `cdr produce` finds the broker a running `cdr start` owns: the port in its data directory, only while the pid
 * recorded beside it is alive (found from outside: a `cdr start` on CDR_LOCAL_KAFKA_PORT=29092 was missed).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runningBrokerPort } from '../../../infra/kafka/localBroker.ts';
import { startExitingProcess } from '../../support/exitingProcess.ts';

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

/** kafka.sh's answer to a shell call on its own helpers, read by sourcing the script. */
function kafkaSh(call: string, args: readonly string[], env: Record<string, string> = {}): ReturnType<typeof spawnSync> {
  const script = path.resolve(import.meta.dirname, '../../../infra/kafka/kafka.sh');
  return spawnSync('bash', ['-c', `source "$1"; shift; ${call} "$@"`, '_', script, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** The start time /proc gives a process (clock ticks since boot), as kafka.sh saves it in broker.started. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

describe('kafka.sh stop', () => {
  it('says a broker whose last thread exited between its checks is gone, not a reused pid', () => {
    // pid_alive answers "alive" once, then "gone", as for a killed broker that finishes exiting during the stop.
    const d = dir({ 'broker.pid': `${process.pid}\n` });
    try {
      const stop = kafkaSh('calls=0; pid_alive() { calls=$((calls + 1)); ((calls == 1)); }; cmd_stop', [d]);
      assert.equal(stop.status, 0, String(stop.stderr));
      assert.match(String(stop.stderr), new RegExp(`broker pid ${process.pid} is not running \\(stale pid file removed\\)`));
      assert.doesNotMatch(String(stop.stderr), /pid reused/);
    } finally {
      rmSync(d, { recursive: true });
    }
  });
});

describe('a process whose main thread exited before its other threads', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('is alive until its last thread is gone, for runningBrokerPort and for kafka.sh', async () => {
    const { child, pid, port, exited } = await startExitingProcess();
    const d = dir({ 'broker.pid': String(pid), 'broker.port': String(port) });
    try {
      assert.equal(runningBrokerPort(d), port, 'a process still holding its port is not gone');
      assert.equal(kafkaSh('pid_alive', [String(pid)]).status, 0, "kafka.sh's pid_alive agrees");

      child.stdin?.end();
      await exited;
      assert.equal(runningBrokerPort(d), undefined, 'gone once its last thread has exited');
      assert.equal(kafkaSh('pid_alive', [String(pid)]).status, 1);
    } finally {
      child.kill('SIGKILL');
      rmSync(d, { recursive: true });
    }
  });

  it("is kafka.sh's broker by the start time saved beside its pid (its command line reads empty), and stop waits for it", async () => {
    const { child, pid, exited } = await startExitingProcess();
    const d = dir({ 'broker.pid': String(pid) });
    try {
      assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), '', 'a zombie main thread shows no command line');
      assert.equal(kafkaSh('is_our_broker', [String(pid), d]).status, 1, 'without a saved start time: no proof it is ours');
      writeFileSync(path.join(d, 'broker.started'), `${Number(startTime(pid)) + 1}\n`);
      assert.equal(kafkaSh('is_our_broker', [String(pid), d]).status, 1, 'another start time: a reused pid');
      writeFileSync(path.join(d, 'broker.started'), `${startTime(pid)}\n`);
      assert.equal(kafkaSh('is_our_broker', [String(pid), d]).status, 0, 'its own start time: ours');
      const status = kafkaSh('cmd_status', [d]);
      assert.deepEqual([status.status, String(status.stdout)], [1, `exiting pid=${pid} port=?\n`], 'status: not running, exiting');
      // start waits for it to be gone (here it is not within the second allowed) rather than refusing (exit 3).
      const start = kafkaSh('cmd_start', [d, '1'], { KAFKA_STOP_TIMEOUT: '1' });
      assert.equal(start.status, 1, String(start.stderr));
      assert.match(String(start.stderr), new RegExp(`\\(pid ${pid}\\) is exiting; waiting for it\n.*still exiting after 1s`));

      // stop signals it and returns once it is gone (before, it removed the pid file and returned at once).
      const stop = kafkaSh('cmd_stop', [d]);
      assert.equal(stop.status, 0, String(stop.stderr));
      assert.match(String(stop.stderr), new RegExp(`stopped broker pid ${pid}$`, 'm'));
      assert.equal(kafkaSh('pid_alive', [String(pid)]).status, 1, 'gone when stop returns');
      await exited;
      assert.equal(child.signalCode, 'SIGTERM');
    } finally {
      child.kill('SIGKILL');
      rmSync(d, { recursive: true });
    }
  });
});
