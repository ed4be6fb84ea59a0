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

export { ConfigError, createSidekick, DRAIN_TIMEOUT_MS } from "./control/sidekick.ts";
export type { Sidekick, SidekickOptions } from "./control/sidekick.ts";
export { DEFAULTS, makeConfig } from "./config/config.ts";
export type { Config, HostBalance } from "./config/config.ts";
export { Backend } from "./shared/backend.ts";
export type { BackendSnapshot, Transition, TransitionListener } from "./shared/backend.ts";
export { Pool } from "./shared/pool.ts";
export type { Candidate, Random } from "./shared/balancer.ts";
export type {
  AbortedBy,
  ExchangeRecord,
  FailedAttempt,
  HeaderList,
  HedgeNote,
  RecordListener,
  RetryReason,
} from "./shared/exchange_record.ts";
export { Outliers } from "./shared/outlier.ts";
export type { Ejection, OutlierMemory } from "./shared/outlier.ts";
export { PeakEwma } from "./shared/peak_ewma.ts";
export { EndpointStats, Stats } from "./shared/stats.ts";
export type { StatsMemory } from "./shared/stats.ts";
export { formatRecord, formatTransition, traceFilter } from "./output/trace.ts";
export type { TraceFilterConfig, TraceStyle } from "./output/trace.ts";
export { renderMetrics } from "./output/metrics.ts";
export type { BackendSample, MetricsSnapshot, ProcessSample } from "./output/metrics.ts";
