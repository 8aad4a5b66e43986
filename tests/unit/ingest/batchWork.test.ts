import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import pino from 'pino';
import type { CdrEvent } from '../../../services/core/cdr/cdrEvent.ts';
import { cdrEvent } from '../../support/cdrEvents.ts';
import { deriveMonthKey, generateMonthKey, type MonthKey } from '../../../services/core/pseudonym/monthKeys.ts';
import {
  CDR_SHAPE,
  cdrRowIdentity,
  Pseudonymiser,
  VAULT_SHAPE,
  vaultRowIdentity,
  type CdrRow,
  type VaultRow,
} from '../../../services/core/pseudonym/pseudonymise.ts';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';
import { monthKeyOf } from '../../../services/core/retention/retentionCalendar.ts';
import { digestOf, encodeRows } from '../../../services/platform/clickhouse/encodedRows.ts';
import { jsonCompactEachRow } from '../../../services/platform/clickhouse/storage.ts';
import { decodePseudonymised, encodeCdrEvent, encodeWith, PSEUDONYMISED_SCHEMA_ID } from '../../../services/platform/schemas/cdrCodec.ts';
import { BatchWork, type KeyGrant, type ShapedFormat, type TransformReply } from '../../../services/ingest/batchWork.ts';
import { createPrepareWork, packValues, type PrepareWork, type PrepareWorkOptions } from '../../../services/ingest/preparePool.ts';
import { sealerFor } from '../../../services/platform/keys/nativeSealer.ts';
import { unpackMessages } from '../../../services/platform/kafka/packedMessages.ts';

/** The sealer ingest takes here: native where it is built (ADR 0040), else JavaScript. */
const SEALER = sealerFor('auto', pino({ level: 'silent' }));

const now = Date.UTC(2026, 11, 2, 6);
const nov = Date.UTC(2026, 10, 20, 9);
const dec = Date.UTC(2026, 11, 1, 9);
/** Past the 12-month identifier window: stored late, without tokens. */
const old = Date.UTC(2025, 5, 3, 9);

function cdr(i: number, over: Partial<CdrEvent> = {}): CdrEvent {
  return cdrEvent({
    cdr_id: `c-${i}`,
    account_id: `acct-${i % 3}`,
    recipient: i % 2 === 0 ? '012-345 6789' : `+4915112345${String(i).padStart(3, '0')}`,
    event_time: i % 2 === 0 ? nov : dec,
    submitted_at: i % 2 === 0 ? nov : dec,
    ...over,
  });
}

const keys = new Map<string, MonthKey>([
  ['2026-11', deriveMonthKey('2026-11', 'k-nov', generateMonthKey())],
  ['2026-12', deriveMonthKey('2026-12', 'k-dec', generateMonthKey())],
]);

/** A batch as Kafka would hand it over: good records, a duplicate id, garbage, a null, an invalid and a late record. */
function batch(): (Buffer | null)[] {
  return [
    encodeCdrEvent(cdr(0)),
    Buffer.from('not avro at all'),
    encodeCdrEvent(cdr(1)),
    null,
    encodeCdrEvent(cdr(2, { currency: 'XXX-not-a-code' })),
    encodeCdrEvent(cdr(3, { event_time: old, submitted_at: old })),
    encodeCdrEvent(cdr(4)),
    encodeCdrEvent(cdr(5, { recipient: '+491511234500' })),
  ];
}

/** What the main thread did before prepare workers: the same records through a Pseudonymiser of its own. */
function expected(events: CdrEvent[], offsets: string[]): { rows: CdrRow[]; vault: VaultRow[]; published: Buffer[] } {
  const p = new Pseudonymiser(1_000);
  const rows: CdrRow[] = [];
  const vault: VaultRow[] = [];
  const seen = new Set<string>();
  const published: Buffer[] = [];
  events.forEach((e, i) => {
    const month = monthKeyOf(e.event_time);
    const key = e.event_time === old ? null : keys.get(month)!;
    const rec = p.pseudonymise(e, month, key, 1, { topic: 'cdr.raw', partition: 3, offset: offsets[i]! }, now);
    rows.push(rec.row);
    for (const v of rec.vault) {
      if (seen.has(vaultRowIdentity(v))) continue;
      seen.add(vaultRowIdentity(v));
      vault.push(v);
    }
    published.push(encodeWith(PSEUDONYMISED_SCHEMA_ID, rec.published));
  });
  return { rows, vault, published };
}

function grants(over: Partial<Record<string, KeyGrant>> = {}): [string, KeyGrant][] {
  // Copies, as a worker gets them (the work may zero what it does not keep).
  return [
    ['2026-11', over['2026-11'] === undefined ? copyOf(keys.get('2026-11')!) : over['2026-11']],
    ['2026-12', over['2026-12'] === undefined ? copyOf(keys.get('2026-12')!) : over['2026-12']],
    ['2025-06', null],
  ];
}

function copyOf(k: MonthKey): MonthKey {
  return { ...k, tokenKey: Buffer.from(k.tokenKey), vaultKey: Buffer.from(k.vaultKey) };
}

function newWork(format: ShapedFormat = 'RowBinary', ownsKeys = false): BatchWork {
  return new BatchWork({ identifierCache: 1_000, vaultRecent: 1_000, maxFutureSkewMs: 86_400_000, format, ownsKeys, sealer: SEALER });
}

function slices(bytes: Uint8Array, ends: Uint32Array): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const end of ends) {
    out.push(Buffer.from(bytes.subarray(from, end)));
    from = end;
  }
  return out;
}

describe('BatchWork (ingest per-record work, as the prepare workers run it)', () => {
  it('screens: keeps valid records in order and names every bad one by its position, code and stage', async () => {
    const work = newWork();
    const r = await work.screen({ batch: 1, values: packValues(batch()), now });
    assert.deepEqual([...r.indices], [0, 2, 5, 6, 7]);
    assert.deepEqual(r.cdrIds, ['c-0', 'c-1', 'c-3', 'c-4', 'c-5']);
    assert.deepEqual([...r.eventTimes], [nov, dec, old, nov, dec]);
    assert.deepEqual(
      r.failures.map((f) => [f.index, f.stage]),
      [
        [1, 'VALUE_CONVERTER'],
        [3, 'VALUE_CONVERTER'],
        [4, 'TRANSFORMATION'],
      ],
    );
    assert.ok(r.failures.every((f) => f.code !== undefined && f.message.length > 0));
    assert.equal(r.failures[2]!.code, 'validation_failed');
    assert.equal(work.batchesHeld, 1);
    work.release(1);
    assert.equal(work.batchesHeld, 0);
  });

  for (const format of ['RowBinary', 'JSONCompactEachRow'] as const) {
    it(`transforms the chosen records into exactly the rows, vault rows, digest and Avro of the main-thread path (${format})`, async () => {
      const work = newWork(format);
      const s = await work.screen({ batch: 7, values: packValues(batch()), now });
      assert.equal(s.cdrIds[1], 'c-1');
      // The main thread dropped c-1 as a duplicate: positions 0, 2, 3, 4 of the screened records stay.
      const chosen = Uint32Array.from([0, 2, 3, 4]);
      const offsets = ['100', '105', '106', '107'];
      const out = await work.transform({ batch: 7, chosen, offsets, topic: 'cdr.raw', partition: 3, now, keys: grants() });
      const events = [cdr(0), cdr(3, { event_time: old, submitted_at: old }), cdr(4), cdr(5, { recipient: '+491511234500' })];
      const want = expected(events, offsets);
      assert.equal(out.cdr.count, 4);
      assert.equal(out.late, 1);
      assert.equal(out.cdr.format, format);
      assert.deepEqual(Buffer.from(out.cdr.body), encodeRows(want.rows, CDR_SHAPE, format));
      assert.equal(out.cdr.digest, digestOf(want.rows, cdrRowIdentity));
      assert.deepEqual(out.cdr.offsets, { partition: 3, min: 100, max: 107 });
      // Vault: each (month, token) once, serialised as the storage takes them, with the digest of their identities.
      assert.equal(out.vault.count, want.vault.length);
      assert.deepEqual(Buffer.from(out.vault.body), encodeRows(want.vault, VAULT_SHAPE, format));
      assert.equal(out.vault.digest, digestOf(want.vault, vaultRowIdentity));
      assert.equal(new Set(want.vault.map(vaultRowIdentity)).size, want.vault.length, 'no vault row twice in one batch');
      // Published: the same Avro values, each tagged with its screened position (the main thread keys it by account).
      assert.deepEqual([...out.published.positions], [0, 2, 3, 4]);
      assert.deepEqual(slices(out.published.values, out.published.valueEnds), want.published);
      // Packed with each its key (account_id) and cdr_id header, as the main thread once made them.
      const messages = unpackMessages(out.published);
      assert.deepEqual(
        messages.map((m) => [m.key, m.headers]),
        events.map((e) => [e.account_id, { cdr_id: e.cdr_id }]),
      );
      const late = decodePseudonymised(slices(out.published.values, out.published.valueEnds)[1]!);
      assert.equal((late as { sender_token: string }).sender_token, '', 'a late record carries no token');
      assert.equal(work.batchesHeld, 0, 'a transformed batch is not kept');
    });
  }

  it('JSONCompactEachRow bodies are what the storage would have sent for the same rows', () => {
    const rows = expected([cdr(0), cdr(1)], ['1', '2']).rows;
    assert.deepEqual(encodeRows(rows, CDR_SHAPE, 'JSONCompactEachRow'), jsonCompactEachRow(rows, CDR_SHAPE));
  });

  it('refuses what it cannot do faithfully: a batch it never screened, a key of a month forgotten (both retryable)', async () => {
    const work = newWork('RowBinary', true);
    await assert.rejects(
      work.transform({ batch: 99, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: grants() }),
      (err: unknown) => err instanceof PipelineError && err.code === 'unexpected' && err.canRetry && /no screened batch 99/.test(err.message),
    );
    // A copy of a key taken before the month was destroyed reaches the work after it heard: refused, and zeroed.
    work.forgetMonth('2026-11');
    const late = copyOf(keys.get('2026-11')!);
    await work.screen({ batch: 2, values: packValues(batch()), now });
    await assert.rejects(
      work.transform({ batch: 2, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', late]] }),
      (err: unknown) => err instanceof PipelineError && err.code === 'key_destroyed' && err.canRetry,
    );
    assert.ok(
      late.tokenKey.every((b) => b === 0),
      'the refused copy is zeroed',
    );
    // Prepared again, as the loop does, with no key for that month: stored late, nothing derived.
    await work.screen({ batch: 3, values: packValues(batch()), now });
    const out = await work.transform({ batch: 3, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', null]] });
    assert.equal(out.late, 1);
    assert.equal(out.vault.count, 0);
  });

  it('keeps the key it holds when handed the same bytes again (zeroing the new copy), and a null grant writes without identifiers', async () => {
    const work = newWork('RowBinary', true);
    const first = copyOf(keys.get('2026-11')!);
    await work.screen({ batch: 1, values: packValues(batch()), now });
    const a = await work.transform({ batch: 1, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', first]] });
    const second = copyOf(keys.get('2026-11')!);
    await work.screen({ batch: 2, values: packValues(batch()), now });
    const b = await work.transform({ batch: 2, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', second]] });
    assert.equal(b.cdr.digest, a.cdr.digest, 'same tokens');
    assert.ok(
      second.tokenKey.every((v) => v === 0),
      'the second copy was not kept: zeroed',
    );
    assert.ok(
      first.tokenKey.some((v) => v !== 0),
      'the first is the one held',
    );
    await work.screen({ batch: 3, values: packValues(batch()), now });
    const without = await work.transform({
      batch: 3,
      chosen: Uint32Array.from([0, 1]),
      offsets: ['1', '2'],
      topic: 't',
      partition: 0,
      now,
      keys: grants({ '2026-11': null }),
    });
    assert.equal(without.late, 1, 'the November record is stored late');
    assert.equal(without.vault.count, 2, "only December's two identifiers reach the vault");
    assert.ok(
      first.tokenKey.every((v) => v === 0),
      'a null grant drops (and zeroes) the key held',
    );
    assert.deepEqual(work.monthsDerived, ['2026-12'], "and what was derived under it, the sealer's key schedules with it");
  });

  it('leaves out vault rows of batches said durable, and only those', async () => {
    const work = newWork();
    const all = async (batch: number): Promise<TransformReply> => {
      await work.screen({ batch, values: packValues(batch === 3 ? [encodeCdrEvent(cdr(0)), encodeCdrEvent(cdr(9))] : [encodeCdrEvent(cdr(0))]), now });
      return work.transform({
        batch,
        chosen: Uint32Array.from(batch === 3 ? [0, 1] : [0]),
        offsets: ['1', '2'].slice(0, batch === 3 ? 2 : 1),
        topic: 't',
        partition: 0,
        now,
        keys: grants(),
      });
    };
    assert.equal((await all(1)).vault.count, 2);
    // Batch 1's insert failed (never said written): its rows go again.
    assert.equal((await all(2)).vault.count, 2);
    work.written(2);
    const third = await all(3);
    assert.equal(third.vault.count, 2, "only cdr(9)'s two new identifiers (another month's sender, its recipient)");
    assert.equal(third.cdr.count, 2, 'the cdr rows are all there');
  });

  it('zeroes its own copies of a key when the month is forgotten, and never the copies it does not own', async () => {
    const own = deriveMonthKey('2026-11', 'k', generateMonthKey());
    const copy: MonthKey = { ...own, tokenKey: Buffer.from(own.tokenKey), vaultKey: Buffer.from(own.vaultKey) };
    const work = newWork('RowBinary', true);
    await work.screen({ batch: 1, values: packValues(batch()), now });
    await work.transform({ batch: 1, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', copy]] });
    work.forgetMonth('2026-11');
    assert.ok(copy.tokenKey.every((b) => b === 0) && copy.vaultKey.every((b) => b === 0), 'the worker copy is zeroed');
    assert.ok(own.tokenKey.some((b) => b !== 0));

    const ring = deriveMonthKey('2026-11', 'k', generateMonthKey());
    const inline = newWork('RowBinary', false);
    await inline.screen({ batch: 1, values: packValues(batch()), now });
    await inline.transform({ batch: 1, chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: [['2026-11', ring]] });
    inline.forgetMonth('2026-11');
    assert.ok(
      ring.tokenKey.some((b) => b !== 0),
      'the ring owns its key: inline work leaves it alone',
    );
  });

  it('a value that does not fit its column marks the rows rejected (the loop then splits the batch)', async () => {
    const work = newWork();
    await work.screen({ batch: 1, values: packValues([encodeCdrEvent(cdr(0))]), now });
    // An offset that is not a UInt64 (src_offset) cannot be written in RowBinary.
    const out = await work.transform({ batch: 1, chosen: Uint32Array.from([0]), offsets: ['-1'], topic: 't', partition: 0, now, keys: grants() });
    assert.equal(out.cdr.count, 1);
    assert.match(out.cdr.rejected ?? '', /src_offset/);
  });
});

describe('PrepareWork in worker threads', () => {
  const log = pino({ level: 'silent' });
  const pools: PrepareWork[] = [];
  after(async () => {
    for (const p of pools) await p.close();
  });
  const opts = { identifierCache: 1_000, vaultRecent: 1_000, maxFutureSkewMs: 86_400_000, format: 'RowBinary' as const };
  /** A pool of this suite's settings (closed after it), with `threads` workers and the sealer ingest would take here. */
  const poolOf = (threads: number, more: Partial<PrepareWorkOptions> = {}): PrepareWork => {
    const pool = createPrepareWork({ ...opts, log, threads, sealer: SEALER, ...more });
    pools.push(pool);
    return pool;
  };

  async function run(work: PrepareWork, partition: number, n: number): Promise<TransformReply> {
    const s = await work.screen(partition, batch(), now);
    return work.transform(s, {
      chosen: Uint32Array.from(s.indices.map((_, i) => i)).subarray(0, n),
      offsets: ['10', '11', '12', '13', '14'].slice(0, n),
      topic: 'cdr.raw',
      partition,
      now,
      keys: new Map<string, MonthKey | null>([...keys, ['2025-06', null]]),
    });
  }

  // Threads have their own nice value on Linux only: there the workers' threads are checked one by one; elsewhere the
  // pool must still work and leave the process's priority alone.
  it('runs its workers at the nice value asked for (Linux), and leaves the other threads as they were', async () => {
    const linux = process.platform === 'linux';
    const niceOf = (tid: string): number => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const threadsBefore = new Set(linux ? readdirSync('/proc/self/task') : []);
    const mainBefore = getPriority(process.pid);
    const pool = poolOf(2, { nice: 7 });
    // Each partition's slot starts its worker on first use; a screened batch means it has started and set its priority.
    const answered = [await run(pool, 0, 2), await run(pool, 1, 2)];
    assert.deepEqual(
      answered.map((a) => a.cdr.count),
      [2, 2],
    );
    if (!linux) {
      assert.equal(getPriority(process.pid), mainBefore, 'the process keeps its priority where threads cannot have their own');
      return;
    }
    const newThreads = readdirSync('/proc/self/task').filter((t) => !threadsBefore.has(t));
    const atSeven = newThreads.filter((t) => niceOf(t) === 7);
    assert.equal(atSeven.length, 2, `two worker threads at nice 7 (new threads: ${newThreads.map((t) => `${t}:${niceOf(t)}`).join(', ')})`);
    assert.equal(getPriority(process.pid), mainBefore, 'the main thread keeps its priority');
    for (const t of threadsBefore) if (existsSync(`/proc/self/task/${t}`)) assert.equal(niceOf(t), niceOf(String(process.pid)), `thread ${t} unchanged`);
  });

  it('gives byte for byte what the main thread gives (sealing in JavaScript), over several partitions and repeated batches', async () => {
    // The workers with the sealer ingest would take here (native where built, ADR 0040), the main thread with node:crypto.
    const pool = poolOf(2);
    const inline = poolOf(0, { sealer: 'js' });
    assert.equal(pool.threads, 2);
    assert.equal(inline.threads, 0);
    for (const partition of [0, 1, 2, 0]) {
      const a = await run(pool, partition, 5);
      const b = await run(inline, partition, 5);
      assert.deepEqual(Buffer.from(a.cdr.body), Buffer.from(b.cdr.body));
      assert.equal(a.cdr.digest, b.cdr.digest);
      assert.equal(a.vault.digest, b.vault.digest);
      assert.deepEqual(Buffer.from(a.vault.body), Buffer.from(b.vault.body));
      assert.deepEqual(unpackMessages(a.published), unpackMessages(b.published));
      assert.deepEqual(a.failures, b.failures);
    }
  });

  it('a month forgotten reaches every worker: a key of it handed over afterwards is refused, the other months go on', async () => {
    const pool = poolOf(2);
    await run(pool, 0, 2);
    await run(pool, 1, 2);
    pool.forgetMonth('2026-11');
    for (const partition of [0, 1]) {
      await assert.rejects(run(pool, partition, 2), (err: unknown) => err instanceof PipelineError && err.code === 'key_destroyed');
      const s = await pool.screen(partition, batch(), now);
      const out = await pool.transform(s, {
        chosen: Uint32Array.from([0, 1]),
        offsets: ['1', '2'],
        topic: 't',
        partition,
        now,
        keys: new Map<string, MonthKey | null>([
          ['2026-11', null],
          ['2026-12', keys.get('2026-12')!],
        ]),
      });
      assert.equal(out.late, 1, 'November without identifiers, December as before');
    }
  });

  it('a released batch is dropped by its worker; a batch the worker no longer has fails retryably', async () => {
    const pool = poolOf(1);
    const s = await pool.screen(0, batch(), now);
    pool.release(s);
    await assert.rejects(
      pool.transform(s, { chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: new Map([...keys]) }),
      (err: unknown) => err instanceof PipelineError && err.canRetry,
    );
    // The pool still works afterwards.
    assert.equal((await run(pool, 0, 3)).cdr.count, 3);
  });

  it('a worker that dies fails its batch in flight retryably and is replaced', async () => {
    const pool = poolOf(1);
    const s = await pool.screen(0, batch(), now);
    const worker = (pool as unknown as { slots: { worker?: { terminate(): Promise<number> } }[] }).slots[0]!.worker!;
    const transform = pool.transform(s, { chosen: Uint32Array.from([0]), offsets: ['1'], topic: 't', partition: 0, now, keys: new Map([...keys]) });
    await worker.terminate();
    await assert.rejects(transform, (err: unknown) => err instanceof PipelineError && err.canRetry);
    assert.equal((await run(pool, 0, 4)).cdr.count, 4, 'a new worker took over, and was handed the keys again');
  });
});
