/**
 * A child process for tests/integration/retention/retentionTimeZones.test.ts: on a fresh embedded store, in whatever
 * time zone the parent gave it (TZ), stores records at the first and last millisecond of the retention boundaries
 * (month end, year end, 29 February), forces merges, runs retention passes at chosen instants, and prints what it
 * observed after each pass as one JSON document — including a byte scan of the data directory for the key, vault and
 * token material of the months the pass destroyed (and, as a control, of a month it kept).
 *
 *   TZ=Pacific/Kiritimati node --import tsx tests/support/retentionBoundaries.ts <dataDir>
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../services/platform/config/config.ts';
import { createLogger } from '../../services/platform/observability/logger.ts';
import { openRuntime, requireStorage } from '../../services/platform/runtime/runtime.ts';
import { chTime } from '../../services/platform/identity/index.ts';
import { monthKeyOf } from '../../services/core/retention/retentionCalendar.ts';
import { sealIdentifier, tokenOf } from '../../services/core/pseudonym/monthKeys.ts';
import { createRetention } from '../../services/retention/wiring.ts';
import { testSigner } from './testEnv.ts';

export const BOUNDARY_RECORDS: Record<string, string> = {
  'ip-exact': '2027-01-01T00:00:00.000Z',
  'ip-after': '2027-01-01T00:00:00.001Z',
  'jan-last': '2028-01-31T23:59:59.999Z',
  'feb-first': '2028-02-01T00:00:00.000Z',
  'ip-leap': '2028-02-29T12:00:00.000Z',
  'ip-leap-after': '2028-02-29T12:00:00.001Z',
  'leap-last': '2028-02-29T23:59:59.999Z',
  'mar-first': '2028-03-01T00:00:00.000Z',
  'dec-last': '2028-12-31T23:59:59.999Z',
  'jan-first': '2029-01-01T00:00:00.000Z',
};

/** The instants the passes run at, in order. */
export const PASSES = [
  '2029-02-28T23:59:59.999Z', // 2028-01 expires (cutoff 2029-02-01); 2028-02 not yet
  '2029-03-01T00:00:00.000Z', // 2028-02 expires, 29 February included
  '2030-01-01T00:00:00.000Z', // 2028-12 expires (year end); client IPs of 2027-01-01T00:00:00.000 are exactly 3 years old
  '2031-02-28T12:00:00.000Z', // the IP of 29 Feb 2028 12:00 is 3 years old (29 Feb + 3 years = 28 Feb)
  '2038-12-31T23:59:59.999Z', // traffic of 2027 goes (cutoff 2038-01-01); 2028 stays
  '2039-01-01T00:00:00.000Z', // traffic of 2028 goes
] as const;

export interface PassObservation {
  readonly now: string;
  readonly actions: { class: string; month: string; rows: number; keys_destroyed: number; verified: boolean }[];
  /** name → present / tokens kept / ip kept. */
  readonly records: Record<string, { present: boolean; tokens: boolean; ip: boolean }>;
  readonly keyMonths: string[];
  readonly vaultMonths: string[];
  readonly indexMonths: string[];
  /** Byte scan of the data directory: needles of destroyed months found on disk (should be none). */
  readonly destroyedFoundOnDisk: string[];
  /** Needles of months still live found on disk (a control: the scan can see such bytes). */
  readonly liveFoundOnDisk: number;
  readonly liveNeedles: number;
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) out.push(...files(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

async function main(): Promise<void> {
  const dataDir = process.argv[2]!;
  const config = loadConfig({ CDR_DATA_DIR: dataDir, CDR_MASTER_KEY: randomBytes(32).toString('base64'), CDR_LOG_LEVEL: 'silent' });
  const rt = await openRuntime(config, { needKafka: false, log: createLogger('silent') });
  const { storage, keyRing } = requireStorage(rt);
  const { pass } = createRetention(rt, { signer: testSigner(), settleMs: 50, cleanupTimeoutMs: 60_000 });
  // name → the material a destroyed month must leave nowhere: its wrapped key, tokens, sealed identifiers.
  const needles = new Map<string, { month: string; bytes: string[] }>();
  let offset = 0;
  for (const [name, iso] of Object.entries(BOUNDARY_RECORDS)) {
    const t = Date.parse(iso);
    const month = monthKeyOf(t);
    const key = await keyRing.keyForWriting(month, t);
    if (!key) throw new Error(`no key for ${month}`);
    const sender = `+6012${String(3_000_000 + offset).padStart(7, '0')}`;
    const recipient = `+1415555${String(1000 + offset).padStart(4, '0')}`;
    const st = tokenOf(key, 'msisdn', sender);
    const rtk = tokenOf(key, 'msisdn', recipient);
    const sealedS = sealIdentifier(key, st, sender).toString('base64');
    const sealedR = sealIdentifier(key, rtk, recipient).toString('base64');
    await storage.insert('identity_vault', [
      { month: `${month}-01`, token: st, id_type: 'msisdn', sealed: sealedS, valid: true, first_seen: chTime(t) },
      { month: `${month}-01`, token: rtk, id_type: 'msisdn', sealed: sealedR, valid: true, first_seen: chTime(t) },
    ]);
    await storage.insert('cdr', [
      {
        cdr_id: `b-${name}`,
        account_id: 'acct-boundary',
        event_time: chTime(t),
        submitted_at: chTime(t),
        channel: 'sms',
        direction: 'mt',
        sender_type: 'msisdn',
        recipient_type: 'msisdn',
        sender_token: st,
        recipient_token: rtk,
        sender_valid: true,
        recipient_valid: true,
        status: 'delivered',
        segments: 1,
        client_ip: `198.51.100.${1 + offset}`,
        src_topic: 'probe',
        src_partition: 0,
        src_offset: offset,
        ingested_at: chTime(t),
      },
    ]);
    needles.set(name, { month, bytes: [st, rtk, sealedS, sealedR] });
    offset++;
  }
  const wrapped = new Map(
    (await storage.query<{ m: string; w: string }>(`SELECT formatDateTime(month, '%Y-%m') m, wrapped_key w FROM ${storage.table('month_keys')}`)).map((r) => [
      r.m,
      r.w,
    ]),
  );
  // Superseded parts: merge what the inserts wrote, so replaced parts exist when the passes start.
  for (const t of ['cdr', 'identity_vault', 'subscriber_index', 'month_keys']) await storage.command(`OPTIMIZE TABLE ${storage.table(t)} FINAL`);

  const observations: PassObservation[] = [];
  const destroyedMonths = new Set<string>();
  for (const iso of PASSES) {
    const report = await pass.run({ now: Date.parse(iso), dryRun: false, actor: 'boundary-test' });
    for (const a of report.actions) if (a.class === 'identifiers') destroyedMonths.add(a.month);
    const rows = await storage.query<{ cdr_id: string; tk: number; ip: number }>(
      `SELECT cdr_id, (sender_token != '' OR recipient_token != '') tk, client_ip != '' ip FROM ${storage.table('cdr')} FINAL`,
    );
    const records: PassObservation['records'] = {};
    for (const name of Object.keys(BOUNDARY_RECORDS)) {
      const r = rows.find((x) => x.cdr_id === `b-${name}`);
      records[name] = { present: r !== undefined, tokens: Boolean(r && Number(r.tk)), ip: Boolean(r && Number(r.ip)) };
    }
    const monthsOf = async (table: string): Promise<string[]> =>
      (await storage.query<{ m: string }>(`SELECT DISTINCT formatDateTime(month, '%Y-%m') m FROM ${storage.table(table)} ORDER BY m`)).map((r) => r.m);
    const allFiles = files(join(dataDir, 'clickhouse')).map((f) => {
      try {
        return readFileSync(f);
      } catch {
        return Buffer.alloc(0);
      }
    });
    // A needle counts as on disk if any 10-character piece of it is: a compressed column file keeps a random string as
    // literals, except where the compressor found a match with bytes before it — so look for its pieces, not the whole.
    const pieces = (needle: string): string[] =>
      Array.from({ length: Math.max(1, Math.floor(needle.length / 10)) }, (_, i) => needle.slice(i * 10, i * 10 + 10));
    const onDisk = (needle: string): boolean => pieces(needle).some((p) => allFiles.some((b) => b.includes(p)));
    const destroyedFound: string[] = [];
    let liveFound = 0;
    let liveNeedles = 0;
    for (const [name, n] of needles) {
      const material = [...n.bytes, wrapped.get(n.month) ?? ''].filter((x) => x !== '');
      if (destroyedMonths.has(n.month)) {
        for (const [i, b] of material.entries()) if (onDisk(b)) destroyedFound.push(`${name}#${i}`);
      } else {
        liveNeedles += material.length;
        liveFound += material.filter(onDisk).length;
      }
    }
    observations.push({
      now: iso,
      actions: report.actions.map((a) => ({ class: a.class, month: a.month, rows: a.rows, keys_destroyed: a.keys_destroyed, verified: a.verified })),
      records,
      keyMonths: await monthsOf('month_keys'),
      vaultMonths: await monthsOf('identity_vault'),
      indexMonths: await monthsOf('subscriber_index'),
      destroyedFoundOnDisk: destroyedFound,
      liveFoundOnDisk: liveFound,
      liveNeedles,
    });
  }
  await rt.close();
  process.stdout.write(
    `${JSON.stringify({ tz: process.env['TZ'] ?? '', offsetMinutes: new Date(Date.UTC(2028, 1, 29)).getTimezoneOffset(), observations })}\n`,
  );
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
