import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Storage } from '../platform/clickhouse/index.ts';

/**
 * What a destroyed partition (or a rewritten one) may still leave behind, looked for where it would be: parts the
 * engine lists in any state (active, outdated, deleting), detached parts, and — for the embedded engine — the part
 * directories on disk, whether the engine lists them or not. A merge or a mutation leaves the replaced ("superseded")
 * part on disk until the engine's cleanup removes it; migration 11 makes that a second for the tables named here, and
 * the retention pass waits for it before it says "verified".
 */
export interface LeftoverTarget {
  readonly table: string;
  readonly partitions: readonly string[];
  /**
   * `gone`: the partitions were destroyed — nothing of them may remain. `rewritten`: a mutation rewrote them — their
   * new parts stay, but none of the parts that existed before the destruction (in any state: those hold what was
   * removed) may remain. Parts made after it (the mutation's output, merges of that) hold nothing that was removed.
   */
  readonly mode: 'gone' | 'rewritten';
}

/** Part names of the targets' partitions before the destruction, in any state and on disk, per table. */
export type PartSnapshot = ReadonlyMap<string, ReadonlySet<string>>;

export interface Leftovers {
  readonly table: string;
  readonly partitions: number;
  /** Parts the engine still lists that should be gone. */
  readonly parts: number;
  readonly detached: number;
  /** Part directories on disk that should be gone; null where the files cannot be seen (a ClickHouse server). */
  readonly directories: number | null;
  readonly examples: string[];
}

const PART_DIR = /^(?:tmp_[a-z_]*|delete_tmp_|deleting_)?([0-9A-Za-z-]+)_\d+_\d+_\d+(?:_\d+)?$/;

/** Strips the prefixes the engine gives a part directory while it writes or deletes it. */
function partName(dir: string): string {
  return dir.replace(/^(?:tmp_[a-z_]*|delete_tmp_|deleting_)/, '');
}

interface Seen {
  readonly listed: { name: string; active: boolean }[];
  readonly detached: string[];
  /** Directory names (in the table's directory and its detached/), or null for a server. */
  readonly dirs: { name: string; detached: boolean }[] | null;
}

async function look(storage: Storage, table: string, partitions: readonly string[]): Promise<Seen> {
  const db = storage.database;
  const listed = (
    await storage.query<{ name: string; active: number | boolean }>(
      `SELECT name, active FROM system.parts WHERE database = {db:String} AND table = {t:String} AND partition_id IN {p:Array(String)}`,
      { db, t: table, p: partitions },
    )
  ).map((r) => ({ name: r.name, active: r.active === true || r.active === 1 }));
  const detached = (
    await storage.query<{ name: string }>(
      `SELECT name FROM system.detached_parts WHERE database = {db:String} AND table = {t:String} AND (partition_id IN {p:Array(String)} OR partition_id IS NULL)`,
      { db, t: table, p: partitions },
    )
  ).map((r) => r.name);
  if (storage.path === undefined) return { listed, detached, dirs: null };
  const dirs: { name: string; detached: boolean }[] = [];
  const [row] = await storage.query<{ data_paths: string[] }>(`SELECT data_paths FROM system.tables WHERE database = {db:String} AND name = {t:String}`, {
    db,
    t: table,
  });
  const wanted = new Set(partitions);
  for (const p of row?.data_paths ?? []) {
    const root = p.startsWith('/') ? p : join(storage.path, p);
    for (const [dir, isDetached] of [
      [root, false],
      [join(root, 'detached'), true],
    ] as const) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const m = PART_DIR.exec(name);
        if (m && wanted.has(m[1]!)) dirs.push({ name, detached: isDetached });
      }
    }
  }
  return { listed, detached, dirs };
}

/** What the targets' partitions hold before the destruction: every part name, listed in any state or on disk. */
export async function snapshotParts(storage: Storage, targets: readonly LeftoverTarget[]): Promise<PartSnapshot> {
  const out = new Map<string, Set<string>>();
  for (const t of targets) {
    if (t.partitions.length === 0) continue;
    const seen = await look(storage, t.table, t.partitions);
    const names = out.get(t.table) ?? new Set<string>();
    for (const p of seen.listed) names.add(p.name);
    for (const d of seen.dirs ?? []) names.add(partName(d.name));
    out.set(t.table, names);
  }
  return out;
}

export function mergeSnapshots(a: PartSnapshot, b: PartSnapshot): PartSnapshot {
  const out = new Map<string, Set<string>>();
  for (const [table, names] of [...a, ...b]) out.set(table, new Set([...(out.get(table) ?? []), ...names]));
  return out;
}

export async function findLeftovers(storage: Storage, target: LeftoverTarget, snapshot: PartSnapshot): Promise<Leftovers> {
  const { table, partitions, mode } = target;
  const base: Leftovers = { table, partitions: partitions.length, parts: 0, detached: 0, directories: storage.path === undefined ? null : 0, examples: [] };
  if (partitions.length === 0) return base;
  const seen = await look(storage, table, partitions);
  const before = snapshot.get(table) ?? new Set<string>();
  const counts = (name: string): boolean => mode === 'gone' || before.has(partName(name));
  const parts = seen.listed.filter((p) => counts(p.name));
  const detached = seen.detached;
  const dirs = seen.dirs === null ? null : seen.dirs.filter((d) => d.detached || counts(d.name));
  const examples = [
    ...parts.map((p) => p.name),
    ...detached.map((d) => `detached/${d}`),
    ...(dirs ?? []).map((d) => (d.detached ? `detached/${d.name}` : d.name)),
  ];
  return {
    ...base,
    parts: parts.length,
    detached: detached.length,
    directories: dirs === null ? null : dirs.length,
    examples: [...new Set(examples)].slice(0, 10),
  };
}

export function isClean(l: Leftovers): boolean {
  return l.parts === 0 && l.detached === 0 && (l.directories === null || l.directories === 0);
}

/**
 * Waits until none of the targets leaves anything behind (the engine's cleanup runs every second on these tables),
 * or `timeoutMs` passes; returns what was found last.
 */
export async function awaitNoLeftovers(storage: Storage, targets: readonly LeftoverTarget[], snapshot: PartSnapshot, timeoutMs: number): Promise<Leftovers[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await Promise.all(targets.map((t) => findLeftovers(storage, t, snapshot)));
    if (found.every(isClean) || Date.now() >= deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}
