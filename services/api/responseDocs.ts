/**
 * What each route answers on success, for the OpenAPI document only (found from outside: every success response was
 * `{"type":"object","additionalProperties":true}`, so "the responses match the document" said nothing). Kept off the
 * routes themselves: a response schema there would make fastify's serializer drop whatever it does not list.
 * `tests/integration/api/responseShapes.test.ts` validates real responses of every route against these schemas, so the
 * document cannot drift from what the API sends. OpenAPI 3.0 schemas (`nullable`); members beyond those listed may
 * be added (the contract: "more fields are welcome").
 */

type Schema = Record<string, unknown>;

const ISO = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$';
const instant: Schema = { type: 'string', pattern: ISO, description: 'ISO 8601 instant, UTC, to the millisecond' };
const nullableInstant: Schema = { ...instant, nullable: true };
const monthText: Schema = { type: 'string', pattern: '^\\d{4}-\\d{2}$' };
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };

function object(required: Record<string, Schema>, optional: Record<string, Schema> = {}): Schema {
  return { type: 'object', required: Object.keys(required), properties: { ...required, ...optional } };
}

const identifier = object({ type: { type: 'string', enum: ['msisdn', 'email'] }, value: str, flagged: bool }, { country: str, as_sent: bool });

/** A restored record of a law-enforcement answer or a data-subject export. */
const restoredRecord = object(
  {
    cdr_id: str,
    account_id: str,
    event_time: instant,
    channel: str,
    direction: str,
    sender: str,
    recipient: str,
    sender_type: str,
    recipient_type: str,
    status: str,
    duration_ms: { type: 'integer', nullable: true, description: 'null: the record had none' },
    provider_id: str,
    destination_country: { type: 'string', nullable: true },
    mcc: { type: 'string', nullable: true },
    mnc: { type: 'string', nullable: true },
    segments: int,
    source: { type: 'string', enum: ['live', 'held'] },
  },
  { hold_id: str },
);

const monthStatus = object(
  { month: monthText, status: { type: 'string', enum: ['answered', 'no_traffic', 'expired', 'held'] }, records: int },
  { expired_parts: { type: 'array', items: object({ from: instant, to: instant }) } },
);

const answerIntegrity = object({
  format: str,
  hash: str,
  canonicalization: str,
  signature_algorithm: str,
  key_id: str,
  public_key: str,
  signed_at: instant,
  fields: { type: 'object', additionalProperties: str },
  record_count: int,
  records_sha256: str,
  record_digests: str,
  record_fields: { type: 'object', additionalProperties: str },
  signature: str,
});

const answerTail = {
  integrity_salt: {
    type: 'string',
    description: '128 random bits (hex): integrity.fields.identifier is SHA-256 over it and the identifier; in the answer, never in its receipt',
  },
  records: { type: 'array', items: restoredRecord },
  months: { type: 'array', items: monthStatus },
  expired_months: { type: 'array', items: monthText },
  record_count: int,
  integrity: answerIntegrity,
};

const leaAnswer = object({
  request_id: str,
  authority: str,
  case_reference: str,
  legal_basis: str,
  identifier,
  from: instant,
  to: instant,
  answered_at: instant,
  confidential: bool,
  ...answerTail,
});

const dsarExport = object({
  request_id: str,
  identifier,
  from: instant,
  to: instant,
  answered_at: instant,
  disclosures: {
    type: 'array',
    items: object({
      request_id: str,
      authority: str,
      case_reference: str,
      legal_basis: str,
      at: instant,
      records: int,
      outcome: str,
      as: {
        type: 'string',
        enum: ['subject', 'party'],
        description: 'subject: the request was about this identifier; party: its answer gave it out as the other party of `records` records',
      },
    }),
  },
  holds: { type: 'array', items: object({ case_reference: str, reason: str, from: instant, to: instant, state: str }) },
  withheld: object({ disclosures: int, holds: int }),
  disclosures_unsearchable_months: {
    type: 'array',
    items: monthText,
    description: 'months (YYYY-MM) of the identifier window whose key was destroyed early: disclosures made in them could not be searched for',
  },
  ...answerTail,
});

const receipt = object(
  {
    request_id: str,
    kind: { type: 'string', enum: ['lea', 'dsar'] },
    status: str,
    requested_by: str,
    identifier_type: str,
    from: instant,
    to: instant,
    format: str,
  },
  {
    authority: str,
    case_reference: str,
    legal_basis: str,
    answered_at: nullableInstant,
    finished_at: nullableInstant,
    confidential: bool,
    months: { type: 'array', items: monthStatus },
    expired_months: { type: 'array', items: monthText },
    record_count: int,
    integrity: {
      ...answerIntegrity,
      nullable: true,
      description:
        "null once a key it was sealed under is gone (the request month's, a month it answered, a legal hold's whose copy it gave), or when the answer did not finish",
    },
  },
);

const hold = object({
  hold_id: str,
  case_reference: str,
  reason: str,
  id_type: str,
  from: instant,
  to: instant,
  state: { type: 'string', enum: ['active', 'released', 'purged'] },
  placed_at: instant,
  placed_by: str,
  released_at: nullableInstant,
  released_by: str,
  purged_at: nullableInstant,
  confidential: bool,
});

const usageRow = object(
  {
    account_id: str,
    currency: str,
    records: int,
    segments: int,
    duration_ms: int,
    amount_micros: int,
    cost_micros: int,
    adjustment_micros: int,
  },
  { day: str, month: monthText, channel: str, destination_country: str, provider_id: str, status: str },
);

const statementLine = object({
  currency: str,
  records: int,
  segments: int,
  duration_ms: int,
  billable_seconds: int,
  minutes: { type: 'number' },
  amount_micros: int,
  cost_micros: int,
});

const statement = object(
  {
    account_id: str,
    month: monthText,
    status: { type: 'string', enum: ['open', 'closed'] },
    closed_at: { type: 'string', nullable: true },
    closed_by: { type: 'string', nullable: true },
    lines: { type: 'array', items: statementLine },
    unrated_records: int,
    adjustments: {
      type: 'array',
      items: object({
        adjustment_id: str,
        concerns_month: monthText,
        currency: str,
        records: int,
        segments: int,
        amount_micros: int,
        cost_micros: int,
        reason: str,
        final: bool,
      }),
    },
    totals: { type: 'array', items: object({ currency: str, amount_micros: int, adjustment_micros: int, total_micros: int }) },
    digest: str,
  },
  { digest_verified: bool, exact: { type: 'boolean', description: 'present (false) only when a figure is past ±(2^53 − 1) micro-units' } },
);

const alert = object(
  {
    alert_id: str,
    rule: str,
    severity: { type: 'string', enum: ['warning', 'critical'] },
    key: { type: 'object' },
    risk_score: { type: 'integer', minimum: 0, maximum: 100 },
    started_at: instant,
    ended_at: instant,
    evidence: { type: 'object' },
  },
  { state: str, detected_at: instant },
);

const retentionAction = object(
  {
    class: { type: 'string', enum: ['identifiers', 'traffic', 'usage', 'held'] },
    month: monthText,
    rows: int,
    keys_destroyed: int,
  },
  { holds_honoured: int, verified: bool, hold_id: str },
);

const health = object(
  { status: { type: 'string', enum: ['ok', 'degraded', 'down'] }, reasons: { type: 'array', items: str } },
  { components: { type: 'object' } },
);

const auditEntry = object(
  { chain: str, seq: int, at: instant, actor: str, action: str, hash: str, prev_hash: str },
  { prev_at: nullableInstant, roles: str, method: str, route: str, status: int, outcome: str, request_id: str, rows: int },
);

const text = (description: string): Schema => ({ type: 'string', description });
const NDJSON = 'application/x-ndjson';
const CSV = 'text/csv';

/** One success response: its status, and its schema per content type (the first is the default form). */
export interface SuccessDoc {
  readonly status: '200' | '201';
  readonly description: string;
  readonly content: Readonly<Record<string, Schema>>;
  readonly headers?: Readonly<Record<string, { description: string }>>;
}

const answerHeaders = {
  'X-Request-Id': { description: 'the request id (also the receipt’s)' },
  'X-Expired-Months': { description: 'the months answered as expired, comma-separated' },
  'X-Identifier-Flagged': { description: 'true when the identifier was looked up as sent (unreadable form)' },
};

/** Keyed `METHOD url` as fastify names the route. */
export const SUCCESS_DOCS: Readonly<Record<string, SuccessDoc>> = {
  'GET /healthz': {
    status: '200',
    description: 'Every consumer runs and makes progress (503 with the same shape otherwise)',
    content: { 'application/json': health },
  },
  'GET /metrics': { status: '200', description: 'Prometheus metrics', content: { 'text/plain': text('Prometheus text exposition format 0.0.4') } },
  'GET /openapi.json': { status: '200', description: 'This document', content: { 'application/json': { type: 'object', required: ['openapi', 'paths'] } } },
  'POST /v1/lea/requests': {
    status: '201',
    description: 'The answer, signed (`Location` names its receipt)',
    content: {
      'application/json': leaAnswer,
      [NDJSON]: text('one record per line, nothing else; the integrity block is in the receipt'),
      [CSV]: text('a header row, then one row per record; a null is an empty cell'),
    },
    headers: { Location: { description: 'the receipt' }, ...answerHeaders },
  },
  'GET /v1/lea/requests/:id': {
    status: '200',
    description: 'A past request, its result summary and signed integrity block; never its records',
    content: { 'application/json': receipt },
  },
  'GET /v1/lea/signing-key': {
    status: '200',
    description: 'The public key that signs answers and retention reports',
    content: { 'application/json': object({ key_id: str, algorithm: str, public_key_pem: str, public_key: str }) },
  },
  'POST /v1/holds': {
    status: '201',
    description: 'The hold placed, with what it copied',
    content: {
      'application/json': {
        ...hold,
        required: [...(hold['required'] as string[]), 'copied', 'expired_months'],
        properties: { ...(hold['properties'] as Schema), copied: int, expired_months: { type: 'array', items: monthText } },
      },
    },
  },
  'GET /v1/holds': { status: '200', description: 'Legal holds', content: { 'application/json': object({ holds: { type: 'array', items: hold } }) } },
  'GET /v1/holds/:id': { status: '200', description: 'One legal hold', content: { 'application/json': hold } },
  'DELETE /v1/holds/:id': { status: '200', description: 'The hold, released (releasing twice is harmless)', content: { 'application/json': hold } },
  'POST /v1/dsar': {
    status: '200',
    description: 'The data-subject export, signed',
    content: {
      'application/json': dsarExport,
      [NDJSON]: text('one record per line; the signed header and integrity block are in the receipt'),
      [CSV]: text('a header row, then one row per record; a null is an empty cell'),
    },
    headers: answerHeaders,
  },
  'GET /v1/dsar/:id': { status: '200', description: 'An export’s receipt; never its records or the identifier', content: { 'application/json': receipt } },
  'GET /v1/audit': {
    status: '200',
    description: 'Audit entries, oldest first, with a cursor for the next page',
    content: { 'application/json': object({ entries: { type: 'array', items: auditEntry } }, { next_cursor: { type: 'string', nullable: true } }) },
  },
  'GET /v1/audit/verify': {
    status: '200',
    description: 'The audit trail’s integrity check',
    content: {
      'application/json': object(
        { ok: bool, entries: int },
        {
          first_bad_entry: { type: 'object', nullable: true, description: 'chain, seq and the problem of the first break; null when none' },
          problems: { type: 'array', items: str },
        },
      ),
    },
  },
  'GET /v1/billing/usage': {
    status: '200',
    description: 'Usage aggregates (only the grouped-by dimensions appear; money in integer micro-units)',
    content: { 'application/json': object({ rows: { type: 'array', items: usageRow } }), [CSV]: text('the same rows, a header row first') },
  },
  'GET /v1/billing/statements/:account/:month': {
    status: '200',
    description: 'A monthly statement with its digest',
    content: { 'application/json': statement },
  },
  'POST /v1/billing/close': {
    status: '200',
    description: 'The month closed (or, with `through`, every month closed in order)',
    content: {
      'application/json': {
        type: 'object',
        properties: {
          month: monthText,
          accounts: int,
          adjustments: int,
          digest: str,
          through: monthText,
          closed: { type: 'array', items: object({ month: monthText, accounts: int, adjustments: int, digest: str }) },
        },
      },
    },
  },
  'POST /v1/billing/rerate': {
    status: '200',
    description: 'Totals before and after, per currency',
    content: {
      'application/json': object({
        rerate_id: str,
        records: int,
        changed: int,
        before: { type: 'array', items: object({ currency: str, records: int, amount_micros: int, cost_micros: int }) },
        after: { type: 'array', items: object({ currency: str, records: int, amount_micros: int, cost_micros: int }) },
      }),
    },
  },
  'GET /v1/billing/providers/:provider/costs/:month': {
    status: '200',
    description: 'Our cost of a provider’s traffic per day, destination country and currency',
    content: {
      'application/json': object({
        cells: { type: 'array', items: object({ day: str, destination_country: str, currency: str, records: int, cost_micros: int }) },
      }),
    },
  },
  'GET /v1/fraud/alerts': {
    status: '200',
    description: 'Alerts whose activity overlaps the range, newest first',
    content: { 'application/json': object({ alerts: { type: 'array', items: alert } }, { truncated: bool }) },
  },
  'POST /v1/admin/retention/run': {
    status: '200',
    description: 'What the pass deleted (or, dry, would delete)',
    content: {
      'application/json': object(
        { now: instant, dry_run: bool, actions: { type: 'array', items: retentionAction } },
        { run_id: str, actor: str, clock_moved: { type: 'boolean', description: 'true when the pass ran on a clock given to it (a drill)' } },
      ),
    },
  },
  'GET /v1/retention/reports/:month': {
    status: '200',
    description: 'The signed destruction report of a month (check it with `cdr retention verify-report`)',
    content: {
      'application/json': object({
        format: str,
        month: monthText,
        generated_at: instant,
        entries: { type: 'array' },
        chain_head: { type: 'object' },
        summary: str,
        signature: str,
      }),
    },
  },
};

/** The success response of a route for the document, in @fastify/swagger's form (`content` per media type). */
export function documentedSuccess(method: string, url: string): { status: string; response: Schema } | undefined {
  const doc = SUCCESS_DOCS[`${method} ${url}`];
  if (!doc) return undefined;
  return {
    status: doc.status,
    response: {
      description: doc.description,
      content: Object.fromEntries(Object.entries(doc.content).map(([type, schema]) => [type, { schema }])),
      ...(doc.headers ? { headers: Object.fromEntries(Object.entries(doc.headers).map(([h, d]) => [h, { type: 'string', description: d.description }])) } : {}),
    },
  };
}
