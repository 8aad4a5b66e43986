/**
 * The native sealer (ADR 0040) against node:crypto: the same token and sealed bytes for every identifier, sealed bytes
 * that `openIdentifier` opens, and no use after close. Where the addon is not built the native cases say so and are
 * skipped; with CDR_NATIVE_SEALER=native (CI) a missing or failing addon is a failure instead.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import {
  deriveMonthKey,
  generateMonthKey,
  jsSealer,
  openIdentifier,
  type MonthKey,
  type SealerFactory,
} from '../../../../services/core/pseudonym/monthKeys.ts';
import { PipelineError } from '../../../../services/core/errors/pipelineError.ts';
import { Pseudonymiser } from '../../../../services/core/pseudonym/pseudonymise.ts';
import { loadNativeSealer, nativeSealer, sealerFactory, sealerFor, selfTest } from '../../../../services/platform/keys/nativeSealer.ts';
import { planTraffic } from '../../../../services/generator/trafficPlan.ts';
import pino from 'pino';

const native = nativeSealer();
if (process.env['CDR_NATIVE_SEALER'] === 'native' && !('factory' in native))
  throw new Error(`CDR_NATIVE_SEALER=native, but the native sealer cannot be used: ${native.error}`);
const skip = 'factory' in native ? false : `the native sealer is not built here (${native.error})`;

/** Strings of any shape: ASCII, accents, CJK, emoji (surrogate pairs), lone surrogates, NUL, up to `max` code units. */
function randomText(max: number): string {
  const pools = [
    () => String.fromCharCode(0x20 + randomInt(95)),
    () => String.fromCharCode(0xa0 + randomInt(0x2000)),
    () => String.fromCharCode(0x4e00 + randomInt(0x5000)),
    () => String.fromCodePoint(0x1f300 + randomInt(0x300)),
    () => String.fromCharCode(0xd800 + randomInt(0x800)),
    () => '\u0000',
  ];
  let s = '';
  const len = randomInt(max + 1);
  while (s.length < len) s += pools[randomInt(pools.length)]!();
  return s;
}

describe('native sealer', { skip }, () => {
  const factory = 'factory' in native ? native.factory : jsSealer;

  it('gives the bytes node:crypto gives, for 20,000 identifiers of every shape under random keys and months', () => {
    const types = ['msisdn', 'email', 'alphanumeric', 'shortcode', 'device'];
    for (let k = 0; k < 20; k++) {
      const month = `20${20 + randomInt(80)}-${String(1 + randomInt(12)).padStart(2, '0')}`;
      const key = deriveMonthKey(month, `k${k}`, generateMonthKey());
      const a = factory(key);
      const b = jsSealer(key);
      for (let i = 0; i < 1000; i++) {
        const type = types[randomInt(types.length)]!;
        const value = i % 10 === 0 ? randomText(3000) : randomText(40);
        assert.deepEqual(a.tokenAndSeal(type, value), b.tokenAndSeal(type, value), `${type} ${JSON.stringify(value)} under ${month}`);
      }
      a.close();
    }
  });
  it('what it seals opens with openIdentifier, to the identifier, and not under another month key', () => {
    const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
    const other = deriveMonthKey('2026-11', 'k2', generateMonthKey());
    const s = factory(key);
    for (const value of ['+60123456789', 'jane.doe@example.org', 'ünïcødé@例え.jp', randomBytes(40).toString('base64')]) {
      const { token, sealed } = s.tokenAndSeal('msisdn', value);
      assert.equal(openIdentifier(key, token, Buffer.from(sealed, 'base64')), value);
      assert.throws(() => openIdentifier(other, token, Buffer.from(sealed, 'base64')));
    }
    s.close();
  });
  it('refuses to seal after close, and a second close is harmless', () => {
    const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
    const s = factory(key);
    s.tokenAndSeal('msisdn', '+60123456789');
    s.close();
    assert.throws(() => s.tokenAndSeal('msisdn', '+60123456789'), /closed/);
    s.close();
  });
  it('keeps its own copy of the keys: zeroing the key buffers afterwards (as a worker does when it drops them) changes nothing', () => {
    const raw = generateMonthKey();
    const key = deriveMonthKey('2026-11', 'k', raw);
    const copy: MonthKey = { ...key, tokenKey: Buffer.from(key.tokenKey), vaultKey: Buffer.from(key.vaultKey) };
    const s = factory(copy);
    copy.tokenKey.fill(0);
    copy.vaultKey.fill(0);
    assert.deepEqual(s.tokenAndSeal('msisdn', '+60123456789'), jsSealer(key).tokenAndSeal('msisdn', '+60123456789'));
    s.close();
  });
  it('refuses keys of the wrong size and arguments of the wrong type with a named error', () => {
    const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
    assert.throws(() => factory({ ...key, vaultKey: Buffer.alloc(16) }), /vault key has 32 bytes/);
    const s = factory(key);
    assert.throws(() => s.tokenAndSeal(1 as unknown as string, 'x'), /type must be a string/);
    assert.throws(() => s.tokenAndSeal('msisdn', null as unknown as string), /value must be a string/);
    s.close();
  });
  it('a Pseudonymiser on it gives the rows, vault rows and published events the JavaScript one gives, for generated traffic', () => {
    const now = Date.UTC(2026, 10, 20);
    const key = deriveMonthKey('2026-11', 'k', generateMonthKey());
    const a = new Pseudonymiser(1000, 'second-sight', factory);
    const b = new Pseudonymiser(1000, 'second-sight', jsSealer);
    let n = 0;
    const plan = { count: 2000, seed: 7, scenario: 'normal', duplicates: 0, malformed: 0, late: 0, startTime: now - 3_600_000, eventsPerSecond: 1 } as const;
    // A small pool (cache hits after the second sighting) and a new subscriber per record (no hits).
    for (const opts of [
      { ...plan, subscribers: 50 },
      { ...plan, seed: 8, subscribers: 'fresh' as const },
    ])
      for (const m of planTraffic(opts)) {
        const event = m.event!;
        const src = { topic: 'cdr.raw', partition: 0, offset: String(n++) };
        assert.deepEqual(a.pseudonymise(event, '2026-11', key, 1, src, now), b.pseudonymise(event, '2026-11', key, 1, src, now));
      }
    assert.equal(n, 4000);
    a.close();
  });
  it('sealerFor: `js` always JavaScript, `auto` and `native` the native sealer where it loads; sealerFactory hands out the same', () => {
    const log = pino({ level: 'silent' });
    assert.equal(sealerFor('js', log), 'js');
    assert.equal(sealerFor('auto', log), 'native');
    assert.equal(sealerFor('native', log), 'native');
    assert.equal(sealerFactory('js'), jsSealer);
    assert.equal(sealerFactory('native'), factory);
  });
});

describe('native sealer: when it cannot be used', () => {
  it('an addon that is not there is named, and `auto` then seals in JavaScript with one warning; `native` refuses to start', () => {
    const missing = loadNativeSealer('/nonexistent/sealer.node');
    assert.ok('error' in missing);
    assert.match(missing.error, /\/nonexistent\/sealer\.node is not built \(npm install builds it/);
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    assert.equal(sealerFor('auto', log, missing), 'js');
    assert.equal(sealerFor('auto', log, missing), 'js');
    assert.equal(lines.length, 1, 'one warning per process');
    assert.match(lines[0]!, /sealing identifiers in JavaScript/);
    assert.throws(
      () => sealerFor('native', log, missing),
      (err: unknown) => err instanceof PipelineError && err.code === 'config_invalid' && /CDR_NATIVE_SEALER=native: .*is not built/.test(err.message),
    );
    assert.equal(sealerFor('js', log, missing), 'js');
  });
  it('the self-test refuses a sealer whose bytes differ from node:crypto', () => {
    // Right shape, wrong bytes: the JavaScript sealer under another key.
    const wrong: SealerFactory = () => jsSealer(deriveMonthKey('2026-01', 'other', generateMonthKey()));
    assert.throws(() => selfTest(wrong), /other bytes than node:crypto/);
    assert.doesNotThrow(() => selfTest(jsSealer));
  });
});
