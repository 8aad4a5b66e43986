/**
 * `BENCH_BASE=/tmp/cdr-base node --import tsx benchmarks/normaliseAB.ts`: identifier normalisation of this checkout
 * against another (`git worktree add /tmp/cdr-base <commit>`), in one process, interleaved. 30,000 generated records
 * of each data set (a fresh subscriber per record, then the 20,000-subscriber pool), their recipient and sender (every
 * identifier type), normalised without a cache in 7 alternating rounds; first it counts the identifiers the two
 * versions answer differently (the answer must not change). Prints ns per identifier, median of the rounds.
 */
import path from 'node:path';
import { TrafficGenerator } from '../services/generator/index.ts';
import * as current from '../services/core/identity/normalise.ts';

type Normalise = typeof current;
const base = process.env['BENCH_BASE'];
if (!base) throw new Error('BENCH_BASE must name the other checkout (git worktree add /tmp/cdr-base <commit>)');
const before = (await import(path.resolve(base, 'services/core/identity/normalise.ts'))) as Normalise;
const ROUNDS = 7;

for (const fresh of [true, false]) {
  const gen = new TrafficGenerator({ seed: 7, scenario: 'normal', startTime: Date.now(), ratePerSecond: 1000, ...(fresh ? { freshSubscribers: true } : {}) });
  const ids: { raw: string; type: current.IdentifierType; country: string }[] = [];
  for (let i = 0; i < 30_000; i++) {
    const e = gen.next();
    ids.push({ raw: e.recipient, type: current.recipientTypeOf(e.channel, e.recipient), country: e.destination_country ?? '' });
    ids.push({ raw: e.sender, type: e.sender_type, country: e.destination_country ?? '' });
  }
  let differing = 0;
  for (const x of ids)
    if (JSON.stringify(before.normaliseIdentifier(x.raw, x.type, x.country)) !== JSON.stringify(current.normaliseIdentifier(x.raw, x.type, x.country)))
      differing++;
  const times: Record<'before' | 'after', number[]> = { before: [], after: [] };
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, m] of [
      ['before', before],
      ['after', current],
    ] as const) {
      const t0 = performance.now();
      for (const x of ids) m.normaliseIdentifier(x.raw, x.type, x.country);
      times[name].push(((performance.now() - t0) * 1e6) / ids.length);
    }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
  console.log(
    `${fresh ? 'otp (a new subscriber per record)' : 'cache pool (no cache in front)'}: ${differing} of ${ids.length} answers differ; ns per identifier, median of ${ROUNDS}: before ${median(times.before).toFixed(0)}, after ${median(times.after).toFixed(0)}`,
  );
}
