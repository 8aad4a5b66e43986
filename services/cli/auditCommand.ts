import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { PipelineError, type ChainReport } from '../core/index.ts';
import { verifyAuditTrail } from '../platform/audit/index.ts';
import type { PipelineConfig } from '../platform/config/index.ts';
import { createLogger } from '../platform/observability/index.ts';
import { openRuntime } from '../platform/runtime/index.ts';
import { trustedPublicKey } from '../platform/signing/index.ts';

/**
 * `cdr audit verify [--public-key K]`: recomputes every chain of the audit trail against its signed checkpoints and
 * the anchors kept outside the database; prints the report as JSON; exits 1 on any break (naming the first bad entry).
 *
 * With the embedded store held by a running `cdr start` (one process per data directory), it asks that process's
 * API instead (`GET /v1/audit/verify`, with CDR_API_TOKEN or the development auditor token).
 */
export type AuditVerifyReport = ChainReport & { anchors: number; via?: string };

function trustedKeys(config: PipelineConfig, publicKey: string | undefined): KeyObject[] {
  const trusted = trustedPublicKey({ publicKey, signingKeyFile: config.audit.signingKeyFile, dataDir: config.dataDir });
  if (trusted) return [trusted.key];
  throw new PipelineError('config_invalid', 'no key to check the audit checkpoints with: --public-key, or CDR_SIGNING_KEY_FILE');
}

async function viaRunningApi(config: PipelineConfig): Promise<AuditVerifyReport | undefined> {
  const runFile = resolve(config.dataDir, 'api.json');
  if (!existsSync(runFile)) return undefined;
  const run = JSON.parse(readFileSync(runFile, 'utf8')) as { pid: number; url: string };
  try {
    process.kill(run.pid, 0);
  } catch {
    return undefined;
  }
  let token = process.env['CDR_API_TOKEN'];
  process.stderr.write(`cdr: the data directory is held by a running cdr start (pid ${run.pid}); asking its API at ${run.url}\n`);
  const devSecrets = resolve(config.dataDir, 'api-tokens.dev-secrets.json');
  if (!token && existsSync(devSecrets)) token = (JSON.parse(readFileSync(devSecrets, 'utf8')) as Record<string, string>)['auditor'];
  if (!token)
    throw new PipelineError('config_invalid', `the data directory is held by a running cdr start (${run.url}); set CDR_API_TOKEN to an auditor token`);
  const res = await fetch(`${run.url}/v1/audit/verify`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new PipelineError('unavailable', `GET ${run.url}/v1/audit/verify answered ${res.status}: ${await res.text()}`);
  return { ...((await res.json()) as AuditVerifyReport), via: run.url };
}

export async function verifyAudit(config: PipelineConfig, args: { publicKey?: string }): Promise<AuditVerifyReport> {
  // The embedded store is held by a running `cdr start`: ask it (opening the store here would only fail).
  if (!config.clickhouse.url) {
    const remote = await viaRunningApi(config);
    if (remote) return remote;
  }
  const rt = await openRuntime(config, { needKafka: false, log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel) });
  try {
    const keys = trustedKeys(config, args.publicKey);
    return await verifyAuditTrail(rt.storage!, keys, config.audit.anchorDir ?? resolve(config.dataDir), Date.now());
  } finally {
    await rt.close();
  }
}
