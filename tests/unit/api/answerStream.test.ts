/**
 * How an answer stream ends is recorded exactly once, however it ends — including a client gone before the first
 * byte (found from outside: `curl -m 0.5` left the disclosure "started" forever, with no closing audit entry).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { once } from 'node:events';
import { keyIdOf, type AnswerSigner } from '../../../services/core/index.ts';
import { answerStream, type AnswerOutcome } from '../../../services/api/disclosure/answerStream.ts';
import type { AnswerPlan, DisclosureDesk, MonthAnswer } from '../../../services/api/disclosure/disclosureDesk.ts';

function signer(): AnswerSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { keyId: keyIdOf(der), publicKey: der.toString('base64'), sign: (d) => sign(null, d, privateKey) };
}

/** A desk that answers one month with `pages` pages of `n` records. */
function desk(n: number, pages: number): DisclosureDesk {
  return {
    async *pages(_plan: AnswerPlan, onMonth: (m: MonthAnswer) => void) {
      onMonth({ month: '2026-11', status: 'answered', records: n * pages } as unknown as MonthAnswer);
      for (let p = 0; p < pages; p++) yield Array.from({ length: n }, (_, i) => ({ cdr_id: `c-${p}-${i}`, event_time: '2026-11-01T00:00:00.000Z' }));
    },
  } as unknown as DisclosureDesk;
}

function open(n: number, outcomes: AnswerOutcome[], pages = 1) {
  return answerStream({
    format: 'json',
    header: { request_id: 'r-1', answered_at: '2026-12-04T00:00:00.000Z' },
    plan: {} as AnswerPlan,
    desk: desk(n, pages),
    signer: signer(),
    clock: () => Date.UTC(2026, 11, 4),
    onEnd: async (o) => {
      outcomes.push(o);
    },
  });
}

describe('answer stream: how it ended, recorded once', () => {
  it('answered: read to the end', async () => {
    const outcomes: AnswerOutcome[] = [];
    let text = '';
    for await (const chunk of open(3, outcomes)) text += String(chunk);
    await new Promise((r) => setImmediate(r));
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]!.status, 'answered');
    assert.equal(outcomes[0]!.recordCount, 3);
    assert.equal((JSON.parse(text) as { record_count: number }).record_count, 3);
  });

  it('failed: a read of the store failed mid-answer', async () => {
    const outcomes: AnswerOutcome[] = [];
    const stream = answerStream({
      format: 'json',
      header: { request_id: 'r-2', answered_at: '2026-12-04T00:00:00.000Z' },
      plan: {} as AnswerPlan,
      desk: {
        // eslint-disable-next-line require-yield
        async *pages() {
          throw new Error('engine away');
        },
      } as unknown as DisclosureDesk,
      signer: signer(),
      clock: () => Date.UTC(2026, 11, 4),
      onEnd: async (o) => {
        outcomes.push(o);
      },
    });
    await assert.rejects(async () => {
      for await (const chunk of stream) assert.ok(chunk);
    }, /engine away/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['failed'],
    );
  });

  it('aborted: the client went away before the first read', async () => {
    const outcomes: AnswerOutcome[] = [];
    const stream = open(3, outcomes);
    stream.destroy();
    await once(stream, 'close');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      outcomes.map((o) => [o.status, o.recordCount]),
      [['aborted', 0]],
    );
  });

  it('aborted: the client went away after the first bytes', async () => {
    const outcomes: AnswerOutcome[] = [];
    // Larger than the stream's buffer (64 KiB), so the answer is still being produced when the reader leaves.
    const stream = open(1_000, outcomes, 50);
    for await (const chunk of stream) {
      assert.ok(String(chunk).length > 0);
      break; // leaves the loop: the stream is destroyed mid-answer
    }
    await new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
    await new Promise((r) => setImmediate(r));
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]!.status, 'aborted');
  });
});

describe('answer stream: the parties it gives out, on record before they leave', () => {
  /** Pages of records from `senders` people in turn to the subject. */
  function partyDesk(pages: readonly (readonly string[])[], sent: string[][]): DisclosureDesk {
    return {
      async *pages() {
        for (const [p, senders] of pages.entries()) {
          sent.push([`page ${p} read`]);
          yield senders.map((s, i) => ({
            cdr_id: `c-${p}-${i}`,
            event_time: '2026-11-01T00:00:00.000Z',
            sender: s,
            sender_type: 'msisdn',
            recipient: '+60198765432',
            recipient_type: 'msisdn',
            destination_country: 'MY',
          }));
        }
      },
    } as unknown as DisclosureDesk;
  }

  it("failed: recording a page's parties failed, so nothing of the page left: 0 records given out, and the cause passed on", async () => {
    const outcomes: AnswerOutcome[] = [];
    const stream = answerStream({
      format: 'json',
      header: { request_id: 'r-k', answered_at: '2026-12-04T00:00:00.000Z' },
      plan: {} as AnswerPlan,
      desk: partyDesk([['+60111111111', '+60198765432']], []),
      signer: signer(),
      clock: () => Date.UTC(2026, 11, 4),
      onEnd: async (o) => {
        outcomes.push(o);
      },
      recordParties: {
        subject: { type: 'msisdn', value: '+60198765432' },
        record: () => Promise.reject(new Error('no month key of 2026-12')),
        onLateFailure: () => undefined,
      },
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += String(chunk);
    }, /no month key/);
    await new Promise((r) => setImmediate(r));
    assert.equal(outcomes.length, 1);
    // Found from outside: the receipt said record_count 1 though the answer stopped at `"records":[`.
    assert.equal(outcomes[0]!.status, 'failed');
    assert.equal(outcomes[0]!.recordCount, 0);
    assert.match(String(outcomes[0]!.error), /no month key of 2026-12/);
    assert.ok(!text.includes('+60111111111'));
  });

  it('records a party when a page first gives it out, before that page leaves, and its later records at the end', async () => {
    const log: string[][] = [];
    const recorded: { type: string; value: string; records?: number }[][] = [];
    const stream = answerStream({
      format: 'ndjson',
      header: { request_id: 'r-p', answered_at: '2026-12-04T00:00:00.000Z' },
      plan: {} as AnswerPlan,
      desk: partyDesk(
        [
          ['+60111111111', '+60111111111', '+60122222222'],
          ['+60111111111', '+60198765432'],
          ['+60133333333', '+60122222222'],
        ],
        log,
      ),
      signer: signer(),
      clock: () => Date.UTC(2026, 11, 4),
      onEnd: async () => undefined,
      recordParties: {
        subject: { type: 'msisdn', value: '+60198765432' },
        record: async (parties) => {
          log.push(['recorded', ...parties.map((p) => `${p.value}×${p.records}`)]);
          recorded.push(parties);
        },
        onLateFailure: (err) => assert.fail(String(err)),
      },
    });
    let records = 0;
    for await (const chunk of stream) {
      for (const line of String(chunk).split('\n')) if (line.includes('"cdr_id"')) records++;
      log.push([`sent, ${records} records so far`]);
    }
    assert.deepEqual(
      log.filter((l) => l[0] === 'recorded'),
      [
        ['recorded', '+60111111111×2', '+60122222222×1'],
        ['recorded', '+60133333333×1'],
        ['recorded', '+60111111111×1', '+60122222222×1'],
      ],
    );
    // Each page's new parties are recorded before any of its records is sent.
    const firstSent = log.findIndex((l) => l[0]!.startsWith('sent') && l[0] !== 'sent, 0 records so far');
    assert.ok(log.findIndex((l) => l[0] === 'recorded') < firstSent);
    // Summed, what a data-subject export would read: each party's records in the whole answer.
    const sums = new Map<string, number>();
    for (const p of recorded.flat()) sums.set(p.value, (sums.get(p.value) ?? 0) + (p.records ?? 0));
    assert.deepEqual(Object.fromEntries(sums), { '+60111111111': 3, '+60122222222': 2, '+60133333333': 1 });
  });
});
