import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenRegistry } from '../../../services/api/auth.ts';
import { PipelineError } from '../../../services/core/index.ts';

describe('the tokens file (CDR_API_TOKENS_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdr-tokens-'));
  const file = (content: unknown): string => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(content));
    return path;
  };
  const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

  it('takes the digest in either case, as sha256sum or a shell pipeline may write it', () => {
    const registry = TokenRegistry.fromFile(
      file({
        tokens: [
          { name: 'lower', sha256: digest('t-lower'), roles: ['auditor'] },
          { name: 'upper', sha256: digest('t-upper').toUpperCase(), roles: ['lea-officer'] },
        ],
      }),
    );
    assert.deepEqual(registry.authenticate('t-lower'), { name: 'lower', roles: ['auditor'] });
    assert.deepEqual(registry.authenticate('t-upper'), { name: 'upper', roles: ['lea-officer'] });
    assert.equal(registry.authenticate('t-other'), undefined);
  });

  it('refuses a digest that is not 64 hex digits, and an unknown role, naming the entry', () => {
    for (const [entry, message] of [
      [{ name: 'short', sha256: 'abc', roles: ['auditor'] }, /tokens\.0\.sha256: 64 hex digits/],
      [{ name: 'role', sha256: digest('x'), roles: ['superuser'] }, /tokens\.0\.roles\.0/],
    ] as const) {
      assert.throws(
        () => TokenRegistry.fromFile(file({ tokens: [entry] })),
        (err: unknown) => err instanceof PipelineError && err.code === 'config_invalid' && message.test(err.message),
      );
    }
  });

  it('refuses one token listed twice (in either case), naming both entries; one person may hold two tokens', () => {
    // Found from outside: the later entry's roles won without a word (an admin token became a legal one).
    assert.throws(
      () =>
        TokenRegistry.fromFile(
          file({
            tokens: [
              { name: 'a', sha256: digest('same'), roles: ['admin'] },
              { name: 'b', sha256: digest('same').toUpperCase(), roles: ['legal'] },
            ],
          }),
        ),
      (err: unknown) =>
        err instanceof PipelineError && err.code === 'config_invalid' && /tokens\.1\.sha256: the same token as tokens\.0 \(a\)/.test(err.message),
    );
    const rotating = TokenRegistry.fromFile(
      file({
        tokens: [
          { name: 'alice', sha256: digest('old'), roles: ['dpo'] },
          { name: 'alice', sha256: digest('new'), roles: ['dpo'] },
        ],
      }),
    );
    assert.deepEqual(rotating.authenticate('new'), { name: 'alice', roles: ['dpo'] });
    rmSync(dir, { recursive: true, force: true });
  });
});
