/**
 * The operations endpoints (/healthz, /metrics) every process serves, and the health registry behind them.
 */
export { HealthRegistry } from './health.ts';
export type { ComponentHealth, HealthReport, HealthStatus } from './health.ts';
export { opsRoutes, startOpsServer } from './opsServer.ts';
export type { OpsOptions, OpsServer } from './opsServer.ts';
