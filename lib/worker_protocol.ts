/**
 * The messages between the control plane and its data-plane worker isolates. Everything a
 * request reads or bumps lives in shared memory (UP flags, in-flight counts, counters); messages
 * carry only what changes rarely (a new generation, a certificate, a stop order) or what must
 * reach one place (trace lines to the single writer, a passive ejection to log, a metrics scrape).
 * @module
 */

import type { HostBalance } from "./config.ts";
import type { GenerationPlan } from "./generation.ts";
import type { StatsMemory } from "./stats.ts";
import type { KeyPair } from "./tls.ts";
import type { TraceFilterConfig, TraceStyle } from "./trace.ts";
import type { BackendTls } from "./transport.ts";

/** The first message to a worker: all it needs to start serving. */
export interface WorkerInit {
  /** Message tag. */
  t: "init";
  /** The worker's number, 1-based: its counter stripe. */
  stripe: number;
  /** Address to bind, shared by every worker. */
  hostname: string;
  /** The port, probed free by the control plane. */
  port: number;
  /** HTTPS pair, if serving HTTPS. */
  tls?: KeyPair;
  /** The PEM of `GET /v1/certificates`, if generated. */
  certificatePem?: string;
  /** TLS towards https backends. */
  backendTls?: BackendTls;
  /** `--dns-ttl`, ms. */
  dnsTtlMs: number;
  /** For `X-Forwarded-For` of loopback clients. */
  publicIp: string;
  /** `--host-balance`. */
  hostBalance: HostBalance;
  /** `--retries`. */
  retries: number;
  /** `--retry-buffer`, bytes. */
  retryBufferBytes: number;
  /** The retry budget's cells, shared by every data plane. */
  retryBudget: SharedArrayBuffer;
  /** `--slow-start`, ms. */
  slowStartMs: number;
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
