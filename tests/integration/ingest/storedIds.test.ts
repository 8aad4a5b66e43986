/**
 * The duplicate filter (ADR 0045) with the real engine and broker: it reads the ids a store holds when the store is
 * opened again, so a copy of a record stored before a restart is still a duplicate once lookups are filtered; it is
 * shared by every storage of the process on one directory while any is open, and made anew when all were closed;
 * it is not used beside an ingest of the process without one; it reads the store again after a failed read; and it
 * spares the lookup of ids never stored (what it is for).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka, type Message } from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { storedIdsFor } from '../../../services/ingest/storedIds.ts';
import { openStorage, type Storage } from '../../../services/platform/clickhouse/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { assertNoGapNoRepeat } from '../../support/integrity.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;
const PARTITIONS = 3;
const log = createLogger('warn');

describe('the duplicate filter in front of the lookup (ADR 0045)', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: String(PARTITIONS), CDR_INGEST_MAX_BATCH: '500' });
  const gen = new TrafficGenerator({ seed: 45, scenario: 'normal', startTime: Date.now() - 1_800_000, ratePerSecond: 20 });
  const firstRun: CdrEvent[] = gen.take(1500);
  const secondRun: CdrEvent[] = gen.take(1500);
  let rt: PipelineRuntime | undefined;
  let ingest: IngestService | undefined;
  /** Ids each lookup of the store asked for, and how many copies the second run's ingest counted. */
  const lookedUp: number[] = [];
  let copiesCounted = 0;
  let storedSecond = 0;
  const leases: (string | undefined)[] = [];
  /** cdr_ingest_id_lookups_total of run 2, by result. */
  const lookupsCounted = new Map<string, number>();

  const send = async (kafka: Kafka, messages: Message[]): Promise<void> => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages });
    await producer.disconnect();
  };

  before(async () => {
    // Run 1: stored, then everything closed (the process lets the directory go).
    rt = await openRuntime(setup.config, { log });
    leases.push(requireStorage(rt).storage.lease);
    ingest = createIngest(rt);
    await ingest.start();
    assert.ok(ingest.duplicateFilter, 'the embedded store has a filter');
    await send(
      requireKafka(rt),
      firstRun.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })),
    );
    const first = ingest;
    await waitFor('run 1 stored', () => first.stats.stored + first.stats.late >= firstRun.length);
    await ingest.stop();
    await rt.close();

    // Run 2: a new hold on the directory; the filter reads the stored ids in before this run's copies arrive.
    rt = await openRuntime(setup.config, { log });
    const opened = requireStorage(rt).storage;
    leases.push(opened.lease);
    const counting: Storage = {
      ...opened,
      queryByIds: (sql, ids) => {
        if (sql.includes('cdr_ids')) lookedUp.push(ids.length);
        return opened.queryByIds(sql, ids);
      },
    };
    ingest = createIngest(rt, { storage: counting });
    await ingest.start();
    const second = ingest;
    await waitFor('the filter to read the stored ids', () => second.duplicateFilter?.ready === true);
    // Copies of run 1 under other keys (other partitions), and new records, interleaved.
    const messages: Message[] = [];
    for (let i = 0; i < 1500; i++) {
      messages.push({ key: `copy-${i}`, value: encodeCdrEvent(firstRun[i]!) });
      messages.push({ key: secondRun[i]!.cdr_id, value: encodeCdrEvent(secondRun[i]!) });
    }
    await send(requireKafka(rt), messages);
    await waitFor('run 2 handled', () => second.stats.stored + second.stats.late + second.stats.duplicate >= messages.length);
    copiesCounted = second.stats.duplicate;
    const counter = await rt.metrics.registry.getSingleMetric('cdr_ingest_id_lookups_total')?.get();
    for (const v of counter?.values ?? []) lookupsCounted.set(String(v.labels['result']), v.value);
    storedSecond = second.stats.stored + second.stats.late;
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('counts every copy of a record stored before the restart as a duplicate, and stores each cdr_id once', async () => {
    assert.equal(copiesCounted, 1500);
    assert.equal(storedSecond, 1500);
    await assertNoGapNoRepeat(
      requireStorage(rt!).storage,
      'cdr',
      'cdr_id',
      [...firstRun, ...secondRun].map((e) => e.cdr_id),
    );
  });

  it('looks up the stored copies and few of the new ids (not all 3,000)', () => {
    const asked = lookedUp.reduce((a, b) => a + b, 0);
    // The 1,500 copies must be looked up (they are in the store); of the 1,500 new ids ~1% pass the filter.
    assert.ok(asked >= 1500, `looked up ${asked} ids`);
    assert.ok(asked < 1500 + 200, `looked up ${asked} ids: the filter let most new ids through to the store`);
    // The metric says the same: what was asked, and what the filter spared.
    assert.equal(lookupsCounted.get('looked_up'), asked);
    assert.equal((lookupsCounted.get('looked_up') ?? 0) + (lookupsCounted.get('ruled_out') ?? 0), 3000);
  });

  it('is one filter per hold on the directory: shared while any storage is open, made anew after all were closed', async () => {
    assert.ok(leases[0] !== undefined && leases[1] !== undefined && leases[0] !== leases[1], `a new hold after the restart: ${leases.join(' → ')}`);
    const storage = requireStorage(rt!).storage;
    const options = { capacity: 100_000, horizonMs: 96 * 3_600_000 };
    const other = await openStorage(setup.config.clickhouse, setup.dataDir);
    try {
      assert.equal(other.lease, storage.lease, 'two storages open together share the hold');
      const a = storedIdsFor(storage, options, log)!;
      const b = storedIdsFor(other, options, log)!;
      const id = `shared-${randomUUID()}`;
      await waitFor('the shared filter to be read in', () => a.ready && b.ready);
      assert.equal(a.mightContain(id), false);
      assert.equal(b.addAndTell(id), false, 'a new id: not in the store');
      assert.equal(a.mightContain(id), true, 'an id one ingest adds is seen by the other');
      assert.equal(a.addAndTell(id), true);
      a.release();
      b.release();
    } finally {
      await other.close();
    }
    assert.equal(storedIdsFor({ ...storage, lease: undefined }, options, log), undefined, 'no filter for a server');
    // An ingest of the process on this hold without a filter writes ids no filter learns: any other one there must
    // look every id up from then on.
    const withFilter = storedIdsFor(storage, options, log)!;
    await waitFor('a new filter to be read in', () => withFilter.ready);
    const unseen = `unseen-${randomUUID()}`;
    assert.equal(withFilter.mightContain(unseen), false);
    assert.equal(storedIdsFor(storage, { ...options, capacity: 0 }, log), undefined, 'none when set to 0');
    assert.equal(withFilter.ready, false, 'a filter beside an ingest without one is not used');
    assert.equal(withFilter.mightContain(unseen), true);
    withFilter.release();
    const next = storedIdsFor(storage, options, log)!;
    assert.equal(next.ready, false, 'nor one made later on the same hold');
    next.release();
  });

  it('reads the stored ids again after a failed read, through a storage still in use, and is used once it has', async () => {
    const storage = requireStorage(rt!).storage;
    const scans: string[] = [];
    let firstClosed = false;
    // The real engine under a hold of its own (the runtime's has an ingest without a filter by now). The first
    // ingest's scan is refused, then it stops and its storage is closed; the second's storage works.
    const lease = `flaky-${randomUUID()}`;
    const first: Storage = {
      ...storage,
      lease,
      command: async (sql, params, settings) => {
        if (!/INTO OUTFILE/.test(sql)) return storage.command(sql, params, settings);
        scans.push('first');
        throw new Error(firstClosed ? 'injected: this storage is closed' : 'injected: the scan was refused');
      },
    };
    const second: Storage = {
      ...storage,
      lease,
      command: async (sql, params, settings) => {
        if (/INTO OUTFILE/.test(sql)) scans.push('second');
        return storage.command(sql, params, settings);
      },
    };
    const options = { capacity: 100_000, horizonMs: 96 * 3_600_000, loadRetryMs: 300 };
    const a = storedIdsFor(first, options, log)!;
    const b = storedIdsFor(second, options, log)!;
    assert.equal(b.ready, false);
    assert.equal(b.mightContain(`never-${randomUUID()}`), true, 'every id a "maybe" until it has read the store');
    await waitFor('the first read to be refused', () => scans.length > 0, 30_000, 10);
    a.release();
    firstClosed = true;
    await waitFor('the filter to be read in on a second try', () => b.ready, 30_000, 50);
    assert.deepEqual(scans, ['first', 'second'], 'the retry went through the storage still in use');
    for (const e of firstRun.slice(0, 50)) assert.equal(b.mightContain(e.cdr_id), true, 'a stored id');
    assert.equal(b.mightContain(`never-${randomUUID()}`), false, 'an id never stored is ruled out');
    b.release();
  });
});
