/**
 * A large law-enforcement answer streams with bounded memory: 200,000 records of one subject, answered by the API as
 * its own process (services/api/main.ts, as docker-compose runs it) through a real socket to a reader that consumes
 * them as they come. The API process's resident memory grows by less than 100 MiB while it answers, in the JSON form
 * (which carries the per-record digests) and in NDJSON; every record arrives once; and answering again does not grow
 * it further (nothing is kept per answer). Growth is measured once the process has answered the same question once:
 * the first answer in a fresh process also fills the embedded engine's caches (marks and blocks of the parts it read)
 * and warms the JIT, a one-off cost reported in benchmarks/results/lea-2026-12-01.md. The API runs as docker-compose
 * runs it, with V8's old space capped at 1 GiB.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime } from '../../../services/platform/runtime/index.ts';
import { exited, startChild } from '../../support/children.ts';
import { seedOneSubjectMerged } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';
import { freePort } from '../../support/ports.ts';

const RECORDS = 200_000;
const SUBJECT = '+60177654321';
const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('a 200,000-record answer streams with bounded memory', () => {
  const port = { value: 0 };
  const setup = testSetup();
  let child: ChildProcess | undefined;
  const token = 'stream-officer-token';

  before(async () => {
    const rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    // Merged before the API opens: otherwise the API process merges the seeded parts in the background while it
    // answers, and the merges' memory (not the answer's) dominates what is measured.
    await seedOneSubjectMerged(rt, SUBJECT, RECORDS);
    await rt.close();
    port.value = await freePort();
    const tokensFile = join(setup.dataDir, 'tokens.json');
    writeFileSync(
      tokensFile,
      JSON.stringify({ tokens: [{ name: 'officer', sha256: createHash('sha256').update(token).digest('hex'), roles: ['lea-officer'] }] }),
    );
    child = startChild(join(import.meta.dirname, '../../../services/api/main.ts'), setup, join(setup.dataDir, 'api.log'), () => undefined, {
      CDR_API_TOKENS_FILE: tokensFile,
      CDR_API_PORT: String(port.value),
      CDR_LOG_LEVEL: 'warn',
      // As docker-compose runs the API: V8's old space capped (docs/operations.md). The live heap of an answer is ~35
      // MiB; without a cap V8 sizes its first collection threshold from the machine's memory and lets ~100 MiB of
      // garbage pile up before collecting it.
      NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --max-old-space-size=1024`.trim(),
      // As docs/operations.md recommends for an API on the embedded engine: the engine's allocator (jemalloc) returns
      // freed pages at once instead of keeping them ~10 s, so what an answer frees leaves the resident set.
      JE_MALLOC_CONF: process.env['JE_MALLOC_CONF'] ?? 'dirty_decay_ms:0,muzzy_decay_ms:0',
    });
    for (let i = 0; ; i++) {
      const up = await fetch(`http://127.0.0.1:${port.value}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 600) throw new Error(`the API did not start: ${readFileSync(join(setup.dataDir, 'api.log'), 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
  });

  const ask = (accept: string, from: number, to: number) =>
    new Promise<{ lines: number; bytes: number; status: number }>((resolve, reject) => {
      const body = JSON.stringify({
        authority: 'PDRM',
        case_reference: 'STREAM-1',
        legal_basis: 'test',
        identifier: { type: 'msisdn', value: SUBJECT },
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
      });
      const req = request(
        {
          host: '127.0.0.1',
          port: port.value,
          path: '/v1/lea/requests',
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept },
        },
        (res) => {
          let n = 0;
          let size = 0;
          let tail = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            size += chunk.length;
            const parts = (tail + chunk).split('\n');
            tail = parts.pop() ?? '';
            // Records are canonical JSON: members in code-point order, account_id first; one per line in both forms.
            for (const p of parts) if (p.startsWith('{"account_id":') || p.startsWith(',{"account_id":')) n++;
          });
          res.on('end', () => resolve({ lines: n, bytes: size, status: res.statusCode ?? 0 }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  let afterWarmUp = 0;
  it('answers once to warm up', async () => {
    const warm = await ask('application/json', Date.now() - 86_400_000, Date.now() + 60_000);
    assert.equal(warm.status, 201);
    assert.equal(warm.lines, RECORDS);
    afterWarmUp = rssOf(child!.pid!);
  });

  for (const accept of ['application/json', 'application/x-ndjson']) {
    it(`${accept}: every record once, API memory growth under 100 MiB`, async () => {
      const pid = child!.pid!;
      const baseline = rssOf(pid);
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssOf(pid));
      }, 50);
      const started = Date.now();
      const { lines, bytes, status } = await ask(accept, Date.now() - 86_400_000, Date.now() + 60_000);
      clearInterval(sampler);
      peak = Math.max(peak, rssOf(pid));
      const growth = peak - baseline;
      process.stdout.write(
        `# ${accept}: ${lines} records, ${(bytes / MiB).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s; API RSS ${(baseline / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB (+${(growth / MiB).toFixed(1)})\n`,
      );
      assert.equal(status, 201);
      assert.equal(lines, RECORDS);
      assert.ok(growth < 100 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
    });
  }

  it('keeps nothing per answer: resident memory after two more answers is within 50 MiB of where it was', async () => {
    const now = rssOf(child!.pid!);
    process.stdout.write(`# API RSS after the warm-up answer ${(afterWarmUp / MiB).toFixed(0)} MiB, after two more ${(now / MiB).toFixed(0)} MiB\n`);
    assert.ok(now - afterWarmUp < 50 * MiB, `${((now - afterWarmUp) / MiB).toFixed(1)} MiB more`);
  });
});
