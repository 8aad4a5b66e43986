/**
 * The three retention clocks of the privacy notice (section 5.1.2), as pure UTC date arithmetic.
 * Nothing here reads the process time zone: every computation uses Date.UTC / getUTC*.
 */

/** First instant (UTC) of the month containing `t`. */
export function startOfMonthUtc(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** First instant (UTC) of the year containing `t`. */
export function startOfYearUtc(t: number): number {
  return Date.UTC(new Date(t).getUTCFullYear(), 0, 1);
}

/** Adds whole calendar months to a month start (UTC). Date.UTC normalises month overflow (13 → next year). */
export function addMonthsUtc(monthStart: number, months: number): number {
  const d = new Date(monthStart);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1);
}

/** End-user identifiers: deleted at startOfMonth(t) + 13 months. */
export function identifierCutoff(t: number): number {
  return addMonthsUtc(startOfMonthUtc(t), 13);
}

/** Identifier-free traffic data: deleted at startOfYear(t) + 11 years. */
export function trafficCutoff(t: number): number {
  return Date.UTC(new Date(t).getUTCFullYear() + 11, 0, 1);
}

/**
 * Usage data (API client IP, access logs): deleted at t + 3 years, time of day kept. A 29 February
 * maps to 28 February: "up to 3 years" means never longer, and ClickHouse's addYears clamps the same way,
 * so the column TTL and this function agree.
 */
export function usageCutoff(t: number): number {
  const d = new Date(t);
  const y = d.getUTCFullYear() + 3;
  const m = d.getUTCMonth();
  const timeOfDay = t - Date.UTC(d.getUTCFullYear(), m, d.getUTCDate());
  const daysInTargetMonth = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return Date.UTC(y, m, Math.min(d.getUTCDate(), daysInTargetMonth)) + timeOfDay;
}

/** `YYYY-MM` of the UTC month containing `t`. */
export function monthKeyOf(t: number): string {
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** First instant (UTC) of a `YYYY-MM` month. Throws on a malformed month. */
export function monthStartOf(month: string): number {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) throw new RangeError(`not a YYYY-MM month: ${month}`);
  const mm = Number(m[2]);
  if (mm < 1 || mm > 12) throw new RangeError(`month out of range: ${month}`);
  return Date.UTC(Number(m[1]), mm - 1, 1);
}

/** `YYYY-MM-01`, the ClickHouse Date of a month's first day. */
export function monthDateOf(month: string): string {
  monthStartOf(month);
  return `${month}-01`;
}

/** True when the identifiers of a communication at `t` must no longer exist at `now`. */
export function identifiersExpired(t: number, now: number): boolean {
  return now >= identifierCutoff(t);
}

/** True when the usage data (client IP) of a communication at `t` must no longer exist at `now`. */
export function usageExpired(t: number, now: number): boolean {
  return now >= usageCutoff(t);
}

/** The newest month whose identifiers have expired at `now` (all months <= it are expired). */
export function lastExpiredIdentifierMonth(now: number): string {
  // identifierCutoff(month) = monthStart + 13 months <= now  <=>  monthStart <= startOfMonth(now) - 13 months
  return monthKeyOf(addMonthsUtc(startOfMonthUtc(now), -13));
}

/** Months (YYYY-MM) overlapped by [from, to). */
export function monthsInRange(from: number, to: number): string[] {
  const out: string[] = [];
  if (to <= from) return out;
  for (let m = startOfMonthUtc(from); m < to; m = addMonthsUtc(m, 1)) out.push(monthKeyOf(m));
  return out;
}

/**
 * `monthKeyOf`, `identifiersExpired` and `usageExpired` for a run of nearby instants (a batch's records: mostly the
 * same month and day), without the Dates each call makes: the last month's and day's bounds are kept, and an instant
 * inside them is answered from those. The same answers as the functions above for every instant from the year 100
 * on (before it, Date.UTC reads a two-digit year as 19xx; event times are from 2000: core/cdr/validate.ts); a unit
 * test compares them.
 */
export class CalendarMemo {
  private monthFrom = 1;
  private monthTo = 0;
  private month = '';
  private identifiersCutoff = 0;
  private dayFrom = 1;
  private dayTo = 0;
  /** usageCutoff(dayFrom): within a UTC day, usageCutoff(t) = this + (t − dayFrom) (the same time of day 3 years on). */
  private dayUsageCutoff = 0;

  private inMonth(t: number): void {
    if (t >= this.monthFrom && t < this.monthTo) return;
    this.monthFrom = startOfMonthUtc(t);
    this.monthTo = addMonthsUtc(this.monthFrom, 1);
    this.month = monthKeyOf(t);
    this.identifiersCutoff = identifierCutoff(t);
  }

  monthOf(t: number): string {
    this.inMonth(t);
    return this.month;
  }

  identifiersExpired(t: number, now: number): boolean {
    this.inMonth(t);
    return now >= this.identifiersCutoff;
  }

  usageExpired(t: number, now: number): boolean {
    if (!(t >= this.dayFrom && t < this.dayTo)) {
      const d = new Date(t);
      this.dayFrom = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      this.dayTo = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      this.dayUsageCutoff = usageCutoff(this.dayFrom);
    }
    return now >= this.dayUsageCutoff + (t - this.dayFrom);
  }
}
