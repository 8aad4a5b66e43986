/**
 * Kafka with authentication: a local broker whose client listener requires SASL/PLAIN. Ingest configured with
 * KAFKA_SASL_* (the password from a file) consumes, stores and publishes through it — the consumer, the admin and the
 * publisher thread all log in; a wrong password stops start-up as a configuration error naming the login.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { startLocalBroker, type LocalBroker } from '../../../infra/kafka/localBroker.ts';
import { PipelineError } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { loadConfig } from '../../../services/platform/config/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';
import { freePort } from '../../support/ports.ts';

const { Partitioners } = kafkajs;

describe('Kafka with SASL/PLAIN', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-sasl-'));
  let broker: LocalBroker;
  let saslPort = 0;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  const passwordFile = join(dir, 'kafka.password');

  before(async () => {
    const port = await freePort();
    const controller = await freePort([port]);
    saslPort = await freePort([port, controller]);
    const saved = { extra: process.env['KAFKA_SERVER_PROPS_EXTRA'], cport: process.env['KAFKA_CONTROLLER_PORT'] };
    process.env['KAFKA_CONTROLLER_PORT'] = String(controller);
    process.env['KAFKA_SERVER_PROPS_EXTRA'] = [
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT',
      'sasl.enabled.mechanisms=PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_cdr="s3cret-password";',
    ].join('\n');
    try {
      broker = await startLocalBroker({ dataDir: join(dir, 'kafka'), port });
    } finally {
      if (saved.extra === undefined) delete process.env['KAFKA_SERVER_PROPS_EXTRA'];
      else process.env['KAFKA_SERVER_PROPS_EXTRA'] = saved.extra;
      if (saved.cport === undefined) delete process.env['KAFKA_CONTROLLER_PORT'];
      else process.env['KAFKA_CONTROLLER_PORT'] = saved.cport;
    }
    writeFileSync(passwordFile, 's3cret-password\n', { mode: 0o600 });
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a wrong password at start-up, as a configuration error naming the variables and not the password', async () => {
    const wrongPassword = `pw-${randomBytes(6).toString('hex')}`;
    const setup = testSetup({
      KAFKA_BROKERS: `127.0.0.1:${saslPort}`,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'cdr',
      KAFKA_SASL_PASSWORD: wrongPassword,
    });
    await assert.rejects(
      openRuntime(setup.config, { needStorage: false, log: createLogger('silent') }),
      (err: unknown) =>
        err instanceof PipelineError &&
        err.code === 'config_invalid' &&
        err.message.includes('KAFKA_SASL_USERNAME') &&
        err.message.includes('KAFKA_SASL_PASSWORD') &&
        !JSON.stringify({ message: err.message, cause: String(err.cause), stack: err.stack }).includes(wrongPassword),
    );
  });

  it('ingests through it: consumer, admin and publisher thread all log in', async () => {
    const setup = testSetup({
      KAFKA_BROKERS: `127.0.0.1:${saslPort}`,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'cdr',
      KAFKA_SASL_PASSWORD_FILE: passwordFile,
    });
    assert.equal(loadConfig(setup.env).kafka.security.sasl?.passwordFile, passwordFile);
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    const kafka = requireKafka(rt);
    const events = new TrafficGenerator({ seed: 21, scenario: 'normal', startTime: Date.now() - 60_000 }).take(300);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('the records stored', () => ingest.stats.stored >= events.length, 60_000);
    const published = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    assert.equal(published.length, events.length);
  });
});
