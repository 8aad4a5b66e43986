import { Readable } from 'node:stream';
import {
  answerWriter,
  isIdentifierType,
  normaliseIdentifier,
  RecordDigester,
  signAnswer,
  type AnswerFormat,
  type AnswerIntegrity,
  type AnswerSigner,
} from '../../core/index.ts';
import type { DisclosedParty } from '../../platform/audit/index.ts';
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
  /** Records the answer gave out: all of them once answered; before a failure or an abort, those of the pages sent. */
  readonly recordCount: number;
  /** Why a failed answer stopped (for the log: found from outside, a failure part-way left no line anywhere). */
  readonly error?: unknown;
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
  /**
   * Law-enforcement answers: called with each page's parties (`partiesOf`) before the page leaves, so what was
   * disclosed about them is on record first; a failure fails the answer there.
   */
  readonly recordParties?: {
    readonly subject: DisclosedParty;
    /** Parties seen for the first time in this answer, with their records in the page: awaited before it leaves. */
    readonly record: (parties: DisclosedParty[]) => Promise<void>;
    /** A failure to record, at the answer's end, the records of parties in later pages (those records have left). */
    readonly onLateFailure: (err: unknown) => void;
  };
}

const E164 = /^\+[1-9]\d{6,14}$/;

/**
 * The parties of these records that are people's numbers or addresses, other than `subject`, each with the number of
 * these records it is a party of: whom an answer about `subject` also discloses, and how much. Read as ingest reads
 * them (`normaliseIdentifier`): a person's number sent as an alphanumeric sender id is that person's msisdn, as a data-
 * subject export looks it up; a brand name or a shortcode is no one's.
 */
export function partiesOf(
  records: readonly { sender: string; sender_type: string; recipient: string; recipient_type: string; destination_country: string | null }[],
  subject: DisclosedParty,
): DisclosedParty[] {
  const counts = new Map<string, { type: string; value: string; records: number }>();
  const consider = (type: string, value: string, country: string | null, mark: Set<string>): void => {
    if (value === '' || !isIdentifierType(type)) return;
    // Restored values are stored normalised: an international number or an address given as such needs no new reading.
    const id =
      (type === 'msisdn' && E164.test(value)) || (type === 'email' && value.includes('@')) ? { type, value } : normaliseIdentifier(value, type, country);
    if ((id.type !== 'msisdn' && id.type !== 'email') || (id.type === subject.type && id.value === subject.value)) return;
    const k = `${id.type}\u0000${id.value}`;
    // A record from someone to themselves counts once.
    if (mark.has(k)) return;
    mark.add(k);
    const seen = counts.get(k);
    if (seen) seen.records++;
    else counts.set(k, { type: id.type, value: id.value, records: 1 });
  };
  for (const r of records) {
    const mark = new Set<string>();
    consider(r.sender_type, r.sender, r.destination_country, mark);
    consider(r.recipient_type, r.recipient, r.destination_country, mark);
  }
  return [...counts.values()];
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
    let failure: unknown;
    /** Records of the pages handed to the stream (a page's records are digested before its parties are on record). */
    let sent = 0;
    try {
      yield writer.open(opts.header);
      const pages = opts.desk.pages(opts.plan, (m) => months.push(m));
      const parties = opts.recordParties;
      /** Parties given out so far, with their records after the page that first gave them out. */
      const partiesSeen = new Map<string, { type: string; value: string; records: number }>();
      try {
        let next = pages.next();
        for (;;) {
          const step = await next;
          if (step.done) break;
          const page = step.value;
          // A party is on record (an insert) the first time a page gives it out; its records in later pages are
          // counted here and written at the end. Found in review: an insert of every page's parties made an answer
          // of 200,000 records from 2,000 people 30-60% slower; now only pages with someone new pay it.
          let recording: Promise<void> | undefined;
          if (parties) {
            const fresh: DisclosedParty[] = [];
            for (const p of partiesOf(page, parties.subject)) {
              const k = `${p.type}\u0000${p.value}`;
              const known = partiesSeen.get(k);
              if (known) known.records += p.records ?? 0;
              else {
                partiesSeen.set(k, { type: p.type, value: p.value, records: 0 });
                fresh.push(p);
              }
            }
            if (fresh.length > 0) recording = parties.record(fresh);
          }
          // The next page is read while this one's parties are recorded (an insert per page: found in review to add
          // 20-45% to a 200,000-record answer when awaited alone); awaited (or failed) in the next round.
          next = pages.next();
          next.catch(() => undefined);
          let chunk = '';
          for (const record of page) {
            const r = record as unknown as Record<string, unknown>;
            chunk += writer.record(digester.add(r), r);
          }
          // Nothing of the page leaves before its parties are on record.
          if (recording) await recording;
          yield chunk;
          sent += page.length;
        }
      } finally {
        await pages.return(undefined);
        if (parties) {
          const later = [...partiesSeen.values()].filter((p) => p.records > 0);
          if (later.length > 0) await parties.record(later).catch(parties.onLateFailure);
        }
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
      if (status === 'failed') failure = err;
      throw err;
    } finally {
      // Found from outside: a failure before a page left said `record_count: 1` in the receipt, though none had.
      const recordCount = status === 'answered' ? digester.recordCount : sent;
      await end({ status, recordCount, months, integrity, ...(failure === undefined ? {} : { error: failure }) });
    }
  }
  const stream = Readable.from(body(), { objectMode: false, highWaterMark: 64 * 1024 });
  // A client gone before the first read: the generator never started, so its `finally` never runs (its return()
  // completes it without entering the body). The stream's close says so instead; onEnd logs its own failures.
  stream.once('close', () => void end({ status: 'aborted', recordCount: 0, months: [], integrity: null }).catch(() => undefined));
  return stream;
}
