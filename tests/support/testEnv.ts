/**
 * Test factories: random topic, group and database names, one temporary data directory per setup (chDB allows
 * one data directory per process). Each setup removes its own directory when the test process exits (every test
 * file runs in its own process), and `cleanup()` removes it earlier. Topics live on the broker `npm test` starts
 * for the run and go with it; against an external KAFKA_BROKERS they stay, prefixed `t<random>.`.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { loadConfig, type PipelineConfig } from '../../services/platform/config/config.ts';
import { signerFromPrivateKey, type LoadedSigner } from '../../services/platform/signing/index.ts';

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export function testBrokers(): string {
  const b = process.env['KAFKA_BROKERS'];
  if (!b) throw new Error('KAFKA_BROKERS is not set: run the integration tests through `npm test`, which starts a local broker');
  return b;
}

/**
 * Whether the project's librdkafka binding (ADR 0043) must load here: with CDR_TEST_NATIVE_KAFKA=required (CI), where
 * `npm install` had the package's librdkafka to build it against (scripts/build-native.mjs decides the same way).
 */
export function batchBindingRequired(): boolean {
  const deps = new URL('../../node_modules/@confluentinc/kafka-javascript/build/deps/', import.meta.url);
  return (
    process.env['CDR_TEST_NATIVE_KAFKA'] === 'required' &&
    existsSync(new URL('librdkafka.so.1', deps)) &&
    existsSync(new URL('include/librdkafka/rdkafka.h', deps))
  );
}

export interface TestSetup {
  readonly config: PipelineConfig;
  readonly env: Record<string, string>;
  readonly dataDir: string;
  cleanup(): void;
}

/** A config with fresh topics, group, database and data directory; `env` reproduces it for a child process. */
export function testSetup(overrides: Record<string, string> = {}): TestSetup {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdr-test-'));
  const id = randomBytes(4).toString('hex');
  const env: Record<string, string> = {
    KAFKA_BROKERS: testBrokers(),
    CDR_DATA_DIR: dataDir,
    CDR_TOPIC_RAW: `t${id}.cdr.raw`,
    CDR_TOPIC_PSEUDONYMISED: `t${id}.cdr.pseudonymised`,
    CDR_TOPIC_DLQ: `t${id}.cdr.dlq`,
    CDR_TOPIC_FRAUD_ALERTS: `t${id}.fraud.alerts`,
    CDR_TOPIC_PARTITIONS: '3',
    CDR_INGEST_GROUP: `g${id}`,
    CDR_BILLING_GROUP: `b${id}`,
    CDR_FRAUD_GROUP: `f${id}`,
    CLICKHOUSE_DATABASE: `cdr_test_${id}`,
    CDR_MASTER_KEY: randomBytes(32).toString('base64'),
    CDR_API_PORT: '0',
    CDR_LOG_LEVEL: 'info',
    ...(process.env['CLICKHOUSE_URL'] ? { CLICKHOUSE_URL: process.env['CLICKHOUSE_URL'] } : {}),
    ...overrides,
  };
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });
  process.once('exit', cleanup);
  return { config: loadConfig(env), env, dataDir, cleanup };
}

/** A fresh Ed25519 signer (what the audit trail and the destruction record sign with), for tests that need one. */
export function testSigner(): LoadedSigner {
  return signerFromPrivateKey(generateKeyPairSync('ed25519').privateKey, 'file', 'test-signer');
}
