import { resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { PipelineError, type ChainReport } from '../core/index.ts';
import { readAnchors, verifyAuditTrail } from '../platform/audit/index.ts';
import type { ConfigOf } from '../platform/config/index.ts';
import { createCommandLogger } from '../platform/observability/index.ts';
import { openRuntime } from '../platform/runtime/index.ts';
import { trustedPublicKey } from '../platform/signing/index.ts';
import { requireStoreDir, runningApi, runningStart } from './runningApi.ts';

/**
 * `cdr audit verify [--public-key K]`: recomputes every chain of the audit trail against its signed checkpoints and
 * the anchors kept outside the database; prints the report as JSON; exits 1 on any break (naming the first bad entry).
 *
 * With the embedded store held by a running `cdr start` (one process per data directory), it asks that process's
 * API instead (`GET /v1/audit/verify`, with CDR_API_TOKEN or the development auditor token).
 */
export type AuditVerifyReport = ChainReport & { anchors: number; via?: string };

/**
 * What a verification reads: the trail, its signing key and anchors. Not the master key: hash chains and signatures need
 * none, and an auditor given a copy of the store need not hold it (found from outside: it was asked for).
 */
export type AuditVerifyConfig = ConfigOf<'audit' | 'clickhouse' | 'kafka'>;

function trustedKeys(config: AuditVerifyConfig, publicKey: string | undefined): KeyObject[] {
  const trusted = trustedPublicKey({ publicKey, signingKeyFile: config.audit.signingKeyFile, dataDir: config.dataDir });
  if (trusted) return [trusted.key];
  throw new PipelineError('config_invalid', 'no key to check the audit checkpoints with: --public-key, or CDR_SIGNING_KEY_FILE');
}

async function viaRunningApi(config: AuditVerifyConfig, keyGiven: boolean, chainGiven: string | undefined): Promise<AuditVerifyReport | undefined> {
  const run = runningStart(config.dataDir);
  if (!run) return undefined;
  // Nor with another chain's anchor than its own (found in review: `--chain nosuch` was ignored here and said ok).
  if (chainGiven !== undefined)
    throw new PipelineError(
      'config_invalid',
      `--chain: the store is held by a running cdr start (pid ${run.pid}), whose API requires the anchor of its own chain only; stop it to check chain ${JSON.stringify(chainGiven)}'s anchor, or leave out --chain to take its verdict`,
    );
  // The running process checks with its own key: its verdict is no check against the key given here.
  if (keyGiven)
    throw new PipelineError(
      'config_invalid',
      `--public-key: the store is held by a running cdr start (pid ${run.pid}), whose API checks the trail with its own key, not the one given; stop it to check against your key, or leave out --public-key to take its verdict`,
    );
  const api = runningApi(config.dataDir, 'auditor');
  if (!api) return undefined; // stopped meanwhile
  return { ...(await api.call<AuditVerifyReport>('GET', '/v1/audit/verify')), via: api.url };
}

export async function verifyAudit(config: AuditVerifyConfig, args: { publicKey?: string; chain?: string }): Promise<AuditVerifyReport> {
  // A key given is the trust anchor of the check: read it first, so a missing or unreadable one is said at once.
  const given = args.publicKey !== undefined ? trustedKeys(config, args.publicKey) : undefined;
  if (!config.clickhouse.url) {
    // A verify creates nothing: no store here is an error, not a new empty store (and a new development key).
    requireStoreDir(config.dataDir, 'the data directory to check');
    // The embedded store is held by a running `cdr start`: ask it (opening the store here would only fail).
    const remote = await viaRunningApi(config, given !== undefined, args.chain);
    if (remote) return remote;
  }
  const rt = await openRuntime(config, { needKafka: false, log: createCommandLogger(config.logLevel) });
  try {
    const keys = given ?? trustedKeys(config, undefined);
    // The chain whose process keeps its anchor here: on the embedded store, that of this data directory's cdr start
    // (found in review: without CDR_AUDIT_CHAIN none was required, and a deleted anchor went unnoticed by default).
    const anchoredChain = args.chain ?? config.audit.chain ?? (config.clickhouse.url ? undefined : 'main');
    const anchorDir = config.audit.anchorDir ?? resolve(config.dataDir);
    const named = args.chain !== undefined ? '--chain' : config.audit.chain !== undefined ? 'CDR_AUDIT_CHAIN' : undefined;
    if (named !== undefined && anchoredChain !== undefined) {
      // A chain named (option or environment) is the one whose anchor is required: a misspelt one (`--chain mian`)
      // would leave main's unchecked and say ok (found from outside).
      const storage = rt.storage!;
      const chains = new Set([
        ...(await storage.query<{ chain: string }>(`SELECT DISTINCT chain FROM ${storage.table('audit_log')}`)).map((r) => r.chain),
        ...readAnchors(anchorDir).map((a) => a.chain),
      ]);
      const known = [...chains].sort().map((c) => JSON.stringify(c));
      if (!chains.has(anchoredChain))
        throw new PipelineError(
          'bad_request',
          `${named}: the audit trail has no chain ${JSON.stringify(anchoredChain)} (it has ${known.length > 0 ? known.join(', ') : 'none'})`,
        );
    }
    return await verifyAuditTrail(rt.storage!, keys, anchorDir, Date.now(), anchoredChain);
  } finally {
    await rt.close();
  }
}
