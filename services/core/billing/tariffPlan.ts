import { createHash } from 'node:crypto';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { CHANNELS } from '../cdr/cdrEvent.ts';
import { COUNTRY_CODES, ISO_4217 } from '../cdr/codes.ts';
import { PipelineError } from '../errors/pipelineError.ts';

/**
 * Tariff plans: what the billing team writes (YAML or JSON, which is YAML), checked here with errors that name the
 * file's line, and what rating reads. A plan is one version of a price list with an activation window; the file holds
 * every version, so the history of prices is in the file and in the `billing_plans` table.
 *
 * ```yaml
 * plans:
 *   - id: standard            # plan id; versions of one id must not overlap in time
 *     version: 2
 *     active_from: 2026-07-01T00:00:00Z
 *     active_to: 2027-01-01T00:00:00Z   # optional: open-ended
 *     accounts: ["*"]         # account ids, or "*" for every account without a plan of its own
 *     currency: EUR           # ISO 4217; amounts are integer micro-units of it
 *     trust_event_price: false  # true: a record that carries a price (non-empty currency) is billed at it
 *     rates:
 *       - channel: sms        # one of the CDR channels, or "*"
 *         country: MY         # destination country, or "*"
 *         prefix: "6017"      # optional: longest match on the recipient's number range
 *         number_type: mobile # optional
 *         provider: prov-a    # optional
 *         price: 12000        # per segment (voice: per minute), micro-units
 *         cost: 8000
 *       - channel: voice
 *         country: "*"
 *         price: 60000
 *         cost: 30000
 *         first_increment_s: 60   # voice: 60/60 by default; 1/1 is per second
 *         increment_s: 60
 *         minimum_micros: 0
 * ```
 */
export interface RateLine {
  readonly channel: string;
  readonly country: string;
  readonly prefix: string;
  readonly numberType: string;
  readonly provider: string;
  readonly price: number;
  readonly cost: number;
  readonly firstIncrementS: number;
  readonly incrementS: number;
  readonly minimumMicros: number;
  /** 1-based line of the rate in its file. */
  readonly line: number;
}

export interface TariffPlan {
  readonly id: string;
  readonly version: number;
  readonly activeFrom: number;
  /** Exclusive; +Infinity when open-ended. */
  readonly activeTo: number;
  readonly accounts: readonly string[];
  readonly currency: string;
  readonly trustEventPrice: boolean;
  readonly rates: readonly RateLine[];
  readonly line: number;
  /** SHA-256 of the plan's content but its end (`active_to`): what a version charges never changes once loaded. */
  readonly digest: string;
}

export interface PlanBook {
  readonly plans: readonly TariffPlan[];
}

const NUMBER_TYPES = new Set([
  'mobile',
  'fixed_line',
  'fixed_line_or_mobile',
  'premium_rate',
  'toll_free',
  'shared_cost',
  'voip',
  'personal_number',
  'pager',
  'uan',
  'voicemail',
]);
const MAX_MICROS = 1e12;

/** Parses and checks a plan file's text; throws `config_invalid` naming every problem with its line. */
export function parsePlanBook(text: string, source: string): PlanBook {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: string[] = [];
  const lineOf = (node: YamlNode | null | undefined): number => (node?.range ? lines.linePos(node.range[0]).line : 1);
  for (const e of doc.errors) problems.push(`line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  if (problems.length > 0) throw planError(source, problems);
  const root = doc.contents;
  const plansNode = isMap(root) ? root.get('plans', true) : undefined;
  if (!isSeq(plansNode)) throw planError(source, [`line ${lineOf(root)}: expected a top-level "plans:" list`]);
  const plans: TariffPlan[] = [];
  for (const item of plansNode.items) {
    const at = lineOf(item as YamlNode);
    if (!isMap(item)) {
      problems.push(`line ${at}: a plan must be a mapping`);
      continue;
    }
    const values = item.toJSON() as Record<string, unknown>;
    const field = (name: string): { value: unknown; line: number } => {
      const node = item.get(name, true) as YamlNode | undefined;
      return { value: values[name], line: node ? lineOf(node) : at };
    };
    const known = new Set(['id', 'version', 'active_from', 'active_to', 'accounts', 'currency', 'trust_event_price', 'rates', 'description']);
    for (const pair of item.items) {
      const k = String((pair.key as { value?: unknown })?.value ?? pair.key);
      if (!known.has(k)) problems.push(`line ${lineOf(pair.key as YamlNode)}: unknown plan field "${k}"`);
    }
    const id = field('id');
    const version = field('version');
    const from = field('active_from');
    const to = field('active_to');
    const accounts = field('accounts');
    const currency = field('currency');
    const trust = field('trust_event_price');
    const rates = field('rates');
    const before = problems.length;
    if (typeof id.value !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id.value)) problems.push(`line ${id.line}: "id" must be 1-64 letters, digits, . _ -`);
    if (!Number.isInteger(version.value) || (version.value as number) < 1) problems.push(`line ${version.line}: "version" must be a positive integer`);
    const activeFrom = instant(from.value);
    if (activeFrom === undefined) problems.push(`line ${from.line}: "active_from" must be an ISO 8601 instant with a zone (e.g. 2026-07-01T00:00:00Z)`);
    const activeTo = to.value === undefined || to.value === null ? Number.POSITIVE_INFINITY : instant(to.value);
    if (activeTo === undefined) problems.push(`line ${to.line}: "active_to" must be an ISO 8601 instant with a zone, or absent`);
    if (activeFrom !== undefined && activeTo !== undefined && activeTo <= activeFrom) problems.push(`line ${to.line}: "active_to" must be after "active_from"`);
    const accountList = accounts.value ?? ['*'];
    if (!Array.isArray(accountList) || accountList.length === 0 || !accountList.every((a) => typeof a === 'string' && a.length > 0 && a.length <= 128))
      problems.push(`line ${accounts.line}: "accounts" must be a non-empty list of account ids or "*"`);
    if (typeof currency.value !== 'string' || !ISO_4217.has(currency.value))
      problems.push(`line ${currency.line}: unknown currency ${JSON.stringify(currency.value)} (ISO 4217, upper case)`);
    if (trust.value !== undefined && typeof trust.value !== 'boolean') problems.push(`line ${trust.line}: "trust_event_price" must be true or false`);
    const rateLines: RateLine[] = [];
    const ratesNode = item.get('rates', true);
    if (!isSeq(ratesNode) || ratesNode.items.length === 0) {
      if (trust.value !== true) problems.push(`line ${rates.line}: "rates" must be a non-empty list (or the plan must trust the event's price)`);
    } else {
      for (const r of ratesNode.items) {
        const rl = lineOf(r as YamlNode);
        const v = (isMap(r) ? r.toJSON() : null) as Record<string, unknown> | null;
        if (!v) {
          problems.push(`line ${rl}: a rate must be a mapping`);
          continue;
        }
        const rateKnown = new Set([
          'channel',
          'country',
          'prefix',
          'number_type',
          'provider',
          'price',
          'cost',
          'first_increment_s',
          'increment_s',
          'minimum_micros',
        ]);
        for (const k of Object.keys(v)) if (!rateKnown.has(k)) problems.push(`line ${rl}: unknown rate field "${k}"`);
        const channel = v['channel'];
        if (typeof channel !== 'string' || (channel !== '*' && !(CHANNELS as readonly string[]).includes(channel)))
          problems.push(`line ${rl}: "channel" must be one of ${CHANNELS.join(', ')} or "*"`);
        const country = v['country'] ?? '*';
        if (typeof country !== 'string' || (country !== '*' && !COUNTRY_CODES.has(country)))
          problems.push(`line ${rl}: "country" must be an ISO 3166 alpha-2 code (or XK, AC, TA) or "*"`);
        const prefixValue = v['prefix'];
        const prefix = prefixValue === undefined ? '' : typeof prefixValue === 'string' || typeof prefixValue === 'number' ? String(prefixValue) : '?';
        if (!/^\d{0,15}$/.test(prefix)) problems.push(`line ${rl}: "prefix" must be digits of a number range (country code first, no +)`);
        const numberType = v['number_type'] ?? '';
        if (typeof numberType !== 'string' || (numberType !== '' && !NUMBER_TYPES.has(numberType)))
          problems.push(`line ${rl}: "number_type" must be one of ${[...NUMBER_TYPES].join(', ')}`);
        const provider = v['provider'] ?? '';
        if (typeof provider !== 'string') problems.push(`line ${rl}: "provider" must be a string`);
        const money = (k: string, dflt?: number): number => {
          const m = v[k] ?? dflt;
          if (!Number.isSafeInteger(m) || (m as number) < 0 || (m as number) > MAX_MICROS) {
            problems.push(`line ${rl}: "${k}" must be a whole number of micro-units between 0 and ${MAX_MICROS}`);
            return 0;
          }
          return m as number;
        };
        const price = money('price');
        const cost = money('cost');
        const minimumMicros = money('minimum_micros', 0);
        const seconds = (k: string): number => {
          const s = v[k] ?? 60;
          if (!Number.isInteger(s) || (s as number) < 1 || (s as number) > 3600) {
            problems.push(`line ${rl}: "${k}" must be whole seconds between 1 and 3600`);
            return 60;
          }
          return s as number;
        };
        if (typeof channel !== 'string' || typeof country !== 'string' || typeof numberType !== 'string' || typeof provider !== 'string') continue;
        rateLines.push({
          channel,
          country,
          prefix,
          numberType,
          provider,
          price,
          cost,
          firstIncrementS: seconds('first_increment_s'),
          incrementS: seconds('increment_s'),
          minimumMicros,
          line: rl,
        });
      }
    }
    if (problems.length > before) continue;
    // The digest covers everything but the end of the window: ending a version (to start the next) is how prices
    // change; changing what a version charges is not.
    const body = {
      id: id.value,
      version: version.value,
      active_from: new Date(activeFrom!).toISOString(),
      accounts: accountList,
      currency: currency.value,
      trust_event_price: trust.value === true,
      rates: rateLines.map(({ line: _line, ...r }) => r),
    };
    plans.push({
      id: id.value as string,
      version: version.value as number,
      activeFrom: activeFrom!,
      activeTo: activeTo!,
      accounts: accountList as string[],
      currency: currency.value as string,
      trustEventPrice: trust.value === true,
      rates: rateLines,
      line: at,
      digest: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
    });
  }
  problems.push(...overlaps(plans));
  if (problems.length > 0) throw planError(source, problems);
  return { plans };
}

/** The plan's canonical content, as stored in `billing_plans`. */
export function planBody(p: TariffPlan): string {
  return JSON.stringify({
    id: p.id,
    version: p.version,
    active_from: new Date(p.activeFrom).toISOString(),
    active_to: p.activeTo === Number.POSITIVE_INFINITY ? null : new Date(p.activeTo).toISOString(),
    accounts: p.accounts,
    currency: p.currency,
    trust_event_price: p.trustEventPrice,
    rates: p.rates.map(({ line: _line, ...r }) => r),
  });
}

/**
 * Two plans that could both price one record are refused: versions of one plan overlapping in time, or different
 * plans naming a common account (or both "*") at overlapping times. Exactly one plan then applies to any record.
 */
function overlaps(plans: readonly TariffPlan[]): string[] {
  const problems: string[] = [];
  for (let i = 0; i < plans.length; i++) {
    for (let j = i + 1; j < plans.length; j++) {
      const a = plans[i]!;
      const b = plans[j]!;
      if (a.id === b.id && a.version === b.version) {
        problems.push(`line ${b.line}: plan ${b.id} version ${b.version} is defined twice (also at line ${a.line})`);
        continue;
      }
      const timeOverlap = a.activeFrom < b.activeTo && b.activeFrom < a.activeTo;
      const shared = a.accounts.find((x) => b.accounts.includes(x));
      if (timeOverlap && (a.id === b.id || shared !== undefined)) {
        const what =
          a.id === b.id ? `plan ${b.id} version ${b.version} overlaps version ${a.version}` : `plan ${b.id} and plan ${a.id} both apply to account "${shared}"`;
        problems.push(`line ${b.line}: ${what} (line ${a.line}) in time: activation windows must not overlap`);
      }
    }
  }
  return problems;
}

function instant(v: unknown): number | undefined {
  const text = v instanceof Date ? v.toISOString() : v;
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

function planError(source: string, problems: readonly string[]): PipelineError {
  return new PipelineError('config_invalid', `tariff plan file ${source} is invalid:\n  ${problems.join('\n  ')}`);
}
