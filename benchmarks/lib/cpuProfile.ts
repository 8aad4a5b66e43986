/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time aggregated per function (name + script + line),
 * plus per script (file) and per category, so the hot path can be read without DevTools.
 */
import { existsSync, readFileSync } from 'node:fs';
import { REPO_ROOT } from './proc.ts';

/**
 * tsx compiles each TypeScript file before V8 sees it, so profile positions of .ts functions are not source
 * lines. Find the declaring line of the function name in the source instead (first plausible match).
 */
const sourceCache = new Map<string, string[] | null>();
function tsLine(url: string, fn: string): number | undefined {
  const file = url.replace(/^file:\/\//, '');
  if (!file.endsWith('.ts') || !fn || fn.startsWith('(')) return undefined;
  let lines = sourceCache.get(file);
  if (lines === undefined) {
    lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : null;
    sourceCache.set(file, lines);
  }
  if (!lines) return undefined;
  const name = fn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const decl = new RegExp(
    `(function\\*?\\s+${name}\\b|^\\s*(export\\s+)?(async\\s+)?(private\\s+|public\\s+|static\\s+|readonly\\s+)*(async\\s+)?\\*?${name}\\s*[(<]|\\b(const|let)\\s+${name}\\s*=)`,
  );
  const i = lines.findIndex((l) => decl.test(l));
  return i >= 0 ? i + 1 : undefined;
}

function locationOf(cf: CallFrame): string {
  if (!cf.url) return '(native)';
  const line = cf.url.endsWith('.ts') ? (tsLine(cf.url, cf.functionName) ?? cf.lineNumber + 1) : cf.lineNumber + 1;
  return `${shortUrl(cf.url)}:${line}`;
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  location: string;
  selfMs: number;
  selfShare: number;
  /** Time including callees (each sample counted once per function even under recursion). */
  totalMs: number;
  totalShare: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  top: HotFunction[];
  byFile: { file: string; selfMs: number; selfShare: number }[];
  byCategory: { category: string; selfMs: number; selfShare: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(REPO_ROOT)) u = u.slice(REPO_ROOT.length);
  return u.replace(/^node_modules\//, 'nm/');
}

/** Coarse buckets that map onto the pipeline's stages. */
function categoryOf(fn: string, url: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)' || fn === '(program)') return fn;
  if (url.includes('node_modules/kafkajs')) return 'kafkajs (fetch decode, produce encode, protocol)';
  if (url.includes('node_modules/@confluentinc/kafka-javascript')) return 'librdkafka binding (produce calls, delivery reports)';
  if (url.includes('node_modules/avsc')) return 'avsc (Avro decode/encode)';
  if (url.includes('node_modules/libphonenumber-js')) return 'libphonenumber-js (normalisation)';
  if (url.includes('node_modules/@clickhouse') || url.includes('node_modules/chdb')) return '@clickhouse/client + chdb (insert path)';
  if (url.includes('node_modules/pino') || url.includes('node_modules/prom-client')) return 'pino / prom-client';
  if (url.includes('node_modules/')) return 'other npm packages';
  if (url.includes('/services/')) return 'project code (services/)';
  if (url.startsWith('node:') || !url) return fn === '' ? 'native / node internals' : 'node internals & builtins (crypto, Buffer, JSON, strings)';
  return 'other';
}

/** A .cpuprofile with its nodes by id and each node's parent. */
function loadProfile(file: string): { prof: CpuProfile; byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  return { prof, byId, parent };
}

export function summariseCpuProfile(file: string, topN = 15): ProfileSummary {
  const { prof, byId, parent } = loadProfile(file);
  const selfById = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    const dt = (prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0) / 1000;
    selfById.set(id, (selfById.get(id) ?? 0) + dt);
  }
  const keyOf = (cf: CallFrame): string => `${cf.functionName || '(anonymous)'}\u0000${cf.url}\u0000${cf.lineNumber}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const frames = new Map<string, CallFrame>();
  let totalMs = 0;
  let idleMs = 0;
  let gcMs = 0;
  const byFile = new Map<string, number>();
  const byCategory = new Map<string, number>();
  for (const [id, ms] of selfById) {
    const node = byId.get(id);
    if (!node) continue;
    const cf = node.callFrame;
    totalMs += ms;
    if (cf.functionName === '(idle)') idleMs += ms;
    if (cf.functionName === '(garbage collector)') gcMs += ms;
    const k = keyOf(cf);
    frames.set(k, cf);
    self.set(k, (self.get(k) ?? 0) + ms);
    const f = shortUrl(cf.url);
    byFile.set(f, (byFile.get(f) ?? 0) + ms);
    const c = categoryOf(cf.functionName, cf.url);
    byCategory.set(c, (byCategory.get(c) ?? 0) + ms);
    // inclusive time: walk up the stack once per distinct function
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const kk = keyOf(n.callFrame);
      if (seen.has(kk)) continue;
      seen.add(kk);
      frames.set(kk, n.callFrame);
      total.set(kk, (total.get(kk) ?? 0) + ms);
    }
  }
  const busy = Math.max(1, totalMs - idleMs);
  const top = [...self.entries()]
    .filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(program)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k, ms]) => {
      const cf = frames.get(k)!;
      const t = total.get(k) ?? ms;
      return { name: cf.functionName || '(anonymous)', location: locationOf(cf), selfMs: ms, selfShare: ms / busy, totalMs: t, totalShare: t / busy };
    });
  const sortMap = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs,
    idleMs,
    gcMs,
    top,
    byFile: sortMap(byFile)
      .slice(0, topN)
      .map(([file, ms]) => ({ file, selfMs: ms, selfShare: ms / busy })),
    byCategory: sortMap(byCategory).map(([category, ms]) => ({ category, selfMs: ms, selfShare: ms / busy })),
  };
}

/** The hottest inclusive frames inside project code, to tie self time back to pipeline stages. */
export function projectInclusive(file: string, topN = 12): { name: string; location: string; totalShare: number }[] {
  const { prof, byId, parent } = loadProfile(file);
  const total = new Map<string, { cf: CallFrame; ms: number }>();
  let busy = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    const ms = (prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0) / 1000;
    const leaf = byId.get(id);
    if (!leaf || leaf.callFrame.functionName === '(idle)' || leaf.callFrame.functionName === '(program)') continue;
    busy += ms;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      if (!n.callFrame.url.includes('/services/')) continue;
      const k = `${n.callFrame.functionName}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = total.get(k) ?? { cf: n.callFrame, ms: 0 };
      e.ms += ms;
      total.set(k, e);
    }
  }
  return [...total.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN)
    .map((e) => ({ name: e.cf.functionName || '(anonymous)', location: locationOf(e.cf), totalShare: e.ms / Math.max(1, busy) }));
}
