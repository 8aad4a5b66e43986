import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the calling thread's CPU priority to `nice` (never raises it). Linux schedules threads on their own: a
 * thread id given to setpriority(2) changes that thread alone, and `/proc/thread-self` names the caller's id. Used by
 * throughput work that shares a process with requests someone waits for (ingest's prepare workers beside the API in
 * `cdr start`, ADR 0034). Elsewhere, or if the kernel refuses, it changes nothing and says so.
 */
export function lowerThreadPriority(nice: number): boolean {
  if (process.platform !== 'linux' || !(nice > 0)) return false;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isSafeInteger(tid) || tid <= 0) return false;
    if (getPriority(tid) >= nice) return true;
    setPriority(tid, Math.min(19, nice));
    return getPriority(tid) === Math.min(19, nice);
  } catch {
    return false;
  }
}
