import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PipelineError } from '../core/index.ts';
import { makeDirectories } from '../platform/config/directories.ts';

/**
 * Bearer-token authentication for the internal API. The tokens file (CDR_API_TOKENS_FILE) holds only
 * SHA-256 digests of the tokens, with a name and roles per token:
 * `{"tokens":[{"name":"alice","sha256":"<hex>","roles":["lea-officer"]}]}`.
 */
export const ROLES = ['lea-officer', 'legal', 'dpo', 'auditor', 'billing', 'fraud', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  readonly name: string;
  readonly roles: readonly Role[];
}

const tokensFileSchema = z.object({
  tokens: z
    .array(
      z.object({
        name: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits (the SHA-256 of the token)'),
        roles: z.array(z.enum(ROLES)).min(1),
      }),
    )
    // One token, one entry: with two, the token had the roles of one of them only, and which one was not said (found
    // from outside: an admin entry silently lost to a later legal one). A person may hold several tokens (rotation).
    .superRefine((tokens, ctx) => {
      const first = new Map<string, number>();
      tokens.forEach((t, i) => {
        const digest = t.sha256.toLowerCase();
        const j = first.get(digest);
        if (j === undefined) first.set(digest, i);
        else ctx.addIssue({ code: 'custom', path: [i, 'sha256'], message: `the same token as tokens.${j} (${tokens[j]!.name}): give one entry all its roles` });
      });
    }),
});

export class TokenRegistry {
  private constructor(private readonly entries: { name: string; digest: Buffer; roles: Role[] }[]) {}

  static fromFile(path: string): TokenRegistry {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      throw new PipelineError('config_invalid', `CDR_API_TOKENS_FILE: ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${code ?? 'error'}`}`, {
        cause,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new PipelineError('config_invalid', `CDR_API_TOKENS_FILE: ${path} is not valid JSON`, { cause });
    }
    const r = tokensFileSchema.safeParse(parsed);
    if (!r.success)
      throw new PipelineError('config_invalid', `CDR_API_TOKENS_FILE: ${path}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return new TokenRegistry(r.data.tokens.map((t) => ({ name: t.name, digest: Buffer.from(t.sha256, 'hex'), roles: t.roles })));
  }

  static empty(): TokenRegistry {
    return new TokenRegistry([]);
  }

  /** The principal of a bearer token, or undefined. Compares digests in constant time. */
  authenticate(token: string): Principal | undefined {
    const digest = createHash('sha256').update(token).digest();
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest)) found = { name: e.name, roles: e.roles };
    return found;
  }
}

/**
 * Development tokens for `cdr start`: one token per role, written once into the data directory. The
 * tokens file holds digests only; the raw tokens go to a second file, mode 0600, for the developer.
 */
export function ensureDevTokens(dataDir: string): { tokensFile: string; secretsFile: string } {
  const tokensFile = join(dataDir, 'api-tokens.json');
  const secretsFile = join(dataDir, 'api-tokens.dev-secrets.json');
  if (existsSync(tokensFile)) return { tokensFile, secretsFile };
  makeDirectories(dirname(tokensFile));
  const secrets: Record<string, string> = {};
  const tokens = ROLES.map((role) => {
    const token = randomBytes(24).toString('base64url');
    secrets[role] = token;
    return { name: `dev-${role}`, sha256: createHash('sha256').update(token).digest('hex'), roles: [role] };
  });
  writeFileSync(tokensFile, `${JSON.stringify({ tokens }, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return { tokensFile, secretsFile };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Why a /v1 request has no principal (no or an unknown bearer token): refused after the rate limit counted it. */
    authRefusal?: string;
  }
  interface FastifyContextConfig {
    /** The media types a route answers in (without parameters); unset: JSON only. An Accept admitting none is a 406. */
    produces?: readonly string[];
    /**
     * The handler refuses an Accept that admits none of `produces` itself (a disclosure: after naming its case and
     * subject, so that the 406 is audited with them), not the /v1 scope's check before it.
     */
    acceptCheckedByHandler?: boolean;
    /** A body field whose absence makes the body strict: other fields are then refused, not ignored (ADR 0041). */
    strictUnless?: string;
  }
}

/**
 * The `onRequest` hook of the `/v1` scope: who is calling. A known bearer token sets `principal`; anything else only
 * records why not, so that the per-caller rate limit (the routes' own onRequest hooks, after this one) counts callers
 * without a valid token too — by address — before `refuseUnauthenticated` turns them away (found from outside: 401s
 * were never limited, and each leaves an audit entry).
 */
export function identify(tokens: TokenRegistry) {
  return async (req: FastifyRequest): Promise<void> => {
    const header = req.headers.authorization;
    // Node keeps the first of several Authorization headers and drops the rest unseen (found from outside: a request
    // with two was judged by the first, silently): such a request has no one caller, and is refused as unauthenticated.
    if (header !== undefined && authorizationHeaders(req.raw.rawHeaders) > 1) {
      req.authRefusal = 'send one Authorization header, not several';
      return;
    }
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) {
      req.authRefusal = 'send Authorization: Bearer <token>';
      return;
    }
    const principal = tokens.authenticate(m[1]!);
    if (!principal) req.authRefusal = 'unknown bearer token';
    else req.principal = principal;
  };
}

function authorizationHeaders(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') n++;
  return n;
}

/**
 * The `preParsing` hook of the `/v1` scope (scope hooks run before a route's own, and after every onRequest hook, the
 * rate limit among them): every route registered there needs a known bearer token. Bound to the scope (not to a URL
 * prefix test), so no spelling of a path reaches a /v1 route around it.
 */
export async function refuseUnauthenticated(req: FastifyRequest): Promise<void> {
  if (!req.principal) throw new PipelineError('unauthenticated', req.authRefusal ?? 'send Authorization: Bearer <token>');
}

/** The roles each route was registered with (`requireRole`), for the OpenAPI document. */
export const ROUTE_ROLES = Symbol('cdr.routeRoles');

/**
 * A route's `preParsing` hook: the authenticated caller must hold one of `roles`. After authentication and the
 * per-token rate limit (onRequest), before the body is even read, so a caller without the role learns nothing about
 * what the route accepts (a 403, never a parse or schema error) and is audited as forbidden — at most at the rate
 * limit. (In `preValidation` until 2026-12-04: a malformed or compressed body then answered 400/415 first.)
 */
export function requireRole(...roles: Role[]) {
  const check = async (req: FastifyRequest): Promise<void> => {
    if (!req.principal) throw new PipelineError('unauthenticated', 'missing or unknown bearer token');
    if (!roles.some((r) => req.principal!.roles.includes(r))) throw new PipelineError('forbidden', `this route needs the role ${roles.join(' or ')}`);
  };
  return Object.assign(check, { [ROUTE_ROLES]: roles });
}

/** The roles of a route's preParsing hook made by requireRole, if any. */
export function rolesOf(preParsing: unknown): readonly Role[] {
  const list = Array.isArray(preParsing) ? preParsing : [preParsing];
  for (const h of list) {
    if (typeof h === 'function' && ROUTE_ROLES in h) return (h as { [ROUTE_ROLES]: Role[] })[ROUTE_ROLES];
  }
  return [];
}
