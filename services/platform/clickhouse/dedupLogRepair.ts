/**
 * Repairs the embedded engine's insert-deduplication logs after a crash, before the engine loads them.
 *
 * Why: a plain MergeTree records an insert's block id in `deduplication_logs/` *before* it renames the block's
 * temporary part into place (ClickHouse 26.7, chDB 3.4; seen with strace: the record's write(2), then rename(2)). A
 * kill -9 between the two leaves a block id whose part never existed: the engine removes the `tmp_insert_*` directory
 * at the next start but keeps the block id, so the replay of that batch — same range, same token — is "deduplicated"
 * and its rows are never written. The consumer loop then commits the offset: a gap. `tests/integration/platform/
 * dedupLogRepair.test.ts` builds exactly that state and shows both the loss and its repair; docs/decisions/0031.
 *
 * The repair: for every table with a deduplication log, each block id the log still holds is checked against the
 * parts on disk; one that no part covers (same partition, its block number inside the part's range — merges and
 * mutations keep the range) is dropped with the engine's own DROP record, appended to the newest log file. The
 * engine then forgets it when it loads the log, and the replay is written. A part removed for good (a whole part past
 * its TTL) also loses its block id this way; that only matters to a replay of that very range, which is years past.
 */
import { closeSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { entriesOrNone, processAlive } from './leftovers.ts';

/** A data part's name as the engine writes it: `<partition>_<min block>_<max block>_<level>[_<mutation>]`. */
export interface PartRange {
  readonly partition: string;
  readonly min: number;
  readonly max: number;
}

const BLOCK_NUMBER = /^\d+$/;

/** The partition and block range a part name covers; undefined for a name that is not a part's. */
export function partRangeOf(name: string): PartRange | undefined {
  const fields = name.split('_');
  // partition_min_max_level (4) or partition_min_max_level_mutation (5); the partition id holds no underscore.
  if (fields.length !== 4 && fields.length !== 5) return undefined;
  if (!fields.slice(1).every((f) => BLOCK_NUMBER.test(f))) return undefined;
  const [partition, min, max] = fields as [string, string, string];
  if (partition === '' || partition.startsWith('tmp') || partition.startsWith('delete')) return undefined;
  const range = { partition, min: Number(min), max: Number(max) };
  return range.min <= range.max ? range : undefined;
}

export interface DedupRecord {
  readonly op: 'add' | 'drop';
  readonly part: string;
  readonly blockId: string;
}

/** The records of one log file, in order; undefined if any line is not a record (then the table is left alone). */
export function parseDedupLog(text: string): DedupRecord[] | undefined {
  const out: DedupRecord[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split('\t');
    if (fields.length !== 3 || (fields[0] !== '1' && fields[0] !== '2')) return undefined;
    out.push({ op: fields[0] === '1' ? 'add' : 'drop', part: fields[1]!, blockId: fields[2]! });
  }
  return out;
}

/**
 * The block ids the engine would load from these records (in log order: an add, then a drop of the same id, forgets
 * it) whose part no part on disk covers. Undefined when a name cannot be read: nothing is dropped then.
 */
export function staleBlocks(records: readonly DedupRecord[], partsOnDisk: readonly string[]): DedupRecord[] | undefined {
  const live = new Map<string, DedupRecord>();
  for (const r of records) {
    if (r.op === 'add') live.set(r.blockId, r);
    else live.delete(r.blockId);
  }
  const ranges = new Map<string, PartRange[]>();
  for (const name of partsOnDisk) {
    const range = partRangeOf(name);
    if (!range) continue;
    const list = ranges.get(range.partition) ?? [];
    list.push(range);
    ranges.set(range.partition, list);
  }
  const stale: DedupRecord[] = [];
  for (const r of live.values()) {
    const block = partRangeOf(r.part);
    if (!block) return undefined;
    const covered = (ranges.get(block.partition) ?? []).some((p) => p.min <= block.min && block.max <= p.max);
    if (!covered) stale.push(r);
  }
  return stale;
}

/** The block ids of one table to drop; undefined when a log cannot be read as the engine would read it. */
function staleOfTable(tableDir: string, logsDir: string, logs: readonly { name: string }[]): DedupRecord[] | undefined {
  const records: DedupRecord[] = [];
  for (const l of logs) {
    const text = readFileSync(join(logsDir, l.name), 'utf8');
    // A last line without its LF is a torn write: appending after it would glue a record onto it and make the engine
    // stop reading the file there (it already ignores that fragment, and everything after it).
    if (text !== '' && !text.endsWith('\n')) return undefined;
    const parsed = parseDedupLog(text);
    if (!parsed) return undefined;
    for (const r of parsed) records.push(r); // a log can hold more entries than a call's arguments
  }
  const parts = entriesOrNone(tableDir).filter((name) => {
    try {
      return statSync(join(tableDir, name)).isDirectory();
    } catch {
      return false;
    }
  });
  return staleBlocks(records, parts);
}

export interface DedupRepairReport {
  /** Tables whose log was read. */
  readonly tables: number;
  /** Block ids dropped, none of them with a part on disk. */
  readonly dropped: number;
  /** Table directories left alone because a log or name could not be read. */
  readonly unreadable: readonly string[];
  /** Why nothing was looked at, when nothing was. */
  readonly skipped?: string;
}

/**
 * Whether a live process holds the engine: its `status` file (written and flock-ed while an engine is open, removed on
 * a clean close) appears in the kernel's lock table — whatever the holder's pid or pid namespace, and this process's
 * own open engine included. Where there is no /proc/locks, the pid the file names is asked instead.
 */
export function engineHeld(enginePath: string): boolean {
  const statusFile = join(enginePath, 'status');
  let st: { ino: number; dev: number };
  try {
    st = statSync(statusFile);
  } catch {
    return false; // no status file: no engine has it open
  }
  let locks: string | undefined;
  try {
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    locks = undefined; // not Linux
  }
  if (locks !== undefined) {
    const major = Math.floor(st.dev / 256) & 0xfff;
    const minor = (st.dev & 0xff) | (Math.floor(st.dev / 4096) & 0xfff00);
    for (const line of locks.split('\n')) {
      const m = /\s([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
      if (m && Number(m[3]) === st.ino && parseInt(m[1]!, 16) === major && parseInt(m[2]!, 16) === minor) return true;
    }
    return false;
  }
  try {
    const pid = /^PID:\s*(\d+)/m.exec(readFileSync(statusFile, 'utf8'))?.[1];
    return pid !== undefined && processAlive(Number(pid));
  } catch {
    return false;
  }
}

/** Appends `text` with O_APPEND and waits for it to reach the disk. */
function appendDurably(file: string, text: string): void {
  const fd = openSync(file, 'a');
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Repairs every table's deduplication log under an embedded engine's directory. Only while no engine holds it
 * (`engineHeld`: another process's, or this one's, whose engine has the logs loaded already): then nothing is touched,
 * and the report says why. Returns what it did.
 */
export function repairDedupLogs(enginePath: string): DedupRepairReport {
  if (engineHeld(enginePath)) return { tables: 0, dropped: 0, unreadable: [], skipped: 'the engine is open in a live process' };
  let tables = 0;
  let dropped = 0;
  const unreadable: string[] = [];
  const store = join(enginePath, 'store');
  for (const prefix of entriesOrNone(store)) {
    for (const uuid of entriesOrNone(join(store, prefix))) {
      const tableDir = join(store, prefix, uuid);
      const logsDir = join(tableDir, 'deduplication_logs');
      const logs = entriesOrNone(logsDir)
        .map((name) => ({ name, n: /^deduplication_log_(\d+)\.txt$/.exec(name)?.[1] }))
        .filter((l): l is { name: string; n: string } => l.n !== undefined)
        .sort((a, b) => Number(a.n) - Number(b.n));
      if (logs.length === 0) continue;
      tables++;
      // Anything unexpected leaves this table's log as it is (named in the report), never stops the store opening.
      try {
        const dropping = staleOfTable(tableDir, logsDir, logs);
        if (dropping === undefined) unreadable.push(tableDir);
        else if (dropping.length > 0) {
          // One write(2) with O_APPEND, in the engine's record format: "2<TAB>part<TAB>block id<LF>" per block, and
          // fsync-ed before the engine opens and appends after it (else a power cut could keep its lines, not these).
          appendDurably(join(logsDir, logs[logs.length - 1]!.name), dropping.map((r) => `2\t${r.part}\t${r.blockId}\n`).join(''));
          dropped += dropping.length;
        }
      } catch {
        unreadable.push(tableDir);
      }
    }
  }
  return { tables, dropped, unreadable };
}
