/**
 * sidekick as a library: build a whole sidecar load balancer in-process.
 *
 * @example
 * ```ts
 * import { createSidekick, makeConfig } from "@sidekick/main/lib";
 * const sk = createSidekick(makeConfig({ address: "127.0.0.1:0", sites: ["http://127.0.0.1:9000"] }));
 * await sk.start();
 * await sk.stop();
 * ```
 * @module
 */

export { ConfigError, createSidekick, DRAIN_TIMEOUT_MS } from "./sidekick.ts";
export type { Sidekick, SidekickOptions } from "./sidekick.ts";
export { DEFAULTS, makeConfig } from "./config.ts";
export type { Config, HostBalance } from "./config.ts";
export { Backend } from "./backend.ts";
export type { BackendSnapshot, Transition, TransitionListener } from "./backend.ts";
export { Pool } from "./pool.ts";
export type { Candidate, Random } from "./balancer.ts";
export type {
  ExchangeRecord,
  FailedAttempt,
  HeaderList,
  HedgeNote,
  RecordListener,
} from "./record.ts";
export { Outliers } from "./outlier.ts";
export type { Ejection, OutlierMemory } from "./outlier.ts";
export { PeakEwma } from "./peak_ewma.ts";
export type { RetryReason } from "./retry.ts";
export { EndpointStats, Stats } from "./stats.ts";
export type { StatsMemory } from "./stats.ts";
export { formatRecord, formatTransition, traceFilter } from "./trace.ts";
export type { TraceFilterConfig, TraceStyle } from "./trace.ts";
export { renderMetrics } from "./metrics.ts";
export type { BackendSample, MetricsSnapshot, ProcessSample } from "./metrics.ts";
