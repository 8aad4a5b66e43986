/**
 * Equivalent rows for the storage benchmarks: the generator's records, decoded and pseudonymised exactly as
 * ingest does (real month key, real normaliser), plus serialisers for the insert formats compared.
 */
import { randomBytes } from 'node:crypto';
import { decodeCdrEvent } from '../../services/platform/schemas/cdrCodec.ts';
import { planTraffic } from '../../services/generator/trafficPlan.ts';
import { deriveMonthKey, type MonthKey } from '../../services/core/pseudonym/monthKeys.ts';
import { Pseudonymiser, type CdrRow, type VaultRow } from '../../services/core/pseudonym/pseudonymise.ts';
import { monthKeyOf } from '../../services/core/retention/retentionCalendar.ts';
import { benchPlan } from './kafkaUtil.ts';

export interface TemplateRows {
  rows: CdrRow[];
  vault: VaultRow[];
}

/** `count` records of the benchmark traffic as cdr / identity_vault rows. */
export function templateRows(count: number, seed = 7): TemplateRows {
  const keys = new Map<string, MonthKey>();
  const pseudonymiser = new Pseudonymiser();
  const rows: CdrRow[] = [];
  const vault: VaultRow[] = [];
  const seen = new Set<string>();
  const now = Date.now();
  let offset = 0;
  for (const m of planTraffic(benchPlan(count, seed, now - 3_600_000))) {
    const { event, schemaId } = decodeCdrEvent(m.value);
    const month = monthKeyOf(event.event_time);
    let key = keys.get(month);
    if (!key) {
      key = deriveMonthKey(month, 'bench', randomBytes(32));
      keys.set(month, key);
    }
    const rec = pseudonymiser.pseudonymise(event, month, key, schemaId, { topic: 'bench.raw', partition: 0, offset: String(offset++) }, now);
    rows.push(rec.row);
    for (const v of rec.vault) {
      if (seen.has(v.token)) continue;
      seen.add(v.token);
      vault.push(v);
    }
  }
  return { rows, vault };
}

/** Copies of the template with unique cdr_ids and offsets (so no insert block is a byte-identical repeat). */
export function uniqueBatch(template: readonly CdrRow[], batchNo: number, size: number): CdrRow[] {
  const out: CdrRow[] = new Array<CdrRow>(size);
  const base = batchNo * size;
  for (let i = 0; i < size; i++) {
    const r = template[i % template.length]!;
    out[i] = { ...r, cdr_id: `${r.cdr_id}.${batchNo}`, src_offset: String(base + i) };
  }
  return out;
}

/** JSONEachRow as @clickhouse/client writes it: JSON.stringify per row, newline-terminated. */
export function toJsonEachRow(rows: readonly object[]): string {
  let s = '';
  for (const r of rows) s += JSON.stringify(r) + '\n';
  return s;
}

/** Column order of the `cdr` table (services/shared/src/clickhouse/migrations.ts). */
export const CDR_COLUMNS = [
  'cdr_id',
  'account_id',
  'event_time',
  'submitted_at',
  'delivered_at',
  'channel',
  'direction',
  'sender_type',
  'recipient_type',
  'sender_token',
  'recipient_token',
  'sender_valid',
  'recipient_valid',
  'sender_country',
  'provider_id',
  'mcc',
  'mnc',
  'destination_country',
  'ported',
  'status',
  'error_code',
  'segments',
  'size_bytes',
  'duration_ms',
  'price',
  'cost',
  'currency',
  'client_ip',
  'late',
  'schema_id',
  'src_topic',
  'src_partition',
  'src_offset',
  'ingested_at',
] as const;

const TSV_SPECIAL = /[\t\n\\]/;
function tsvString(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n') : s;
}
/** Epoch ms → `seconds.mmm`, which DateTime64(3) parses as a Unix time. */
function tsvTime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  const frac = ms - sec * 1000;
  return `${sec}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** TSV (TabSeparated) in CDR_COLUMNS order. */
export function toTsv(rows: readonly CdrRow[]): string {
  let s = '';
  for (const r of rows) {
    s +=
      `${tsvString(r.cdr_id)}\t${tsvString(r.account_id)}\t${tsvTime(r.event_time)}\t${tsvTime(r.submitted_at)}\t${r.delivered_at === null ? '\\N' : tsvTime(r.delivered_at)}\t` +
      `${r.channel}\t${r.direction}\t${r.sender_type}\t${r.recipient_type}\t${r.sender_token}\t${r.recipient_token}\t${r.sender_valid ? 1 : 0}\t${r.recipient_valid ? 1 : 0}\t` +
      `${r.sender_country}\t${tsvString(r.provider_id)}\t${r.mcc}\t${r.mnc}\t${r.destination_country}\t${r.ported ? 1 : 0}\t${r.status}\t${tsvString(r.error_code)}\t` +
      `${r.segments}\t${r.size_bytes}\t${r.duration_ms}\t${r.price}\t${r.cost}\t${r.currency}\t${tsvString(r.client_ip)}\t${r.late ? 1 : 0}\t${r.schema_id}\t` +
      `${tsvString(r.src_topic)}\t${r.src_partition}\t${r.src_offset}\t${tsvTime(r.ingested_at)}\n`;
  }
  return s;
}

/** JSONCompactEachRow-like hand-written JSON (no JSON.stringify of objects): one array per row. */
export function toJsonCompact(rows: readonly CdrRow[]): string {
  const q = (s: string): string => JSON.stringify(s);
  let s = '';
  for (const r of rows) {
    s +=
      `[${q(r.cdr_id)},${q(r.account_id)},${r.event_time},${r.submitted_at},${r.delivered_at === null ? 'null' : r.delivered_at},` +
      `"${r.channel}","${r.direction}","${r.sender_type}","${r.recipient_type}","${r.sender_token}","${r.recipient_token}",${r.sender_valid},${r.recipient_valid},` +
      `"${r.sender_country}",${q(r.provider_id)},"${r.mcc}","${r.mnc}","${r.destination_country}",${r.ported},"${r.status}",${q(r.error_code)},` +
      `${r.segments},${r.size_bytes},${r.duration_ms},${r.price},${r.cost},"${r.currency}",${q(r.client_ip)},${r.late},${r.schema_id},` +
      `${q(r.src_topic)},${r.src_partition},"${r.src_offset}",${r.ingested_at}]\n`;
  }
  return s;
}
