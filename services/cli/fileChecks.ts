import { checkDirectory, type FileCheck } from '../platform/config/index.ts';
import { checkMasterKeyFile } from '../platform/keys/index.ts';
import { checkSigningKeyFile } from '../platform/signing/index.ts';
import { readPlanFile, plansFileOf } from '../billing/planFile.ts';
import { readRulesFile } from '../fraud/createFraud.ts';
import { TokenRegistry } from '../api/auth.ts';
import { KAFKA_FILE_CHECKS } from '../platform/kafka/index.ts';
import { LOG_FILE_CHECKS } from '../platform/observability/index.ts';

/**
 * Every file a variable of `cdr start` may name, read by the reader that uses it (so the checks are the real ones):
 * `loadConfigAndFiles` runs them before the broker or the engine starts and names every problem at once. The
 * services' own `main.ts` check the subset they read.
 */
export const START_FILE_CHECKS: Readonly<Record<string, FileCheck>> = {
  CDR_MASTER_KEY_FILE: checkMasterKeyFile,
  CDR_SIGNING_KEY_FILE: checkSigningKeyFile,
  CDR_API_TOKENS_FILE: (path) => TokenRegistry.fromFile(path),
  CDR_BILLING_PLANS_FILE: (path) => readPlanFile(plansFileOf(path)),
  CDR_FRAUD_RULES_FILE: (path) => readRulesFile(path),
  ...KAFKA_FILE_CHECKS,
  ...LOG_FILE_CHECKS,
  // Directories too (found from outside: a file or /proc/x given for one started the broker and the engine, then
  // failed with a raw ENOTDIR / EEXIST, or hung for good). The data directory is startPreflight's, with the ports.
  CDR_AUDIT_ANCHOR_DIR: checkDirectory,
  CDR_DEV_KEY_DIR: checkDirectory,
};
