import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../../../services/platform/observability/index.ts';

describe('metrics: how old the consumer lag gauges are', () => {
  it('reports each watched consumer’s lag age at scrape time, and no sample before its first read', async () => {
    // Found from outside: with the broker frozen, the lag gauges kept their last values for 105 s, looking current.
    const metrics = createMetrics();
    let ingestAge: number | undefined = 2_500;
    metrics.watchLagAge('ingest', () => ingestAge);
    metrics.watchLagAge('billing', () => undefined);
    const first = await metrics.registry.metrics();
    assert.match(first, /^cdr_consumer_lag_age_seconds\{consumer="ingest"\} 2\.5$/m);
    assert.doesNotMatch(first, /cdr_consumer_lag_age_seconds\{consumer="billing"\}/);
    // Read again at the next scrape: a frozen broker's lag grows old in /metrics too.
    ingestAge = 95_000;
    assert.match(await metrics.registry.metrics(), /^cdr_consumer_lag_age_seconds\{consumer="ingest"\} 95$/m);
    ingestAge = undefined;
    assert.doesNotMatch(await metrics.registry.metrics(), /cdr_consumer_lag_age_seconds\{consumer="ingest"\}/);
  });
});
