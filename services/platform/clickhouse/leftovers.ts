/**
 * What the store's crash clean-ups (the insert spool's sweep, the deduplication logs' repair) need to tell a crashed
 * process's leftovers from a live one's: whether a pid is a process, and a directory's entries without throwing.
 */
import { readdirSync } from 'node:fs';

/** True while a process with this pid exists (one of another user's counts; an entry that is not a pid counts as gone). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A directory's entries; none when it is gone or not ours to read. */
export function entriesOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
