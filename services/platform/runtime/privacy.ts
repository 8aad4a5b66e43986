import { chmodSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectories } from '../config/directories.ts';

/**
 * The embedded mode keeps identifiers on local disk: chDB's vault and index parts, the local broker's `cdr.raw` and
 * `cdr.dlq` segments (identifiers in clear), the development master key and tokens, `pipeline.log`. They are the
 * process owner's alone: the data directory is 0700 and everything the process (and the broker it starts, which
 * inherits the umask) creates in it is 0600 / 0700. Files left by an older version are tightened once.
 */
export function keepPrivate(dataDir: string): void {
  process.umask(0o077);
  makeDirectories(dataDir, 0o700);
  tighten(dataDir, 0);
}

/** Removes group and other permissions below `path`, depth-first (bounded depth: data directories are shallow). */
function tighten(path: string, depth: number): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) return;
  if ((st.mode & 0o077) !== 0) chmodSync(path, st.mode & 0o700);
  if (st.isDirectory() && depth < 12) for (const name of readdirSync(path)) tighten(join(path, name), depth + 1);
}

/** A warning when a secret file (master key, API tokens) can be read by anyone but its owner; undefined if not. */
export function permissionWarning(path: string, what: string): string | undefined {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) === 0) return undefined;
    return `${what} ${path} is readable by others than its owner (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`;
  } catch {
    return undefined;
  }
}
