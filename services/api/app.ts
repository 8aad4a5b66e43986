import { dropUnreadFields, type ObjectSchema } from './bodyFields.ts';
import { STATUS_CODES } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { Logger } from 'pino';
import { acceptsAnyOf, duplicateMemberOf, MONTH, MONTH_RULE, PipelineError, quotedValue, type PipelineErrorCode } from '../core/index.ts';
import type { HealthRegistry } from '../platform/http/index.ts';
import { opsRoutes } from '../platform/http/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import { auditHook } from './auditHook.ts';
import { TokenRegistry, identify, refuseUnauthenticated, rolesOf } from './auth.ts';
import { adminRetentionRoutes } from './routes/adminRetention.ts';
import { auditRoutes } from './routes/audit.ts';
import { billingRoutes } from './routes/billing.ts';
import { fraudRoutes } from './routes/fraud.ts';
import { dsarRoutes } from './routes/dsar.ts';
import { holdRoutes } from './routes/holds.ts';
import { leaRoutes } from './routes/lea.ts';
import { errorSchema, FREE_TEXT_FORMAT, FREE_TEXT_PATTERN, FREE_TEXT_RULE, freeTextFormat, IDENTIFIER_IN_FREE_TEXT } from './routes/common.ts';
import type { ApiServices } from './wiring.ts';
import { documentedSuccess } from './responseDocs.ts';

/** Schema patterns, and how an error message says them. */
const PATTERN_RULES = new Map<string, string>([
  [MONTH.source, MONTH_RULE],
  [FREE_TEXT_PATTERN, FREE_TEXT_RULE],
]);

const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether any string in a parsed JSON value (keys included) holds a lone surrogate. */
function hasLoneSurrogate(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (value === null || typeof value !== 'object' || depth > 256) return false;
  if (Array.isArray(value)) return value.some((v) => hasLoneSurrogate(v, depth + 1));
  for (const [k, v] of Object.entries(value)) if (LONE_SURROGATE.test(k) || hasLoneSurrogate(v, depth + 1)) return true;
  return false;
}

/**
 * The internal HTTP API. `buildApi` returns the app without listening, so tests use `app.inject()`.
 *
 * Layout: the ops routes (`/healthz`, `/metrics`, `/openapi.json`, no token) at the root; one plugin per domain inside
 * the `/v1` scope, whose hooks apply to every route registered there: `onRequest` authenticates, a per-token rate
 * limit runs before the handler, and `onSend` writes the audit entry before the response leaves (lea, holds, dsar,
 * audit, admin/retention; billing and fraud as they come). Errors are `{"error": "<code>", "message": "<sentence>"}`,
 * the status taken from the one error table (core/errors/pipelineError.ts).
 */
export interface ApiDeps {
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly health: HealthRegistry;
  readonly tokens?: TokenRegistry;
  readonly services: ApiServices;
  /** Requests per token in each window (CDR_API_RATE_LIMIT, CDR_API_RATE_WINDOW_MS). */
  readonly rateLimit?: { readonly max: number; readonly windowMs: number };
  /** How long a client has to send its whole request, headers and body (default REQUEST_TIMEOUT_MS); tests shorten it. */
  readonly requestTimeoutMs?: number;
}

/** fastify's own 4xx (bad JSON, wrong content type, body too large) as the error table's codes. */
const FASTIFY_STATUS_CODES: Record<number, PipelineErrorCode> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

export interface ApiRoute {
  readonly method: string;
  /** As registered, with `:param` placeholders. */
  readonly url: string;
  /** The roles that may call it (empty: no token needed). */
  readonly roles: readonly string[];
}

const ROUTES = new WeakMap<FastifyInstance, ApiRoute[]>();

/** Every route of an app built by buildApi (tests enumerate them: auth bypass attempts, fuzzing). */
export function apiRoutes(app: FastifyInstance): readonly ApiRoute[] {
  return ROUTES.get(app) ?? [];
}

/** What a body that is not JSON (or has no Content-Type) is told. */
const NOT_JSON = 'a request body is JSON: send it with Content-Type: application/json';

/**
 * The refusal of a compressed body, checked where a body is read (after the role check, like a malformed body): the
 * API reads JSON as sent, and a `Content-Encoding` it ignored would make gzip "not valid JSON", or read a body the
 * header says is something else.
 */
function compressedBody(req: FastifyRequest): PipelineError | undefined {
  const encoding = req.headers['content-encoding'];
  return encoding !== undefined && !/^\s*identity\s*$/i.test(encoding)
    ? new PipelineError('unsupported_media_type', 'Content-Encoding is not supported: send the body uncompressed (identity)')
    : undefined;
}

const MAX_PARAM_LENGTH = 512;

/**
 * Fastify's default is no limit: a caller that sends its headers and then a byte a minute held its socket for ever, and
 * enough of them every socket the process may open. 30 s receives the largest body (1 MiB) on any link an internal
 * caller has; the answer's time is not counted (a long law-enforcement stream is not cut).
 */
const REQUEST_TIMEOUT_MS = 30_000;

/** Whether `text` is JSON by the letter (JSON.parse makes `__proto__` an own member: nothing is reached through it). */
function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = deps.log.child({ component: 'api' });
  // Per-request access lines are off: client addresses are usage data, recorded only where audited.
  // Unknown body fields are an error, not silently dropped (fastify's default would remove them).
  const requestTimeout = deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const app = Fastify({
    loggerInstance,
    requestTimeout,
    // Node checks the timeout every `connectionsCheckingInterval` (30 s by default): a late 408 doubles the wait.
    http: { headersTimeout: requestTimeout, connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(requestTimeout / 4))) },
    // Ids are up to 128 characters, each up to 3 when percent-encoded; the route schemas hold them to 128. Fastify's
    // default of 100 refused a statement for a 120-character account id that usage answered for (found from outside).
    // (Under routerOptions: top-level router options are deprecated in fastify 5, FSTDEP022.)
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    logController: new LogController({ disableRequestLogging: true }),
    // No type coercion: `"false"`, `0` or `null` where a boolean belongs is a 400, not a silent false.
    // Free text is checked for identifiers by a format of its own (routes/common.ts `freeText`).
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false },
      plugins: [(ajv) => ajv.addFormat(FREE_TEXT_FORMAT, freeTextFormat)],
    },
    // What the router refuses before any route (a malformed percent-encoding, a path parameter over MAX_PARAM_LENGTH)
    // answers in the contract's error shape too.
    frameworkErrors: (err, _req, reply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      // The reply's types are the routes' (none here): this one is plain JSON. Fastify's own message quotes the path,
      // where a caller may have put an identifier: said in words instead.
      const raw = reply as unknown as { code(n: number): { send(body: unknown): unknown } };
      const message =
        status === 414 ? `a path parameter is over ${MAX_PARAM_LENGTH} characters` : 'the path is not a valid URL (a malformed percent-encoding?)';
      void raw.code(status).send({ error: FASTIFY_STATUS_CODES[status] ?? 'bad_request', message });
      // No route's hooks run for these: counted here (found from outside: 414s and malformed URLs were in no series).
      deps.metrics.apiRequests.inc({ route: 'unmatched', status: String(status) });
    },
    // And what Node's HTTP parser refuses (headers or a query string too large, a malformed request line).
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
      // A response already under way on this socket (a 401 or 403 answered before the body was read, and the caller
      // still sending it): a second status line would corrupt the stream, so the socket is closed, as Node's own
      // handler does (its private `_httpMessage` is the only way to the response from here).
      if ((socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true) {
        socket.destroy();
        return;
      }
      const [status, message] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'the request line and headers are over the size limit (a query string too long?)']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'the request was not received in time']
            : [400, 'a malformed HTTP request'];
      const body = JSON.stringify({ error: status === 408 ? 'request_timeout' : 'bad_request', message });
      deps.metrics.apiRequests.inc({ route: 'unmatched', status: String(status) });
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    },
  });
  const tokens = deps.tokens ?? TokenRegistry.empty();
  /** Routes whose POST answers 201 Created (the rest answer 200). */
  const CREATED = new Set(['/v1/lea/requests', '/v1/holds']);

  // Every route also goes into a second router, so that a known path asked with another method is a 405 with `Allow`.
  const known = FindMyWay({ ignoreTrailingSlash: false });
  const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
  const table: ApiRoute[] = [];
  ROUTES.set(app, table);
  app.addHook('onRoute', (route) => {
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) {
      known.on(m.toUpperCase() as HTTPMethod, route.url, () => undefined, { url: route.url });
      if (m.toUpperCase() !== 'HEAD') table.push({ method: m.toUpperCase(), url: route.url, roles: rolesOf(route.preParsing) });
    }
  });

  // The OpenAPI document is generated from the route schemas; each operation names its roles (x-roles) and security.
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'cdr-pipeline internal API',
        version: '1',
        description: 'Law-enforcement requests, legal holds, data-subject access, the audit trail and operations (docs/contract.md).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    hideUntagged: false,
    exposeHeadRoutes: false,
    transform: ({ schema, url, route }) => {
      const roles = rolesOf(route.preParsing);
      const base = (schema ?? {}) as Record<string, unknown>;
      // Every operation names its success response (found from outside: only the errors were listed). Added to the
      // document only: a response schema on the route itself would make fastify's serializer drop what it omits.
      const responses = { ...((base['response'] as Record<string, unknown> | undefined) ?? {}) };
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      // What the route sends on success, by content type (services/api/responseDocs.ts; a contract test holds real
      // responses to it — found from outside: every success was documented as "any object").
      const documented = documentedSuccess(methods.find((m) => m !== 'HEAD') ?? 'GET', route.url);
      if (documented) {
        for (const code of Object.keys(responses)) if (code.startsWith('2')) delete responses[code];
        responses[documented.status] = documented.response;
      } else if (!Object.keys(responses).some((code) => code.startsWith('2'))) {
        const created = methods.includes('POST') && CREATED.has(url);
        responses[created ? '201' : '200'] = {
          description: created ? 'Created (`Location` names it)' : 'OK',
          type: 'object',
          additionalProperties: true,
        };
      }
      // And the errors every /v1 route can answer (found from outside: several listed only their success): a query
      // parameter it does not take is a 400 on every route; the token, role and rate limit apply to each.
      if (roles.length > 0)
        for (const [code, description] of [
          ['400', 'Bad request (the message names the problem)'],
          ['401', 'No or an unknown bearer token'],
          ['403', `The token lacks the role (${roles.join(' or ')})`],
          ['429', 'Rate limit reached (`Retry-After` says when to try again)'],
          ['503', 'The store or the audit trail cannot be reached now (retry)'],
          ...(route.url.includes(':')
            ? ([
                ['404', 'No such item'],
                ['414', 'A path parameter over 512 characters'],
              ] as const)
            : []),
          ...(methods.includes('POST')
            ? ([
                ['413', 'The body is over the limit'],
                ['415', 'The body is not JSON (`Content-Type: application/json`), or is compressed'],
              ] as const)
            : []),
        ] as const)
          responses[code] ??= { description, ...errorSchema };
      return {
        schema: { ...base, response: responses, 'x-roles': roles, ...(roles.length > 0 ? { security: [{ bearer: [] }] } : {}) } as typeof schema,
        url,
      };
    },
  });

  // Answered before the body was read (a 401 or 403 before it is read, a 413 on its length; `complete` is false until
  // the body is read, even when all of it has arrived): the connection is closed after the answer. Kept open, Node read the rest of that body for the next request, and a caller still
  // sending it got a second, unasked status line (the request timeout's 408) on the same socket (found writing its test).
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.raw.complete) void reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.apiRequests.inc({ route: req.routeOptions.url ?? req.knownRoute ?? 'unmatched', status: String(reply.statusCode) });
  });

  void app.register(opsRoutes, { metrics: deps.metrics, health: deps.health });
  // Listed in itself, as every other route is (registered as a plugin, so after swagger's route collector is in place).
  void app.register(async (root) => {
    root.get(
      '/openapi.json',
      { schema: { summary: 'This OpenAPI 3 document (no token)', tags: ['operations'], response: { 200: { type: 'object', additionalProperties: true } } } },
      async () => {
        const doc = app.swagger() as { paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>> };
        // Every field of a retention run is optional and an empty POST runs it (docs/api.md): its body is not required.
        const run = doc.paths?.['/v1/admin/retention/run']?.['post'];
        if (run?.requestBody) run.requestBody.required = false;
        return doc;
      },
    );
  });
  const svc = deps.services;
  let limitUnmatched: ((req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) | undefined;
  void app.register(
    async (v1) => {
      v1.addHook('onRequest', identify(tokens));
      v1.addHook('preParsing', refuseUnauthenticated);
      // A blank query parameter (`?account_id=&from=`, the brief's own templates) is a parameter not given.
      v1.addHook('preValidation', async (req) => {
        const q = req.query as Record<string, unknown> | null | undefined;
        if (q && typeof q === 'object') for (const k of Object.keys(q)) if (q[k] === '') delete q[k];
      });
      // Body fields a route does not read: ignored and removed before the handler, or refused when they look like a
      // misspelling of one it reads (ADR 0041). Before validation, so a misspelt optional field is named as such.
      v1.addHook('preValidation', async (req) => {
        const strictUnless = req.routeOptions.config.strictUnless;
        const problem = dropUnreadFields(req.body, req.routeOptions.schema?.body as ObjectSchema | undefined, strictUnless ? { strictUnless } : {});
        if (problem !== undefined) throw new PipelineError('bad_request', problem);
      });
      // A route that declares no query parameters takes none (found from outside: `POST /v1/admin/retention/run?dry_run=true`
      // ran a real pass, the parameter silently ignored). After the role check and the body's validation, so a caller
      // without the role learns nothing more. The names are not quoted back: a caller may put an identifier in one.
      // Counted in the query string as sent: the hook above drops blank ones, and `?dry_run` (no `=`) is blank.
      v1.addHook('preHandler', async (req) => {
        if (req.routeOptions.schema?.querystring !== undefined) return;
        const at = req.url.indexOf('?');
        const given =
          at < 0
            ? 0
            : req.url
                .slice(at + 1)
                .split('&')
                .filter((p) => p !== '').length;
        if (given > 0)
          throw new PipelineError(
            'bad_request',
            `${req.method} ${req.routeOptions.url ?? ''} takes no query parameters (${given} given)${req.method === 'GET' || req.method === 'DELETE' ? '' : '; its fields go in the JSON body'}`,
          );
      });
      // A route that answers in several forms (`config.produces`: usage, disclosures) refuses an Accept that admits none
      // of them with a 406, not a JSON answer the caller said it cannot read (found from outside: `Accept:
      // application/xml` on usage got 200 JSON). A JSON-only route answers JSON whatever the Accept, as it always did:
      // a script that reuses one set of headers for every call keeps working.
      v1.addHook('preHandler', async (req) => {
        const { produces, acceptCheckedByHandler } = req.routeOptions.config;
        if (produces && acceptCheckedByHandler !== true && !acceptsAnyOf(req.headers.accept, produces))
          throw new PipelineError('not_acceptable', `Accept: this route answers ${produces.join(', ')}`);
      });
      // Bodies are JSON: anything else sent as text (Node's fetch labels a string body text/plain) is refused in words
      // rather than read as a string the schema then calls "not an object".
      v1.addContentTypeParser('text/plain', { parseAs: 'string' }, (req, _body, done) => {
        done(compressedBody(req) ?? new PipelineError('unsupported_media_type', NOT_JSON), undefined);
      });
      // An empty JSON body is no body (a POST whose fields are all optional); anything else parses as before.
      const json = v1.getDefaultJsonParser('error', 'error');
      const utf8 = new TextDecoder('utf-8', { fatal: true });
      v1.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw, done) => {
        const compressed = compressedBody(req);
        if (compressed) return done(compressed, undefined);
        // Bytes that are not UTF-8 are refused, not read as U+FFFD (found from outside: \xff\xfe in a case reference
        // was stored and signed as "��").
        let body: string;
        try {
          body = utf8.decode(raw as Buffer);
        } catch {
          return done(new PipelineError('bad_request', 'body: not valid UTF-8 (JSON is UTF-8 text)'), undefined);
        }
        if (body.trim() === '') done(null, undefined);
        else
          void json(req, body, (err, value) => {
            // JSON may spell a lone UTF-16 surrogate (`"\ud800"`); no text holds one, and the audit chain's canonical
            // form and the engine's JSON reader refuse it: a 400 here rather than a 500 there.
            if (!err && ESCAPED_SURROGATE.test(body) && hasLoneSurrogate(value))
              done(
                new PipelineError('bad_request', 'body strings must be well-formed Unicode: a lone UTF-16 surrogate (\\ud800–\\udfff) is not text'),
                undefined,
              );
            else {
              // A field given twice says two things; JSON.parse would keep the last silently (found from outside:
              // {"dry_run":true,"dry_run":false} ran a real retention pass).
              const twice = err ? undefined : duplicateMemberOf(body);
              if (twice !== undefined) done(new PipelineError('bad_request', `body: ${quotedValue(twice)} is given twice in one object`), undefined);
              else if (err && parsesAsJson(body))
                // The parser refuses a member that could reach objects' prototypes, and says the JSON is invalid: it is
                // not, so say what it is (found from outside).
                done(new PipelineError('bad_request', 'body: a member named "__proto__", or "constructor" holding "prototype", is not taken'), undefined);
              else done(err, value);
            }
          });
      });
      v1.addHook('onSend', auditHook(svc.audit, deps.log));
      // Per token, after authentication and before the route's role check (preParsing): one caller cannot starve
      // the others (or the engine), nor flood the audit trail with forbidden requests.
      await v1.register(rateLimit, {
        global: true,
        hook: 'onRequest',
        max: deps.rateLimit?.max ?? 600,
        timeWindow: deps.rateLimit?.windowMs ?? 60_000,
        keyGenerator: (req) => (req.principal ? `token:${req.principal.name}` : `ip:${req.ip}`),
        errorResponseBuilder: (_req, ctx) =>
          new PipelineError(
            'rate_limited',
            `rate limit: at most ${ctx.max} requests per ${Math.round((deps.rateLimit?.windowMs ?? 60_000) / 1000)} s per token (per address without a valid one); retry in ${ctx.after}`,
          ),
      });
      // The same counters for /v1 requests no route matches (answered by the root's not-found handler below).
      limitUnmatched = v1.rateLimit();
      await v1.register(adminRetentionRoutes, { retention: svc.retention, allowClockOverride: svc.allowClockOverride });
      await v1.register(leaRoutes, svc.disclosure);
      await v1.register(holdRoutes, { holds: svc.holds });
      await v1.register(dsarRoutes, { ...svc.disclosure, holds: svc.holds });
      await v1.register(billingRoutes, { billing: svc.billing, plans: svc.billingPlans, audit: svc.audit });
      await v1.register(fraudRoutes, { alerts: svc.fraudAlerts, clock: svc.clock });
      await v1.register(auditRoutes, { audit: svc.audit });
    },
    { prefix: '/v1' },
  );

  // A /v1 request no route matched (404, 405, or the 401 before either) is answered by the not-found handler at the
  // root, outside the /v1 scope's audit hook: audited here, so every /v1 request leaves its entry. Its route is
  // recorded as the template of a path that exists with other methods (405), else `unmatched`; never the path as sent
  // (a caller may put an identifier in it).
  const auditUnmatched = auditHook(svc.audit, deps.log);
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.routeOptions.url !== undefined) return payload;
    const path = req.url.split('?')[0]!;
    return path === '/v1' || path.startsWith('/v1/') ? auditUnmatched(req, reply, payload) : payload;
  });
  const identifyV1 = identify(tokens);
  const answerUnmatched = async (req: FastifyRequest, reply: FastifyReply): Promise<{ error: string; message: string }> => {
    const path = req.url.split('?')[0]!;
    // Under /v1 a caller without a token learns nothing, not even which paths exist: 401 first — after the caller's
    // rate limit, as on the routes (a flood of 404s, 405s or 401s leaves an audit entry each).
    if (path === '/v1' || path.startsWith('/v1/')) {
      await identifyV1(req);
      if (limitUnmatched) await limitUnmatched(req, reply);
      await refuseUnauthenticated(req);
    }
    const found = METHODS.map((m) => [m, known.find(m, path)] as const).filter(([, f]) => f !== null);
    const allowed = found.map(([m]) => m);
    if (allowed.length > 0) {
      // Audited and counted under the route's template (never the path as sent): an auditor sees which route was tried.
      const template = (found[0]![1]!.store as { url?: unknown } | null)?.url;
      if (typeof template === 'string') req.knownRoute = template;
      reply.code(405).header('allow', allowed.join(', '));
      // The path is not quoted back (here or below): a caller may have put an identifier in it.
      return { error: 'method_not_allowed', message: `${req.method} is not allowed on this path; allowed: ${allowed.join(', ')}` };
    }
    reply.code(404);
    // A near miss — a trailing or doubled slash, capitals, `;params` — is pointed at the route it resembles, by its
    // template (found from outside: `GET /v1/audit/` only got "the routes: GET /openapi.json").
    const near = path
      .replace(/;[^/]*/g, '')
      .replace(/\/{2,}/g, '/')
      .replace(/(.)\/$/, '$1')
      .toLowerCase();
    const method = METHODS.find((m) => m === req.method);
    const resembles = method && near !== path ? (known.find(method, near)?.store as { url?: unknown } | null | undefined)?.url : undefined;
    const hint =
      typeof resembles === 'string'
        ? `; did you mean ${req.method} ${resembles}? route names are lower-case, with no trailing or doubled slash and no ;parameters`
        : '';
    return { error: 'not_found', message: `no route ${req.method} on this path${hint} (the routes: GET /openapi.json)` };
  };
  app.setNotFoundHandler(answerUnmatched);
  app.setErrorHandler(async (err: FastifyError | PipelineError | Error, req, reply) => {
    // A request no route matched fails its body's parsing before the not-found handler runs when its method carries a
    // body (found from outside: `QUERY` without a Content-Type got a 400 about the header): answered as unmatched.
    const code = (err as FastifyError).code;
    const contentTypeProblem = typeof code === 'string' && (code.startsWith('FST_ERR_CTP') || code === 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE');
    if (req.routeOptions.url === undefined && contentTypeProblem) return answerUnmatched(req, reply);
    if (err instanceof PipelineError) {
      if (err.httpStatus >= 500) deps.log.error({ err, code: err.code, request: req.id }, 'API request failed');
      // RFC 6750: a 401 says which scheme it wants.
      if (err.httpStatus === 401) reply.header('www-authenticate', 'Bearer realm="cdr-pipeline"');
      reply.code(err.httpStatus);
      // A fault of ours (500) is described in the service log, not to the caller: its message may quote the engine
      // (table names, settings) or a library.
      if (err.httpStatus === 500) return { error: err.code, message: `internal error (${err.code}); see the service log, request ${String(req.id)}` };
      return { error: err.code, message: err.message };
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      reply.code(400);
      // A pattern the caller cannot be expected to read as a regular expression is said in words.
      const v = fe.validation[0];
      const rule = v?.keyword === 'pattern' ? PATTERN_RULES.get(String((v.params as { pattern?: unknown }).pattern)) : undefined;
      if (v?.keyword === 'format' && (v.params as { format?: unknown }).format === FREE_TEXT_FORMAT)
        return { error: 'bad_request', message: `${v.instancePath.slice(1).replaceAll('/', '.')}: ${IDENTIFIER_IN_FREE_TEXT}` };
      // A query parameter given twice arrives as a list (found from outside: "querystring/group_by must be string").
      const given =
        v && fe.validationContext === 'querystring' && v.keyword === 'type' ? (req.query as Record<string, unknown>)[v.instancePath.slice(1)] : undefined;
      if (v && Array.isArray(given))
        return {
          error: 'bad_request',
          message: `${v.instancePath.slice(1)}: given ${given.length} times; give it once (where a parameter takes several values, as one comma-separated list)`,
        };
      return { error: 'bad_request', message: rule && v ? `${fe.validationContext ?? 'request'}${v.instancePath} must be ${rule}` : fe.message };
    }
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.code === 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE') {
      // No Content-Type, or one no parser reads (a form body from `curl -d`): said in words.
      reply.code(415);
      return { error: 'unsupported_media_type', message: NOT_JSON };
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      reply.code(fe.statusCode);
      return { error: FASTIFY_STATUS_CODES[fe.statusCode] ?? 'bad_request', message: fe.message };
    }
    deps.log.error({ err, request: req.id }, 'API request failed');
    reply.code(500);
    return { error: 'internal_error', message: `internal error; see the service log, request ${String(req.id)}` };
  });
  return app;
}
