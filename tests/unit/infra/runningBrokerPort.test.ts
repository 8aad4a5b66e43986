/**
 * How `cdr produce` finds the broker a running `cdr start` owns: the port in its data directory, only while the pid
 * recorded beside it is alive (found from outside: a `cdr start` on CDR_LOCAL_KAFKA_PORT=29092 was missed).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
