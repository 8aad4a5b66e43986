/**
 * What `/healthz` reports: every long-running component of the process (a consumer, the retention schedule)
 * registers a check, and the process is as healthy as its least healthy component. The checks read state the
 * components keep anyway (no I/O), so a health probe never waits on a broker or a store.
 */
export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface ComponentHealth {
  readonly status: HealthStatus;
  /** Why it is not ok, in words an operator acts on (codes and counts, never a record's value). */
  readonly reasons?: readonly string[];
  /** Counters and timestamps shown next to the status. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface HealthReport {
  readonly status: HealthStatus;
  readonly reasons: string[];
  readonly components: Record<string, { status: HealthStatus } & Readonly<Record<string, unknown>>>;
}

const RANK: Record<HealthStatus, number> = { ok: 0, degraded: 1, down: 2 };

export class HealthRegistry {
  private readonly checks = new Map<string, () => ComponentHealth>();

  register(name: string, check: () => ComponentHealth): void {
    this.checks.set(name, check);
  }

  report(): HealthReport {
    let status: HealthStatus = 'ok';
    const reasons: string[] = [];
    const components: HealthReport['components'] = {};
    for (const [name, check] of this.checks) {
      let h: ComponentHealth;
      try {
        h = check();
      } catch (err) {
        h = { status: 'down', reasons: [`health check failed: ${err instanceof Error ? err.message : String(err)}`] };
      }
      if (RANK[h.status] > RANK[status]) status = h.status;
      for (const r of h.reasons ?? []) reasons.push(`${name}: ${r}`);
      components[name] = { ...(h.detail ?? {}), status: h.status, ...(h.reasons && h.reasons.length > 0 ? { reasons: h.reasons } : {}) };
    }
    return { status, reasons, components };
  }
}
