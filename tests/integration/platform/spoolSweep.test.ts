/**
 * The RowBinary insert spool (storage.ts) after crashes: a process killed between writing a spool file and removing it
 * leaves the file in shared memory. Its own data directory's leftovers go when that directory is opened again; those of
 * a data directory that is never opened again (a killed test's, a crashed run's temporary one) go when any pipeline
 * process opens its store, once still for FOREIGN_SPOOL_MIN_AGE_MS — and a live process's never.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../services/platform/config/config.ts';
import { FOREIGN_SPOOL_MIN_AGE_MS, openStorage, sweepSpools } from '../../../services/platform/clickhouse/storage.ts';

/** A pid that was a process a moment ago and is gone now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

/** A spool directory with one file in it, last changed `ageMs` ago. */
function leftover(base: string, pid: number, ageMs: number, now = Date.now()): string {
  const dir = join(base, String(pid));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '7.rowbinary'), randomBytes(64));
  const t = new Date(now - ageMs);
  utimesSync(join(dir, '7.rowbinary'), t, t);
  utimesSync(dir, t, t);
  return dir;
}

describe('insert spool left by crashed processes', () => {
  const parent = mkdtempSync(join(tmpdir(), 'cdr-spool-parent-'));
  after(() => rmSync(parent, { recursive: true, force: true }));

  it('removes what processes that are gone left, and nothing a live process holds', () => {
    const now = Date.now();
    const own = join(parent, 'cdr-pipeline-spool-own');
    const foreign = join(parent, 'cdr-pipeline-spool-foreign');
    const gone = deadPid();
    const ownFresh = leftover(own, gone, 1_000, now); // this data directory: gone at once, however recent
    const foreignOld = leftover(foreign, gone, FOREIGN_SPOOL_MIN_AGE_MS + 60_000, now);
    const foreignRecent = leftover(join(parent, 'cdr-pipeline-spool-recent'), gone, 60_000, now);
    const foreignLive = leftover(join(parent, 'cdr-pipeline-spool-live'), process.ppid, FOREIGN_SPOOL_MIN_AGE_MS * 4, now);
    const notOurs = leftover(join(parent, 'something-else'), gone, FOREIGN_SPOOL_MIN_AGE_MS * 4, now);

    sweepSpools(own, now, parent);

    assert.equal(existsSync(ownFresh), false, "this data directory's leftover of a gone process");
    assert.equal(existsSync(foreignOld), false, "another data directory's old leftover of a gone process");
    assert.equal(existsSync(foreign), false, 'the emptied directory of another data directory');
    assert.equal(existsSync(foreignRecent), true, 'a recent one may belong to a process in another pid namespace');
    assert.equal(existsSync(foreignLive), true, 'a live process keeps its spool');
    assert.equal(existsSync(notOurs), true, 'directories that are not spools are not touched');
  });

  // Linux has /dev/shm (the spool's home wherever the project runs); without it this fails on its mkdir, loudly.
  it('opening an embedded store sweeps the shared-memory spools of other data directories', async () => {
    const base = join('/dev/shm', `cdr-pipeline-spool-test${randomBytes(6).toString('hex')}`);
    const dir = leftover(base, deadPid(), FOREIGN_SPOOL_MIN_AGE_MS + 60_000);
    const dataDir = mkdtempSync(join(tmpdir(), 'cdr-spool-'));
    try {
      const storage = await openStorage(loadConfig({ CLICKHOUSE_DATABASE: 'cdr' }).clickhouse, dataDir);
      await storage.close();
      assert.equal(existsSync(dir), false);
      assert.equal(existsSync(base), false);
    } finally {
      rmSync(base, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
