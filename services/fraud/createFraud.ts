import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FraudDetector, parseFraudConfig, PipelineError, type FraudConfig, type PipelineError as PipelineErrorType } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import type { ConfigOf } from '../platform/config/index.ts';
import { DEFAULT_SLICE_MS, requireKafka, requireStore, type Runtime } from '../platform/runtime/index.ts';
import { AlertStore } from './alertStore.ts';
import { FraudService } from './fraudService.ts';

/** At most this many recently closed alerts are taken up at start (the newest). */
const ADOPTED_CLOSED_LIMIT = 10_000;

export type FraudRuntime = Runtime<ConfigOf<'kafka' | 'clickhouse' | 'fraud'>>;

/** The rule thresholds shipped with the package. */
export const DEFAULT_RULES_FILE = fileURLToPath(new URL('../../config/fraud-rules.yaml', import.meta.url));

/** Reads and checks a thresholds file; every problem named with its line. */
export function readRulesFile(file: string | undefined): { file: string; rules: FraudConfig } {
  const path = resolve(file ?? DEFAULT_RULES_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new PipelineError('config_invalid', `fraud rules file ${path} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  return { file: path, rules: parseFraudConfig(text, path) };
}

export interface Fraud {
  readonly service: FraudService;
  readonly alerts: AlertStore;
  readonly rulesFile: string;
}

/** The one way to build the fraud service: checks the thresholds file, adopts the alerts that are open, wires the consumer. */
export async function createFraud(
  rt: FraudRuntime,
  /** sharesEventLoop: the process serves the API too (`cdr start`): prepare batches in slices. */
  overrides: { storage?: Storage; clock?: () => number; onFatal?: (err: PipelineErrorType) => void; sharesEventLoop?: boolean } = {},
): Promise<Fraud> {
  const storage = overrides.storage ?? requireStore(rt);
  const { file, rules } = readRulesFile(rt.config.fraud.rulesFile);
  const alerts = new AlertStore(storage);
  // Open alerts, and those closed within the span a record can still be judged in (the detector's catch-up and late
  // tolerance): records published again after a crash then amend their episode, not open it again.
  const closed = await alerts.recentlyClosed(FraudDetector.closedAlertSpanMs(rules), ADOPTED_CLOSED_LIMIT);
  if (closed.length >= ADOPTED_CLOSED_LIMIT)
    rt.log.warn(
      { adopted_closed: closed.length },
      'more recently closed fraud alerts than are taken up: records of the older ones published again could open them again',
    );
  const adopted = [...(await alerts.openAlerts()), ...closed];
  // What an unreadable state cost is a warm-up, not the start: said, and started without it.
  const learned = await alerts.learned(rt.config.fraud.groupId).catch((err: unknown) => {
    if (err instanceof SyntaxError) rt.log.warn({ err }, 'the fraud detector’s learned state cannot be read: starting without it (its rules warm up again)');
    else throw err;
    return undefined;
  });
  const service = new FraudService({
    kafka: requireKafka(rt),
    brokers: rt.brokers,
    storage,
    config: rt.config,
    rules,
    adopted,
    ...(learned ? { learned } : {}),
    learnedStore: alerts,
    log: rt.log,
    metrics: rt.metrics,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    ...(overrides.onFatal ? { onFatal: overrides.onFatal } : {}),
    ...(overrides.sharesEventLoop ? { sliceMs: DEFAULT_SLICE_MS } : {}),
  });
  return { service, alerts, rulesFile: file };
}
