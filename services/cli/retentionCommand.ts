import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import {
  duplicateMemberOf,
  givenTwiceProblem,
  requireMonth,
  PipelineError,
  isoInstantProblem,
  parseIsoInstant,
  verifyDestructionReport,
  type DestructionReport,
  type DestructionReportCheck,
} from '../core/index.ts';
import type { PipelineConfig } from '../platform/config/index.ts';
import { openProcessAudit } from '../platform/audit/index.ts';
import { createCommandLogger } from '../platform/observability/index.ts';
import { openRuntime, requireStorage } from '../platform/runtime/index.ts';
import { loadSigner, trustedPublicKey } from '../platform/signing/index.ts';
import { DestructionLog } from '../retention/destructionLog.ts';
import { createRetention } from '../retention/wiring.ts';
import { runningApi } from './runningApi.ts';
import { verifyAudit } from './auditCommand.ts';

/**
 * `cdr retention run [--now ISO] [--dry-run]`: one pass, JSON report on stdout. Opens the storage itself, or, when a
 * running `cdr start` holds the embedded store, asks its `POST /v1/admin/retention/run` (token: CDR_API_TOKEN, or
 * the development `admin` token `cdr start` wrote). `--now` moves the clock of a dry run; a real run takes it only with
 * CDR_ALLOW_CLOCK_OVERRIDE=1 (tests and retention drills). The report and the retention log name the OS user.
 */
export async function runRetention(config: PipelineConfig, args: { now?: string; dryRun: boolean }): Promise<void> {
  const at = args.now === undefined ? undefined : parseIsoInstant(args.now);
  if (args.now !== undefined && at === undefined) throw new PipelineError('config_invalid', isoInstantProblem('--now', args.now));
  // A running `cdr start` holds the embedded store: the pass runs there, through its API (the same report; the
  // server applies its own CDR_ALLOW_CLOCK_OVERRIDE to a real run's `now`, so this process's is not asked: found by a
  // review, a drill against a server started with it was refused here for want of it in the CLI's environment).
  const remote = config.clickhouse.url ? undefined : runningApi(config.dataDir, 'admin');
  if (at !== undefined && !remote && !args.dryRun && !config.retention.allowClockOverride) {
    throw new PipelineError(
      'config_invalid',
      '--now: only a dry run may move the clock (a real run destroys at the real time); add --dry-run, or set CDR_ALLOW_CLOCK_OVERRIDE=1 for a retention drill',
    );
  }
  const now = at ?? Date.now();
  if (remote) {
    const report = await remote.call<unknown>('POST', '/v1/admin/retention/run', {
      ...(args.now !== undefined ? { now: new Date(now).toISOString() } : {}),
      dry_run: args.dryRun,
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const log = createCommandLogger(config.logLevel);
  // With external brokers (KAFKA_BROKERS), the pass checks and corrects the topics that carry identifiers too; a
  // broker away must not stop the retention of the store, so it then runs without (and its report has no `topics`).
  let rt;
  if (config.kafka.brokers) {
    try {
      rt = await openRuntime(config, { log });
    } catch (err) {
      // Only brokers that do not answer are passed over: anything else (a store or key that cannot be opened, a login
      // refused) is not "Kafka unreachable" (found 2026-12-06: an insert the engine refused was reported so, then the
      // pass ran on a second open).
      if (!(err instanceof PipelineError && err.code === 'broker_unavailable')) throw err;
      log.warn({ err }, 'Kafka unreachable: the retention pass runs without checking the topics');
    }
  }
  rt ??= await openRuntime(config, { needKafka: false, log });
  try {
    const audit = await openProcessAudit(rt, 'cli');
    try {
      const { pass } = createRetention(rt, { audit, signer: audit.signer });
      // Without KAFKA_BROKERS (the local broker runs with cdr start), the topics are checked by cdr start and by the
      // passes it runs; this report then has no "topics".
      const report = await pass.run({ now, dryRun: args.dryRun, actor: `cli:${safeUser()}`, clockMoved: at !== undefined });
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } finally {
      await audit.close();
    }
  } finally {
    await rt.close();
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * `cdr retention report --month YYYY-MM [--out FILE]`: the signed destruction report of a month — every action the
 * retention passes recorded about it (class, rows, key ids, when, who, what verification found), the signed head of
 * the chain and a signature over the whole, to hand to a third party. From the store, or from a running `cdr start`'s
 * API (`GET /v1/retention/reports/{month}`) when it holds the store.
 */
export async function retentionReport(
  config: PipelineConfig,
  args: { month: string; out?: string },
): Promise<{ report: DestructionReport; recordProblems: string[] }> {
  requireMonth(args.month, 'config_invalid', '--month');
  const remote = config.clickhouse.url ? undefined : runningApi(config.dataDir, 'dpo');
  let report: DestructionReport;
  // Every stored entry recomputed, not only the month's (found from outside: an entry moved to another month, or a
  // pass entry changed, left this month's report "intact"). Read from the store; through a running API, the report alone.
  let recordProblems: string[] = [];
  if (remote) {
    report = await remote.call<DestructionReport>('GET', `/v1/retention/reports/${args.month}`);
  } else {
    const rt = await openRuntime(config, { needKafka: false, log: createCommandLogger(config.logLevel) });
    try {
      const signer = loadSigner(config.audit.signingKeyFile, config.dataDir, !config.clickhouse.url);
      const log = new DestructionLog(requireStorage(rt).storage, signer);
      report = await log.report(args.month);
      recordProblems = (await log.verify([signer.publicKeyObject])).problems;
    } finally {
      await rt.close();
    }
  }
  if (!remote) {
    // The record's newest entries are checked against the head the audit trail names: with the trail's own tail
    // removed as well, both agreed (found from outside). The trail's chain, checkpoints and anchors say so.
    try {
      const audit = await verifyAudit(config, {});
      if (!audit.ok && audit.first_bad_entry)
        recordProblems.push(
          `the audit trail, which names the record's newest entries, does not verify (chain ${audit.first_bad_entry.chain}, entry ${audit.first_bad_entry.seq}: ${audit.first_bad_entry.problem}); see cdr audit verify`,
        );
    } catch (err) {
      process.stderr.write(`cdr: the audit trail was not checked with the report: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (args.out) writeFileSync(args.out, text, { mode: 0o644 });
  else process.stdout.write(text);
  return { report, recordProblems };
}

/**
 * What the offline check finds wrong in a report just made (`verify-report`'s problems): none when the stored record is
 * whole and unchanged. The report carries the record as stored, tampering included; this says so where the maker sees
 * it (found from outside: with entries changed or deleted, `report` said "N entries … signed" and exited 0).
 */
export function storedRecordProblems(report: DestructionReport, recordProblems: readonly string[] = []): string[] {
  const check = verifyDestructionReport(report, []);
  const problems = check.ok ? [] : [...check.problems];
  // The whole stored record's own problems, each once (a problem of the month's entries is in both).
  for (const p of recordProblems) if (!problems.includes(p)) problems.push(`stored record: ${p}`);
  return problems;
}

/**
 * `cdr retention verify-report FILE [--public-key K]`: checks a destruction report offline. The signatures are checked
 * against a trusted key — --public-key, else CDR_SIGNING_KEY_FILE, else the development key of the data directory —
 * or, with none, against the key the report carries, and the answer says so. Exit 0: intact; 1: changed or failed.
 */
export function verifyReportFile(args: { file: string; publicKey?: string; signingKeyFile: string | undefined; dataDir: string }): DestructionReportCheck & {
  trusted_key_from: string | null;
} {
  if (!existsSync(args.file)) throw new PipelineError('config_invalid', `no such file: ${args.file}`);
  let doc: unknown;
  const text = readFileSync(args.file, 'utf8');
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new PipelineError('config_invalid', `${args.file} is not JSON`, { cause });
  }
  const trusted = trustedPublicKey(args);
  const check = verifyDestructionReport(doc, trusted ? [trusted.key] : []);
  // A member given twice: JSON.parse keeps the last, another reader the first; not the report that was signed.
  const twice = duplicateMemberOf(text);
  const checked = twice === undefined ? check : { ...check, ok: false, problems: [givenTwiceProblem(twice), ...check.problems] };
  return { ...checked, trusted_key_from: trusted?.from ?? null };
}

export function printReportCheck(r: DestructionReportCheck & { trusted_key_from: string | null }, file: string): string {
  // Not a report at all: said first, and nothing about keys or signatures that were never looked at.
  if (!r.report)
    return `${[`${file}: not a retention report — nothing was checked`, ...r.problems.map((p) => `  - ${p.replace(/^not a retention report: /, '')}`)].join('\n')}\n`;
  const lines = [
    `${file}: ${r.ok ? 'intact' : 'NOT intact'} — retention report of ${r.month ?? '?'}, ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}, signed by ${r.key_id ?? '?'}`,
    r.trusted_key
      ? `signatures checked against the trusted key in ${r.trusted_key_from}`
      : r.trusted_key_from
        ? `the signing key is not the trusted key in ${r.trusted_key_from}`
        : 'signatures checked against the key the report carries only: no trusted key given (--public-key, CDR_SIGNING_KEY_FILE); compare the key id with GET /v1/lea/signing-key',
    r.whole_chain
      ? "the whole chain's links followed, first entry to the signed head: an entry removed from any month is named"
      : "the report carries its month's entries only (made before 2026-12-06): an entry removed from the stored record between them is not seen",
    ...r.problems.map((p) => `  - ${p}`),
  ];
  return `${lines.join('\n')}\n`;
}
