/**
 * The local broker `cdr start` supervises, as `/healthz` sees it: killed, the process says `degraded` (503) with the
 * reason until its JVM runs again, then `ok`. Found from outside (2026-12-06): with the broker killed, an idle
 * `cdr start` answered 200 "ok" for the whole outage (the consumers, with nothing to fetch, noticed nothing).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { freePort } from '../../support/ports.ts';
import { testSetup } from '../../support/testEnv.ts';

describe('the supervised local broker in health', { timeout: 300_000 }, () => {
  let rt: PipelineRuntime | undefined;
  after(async () => {
    await rt?.close();
    delete process.env['KAFKA_CONTROLLER_PORT'];
  });

  it('is degraded with its reason while its JVM is gone, and ok once it runs again', async () => {
    const port = await freePort();
    const controller = await freePort([port]);
    const setup = testSetup({ KAFKA_BROKERS: '', CDR_LOCAL_KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller) });
    process.env['KAFKA_CONTROLLER_PORT'] = String(controller);
    rt = await openRuntime(setup.config, { startLocalKafka: true, needStorage: false, log: createLogger('silent') });
    assert.equal(rt.brokerHealth()?.status, 'ok');
    const first = rt.localBroker!.pid;
    process.kill(first, 'SIGKILL');
    const seen: string[] = [];
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const h = rt.brokerHealth()!;
      if (seen.at(-1) !== h.status) seen.push(h.status);
      if (h.status === 'degraded') assert.match(h.reasons?.[0] ?? '', /^the local Kafka broker is down since \S+Z and is being started again/);
      if (seen.length === 3) break;
      await sleep(100);
    }
    assert.deepEqual(seen, ['ok', 'degraded', 'ok']);
    assert.notEqual(rt.localBroker!.pid, first);
  });
});
