import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../../services/platform/config/config.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';

describe('loadConfig', () => {
  it('works with no variables at all (embedded defaults)', () => {
    const c = loadConfig({});
    assert.equal(c.kafka.brokers, undefined);
    assert.equal(c.clickhouse.url, undefined);
    assert.equal(c.kafka.topics.raw, 'cdr.raw');
    assert.equal(c.api.port, 8080);
    assert.equal(c.api.host, '127.0.0.1');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.kafka));
  });
  it('parses brokers and numbers', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'a:9092, b:9093', CDR_INGEST_MAX_BATCH: '500' });
    assert.deepEqual(c.kafka.brokers, ['a:9092', 'b:9093']);
    assert.equal(c.ingest.maxBatchRecords, 500);
  });
  const bad: [Record<string, string>, string][] = [
    [{ CDR_API_PORT: 'eighty' }, 'CDR_API_PORT'],
    [{ CDR_INGEST_MAX_BATCH: '0' }, 'CDR_INGEST_MAX_BATCH'],
    [{ CLICKHOUSE_URL: 'not a url' }, 'CLICKHOUSE_URL'],
    [{ CLICKHOUSE_DATABASE: 'drop table' }, 'CLICKHOUSE_DATABASE'],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS'],
    [{ CDR_MASTER_KEY: 'c2hvcnQ=' }, 'CDR_MASTER_KEY'],
    [{ CDR_LOG_LEVEL: 'loud' }, 'CDR_LOG_LEVEL'],
  ];
  for (const [env, name] of bad) {
    it(`stops on a bad ${name} and names it`, () => {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && e.message.includes(name),
      );
    });
  }
  it('names every bad variable at once', () => {
    assert.throws(
      () => loadConfig({ CDR_API_PORT: 'x', CDR_TOPIC_PARTITIONS: '-1' }),
      (e: unknown) => e instanceof Error && e.message.includes('CDR_API_PORT') && e.message.includes('CDR_TOPIC_PARTITIONS'),
    );
  });
  it('names every bad variable at once, across sections and checks', () => {
    assert.throws(
      () => loadConfig({ CDR_API_PORT: 'x', KAFKA_BROKERS: 'nohost', CDR_MASTER_KEY: 'c2hvcnQ=', CLICKHOUSE_URL: 'nope', CDR_INGEST_MAX_BATCH: '0' }),
      (e: unknown) =>
        e instanceof Error && ['CDR_API_PORT', 'KAFKA_BROKERS', 'CDR_MASTER_KEY', 'CLICKHOUSE_URL', 'CDR_INGEST_MAX_BATCH'].every((v) => e.message.includes(v)),
    );
  });
  it('refuses CDR_MASTER_KEY together with CDR_MASTER_KEY_FILE', () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    assert.throws(
      () => loadConfig({ CDR_MASTER_KEY: key, CDR_MASTER_KEY_FILE: '/run/secrets/master.key' }),
      (e: unknown) =>
        e instanceof PipelineError && e.code === 'config_invalid' && /CDR_MASTER_KEY \/ CDR_MASTER_KEY_FILE: set one of them, not both/.test(e.message),
    );
  });
  it('parses only the sections a process asks for', () => {
    // The retention process does not read ingest or Kafka settings, so a bad one does not stop it.
    const c = loadConfig({ CDR_INGEST_MAX_BATCH: 'lots', KAFKA_BROKERS: 'nohost', CDR_RETENTION_INTERVAL_MS: '60000' }, [
      'clickhouse',
      'masterKey',
      'retention',
    ]);
    assert.equal(c.retention.intervalMs, 60000);
    assert.equal((c as unknown as Record<string, unknown>)['ingest'], undefined);
    assert.throws(() => loadConfig({ CDR_RETENTION_INTERVAL_MS: '-1' }, ['retention']), /CDR_RETENTION_INTERVAL_MS/);
  });
});
