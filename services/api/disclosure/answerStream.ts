import { Readable } from 'node:stream';
import { answerWriter, RecordDigester, signAnswer, type AnswerFormat, type AnswerIntegrity, type AnswerSigner } from '../../core/index.ts';
import { expiredMonthsOf, type AnswerPlan, type DisclosureDesk, type MonthAnswer } from './disclosureDesk.ts';

/**
 * An answer as a byte stream: the header members, the records page by page (each digested as it goes), then the
 * months as answered, the record count and the signed integrity block. Memory stays bounded by one page whatever
 * the answer's size, and the stream honours back-pressure (a slow reader slows the reads, never fills memory).
 * `onEnd` always runs once, with how the answer ended: `answered`, `failed` (a read failed) or `aborted` (the client
 * went away first).
 */
export interface AnswerOutcome {
  readonly status: 'answered' | 'failed' | 'aborted';
  readonly recordCount: number;
  readonly months: MonthAnswer[];
  readonly integrity: AnswerIntegrity | null;
}

export interface AnswerStreamOptions {
  readonly format: AnswerFormat;
  /** Members before `records`; `answered_at` among them. */
  readonly header: Readonly<Record<string, unknown>>;
  readonly plan: AnswerPlan;
  readonly desk: DisclosureDesk;
  readonly signer: AnswerSigner;
  readonly clock: () => number;
  readonly onEnd: (outcome: AnswerOutcome) => Promise<void>;
}

export function answerStream(opts: AnswerStreamOptions): Readable {
  let ended = false;
  const end = (outcome: AnswerOutcome): Promise<void> => {
    if (ended) return Promise.resolve();
    ended = true;
    return opts.onEnd(outcome);
  };
  async function* body(): AsyncGenerator<string> {
    const writer = answerWriter(opts.format);
    const digester = new RecordDigester();
    const months: MonthAnswer[] = [];
    let status: AnswerOutcome['status'] = 'aborted';
    let integrity: AnswerIntegrity | null = null;
    try {
      yield writer.open(opts.header);
      for await (const page of opts.desk.pages(opts.plan, (m) => months.push(m))) {
        let chunk = '';
        for (const record of page) {
          const r = record as unknown as Record<string, unknown>;
          chunk += writer.record(digester.add(r), r);
        }
        yield chunk;
      }
      const trailer = {
        months,
        expired_months: expiredMonthsOf(months),
        record_count: digester.recordCount,
      };
      integrity = signAnswer({ ...opts.header, ...trailer }, digester.finish(), opts.signer, new Date(opts.clock()).toISOString());
      yield writer.close(trailer, integrity);
      status = 'answered';
    } catch (err) {
      // Thrown in at a `yield` because the reader destroyed the stream (a client gone mid-answer): aborted, not failed.
      status = stream.destroyed ? 'aborted' : 'failed';
      throw err;
    } finally {
      await end({ status, recordCount: digester.recordCount, months, integrity });
    }
  }
  const stream = Readable.from(body(), { objectMode: false, highWaterMark: 64 * 1024 });
  // A client gone before the first read: the generator never started, so its `finally` never runs (its return()
  // completes it without entering the body). The stream's close says so instead; onEnd logs its own failures.
  stream.once('close', () => void end({ status: 'aborted', recordCount: 0, months: [], integrity: null }).catch(() => undefined));
  return stream;
}
