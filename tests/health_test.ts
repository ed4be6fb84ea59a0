import assert from "node:assert/strict";
import { Backend } from "../lib/backend.ts";
import { HealthChecker } from "../lib/health.ts";
import type { ExchangeRecord } from "../lib/record.ts";
import type { Transport } from "../lib/transport.ts";
import { waitFor } from "./helpers/backends.ts";

/** A transport whose answers the test scripts; records when each check started. */
function fakeTransport(answer: (url: string, signal: AbortSignal) => Promise<Response>) {
  const starts: number[] = [];
  let active = 0;
  let maxActive = 0;
  const transport: Transport = {
    async fetch(url, init) {
      starts.push(performance.now());
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        return await answer(url, init.signal!);
      } finally {
        active--;
      }
    },
    close() {},
  };
  return { transport, starts, maxActive: () => maxActive };
}

const backend = () => new Backend("http://b:1", 1, "http://b:1/health", () => {});

Deno.test("first check is immediate, then d, then d + [0, d) jitter", async () => {
  const { transport, starts } = fakeTransport(() => Promise.resolve(new Response("ok")));
  const b = backend();
  const t0 = performance.now();
  const checker = new HealthChecker([b], transport, {
    intervalMs: 40,
    timeoutMs: 1000,
    optimistic: false,
    random: () => 0.5,
  });
  await checker.start();
  assert.equal(b.up, true);
  assert.ok(starts[0] - t0 < 30, "immediate first check");
  await waitFor(() => starts.length >= 4, "four checks");
  checker.stop();
  const gaps = starts.slice(1, 4).map((s, i) => s - starts[i]);
  assert.ok(gaps[0] >= 38 && gaps[0] < 58, `second check after d: ${gaps[0]}`);
  for (const g of gaps.slice(1)) assert.ok(g >= 58 && g < 85, `then d + 0.5d: ${g}`);
});

Deno.test("UP iff status 200; other statuses and errors mark DOWN with a reason", async () => {
  let status = 200;
  let fail = false;
  const { transport } = fakeTransport(() =>
    fail
      ? Promise.reject(new TypeError("fetch failed", { cause: new Error("Connection refused") }))
      : Promise.resolve(new Response("x", { status }))
  );
  const b = backend();
  const records: ExchangeRecord[] = [];
  const checker = new HealthChecker([b], transport, {
    intervalMs: 1000,
    timeoutMs: 1000,
    optimistic: false,
    onRecord: (r) => records.push(r),
  });
  await checker.check(b);
  assert.equal(b.up, true);
  status = 503;
  await checker.check(b);
  assert.equal(b.up, false);
  assert.equal(b.lastError, "response status 503");
  status = 200;
  await checker.check(b);
  fail = true;
  await checker.check(b);
  assert.equal(b.up, false);
  assert.match(b.lastError, /Connection refused/);
  assert.deepEqual(records.map((r) => [r.kind, r.status, r.path]), [
    ["health", 200, "/health"],
    ["health", 503, "/health"],
    ["health", 200, "/health"],
    ["health", 0, "/health"],
  ], "a record per check; status 0 for the transport error (counted as failed, never traced)");
  assert.match(records[3].error, /Connection refused/);
  checker.stop();
});

Deno.test("the timeout bounds the whole check, body included", async () => {
  const { transport } = fakeTransport((_url, signal) =>
    Promise.resolve(
      new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new Uint8Array(1)); // headers arrive, the body never ends
            signal.addEventListener("abort", () => c.error(signal.reason));
          },
        }),
      ),
    )
  );
  const b = backend();
  b.markUp();
  const checker = new HealthChecker([b], transport, {
    intervalMs: 1000,
    timeoutMs: 50,
    optimistic: false,
  });
  const t0 = performance.now();
  await checker.check(b);
  assert.ok(performance.now() - t0 < 500);
  assert.equal(b.up, false);
  assert.match(b.lastError, /timeout/);
  checker.stop();
});

Deno.test("optimistic: no checks while UP; a passive ejection restarts the loop", async () => {
  let status = 200;
  const { transport, starts } = fakeTransport(() => Promise.resolve(new Response("", { status })));
  const b = backend();
  const checker = new HealthChecker([b], transport, {
    intervalMs: 20,
    timeoutMs: 1000,
    optimistic: true,
  });
  await checker.start();
  assert.equal(b.up, true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(starts.length, 1, "the loop stopped once UP");
  status = 503;
  b.markDown("connection reset");
  checker.backendDown(b);
  checker.backendDown(b); // a second notice must not start a second loop
  await waitFor(() => starts.length >= 3, "checks while DOWN");
  status = 200;
  await waitFor(() => b.up, "recovered");
  const n = starts.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(starts.length, n, "stopped again once UP");
  checker.stop();
});

Deno.test("checks never overlap for one backend, even when slower than the interval", async () => {
  const fake = fakeTransport(async () => {
    await new Promise((r) => setTimeout(r, 30));
    return new Response("ok");
  });
  const b = backend();
  const checker = new HealthChecker([b], fake.transport, {
    intervalMs: 5,
    timeoutMs: 1000,
    optimistic: false,
  });
  await checker.start();
  await waitFor(() => fake.starts.length >= 4, "several checks");
  checker.stop();
  assert.equal(fake.maxActive(), 1);
});
