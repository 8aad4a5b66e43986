import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { jsSealer, PipelineError, type MonthKey, type SealerFactory } from '../../core/index.ts';
import type { SealerChoice } from '../config/config.ts';
import type { Logger } from 'pino';

/** Built by scripts/build-native.mjs at `npm install` (ADR 0040). */
const ADDON_PATH = fileURLToPath(new URL('../../../native/build/sealer.node', import.meta.url));

interface SealerAddon {
  open(tokenKey: Buffer, vaultKey: Buffer, month: string): object;
  seal(month: object, type: string, value: string): [token: string, sealed: string];
  close(month: object): void;
}

let loaded: { factory: SealerFactory } | { error: string } | undefined;

/**
 * The native sealer where it is built and gives, for a fixed key and a spread of identifiers (phone, email, non-ASCII,
 * a lone surrogate, long), exactly the bytes node:crypto gives; otherwise the reason it cannot be used. Loaded once
 * per thread (each worker thread loads its own instance of the addon).
 */
export function nativeSealer(): { factory: SealerFactory } | { error: string } {
  loaded ??= loadNativeSealer(ADDON_PATH);
  return loaded;
}

/** `nativeSealer` for an addon at `path` (not remembered). */
export function loadNativeSealer(path: string): { factory: SealerFactory } | { error: string } {
  try {
    if (!existsSync(path)) throw new Error(`${path} is not built (npm install builds it: scripts/build-native.mjs)`);
    const addon = createRequire(import.meta.url)(path) as SealerAddon;
    const factory: SealerFactory = (key: MonthKey) => {
      const month = addon.open(key.tokenKey, key.vaultKey, key.month);
      return {
        tokenAndSeal(type, normalisedValue) {
          const both = addon.seal(month, type, normalisedValue);
          return { token: both[0], sealed: both[1] };
        },
        close() {
          addon.close(month);
        },
      };
    };
    selfTest(factory);
    return { factory };
  } catch (err) {
    return { error: (err instanceof Error ? err.message : String(err)).split('\n')[0]! };
  }
}

const SELF_TEST_VALUES: readonly (readonly [string, string])[] = [
  ['phone', '+4915112345678'],
  ['email', 'jane.doe@example.org'],
  ['email', 'ünïcødé@例え.jp'],
  ['sender_id', 'BANK\ud800'],
  ['device', 'x'.repeat(300)],
];

/** Throws unless `factory` gives node:crypto's bytes for a fixed key and identifiers of several shapes. */
export function selfTest(factory: SealerFactory): void {
  const key: MonthKey = { month: '2026-01', keyId: 'self-test', tokenKey: Buffer.alloc(32, 7), vaultKey: Buffer.alloc(32, 9) };
  const native = factory(key);
  const reference = jsSealer(key);
  try {
    for (const [type, value] of SELF_TEST_VALUES) {
      const a = native.tokenAndSeal(type, value);
      const b = reference.tokenAndSeal(type, value);
      if (a.token !== b.token || a.sealed !== b.sealed) throw new Error(`it gives other bytes than node:crypto for a ${type}`);
    }
  } finally {
    native.close();
  }
}

/**
 * Which sealer ingest's prepare work uses for `choice` (CDR_NATIVE_SEALER). `native` where the addon is missing or
 * fails its self-test is a configuration error naming the variable and the reason; `auto` then seals in JavaScript
 * and says so in the log once.
 */
export function sealerFor(choice: SealerChoice, log: Logger, loaded?: { factory: SealerFactory } | { error: string }): 'native' | 'js' {
  if (choice === 'js') return 'js';
  const native = loaded ?? nativeSealer();
  if ('factory' in native) return 'native';
  if (choice === 'native') throw new PipelineError('config_invalid', `CDR_NATIVE_SEALER=native: the native sealer cannot be used here (${native.error})`);
  if (!fallbackLogged) {
    fallbackLogged = true;
    log.warn(
      { reason: native.error },
      'native sealer not built or not usable: sealing identifiers in JavaScript, ~7 µs more CPU per new identifier; npm install builds it with a C++ compiler (README "Native sealer")',
    );
  }
  return 'js';
}
let fallbackLogged = false;

/** The sealer factory a prepare work was told to use (`sealerFor`'s answer, handed to a worker thread). */
export function sealerFactory(kind: 'native' | 'js'): SealerFactory {
  if (kind === 'js') return jsSealer;
  const native = nativeSealer();
  if ('factory' in native) return native.factory;
  // The main thread found it usable: a worker thread that cannot load it is broken, not configured otherwise.
  throw new PipelineError('unexpected', `the native sealer does not load in this thread (${native.error})`);
}

/** Which sealer `sealerFor(choice)` gives here, in words for a start-up banner. */
export function sealerInUse(choice: SealerChoice): string {
  if (choice === 'js') return 'JavaScript (CDR_NATIVE_SEALER=js)';
  const native = nativeSealer();
  if ('factory' in native) return 'native';
  return `JavaScript (the native sealer cannot be used: ${native.error})`;
}
