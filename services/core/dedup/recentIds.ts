/**
 * Exact duplicate suppression over a bounded window of recent cdr_ids (per source partition). Two
 * generations of Sets: when the current one fills, it becomes the previous and the oldest is dropped, so
 * memory stays within `capacity` ids and the most recent capacity/2 ids are always remembered.
 * Duplicates older than the window are collapsed later by the ReplacingMergeTree key (cdr_id).
 */
export class RecentIds {
  private current = new Set<string>();
  private previous = new Set<string>();
  private readonly generation: number;

  constructor(capacity: number) {
    this.generation = Math.max(1, Math.floor(capacity / 2));
  }

  has(id: string): boolean {
    return this.current.has(id) || this.previous.has(id);
  }

  add(id: string): void {
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Set<string>();
    }
    this.current.add(id);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/**
 * RecentIds for (scope, id) pairs — e.g. (month, token) — without building a key string per lookup: a map from id to
 * the scope it was last seen in, two generations as above. A pair whose id was since seen under another scope reads
 * as absent, so callers may only use "absent" to do work again (never to skip it) — the vault's rows are written
 * idempotently, so a second write is harmless.
 */
export class RecentScopedIds {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();
  private readonly generation: number;

  constructor(capacity: number) {
    this.generation = Math.max(1, Math.floor(capacity / 2));
  }

  has(scope: string, id: string): boolean {
    return this.current.get(id) === scope || this.previous.get(id) === scope;
  }

  add(scope: string, id: string): void {
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Map<string, string>();
    }
    this.current.set(id, scope);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}
