import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metric names are a contract (docs/contract.md): scripts and dashboards use them. */
export interface PipelineMetrics {
  readonly registry: Registry;
  readonly ingestRecords: Counter<'outcome'>;
  readonly ingestFieldsDropped: Counter<'field'>;
  readonly ingestBatchSeconds: Histogram;
  readonly ingestLag: Gauge<'partition'>;
  readonly pseudonymisedPublished: Counter;
  readonly retentionDeleted: Counter<'class'>;
  readonly billingRecords: Counter<'outcome'>;
  readonly billingLag: Gauge<'partition'>;
  readonly billingBatchSeconds: Histogram;
  readonly fraudAlerts: Counter<'rule' | 'severity'>;
  readonly fraudAlertEscalations: Counter<'rule'>;
  readonly fraudOpenAlerts: Gauge<'rule'>;
  readonly fraudLag: Gauge<'partition'>;
  readonly fraudRecords: Counter;
  readonly fraudRecordsLate: Counter;
  readonly apiRequests: Counter<'route' | 'status'>;
}

export type IngestOutcome = 'stored' | 'duplicate' | 'dlq' | 'late';

export function createMetrics(): PipelineMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
  };
}
