/**
 * An answer planned from the index, whose month's vault entries go before its records are restored (a retention
 * pass destroying the month while the answer streams): those records are left out — never given with empty
 * identifiers — and the month says so by its count. The same answer without the deletion gives every record.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { monthKeyOf, normaliseIdentifier } from '../../../services/core/index.ts';
import { LegalHolds } from '../../../services/platform/holds/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { DisclosureDesk, type MonthAnswer } from '../../../services/api/disclosure/disclosureDesk.ts';
import { seedBankSms } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';

const SUBJECT = '+60123456789';

describe('records whose vault entries go while an answer streams', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  const now = Date.now();

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    await seedBankSms(rt, SUBJECT, { count: 3, spacingMs: 60_000, seed: 5, now });
  });
  after(async () => {
    await rt.close();
    setup.cleanup();
  });

  const answer = async (between: () => Promise<void>) => {
    const { storage, keyRing, masterKey } = requireStorage(rt);
    const desk = new DisclosureDesk({ storage, keyRing, holds: new LegalHolds(storage, keyRing, masterKey) });
    const plan = await desk.plan(normaliseIdentifier(SUBJECT, 'msisdn'), now - 3_600_000, now + 60_000, now, false);
    await between();
    const months: MonthAnswer[] = [];
    const records: { recipient: string; sender: string }[] = [];
    for await (const page of desk.pages(plan, (m) => months.push(m))) records.push(...page);
    return { plan, months, records };
  };

  it('gives every record while the vault holds them', async () => {
    const a = await answer(async () => undefined);
    assert.equal(a.plan.estimate, 3);
    assert.equal(a.records.length, 3);
    assert.ok(a.records.every((r) => r.recipient === SUBJECT && r.sender === 'BANK'));
  });

  it('leaves out the records whose vault entries went after the plan, and counts the month by what it gave', async () => {
    const { storage } = requireStorage(rt);
    const a = await answer(() => storage.command(`ALTER TABLE ${storage.table('identity_vault')} DELETE WHERE 1`, undefined, { mutations_sync: '2' }));
    assert.equal(a.plan.estimate, 3, 'planned from the index, before the deletion');
    assert.deepEqual(a.records, [], 'no record with empty identifiers');
    assert.deepEqual(a.months, [{ month: monthKeyOf(now), status: 'no_traffic', records: 0 }]);
  });
});
