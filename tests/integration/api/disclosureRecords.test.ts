/**
 * How a disclosure is put on record around its answer (services/api/disclosure/serveAnswer.ts), with the API's writes
 * held back or refused through its storage handle:
 * - the write-ahead audit entry and request row are stored before the first record leaves; if either cannot be
 *   stored, nothing is sent and the request row (if it was stored) says `failed`;
 * - the closing request row and audit entry are written after the answer's last byte, so the reader is not kept
 *   waiting on them; a receipt or audit read that follows in the same process still finds them, and shutting the API
 *   down waits for them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openStorage, storageError, type Storage } from '../../../services/platform/clickhouse/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { seedBankSms } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';

const SUBJECT = '+60123456789';

/** A gate the test opens: writes that match wait at it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

interface Rule {
  /** Which insert: its table and a look at its rows. */
  match(table: string, rows: readonly Record<string, unknown>[]): boolean;
  /** Held until this settles; a rejection refuses the insert. */
  hold: Promise<void>;
}

/** The API's storage session with inserts that a rule holds back or refuses. */
function ruledStorage(inner: Storage, rules: Rule[]): Storage {
  return {
    ...inner,
    table: (n) => inner.table(n),
    onCluster: () => inner.onCluster(),
    query: (sql, params, settings) => inner.query(sql, params, settings),
    command: (sql, params, settings) => inner.command(sql, params, settings),
    async insert(table, rows, settings, shape) {
      const plain = Array.isArray(rows) ? (rows as readonly Record<string, unknown>[]) : [];
      for (const r of rules) if (r.match(table, plain)) await r.hold;
      return inner.insert(table, rows, settings, shape);
    },
    close: () => inner.close(),
  };
}

describe('a disclosure on record: write-ahead before the answer, its end after the last byte', () => {
  const setup = testSetup();
  const now = Date.now();
  let rt: PipelineRuntime;
  let session: Storage;
  const rules: Rule[] = [];
  let api: TestApi;

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    await seedBankSms(rt, SUBJECT, { count: 4, spacingMs: 3_600_000, seed: 9, now });
    session = await openStorage(setup.config.clickhouse, setup.config.dataDir);
    api = await openTestApi(rt, { storage: ruledStorage(session, rules) });
  });

  after(async () => {
    rules.length = 0;
    await api?.close().catch(() => undefined);
    await session?.close();
    await rt?.close();
    setup.cleanup();
  });

  const ask = (caseReference: string) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/lea/requests',
      headers: auth('lea-officer'),
      payload: {
        authority: 'Test Police',
        case_reference: caseReference,
        legal_basis: 'test',
        identifier: { type: 'msisdn', value: SUBJECT },
        from: new Date(now - 86_400_000).toISOString(),
        to: new Date(now + 60_000).toISOString(),
      },
    });
  const stored = async (requestId: string) =>
    requireStorage(rt).storage.query<{ status: string; record_count: string }>(
      `SELECT status, record_count FROM ${requireStorage(rt).storage.table('disclosure_requests')} FINAL WHERE request_id = {id:String}`,
      { id: requestId },
    );
  const endsOf = async (requestId: string) => {
    const res = await api.app.inject({ method: 'GET', url: '/v1/audit?action=lea.request&limit=1000', headers: auth('auditor') });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ entries: { request_id: string; outcome: string; rows: number }[] }>().entries.filter((e) => e.request_id === requestId);
  };
  const isClosing = (table: string, rows: readonly Record<string, unknown>[]) =>
    (table === 'disclosure_requests' && rows.some((r) => r['status'] !== 'started')) ||
    (table === 'audit_log' && rows.some((r) => r['action'] === 'lea.request' && r['outcome'] !== 'started'));

  it('answers before its closing records are stored; the receipt and the audit read right after find them', { timeout: 60_000 }, async () => {
    const closing = gate();
    rules.push({ match: isClosing, hold: closing.wait });
    try {
      // Both closing writes are held: the answer still arrives whole (before, it waited for them).
      const res = await ask('REC-1');
      assert.equal(res.statusCode, 201, res.body);
      const answer = res.json<{ request_id: string; record_count: number; integrity: unknown }>();
      assert.equal(answer.record_count, 4);
      assert.ok(answer.integrity);
      assert.deepEqual(
        (await stored(answer.request_id)).map((r) => r.status),
        ['started'],
        'the closing row is not stored yet: the answer did not wait for it',
      );
      // Read while the writes are still held: each read waits for them, and so does shutting down.
      const receipt = api.app.inject({ method: 'GET', url: `/v1/lea/requests/${answer.request_id}`, headers: auth('lea-officer') });
      const ends = endsOf(answer.request_id);
      let readEarly = false;
      void Promise.race([receipt, ends]).then(() => (readEarly = true));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(readEarly, false, 'a read answered before the records it must show were stored');
      closing.open();
      const r = await receipt;
      assert.equal(r.statusCode, 200, r.body);
      const shown = r.json<{ status: string; record_count: number; integrity: unknown }>();
      assert.equal(shown.status, 'answered');
      assert.equal(shown.record_count, 4);
      assert.ok(shown.integrity, 'the receipt carries the signed block');
      assert.deepEqual(
        (await ends).map((e) => [e.outcome, e.rows]),
        [
          ['started', 0],
          ['answered', 4],
        ],
      );
    } finally {
      closing.open();
      rules.length = 0;
    }
  });

  it('sends nothing when the write-ahead audit entry cannot be stored, and closes the request row as failed', async () => {
    // As the engine refusing it would surface (a connection lost, a disk full).
    const refused = Promise.reject(
      storageError(new Error('Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space (test)'), 'insert into audit_log', true),
    );
    refused.catch(() => undefined);
    rules.push({ match: (t, rows) => t === 'audit_log' && rows.some((r) => r['outcome'] === 'started'), hold: refused });
    let res;
    try {
      res = await ask('REC-2');
    } finally {
      rules.length = 0;
    }
    assert.ok(res.statusCode >= 500 && res.statusCode < 600, `${res.statusCode} ${res.body}`);
    assert.doesNotMatch(res.body, /\+?60123456789/, 'no identifier in the error');
    const body = res.json<{ error: string; message: string; records?: unknown }>();
    assert.equal(body.records, undefined);
    assert.equal(typeof body.message, 'string');
    const rows = await requireStorage(rt).storage.query<{ status: string; case_reference: string }>(
      `SELECT status, case_reference FROM ${requireStorage(rt).storage.table('disclosure_requests')} FINAL WHERE case_reference = 'REC-2'`,
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['failed'],
      'the request row stored beside the refused entry says failed, not started',
    );
  });

  it('shutting the API down waits for the closing records of an answer that just ended', { timeout: 60_000 }, async () => {
    const closing = gate();
    rules.push({ match: isClosing, hold: closing.wait });
    const res = await ask('REC-3');
    assert.equal(res.statusCode, 201, res.body);
    const id = res.json<{ request_id: string }>().request_id;
    let closed = false;
    const closingApi = api.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(closed, false, 'the API closed with an answer’s end still unrecorded');
    closing.open();
    await closingApi;
    rules.length = 0;
    assert.deepEqual(
      (await stored(id)).map((r) => [r.status, Number(r.record_count)]),
      [['answered', 4]],
    );
  });
});
