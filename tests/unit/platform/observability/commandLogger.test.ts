import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCommandLogger } from '../../../../services/platform/observability/index.ts';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the one-shot commands’ logger', () => {
  it('writes warnings as plain lines with their fields, redacted as in the JSON logs, and info only when asked', async () => {
    const lines: string[] = [];
    const log = createCommandLogger('info', (line) => lines.push(line));
    log.info('migrations applied');
    log.warn({ path: '/keys/dev.key', identifier: '+60123456789' }, 'using a development master key');
    log.error({ err: new Error('engine gone') }, 'the pass failed');
    await flush();
    assert.deepEqual(lines, [
      'cdr: warning: using a development master key (path=/keys/dev.key, identifier=[redacted])\n',
      'cdr: error: the pass failed (err=engine gone)\n',
    ]);
    const verbose: string[] = [];
    createCommandLogger('debug', (line) => verbose.push(line)).info({ versions: [1, 2] }, 'migrations applied');
    await flush();
    assert.deepEqual(verbose, ['cdr: info: migrations applied (versions=[1,2])\n']);
  });
});
