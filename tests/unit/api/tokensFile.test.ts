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
    rmSync(dir, { recursive: true, force: true });
  });
});
