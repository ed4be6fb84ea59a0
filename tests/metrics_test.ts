import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import {
  createMetricsHandler,
  escapeLabelValue,
  formatValue,
  METRICS_CONTENT_TYPE,
  renderMetrics,
  sampleProcess,
} from "../lib/output/metrics.ts";
import { Pool } from "../lib/shared/pool.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import { requestRecord } from "./helpers/records.ts";
import { Stats } from "../lib/shared/stats.ts";
import { promtoolCheckStep } from "./helpers/promtool.ts";

function rec(endpoint: string, overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return requestRecord({
    endpoint,
    latencyMs: 12,
    ttfbMs: 5,
    requestHeaders: new Headers({ host: "h" }),
    responseHeaders: new Headers(),
    responseBodyBytes: 2_000_000,
    ...overrides,
  });
}

Deno.test("formatValue writes Go's shortest %g", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [42, "42"],
    [0.005, "0.005"],
    [2.5, "2.5"],
    [123456, "123456"],
    [1048576, "1.048576e+06"],
    [1e6, "1e+06"],
    [1.7e9, "1.7e+09"],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [NaN, "NaN"],
  ];
  for (const [v, want] of cases) assert.equal(formatValue(v), want, `formatValue(${v})`);
});

Deno.test("label values are escaped", () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

Deno.test("renderMetrics: every site's endpoints, families sorted, HELP/TYPE, promtool-clean", async (t) => {
  const stats = new Stats();
  stats.observe(rec("http://a:9000"));
  stats.observe(rec("http://a:9000", { status: 503, latencyMs: 700 }));
  stats.observe(rec("http://c:9000", { latencyMs: 30_000 }));
  stats.observe(rec("http://c:9000", { kind: "health", status: 0, error: "refused" }));
  stats.observe(rec("http://c:9000", { kind: "health" }));
  stats.observe(rec("http://c:9000", { completed: false, aborted: "backend", latencyMs: 20_000 }));
  const text = renderMetrics({
    backends: [
      { endpoint: "http://a:9000", site: 1, up: true, inflight: 2 },
      { endpoint: "http://b:9000", site: 1, up: false, inflight: 0 },
      { endpoint: "http://c:9000", site: 2, up: true, inflight: 1 },
    ],
    stats,
    traceLinesDropped: 4,
    process: { cpuSeconds: 0.25, residentBytes: 50_000_000, startTimeSeconds: 1_700_000_000 },
    scrapes: new Map([[200, 3]]),
    scrapesInFlight: 1,
  });
  const lines = text.split("\n");
  const has = (line: string) => assert.ok(lines.includes(line), `missing: ${line}\n${text}`);
  has('sidekick_requests_total{endpoint="http://a:9000"} 2');
  has('sidekick_requests_total{endpoint="http://b:9000"} 0');
  has('sidekick_requests_total{endpoint="http://c:9000"} 2');
  has('sidekick_errors_total{endpoint="http://c:9000"} 1');
  has('sidekick_responses_aborted_total{endpoint="http://c:9000",by="backend"} 1');
  has('sidekick_responses_aborted_total{endpoint="http://c:9000",by="client"} 0');
  has('sidekick_responses_aborted_total{endpoint="http://a:9000",by="shutdown"} 0');
  has("# TYPE sidekick_responses_aborted_total counter");
  has('sidekick_errors_total{endpoint="http://a:9000"} 1');
  has('sidekick_tx_bytes_total{endpoint="http://a:9000"} 4.000031e+06');
  has('sidekick_health_checks_total{endpoint="http://c:9000",result="failure"} 1');
  has('sidekick_health_checks_total{endpoint="http://c:9000",result="success"} 1');
  has('sidekick_health_error_counts{endpoint="http://c:9000"} 1');
  has('sidekick_backend_up{endpoint="http://b:9000",site="1"} 0');
  has('sidekick_backend_up{endpoint="http://c:9000",site="2"} 1');
  has('sidekick_requests_in_flight{endpoint="http://a:9000"} 2');
  has('sidekick_request_duration_seconds_bucket{endpoint="http://a:9000",le="0.025"} 1');
  has('sidekick_request_duration_seconds_bucket{endpoint="http://a:9000",le="1"} 2');
  has('sidekick_request_duration_seconds_bucket{endpoint="http://c:9000",le="10"} 0');
  has('sidekick_request_duration_seconds_bucket{endpoint="http://c:9000",le="+Inf"} 2');
  has('sidekick_request_duration_seconds_count{endpoint="http://a:9000"} 2');
  has('sidekick_request_duration_seconds_sum{endpoint="http://a:9000"} 0.712');
  has("sidekick_trace_lines_dropped_total 4");
  has("process_start_time_seconds 1.7e+09");
  has('promhttp_metric_handler_requests_total{code="200"} 3');
  has("# HELP sidekick_requests_total Total number of calls in current SideKick server instance");
  has("# TYPE sidekick_requests_total counter");
  has("# TYPE sidekick_request_duration_seconds histogram");
  const names = lines.filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]);
  assert.deepEqual(names, [...names].sort());
  assert.ok(text.endsWith("\n"));
  await promtoolCheckStep(t, text);
});

Deno.test("an endpoint listed in two sites gets one series per counter and two up gauges", () => {
  const text = renderMetrics({
    backends: [
      { endpoint: "http://a:9000", site: 1, up: true, inflight: 1 },
      { endpoint: "http://a:9000", site: 2, up: true, inflight: 2 },
    ],
    stats: new Stats(),
  });
  assert.equal(text.match(/^sidekick_requests_total/gm)?.length, 1);
  assert.equal(text.match(/^sidekick_backend_up/gm)?.length, 2);
  assert.ok(text.includes('sidekick_requests_in_flight{endpoint="http://a:9000"} 3'));
});

Deno.test("the handler reads the current pool, answers any method, gzips on request", async (t) => {
  const noop = () => {};
  const backends = [
    new Backend("http://127.0.0.1:1", 1, "http://127.0.0.1:1/", noop),
    new Backend("http://127.0.0.1:2", 2, "http://127.0.0.1:2/", noop),
  ];
  backends[1].markUp();
  const pool = new Pool([[backends[0]], [backends[1]]], "least");
  const stats = new Stats();
  stats.observe(rec("http://127.0.0.1:2"));
  const handler = createMetricsHandler({ pool: () => pool, stats, traceLinesDropped: () => 7 });

  const res = await handler(new Request("http://x/.prometheus/metrics", { method: "POST" }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), METRICS_CONTENT_TYPE);
  const text = await res.text();
  assert.ok(text.includes('sidekick_requests_total{endpoint="http://127.0.0.1:2"} 1'));
  assert.ok(text.includes('sidekick_backend_up{endpoint="http://127.0.0.1:2",site="2"} 1'));
  assert.ok(text.includes("sidekick_trace_lines_dropped_total 7"));
  assert.ok(text.includes("promhttp_metric_handler_requests_in_flight 1"));
  assert.ok(text.includes("process_resident_memory_bytes "));
  await promtoolCheckStep(t, text);

  const gz = await handler(
    new Request("http://x/.prometheus/metrics", { headers: { "accept-encoding": "gzip" } }),
  );
  assert.equal(gz.headers.get("content-encoding"), "gzip");
  const unzipped = await new Response(gz.body!.pipeThrough(new DecompressionStream("gzip")))
    .text();
  assert.ok(unzipped.includes('promhttp_metric_handler_requests_total{code="200"} 1'));
});

Deno.test("sampleProcess gives CPU, RSS and start time; fds and vsize on Linux with read access", () => {
  const p = sampleProcess();
  assert.ok(p.cpuSeconds! > 0);
  assert.ok(p.residentBytes! > 0);
  assert.ok(Math.abs(p.startTimeSeconds! - Date.now() / 1000) < 3600);
  if (Deno.build.os === "linux") {
    assert.ok(p.openFds! > 0);
    assert.ok(p.maxFds! > 0);
    assert.ok(p.virtualBytes! > 0);
  }
});

Deno.test("gray failures: timeout retries, ejections, the ejected gauge and hedges by winner", () => {
  const stats = new Stats();
  const a = "http://a:9000";
  const b = "http://b:9000";
  stats.observe(rec(b, {
    retried: [{ endpoint: a, reason: "timeout", error: "no response headers" }],
  }));
  stats.observe(rec(b, { hedge: { endpoint: b, primary: a, won: true } }));
  stats.observe(rec(a, { hedge: { endpoint: b, primary: a, won: false } }));
  stats.countEjection(a);
  const text = renderMetrics({
    backends: [
      { endpoint: a, site: 1, up: true, inflight: 0, ejected: true },
      { endpoint: b, site: 1, up: true, inflight: 0 },
    ],
    stats,
  });
  for (
    const line of [
      `sidekick_retries_total{endpoint="${a}",reason="timeout"} 1`,
      `sidekick_backend_ejections_total{endpoint="${a}"} 1`,
      `sidekick_backend_ejected{endpoint="${a}",site="1"} 1`,
      `sidekick_backend_ejected{endpoint="${b}",site="1"} 0`,
      `sidekick_hedges_total{endpoint="${a}",winner="hedge"} 1`,
      `sidekick_hedges_total{endpoint="${a}",winner="primary"} 1`,
      `sidekick_hedges_total{endpoint="${b}",winner="hedge"} 0`,
    ]
  ) {
    assert.ok(text.includes(`\n${line}\n`), line);
  }
});
