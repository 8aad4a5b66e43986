/**
 * The development master key lives outside the data directory: generated into the user's configuration directory, one
 * per data directory, mode 0600; a key an older version left inside the data directory is moved out (and the data
 * directory keeps no copy); two keys for one data directory are refused rather than guessed between.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { devMasterKeyPath, loadMasterKey } from '../../../../services/platform/keys/masterKey.ts';
import { loadConfig } from '../../../../services/platform/config/config.ts';

function dirs(): { root: string; dataDir: string; keyDir: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'cdr-devkey-'));
  const dataDir = join(root, 'data');
  mkdirSync(dataDir);
  return { root, dataDir, keyDir: join(root, 'home', '.config', 'cdr-pipeline', 'dev-keys'), done: () => rmSync(root, { recursive: true, force: true }) };
}

describe('development master key', () => {
  it('is generated outside the data directory, private, and found again', () => {
    const d = dirs();
    try {
      const cfg = { base64: undefined, file: undefined, devKeyDir: d.keyDir, refreshMs: 30_000 };
      const first = loadMasterKey(cfg, d.dataDir, true);
      assert.equal(first.source, 'generated-dev');
      assert.ok(first.path!.startsWith(d.keyDir));
      assert.ok(!first.path!.startsWith(d.dataDir));
      assert.equal(statSync(first.path!).mode & 0o777, 0o600);
      assert.equal(existsSync(join(d.dataDir, 'master.key')), false);
      const again = loadMasterKey(cfg, d.dataDir, true);
      assert.deepEqual(again.key, first.key);
      // Another data directory gets another key.
      const other = join(d.root, 'other');
      mkdirSync(other);
      assert.notDeepEqual(loadMasterKey(cfg, other, true).key, first.key);
    } finally {
      d.done();
    }
  });

  it('defaults to $XDG_CONFIG_HOME, else ~/.config', () => {
    assert.equal(loadConfig({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/u' }, ['masterKey']).masterKey.devKeyDir, '/x/cfg/cdr-pipeline/dev-keys');
    assert.equal(loadConfig({ HOME: '/home/u' }, ['masterKey']).masterKey.devKeyDir, '/home/u/.config/cdr-pipeline/dev-keys');
    assert.equal(loadConfig({ HOME: '/home/u', CDR_DEV_KEY_DIR: '/k' }, ['masterKey']).masterKey.devKeyDir, '/k');
    assert.match(devMasterKeyPath({ devKeyDir: '/k' }, '/srv/cdr/.data'), /^\/k\/\.data-[0-9a-f]{16}\.key$/);
  });

  it('moves a key an older version left in the data directory out of it', () => {
    const d = dirs();
    try {
      const key = randomBytes(32);
      writeFileSync(join(d.dataDir, 'master.key'), `${key.toString('base64')}\n`, { mode: 0o600 });
      const cfg = { base64: undefined, file: undefined, devKeyDir: d.keyDir, refreshMs: 30_000 };
      const loaded = loadMasterKey(cfg, d.dataDir, true);
      assert.deepEqual(loaded.key, key);
      assert.equal(loaded.movedFrom, join(d.dataDir, 'master.key'));
      assert.equal(existsSync(join(d.dataDir, 'master.key')), false);
      assert.equal(readFileSync(loaded.path!, 'utf8').trim(), key.toString('base64'));
      // Two keys for one data directory: refused, not guessed.
      writeFileSync(join(d.dataDir, 'master.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      assert.throws(() => loadMasterKey(cfg, d.dataDir, true), /two development master keys/);
    } finally {
      d.done();
    }
  });
});
