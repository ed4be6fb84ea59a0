import assert from "node:assert/strict";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import { requestRecord } from "./helpers/records.ts";
import { DURATION_BUCKETS, exchangeSizes, Stats } from "../lib/shared/stats.ts";

function rec(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return requestRecord({
    latencyMs: 10,
    ttfbMs: 5,
    requestHeaders: new Headers({ host: "h" }),
    responseHeaders: new Headers({ "content-length": "10" }),
    responseBodyBytes: 10,
    ...overrides,
  });
}

Deno.test("exchangeSizes: headers, synthesised Content-Length, status line, first Set-Cookie", () => {
  // rx: host(4+1) + synthesised "content-length" "0" (14+1); tx: 10 + "200 OK\n" + "content-length: 10\n"
  assert.deepEqual(exchangeSizes(rec()), { rx: 5 + 15, tx: 10 + 7 + 19 });
  // A body of unknown length synthesises Transfer-Encoding: chunked.
  assert.equal(exchangeSizes(rec({ method: "POST" })).rx, 5 + 17 + 7);
  const res = new Headers();
  res.append("set-cookie", "a=1");
  res.append("set-cookie", "b=2");
  assert.equal(exchangeSizes(rec({ responseHeaders: res, responseBodyBytes: 0 })).tx, 7 + 16);
  assert.deepEqual(exchangeSizes(rec({ kind: "health" })), { rx: 0, tx: 0 });
});

Deno.test("Stats counts requests, errors, bytes, latency extremes and buckets", () => {
  const stats = new Stats();
  assert.equal(stats.get("http://127.0.0.1:9001"), undefined);
  stats.observe(rec({ latencyMs: 10 }));
  stats.observe(rec({ latencyMs: 3, status: 404 }));
  stats.observe(rec({ latencyMs: 20_000, status: 502 }));
  const s = stats.get("http://127.0.0.1:9001")!;
  assert.equal(s.requests, 3);
  assert.equal(s.errors, 2);
  assert.equal(s.minLatencyMs, 3);
  assert.equal(s.maxLatencyMs, 20_000);
  assert.ok(Math.abs(s.latencySumSeconds - 20.013) < 1e-9);
  assert.equal(s.latencyBuckets.length, DURATION_BUCKETS.length + 1);
  assert.equal(s.latencyBuckets[0], 1); // 3 ms ≤ 5 ms
  assert.equal(s.latencyBuckets[1], 1); // 10 ms ≤ 10 ms
  assert.equal(s.latencyBuckets[DURATION_BUCKETS.length], 1); // 20 s > 10 s
  assert.equal(s.rxBytes, 3 * 20);
  assert.equal(s.healthSuccesses + s.healthFailures, 0);
});

Deno.test("Stats counts health checks apart, failures including those without a response", () => {
  const stats = new Stats();
  stats.observe(rec({ kind: "health" }));
  stats.observe(rec({ kind: "health", status: 503 }));
  stats.observe(rec({ kind: "health", status: 0, error: "connection refused" }));
  const s = stats.get("http://127.0.0.1:9001")!;
  assert.equal(s.healthSuccesses, 1);
  assert.equal(s.healthFailures, 2);
  assert.equal(s.requests, 0);
});

Deno.test("Stats.retain forgets endpoints that are gone, keeps the others", () => {
  const stats = new Stats();
  stats.observe(rec({ endpoint: "http://a" }));
  stats.observe(rec({ endpoint: "http://b" }));
  stats.retain(["http://b", "http://c"]);
  assert.deepEqual(stats.endpoints(), ["http://b"]);
  assert.equal(stats.get("http://b")!.requests, 1);
});

Deno.test("Stats in shared memory: each writer its stripe, readers see the sums", () => {
  const control = new Stats({ stripes: 3 });
  const a = "http://127.0.0.1:9001";
  control.slot(a);
  const w1 = new Stats({ memory: control.memory, stripe: 1 });
  const w2 = new Stats({ memory: control.memory, stripe: 2 });
  w1.adopt(control.slots);
  w2.adopt(control.slots);
  w1.observe(rec({ latencyMs: 30 }));
  w2.observe(rec({ latencyMs: 5, status: 503 }));
  w2.observe(rec({ latencyMs: 50 }));
  control.observe(rec({ kind: "health" }));
  for (const reader of [control, w1]) {
    const s = reader.get(a)!;
    assert.equal(s.requests, 3);
    assert.equal(s.errors, 1);
    assert.equal(s.minLatencyMs, 5);
    assert.equal(s.maxLatencyMs, 50);
    assert.equal(s.healthSuccesses, 1);
    assert.equal(s.latencyBuckets.reduce((x, y) => x + y), 3);
  }
  // A worker that was not told of an endpoint counts nothing rather than inventing a slot.
  w1.observe(rec({ endpoint: "http://unknown" }));
  assert.equal(control.get("http://unknown"), undefined);
  // In-flight cells are shared: one count across isolates.
  const slot = control.slot(a)!;
  w1.addInflight(slot, 1);
  w2.addInflight(slot, 1);
  assert.equal(control.inflightOf(slot), 2);
});

Deno.test("Stats: a slot given up is reused zeroed, last, as the memory grows", () => {
  const stats = new Stats({ stripes: 2 });
  stats.observe(rec({ endpoint: "http://a" }));
  stats.observe(rec({ endpoint: "http://b" }));
  stats.retain(["http://b"]);
  stats.observe(rec({ endpoint: "http://c" })); // takes the freed slot of a
  assert.equal(stats.slot("http://c"), 0);
  assert.equal(stats.get("http://c")!.requests, 1);
  for (let i = 0; i < 100; i++) stats.slot(`http://n${i}`);
  assert.equal(stats.get("http://b")!.requests, 1, "growing keeps the counters");
});

Deno.test("Stats: a body the backend broke off is an error; one the client or a stop broke is not", () => {
  const stats = new Stats();
  stats.observe(rec({ completed: false, aborted: "backend", responseBodyBytes: 4 }));
  stats.observe(rec({ completed: false, aborted: "client", clientFault: true }));
  stats.observe(rec({ completed: false, aborted: "shutdown" }));
  stats.observe(rec({ status: 500, completed: false, aborted: "backend" })); // one error, not two
  const s = stats.get("http://127.0.0.1:9001")!;
  assert.equal(s.requests, 4);
  assert.equal(s.errors, 2);
  assert.equal(s.abortedByBackend, 2);
  assert.equal(s.abortedByClient, 1);
  assert.equal(s.abortedByShutdown, 1);
  // tx counts the body bytes that got through: 4, 10, 10, 10 plus the status and header lines.
  assert.equal(s.txBytes, 4 + 3 * 10 + 3 * (7 + 19) + (4 + 22 + 19));
});
