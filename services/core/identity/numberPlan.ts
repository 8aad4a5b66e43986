import { Metadata, type PhoneNumber } from 'libphonenumber-js/max';

/**
 * A parsed number's type and international grouping, computed as libphonenumber-js computes them (`getType()`,
 * `formatInternational()`), from the same metadata, with its regular expressions compiled once.
 *
 * Why: the library builds a `new RegExp('^(?:' + pattern + ')$')` from the metadata's pattern text on every test, a
 * new `Metadata` and new `Format` objects on every call, and the patterns of the `max` metadata run to kilobytes. For
 * a subscriber never seen before (one-time passwords: most records) type and grouping were ~8 µs of the ~20 µs that
 * normalising a number cost (benchmarks/stages.ts). Here each country's plan is read from the library's own metadata
 * accessors once, and each pattern compiled once; the rules below are the library's, step for step (1.13:
 * helpers/getNumberType.js, format.js `chooseFormatForNumber`, helpers/formatNationalNumberUsingFormat.js).
 * numberPlan.test.ts compares both answers with the library's for numbers of every country and type.
 */

const NON_FIXED_LINE_TYPES = ['MOBILE', 'PREMIUM_RATE', 'TOLL_FREE', 'SHARED_COST', 'VOIP', 'PERSONAL_NUMBER', 'PAGER', 'UAN', 'VOICEMAIL'] as const;

/** The parts of the library's metadata classes read here; its typings do not declare them. */
interface TypeDefinition {
  pattern(): string;
  possibleLengths(): number[] | undefined;
}
interface FormatDefinition {
  pattern(): string;
  leadingDigitsPatterns(): string[];
  internationalFormat(): string;
}
interface MetadataAccess {
  selectNumberingPlan(countryOrCallingCode: string): void;
  nationalNumberPattern(): string;
  type(type: string): TypeDefinition | undefined;
  formats(): FormatDefinition[];
  hasCallingCode(callingCode: string): boolean;
  getCountryCodesForCallingCode(callingCode: string): string[] | undefined;
  nationalPrefixForParsing(): string | undefined;
  nationalPrefixTransformRule(): string | undefined;
  leadingDigits(): string | undefined;
  IDDPrefix(): string | undefined;
  possibleLengths(): number[] | undefined;
  countryCallingCode(): string;
}

/** What normalisation reads of a parsed number: the library's `PhoneNumber`, or the E.164 fast path's answer. */
export interface ParsedPhone {
  /** E.164: `+`, the calling code, the national (significant) number. */
  readonly number: string;
  readonly countryCallingCode: string;
  readonly nationalNumber: string;
  /** The country, or undefined for a non-geographic number or one no country of its calling code claims. */
  readonly country?: string | undefined;
}

interface TypeRule {
  readonly type: string;
  readonly lengths: readonly number[] | undefined;
  readonly whole: RegExp;
}

interface FormatRule {
  /** The last leading-digits pattern, unanchored (the library's `search(…) === 0`). */
  readonly leading: RegExp | undefined;
  readonly whole: RegExp;
  /** The pattern unanchored, for the replacement (the library's `new RegExp(format.pattern())`). */
  readonly groups: RegExp;
  readonly international: string;
}

interface Plan {
  readonly nationalNumber: RegExp;
  readonly fixedLine: TypeRule | undefined;
  /** How a fixed-line match is told from mobile: no mobile type, an empty mobile pattern (a duplicate removed), or a rule. */
  readonly mobile: TypeRule | 'absent' | 'same-as-fixed-line';
  readonly others: readonly TypeRule[];
  readonly formats: readonly FormatRule[];
}

const compiled = new Map<string, RegExp>();
function regex(source: string): RegExp {
  let r = compiled.get(source);
  if (r === undefined) compiled.set(source, (r = new RegExp(source)));
  return r;
}
const whole = (pattern: string): RegExp => regex(`^(?:${pattern})$`);

function typeRule(metadata: MetadataAccess, type: string): TypeRule | undefined {
  const t = metadata.type(type);
  // The library: a type without a definition or with an empty pattern never matches.
  if (!t || !t.pattern()) return undefined;
  return { type, lengths: t.possibleLengths(), whole: whole(t.pattern()) };
}

const plans = new Map<string, Plan | null>();
function planOf(countryOrCallingCode: string): Plan | null {
  let plan = plans.get(countryOrCallingCode);
  if (plan !== undefined) return plan;
  const metadata = new Metadata() as unknown as MetadataAccess;
  try {
    metadata.selectNumberingPlan(countryOrCallingCode);
    const mobile = metadata.type('MOBILE');
    plan = {
      nationalNumber: whole(metadata.nationalNumberPattern()),
      fixedLine: typeRule(metadata, 'FIXED_LINE'),
      mobile: !mobile ? 'absent' : mobile.pattern() === '' ? 'same-as-fixed-line' : (typeRule(metadata, 'MOBILE') ?? 'absent'),
      others: NON_FIXED_LINE_TYPES.map((t) => typeRule(metadata, t)).filter((r): r is TypeRule => r !== undefined),
      formats: metadata.formats().map((f) => {
        const leading = f.leadingDigitsPatterns();
        const last = leading.length > 0 ? leading[leading.length - 1] : undefined;
        return {
          leading: last === undefined ? undefined : regex(last),
          whole: whole(f.pattern()),
          groups: regex(f.pattern()),
          international: f.internationalFormat(),
        };
      }),
    };
  } catch {
    plan = null; // a country or calling code the metadata does not know
  }
  plans.set(countryOrCallingCode, plan);
  return plan;
}

function matches(rule: TypeRule, nationalNumber: string): boolean {
  if (rule.lengths && !rule.lengths.includes(nationalNumber.length)) return false;
  return rule.whole.test(nationalNumber);
}

const isLibraryNumber = (n: ParsedPhone): n is PhoneNumber => typeof (n as Partial<PhoneNumber>).getType === 'function';

/** `n.getType()`: the number's type by its plan (`MOBILE`, `FIXED_LINE_OR_MOBILE`, …), or undefined when it is not valid. */
export function numberTypeOfParsed(n: ParsedPhone): string | undefined {
  const key = n.country || n.countryCallingCode;
  if (!key) return undefined;
  const plan = planOf(key);
  if (plan === null) return isLibraryNumber(n) ? n.getType() : undefined; // let the library answer (and fail) as it does
  return typeByPlan(plan, n.nationalNumber || '');
}

/** The library's `getNumberType` for a national number under one plan. */
function typeByPlan(plan: Plan, nationalNumber: string): string | undefined {
  if (!plan.nationalNumber.test(nationalNumber)) return undefined;
  if (plan.fixedLine && matches(plan.fixedLine, nationalNumber)) {
    if (plan.mobile === 'absent' || plan.mobile === 'same-as-fixed-line' || matches(plan.mobile, nationalNumber)) return 'FIXED_LINE_OR_MOBILE';
    return 'FIXED_LINE';
  }
  for (const rule of plan.others) if (matches(rule, nationalNumber)) return rule.type;
  return undefined;
}

/**
 * The digit groups of `n.formatInternational()` after the country calling code: `+60 17-765 4321` → `['17', '765',
 * '4321']`. Separators do not matter here, so the library's separator styling is not repeated.
 */
export function internationalGroupsOf(n: ParsedPhone): string[] {
  const nationalNumber = n.nationalNumber;
  // The library formats by the country, or by the calling code for a non-geographic number (its `country` is
  // undefined; the library also treats the pseudo-region '001' so, which the typings do not name).
  const country: string | undefined = n.country;
  const key = country && country !== '001' ? country : n.countryCallingCode;
  const plan = planOf(key);
  let formatted: string;
  if (plan === null) formatted = isLibraryNumber(n) ? n.formatInternational().replace(/^\+\d+\s*/, '') : nationalNumber;
  else if (!nationalNumber) formatted = '';
  else {
    const format = plan.formats.find((f) => (f.leading === undefined || nationalNumber.search(f.leading) === 0) && f.whole.test(nationalNumber));
    formatted = format ? nationalNumber.replace(format.groups, format.international) : nationalNumber;
  }
  return formatted.split(/\D+/).filter((g) => g !== '');
}

/** A calling code's countries and the parsing rules the library applies to a number written with it. */
interface CallingCodePlan {
  /** Its countries, main country first; undefined for a non-geographic calling code. */
  readonly countries: readonly { readonly country: string; readonly leading: RegExp | undefined }[] | undefined;
  /** The main country's national prefix for parsing, anchored at the start (the library strips it when it matches). */
  readonly prefixForParsing: RegExp | undefined;
}

const callingCodePlans = new Map<string, CallingCodePlan | null>();
const catalogue = new Metadata() as unknown as MetadataAccess;

function callingCodePlanOf(callingCode: string): CallingCodePlan | null {
  let plan = callingCodePlans.get(callingCode);
  if (plan !== undefined) return plan;
  plan = null;
  if (catalogue.hasCallingCode(callingCode)) {
    const metadata = new Metadata() as unknown as MetadataAccess;
    metadata.selectNumberingPlan(callingCode);
    const forParsing = metadata.nationalPrefixForParsing();
    const countries = metadata.getCountryCodesForCallingCode(callingCode)?.map((country) => {
      metadata.selectNumberingPlan(country);
      const leading = metadata.leadingDigits();
      return { country, leading: leading ? regex(leading) : undefined };
    });
    plan = { countries, prefixForParsing: forParsing ? regex(`^(?:${forParsing})`) : undefined };
  }
  callingCodePlans.set(callingCode, plan);
  return plan;
}

const E164_DIGITS = /^\+[1-9]\d{3,19}$/;

/**
 * `parsePhoneNumberFromString('+<digits>')` for a number written in E.164, without the library's per-call costs (it
 * compiles the national-prefix pattern, and for a shared calling code every candidate country's type patterns, on
 * every parse). The library's steps (1.13: helpers/extractCountryCallingCode.js, extractNationalNumber.js,
 * getCountryByCallingCode.js, getCountryByNationalNumber.js, parse.js), for the case that matters: the calling code is
 * the first one to three digits the metadata knows; the rest is the national number, unless the main country's
 * national prefix for parsing matches its start — then the library's own parse answers (`undefined` here), as it does
 * for anything not `+` and digits. A shared calling code goes to the first of its countries whose leading digits
 * start the number, or, for a country without them, whose plan gives the number a type. numberPlan.test.ts compares
 * every answer with the library's.
 */
export function parsedE164(text: string): ParsedPhone | null | undefined {
  if (!E164_DIGITS.test(text)) return undefined;
  for (let length = 1; length <= 3; length++) {
    const callingCode = text.slice(1, 1 + length);
    const codePlan = callingCodePlanOf(callingCode);
    if (codePlan === null) continue;
    const nationalNumber = text.slice(1 + length);
    if (codePlan.prefixForParsing) {
      const m = codePlan.prefixForParsing.exec(nationalNumber);
      if (m && (m[0] !== '' || m.slice(1).some((g) => g !== undefined && g !== ''))) return undefined;
    }
    return parsedAnswer(callingCode, codePlan, nationalNumber, undefined);
  }
  return null; // no calling code: the library finds none either
}

/** What the library's parse of a national number reads of its region (the default country). */
interface RegionParsing {
  readonly callingCode: string;
  /** The region's international (exit) prefix, anchored at the start. */
  readonly idd: RegExp | undefined;
  /** The national prefix for parsing, anchored at the start (the trunk prefix where no other is set). */
  readonly prefixForParsing: RegExp | undefined;
  readonly nationalNumber: RegExp;
  readonly possibleLengths: readonly number[] | undefined;
}

const regionParsings = new Map<string, RegionParsing | null>();

function regionParsingOf(region: string): RegionParsing | null {
  let parsing = regionParsings.get(region);
  if (parsing !== undefined) return parsing;
  parsing = null;
  const metadata = new Metadata() as unknown as MetadataAccess & { hasCountry(country: string): boolean };
  if (metadata.hasCountry(region)) {
    metadata.selectNumberingPlan(region);
    const idd = metadata.IDDPrefix();
    const forParsing = metadata.nationalPrefixForParsing();
    parsing = {
      callingCode: metadata.countryCallingCode(),
      idd: idd ? regex(`^(?:${idd})`) : undefined,
      prefixForParsing: forParsing ? regex(`^(?:${forParsing})`) : undefined,
      nationalNumber: whole(metadata.nationalNumberPattern()),
      possibleLengths: metadata.possibleLengths(),
    };
  }
  regionParsings.set(region, parsing);
  return parsing;
}

/** The library's `checkNumberLength` (helpers/checkNumberLength.js) without a type, against a plan's possible lengths. */
function lengthVerdict(nationalNumber: string, lengths: readonly number[] | undefined): 'possible' | 'too_short' | 'too_long' | 'invalid_length' {
  if (!lengths) return 'possible';
  const length = nationalNumber.length;
  if (lengths[0] === length) return 'possible';
  if (lengths[0]! > length) return 'too_short';
  if (lengths[lengths.length - 1]! < length) return 'too_long';
  return lengths.indexOf(length, 1) >= 0 ? 'possible' : 'invalid_length';
}

/** The library's `getCountryByCallingCode` for a national number (helpers/getCountryByNationalNumber.js); null: not sure. */
function countryByCallingCode(codePlan: CallingCodePlan, nationalNumber: string): string | undefined | null {
  if (!codePlan.countries) return undefined;
  if (codePlan.countries.length === 1) return codePlan.countries[0]!.country;
  for (const c of codePlan.countries) {
    if (c.leading) {
      if (nationalNumber.search(c.leading) === 0) return c.country;
      continue;
    }
    const plan = planOf(c.country);
    if (plan === null) return null;
    if (typeByPlan(plan, nationalNumber) !== undefined) return c.country;
  }
  return undefined;
}

/**
 * The library's `extractNationalNumber` (helpers/extractNationalNumber.js) under `parsing`'s plan, whose calling code's
 * plan is `codePlan`: the national prefix removed where the library removes it. Undefined: a prefix with capturing
 * groups (carrier codes, transform rules), left to the library.
 */
function nationalNumberOf(number: string, parsing: RegionParsing, codePlan: CallingCodePlan): string | undefined {
  if (!parsing.prefixForParsing) return number;
  const m = parsing.prefixForParsing.exec(number);
  if (m && m.length > 1) return undefined;
  const stripped = m ? number.slice(m[0].length) : number;
  if (stripped === number) return number;
  // Kept where the number fits the plan only with its prefix, or the rest is no possible length.
  if (parsing.nationalNumber.test(number) && !parsing.nationalNumber.test(stripped)) return number;
  let lengths = parsing.possibleLengths;
  if (lengths) {
    const country = countryByCallingCode(codePlan, stripped);
    if (country === null) return undefined;
    if (country !== undefined) {
      const there = regionParsingOf(country);
      if (there === null) return undefined;
      lengths = there.possibleLengths;
    }
  }
  const verdict = lengthVerdict(stripped, lengths);
  return verdict === 'too_short' || verdict === 'invalid_length' ? number : stripped;
}

const ASCII_DIGITS = /^\d{3,250}$/;

/**
 * `parsePhoneNumberFromString(digits, region)` for a number in ASCII digits without `+` (`0863098317` or `353863098317`
 * with region IE), without the library's per-call costs (a new Metadata and RegExps at every step: ~5 µs of the ~9 µs a
 * new national number cost). The library's steps (1.13: parse.js `parsePhoneNumber`, helpers/extractCountryCallingCode.js,
 * extractCountryCallingCodeFromInternationalNumberWithoutPlusSign.js, extractNationalNumber.js,
 * extractNationalNumberFromPossiblyIncompleteNumber.js, checkNumberLength.js, getCountryByCallingCode.js), except where
 * the number starts with the region's exit code, or a national prefix has capturing groups: then the library's own
 * parse answers (`undefined` here). numberPlan.test.ts compares every answer with the library's, for numbers of every
 * region.
 */
export function parsedNational(text: string, region: string): ParsedPhone | null | undefined {
  if (!ASCII_DIGITS.test(text)) return undefined;
  const parsing = regionParsingOf(region);
  if (parsing === null || parsing.idd?.test(text)) return undefined;
  const callingCode = parsing.callingCode;
  const codePlan = callingCodePlanOf(callingCode);
  if (codePlan === null) return undefined;
  if (text.startsWith(callingCode)) {
    // The region's calling code in front: read as international where the library reads it so — the number fits the
    // plan only without it, or is too long with it.
    const shorter = text.slice(callingCode.length);
    const withoutCode = nationalNumberOf(shorter, parsing, codePlan);
    const whole = nationalNumberOf(text, parsing, codePlan);
    if (withoutCode === undefined || whole === undefined) return undefined;
    if ((!parsing.nationalNumber.test(whole) && parsing.nationalNumber.test(withoutCode)) || lengthVerdict(whole, parsing.possibleLengths) === 'too_long') {
      // Parsed then under the calling code's own plan (its main country's), and no country unless the number names one.
      const main = codePlan.countries?.[0]?.country;
      const mainParsing = main === undefined ? null : regionParsingOf(main);
      if (mainParsing === null) return undefined;
      const nationalNumber = nationalNumberOf(shorter, mainParsing, codePlan);
      if (nationalNumber === undefined) return undefined;
      return parsedAnswer(callingCode, codePlan, nationalNumber, undefined);
    }
  }
  const nationalNumber = nationalNumberOf(text, parsing, codePlan);
  if (nationalNumber === undefined) return undefined;
  return parsedAnswer(callingCode, codePlan, nationalNumber, region);
}

/** The parse's answer: none past the library's length limits, its country by the number or else `otherwise`. */
function parsedAnswer(callingCode: string, codePlan: CallingCodePlan, nationalNumber: string, otherwise: string | undefined): ParsedPhone | null | undefined {
  // The library's limits on a national number (MIN_LENGTH_FOR_NSN, MAX_LENGTH_FOR_NSN): no number.
  if (nationalNumber.length < 2 || nationalNumber.length > 17) return null;
  const exact = countryByCallingCode(codePlan, nationalNumber);
  if (exact === null) return undefined;
  const country = exact ?? otherwise;
  if (planOf(country ?? callingCode) === null) return undefined;
  return { number: `+${callingCode}${nationalNumber}`, countryCallingCode: callingCode, nationalNumber, country };
}
