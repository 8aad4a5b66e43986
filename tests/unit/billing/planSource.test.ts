/**
 * The tariff plans in force while their file changes: a change is taken only once it passes the checks and is
 * admitted (billing records it in `billing_plans`, which refuses a version in use with other prices); a refused or
 * broken change leaves the previous plans in force and says why until the file changes again.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanSource } from '../../../services/billing/planFile.ts';
import { PipelineError, type PlanBook } from '../../../services/core/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'cdr-plansource-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const plans = (price: number, extra = ''): string => `plans:
  - id: p
    version: 1
    active_from: 2026-01-01T00:00:00Z
    accounts: ['*']
    currency: EUR
    rates:
      - channel: sms
        country: '*'
        price: ${price}
        cost: 1
${extra}`;

let stamp = 1_000_000;
/** Writes the file with a new modification time (a second later each time). */
function write(file: string, text: string): void {
  writeFileSync(file, text);
  stamp += 1;
  utimesSync(file, stamp, stamp);
}

const priceOf = (book: PlanBook): unknown => JSON.stringify(book.plans.map((p) => [p.id, p.version, p.digest]));

describe('PlanSource', () => {
  it('takes a changed file only once it is admitted; a refused change leaves the plans in force and says why', async () => {
    const file = join(dir, 'plans.yaml');
    write(file, plans(6500));
    let now = 0;
    let refuse: string | undefined;
    let storeDown = false;
    const admitted: PlanBook[] = [];
    const source = new PlanSource(
      file,
      async (book) => {
        await new Promise((r) => setTimeout(r, 5));
        if (storeDown) throw new Error('storage_unavailable: the engine did not answer');
        if (refuse) throw new PipelineError('config_invalid', refuse);
        admitted.push(book);
      },
      5_000,
      () => now,
    );
    const original = priceOf(source.current());

    // Version 1 edited in place: refused by the admission; the old prices stay, also while it is being admitted.
    write(file, plans(6600));
    refuse = 'plan p version 1 differs from the version already in use';
    now += 5_000;
    assert.equal(priceOf(source.current()), original, 'in force while the change is admitted');
    await source.settled();
    assert.equal(priceOf(source.current()), original);
    assert.match(source.problem ?? '', /differs from the version already in use/);
    // Asked again later, the same refused file is not admitted again (nor taken).
    now += 10_000;
    source.current();
    await source.settled();
    assert.equal(admitted.length, 0);
    assert.equal(priceOf(source.current()), original);

    // A file that does not pass the checks: the same.
    write(file, 'plans: [');
    now += 5_000;
    assert.equal(priceOf(source.current()), original);
    assert.ok(source.problem);

    // A proper change (a new plan) is taken once admitted, and the problem clears; the store failing to record it is
    // not a refusal: the next check tries again.
    refuse = undefined;
    storeDown = true;
    write(
      file,
      plans(
        6500,
        `  - id: q\n    version: 1\n    active_from: 2027-01-01T00:00:00Z\n    accounts: [acct-q]\n    currency: EUR\n    rates:\n      - channel: sms\n        country: '*'\n        price: 6600\n        cost: 1\n`,
      ),
    );
    now += 5_000;
    source.current();
    await source.settled();
    assert.equal(admitted.length, 0);
    assert.match(source.problem ?? '', /storage_unavailable/);
    assert.equal(priceOf(source.current()), original);
    await source.settled();
    storeDown = false;
    now += 5_000;
    source.current();
    await source.settled();
    assert.equal(admitted.length, 1);
    assert.equal(source.current().plans.length, 2);
    assert.equal(source.problem, undefined);
  });

  it('watch() notices a bad change while nothing asks for the plans', async () => {
    const file = join(dir, 'watched.yaml');
    write(file, plans(1));
    const source = new PlanSource(file, () => undefined, 20).watch();
    try {
      write(file, 'plans: [');
      const until = Date.now() + 5_000;
      while (source.problem === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.ok(source.problem, 'noticed without a caller');
    } finally {
      source.unwatch();
    }
  });
});
