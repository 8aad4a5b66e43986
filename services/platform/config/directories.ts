import { accessSync, constants, existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Makes `dir` and its missing parents one at a time. Node's `mkdirSync(dir, { recursive: true })` loops for ever, at
 * 100% CPU and deaf to signals, where the file system answers a mkdir with ENOENT though the parent exists (`/proc/x`;
 * found from outside: `CDR_AUDIT_ANCHOR_DIR=/proc/nope` hung `cdr start` for good, Ctrl-C ignored). Here the refusal is
 * an error like any other. `made` collects the directories this call made, in order (a probe removes them again).
 */
export function makeDirectories(dir: string, mode?: number, made: string[] = []): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, mode === undefined ? undefined : { mode });
      made.push(d);
    } catch (err) {
      // Made meanwhile by another process: as good.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(d).isDirectory()) throw err;
    }
  }
}

/**
 * Why `dir` cannot be a directory this process writes in — a file, a part of its path a file, not writable, or not
 * creatable — or undefined. A missing directory is made to find out, then removed again: a check by permissions alone
 * passes for root where the file system still refuses (`/proc/x`), and a check must leave nothing behind when start-up
 * then stops on another variable (found in review: every checked directory stayed, made 0700, after a refused start).
 */
export function directoryProblem(dir: string): string | undefined {
  const target = resolve(dir);
  let path = target;
  // The directory itself, or (not there yet) the nearest ancestor it would be created in.
  for (;;) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dirname(path) !== path) {
        path = dirname(path);
        continue;
      }
      if (code === 'ENOTDIR') return `${target} cannot be created: a part of its path is a file`;
      return `${target} cannot be used (${code ?? 'error'})`;
    }
    const created = path === target ? '' : ` (it would be created in ${path})`;
    if (!isDirectory) return path === target ? `${target} is a file, not a directory` : `${target} cannot be created: ${path} is a file`;
    try {
      accessSync(path, constants.W_OK | constants.X_OK);
    } catch {
      return `${path} is not writable by this user${created}`;
    }
    if (path === target) return undefined;
    const made: string[] = [];
    try {
      makeDirectories(target, 0o700, made);
    } catch (err) {
      return `${target} cannot be created (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    } finally {
      removeMade(made);
    }
    return undefined;
  }
}

/** A start-up check of a variable naming a directory (`loadConfigAndFiles`): throws the problem, if any. */
export function checkDirectory(path: string): void {
  const problem = directoryProblem(path);
  if (problem) throw new Error(problem);
}

/** Removes the directories a probe made, deepest first; one that is no longer empty (in use meanwhile) stays. */
function removeMade(made: readonly string[]): void {
  for (const d of [...made].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}
