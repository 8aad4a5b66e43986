import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { BillingStore } from '../billing/billingStore.ts';
import { AlertStore } from '../fraud/alertStore.ts';
import { PlanSource, plansFileOf } from '../billing/planFile.ts';
import type { PlanBook } from '../core/index.ts';
import { openStorage, withQueryLimits, type Storage } from '../platform/clickhouse/index.ts';
import type { ClickHouseConfig } from '../platform/config/index.ts';
import { AuditTrail } from '../platform/audit/index.ts';
import { LegalHolds } from '../platform/holds/index.ts';
import { requireStorage, type Runtime } from '../platform/runtime/index.ts';
import type { LoadedSigner } from '../platform/signing/index.ts';
import type { RetentionPass } from '../retention/retentionPass.ts';
import { DisclosureDesk } from './disclosure/disclosureDesk.ts';
import type { DisclosureServices } from './disclosure/serveAnswer.ts';

/**
 * What the internal API's routes need, built from an opened runtime: its own ClickHouse session (API reads never
 * queue behind ingest's inserts) with a time and memory limit on every query, the audit trail of this process's
 * chain, the legal holds, and the disclosure desk with the signing key.
 */
export interface ApiServices {
  readonly audit: AuditTrail;
  readonly holds: LegalHolds;
  readonly disclosure: DisclosureServices;
  readonly retention: RetentionPass | undefined;
  /** Billing's figures (usage, statements), read on the API's own session. */
  readonly billing: BillingStore;
  /** Fraud alerts, read on the API's own session. */
  readonly fraudAlerts: AlertStore;
  readonly clock: () => number;
  /** The tariff plans a re-rate over the API applies (the plan file, re-read when it changes). */
  readonly billingPlans: () => PlanBook;
  /** CDR_ALLOW_CLOCK_OVERRIDE: a real retention run may take `now` (tests and drills only). */
  readonly allowClockOverride: boolean;
  /** Waits for answers' closing records, stops the audit's periodic checkpoints (with a closing one), closes the API's own session. */
  close(): Promise<void>;
}

export interface ApiServicesOptions {
  readonly signer: LoadedSigner;
  /** The audit chain this process writes. */
  readonly chain: string;
  /** Where anchors are kept outside the database; default: the data directory. */
  readonly anchorDir?: string | undefined;
  readonly checkpointMs?: number;
  readonly retention?: RetentionPass;
  readonly allowClockOverride?: boolean;
  readonly maxAnswerRows?: number;
  readonly queryTimeoutSeconds?: number;
  readonly queryMaxMemoryBytes?: number;
  /** Open a second session on the runtime's store for the API (default true). */
  readonly ownSession?: boolean;
  /** Another handle on the same database instead (tests delay or fail its writes); the caller closes it. */
  readonly storage?: Storage;
  /** The tariff plan file (CDR_BILLING_PLANS_FILE); undefined: the package's. */
  readonly billingPlansFile?: string | undefined;
  /** Records per page of an answer (memory per page against queries per answer). */
  readonly pageSize?: number;
  readonly clock?: () => number;
  readonly log?: Logger;
}

export async function createApiServices(rt: Runtime & { config: { clickhouse?: ClickHouseConfig } }, opts: ApiServicesOptions): Promise<ApiServices> {
  const { storage: shared, keyRing, masterKey } = requireStorage(rt);
  const log = opts.log ?? rt.log;
  let own: Storage | undefined;
  if (!opts.storage && opts.ownSession !== false && rt.config.clickhouse) own = await openStorage(rt.config.clickhouse, rt.config.dataDir);
  const storage = withQueryLimits(opts.storage ?? own ?? shared, {
    max_execution_time: opts.queryTimeoutSeconds ?? 120,
    max_memory_usage: String(opts.queryMaxMemoryBytes ?? 2 * 1024 ** 3),
    // One subject's records are a few granules per page: parallel reads and 65k-row blocks buy nothing there and
    // roughly doubled the engine's transient memory per answer (tests/integration/api/leaStream.test.ts).
    max_threads: 1,
    max_block_size: '8192',
  });
  const clock = opts.clock ?? Date.now;
  // The API re-rates with these plans: a changed file is taken only once billing_plans accepts it, as billing's own.
  const billingStore = new BillingStore(storage, clock);
  const plansFile = plansFileOf(opts.billingPlansFile);
  const billingPlans = new PlanSource(plansFile, (book) => billingStore.recordPlans(book, plansFile));
  const audit = await AuditTrail.open({
    storage,
    keyRing,
    signer: opts.signer,
    chain: opts.chain,
    anchorDir: opts.anchorDir ?? resolve(rt.config.dataDir),
    checkpointMs: opts.checkpointMs ?? 300_000,
    log,
    clock,
  });
  const holds = new LegalHolds(storage, keyRing, masterKey, clock);
  const desk = new DisclosureDesk({ storage, keyRing, holds, ...(opts.pageSize ? { pageSize: opts.pageSize } : {}) });
  billingPlans.watch();
  return {
    audit,
    holds,
    disclosure: { desk, audit, signer: opts.signer, maxAnswerRows: opts.maxAnswerRows ?? 1_000_000, clock, log },
    retention: opts.retention,
    billing: billingStore,
    fraudAlerts: new AlertStore(storage),
    clock,
    billingPlans: () => billingPlans.current(),
    allowClockOverride: opts.allowClockOverride ?? false,
    async close() {
      billingPlans.unwatch();
      // Answers that ended just before: their closing request rows and audit entries first.
      await desk.settled();
      await audit.close();
      if (own) await own.close();
    },
  };
}
