import { PipelineError } from '../errors/pipelineError.ts';

/**
 * Money is integer micro-units in JavaScript numbers, exact up to 2^53 − 1 (9,007,199,254.740991 major units). A figure
 * beyond that would come out silently rounded (found from outside: eleven records of 999,999,999.999999 VND summed to
 * …988, not …989), and a sum past Int64 wrapped to a negative total. Sums are taken in Int128 by the engine, and every
 * figure is checked here: one that cannot be given exactly is refused with a clear error, never rounded.
 */
export const MAX_EXACT_MICROS = Number.MAX_SAFE_INTEGER;

/** The message of a figure that cannot be given exactly; `what` names it (never a value). */
export function beyondExactRange(what: string): string {
  return `${what}: beyond ±${MAX_EXACT_MICROS} micro-units (±9,007,199,254.740991 in major units), which this release cannot give exactly; nothing was rounded`;
}

/** A money figure (a number, or the digits the engine gave) as a number, or `amount_out_of_range`. */
export function exactMicros(value: unknown, what: string): number {
  if (typeof value === 'string' || typeof value === 'bigint') {
    const text = String(value);
    if (!/^-?\d{1,40}$/.test(text)) throw new PipelineError('invariant_broken', `${what}: not an integer`);
    const big = BigInt(text);
    if (big > BigInt(MAX_EXACT_MICROS) || big < -BigInt(MAX_EXACT_MICROS)) throw new PipelineError('amount_out_of_range', beyondExactRange(what));
    return Number(big);
  }
  // A number parsed from the engine's digits: one at or past 2^53 is no longer what the engine summed.
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new PipelineError('amount_out_of_range', beyondExactRange(what));
  return value;
}

/** `a + b` of two exact figures, or `amount_out_of_range`. */
export function addMicros(a: number, b: number, what: string): number {
  return exactMicros(a + b, what);
}
