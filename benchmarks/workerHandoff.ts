/**
 * `node --import tsx benchmarks/workerHandoff.ts`: what moving ingest's per-record work (decode → pseudonymise →
 * Avro for the topic → RowBinary for the store) to a worker thread would cost and free, on the high-cardinality set
 * (issue 15's "every core works"). Same BENCH_HANDOFF_RECORDS records (default 200,000, OTP-like), in 5,000-record
 * batches, three ways, each in its own process:
 *
 * - `main`: all of it on the main thread, as ingest does it today;
 * - `objects`: a worker does it and posts back the rows, vault rows and published values as objects (structured
 *   clone), which the main thread needs for its dedup, claims and insert plans;
 * - `packed`: a worker does it and transfers back only buffers (RowBinary for cdr and vault, Avro values) plus one
 *   string of the per-record keys the main thread needs.
 *
 * In the worker variants the batch's message values go over as one transferred buffer, two batches in flight (as two
 * partitions would). Reported per record: the main thread's busy time (event-loop utilisation: what stays on the
 * thread the API and Kafka share), the whole process's CPU (all threads), and wall time.
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { planTraffic } from '../services/generator/trafficPlan.ts';
import { decodeCdrEvent, encodeWith, PSEUDONYMISED_SCHEMA_ID } from '../services/platform/schemas/index.ts';
import { rowBinary } from '../services/platform/clickhouse/rowBinary.ts';
import { deriveMonthKey, type MonthKey } from '../services/core/pseudonym/monthKeys.ts';
import { monthKeyOf } from '../services/core/retention/retentionCalendar.ts';
import { CDR_SHAPE, Pseudonymiser, VAULT_SHAPE } from '../services/core/index.ts';
import type { CdrRow, VaultRow } from '../services/core/index.ts';
import { benchPlan } from './lib/kafkaUtil.ts';

const N = Number(process.env['BENCH_HANDOFF_RECORDS'] ?? 200_000);
const BATCH = 5_000;
type Variant = 'main' | 'objects' | 'packed';

interface Work {
  readonly p: Pseudonymiser;
  readonly keys: Map<string, MonthKey>;
  readonly secret: Buffer;
  offset: number;
}

function newWork(secret: Buffer): Work {
  return { p: new Pseudonymiser(100_000, 'second-sight'), keys: new Map(), secret, offset: 0 };
}

/** Ingest's per-record work on one batch. */
function handleBatch(work: Work, values: Buffer[], now: number): { rows: CdrRow[]; vault: VaultRow[]; published: Buffer[] } {
  const rows: CdrRow[] = [];
  const vault: VaultRow[] = [];
  const published: Buffer[] = [];
  for (const v of values) {
    const { event, schemaId } = decodeCdrEvent(v);
    const month = monthKeyOf(event.event_time);
    let key = work.keys.get(month);
    if (!key) work.keys.set(month, (key = deriveMonthKey(month, 'bench', work.secret)));
    const rec = work.p.pseudonymise(event, month, key, schemaId, { topic: 'bench', partition: 0, offset: String(work.offset++) }, now);
    rows.push(rec.row);
    vault.push(...rec.vault);
    published.push(encodeWith(PSEUDONYMISED_SCHEMA_ID, rec.published));
  }
  return { rows, vault, published };
}

function pack(values: Buffer[]): { buf: ArrayBuffer; ends: Uint32Array } {
  const total = values.reduce((n, v) => n + v.length, 0);
  const out = Buffer.allocUnsafeSlow(total);
  const ends = new Uint32Array(values.length);
  let at = 0;
  values.forEach((v, i) => {
    v.copy(out, at);
    at += v.length;
    ends[i] = at;
  });
  return { buf: out.buffer.slice(out.byteOffset, out.byteOffset + total), ends };
}

function unpack(buf: ArrayBuffer, ends: Uint32Array): Buffer[] {
  const all = Buffer.from(buf);
  const out: Buffer[] = [];
  let from = 0;
  for (const end of ends) {
    out.push(all.subarray(from, end));
    from = end;
  }
  return out;
}

if (!isMainThread) {
  const { secret, variant } = workerData as { secret: Uint8Array; variant: Variant };
  const work = newWork(Buffer.from(secret));
  parentPort!.on('message', (m: { id: number; buf: ArrayBuffer; ends: Uint32Array; now: number }) => {
    const r = handleBatch(work, unpack(m.buf, m.ends), m.now);
    if (variant === 'objects') {
      parentPort!.postMessage({ id: m.id, rows: r.rows, vault: r.vault, published: r.published });
    } else {
      const cdr = rowBinary(r.rows, CDR_SHAPE.columns, CDR_SHAPE.types, CDR_SHAPE.tuple);
      const vault = rowBinary(r.vault, VAULT_SHAPE.columns, VAULT_SHAPE.types, VAULT_SHAPE.tuple);
      const pub = pack(r.published);
      // What the main thread keys its bookkeeping on: cdr_id and both tokens per record, vault month/token per entry.
      const keys = r.rows.map((row) => `${row.cdr_id}|${row.sender_token}|${row.recipient_token}`).join('\n');
      const vaultKeys = r.vault.map((v) => `${v.month}/${v.token}`).join('\n');
      const cdrBuf = cdr.buffer.slice(cdr.byteOffset, cdr.byteOffset + cdr.length) as ArrayBuffer;
      const vaultBuf = vault.buffer.slice(vault.byteOffset, vault.byteOffset + vault.length) as ArrayBuffer;
      parentPort!.postMessage({ id: m.id, cdr: cdrBuf, vault: vaultBuf, pub: pub.buf, ends: pub.ends, keys, vaultKeys }, [cdrBuf, vaultBuf, pub.buf]);
    }
  });
} else {
  const [variantArg] = process.argv.slice(2);
  if (variantArg) {
    const variant = variantArg as Variant;
    const now = Date.now();
    const plan = planTraffic(benchPlan(N, 20_260_401, now - 7_200_000, 'otp'));
    const batches: Buffer[][] = [];
    for (let b: Buffer[] = []; ;) {
      const r = plan.next();
      if (r.done || b.length === BATCH) {
        if (b.length > 0) batches.push(b);
        b = [];
        if (r.done) break;
      }
      b.push(r.value.value);
    }
    const secret = randomBytes(32);
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let stored = 0;
    if (variant === 'main') {
      const work = newWork(secret);
      for (const values of batches) {
        const r = handleBatch(work, values, now);
        rowBinary(r.rows, CDR_SHAPE.columns, CDR_SHAPE.types, CDR_SHAPE.tuple);
        rowBinary(r.vault, VAULT_SHAPE.columns, VAULT_SHAPE.types, VAULT_SHAPE.tuple);
        stored += r.rows.length;
        await new Promise((res) => setImmediate(res));
      }
    } else {
      const worker = new Worker(new URL('../bin/ts-worker.js', import.meta.url), { workerData: { moduleUrl: import.meta.url, secret, variant } });
      let next = 0;
      await new Promise<void>((resolve, reject) => {
        const send = (): void => {
          const values = batches[next];
          if (!values) return;
          const { buf, ends } = pack(values);
          worker.postMessage({ id: next++, buf, ends, now }, [buf]);
        };
        let done = 0;
        worker.on('error', reject);
        worker.on('message', (m: { rows?: CdrRow[]; keys?: string }) => {
          // The main thread's share: what it reads of the answer (objects are already deserialised by now).
          stored += m.rows ? m.rows.length : (m.keys ?? '').split('\n').length;
          if (++done === batches.length) resolve();
          else send();
        });
        send();
        send();
      });
      await worker.terminate();
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    if (stored !== N) throw new Error(`handled ${stored} of ${N}`);
    const perRecord = (ms: number): string => ((ms * 1000) / N).toFixed(1);
    console.log(
      `| ${variant} | ${perRecord(elu.active)} | ${perRecord((cpu.user + cpu.system) / 1000)} | ${perRecord(wallMs)} | ${Math.round(N / (wallMs / 1000)).toLocaleString('en')} |`,
    );
  } else {
    console.log(`${N.toLocaleString('en')} OTP-like records in ${BATCH.toLocaleString('en')}-record batches, each variant in its own process, 3 rounds`);
    console.log('| variant | main thread busy µs/record | process CPU µs/record | wall µs/record | records/s |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    const self = fileURLToPath(import.meta.url);
    for (let round = 0; round < 3; round++)
      for (const v of ['main', 'objects', 'packed'])
        process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', self, v], { encoding: 'utf8', env: process.env }));
  }
}
