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
