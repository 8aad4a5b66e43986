import type { PipelineError } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import type { ConfigOf } from '../platform/config/index.ts';
import { DEFAULT_SLICE_MS, requireKafka, requireStore, type Runtime } from '../platform/runtime/index.ts';
import { BillingService } from './billingService.ts';
import { BillingStore } from './billingStore.ts';
import { PlanSource, plansFileOf } from './planFile.ts';

export type BillingRuntime = Runtime<ConfigOf<'kafka' | 'clickhouse' | 'billing'>>;

export interface BillingOverrides {
  readonly storage?: Storage;
  readonly clock?: () => number;
  readonly onFatal?: (err: PipelineError) => void;
  /** The process serves the API too (`cdr start`): prepare batches in slices so requests are not kept waiting. */
  readonly sharesEventLoop?: boolean;
}

export interface Billing {
  readonly service: BillingService;
  readonly store: BillingStore;
  readonly plans: PlanSource;
}

/**
 * The one way to build the billing service: reads and checks the tariff plan file (a bad file stops start-up naming
 * each bad line), records its plans in `billing_plans`, and wires the consumer on the runtime's Kafka and storage.
 */
export async function createBilling(rt: BillingRuntime, overrides: BillingOverrides = {}): Promise<Billing> {
  const storage = overrides.storage ?? requireStore(rt);
  const store = new BillingStore(storage, overrides.clock);
  const file = plansFileOf(rt.config.billing.plansFile);
  // A changed file is taken once recorded: a version already in use with other prices is refused there, and the
  // plans in force stay (found from outside: the change was rated with although it was refused).
  const plans = new PlanSource(file, async (book) => {
    try {
      await store.recordPlans(book, file);
      rt.log.info({ file, plans: book.plans.length }, 'tariff plans reloaded');
    } catch (err) {
      rt.log.error({ err }, 'tariff plans changed but were not taken: the previous plans stay in force');
      throw err;
    }
  });
  await store.recordPlans(plans.current(), file);
  plans.watch();
  const service = new BillingService({
    kafka: requireKafka(rt),
    brokers: rt.brokers,
    storage,
    config: rt.config,
    plans: () => plans.current(),
    log: rt.log,
    metrics: rt.metrics,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    ...(overrides.onFatal ? { onFatal: overrides.onFatal } : {}),
    ...(overrides.sharesEventLoop ? { sliceMs: DEFAULT_SLICE_MS } : {}),
  });
  return { service, store, plans };
}
