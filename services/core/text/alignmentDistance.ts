/**
 * Optimal string alignment distance: insertions, deletions, substitutions, and a swap of two neighbours counted once
 * (`form` is 1 from `from`, where plain Levenshtein says 2). What "did you mean" suggestions measure (misspelt
 * environment variables, body fields).
 */
export function alignmentDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, before[j - 2]! + 1);
      cur[j] = v;
    }
    [before, prev] = [prev, cur];
  }
  return prev[b.length]!;
}
