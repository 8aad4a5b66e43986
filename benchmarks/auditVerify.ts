/**
 * `node --import tsx benchmarks/auditVerify.ts`: how long `GET /v1/audit/verify` takes over a trail of
 * BENCH_AUDIT_ENTRIES API requests (default 5,000), each audited as `cdr start` audits it — an entry and, since
 * requests come one at a time, a signed checkpoint per request. Prints the time of the requests and the verify's
 * p50 / max over BENCH_AUDIT_VERIFIES calls (default 5), in a fresh embedded ClickHouse.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../services/platform/config/index.ts';
import { createLogger } from '../services/platform/observability/index.ts';
import { openRuntime } from '../services/platform/runtime/index.ts';
import { auth, openTestApi } from '../tests/support/api.ts';
import { fmt, fmtInt, percentileSorted } from './lib/stats.ts';

const ENTRIES = Number(process.env['BENCH_AUDIT_ENTRIES'] ?? 5_000);
const VERIFIES = Number(process.env['BENCH_AUDIT_VERIFIES'] ?? 5);

const dir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-audit-'));
const config = loadConfig({ CDR_DATA_DIR: dir, CDR_MASTER_KEY: randomBytes(32).toString('base64'), CDR_LOG_LEVEL: 'warn' });
const rt = await openRuntime(config, { needKafka: false, log: createLogger('warn') });
try {
  const api = await openTestApi(rt);
  try {
    let t0 = performance.now();
    for (let i = 0; i < ENTRIES; i++) {
      const res = await api.app.inject({ method: 'GET', url: '/v1/holds', headers: auth('legal') });
      if (res.statusCode !== 200) throw new Error(`GET /v1/holds → ${res.statusCode} ${res.body}`);
    }
    const writeMs = performance.now() - t0;
    console.log(`${fmtInt(ENTRIES)} audited requests in ${fmt(writeMs / 1000)} s (${fmt((writeMs * 1000) / ENTRIES)} µs each)`);
    const times: number[] = [];
    let entries = 0;
    for (let i = 0; i < VERIFIES; i++) {
      t0 = performance.now();
      const res = await api.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth('auditor') });
      times.push(performance.now() - t0);
      const body = res.json<{ ok: boolean; entries: number }>();
      if (res.statusCode !== 200 || !body.ok) throw new Error(`verify → ${res.statusCode} ${res.body.slice(0, 300)}`);
      entries = body.entries;
    }
    times.sort((a, b) => a - b);
    console.log(
      `GET /v1/audit/verify over ${fmtInt(entries)} entries: p50 ${fmt(percentileSorted(times, 0.5), 0)} ms, max ${fmt(times[times.length - 1], 0)} ms (${fmt((percentileSorted(times, 0.5) * 1000) / entries)} µs per entry)`,
    );
  } finally {
    await api.close();
  }
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
