import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PipelineError } from '../core/index.ts';

/**
 * A running `cdr start` holds the embedded store, so a command that needs it asks that process's API instead: the
 * address is in `<data dir>/api.json`, the bearer token in CDR_API_TOKEN or (development) the per-role secrets file
 * `cdr start` wrote. Undefined when no `cdr start` runs on this data directory.
 */
export interface RunningApi {
  readonly url: string;
  readonly pid: number;
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
}

/** The live `cdr start` holding this data directory (its pid and API address), if one does. */
export function runningStart(dataDir: string): { pid: number; url: string } | undefined {
  const runFile = resolve(dataDir, 'api.json');
  if (!existsSync(runFile)) return undefined;
  const run = JSON.parse(readFileSync(runFile, 'utf8')) as { pid: number; url: string };
  try {
    process.kill(run.pid, 0);
  } catch {
    return undefined;
  }
  return run;
}

/**
 * For a command that only reads or works on what the pipeline stored: no embedded store in the data directory is a
 * wrong directory, refused (exit 2), never a new empty store and development key made by a check.
 */
export function requireStoreDir(dataDir: string, what: string): void {
  if (!existsSync(resolve(dataDir, 'clickhouse')))
    throw new PipelineError('config_invalid', `no store in ${resolve(dataDir)}: set --data-dir (or CDR_DATA_DIR) to ${what}`);
}

export function runningApi(dataDir: string, role: string): RunningApi | undefined {
  const run = runningStart(dataDir);
  if (!run) return undefined;
  // Blank (set to nothing or spaces, as a compose file's `${CDR_API_TOKEN:-}` gives) is unset, as for every variable.
  let token = process.env['CDR_API_TOKEN']?.trim() || undefined;
  const devSecrets = resolve(dataDir, 'api-tokens.dev-secrets.json');
  if (!token && existsSync(devSecrets)) token = (JSON.parse(readFileSync(devSecrets, 'utf8')) as Record<string, string>)[role];
  if (!token)
    throw new PipelineError(
      'config_invalid',
      `the data directory is held by a running cdr start (${run.url}); set CDR_API_TOKEN to ${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} token`,
    );
  process.stderr.write(`cdr: the data directory is held by a running cdr start (pid ${run.pid}); asking its API at ${run.url}\n`);
  return {
    url: run.url,
    pid: run.pid,
    async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${run.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!res.ok) {
        let parsed: { error?: string; message?: string } = {};
        try {
          parsed = JSON.parse(text) as typeof parsed;
        } catch {
          /* not JSON */
        }
        // A token the API refuses is a setting to fix (exit 2), not an answer: `cdr audit verify` exited 1 — "the trail is
        // broken" — for a mistyped CDR_API_TOKEN (found from outside).
        const code =
          res.status === 401 || res.status === 403
            ? 'config_invalid'
            : res.status === 404
              ? 'not_found'
              : res.status === 409
                ? 'conflict'
                : res.status === 429
                  ? 'rate_limited'
                  : res.status < 500
                    ? 'bad_request'
                    : 'storage_unavailable';
        const hint = code === 'config_invalid' ? ` (CDR_API_TOKEN: a token of the running API with the role ${role})` : '';
        throw new PipelineError(code, `${method} ${path}: ${res.status} ${parsed.message ?? text.slice(0, 200)}${hint}`);
      }
      return JSON.parse(text) as T;
    },
  };
}
