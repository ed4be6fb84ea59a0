/**
 * The messages between the control plane and its data-plane worker isolates. Everything a
 * request reads or bumps lives in shared memory (UP flags, in-flight counts, counters); messages
 * carry only what changes rarely (a new generation, a certificate, a stop order) or what must
 * reach one place (trace lines to the single writer, a passive ejection to log, a metrics scrape).
 * @module
 */

import type { GenerationPlan } from "../shared/generation.ts";
import type { StatsMemory } from "../shared/stats.ts";
import type { KeyPair } from "../tls/key_pair.ts";
import type { TraceFilterConfig, TraceStyle } from "../output/trace.ts";
import type { PlaneSettings } from "./plane_settings.ts";

/** The first message to a worker: all it needs to start serving. */
export interface WorkerInit extends PlaneSettings {
  /** Message tag. */
  t: "init";
  /** The worker's number, 1-based: its counter stripe. */
  stripe: number;
  /** The shared counters. */
  stats: StatsMemory;
  /** The current generation. */
  generation: GenerationPlan;
  /** Trace lines to format and send, or undefined when no output prints them. */
  trace?: { filter: TraceFilterConfig; style: TraceStyle };
}

/** Control plane → worker. */
export type ToWorker =
  | WorkerInit
  /** Serve this generation from now on (reload, rr-dns change). */
  | { t: "generation"; plan: GenerationPlan }
  /** Serve this certificate to new connections. */
  | { t: "certificate"; pair: KeyPair }
  /** The answer to a `metrics` request. */
  | {
    t: "metrics";
    id: number;
    status: number;
    headers: [string, string][];
    body: Uint8Array<ArrayBuffer>;
  }
  /** Stop accepting, drain for `drainTimeoutMs`, then answer `stopped`. */
  | { t: "stop"; drainTimeoutMs: number };

/** Worker → control plane. */
export type FromWorker =
  /** Listening on `port`; `noDelayError`: see `DataPlane.noDelayError`. */
  | { t: "listening"; hostname: string; port: number; noDelayError?: string }
  /** Could not bind: what `Deno.serve` threw. */
  | { t: "failed"; name: string; message: string }
  /** Trace lines, whole, in order. */
  | { t: "lines"; lines: string[] }
  /** This worker marked a backend of generation `generation` DOWN (its flag's CAS won). */
  | { t: "ejected"; generation: number; stateIndex: number; reason: string; at: number }
  /** Please render `/.prometheus/metrics`. */
  | { t: "metrics"; id: number; acceptEncoding: string }
  /** An error line. */
  | { t: "error"; text: string }
  /** Drained and closed. */
  | { t: "stopped" };
