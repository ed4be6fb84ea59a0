/**
 * `/.prometheus/metrics` (the Go sidekick's families, with its bugs fixed): Prometheus text exposition format 0.0.4
 * of the per-endpoint counters of every site, the backend state gauges, the request duration
 * histogram, and the standard `process_*` families. {@linkcode renderMetrics} is pure (plain data
 * in, text out); {@linkcode createMetricsHandler} samples the process and the pool at scrape time.
 *
 * Families (sorted by name, as the Go client writes them):
 * - `sidekick_requests_total`, `sidekick_errors_total`, `sidekick_rx_bytes_total`,
 *   `sidekick_tx_bytes_total` `{endpoint}`: proxied requests only (health checks have their own);
 * - `sidekick_health_checks_total{endpoint,result="success|failure"}`;
 * - `sidekick_health_error_counts{endpoint}`: failed health checks (the Go name, kept for
 *   compatibility; typed `untyped` because a counter's name must end in `_total`);
 * - `sidekick_retries_total{endpoint,reason="connect|closed|timeout"}`: failed attempts retried
 *   elsewhere;
 * - `sidekick_backend_ejections_total{endpoint}` and the `sidekick_backend_ejected{endpoint,site}`
 *   gauge: outlier ejections (`--eject-after`);
 * - `sidekick_hedges_total{endpoint,winner="hedge|primary"}`: requests hedged because `endpoint`
 *   had not answered within `--hedge-after`, by the attempt that answered first;
 * - `sidekick_retry_budget_exhausted_total{endpoint}`: failed attempts not retried, budget spent;
 * - `sidekick_responses_aborted_total{endpoint,by="backend|client|shutdown"}`: responses whose
 *   body broke off before its end, by who broke it (`backend` ones are in `errors_total` too);
 * - `sidekick_backend_up{endpoint,site}`, `sidekick_requests_in_flight{endpoint}` gauges;
 * - `sidekick_request_duration_seconds{endpoint}` histogram;
 * - `sidekick_trace_lines_dropped_total`: trace lines dropped because stdout was too slow;
 * - `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
 *   `process_open_fds`, `process_max_fds`, `process_start_time_seconds` (those the platform and
 *   the permissions allow);
 * - `promhttp_metric_handler_requests_total{code}`, `promhttp_metric_handler_requests_in_flight`.
 *
 * @example
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import { Stats } from "../shared/stats.ts";
 * const text = renderMetrics({
 *   backends: [{ endpoint: "http://127.0.0.1:9000", site: 1, up: true, inflight: 0 }],
 *   stats: new Stats(),
 * });
 * console.log(text.includes('sidekick_requests_total{endpoint="http://127.0.0.1:9000"} 0'));
 * ```
 * @module
 */

import process from "node:process";
import type { Pool } from "../shared/pool.ts";
import { DURATION_BUCKETS, EndpointStats, type Stats } from "../shared/stats.ts";

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One backend as the metrics see it. */
export interface BackendSample {
  /** Endpoint string (the `endpoint` label). */
  endpoint: string;
  /** 1-based site number (the `site` label). */
  site: number;
  /** Whether it is UP. */
  up: boolean;
  /** Requests in flight. */
  inflight: number;
  /** Whether it is ejected now (`--eject-after`). */
  ejected?: boolean;
}

/** Process figures; each is omitted when the platform or the permissions do not give it. */
export interface ProcessSample {
  /** User + system CPU time, seconds. */
  cpuSeconds?: number;
  /** Resident set size, bytes. */
  residentBytes?: number;
  /** Virtual memory size, bytes. */
  virtualBytes?: number;
  /** Open file descriptors. */
  openFds?: number;
  /** The soft limit on open file descriptors. */
  maxFds?: number;
  /** Process start, seconds since the epoch. */
  startTimeSeconds?: number;
}

/** Everything one exposition is made of. */
export interface MetricsSnapshot {
  /** Backends of every site, in site order. */
  backends: readonly BackendSample[];
  /** The per-endpoint counters. */
  stats: Stats;
  /** Trace lines dropped so far. */
  traceLinesDropped?: number;
  /** Process figures. */
  process?: ProcessSample;
  /** Scrapes answered so far, by status code (the current one not included). */
  scrapes?: ReadonlyMap<number, number>;
  /** Scrapes being served (including this one). */
  scrapesInFlight?: number;
}

/**
 * A sample value as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it: shortest round-trip
 * digits, exponent form from 1e6 up and below 1e-4 (`42`, `0.005`, `1.048576e+06`), `+Inf`,
 * `-Inf`, `NaN`.
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const [mantissa, expText] = v.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return String(v);
}

/** A label value escaped for the text format (`\\`, `\"`, `\n`). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** HELP text escaped for the text format (`\\`, `\n`). */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

type Labels = readonly (readonly [string, string])[];

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "untyped";
  lines: string[];
}

function sample(name: string, labels: Labels, value: number): string {
  const l = labels.length === 0
    ? ""
    : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
  return `${name}${l} ${formatValue(value)}`;
}

/** The Prometheus text exposition of one snapshot. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const families: Family[] = [];
  const family = (name: string, type: Family["type"], help: string): Family => {
    const f: Family = { name, help, type, lines: [] };
    families.push(f);
    return f;
  };

  // One series per distinct endpoint (an endpoint listed in two sites shares its counters).
  const endpoints: string[] = [];
  const inflight = new Map<string, number>();
  for (const b of snapshot.backends) {
    if (!inflight.has(b.endpoint)) endpoints.push(b.endpoint);
    inflight.set(b.endpoint, (inflight.get(b.endpoint) ?? 0) + b.inflight);
  }
  const zero = new EndpointStats();
  const statsOf = (e: string): EndpointStats => snapshot.stats.get(e) ?? zero;
  const perEndpoint = (
    name: string,
    type: Family["type"],
    help: string,
    value: (s: EndpointStats, e: string) => number,
  ) => {
    const f = family(name, type, help);
    for (const e of endpoints) f.lines.push(sample(name, [["endpoint", e]], value(statsOf(e), e)));
  };
  /** A counter per endpoint split by one more label, one sample per `[label value, value]`. */
  const perEndpointBy = (
    name: string,
    help: string,
    label: string,
    values: readonly (readonly [string, (s: EndpointStats) => number])[],
  ) => {
    const f = family(name, "counter", help);
    for (const e of endpoints) {
      const s = statsOf(e);
      for (const [v, value] of values) {
        f.lines.push(sample(name, [["endpoint", e], [label, v]], value(s)));
      }
    }
  };

  /** A gauge per backend of every site (an endpoint in two sites has two series). */
  const perBackend = (name: string, help: string, value: (b: BackendSample) => number) => {
    const f = family(name, "gauge", help);
    for (const b of snapshot.backends) {
      f.lines.push(sample(name, [["endpoint", b.endpoint], ["site", String(b.site)]], value(b)));
    }
  };

  perEndpoint(
    "sidekick_requests_total",
    "counter",
    "Total number of calls in current SideKick server instance",
    (s) => s.requests,
  );
  perEndpoint(
    "sidekick_errors_total",
    "counter",
    "Total number of failed calls in current SideKick server instance " +
      "(status 400 or more, or a response body the backend broke off)",
    (s) => s.errors,
  );
  perEndpoint(
    "sidekick_rx_bytes_total",
    "counter",
    "Total number of bytes received by current SideKick server instance",
    (s) => s.rxBytes,
  );
  perEndpoint(
    "sidekick_tx_bytes_total",
    "counter",
    "Total number of bytes sent by current SideKick server instance",
    (s) => s.txBytes,
  );
  // The Go name lacks `_total`, which a counter must have: typed `untyped` so that the exposition
  // stays lint-clean while queries written for the Go sidekick keep working.
  perEndpoint(
    "sidekick_health_error_counts",
    "untyped",
    'Total number of health check errors (same as sidekick_health_checks_total{result="failure"})',
    (s) => s.healthFailures,
  );
  perEndpointBy(
    "sidekick_health_checks_total",
    "Total number of health checks by result",
    "result",
    [
      ["failure", (s) => s.healthFailures],
      ["success", (s) => s.healthSuccesses],
    ],
  );
  perEndpointBy(
    "sidekick_retries_total",
    "Failed attempts retried on another backend, by the endpoint that failed and why " +
      "(connect: nothing was sent; closed: the connection closed before a response; " +
      "timeout: no response headers within --response-timeout)",
    "reason",
    [
      ["closed", (s) => s.retriesClosed],
      ["connect", (s) => s.retriesConnect],
      ["timeout", (s) => s.retriesTimeout],
    ],
  );
  perEndpoint(
    "sidekick_backend_ejections_total",
    "counter",
    "Outlier ejections: consecutive failures took the backend out of picking for a while",
    (s) => s.ejections,
  );
  perBackend(
    "sidekick_backend_ejected",
    "Whether the backend is ejected (1) by outlier detection now",
    (b) => +!!b.ejected,
  );
  perEndpointBy(
    "sidekick_hedges_total",
    "Requests hedged because the endpoint had not answered within --hedge-after, by the " +
      "attempt that answered first",
    "winner",
    [["hedge", (s) => s.hedgesWon], ["primary", (s) => s.hedgesLost]],
  );
  perEndpointBy(
    "sidekick_responses_aborted_total",
    "Responses whose body broke off before its end, by who broke it (backend: its body " +
      "failed or fell short of its Content-Length, also counted in sidekick_errors_total; " +
      "client: it went away; shutdown: the drain deadline of a stop passed)",
    "by",
    [
      ["backend", (s) => s.abortedByBackend],
      ["client", (s) => s.abortedByClient],
      ["shutdown", (s) => s.abortedByShutdown],
    ],
  );
  perEndpoint(
    "sidekick_retry_budget_exhausted_total",
    "counter",
    "Failed attempts that could have been retried but were not: the retry budget was spent",
    (s) => s.retryBudgetExhausted,
  );
  perBackend("sidekick_backend_up", "Whether the backend is UP (1) or DOWN (0)", (b) => +b.up);
  perEndpoint(
    "sidekick_requests_in_flight",
    "gauge",
    "Number of requests currently being proxied to the backend",
    (_s, e) => inflight.get(e) ?? 0,
  );
  {
    const name = "sidekick_request_duration_seconds";
    const f = family(
      name,
      "histogram",
      "Duration of proxied requests, from arrival to the last response byte",
    );
    for (const e of endpoints) {
      const s = statsOf(e);
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += s.latencyBuckets[i];
        f.lines.push(
          sample(`${name}_bucket`, [["endpoint", e], ["le", formatValue(le)]], cumulative),
        );
      });
      cumulative += s.latencyBuckets[DURATION_BUCKETS.length];
      f.lines.push(sample(`${name}_bucket`, [["endpoint", e], ["le", "+Inf"]], cumulative));
      f.lines.push(sample(`${name}_sum`, [["endpoint", e]], s.latencySumSeconds));
      f.lines.push(sample(`${name}_count`, [["endpoint", e]], cumulative));
    }
  }
  family(
    "sidekick_trace_lines_dropped_total",
    "counter",
    "Trace and log lines dropped because standard output could not keep up",
  ).lines.push(sample("sidekick_trace_lines_dropped_total", [], snapshot.traceLinesDropped ?? 0));

  const p = snapshot.process ?? {};
  const processFamily = (
    name: string,
    type: Family["type"],
    help: string,
    v: number | undefined,
  ) => {
    if (v !== undefined && Number.isFinite(v)) {
      family(name, type, help).lines.push(sample(name, [], v));
    }
  };
  processFamily(
    "process_cpu_seconds_total",
    "counter",
    "Total user and system CPU time spent in seconds.",
    p.cpuSeconds,
  );
  processFamily(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory size in bytes.",
    p.residentBytes,
  );
  processFamily(
    "process_virtual_memory_bytes",
    "gauge",
    "Virtual memory size in bytes.",
    p.virtualBytes,
  );
  processFamily("process_open_fds", "gauge", "Number of open file descriptors.", p.openFds);
  processFamily("process_max_fds", "gauge", "Maximum number of open file descriptors.", p.maxFds);
  processFamily(
    "process_start_time_seconds",
    "gauge",
    "Start time of the process since unix epoch in seconds.",
    p.startTimeSeconds,
  );

  if (snapshot.scrapes) {
    const name = "promhttp_metric_handler_requests_total";
    const f = family(name, "counter", "Total number of scrapes by HTTP status code.");
    const counts = new Map(snapshot.scrapes);
    for (const code of [200, 500, 503]) if (!counts.has(code)) counts.set(code, 0);
    for (const [code, n] of [...counts].sort(([a], [b]) => a - b)) {
      f.lines.push(sample(name, [["code", String(code)]], n));
    }
  }
  if (snapshot.scrapesInFlight !== undefined) {
    const name = "promhttp_metric_handler_requests_in_flight";
    family(name, "gauge", "Current number of scrapes being served.").lines.push(
      sample(name, [], snapshot.scrapesInFlight),
    );
  }

  families.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let out = "";
  for (const f of families) {
    if (f.lines.length === 0) continue;
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    out += f.lines.join("\n") + "\n";
  }
  return out;
}

/** Reads a small text file if read permission is already granted (never prompts). */
function readIfAllowed(path: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Samples this process: CPU time (`process.cpuUsage`), resident memory (`Deno.memoryUsage`), the
 * start time (`performance.timeOrigin`), and on Linux, when `/proc` may be read, virtual memory
 * and file descriptors.
 */
export function sampleProcess(): ProcessSample {
  const out: ProcessSample = { startTimeSeconds: performance.timeOrigin / 1000 };
  try {
    const cpu = process.cpuUsage();
    out.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  } catch { /* not available */ }
  try {
    out.residentBytes = Deno.memoryUsage().rss;
  } catch { /* not available */ }
  if (Deno.build.os !== "linux") return out;
  const stat = readIfAllowed("/proc/self/stat");
  if (stat) {
    // Fields after the parenthesised command name; vsize is field 23 (index 20 after ")").
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const vsize = Number(fields[20]);
    if (Number.isFinite(vsize)) out.virtualBytes = vsize;
  }
  const limits = readIfAllowed("/proc/self/limits");
  const m = limits ? /^Max open files\s+(\d+|unlimited)/m.exec(limits) : null;
  if (m) out.maxFds = m[1] === "unlimited" ? Infinity : Number(m[1]);
  try {
    if (Deno.permissions.querySync({ name: "read", path: "/proc/self/fd" }).state === "granted") {
      let n = 0;
      for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
      out.openFds = n;
    }
  } catch { /* not available */ }
  return out;
}

/** What the metrics handler reads at scrape time. */
export interface MetricsSource {
  /** The current pool (swapped on reload). */
  pool(): Pool;
  /** The per-endpoint counters. */
  stats: Stats;
  /** Trace lines dropped so far, if some output drops them. */
  traceLinesDropped?: () => number;
  /** Process sampler (tests replace it); default {@linkcode sampleProcess}. */
  sampleProcess?: () => ProcessSample;
}

/**
 * The `/.prometheus/metrics` handler of one sidekick: any method, no authentication, gzip when
 * the scraper accepts it. Its scrape counters live in the returned closure.
 */
export function createMetricsHandler(source: MetricsSource): (req: Request) => Promise<Response> {
  const scrapes = new Map<number, number>();
  let inFlight = 0;
  const sampler = source.sampleProcess ?? sampleProcess;
  return async (req) => {
    inFlight++;
    try {
      const pool = source.pool();
      const now = Date.now();
      const text = renderMetrics({
        backends: pool.backends.map((b) => ({
          endpoint: b.endpoint,
          site: b.site,
          up: b.up,
          inflight: b.inflight,
          ejected: pool.outliers?.ejected(b.index, now) ?? false,
        })),
        stats: source.stats,
        traceLinesDropped: source.traceLinesDropped?.(),
        process: sampler(),
        scrapes,
        scrapesInFlight: inFlight,
      });
      scrapes.set(200, (scrapes.get(200) ?? 0) + 1);
      const headers: Record<string, string> = { "content-type": METRICS_CONTENT_TYPE };
      const body = new TextEncoder().encode(text);
      if (/\bgzip\b/i.test(req.headers.get("accept-encoding") ?? "")) {
        const gz = new Uint8Array(
          await new Response(
            new Blob([body]).stream().pipeThrough(new CompressionStream("gzip")),
          ).arrayBuffer(),
        );
        headers["content-encoding"] = "gzip";
        return new Response(gz, { headers });
      }
      return new Response(body, { headers });
    } catch (e) {
      scrapes.set(500, (scrapes.get(500) ?? 0) + 1);
      return new Response(`error gathering metrics: ${e instanceof Error ? e.message : e}\n`, {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    } finally {
      inFlight--;
    }
  };
}
