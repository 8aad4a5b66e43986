/**
 * Keys seen recently, remembered approximately: a 32-bit hash of each key in a direct-mapped table of at least
 * 4 × `capacity` slots (a power of two). `sawBefore` answers whether the key's hash is in its slot, and puts it there.
 *
 * For the identifier cache's admission on a second sighting (pseudonymise.ts), where both errors are harmless: a key
 * whose slot another key took since is "not seen" (one more derivation before it is cached), and two keys with the
 * same 32-bit hash make the second "seen" (cached on its first sighting). What it saves over two generations of Sets of
 * the keys themselves: the keys are not kept (one-time-password traffic made ~200,000 strings outlive the young
 * generation and die in the old one), and a lookup is a hash, a multiply and an array read. A key stays remembered
 * after n later keys with probability about e^(−n / slots): 78% or more after `capacity` later keys (the exact
 * generations it replaces remembered the last capacity/2 to capacity keys, none older).
 */
export class RecentSightings {
  private readonly table: Int32Array;
  private readonly shift: number;

  constructor(capacity: number) {
    let bits = 4;
    while (1 << bits < Math.max(16, capacity * 4) && bits < 28) bits++;
    this.table = new Int32Array(1 << bits);
    this.shift = 32 - bits;
  }

  /** Whether `key` was seen (its hash is in its slot); from now on it is. */
  sawBefore(key: string): boolean {
    // FNV-1a over the UTF-16 code units; never 0, which marks an empty slot.
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h |= 0;
    if (h === 0) h = 1;
    const slot = Math.imul(h, 0x9e3779b1) >>> this.shift;
    if (this.table[slot] === h) return true;
    this.table[slot] = h;
    return false;
  }
}
