/**
 * Process plumbing for the benchmark: spawning measured children (each phase in its own process, so
 * CPU seconds and peak RSS belong to that phase alone), reading /proc, parsing `/usr/bin/time -v`.
 * Only pids this module spawned are ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What a child reports about itself at the end (all threads of the process). */
export interface ChildUsage {
  /** CPU seconds, user + system, since the process started. */
  cpuSeconds: number;
  /** Peak resident set (VmHWM), MiB. */
  peakRssMiB: number;
}

export function selfUsage(): ChildUsage {
  const ru = process.resourceUsage();
  const status = readProcStatus('self');
  return {
    cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6,
    peakRssMiB: status.vmHWMKiB !== undefined ? status.vmHWMKiB / 1024 : ru.maxRSS / 1024,
  };
}

export function cpuSecondsBetween(a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number {
  return (b.user - a.user + (b.system - a.system)) / 1e6;
}

/** VmHWM and VmRSS, and the RSS split: anonymous (heaps: JS, the engine's allocator), file-backed (mapped code, above
 * all libchdb's), shared memory. */
export function readProcStatus(pid: number | 'self'): { vmHWMKiB?: number; vmRSSKiB?: number; rssAnonKiB?: number; rssFileKiB?: number; rssShmemKiB?: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const num = (k: string): number | undefined => {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
      return m?.[1] ? Number(m[1]) : undefined;
    };
    return { vmHWMKiB: num('VmHWM'), vmRSSKiB: num('VmRSS'), rssAnonKiB: num('RssAnon'), rssFileKiB: num('RssFile'), rssShmemKiB: num('RssShmem') };
  } catch {
    return {};
  }
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** CPU seconds (user + system) of every live thread of a process, by thread id, with the thread's name (comm).
 * Node names its threads (main `node`, workers by their name, libuv `libuv-worker`); the engine names its own. */
export function threadCpuSeconds(pid: number): Map<number, { name: string; seconds: number }> {
  const out = new Map<number, { name: string; seconds: number }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name, seconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond() });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** CPU seconds per thread between two samples of threadCpuSeconds (threads that ended in between are lost). Threads
 * named alike are summed, except Node's, which all share the name `node`: those are listed one by one, the busiest
 * first (`node main` is the process's main thread, `node 1`, `node 2`, … the others). */
export function threadCpuDelta(
  pid: number,
  before: Map<number, { name: string; seconds: number }>,
  after: Map<number, { name: string; seconds: number }>,
): Record<string, number> {
  const byName: Record<string, number> = {};
  const nodeThreads: number[] = [];
  for (const [tid, a] of after) {
    const d = a.seconds - (before.get(tid)?.seconds ?? 0);
    if (d <= 0) continue;
    if (tid === pid) byName['node main'] = d;
    else if (a.name === 'node') nodeThreads.push(d);
    else byName[a.name] = (byName[a.name] ?? 0) + d;
  }
  nodeThreads.sort((x, y) => y - x).forEach((d, i) => (byName[`node ${i + 1}`] = d));
  return byName;
}

/** CPU seconds (user + system) a live process has used so far, from /proc/<pid>/stat; undefined if gone. */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

export interface NodeChild<M> {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly messages: M[];
  /** Resolves with the first message matching the predicate (also one already received). */
  waitFor(pred: (m: M) => boolean, timeoutMs?: number): Promise<M>;
  onMessage(cb: (m: M) => void): void;
  send(m: unknown): void;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; only this child's pid. */
  kill(graceMs?: number): Promise<void>;
  stderrTail(): string;
}

export interface SpawnNodeOptions {
  env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/x']. */
  nodeFlags?: string[];
  args?: string[];
  /** Variables removed from the inherited environment (e.g. CLICKHOUSE_URL, so a child always runs embedded). */
  unset?: string[];
  /** Another checkout of this repository to run the script from (ab.ts: compare against an older commit). */
  root?: string;
}

function childEnv(opts: SpawnNodeOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of opts.unset ?? []) delete env[k];
  return { ...env, ...opts.env };
}

/** Spawns `node [flags] --import tsx <script>` from the repository root with an IPC channel. */
export function spawnNode<M>(script: string, opts: SpawnNodeOptions = {}): NodeChild<M> {
  const root = opts.root ?? REPO_ROOT;
  const proc = spawn(process.execPath, [...(opts.nodeFlags ?? []), '--import', 'tsx', path.resolve(root, script), ...(opts.args ?? [])], {
    cwd: root,
    env: childEnv(opts),
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  if (proc.pid === undefined) throw new Error(`could not spawn ${script}`);
  const messages: M[] = [];
  const listeners: ((m: M) => void)[] = [];
  let stderr = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000);
    if (process.env['BENCH_VERBOSE']) process.stderr.write(d);
  });
  proc.on('message', (m: M) => {
    messages.push(m);
    for (const l of listeners) l(m);
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let exitedFlag = false;
  void exited.then(() => (exitedFlag = true));
  const child: NodeChild<M> = {
    proc,
    pid: proc.pid,
    messages,
    onMessage: (cb) => listeners.push(cb),
    send: (m) => {
      if (proc.connected) proc.send(m as object);
    },
    waitFor(pred, timeoutMs = 600_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise<M>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${script}: timed out after ${timeoutMs} ms waiting for a message\n${stderr.slice(-4000)}`)),
          timeoutMs,
        );
        listeners.push((m) => {
          if (pred(m)) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${script} exited (code ${code}) before the expected message\n${stderr.slice(-4000)}`));
        });
      });
    },
    exited,
    async kill(graceMs = 20_000) {
      if (exitedFlag) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exitedFlag) proc.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
    stderrTail: () => stderr,
  };
  return child;
}

export interface TimedCommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  cpuSeconds: number | undefined;
  peakRssMiB: number | undefined;
}

/** Runs a command under `/usr/bin/time -v` (when present) and returns its output with CPU s and max RSS. */
export function runTimed(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<TimedCommandResult> {
  const useTime = existsSync('/usr/bin/time');
  const file = useTime ? '/usr/bin/time' : cmd;
  const argv = useTime ? ['-v', cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(file, argv, { cwd: REPO_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : undefined;
    p.once('error', reject);
    p.once('exit', (code) => {
      if (timer) clearTimeout(timer);
      const wallSeconds = (performance.now() - started) / 1000;
      let cpuSeconds: number | undefined;
      let peakRssMiB: number | undefined;
      if (useTime) {
        const user = /User time \(seconds\): ([\d.]+)/.exec(stderr)?.[1];
        const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr)?.[1];
        const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1];
        if (user && sys) cpuSeconds = Number(user) + Number(sys);
        if (rss) peakRssMiB = Number(rss) / 1024;
      }
      resolve({ code, stdout, stderr, wallSeconds, cpuSeconds, peakRssMiB });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
