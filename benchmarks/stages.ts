/**
 * Stage micro-benchmarks of the ingest hot path, in-process, on the benchmark's realistic traffic
 * (project generator, `normal` scenario, ~10% plain Avro). Each stage runs over the same records; the figure
 * is the median of several passes after a warm-up pass. ClickHouse insert formats × batch sizes run in a
 * child process (chDB binds one data directory per process).
 *
 *   node --import tsx benchmarks/stages.ts            # prints a table
 *   node --import tsx benchmarks/stages.ts --json     # prints JSON
 *   BENCH_STAGE_RECORDS=50000 BENCH_STAGE_INSERT_ROWS=100000 (defaults)
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Message } from 'kafkajs';
import { decodeCdrEvent, encodeWith, PSEUDONYMISED_SCHEMA_ID } from '../services/platform/schemas/cdrCodec.ts';
import type { CdrEvent } from '../services/core/cdr/cdrEvent.ts';
import { validateCdr } from '../services/core/cdr/validate.ts';
import { IdentifierNormaliser, normaliseIdentifier, recipientTypeOf, type NormalisedIdentifier } from '../services/core/identity/normalise.ts';
import { RecentIds } from '../services/core/dedup/recentIds.ts';
import { deriveMonthKey, sealIdentifier, tokenOf, type MonthKey } from '../services/core/pseudonym/monthKeys.ts';
import { CDR_SHAPE, Pseudonymiser, type CdrRow, type PseudonymisedRecord } from '../services/core/pseudonym/pseudonymise.ts';
import { monthKeyOf } from '../services/core/retention/retentionCalendar.ts';
import { jsonCompactEachRow } from '../services/platform/clickhouse/storage.ts';
import { planTraffic } from '../services/generator/trafficPlan.ts';
import { benchPlan } from './lib/kafkaUtil.ts';
import { spawnNode } from './lib/proc.ts';
import { toJsonCompact, toJsonEachRow, toTsv } from './lib/rows.ts';
import type { CeilingCase, CeilingResult, CeilingVariant } from './children/insertCeiling.ts';

export interface StageResult {
  stage: string;
  /** What one unit is ("record", "identifier", "row"). */
  unit: string;
  nsPerUnit: number;
  unitsPerSecond: number;
  note?: string;
}

export interface StagesReport {
  records: number;
  distinctIdentifiers: number;
  identifiersPerRecord: number;
  stages: StageResult[];
  inserts: CeilingCase[];
}

let sink = 0;
let repsOverride: number | undefined;

/** Median ns per unit over `reps` passes (after one warm-up pass) of fn, which handles `units` units per pass. */
function measure(stage: string, unit: string, units: number, fn: () => void, defaultReps = 5, note?: string): StageResult {
  const reps = repsOverride ?? defaultReps;
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0));
  }
  times.sort((a, b) => a - b);
  const ns = times[Math.floor(times.length / 2)]! / units;
  return { stage, unit, nsPerUnit: ns, unitsPerSecond: 1e9 / ns, ...(note ? { note } : {}) };
}

interface KafkajsInternals {
  group: (o: {
    topic: string;
    partitionMetadata: { partitionId: number; leader: number }[];
    messages: Message[];
    partitioner: (a: { topic: string; partitionMetadata: unknown; message: Message }) => number;
  }) => Record<string, Message[]>;
  partitioner: () => (a: { topic: string; partitionMetadata: unknown; message: Message }) => number;
}

function kafkajsInternals(): KafkajsInternals | undefined {
  try {
    const require = createRequire(import.meta.url);
    return {
      group: require('kafkajs/src/producer/groupMessagesPerPartition.js') as KafkajsInternals['group'],
      partitioner: require('kafkajs/src/producer/partitioners/default/index.js') as KafkajsInternals['partitioner'],
    };
  } catch {
    return undefined;
  }
}

export async function runStages(
  opts: {
    records?: number;
    insertRows?: number;
    batchSizes?: number[];
    insertVariants?: CeilingVariant[];
    inserts?: boolean;
    reps?: number;
    log?: (s: string) => void;
  } = {},
): Promise<StagesReport> {
  repsOverride = opts.reps;
  const log = opts.log ?? ((): void => undefined);
  const M = opts.records ?? 50_000;
  const now = Date.now();
  const values = [...planTraffic(benchPlan(M, 11, now - 3_600_000))].map((m) => m.value);
  const decoded = values.map((v) => decodeCdrEvent(v));
  const events: CdrEvent[] = decoded.map((d) => d.event);
  const months = new Map<string, MonthKey>();
  const keyOf = (e: CdrEvent): { month: string; key: MonthKey } => {
    const month = monthKeyOf(e.event_time);
    let key = months.get(month);
    if (!key) {
      key = deriveMonthKey(month, 'bench', randomBytes(32));
      months.set(month, key);
    }
    return { month, key };
  };
  const ids: { raw: string; type: NormalisedIdentifier['type']; country: string | null }[] = [];
  for (const e of events) {
    const country = e.destination_country ? e.destination_country.toUpperCase() : null;
    ids.push({ raw: e.sender, type: e.sender_type, country });
    ids.push({ raw: e.recipient, type: recipientTypeOf(e.channel, e.recipient), country });
  }
  const distinct = new Set(ids.map((i) => `${i.type}\u0000${i.country ?? ''}\u0000${i.raw}`)).size;
  const normalised = ids.map((i) => normaliseIdentifier(i.raw, i.type, i.country));
  const stages: StageResult[] = [];
  const add = (r: StageResult): void => {
    stages.push(r);
    log(`  ${r.stage.padEnd(58)} ${r.nsPerUnit.toFixed(0).padStart(8)} ns/${r.unit}`);
  };

  add(
    measure('Avro decode (decodeCdrEvent, 90% Confluent / 10% plain)', 'record', M, () => {
      for (const v of values) sink += decodeCdrEvent(v).schemaId;
    }),
  );
  const limits = { now, maxFutureSkewMs: 86_400_000 };
  add(
    measure('validation (validateCdr)', 'record', M, () => {
      for (const e of events) validateCdr(e, limits);
    }),
  );
  add(
    measure('recipientTypeOf', 'record', M, () => {
      for (const e of events) sink += recipientTypeOf(e.channel, e.recipient).length;
    }),
  );
  add(
    measure(
      'normaliseIdentifier, no cache (libphonenumber-js parse)',
      'identifier',
      ids.length,
      () => {
        for (const i of ids) sink += normaliseIdentifier(i.raw, i.type, i.country).value.length;
      },
      3,
    ),
  );
  {
    const n = new IdentifierNormaliser();
    for (const i of ids) n.normalise(i.raw, i.type, i.country);
    add(
      measure('IdentifierNormaliser, cache hit (as in ingest for a known subscriber)', 'identifier', ids.length, () => {
        for (const i of ids) sink += n.normalise(i.raw, i.type, i.country).value.length;
      }),
    );
  }
  const key0 = keyOf(events[0]!).key;
  add(
    measure('tokenOf (HMAC-SHA-256, truncated, hex)', 'identifier', normalised.length, () => {
      for (const n of normalised) sink += tokenOf(key0, n.type, n.value).length;
    }),
  );
  const tokens = normalised.map((n) => tokenOf(key0, n.type, n.value));
  add(
    measure(
      'sealIdentifier (HMAC nonce + AES-256-GCM) + base64',
      'identifier',
      normalised.length,
      () => {
        for (let i = 0; i < normalised.length; i++) sink += sealIdentifier(key0, tokens[i]!, normalised[i]!.value).toString('base64').length;
      },
      3,
    ),
  );
  const src = { topic: 'cdr.raw', partition: 0, offset: '0' };
  {
    const warm = new Pseudonymiser();
    for (const e of events) {
      const { month, key } = keyOf(e);
      warm.pseudonymise(e, month, key, 1, src, now);
    }
    add(
      measure('Pseudonymiser.pseudonymise, warm caches (as in ingest)', 'record', M, () => {
        for (const e of events) {
          const { month, key } = keyOf(e);
          sink += warm.pseudonymise(e, month, key, 1, src, now).vault.length;
        }
      }),
    );
  }
  add(
    measure(
      'Pseudonymiser.pseudonymise, no caches (capacity 1)',
      'record',
      M,
      () => {
        const cold = new Pseudonymiser(1);
        for (const e of events) {
          const { month, key } = keyOf(e);
          sink += cold.pseudonymise(e, month, key, 1, src, now).vault.length;
        }
      },
      3,
    ),
  );
  const warm = new Pseudonymiser();
  const recs: PseudonymisedRecord[] = events.map((e, i) => {
    const { month, key } = keyOf(e);
    return warm.pseudonymise(e, month, key, 1, { ...src, offset: String(i) }, now);
  });
  add(
    measure('encodeWith(pseudonymised) + Message object', 'record', M, () => {
      for (const r of recs) sink += encodeWith(PSEUDONYMISED_SCHEMA_ID, r.published).length;
    }),
  );
  const messages: Message[] = recs.map((r) => ({
    key: r.row.account_id,
    value: encodeWith(PSEUDONYMISED_SCHEMA_ID, r.published),
    headers: { cdr_id: r.row.cdr_id },
  }));
  const kj = kafkajsInternals();
  if (kj) {
    const partitioner = kj.partitioner();
    const partitionMetadata = [0, 1, 2, 3].map((p) => ({ partitionId: p, leader: 1 }));
    for (const size of [20_000, 5_000, 1_000]) {
      if (size > messages.length) continue;
      const slices: Message[][] = [];
      for (let i = 0; i + size <= messages.length; i += size) slices.push(messages.slice(i, i + size));
      const units = slices.length * size;
      add(
        measure(
          `kafkajs groupMessagesPerPartition, ${size}-message send`,
          'record',
          units,
          () => {
            for (const s of slices) sink += Object.keys(kj.group({ topic: 'cdr.pseudonymised', partitionMetadata, messages: s, partitioner })).length;
          },
          3,
          'kafkajs copies the per-partition array for every message: O(n²) per send',
        ),
      );
    }
  }
  const rows: CdrRow[] = recs.map((r) => r.row);
  add(
    measure('cdr rows → JSONEachRow (JSON.stringify per row)', 'row', rows.length, () => {
      sink += toJsonEachRow(rows).length;
    }),
  );
  add(
    measure('cdr rows → JSONCompactEachRow (jsonCompactEachRow + CDR_SHAPE, as ingest)', 'row', rows.length, () => {
      sink += jsonCompactEachRow(rows, CDR_SHAPE).length;
    }),
  );
  add(
    measure('cdr rows → JSONCompactEachRow (hand-written)', 'row', rows.length, () => {
      sink += toJsonCompact(rows).length;
    }),
  );
  add(
    measure('cdr rows → TSV (hand-written)', 'row', rows.length, () => {
      sink += toTsv(rows).length;
    }),
  );
  add(
    measure('batch digest (digestOf: sha1 over cdr_id + tokens)', 'record', rows.length, () => {
      const h = createHash('sha1');
      for (const r of rows) h.update(`${r.cdr_id}|${r.sender_token}|${r.recipient_token}`).update('\n');
      sink += h.digest('hex').length;
    }),
  );
  add(
    measure('RecentIds has + add (dedup window)', 'record', rows.length, () => {
      const recent = new RecentIds(500_000);
      for (const r of rows) {
        if (!recent.has(r.cdr_id)) recent.add(r.cdr_id);
      }
      sink += recent.size;
    }),
  );
  add(
    measure(
      'JS path of one chunk, no I/O (decode→validate→pseudonymise→encode→jsonCompactEachRow)',
      'record',
      M,
      () => {
        const p = new Pseudonymiser();
        const recent = new RecentIds(500_000);
        let json = 0;
        const out: CdrRow[] = [];
        for (let i = 0; i < values.length; i++) {
          const d = decodeCdrEvent(values[i]!);
          validateCdr(d.event, limits);
          if (recent.has(d.event.cdr_id)) continue;
          recent.add(d.event.cdr_id);
          const { month, key } = keyOf(d.event);
          const r = p.pseudonymise(d.event, month, key, d.schemaId, { ...src, offset: String(i) }, now);
          sink += encodeWith(PSEUDONYMISED_SCHEMA_ID, r.published).length;
          out.push(r.row);
          for (const v of r.vault) json += v.sealed.length;
        }
        json += jsonCompactEachRow(out, CDR_SHAPE).length;
        sink += json;
      },
      3,
      'includes cold caches once per pass (a new Pseudonymiser per pass), excludes kafkajs and ClickHouse',
    ),
  );

  // ClickHouse insert formats × batch sizes, in a child with its own chDB data directory.
  let inserts: CeilingCase[] = [];
  if (opts.inserts === false) return { records: M, distinctIdentifiers: distinct, identifiersPerRecord: ids.length / M, stages, inserts };
  const dir = mkdtempSync(join(tmpdir(), 'cdr-bench-stages-'));
  try {
    log('  ClickHouse insert formats × batch sizes (child process)…');
    const child = spawnNode<CeilingResult>('benchmarks/children/insertCeiling.ts', {
      env: {
        BENCH_CEILING: JSON.stringify({
          dataDir: dir,
          rowsPerCase: opts.insertRows ?? 100_000,
          batchSizes: opts.batchSizes ?? [1_000, 5_000, 20_000, 50_000],
          variants: opts.insertVariants ?? ['project', 'client-json', 'raw-tsv'],
          templateSize: 20_000,
        }),
      },
    });
    const res = await child.waitFor((m) => m.type === 'result', 900_000);
    await child.exited;
    inserts = res.cases;
    for (const c of inserts)
      log(
        `  insert ${c.variant.padEnd(16)} batch ${String(c.batch).padStart(6)}: ${Math.round(c.rowsPerSecond).toString().padStart(8)} rows/s insert, ${Math.round(c.rowsPerSecondWithSerialise).toString().padStart(8)} rows/s with serialisation`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (sink === 42) log('');
  return { records: M, distinctIdentifiers: distinct, identifiersPerRecord: ids.length / M, stages, inserts };
}

export function stagesMarkdown(r: StagesReport): string {
  const lines: string[] = [];
  lines.push(
    `Input: ${r.records.toLocaleString('en')} generated records, ${r.distinctIdentifiers.toLocaleString('en')} distinct (identifier, type, country) inputs among ${(r.records * r.identifiersPerRecord).toLocaleString('en')} identifiers (zipf-skewed subscriber pool, so caches hit often).`,
  );
  lines.push('');
  lines.push('| stage | ns per unit | units/s | note |');
  lines.push('| --- | ---: | ---: | --- |');
  for (const s of r.stages)
    lines.push(
      `| ${s.stage.replace(/\|/g, '/')} | ${Math.round(s.nsPerUnit).toLocaleString('en')} / ${s.unit} | ${Math.round(s.unitsPerSecond).toLocaleString('en')} | ${s.note ?? ''} |`,
    );
  if (r.inserts.length > 0) {
    lines.push('');
    lines.push(
      'ClickHouse (embedded chDB) inserts into the real `cdr` table, fresh data directory, unique rows per batch, each with an insert_deduplication_token:',
    );
    lines.push('');
    lines.push('| path / format | batch rows | rows/s (insert call) | rows/s incl. serialisation | insert CPU-s per 1M rows |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    for (const c of r.inserts) {
      lines.push(
        `| ${c.variant} | ${c.batch.toLocaleString('en')} | ${Math.round(c.rowsPerSecond).toLocaleString('en')} | ${Math.round(c.rowsPerSecondWithSerialise).toLocaleString('en')} | ${((c.insertCpuSeconds / c.rows) * 1e6).toFixed(1)} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Runs the stages in a fresh child process and returns its report. Measured inside a process that has
 * already done other work (the orchestrator: kafkajs, a 2M-record pre-fill), the same stages came out up to
 * 7× slower (e.g. pseudonymise 28 µs vs 3.7 µs per record), so run.ts and quick.ts always use this.
 */
export async function runStagesInChild(opts: {
  records: number;
  insertRows?: number;
  inserts?: boolean;
  reps?: number;
  log?: (s: string) => void;
}): Promise<StagesReport> {
  const child = spawnNode<{ type: 'log'; line: string } | { type: 'report'; report: StagesReport }>('benchmarks/stages.ts', {
    env: { BENCH_STAGES_CHILD: JSON.stringify(opts.log ? { ...opts, log: undefined } : opts) },
    unset: ['NODE_OPTIONS'],
  });
  child.onMessage((m) => {
    if (m.type === 'log') opts.log?.(m.line);
  });
  const m = await child.waitFor((x) => x.type === 'report', 30 * 60_000);
  await child.exited;
  if (m.type !== 'report') throw new Error('stages child: no report');
  return m.report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.env['BENCH_STAGES_CHILD']) {
  const o = JSON.parse(process.env['BENCH_STAGES_CHILD']) as { records: number; insertRows?: number; inserts?: boolean; reps?: number };
  const report = await runStages({ ...o, log: (line) => process.send?.({ type: 'log', line }) });
  process.send?.({ type: 'report', report });
  process.disconnect?.();
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes('--json');
  const report = await runStages({
    records: Number(process.env['BENCH_STAGE_RECORDS'] ?? 50_000),
    insertRows: Number(process.env['BENCH_STAGE_INSERT_ROWS'] ?? 100_000),
    log: json ? undefined : (s) => console.log(s),
  });
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(`\n${stagesMarkdown(report)}`);
}
