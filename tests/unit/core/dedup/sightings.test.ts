import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecentSightings } from '../../../../services/core/dedup/sightings.ts';

describe('recent sightings (approximate, for the identifier cache’s admission)', () => {
  it('says a key was seen from its second sighting on, and forgets old ones only as others take their slot', () => {
    const s = new RecentSightings(1000);
    assert.equal(s.sawBefore('msisdn\u0000MY\u0000+60123456789'), false);
    assert.equal(s.sawBefore('msisdn\u0000MY\u0000+60123456789'), true);
    assert.equal(s.sawBefore('msisdn\u0000SG\u0000+60123456789'), false, 'another key (country) is another key');
    assert.equal(s.sawBefore(''), false);
    assert.equal(s.sawBefore(''), true);
    // 1,000 keys, then 1,000 others: each of the first is remembered after 1,000–2,000 later keys, e^(−n / 4,096) ≈ 61–78%.
    const first = Array.from({ length: 1000 }, (_, i) => `email\u0000\u0000user${i}@example.com`);
    for (const k of first) s.sawBefore(k);
    for (let i = 0; i < 1000; i++) s.sawBefore(`email\u0000\u0000other${i}@example.org`);
    const kept = first.filter((k) => s.sawBefore(k)).length;
    assert.ok(kept > 550 && kept < 850, `kept ${kept} of 1000`);
    // Distinct keys are almost never taken for one another: 100,000 fresh keys, at most a handful "seen".
    const big = new RecentSightings(200_000);
    let wrong = 0;
    for (let i = 0; i < 100_000; i++) if (big.sawBefore(`msisdn\u0000\u0000+4479${String(i).padStart(8, '0')}`)) wrong++;
    assert.ok(wrong <= 3, `${wrong} fresh keys read as seen`);
  });
});
