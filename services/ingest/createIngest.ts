import type { PipelineError } from '../core/index.ts';
import type { Storage } from '../platform/clickhouse/index.ts';
import type { ConfigOf } from '../platform/config/index.ts';
import { DEFAULT_SLICE_MS, requireKafka, requireStorage, type Runtime } from '../platform/runtime/index.ts';
import { IngestService } from './ingestService.ts';

/** The prepare workers' nice value in a process that serves the API too (`cdr start`), unless configured. */
export const SHARED_PROCESS_WORKER_NICE = 10;

export type IngestRuntime = Runtime<ConfigOf<'kafka' | 'clickhouse' | 'masterKey' | 'ingest'>>;

export interface IngestOverrides {
  /** Another storage handle on the same database (tests inject faults through it; benchmarks observe inserts). */
  readonly storage?: Storage;
  /** The clock ingest judges identifier windows and future skew by (tests move it). */
  readonly clock?: () => number;
  readonly onFatal?: (err: PipelineError) => void;
  /** The process serves the API too (`cdr start`): prepare batches in slices so requests are not kept waiting. */
  readonly sharesEventLoop?: boolean;
}

/** The one way to build an ingest service: from an opened runtime (Kafka, storage, key ring, config, log, metrics). */
export function createIngest(rt: IngestRuntime, overrides: IngestOverrides = {}): IngestService {
  const opened = requireStorage(rt);
  return new IngestService({
    kafka: requireKafka(rt),
    brokers: rt.brokers,
    storage: overrides.storage ?? opened.storage,
    keyRing: opened.keyRing,
    config: rt.config,
    log: rt.log,
    metrics: rt.metrics,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    ...(overrides.onFatal ? { onFatal: overrides.onFatal } : {}),
    ...(overrides.sharesEventLoop ? { sliceMs: DEFAULT_SLICE_MS } : {}),
    // Beside the API, the per-record work yields the CPU to requests someone waits for; Kafka holds what is not yet
    // stored (ADR 0034).
    workerNice: rt.config.ingest.workerNice ?? (overrides.sharesEventLoop ? SHARED_PROCESS_WORKER_NICE : 0),
  });
}
