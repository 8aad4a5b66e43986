/**
 * `cdr produce` that loses its broker part-way still says what the broker acknowledged (found from outside: it
 * printed no summary, so a script could not tell where to resume).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { startLocalCluster, type LocalCluster } from '../../../infra/kafka/localBroker.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const bin = join(import.meta.dirname, '../../../bin/cdr.cjs');

describe('cdr produce interrupted by the loss of its broker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-test-produce-cut-'));
  let cluster: LocalCluster;
  before(async () => {
    cluster = await startLocalCluster({ dataDir: dir, nodes: 1 });
  });
  after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the summary of what was acknowledged (complete: false) and exits 1 with the cause', async () => {
    const setup = testSetup({ KAFKA_BROKERS: cluster.brokers.join(',') });
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn' })) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [bin, 'produce', '--count', '200000', '--rate', '1000', '--seed', '9'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Progress lines come every 5 s: once one says records went out, the broker goes.
    await waitFor('records acknowledged', () => /cdr produce: [1-9]\d*\/200000 sent/.test(stderr), 60_000, 100);
    await cluster.nodes[0]!.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running'), 120_000)))]);
    clearTimeout(timer);
    if (code === 'still running') child.kill('SIGKILL');
    assert.equal(code, 1, `exit ${String(code)}; stderr:\n${stderr.slice(-2000)}`);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { sent: number; complete: boolean; topic: string };
    assert.equal(summary.complete, false);
    assert.equal(summary.topic, setup.config.kafka.topics.raw);
    assert.ok(summary.sent > 0 && summary.sent < 200_000, `sent ${summary.sent}`);
    assert.match(stderr, /^cdr: /m, 'the cause on stderr');

    // What it says was acknowledged is on the topic (acks=all on the one broker): at least that many records.
    await cluster.nodes[0]!.restart();
    const kafka = new kafkajs.Kafka({ clientId: 'produce-cut-test', brokers: cluster.brokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(setup.config.kafka.topics.raw);
      const onTopic = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
      assert.ok(onTopic >= summary.sent, `${onTopic} records on the topic, ${summary.sent} said acknowledged`);
    } finally {
      await admin.disconnect();
    }
  });
});
