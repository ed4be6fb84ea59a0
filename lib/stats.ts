/**
 * Per-endpoint counters fed by the exchange records: proxied calls, failures, bytes in and out,
 * latency extremes and a latency histogram, and health-check outcomes. One {@linkcode Stats} per
 * sidekick, keyed by endpoint string, so the counts of an endpoint survive a SIGHUP reload that
 * keeps it. Counters are plain numbers; {@linkcode Stats.observe} does a few additions per record.
 *
 * @example
 * ```ts
 * import { Stats } from "./stats.ts";
 * const stats = new Stats();
 * // stats.observe(record) for every ExchangeRecord; then:
 * console.log(stats.get("http://127.0.0.1:9000")?.requests ?? 0);
 * ```
 * @module
 */

import { statusText } from "./format.ts";
import type { ExchangeRecord } from "./record.ts";
import { BODYLESS_METHODS } from "./http.ts";

/** Upper bounds (seconds) of the request duration histogram: Prometheus' default buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The counters of one endpoint. */
export class EndpointStats {
  /** Proxied requests (every finished exchange, delivered in full or not). */
  requests = 0;
  /** Proxied requests answered with a status of 400 or more (sidekick's own 502s included). */
  errors = 0;
  /** Σ rx of proxied requests (see {@linkcode exchangeSizes}). */
  rxBytes = 0;
  /** Σ tx of proxied requests (see {@linkcode exchangeSizes}). */
  txBytes = 0;
  /** Smallest proxied-request latency, ms (0 until the first request). */
  minLatencyMs = 0;
  /** Largest proxied-request latency, ms (0 until the first request). */
  maxLatencyMs = 0;
  /** Σ proxied-request latency, seconds. */
  latencySumSeconds = 0;
  /**
   * Per-bucket (not cumulative) request counts: index i counts latencies in
   * (`DURATION_BUCKETS[i-1]`, `DURATION_BUCKETS[i]`], the last index those above every bound.
   */
  readonly latencyBuckets: number[] = new Array(DURATION_BUCKETS.length + 1).fill(0);
  /** Health checks answered 200. */
  healthSuccesses = 0;
  /** Health checks that failed: another status, a transport error or a timeout. */
  healthFailures = 0;
}

/** Lengths of `"Name: value"` pairs plus the body, as Go's sidekick counts rx and tx. */
export interface ExchangeSizes {
  /** Request body bytes (when known) plus Σ len(name)+len(value) of the request headers. */
  rx: number;
  /** Response body bytes (when known) plus the `"<code> <text>\n"` line and `"Name: v\n"` lines. */
  tx: number;
}

/**
 * The rx/tx of one record as spec §7.4 defines them: for a proxied request, rx is the request body
 * bytes (from `Content-Length`; chunked uploads count 0) plus, for each request header (`Host`
 * included, `Content-Length` — or `Transfer-Encoding` for bodies of unknown length — synthesised
 * when absent), the length of its name and value; tx is the response body bytes plus the length
 * of a `"<code> <text>\n"` line and one `"<Name>: <first value>\n"` line per response header.
 * Health checks count 0 both ways, as in the Go sidekick.
 */
export function exchangeSizes(r: ExchangeRecord): ExchangeSizes {
  if (r.kind === "health") return { rx: 0, tx: 0 };
  let rx = r.requestBodyBytes;
  const req = r.requestHeaders;
  if (req) {
    for (const [name, value] of req) rx += name.length + value.length;
    if (!req.has("content-length")) {
      rx += BODYLESS_METHODS.has(r.method)
        ? "content-length".length + 1 // "0"
        : "transfer-encoding".length + "chunked".length;
    }
  }
  let tx = r.responseBodyBytes;
  if (r.status > 0) {
    tx += String(r.status).length + 2 + statusText(r.status).length; // "200 OK\n"
    const res = r.responseHeaders;
    if (res) {
      let cookieSeen = false;
      for (const [name, value] of res) {
        if (name === "set-cookie") {
          if (cookieSeen) continue; // Go counts the first value of each header only
          cookieSeen = true;
        }
        tx += name.length + value.length + 3; // "Name: value\n"
      }
    }
  }
  return { rx, tx };
}

/** The counters of every endpoint of one sidekick. */
export class Stats {
  readonly #byEndpoint = new Map<string, EndpointStats>();

  /** The counters of `endpoint`, or undefined if it has seen no record yet. */
  get(endpoint: string): EndpointStats | undefined {
    return this.#byEndpoint.get(endpoint);
  }

  /** The counters of `endpoint`, created (all zero) if needed. */
  of(endpoint: string): EndpointStats {
    let s = this.#byEndpoint.get(endpoint);
    if (!s) {
      s = new EndpointStats();
      this.#byEndpoint.set(endpoint, s);
    }
    return s;
  }

  /** The endpoints that have counters. */
  endpoints(): string[] {
    return [...this.#byEndpoint.keys()];
  }

  /** Counts one finished exchange. */
  observe(r: ExchangeRecord): void {
    const s = this.of(r.endpoint);
    if (r.kind === "health") {
      if (r.status === 200) s.healthSuccesses++;
      else s.healthFailures++;
      return;
    }
    const { rx, tx } = exchangeSizes(r);
    s.requests++;
    if (r.status >= 400) s.errors++;
    s.rxBytes += rx;
    s.txBytes += tx;
    const ms = r.latencyMs;
    if (s.requests === 1 || ms < s.minLatencyMs) s.minLatencyMs = ms;
    if (ms > s.maxLatencyMs) s.maxLatencyMs = ms;
    const seconds = ms / 1000;
    s.latencySumSeconds += seconds;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
    s.latencyBuckets[i]++;
  }

  /** Forgets the endpoints not in `keep` (called after a reload that removed some). */
  retain(keep: Iterable<string>): void {
    const wanted = new Set(keep);
    for (const endpoint of this.#byEndpoint.keys()) {
      if (!wanted.has(endpoint)) this.#byEndpoint.delete(endpoint);
    }
  }
}
