import { internationalGroupsOf, numberTypeOfParsed, type ParsedPhone } from './numberPlan.ts';

/**
 * Number ranges and number types: what billing rates by and fraud rules key on, without the number itself.
 *
 * The range of a phone number is its country calling code followed by its national destination code (the area
 * or network code), cut so that at least the last four digits of the national number stay out of it: every
 * range therefore covers at least 10,000 possible numbers and never identifies one subscriber. The national
 * destination code is read the way libphonenumber's `getLengthOfNationalDestinationCode` reads it: the first
 * group after the country code in the number's international format (`+60 17-765 4321` → `17`), or none when
 * the international format has a single group after the country code (the range is then the country code).
 *
 *   +60 17-765 4321   → 6017
 *   +1 415-555-0123   → 1415
 *   +65 9123 4567     → 659123 (Singapore has no area codes: the first group, cut to leave 4 digits)
 *   +44 20 7946 0958  → 4420
 */
export const RANGE_HIDDEN_DIGITS = 4;

export function numberRangeOf(n: ParsedPhone): string {
  const national = String(n.nationalNumber);
  const groups = internationalGroupsOf(n);
  // A national destination code exists when two or more groups follow the country calling code.
  const ndcLength = groups.length >= 2 ? groups[0]!.length : 0;
  const keep = Math.max(0, Math.min(ndcLength, national.length - RANGE_HIDDEN_DIGITS));
  return `${n.countryCallingCode}${national.slice(0, keep)}`;
}

/** The phone library's number type, lower-cased (`mobile`, `fixed_line`, `premium_rate`, `toll_free`, …), or ''. */
export function numberTypeOf(n: ParsedPhone): string {
  return numberTypeOfParsed(n)?.toLowerCase() ?? '';
}
