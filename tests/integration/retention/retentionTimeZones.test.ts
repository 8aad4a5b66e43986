/**
 * The retention boundaries on the real engine do not move with the process time zone. The same scenario
 * (tests/support/retentionBoundaries.ts) runs in three child processes — UTC, Pacific/Kiritimati (UTC+14) and
 * America/Adak (UTC−10/−9) — with records at the first and last millisecond of a month end, a year end and 29 February,
 * and passes one millisecond either side of each cutoff. After every pass, each record's presence, tokens and client
 * IP must be what the UTC calendar (core/retention/retentionCalendar.ts) says, in every zone; the destroyed months'
 * keys, vault and index rows must be gone; and a byte scan of the data directory must find none of their key, token or
 * sealed-identifier bytes (while it does find those of months still live: the scan can see such bytes).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identifiersExpired, monthKeyOf, trafficCutoff, usageExpired } from '../../../services/core/retention/retentionCalendar.ts';
import { BOUNDARY_RECORDS, PASSES, type PassObservation } from '../../support/retentionBoundaries.ts';

const ZONES = ['UTC', 'Pacific/Kiritimati', 'America/Adak'] as const;
const probe = join(import.meta.dirname, '../../support/retentionBoundaries.ts');

function runIn(tz: string): Promise<{ tz: string; offsetMinutes: number; observations: PassObservation[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-tz-'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', probe, dir], { env: { ...process.env, TZ: tz }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`probe in ${tz} exited ${code}: ${err.slice(-3000)}`));
      else resolve(JSON.parse(out) as { tz: string; offsetMinutes: number; observations: PassObservation[] });
    });
  });
}

function expected(now: number): PassObservation['records'] {
  const out: PassObservation['records'] = {};
  for (const [name, iso] of Object.entries(BOUNDARY_RECORDS)) {
    const t = Date.parse(iso);
    const present = now < trafficCutoff(t);
    out[name] = { present, tokens: present && !identifiersExpired(t, now), ip: present && !usageExpired(t, now) };
  }
  return out;
}

function liveMonths(now: number): string[] {
  const months = new Set<string>();
  for (const iso of Object.values(BOUNDARY_RECORDS)) if (!identifiersExpired(Date.parse(iso), now)) months.add(monthKeyOf(Date.parse(iso)));
  return [...months].sort();
}

describe('retention boundaries in three process time zones', { timeout: 600_000 }, () => {
  // Two at a time: the machine has two cores.
  const runs = (async () => {
    const [a, b] = await Promise.all([runIn(ZONES[0]), runIn(ZONES[1])]);
    const c = await runIn(ZONES[2]);
    return [a, b, c];
  })();

  it('the children really ran in those zones', async () => {
    const offsets = (await runs).map((r) => r.offsetMinutes);
    assert.deepEqual(offsets, [0, -840, 600]);
  });

  for (const [i, tz] of ZONES.entries()) {
    it(`${tz}: every record keeps or loses its tokens, client IP and row exactly at the UTC cutoff`, async () => {
      const run = (await runs)[i]!;
      assert.equal(run.observations.length, PASSES.length);
      for (const [k, o] of run.observations.entries()) {
        const now = Date.parse(PASSES[k]!);
        assert.equal(o.now, PASSES[k]);
        assert.deepEqual(o.records, expected(now), `after the pass at ${o.now}`);
        assert.ok(
          o.actions.every((a) => a.verified),
          `every action verified at ${o.now}: ${JSON.stringify(o.actions)}`,
        );
      }
    });

    it(`${tz}: keys, vault and index rows exist for exactly the live months, and no byte of a destroyed month is on disk`, async () => {
      const run = (await runs)[i]!;
      let controls = 0;
      for (const o of run.observations) {
        const live = liveMonths(Date.parse(o.now));
        assert.deepEqual(o.keyMonths, live, `keys after ${o.now}`);
        assert.deepEqual(o.vaultMonths, live, `vault after ${o.now}`);
        assert.deepEqual(o.indexMonths, live, `index after ${o.now}`);
        assert.deepEqual(o.destroyedFoundOnDisk, [], `bytes of destroyed months on disk after ${o.now}`);
        assert.equal(o.liveFoundOnDisk, o.liveNeedles, `the scan finds the live months' bytes after ${o.now}`);
        controls += o.liveNeedles;
      }
      assert.ok(controls > 0, 'the scan was shown to see key and token bytes');
    });
  }
});
