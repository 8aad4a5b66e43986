import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metric names are a contract (docs/contract.md): scripts and dashboards use them. */
export interface PipelineMetrics {
  readonly registry: Registry;
  readonly ingestRecords: Counter<'outcome'>;
  readonly ingestFieldsDropped: Counter<'field'>;
  readonly ingestBatchSeconds: Histogram;
  readonly ingestLag: Gauge<'partition'>;
  readonly ingestIdLookups: Counter<'result'>;
  readonly pseudonymisedPublished: Counter;
  readonly retentionDeleted: Counter<'class'>;
  readonly billingRecords: Counter<'outcome'>;
  readonly billingLag: Gauge<'partition'>;
  readonly billingBatchSeconds: Histogram;
  readonly fraudAlerts: Counter<'rule' | 'severity'>;
  readonly fraudAlertEscalations: Counter<'rule'>;
  readonly fraudOpenAlerts: Gauge<'rule'>;
  readonly fraudWindows: Gauge;
  readonly fraudLag: Gauge<'partition'>;
  readonly fraudRecords: Counter;
  readonly fraudRecordsLate: Counter;
  readonly apiRequests: Counter<'route' | 'status'>;
  readonly consumerLagAge: Gauge<'consumer'>;
  readonly consumerPastStableOffset: Gauge<'consumer' | 'partition'>;
  /**
   * Has `cdr_consumer_lag_age_seconds{consumer}` report, at each scrape, how old that consumer's lag gauges are (`ageMs`
   * undefined: not read yet, no sample).
   */
  watchLagAge(consumer: string, ageMs: () => number | undefined): void;
}

export type IngestOutcome = 'stored' | 'duplicate' | 'dlq' | 'late';

export function createMetrics(): PipelineMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const lagAges = new Map<string, () => number | undefined>();
  return {
    registry,
    ingestRecords: new Counter({
      name: 'cdr_ingest_records_total',
      help: 'CDRs handled by ingest, by outcome (stored, duplicate, dlq, late)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    ingestFieldsDropped: new Counter({
      name: 'cdr_ingest_fields_dropped_total',
      help: 'Free-text fields cleared or cut at ingest because they were not what the field holds (error_code beyond its code or phone-shaped, client_ip not an IP)',
      labelNames: ['field'],
      registers: [registry],
    }),
    ingestBatchSeconds: new Histogram({
      name: 'cdr_ingest_batch_seconds',
      help: 'Time to process one ingest batch end to end',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    ingestLag: new Gauge({
      name: 'cdr_ingest_lag_records',
      help: 'Records behind the partition high watermark',
      labelNames: ['partition'],
      registers: [registry],
    }),
    ingestIdLookups: new Counter({
      name: 'cdr_ingest_id_lookups_total',
      help: 'cdr_ids of batches judged for duplicates the first time: looked_up in the store, or ruled_out by the filter of the stored ids (ADR 0045)',
      labelNames: ['result'],
      registers: [registry],
    }),
    pseudonymisedPublished: new Counter({ name: 'cdr_pseudonymised_published_total', help: 'Pseudonymised events published', registers: [registry] }),
    retentionDeleted: new Counter({
      name: 'cdr_retention_deleted_total',
      help: 'Rows deleted by retention, by data class',
      labelNames: ['class'],
      registers: [registry],
    }),
    billingRecords: new Counter({
      name: 'cdr_billing_records_total',
      help: 'Pseudonymised records handled by billing, by outcome (rated, unrated, duplicate)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    billingLag: new Gauge({
      name: 'cdr_billing_lag_records',
      help: 'Records of cdr.pseudonymised the billing group has not yet handled, per partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
    billingBatchSeconds: new Histogram({
      name: 'cdr_billing_batch_seconds',
      help: 'Time to rate and store one billing batch end to end',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    fraudAlerts: new Counter({
      name: 'cdr_fraud_alerts_total',
      help: 'Fraud alerts raised (opened), by rule and severity at opening (an escalation is in cdr_fraud_alert_escalations_total)',
      labelNames: ['rule', 'severity'],
      registers: [registry],
    }),
    fraudAlertEscalations: new Counter({
      name: 'cdr_fraud_alert_escalations_total',
      help: 'Open fraud alerts escalated from warning to critical, by rule',
      labelNames: ['rule'],
      registers: [registry],
    }),
    fraudOpenAlerts: new Gauge({ name: 'cdr_fraud_open_alerts', help: 'Fraud alerts open now, by rule', labelNames: ['rule'], registers: [registry] }),
    fraudWindows: new Gauge({
      name: 'cdr_fraud_windows',
      help: 'Sliding windows the fraud detector holds (per account, number range and token): what its memory grows with',
      registers: [registry],
    }),
    fraudLag: new Gauge({
      name: 'cdr_fraud_lag_records',
      help: 'Records of cdr.pseudonymised the fraud group has not yet handled, per partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
    fraudRecords: new Counter({ name: 'cdr_fraud_records_total', help: 'Pseudonymised records examined by the fraud rules', registers: [registry] }),
    fraudRecordsLate: new Counter({
      name: 'cdr_fraud_records_late_total',
      help: 'Pseudonymised records not judged: older than every live rule window behind the newest event time, or dated over 5 min ahead of the wall clock',
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: 'cdr_api_requests_total',
      help: 'Internal API requests by route and status',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    // Found from outside (2026-12-06): the lag gauges count to the last stable offset, so a producer that died inside a
    // transaction held a partition for up to 15 min while they said 0. Read with them.
    consumerPastStableOffset: new Gauge({
      name: 'cdr_consumer_records_past_stable_offset',
      help: "Records past a partition's last stable offset, per consumer: in, or behind, a producer transaction still open (not in the cdr_*_lag_records gauges; read when it ends)",
      labelNames: ['consumer', 'partition'],
      registers: [registry],
    }),
    // Read at each scrape: the lag gauges keep their last value while the broker does not answer (found from outside:
    // a frozen broker's lag exported as current for 105 s); this says how old they are.
    consumerLagAge: new Gauge({
      name: 'cdr_consumer_lag_age_seconds',
      help: 'Seconds since the consumer lag gauges (cdr_ingest_lag_records, cdr_billing_lag_records, cdr_fraud_lag_records) were read from the broker, per consumer',
      labelNames: ['consumer'],
      registers: [registry],
      collect() {
        for (const [consumer, ageMs] of lagAges) {
          const age = ageMs();
          if (age === undefined) this.remove({ consumer });
          else this.set({ consumer }, age / 1000);
        }
      },
    }),
    watchLagAge(consumer: string, ageMs: () => number | undefined): void {
      lagAges.set(consumer, ageMs);
    },
  };
}
