import { isMap, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { COUNTRY_CODES } from '../cdr/codes.ts';
import { PipelineError } from '../errors/pipelineError.ts';

/**
 * Fraud rule thresholds: a file the fraud analysts edit (YAML or JSON), checked at load with errors that name the line.
 * Every rule has a `warning` and a `critical` threshold on its own figure (see fraudDetector.ts for what each figure
 * is) and may override both per destination country or per network (MCC-MNC).
 *
 * ```yaml
 * close_after_s: 120          # an alert closes when its condition has not held for this long (event time)
 * rules:
 *   sms_pumping:
 *     warning: 8              # records to one range in the window ÷ the key's baseline
 *     critical: 20
 *     window_s: 300
 *     min_records: 25
 *     max_delivery_ratio: 0.3
 *     overrides:
 *       - { country: LV, warning: 4, critical: 10 }
 *       - { network: "247-01", warning: 4 }
 * ```
 */
export type RuleName = 'sms_pumping' | 'range_scan' | 'velocity' | 'irsf' | 'account_anomaly';
export const RULE_NAMES: readonly RuleName[] = ['sms_pumping', 'range_scan', 'velocity', 'irsf', 'account_anomaly'];

export interface Override {
  readonly country?: string;
  readonly network?: string;
  readonly warning?: number;
  readonly critical?: number;
}

export interface RuleConfig {
  readonly enabled: boolean;
  readonly warning: number;
  readonly critical: number;
  readonly windowS: number;
  /** The least activity in the window before the rule judges a key at all. */
  readonly minRecords: number;
  readonly overrides: readonly Override[];
  /** Rule-specific parameters (documented per rule in docs/fraud.md). */
  readonly params: Readonly<Record<string, number | readonly string[]>>;
}

export interface FraudConfig {
  readonly closeAfterS: number;
  readonly rules: Readonly<Record<RuleName, RuleConfig>>;
}

interface RuleDefaults {
  readonly warning: number;
  readonly critical: number;
  readonly windowS: number;
  readonly minRecords: number;
  readonly params: Readonly<Record<string, number | readonly string[]>>;
}

/**
 * Defaults, tuned on the generator's labelled scenarios (docs/fraud.md has the evaluation). High-risk ranges: the
 * international networks and satellite services (881–883), and the destinations most often named in IRSF reports.
 */
export const DEFAULT_RULES: Readonly<Record<RuleName, RuleDefaults>> = {
  sms_pumping: {
    warning: 6,
    critical: 15,
    windowS: 300,
    minRecords: 20,
    params: {
      max_delivery_ratio: 0.3,
      baseline_floor: 2,
      high_risk_countries: ['LV', 'LT', 'GN', 'CU', 'SO', 'SL', 'GM', 'TN', 'ER', 'MV', 'NR', 'TK', 'ST', 'PG', 'BY'],
    },
  },
  range_scan: { warning: 40, critical: 150, windowS: 300, minRecords: 40, params: { min_failure_ratio: 0.4 } },
  velocity: {
    warning: 5,
    critical: 12,
    windowS: 60,
    minRecords: 60,
    params: { token_warning: 30, token_critical: 90, baseline_floor: 5, max_new_country_share: 0.5, max_distinct_share: 0.9, warmup_s: 1800 },
  },
  irsf: {
    warning: 5,
    critical: 20,
    windowS: 600,
    minRecords: 5,
    params: {
      high_risk_countries: ['LV', 'LT', 'GN', 'CU', 'SO', 'SL', 'GM', 'TN', 'ER', 'MV', 'NR', 'TK', 'ST', 'PG', 'BY'],
      high_risk_ranges: ['881', '882', '883', '979', '808'],
      short_call_s: 10,
    },
  },
  account_anomaly: {
    warning: 0.5,
    critical: 0.8,
    windowS: 120,
    minRecords: 15,
    params: { history_min_records: 200, volume_ratio: 3, baseline_floor: 5, known_after_hours: 2, warmup_s: 7200, min_new_ranges: 3 },
  },
};

const MAX_WINDOW_S = 24 * 3600;

/** Parses and checks a thresholds file; throws `config_invalid` naming every problem with its line. */
export function parseFraudConfig(text: string, source: string): FraudConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: string[] = [];
  const lineOf = (node: unknown): number => {
    const r = (node as YamlNode | null | undefined)?.range;
    return r ? lines.linePos(r[0]).line : 1;
  };
  for (const e of doc.errors) problems.push(`line ${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  if (problems.length > 0) throw configError(source, problems);
  const root = doc.contents;
  const top = (isMap(root) ? root.toJSON() : {}) as Record<string, unknown>;
  if (root !== null && !isMap(root)) problems.push(`line ${lineOf(root)}: expected a mapping with "rules:"`);
  for (const k of Object.keys(top))
    if (k !== 'rules' && k !== 'close_after_s') problems.push(`line ${lineOf(isMap(root) ? root.get(k, true) : root)}: unknown field "${k}"`);
  const closeAfter = top['close_after_s'] ?? 120;
  if (!Number.isInteger(closeAfter) || (closeAfter as number) < 10 || (closeAfter as number) > MAX_WINDOW_S)
    problems.push(`line ${lineOf(isMap(root) ? root.get('close_after_s', true) : root)}: "close_after_s" must be whole seconds between 10 and ${MAX_WINDOW_S}`);
  const rulesNode = isMap(root) ? root.get('rules', true) : undefined;
  const rulesValue = (top['rules'] ?? {}) as Record<string, unknown>;
  if (rulesNode !== undefined && !isMap(rulesNode)) problems.push(`line ${lineOf(rulesNode)}: "rules" must be a mapping of rule names`);
  const rules = {} as Record<RuleName, RuleConfig>;
  if (isMap(rulesNode))
    for (const pair of rulesNode.items) {
      const name = String((pair.key as { value?: unknown } | null)?.value ?? pair.key);
      if (!(RULE_NAMES as readonly string[]).includes(name))
        problems.push(`line ${lineOf(pair.key)}: unknown rule "${name}" (rules: ${RULE_NAMES.join(', ')})`);
    }
  for (const name of RULE_NAMES) {
    const d = DEFAULT_RULES[name];
    const node = isMap(rulesNode) ? rulesNode.get(name, true) : undefined;
    const at = lineOf(node ?? rulesNode ?? root);
    const v = (rulesValue[name] ?? {}) as Record<string, unknown>;
    const fieldLine = (k: string): number => (isMap(node) ? lineOf(node.get(k, true) ?? node) : at);
    const num = (k: string, dflt: number, min: number, max: number): number => {
      const x = v[k] ?? dflt;
      if (typeof x !== 'number' || !Number.isFinite(x) || x < min || x > max) {
        problems.push(`line ${fieldLine(k)}: ${name}.${k} must be a number between ${min} and ${max}`);
        return dflt;
      }
      return x;
    };
    const known = new Set(['enabled', 'warning', 'critical', 'window_s', 'min_records', 'overrides', ...Object.keys(d.params)]);
    for (const k of Object.keys(v)) if (!known.has(k)) problems.push(`line ${fieldLine(k)}: unknown field "${k}" of rule ${name}`);
    const warning = num('warning', d.warning, 0, 1e9);
    const critical = num('critical', d.critical, 0, 1e9);
    if (critical < warning) problems.push(`line ${fieldLine('critical')}: ${name}.critical (${critical}) must not be below its warning (${warning})`);
    const windowS = num('window_s', d.windowS, 10, MAX_WINDOW_S);
    const minRecords = num('min_records', d.minRecords, 1, 1e9);
    const enabled = v['enabled'] ?? true;
    if (typeof enabled !== 'boolean') problems.push(`line ${fieldLine('enabled')}: ${name}.enabled must be true or false`);
    const params: Record<string, number | readonly string[]> = {};
    for (const [k, dv] of Object.entries(d.params)) {
      const x = v[k] ?? dv;
      if (Array.isArray(dv)) {
        if (!Array.isArray(x) || !x.every((s) => typeof s === 'string' && /^[A-Z0-9]{1,15}$/.test(s)))
          problems.push(`line ${fieldLine(k)}: ${name}.${k} must be a list of codes (upper-case letters or digits)`);
        else params[k] = x as string[];
      } else if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) problems.push(`line ${fieldLine(k)}: ${name}.${k} must be a number ≥ 0`);
      else params[k] = x;
    }
    const overrides: Override[] = [];
    const ov = v['overrides'] ?? [];
    if (!Array.isArray(ov)) problems.push(`line ${fieldLine('overrides')}: ${name}.overrides must be a list`);
    else
      for (const [i, o] of (ov as unknown[]).entries()) {
        const on = isMap(node) ? node.get('overrides', true) : undefined;
        const ol = (on as { items?: unknown[] } | undefined)?.items?.[i];
        const line = lineOf(ol ?? on ?? node);
        if (typeof o !== 'object' || o === null) {
          problems.push(`line ${line}: an override must be a mapping`);
          continue;
        }
        const r = o as Record<string, unknown>;
        for (const k of Object.keys(r))
          if (!['country', 'network', 'warning', 'critical'].includes(k)) problems.push(`line ${line}: unknown override field "${k}"`);
        if ((r['country'] === undefined) === (r['network'] === undefined))
          problems.push(`line ${line}: an override names a country or a network (MCC-MNC), one of them`);
        if (r['country'] !== undefined && (typeof r['country'] !== 'string' || !COUNTRY_CODES.has(r['country'])))
          problems.push(`line ${line}: override country must be an ISO 3166 alpha-2 code (or XK, AC, TA)`);
        if (r['network'] !== undefined && (typeof r['network'] !== 'string' || !/^\d{3}-\d{2,3}$/.test(r['network'])))
          problems.push(`line ${line}: override network must be MCC-MNC, e.g. 247-01`);
        for (const k of ['warning', 'critical'])
          if (r[k] !== undefined && (typeof r[k] !== 'number' || r[k] < 0)) problems.push(`line ${line}: override ${k} must be a number ≥ 0`);
        overrides.push({
          ...(typeof r['country'] === 'string' ? { country: r['country'] } : {}),
          ...(typeof r['network'] === 'string' ? { network: r['network'] } : {}),
          ...(typeof r['warning'] === 'number' ? { warning: r['warning'] } : {}),
          ...(typeof r['critical'] === 'number' ? { critical: r['critical'] } : {}),
        });
      }
    rules[name] = { enabled: enabled === true, warning, critical, windowS, minRecords, overrides, params };
  }
  if (problems.length > 0) throw configError(source, problems);
  return { closeAfterS: closeAfter as number, rules };
}

export const DEFAULT_FRAUD_CONFIG: FraudConfig = parseFraudConfig('rules: {}\n', 'built-in defaults');

/** Thresholds of a rule for one destination country and network: a network override first, then a country one. */
export function thresholdsFor(rule: RuleConfig, country: string, network: string): { warning: number; critical: number } {
  // Most rules have no override: their own thresholds, with no search and no new object per record.
  if (rule.overrides.length === 0) return rule;
  const byNetwork = network ? rule.overrides.find((o) => o.network === network) : undefined;
  const byCountry = rule.overrides.find((o) => o.country === country);
  const o = byNetwork ?? byCountry;
  return { warning: o?.warning ?? rule.warning, critical: o?.critical ?? rule.critical };
}

function configError(source: string, problems: readonly string[]): PipelineError {
  return new PipelineError('config_invalid', `fraud rules file ${source} is invalid:\n  ${problems.join('\n  ')}`);
}
