/**
 * Usage rows in the order of their keys (`keys`: account, the grouped-by fields in the request's order, currency), each
 * adjustment row — `records` 0, its split fields (`splitFields`: channel, country, provider, status) empty — after the
 * traffic rows of its account and period, not before them: an empty field of an adjustment row sorts after every
 * value, while a traffic row's empty country (traffic without one) keeps its place first. Sorted in place.
 */
export function sortUsageRows<T extends { readonly records: number | string }>(rows: T[], keys: readonly string[], splitFields: ReadonlySet<string>): T[] {
  const field = (r: T, k: string): string => {
    if (Number(r.records) === 0 && splitFields.has(k)) return '\uffff';
    const v = (r as unknown as Record<string, string | number | undefined>)[k];
    return v === undefined ? '' : String(v);
  };
  return rows.sort((x, y) => {
    for (const k of keys) {
      const a = field(x, k);
      const b = field(y, k);
      if (a !== b) return a < b ? -1 : 1;
    }
    return Number(y.records) - Number(x.records);
  });
}
