import { evaluate, evaluationTable, type Evaluation } from '../fraud/evaluate.ts';
import { readRulesFile } from '../fraud/createFraud.ts';
import { PipelineError } from '../core/index.ts';
import { scenarioOf } from '../generator/index.ts';

/**
 * `cdr fraud evaluate [--seed S] [--events N] [--rate R] [--scenario NAME] [--rules FILE] [--json]`: replays a labelled
 * synthetic run (default: `fraud_mix` at 20 events/s with a diurnal shape and a 20,000-message marketing campaign two
 * hours in) through the fraud rules and prints precision, recall and time to detect per rule (services/fraud/evaluate.ts).
 */
export interface EvaluateArgs {
  seed: number;
  events: number;
  rate: number;
  scenario: string;
  rules?: string;
  json?: boolean;
}

export function runFraudEvaluate(args: EvaluateArgs, rulesFileFromEnv: string | undefined): Evaluation {
  const scenario = scenarioOf(args.scenario);
  if (!scenario) throw new PipelineError('config_invalid', `--scenario: unknown scenario "${args.scenario.slice(0, 40)}"`);
  if (!Number.isInteger(args.events) || args.events < 1000 || args.events > 50_000_000)
    throw new PipelineError('config_invalid', '--events: a whole number from 1,000 to 50,000,000');
  if (!(args.rate > 0 && args.rate <= 100_000)) throw new PipelineError('config_invalid', '--rate: events per second of event time, above 0');
  const { rules } = readRulesFile(args.rules ?? rulesFileFromEnv);
  const start = Date.UTC(2026, 10, 10);
  return evaluate({
    seed: args.seed,
    events: args.events,
    ratePerSecond: args.rate,
    scenario,
    diurnal: true,
    startTime: start,
    rules,
    campaign: { at: start + 2 * 3_600_000, durationMs: 30 * 60_000, count: 20_000 },
  });
}

export function printEvaluation(ev: Evaluation, json: boolean): string {
  return json ? `${JSON.stringify(ev, null, 2)}\n` : evaluationTable(ev);
}
