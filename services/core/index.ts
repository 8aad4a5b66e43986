/**
 * The pure core of cdr-pipeline: everything here computes and nothing does I/O (a lint rule keeps it so).
 * Decode and validate CDRs, normalise identifiers, derive tokens and sealed identifiers, the retention
 * calendar, duplicate windows and the one error model. Services and platform import it from here.
 */
export { CHANNELS, DIRECTIONS, SENDER_TYPES, STATUSES } from './cdr/cdrEvent.ts';
export type { CdrEvent, Channel, Direction, SenderType, Status } from './cdr/cdrEvent.ts';
export { EARLIEST_EVENT_TIME, identifierInText, identifierShaped, recordIdShaped, validateCdr } from './cdr/validate.ts';
export type { ValidationLimits } from './cdr/validate.ts';
export { sanitiseCdr, sanitiseClientIp, sanitiseErrorCode } from './cdr/sanitise.ts';
export type { DroppedField, Sanitised } from './cdr/sanitise.ts';
export { COUNTRY_CODES, ISO_3166_ALPHA2, ISO_4217 } from './cdr/codes.ts';
export {
  CDR_EVENT_SCHEMA_ID,
  CdrCodec,
  CONFLUENT_MAGIC,
  frameConfluent,
  FRAUD_ALERT_SCHEMA_ID,
  PSEUDONYMISED_SCHEMA_ID,
  PSEUDONYMISED_V1_SCHEMA_ID,
} from './cdr/avroCodec.ts';
export type { FramedValueWriter, PseudonymisedValue, RegisteredSchema, RegistryAnswers } from './cdr/avroCodec.ts';
export {
  blankIdentifier,
  cleanIdentifier,
  IdentifierNormaliser,
  keptAsSent,
  normaliseEmail,
  normaliseIdentifier,
  isIdentifierType,
  normaliseOther,
  normalisePhone,
  recipientTypeOf,
} from './identity/normalise.ts';
export type { IdentifierType, NormalisedIdentifier } from './identity/normalise.ts';
export {
  deriveMonthKey,
  generateMonthKey,
  jsSealer,
  KEY_BYTES,
  KeyWrapError,
  openIdentifier,
  sealIdentifier,
  tokenAndSeal,
  TOKEN_BYTES,
  tokenOf,
  unwrapMonthKey,
  wrapMonthKey,
} from './pseudonym/monthKeys.ts';
export type { MonthKey, MonthSealer, SealerFactory } from './pseudonym/monthKeys.ts';
export { CDR_SHAPE, cdrRowIdentity, VAULT_SHAPE, vaultRowIdentity, Pseudonymiser, NULL_FIELD, nullFieldsOf } from './pseudonym/pseudonymise.ts';
export type { CdrRow, PseudonymisedEvent, PseudonymisedRecord, SourcePosition, VaultRow } from './pseudonym/pseudonymise.ts';
export type { RowShape, RowBinaryType } from './pseudonym/rowShape.ts';
export {
  addMonthsUtc,
  CalendarMemo,
  identifierCutoff,
  identifiersExpired,
  lastExpiredIdentifierMonth,
  monthDateOf,
  monthKeyOf,
  monthsInRange,
  monthStartOf,
  startOfMonthUtc,
  startOfYearUtc,
  trafficCutoff,
  usageCutoff,
  usageExpired,
} from './retention/retentionCalendar.ts';
export {
  DESTRUCTION_ENTRY_FORMAT,
  DESTRUCTION_GENESIS,
  DESTRUCTION_REPORT_FORMAT,
  actionScope,
  buildDestructionReport,
  linkOf,
  isBegun,
  destructionEntryHash,
  destructionEntrySchema,
  destructionReportSchema,
  signDestructionEntry,
  verifyDestructionChain,
  verifyDestructionReport,
} from './retention/destructionRecord.ts';
export type {
  DestructionEntry,
  DestructionEntryContent,
  DestructionHead,
  DestructionLink,
  DestructionReport,
  DestructionReportCheck,
} from './retention/destructionRecord.ts';
export { RecentIds, RecentScopedIds } from './dedup/recentIds.ts';
export { StoredIdFilter, type FilterHold, type StoredIdFilterOptions } from './dedup/storedIdFilter.ts';
export { classifyError, ERROR_CODES, PipelineError, ruleOf } from './errors/pipelineError.ts';
export type { Disposition, PipelineErrorCode } from './errors/pipelineError.ts';
export { isoInstantProblem, parseIsoInstant, quotedValue } from './time/isoInstant.ts';
export { canonicalFlatJson, canonicalJson, sha256Hex } from './disclosure/canonical.ts';
export { openReceipt, sealReceipt } from './disclosure/receiptSeal.ts';
export type { SealedReceipt } from './disclosure/receiptSeal.ts';
export {
  ANSWER_FORMAT,
  ANSWER_FORMAT_1,
  answerIntegritySchema,
  answerSalt,
  fieldDigests,
  keyIdOf,
  RecordDigester,
  SALT_MEMBER,
  signAnswer,
  verifyAnswer,
} from './disclosure/answerIntegrity.ts';
export type { AnswerIntegrity, AnswerSigner, VerifyAnswerInput, VerifyAnswerReport } from './disclosure/answerIntegrity.ts';
export { acceptsAnyOf, answerFormatOf, answerWriter, preferredOf, CONTENT_TYPES, CSV_COLUMNS, parseCsv, recordsFromCsv } from './disclosure/answerFormat.ts';
export type { AnswerFormat, AnswerWriter } from './disclosure/answerFormat.ts';
export { AUDIT_RETENTION_MONTHS, AuditChainVerifier, CHECKPOINT_FORMAT, checkpointBytes, entryHash, GENESIS_HASH, NOT_ANCHORED } from './audit/auditChain.ts';
export type { AuditCheckpoint, AuditEntry, AuditEntryContent, ChainProblem, ChainReport } from './audit/auditChain.ts';
export { numberRangeOf, numberTypeOf, RANGE_HIDDEN_DIGITS } from './identity/numberRange.ts';
export { parsePlanBook, planBody } from './billing/tariffPlan.ts';
export type { PlanBook, RateLine, TariffPlan } from './billing/tariffPlan.ts';
export { billableSeconds, planFor, rate, rateLineFor } from './billing/rating.ts';
export type { Rating, RatingInput } from './billing/rating.ts';
export {
  MONTH,
  MONTH_RULE,
  monthOf,
  requireMonth,
  monthStart,
  nextMonth,
  sealStatement,
  statementDigest,
  statementForReaders,
  totalsOf,
} from './billing/statement.ts';
export type { Statement, StatementAdjustment, StatementBody, StatementLine, StatementTotal } from './billing/statement.ts';
export { decimalToMicros, reconcile } from './billing/reconcile.ts';
export { readInvoiceText, type InvoiceReading } from './billing/invoice.ts';
export { sortUsageRows } from './billing/usageOrder.ts';
export { impossibleIdProblem } from './billing/ids.ts';
export { addMicros, beyondExactRange, exactMicros, MAX_EXACT_MICROS } from './billing/money.ts';
export type { CostCell, Difference, InvoiceLine } from './billing/reconcile.ts';
export { DEFAULT_FRAUD_CONFIG, DEFAULT_RULES, parseFraudConfig, RULE_NAMES, thresholdsFor } from './fraud/fraudConfig.ts';
export type { FraudConfig, Override, RuleConfig, RuleName } from './fraud/fraudConfig.ts';
export { alertIdOf, FraudDetector } from './fraud/fraudDetector.ts';
export type { Alert, AlertChange, AlertKey, FraudEvent, LearnedAccount, LearnedBaseline, LearnedState, Severity } from './fraud/fraudDetector.ts';
export { duplicateMemberOf, givenTwiceProblem } from './json/duplicateMembers.ts';
export { alignmentDistance } from './text/alignmentDistance.ts';
