/**
 * The `cdr` command (package bin). Commands are a contract (docs/contract.md): start, produce,
 * retention run, audit verify, lea verify. Parsing lives here; each command's work lives in its own module.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfig, loadConfigAndFiles, type PipelineConfig } from '../platform/config/index.ts';
import { START_FILE_CHECKS } from './fileChecks.ts';
import { PipelineError } from '../core/index.ts';
import { SCENARIOS, scenarioOf, type ScenarioName } from '../generator/trafficGenerator.ts';
import { runProduce } from './produceCommand.ts';
import { verifyAudit } from './auditCommand.ts';
import { billingClose, billingReconcile, billingRerate, billingStatement } from './billingCommand.ts';
import { printEvaluation, runFraudEvaluate } from './fraudCommand.ts';
import { printAnswerReport, verifyAnswerFile } from './leaVerifyCommand.ts';
import { printReportCheck, retentionReport, runRetention, storedRecordProblems, verifyReportFile } from './retentionCommand.ts';
import { runStart } from './startCommand.ts';
import { preflightInputsOf, startPreflightProblems } from './startPreflight.ts';

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}
function fraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${name} must be a number in [0, 1)`);
    return n;
  };
}

const program = new Command();
/** A scenario name or its hyphenated alias (`sms-pumping`, `range-scan`, …). */
function scenarioArg(value: string): ScenarioName {
  const s = scenarioOf(value);
  if (!s) throw new InvalidArgumentError(`unknown scenario; one of ${SCENARIOS.join(', ')} (hyphens accepted)`);
  return s;
}

program.name('cdr').description('cdr-pipeline: telecom CDR ingest with pseudonymisation and provable retention').showHelpAfterError();
// Commander's own argument errors (an unknown command or option, a missing or malformed value) throw instead of
// exiting 1, so they exit 2 like every other bad argument (docs/contract.md); subcommands inherit this.
program.exitOverride();

program
  .command('start')
  .description('run the whole pipeline on one machine: local Kafka, embedded ClickHouse, ingest, API, synthetic traffic, live status')
  .option('--rate <n>', 'synthetic events per second (0: none)', nonNegativeInt('--rate'), 1000)
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .option('--seed <n>', 'seed for the synthetic traffic (default: time-based)', nonNegativeInt('--seed'))
  .addOption(new Option('--scenario <name>', `traffic scenario: ${SCENARIOS.join(', ')} (hyphens accepted)`).argParser(scenarioArg).default('mixed'))
  .action(async (opts: { rate: number; dataDir?: string; seed?: number; scenario: ScenarioName }) => {
    const env = opts.dataDir ? { ...process.env, CDR_DATA_DIR: opts.dataDir } : process.env;
    let config: PipelineConfig;
    try {
      config = loadConfigAndFiles(env, undefined, START_FILE_CHECKS);
    } catch (err) {
      // The data directory and the ports too, in the same message (startPreflight would only say them once the rest is fixed).
      if (!(err instanceof PipelineError && err.code === 'config_invalid')) throw err;
      const more = await startPreflightProblems(preflightInputsOf(env));
      throw more.length > 0 ? new PipelineError('config_invalid', `${err.message}; ${more.join('; ')}`) : err;
    }
    await runStart(config, opts);
  });

program
  .command('produce')
  .description('send synthetic routing-layer traffic as Avro to cdr.raw')
  .requiredOption('--count <n>', 'number of records', nonNegativeInt('--count'))
  .option('--rate <r>', 'records per second (0: as fast as possible)', nonNegativeInt('--rate'), 0)
  .option(
    '--seed <s>',
    'seed (default: time-based, printed in the summary); the same seed gives the same cdr_ids, which ingest then drops as duplicates',
    nonNegativeInt('--seed'),
  )
  .addOption(new Option('--scenario <name>', `traffic scenario: ${SCENARIOS.join(', ')} (hyphens accepted)`).argParser(scenarioArg).default('normal'))
  .option('--duplicates <f>', 'fraction of records re-sent (same cdr_id)', fraction('--duplicates'), 0)
  .option('--malformed <f>', 'fraction of malformed records (go to the DLQ)', fraction('--malformed'), 0)
  .option('--late <f>', 'fraction of records whose identifier window already closed', fraction('--late'), 0)
  .option('--spread-months <m>', 'spread event times over the last M months', nonNegativeInt('--spread-months'), 0)
  .option('--quiet', 'no progress bar')
  .action(
    async (opts: {
      count: number;
      rate: number;
      seed?: number;
      scenario: ScenarioName;
      duplicates: number;
      malformed: number;
      late: number;
      spreadMonths: number;
      quiet?: boolean;
    }) => {
      // Time-based by default, as `cdr start`'s: two runs without --seed are two runs of traffic, not the second one's
      // records all dropped as duplicates of the first's (its cdr_ids were the same: found from outside).
      await runProduce(loadConfig(), { ...opts, seed: opts.seed ?? Date.now() % 2_147_483_647 });
    },
  );

const retention = program.command('retention').description('retention of identifiers, traffic data and usage data');
retention
  .command('run')
  .description('one retention pass; prints a JSON report of what was (or would be) deleted')
  .option('--now <iso>', 'the instant to apply the retention rules at (default: now)')
  .option('--dry-run', 'report without deleting', false)
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { now?: string; dryRun: boolean; dataDir?: string }) => {
    const env = opts.dataDir ? { ...process.env, CDR_DATA_DIR: opts.dataDir } : process.env;
    await runRetention(loadConfig(env), { ...(opts.now !== undefined ? { now: opts.now } : {}), dryRun: opts.dryRun });
  });

const withDataDir = (dataDir: string | undefined): NodeJS.ProcessEnv => (dataDir ? { ...process.env, CDR_DATA_DIR: dataDir } : process.env);

retention
  .command('report')
  .description('the signed destruction report of a month (what was destroyed, when, by whom, how it was verified)')
  .requiredOption('--month <YYYY-MM>', 'the month')
  .option('--out <file>', 'write the report to a file instead of stdout')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { month: string; out?: string; dataDir?: string }) => {
    const { report, recordProblems } = await retentionReport(loadConfig(withDataDir(opts.dataDir)), {
      month: opts.month,
      ...(opts.out ? { out: opts.out } : {}),
    });
    if (opts.out) process.stderr.write(`cdr: ${report.entries.length} entries for ${report.month} written to ${opts.out} (signed by ${report.key_id})\n`);
    // The report is made all the same (it is the evidence), but a record that does not verify is said, and exits 1.
    const problems = storedRecordProblems(report, recordProblems);
    if (problems.length > 0) {
      process.stderr.write(
        `cdr: THE REPORT'S CHECK FOUND PROBLEMS in the stored destruction record (a change, a removed entry, or a verification a pass recorded as failed); the report carries the record as stored, and cdr retention verify-report names the same:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
      );
      process.exitCode = 1;
    }
  });

retention
  .command('verify-report')
  .description('check a signed destruction report offline; exit 1 if anything in it changed, 2 if the file is no report')
  .argument('<file>', 'the report (cdr retention report --out FILE)')
  .option('--public-key <file>', 'PEM public key to trust (default: CDR_SIGNING_KEY_FILE, or the development key of the data directory)')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .option('--json', 'print the result as JSON')
  .action((file: string, opts: { publicKey?: string; dataDir?: string; json?: boolean }) => {
    const config = loadConfig(withDataDir(opts.dataDir), ['audit']);
    const result = verifyReportFile({
      file,
      ...(opts.publicKey ? { publicKey: opts.publicKey } : {}),
      signingKeyFile: config.audit.signingKeyFile,
      dataDir: config.dataDir,
    });
    process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : printReportCheck(result, file));
    // 1: a report that changed; 2: no report at all (another document: nothing could be checked).
    if (!result.ok) process.exitCode = result.report ? 1 : 2;
  });

program
  .command('audit')
  .description('the audit trail')
  .command('verify')
  .description("recompute the audit trail's hash chains against their signed checkpoints; exit 1 on any break")
  .option('--public-key <file>', 'PEM public (or private) key the checkpoints are signed with (default: CDR_SIGNING_KEY_FILE, or the development key)')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .option(
    '--chain <name>',
    "the chain whose anchor the anchor directory must hold (default: CDR_AUDIT_CHAIN, else 'main', the chain of cdr start, on the embedded store; none against a ClickHouse server)",
  )
  .action(async (opts: { publicKey?: string; dataDir?: string; chain?: string }) => {
    const report = await verifyAudit(loadConfig(withDataDir(opts.dataDir), ['audit', 'clickhouse', 'kafka']), {
      ...(opts.publicKey ? { publicKey: opts.publicKey } : {}),
      ...(opts.chain ? { chain: opts.chain } : {}),
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.ok) {
      process.stderr.write(
        `cdr: the audit trail is broken: ${report.first_bad_entry?.chain} entry ${report.first_bad_entry?.seq}: ${report.first_bad_entry?.problem}\n`,
      );
      process.exitCode = 1;
    }
  });

program
  .command('lea')
  .description('law-enforcement answers')
  .command('verify')
  .description('check a signed law-enforcement answer (or data-subject export) offline; names what changed; exit 1 if anything did')
  .argument('<file>', 'the answer: JSON, or NDJSON/CSV with --receipt')
  .option('--receipt <file>', 'for an NDJSON or CSV answer: its receipt, GET /v1/lea/requests/{id}')
  .option('--public-key <file>', 'PEM public key to trust (default: CDR_SIGNING_KEY_FILE, or the development key of the data directory)')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .option('--json', 'print the report as JSON')
  .action((file: string, opts: { receipt?: string; publicKey?: string; dataDir?: string; json?: boolean }) => {
    const config = loadConfig(withDataDir(opts.dataDir), ['audit']);
    const report = verifyAnswerFile({
      file,
      ...(opts.receipt ? { receipt: opts.receipt } : {}),
      ...(opts.publicKey ? { publicKey: opts.publicKey } : {}),
      signingKeyFile: config.audit.signingKeyFile,
      dataDir: config.dataDir,
    });
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : printAnswerReport(report, file));
    if (!report.ok) process.exitCode = 1;
  });

const billing = program.command('billing').description('billing: month close, statements, re-rating, provider reconciliation');
const printJson = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};
billing
  .command('close')
  .description("freeze a month's statements (with digests); later changes to it appear as adjustments in the next open month")
  .option('--month <YYYY-MM>', 'the month to close')
  .option('--through <YYYY-MM>', 'instead of --month: close every month up to this one that holds billed records, in order, then this one')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { month?: string; through?: string; dataDir?: string }) => printJson(await billingClose(loadConfig(withDataDir(opts.dataDir)), opts)));
billing
  .command('statement')
  .description("an account's monthly statement: counts, segments, minutes, amount per currency, adjustments, digest")
  .requiredOption('--account <id>', 'account id')
  .requiredOption('--month <YYYY-MM>', 'month')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { account: string; month: string; dataDir?: string }) => printJson(await billingStatement(loadConfig(withDataDir(opts.dataDir)), opts)));
billing
  .command('rerate')
  .description('rate [from, to) again with the current tariff plan file; differences in closed months become adjustments')
  .requiredOption('--from <iso>', 'start (inclusive), ISO 8601 with a zone')
  .requiredOption('--to <iso>', 'end (exclusive), ISO 8601 with a zone')
  .option('--account <id>', 'only this account')
  .option('--plan <id>', 'only records rated under this plan (and unrated ones)')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { from: string; to: string; account?: string; plan?: string; dataDir?: string }) =>
    printJson(await billingRerate(loadConfig(withDataDir(opts.dataDir)), opts)),
  );
billing
  .command('reconcile')
  .description("compare our cost of a provider's traffic per day and destination with its invoice (CSV); exit 1 when they differ")
  .requiredOption('--provider <id>', 'provider id')
  .requiredOption('--month <YYYY-MM>', 'month')
  .requiredOption('--invoice <file>', 'CSV: day,destination_country,currency,cost[,records]')
  .option('--data-dir <dir>', 'data directory (overrides CDR_DATA_DIR)')
  .action(async (opts: { provider: string; month: string; invoice: string; dataDir?: string }) => {
    const report = await billingReconcile(loadConfig(withDataDir(opts.dataDir)), opts);
    printJson(report);
    if (report.differences.length > 0) process.exitCode = 1;
  });

program
  .command('fraud')
  .description('fraud detection')
  .command('evaluate')
  .description('replay a labelled synthetic run through the fraud rules; print precision, recall and time to detect per rule')
  .option('--seed <n>', 'generator seed', nonNegativeInt('--seed'), 7)
  .option('--events <n>', 'events in the run', nonNegativeInt('--events'), 300_000)
  .option('--rate <n>', 'events per second of event time', nonNegativeInt('--rate'), 20)
  .option('--scenario <name>', 'generator scenario (fraud_mix has all five attacks)', 'fraud_mix')
  .option('--rules <file>', 'thresholds file (default: CDR_FRAUD_RULES_FILE or config/fraud-rules.yaml)')
  .option('--json', 'print the evaluation as JSON')
  .action((opts: { seed: number; events: number; rate: number; scenario: string; rules?: string; json?: boolean }) => {
    const ev = runFraudEvaluate(opts, process.env['CDR_FRAUD_RULES_FILE'] || undefined);
    process.stdout.write(printEvaluation(ev, opts.json === true));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has already printed its message (and the help); --help and --version end here with 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  // A request the command refused as it stands (a month not ended, an unknown plan; the running API's 400) is a bad
  // argument too (found from outside: `cdr billing close --month <this month>` exited 1).
  if (err instanceof PipelineError && (err.code === 'config_invalid' || err.code === 'key_invalid' || err.code === 'bad_request')) {
    process.stderr.write(`cdr: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`cdr: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
