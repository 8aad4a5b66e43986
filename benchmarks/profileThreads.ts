/**
 * Every thread's CPU profile of one ingest run, summarised side by side: the main thread, the prepare worker(s), the
 * publisher thread (each Node thread writes its own .cpuprofile under --cpu-prof), with the per-thread CPU seconds
 * the kernel counted, so what the JS profiles cannot see (the engine's threads, V8's helpers) is in the same table.
 *
 *   BENCH_DATASET=otp BENCH_RECORDS=300000 node --import tsx benchmarks/profileThreads.ts
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { summariseCpuProfile } from './lib/cpuProfile.ts';
import { startFilledBench, type FilledBench } from './lib/kafkaUtil.ts';
import { runOurs } from './lib/phases.ts';
import { fmt } from './lib/stats.ts';

const N = Number(process.env['BENCH_RECORDS'] ?? 300_000);
const PARTITIONS = Number(process.env['BENCH_PARTITIONS'] ?? 4);
const TOP = Number(process.env['BENCH_PROFILE_TOP'] ?? 12);

/** Which thread a profile belongs to, from the scripts it ran. */
function threadOf(file: string): string {
  const text = readFileSync(file, 'utf8');
  if (text.includes('benchmarks/ingestChild.ts')) return 'main';
  if (text.includes('services/ingest/prepareWorker.ts')) return 'prepare worker';
  if (text.includes('services/platform/kafka/publisherWorker.ts')) return 'publisher';
  return 'other (module loader)';
}

const workDir = mkdtempSync(path.join(tmpdir(), 'cdr-bench-prof-'));
let bench: FilledBench | undefined;
try {
  bench = await startFilledBench(workDir, PARTITIONS, N, Date.now() - 2 * 3_600_000);
  const profileDir = path.join(workDir, 'profile');
  const res = await runOurs(
    { brokers: bench.broker.brokers, brokerPid: bench.broker.pid, workDir, admin: bench.admin, partitions: PARTITIONS },
    { topic: 'bench.raw', records: N, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] },
  );
  console.log(`\n${fmt(res.recordsPerSecond)} records/s under the profiler, ${fmt((res.cpuSeconds / N) * 1e6)} CPU-s per 1M (all threads)\n`);
  console.log('CPU-s per 1M records by OS thread (kernel accounting):');
  for (const [name, sec] of Object.entries(res.threadCpu).sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(16)} ${fmt((sec / N) * 1e6)}`);
  const files = readdirSync(profileDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(profileDir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  for (const f of files) {
    const s = summariseCpuProfile(f, TOP);
    const busy = s.totalMs - s.idleMs;
    if (busy < 200) continue;
    console.log(`\n## ${threadOf(f)}: ${fmt(busy / 1000)} s busy (${fmt((busy / 1000 / N) * 1e6)} µs per record), GC ${fmt((100 * s.gcMs) / busy)}%`);
    console.log('| self | function | location |\n| ---: | --- | --- |');
    for (const h of s.top) console.log(`| ${fmt((100 * h.selfMs) / busy)}% | \`${h.name}\` | ${h.location} |`);
    console.log('\n| category | self |\n| --- | ---: |');
    for (const c of s.byCategory) if (c.category !== '(idle)') console.log(`| ${c.category} | ${fmt((100 * c.selfMs) / busy)}% |`);
  }
} finally {
  await bench?.close();
  rmSync(workDir, { recursive: true, force: true });
}
