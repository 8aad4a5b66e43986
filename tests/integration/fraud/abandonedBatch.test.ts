/**
 * A close the fraud detector hands out with another partition's batch, when that batch is given up uncommitted (its
 * partition moved, the store away at a stop), reaches `fraud_alerts` with the next batch of any partition. Before
 * (found by review, 2026-12-06): the detector had closed the alert and moved on, so it stayed `open` in the table —
 * in `GET /v1/fraud/alerts` and for a new process to adopt — until a restart.
 *
 * The service's batches are driven as the consumer loop drives them (prepare; the writes with their tokens, then
 * `onDurable`; or `onAbandoned` for a batch given up), on the real engine, so that the order of events is exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { createFraud, type Fraud } from '../../../services/fraud/createFraud.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStore, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeWith, PSEUDONYMISED_SCHEMA_ID } from '../../../services/platform/schemas/index.ts';
import type { BatchResult } from '../../../services/platform/kafka/index.ts';
import { rowCountOf } from '../../../services/platform/clickhouse/index.ts';
import { testSetup } from '../../support/testEnv.ts';

const NOW = Date.UTC(2026, 10, 20, 12);
const T0 = NOW - 3_600_000;

/** A cdr.pseudonymised value: an SMS of `account` at `at`, or what `over` makes of it. */
function pseudonymised(n: number, account: string, at: number, over: Record<string, unknown> = {}): Buffer {
  return encodeWith(PSEUDONYMISED_SCHEMA_ID, {
    cdr_id: `c-${account}-${n}`,
    account_id: account,
    sender_token: 'ab'.repeat(16),
    recipient_token: String(n).padStart(32, '0'),
    token_month: '2026-11',
    sender_type: 'alphanumeric',
    recipient_type: 'msisdn',
    event_time: at,
    submitted_at: at,
    delivered_at: at + 700,
    channel: 'sms',
    direction: 'mt',
    provider_id: 'p',
    mcc: '502',
    mnc: '12',
    destination_country: 'MY',
    sender_country: 'MY',
    ported: false,
    status: 'delivered',
    error_code: '',
    segments: 1,
    size_bytes: 100,
    duration_ms: 0,
    price: 1,
    cost: 1,
    currency: 'EUR',
    late: false,
    sender_range: '',
    sender_number_type: '',
    recipient_range: '6017',
    recipient_number_type: 'mobile',
    ...over,
  });
}
const satelliteCall = (n: number, at: number): Buffer =>
  pseudonymised(n, 'acct-sat', at, { channel: 'voice', destination_country: '', recipient_range: '8816', recipient_number_type: 'unknown', duration_ms: 3000 });

const messagesOf = (values: readonly Buffer[]): KafkaMessage[] =>
  values.map((value, i) => ({ offset: String(i), value, key: null, timestamp: String(NOW), attributes: 0, headers: {} }));

describe('fraud: a close handed out with a batch that is given up', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let fraud: Fraud;
  const batchNo = new Map<number, number>();

  /** One batch of `partition`, prepared as the loop does (a fresh range after the partition's last). */
  const prepare = async (partition: number, values: readonly Buffer[]): Promise<BatchResult> => {
    const state = await stateOf(partition);
    const from = batchNo.get(partition) ?? 0;
    batchNo.set(partition, from + values.length);
    const messages = messagesOf(values).map((m, i) => ({ ...m, offset: String(from + i) }));
    return fraud.service.prepare(messages, {
      topic: 'cdr.pseudonymised',
      partition,
      range: { from, to: from + values.length - 1 },
      state,
      at: NOW,
      recorded: undefined,
      attempt: 'first',
    });
  };
  const states = new Map<number, Awaited<ReturnType<Fraud['service']['openPartition']>>>();
  const stateOf = async (partition: number) => {
    let s = states.get(partition);
    if (!s) states.set(partition, (s = await fraud.service.openPartition(partition, 0)));
    return s;
  };
  /** The writes of a batch with their tokens, then its `onDurable`, as the loop does once they are stored. */
  const durable = async (partition: number, result: BatchResult): Promise<void> => {
    const storage = requireStore(rt);
    for (const w of result.writes) {
      if (rowCountOf(w.rows) === 0) continue;
      await storage.insert(w.table, w.rows, { insert_deduplication_token: `test/${partition}/${batchNo.get(partition)}/${w.label}` }, w.shape);
    }
    result.onDurable?.();
  };
  const closesIn = (result: BatchResult): string[] =>
    result.writes.flatMap((w) =>
      (Array.isArray(w.rows) ? (w.rows as { state: string; rule: string }[]) : []).filter((r) => r.state === 'closed').map((r) => r.rule),
    );
  const storedIrsf = async () =>
    (await fraud.alerts.list(T0 - 3_600_000, NOW + 3_600_000, 'irsf')).map((a) => ({
      state: a.state,
      calls: a.evidence['calls_to_high_risk_range'],
      ended_at: a.ended_at,
    }));

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    fraud = await createFraud(rt, { clock: () => NOW });
  });

  after(async () => {
    await rt?.close();
  });

  it('stores the close with the next batch of any partition, once', async () => {
    // Six calls to a satellite range, 5 s apart, on partition 0: an IRSF alert, stored open.
    const calls = Array.from({ length: 6 }, (_, i) => satelliteCall(i, T0 + i * 5_000));
    await durable(0, await prepare(0, calls));
    assert.deepEqual(await storedIrsf(), [{ state: 'open', calls: 6, ended_at: T0 + 25_000 }]);
    assert.equal(fraud.service.health().detail?.['open_alerts'], 1);

    // Another account's record ten minutes on, on partition 1: the sweep closes the quiet alert with this batch…
    const given = await prepare(1, [pseudonymised(100, 'acct-other', T0 + 600_000)]);
    assert.deepEqual(closesIn(given), ['irsf'], 'the close goes with partition 1’s batch');
    // …which is given up uncommitted (the loop may call an attempt's callback more than once).
    given.onAbandoned?.();
    given.onAbandoned?.();
    assert.deepEqual(await storedIrsf(), [{ state: 'open', calls: 6, ended_at: T0 + 25_000 }]);

    // The next batch, of a third partition, stores it.
    const next = await prepare(2, [pseudonymised(200, 'acct-third', T0 + 610_000)]);
    assert.deepEqual(closesIn(next), ['irsf'], 'the close goes with the next batch');
    await durable(2, next);
    assert.deepEqual(await storedIrsf(), [{ state: 'closed', calls: 6, ended_at: T0 + 25_000 }]);
    assert.equal(fraud.service.health().detail?.['open_alerts'], 0, 'counted closed once');

    // And not again with later batches, nor with a retry of the batch given up.
    const later = await prepare(1, [pseudonymised(101, 'acct-other', T0 + 620_000)]);
    assert.deepEqual(closesIn(later), []);
    await durable(1, later);
    assert.equal(fraud.service.health().detail?.['open_alerts'], 0);
  });
});
