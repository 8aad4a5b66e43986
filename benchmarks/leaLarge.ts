/**
 * `N=200000 node --import tsx benchmarks/leaLarge.ts`: one subscriber with N records (default 50,000) in one month,
 * stored through the real pseudonymisation, merged; then the whole answer through the API (in process, `inject`)
 * as NDJSON, JSON and NDJSON again; prints the time and µs per record of each. What a large law-enforcement answer
 * costs page after page (2,000 records per page; results/lea-large-*.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../services/platform/config/index.ts';
import { createLogger } from '../services/platform/observability/index.ts';
import { openRuntime } from '../services/platform/runtime/index.ts';
import { seedOneSubjectMerged } from '../tests/support/seed.ts';
import { auth, openTestApi } from '../tests/support/api.ts';
const RECORDS = Number(process.env['N'] ?? 50_000);
const SUBJECT = '+60177654321';
const dir = mkdtempSync(path.join(tmpdir(), 'cdr-lealarge-'));
const config = loadConfig({ CDR_DATA_DIR: dir, CDR_MASTER_KEY: randomBytes(32).toString('base64'), CDR_LOG_LEVEL: 'warn' });
const rt = await openRuntime(config, { needKafka: false, log: createLogger('warn') });
// BENCH_LEA_PARTIES=K: the subject's records come from K people (their numbers are given out: disclosure_parties).
const PARTIES = Number(process.env['BENCH_LEA_PARTIES'] ?? 0);
const start = await seedOneSubjectMerged(rt, SUBJECT, RECORDS, Date.now(), PARTIES);
const api = await openTestApi(rt);
const body = {
  authority: 'PDRM',
  case_reference: 'S-1',
  legal_basis: 'test',
  identifier: { type: 'msisdn', value: SUBJECT },
  from: new Date(start - 60_000).toISOString(),
  to: new Date().toISOString(),
};
for (const accept of ['application/x-ndjson', 'application/json', 'application/x-ndjson']) {
  const t0 = performance.now();
  const res = await api.app.inject({
    method: 'POST',
    url: '/v1/lea/requests',
    headers: { ...auth('lea-officer'), 'content-type': 'application/json', accept },
    payload: JSON.stringify(body),
  });
  const ms = performance.now() - t0;
  console.log(accept, res.statusCode, `${Math.round(ms)} ms`, `${((ms * 1000) / RECORDS).toFixed(1)} µs/record`, res.body.length);
}
await api.close();
await rt.close();
// The data directory is the benchmark's own: removed when it is done.
rmSync(dir, { recursive: true, force: true });
