/** A batch's claim on the generations its ids went to, until its rows are written or given up (`StoredIdFilter.hold`). */
export interface FilterHold {
  /** @internal the generation current when the batch began adding. */
  readonly generation: object;
}

/**
 * A Bloom filter of the cdr_ids a store holds, in front of ingest's duplicate lookup (ADR 0045). It may answer "maybe"
 * for an id that was never stored (about 1% of them while within capacity, more beyond), never "no" for one that was:
 * every id is added before its row can be written, and ids the store held already are added when the filter is loaded.
 * So an id it answers "no" for needs no lookup, and the lookup's answer for the others is what decides.
 *
 * Bounded memory: two generations of `capacity / 2` ids each. The current one becomes the previous when it is full,
 * but only once nothing was added to the previous one, and no batch that added ids to it was still writing, for the
 * store's horizon and an hour (the store forgets an id a horizon after its row was written; a generation dropped sooner
 * would forget ids the store still holds). Until then ids keep going into the current generation, which only raises
 * how often it answers "maybe" (more lookups, never a wrong answer). A batch takes a `hold` before it adds its ids and
 * releases it once its rows are written or given up: rows are written after their ids were added, sometimes much
 * later (a store away for an hour, and the batch retried meanwhile).
 */

/**
 * Bits per id and probes per id, all of an id's probes in one 64-byte block (a "blocked" Bloom filter): one cache miss
 * per id instead of seven, at ~1% false "maybe" at capacity (m/n = 10, k = 7) instead of ~0.8%.
 */
const BITS_PER_ID = 10;
const PROBES = 7;
/** 32-bit words per block: 16 × 32 = 512 bits, one cache line. */
const BLOCK_WORDS = 16;

/**
 * Beyond the horizon, before a generation is dropped: the store counts its horizon from each row's write by the wall
 * clock, the filter from the last add or write by a monotonic one; an hour covers a slow insert and a wall clock set back.
 */
const SLACK_MS = 3_600_000;

class Generation {
  readonly bits: Uint32Array;
  /** Blocks − 1 (a power of two). */
  readonly blockMask: number;
  count = 0;
  /** When an id was last added, or a batch that added ids was last done writing (the caller's monotonic clock, ms). */
  lastAddedAt = Number.NEGATIVE_INFINITY;
  /** Batches that added ids here (or may add) and are not yet done writing: the generation is kept while any is. */
  holds = 0;

  constructor(ids: number) {
    let blocks = 2;
    while (blocks * BLOCK_WORDS * 32 < ids * BITS_PER_ID && blocks < 2 ** 26) blocks *= 2;
    this.bits = new Uint32Array(blocks * BLOCK_WORDS);
    this.blockMask = blocks - 1;
  }

  /** Sets the id's bits; whether they were all set already. */
  testAndSet(h1: number, h2: number): boolean {
    const base = (h1 & this.blockMask) * BLOCK_WORDS;
    let g = h2;
    let all = true;
    for (let i = 0; i < PROBES; i++) {
      const bit = g >>> 23; // the top 9 bits: 0..511 within the block
      const w = base + (bit >>> 5);
      const m = 1 << (bit & 31);
      if ((this.bits[w]! & m) === 0) {
        all = false;
        this.bits[w]! |= m;
      }
      g = (Math.imul(g, 0x2c9277b5) + 0xac564b05) | 0;
    }
    this.count++;
    return all;
  }

  has(h1: number, h2: number): boolean {
    const base = (h1 & this.blockMask) * BLOCK_WORDS;
    let g = h2;
    for (let i = 0; i < PROBES; i++) {
      const bit = g >>> 23;
      if ((this.bits[base + (bit >>> 5)]! & (1 << (bit & 31))) === 0) return false;
      g = (Math.imul(g, 0x2c9277b5) + 0xac564b05) | 0;
    }
    return true;
  }
}

export interface StoredIdFilterOptions {
  /** Ids remembered at the nominal false-"maybe" rate (two generations of half each). */
  readonly capacity: number;
  /** How long the store keeps an id (its duplicate horizon), ms. */
  readonly horizonMs: number;
}

export class StoredIdFilter {
  private current: Generation;
  private previous: Generation;
  private readonly generationIds: number;
  private horizonMs: number;
  private h1 = 0;
  private h2 = 0;

  constructor(options: StoredIdFilterOptions) {
    if (!(options.capacity >= 2)) throw new RangeError(`StoredIdFilter: capacity ${options.capacity} is below 2`);
    this.generationIds = Math.ceil(options.capacity / 2);
    this.horizonMs = options.horizonMs;
    this.current = new Generation(this.generationIds);
    // Made full size only when the current one first rotates into it.
    this.previous = new Generation(0);
  }

  /** False only for an id never added (within the horizon): such an id is not in the store. */
  mightContain(id: string): boolean {
    this.hash(id);
    return this.current.has(this.h1, this.h2) || this.previous.has(this.h1, this.h2);
  }

  /** Remembers an id; `now` is a monotonic clock in ms (a wall clock that jumps ahead would drop ids too soon). */
  add(id: string, now: number): void {
    this.addAndTell(id, now);
  }

  /**
   * Remembers an id and tells whether it might have been here before (what `mightContain` would have answered just
   * before): one hash and one block for both.
   */
  addAndTell(id: string, now: number): boolean {
    if (this.current.count >= this.generationIds && this.previous.holds === 0 && now - this.previous.lastAddedAt > this.horizonMs + SLACK_MS) {
      // The previous generation's newest id is past the horizon: the store forgot all of its ids too.
      this.previous = this.current;
      this.current = new Generation(this.generationIds);
    }
    this.hash(id);
    const inCurrent = this.current.testAndSet(this.h1, this.h2);
    this.current.lastAddedAt = now;
    return inCurrent || this.previous.has(this.h1, this.h2);
  }

  /** Before a batch adds its ids: its generation is kept until `release`. */
  hold(): FilterHold {
    this.current.holds++;
    return { generation: this.current };
  }

  /**
   * The batch's rows are written, or it was given up: its generation may go a horizon from now (and the current one,
   * if the filter rotated since the hold: some of the batch's ids may be there).
   */
  release(hold: FilterHold, now: number): void {
    const g = hold.generation as Generation;
    g.holds--;
    if (g.lastAddedAt < now) g.lastAddedAt = now;
    // Rotated since the hold: some of its ids may be in the new generation.
    if (g !== this.current && this.current.lastAddedAt < now) this.current.lastAddedAt = now;
  }

  /** The store keeps ids longer than it was told (its table was made with a longer horizon): keep them as long. */
  holdAtLeast(horizonMs: number): void {
    if (horizonMs > this.horizonMs) this.horizonMs = horizonMs;
  }

  /** Ids added to the generations kept (for status and tests). */
  get size(): number {
    return this.current.count + this.previous.count;
  }

  /** Whether the current generation holds more than it was sized for (its "maybe" rate is then above nominal). */
  get overCapacity(): boolean {
    return this.current.count > this.generationIds;
  }

  /** Bytes held by the bit arrays. */
  get bytes(): number {
    return this.current.bits.byteLength + this.previous.bits.byteLength;
  }

  /**
   * Two 32-bit hashes of the id's UTF-16 code units in one pass (FNV-1a and a multiply-rotate), mixed (murmur3's
   * finaliser): h1 picks the block, h2 seeds the probes within it.
   */
  private hash(id: string): void {
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b = (b << 13) | (b >>> 19);
    }
    this.h1 = fmix(a ^ id.length);
    this.h2 = fmix(b) | 0;
  }
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
