/**
 * The layering rules of eslint.config.js bite: a probe file that breaks each rule is linted with the project's
 * own configuration and every violation is reported. (The rules keep services/core pure and services/platform
 * free of service imports; `npm run check` applies them to the real code.)
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';

const root = join(import.meta.dirname, '../../..');
const probes: string[] = [];

async function lintProbe(relPath: string, code: string): Promise<string[]> {
  const file = join(root, relPath);
  probes.push(file);
  writeFileSync(file, code);
  const [result] = await new ESLint({ cwd: root }).lintFiles([file]);
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-globals').map((m) => m.message);
}

describe('layering lint rules', { timeout: 120_000 }, () => {
  after(() => {
    for (const p of probes) rmSync(p, { force: true });
  });

  it('keep services/core free of I/O, of the environment and of the layers above', async () => {
    const messages = await lintProbe(
      'services/core/cdr/__layering_probe.ts',
      [
        "import { readFileSync } from 'node:fs';",
        "import type { Kafka } from 'kafkajs';",
        "import { createClient } from '@clickhouse/client';",
        "import { createLogger } from '../../platform/observability/index.ts';",
        "import { createIngest } from '../../ingest/createIngest.ts';",
        "import { RecentIds } from '../dedup/recentIds.ts';",
        "export const probe = [readFileSync, createClient, createLogger, createIngest, RecentIds, process.env['X']] as const;",
        'export type K = Kafka;',
        '',
      ].join('\n'),
    );
    for (const forbidden of ["'node:fs'", "'kafkajs'", "'@clickhouse/client'", 'platform/observability', 'ingest/createIngest', "'process'"]) {
      assert.ok(
        messages.some((m) => m.includes(forbidden)),
        `${forbidden} is reported`,
      );
    }
    assert.ok(!messages.some((m) => m.includes('../dedup')), 'an import inside core is allowed');
  });

  it('keep services/platform from importing a service', async () => {
    const messages = await lintProbe(
      'services/platform/kafka/__layering_probe.ts',
      [
        "import { createIngest } from '../../ingest/createIngest.ts';",
        "import { PipelineError } from '../../core/index.ts';",
        'export const probe = [createIngest, PipelineError] as const;',
        '',
      ].join('\n'),
    );
    assert.equal(messages.length, 1);
    assert.match(messages[0]!, /services\/platform must not import a service/);
  });
});
