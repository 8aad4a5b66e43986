/**
 * Start-up refuses a wrong master key: a month key stored under one master key does not open under another, and a
 * process given the other one stops before it does anything — with a message that names the problem, and exit code 2
 * from the command line — instead of running and failing at its first record.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PipelineError } from '../../../services/core/index.ts';
import { loadConfig } from '../../../services/platform/config/index.ts';
import { devMasterKeyPath } from '../../../services/platform/keys/masterKey.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage } from '../../../services/platform/runtime/index.ts';
import { testSetup } from '../../support/testEnv.ts';

describe('a wrong master key', () => {
  const setup = testSetup();
  const other = randomBytes(32).toString('base64');

  it('is refused at start-up once a month key exists', async () => {
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    await requireStorage(rt).keyRing.keyForWriting('2026-12', Date.UTC(2026, 11, 1, 12));
    await rt.close();
    const wrong = loadConfig({ ...setup.env, CDR_MASTER_KEY: other });
    await assert.rejects(
      openRuntime(wrong, { needKafka: false, log: createLogger('silent') }),
      (err: unknown) => err instanceof PipelineError && err.code === 'key_invalid' && /does not open the month key of 2026-12/.test(err.message),
    );
    const right = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    await right.close();
  });

  it('a development key made for data written with another is refused, and not left behind', async () => {
    // Found from outside: a run with another CDR_DEV_KEY_DIR was refused, but left its new key there for the next start.
    const keyDir = mkdtempSync(join(tmpdir(), 'cdr-other-dev-keys-'));
    try {
      const env: Record<string, string> = { ...setup.env, CDR_DEV_KEY_DIR: keyDir };
      delete env['CDR_MASTER_KEY'];
      const config = loadConfig(env);
      await assert.rejects(
        openRuntime(config, { needKafka: false, log: createLogger('silent') }),
        (err: unknown) => err instanceof PipelineError && err.code === 'key_invalid' && /the development key/.test(err.message),
      );
      assert.equal(existsSync(devMasterKeyPath(config.masterKey, config.dataDir)), false, 'the key made by the refused start is gone');
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it('stops the command with exit code 2 and says why', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../../bin/cdr.cjs'), 'retention', 'run', '--dry-run'], {
      env: { ...process.env, ...setup.env, CDR_MASTER_KEY: other, CDR_LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /master key .* does not open the month key/);
  });
});
