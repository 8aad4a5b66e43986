/**
 * Small, fast, seeded pseudo-random number generator for synthetic data.
 *
 * Algorithm: xoshiro128** (32-bit state words, period 2^128 - 1), seeded through splitmix32 so
 * that nearby seeds (1, 2, 3, ...) give unrelated streams. Everything is plain 32-bit integer
 * arithmetic (`Math.imul`, shifts), so a draw allocates nothing and the stream is bit-identical
 * on every platform for a given seed.
 *
 * Not cryptographically secure: never use it for keys, tokens or pseudonyms.
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** splitmix32 step: a good 32-bit mixer, used for seeding and for `hash32`. */
function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Stateless 32-bit hash of a 32-bit integer (splitmix32 finaliser). */
export function hash32(x: number): number {
  return splitmix32(x | 0);
}

/**
 * A bijective 32-bit mixer (lowbias32 by Chris Wellons) keyed by `key`: distinct inputs in
 * [0, 2^32) always give distinct outputs. Used to turn a counter into a random-looking yet
 * guaranteed-unique value.
 */
export function permute32(x: number, key: number): number {
  let z = (x ^ key) >>> 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x7feb352d);
  z ^= z >>> 15;
  z = Math.imul(z, 0x846ca68b);
  z ^= z >>> 16;
  return z >>> 0;
}

/** Reduce any JS number (negative, fractional, > 2^32) to a 32-bit seed word, keeping the high bits. */
function seedWord(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`PRNG seed must be a finite number, got ${seed}`);
  const int = Math.trunc(seed);
  const lo = int >>> 0;
  const hi = Math.floor(int / TWO_POW_32) >>> 0;
  return (lo ^ splitmix32(hi ^ 0x5bd1e995)) >>> 0;
}

export type WeightedItems<T> = ReadonlyArray<readonly [T, number]>;

export class Prng {
  // State kept in a typed array: in-place writes never allocate (plain fields holding
  // 32-bit values outside the Smi range would be boxed).
  private readonly s = new Int32Array(4);
  private spareNormal = 0;
  private hasSpareNormal = false;
  /** The seed this generator was created with. */
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
    let x = seedWord(seed);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x6d2b79f5) >>> 0;
      this.s[i] = splitmix32(x);
    }
    // The all-zero state is the one forbidden state of xoshiro; splitmix makes it practically
    // impossible, but guard anyway.
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** Next raw 32-bit unsigned integer in [0, 2^32). */
  nextU32(): number {
    const s = this.s;
    const s0 = s[0]!;
    const s1 = s[1]!;
    const s2 = s[2]!;
    const s3 = s[3]!;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = (n3 << 11) | (n3 >>> 21);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextU32() / TWO_POW_32;
  }

  /** Uniform float in [0, 1) with 53 bits of randomness (two draws). */
  nextDouble(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number {
    if (max < min) throw new RangeError(`int(${min}, ${max}): max < min`);
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Uniform float in [min, max). */
  float(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /** Uniformly chosen element. Throws on an empty array. */
  pick<T>(items: ArrayLike<T>): T {
    const n = items.length;
    if (n === 0) throw new RangeError('pick() from an empty array');
    return items[Math.floor(this.next() * n)] as T;
  }

  /**
   * Element chosen with probability proportional to its weight (O(n) per call; for hot paths
   * build a `WeightedPicker` once). Non-positive weights are never chosen.
   */
  weighted<T>(items: WeightedItems<T>): T {
    let total = 0;
    for (const [, w] of items) if (w > 0) total += w;
    if (!(total > 0)) throw new RangeError('weighted() needs at least one positive weight');
    let r = this.next() * total;
    let last: T | undefined;
    let found = false;
    for (const [v, w] of items) {
      if (!(w > 0)) continue;
      last = v;
      found = true;
      if (r < w) return v;
      r -= w;
    }
    // Floating-point slack: fall back to the last positive-weight item.
    if (!found) throw new RangeError('weighted() needs at least one positive weight');
    return last as T;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal sample scaled to N(mean, sd²) (Marsaglia polar method, caches the spare). */
  normal(mean = 0, sd = 1): number {
    if (this.hasSpareNormal) {
      this.hasSpareNormal = false;
      return mean + sd * this.spareNormal;
    }
    let u: number;
    let v: number;
    let q: number;
    do {
      u = this.next() * 2 - 1;
      v = this.next() * 2 - 1;
      q = u * u + v * v;
    } while (q >= 1 || q === 0);
    const f = Math.sqrt((-2 * Math.log(q)) / q);
    this.spareNormal = v * f;
    this.hasSpareNormal = true;
    return mean + sd * u * f;
  }

  /** Lognormal sample given its median (= e^mu) and sigma (sd of the underlying normal). */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Exponential sample with the given mean (= 1 / rate). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /**
   * Zipf-like rank in [0, n): P(rank = k) ∝ roughly 1 / (k + 1)^s. Uses a continuous
   * power-law inverse CDF, O(1). s = 1 gives the classic log-uniform skew; s < 1 flattens it.
   */
  zipf(n: number, s = 1): number {
    if (n <= 1) return 0;
    const u = this.next();
    let k: number;
    if (Math.abs(s - 1) < 1e-9) {
      k = Math.exp(u * Math.log(n + 1)) - 1;
    } else {
      const a = 1 - s;
      k = Math.pow(u * (Math.pow(n + 1, a) - 1) + 1, 1 / a) - 1;
    }
    const r = Math.floor(k);
    return r >= n ? n - 1 : r < 0 ? 0 : r;
  }

  /** In-place Fisher–Yates shuffle; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * An independent child generator (deterministic given this generator's current state and
   * the label). Consumes one draw from this generator.
   */
  fork(label = 0): Prng {
    return new Prng((this.nextU32() ^ Math.imul(label | 0, 0x9e3779b1)) >>> 0);
  }
}

/**
 * Precomputed weighted choice (cumulative table + binary search): O(log n) per pick, no
 * allocation. Non-positive weights are never chosen.
 */
export class WeightedPicker<T> {
  readonly values: readonly T[];
  private readonly cumulative: Float64Array;
  readonly total: number;

  constructor(items: WeightedItems<T>) {
    const values: T[] = [];
    const cum: number[] = [];
    let total = 0;
    for (const [v, w] of items) {
      if (!(w > 0)) continue;
      total += w;
      values.push(v);
      cum.push(total);
    }
    if (values.length === 0) throw new RangeError('WeightedPicker needs at least one positive weight');
    this.values = values;
    this.cumulative = Float64Array.from(cum);
    this.total = total;
  }

  /** Index into `values` of the chosen item. */
  pickIndex(rng: Prng): number {
    const cum = this.cumulative;
    const r = rng.next() * this.total;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r < cum[mid]!) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  pick(rng: Prng): T {
    return this.values[this.pickIndex(rng)] as T;
  }
}
