/**
 * Exactly once by cdr_id, whatever the partition: copies of stored records sent again under other keys (so other
 * partitions), copies that arrive on two partitions in the same moment, copies sent after an ingest restart, and
 * every record read again after an operator rewound the group are each counted `duplicate` — not stored, not
 * published again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Kafka, type Message } from 'kafkajs';
import type { CdrEvent } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { assertNoGapNoRepeat } from '../../support/integrity.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;
const PARTITIONS = 4;

describe('duplicates by cdr_id on any partition', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: String(PARTITIONS), CDR_INGEST_MAX_BATCH: '400' });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  const gen = new TrafficGenerator({ seed: 77, scenario: 'normal', startTime: Date.now() - 1_800_000, ratePerSecond: 20 });
  const originals: CdrEvent[] = gen.take(2000);
  let duplicatesSent = 0;
  let handled = 0;
  let restartedDuplicates = 0;
  /** Every message on the raw topic: the originals, the re-keyed copies, both twins, the late copies. */
  const messagesSent = (): number => 2000 + 500 + 2 * 200 + 300;

  const send = async (messages: Message[]): Promise<void> => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages });
    await producer.disconnect();
  };
  const settled = (n: number): Promise<void> =>
    waitFor(`${n} records handled`, () => {
      const s = ingest.stats;
      return s.stored + s.late + s.duplicate + s.dlq >= n;
    });

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('warn') });
    kafka = requireKafka(rt);
    ingest = createIngest(rt);
    await ingest.start();
    // Originals, keyed by cdr_id.
    await send(originals.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })));
    handled += originals.length;
    await settled(handled);

    // 1. Copies re-keyed, so they land on other partitions than their originals.
    const rekeyed = originals.slice(0, 500).map((e, i) => ({ key: `other-key-${i}`, value: encodeCdrEvent(e), partition: i % PARTITIONS }));
    await send(rekeyed);
    duplicatesSent += rekeyed.length;
    handled += rekeyed.length;
    await settled(handled);

    // 2. New records that arrive twice in one produce call, once on each of two different partitions.
    const twins = gen.take(200);
    await send(
      twins.flatMap((e, i) => [
        { key: e.cdr_id, value: encodeCdrEvent(e), partition: i % PARTITIONS },
        { key: `${e.cdr_id}-twin`, value: encodeCdrEvent(e), partition: (i + 1) % PARTITIONS },
      ]),
    );
    originals.push(...twins);
    duplicatesSent += twins.length;
    handled += 2 * twins.length;
    await settled(handled);

    // 3. After a restart (a new ingest instance on the same data): older copies again, on every partition.
    await ingest.stop();
    ingest = createIngest(rt);
    await ingest.start();
    const after = originals.slice(1000, 1300).map((e, i) => ({ key: `late-copy-${i}`, value: encodeCdrEvent(e), partition: (i + 2) % PARTITIONS }));
    await send(after);
    duplicatesSent += after.length;
    await waitFor('the restarted ingest to handle the copies', () => ingest.stats.duplicate >= after.length);
    restartedDuplicates = ingest.stats.duplicate;

    // 4. An operator rewinds the group to the start (found from outside: records read again were stored, counted
    // and published again): every message is read again, and each is a copy.
    await ingest.stop();
    const admin = kafka.admin();
    await admin.connect();
    await admin.resetOffsets({ groupId: setup.config.ingest.groupId, topic: setup.config.kafka.topics.raw, earliest: true });
    await admin.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('the rewound ingest to read every message again', () => ingest.stats.duplicate + ingest.stats.stored >= messagesSent());
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('stores every cdr_id exactly once', async () => {
    await assertNoGapNoRepeat(
      requireStorage(rt).storage,
      'cdr',
      'cdr_id',
      originals.map((e) => e.cdr_id),
    );
  });

  it('counts each copy as a duplicate', () => {
    // The first instance counted the re-keyed copies and the twins; the restarted one counted the late copies.
    assert.equal(restartedDuplicates, 300);
    assert.equal(duplicatesSent, 500 + 200 + 300);
    // After the rewind, every message read again is a copy: nothing stored or counted stored again.
    assert.deepEqual([ingest.stats.stored, ingest.stats.late, ingest.stats.duplicate], [0, 0, messagesSent()]);
  });

  it('publishes each cdr_id once', async () => {
    const published = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    const ids = published.map((m) => String(m.headers!['cdr_id']));
    assert.equal(ids.length, originals.length, 'one event per record, none for a copy');
    assert.equal(new Set(ids).size, ids.length);
  });
});
