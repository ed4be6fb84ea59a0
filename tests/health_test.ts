import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import { HealthChecker } from "../lib/control/health.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import type { Transport } from "../lib/upstream/transport.ts";
import { waitFor } from "./helpers/backends.ts";

/** A transport whose answers the test scripts; records when each check started, and of what. */
function fakeTransport(answer: (url: string, signal: AbortSignal) => Promise<Response>) {
  const starts: number[] = [];
  const urls: string[] = [];
  let active = 0;
  let maxActive = 0;
  const transport: Transport = {
    async fetch(url, init) {
      starts.push(performance.now());
      urls.push(url);
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
  return {
    transport,
    starts,
    maxActive: () => maxActive,
    /** Checks started of `b`. */
    checksOf: (b: Backend) => urls.filter((u) => u === b.healthUrl).length,
  };
}

const backend = () => new Backend("http://b:1", 1, "http://b:1/health", () => {});

/**
 * A backend whose health checks always fail (answered 503 by {@linkcode answerWitness}): in the
 * same optimistic checker as the backend under test, with no jitter, it is checked every `d`, so
 * its next checks prove that a loop which had not stopped would have checked again.
 */
const witness = () => new Backend("http://w:1", 1, "http://w:1/health", () => {});

/** 503 for the witness's health URL, else `status`. */
const answerWitness = (url: string, status: number) =>
  Promise.resolve(new Response("", { status: url === "http://w:1/health" ? 503 : status }));

Deno.test("first check is immediate, then d, then d + [0, d) jitter", async () => {
  const { transport, starts } = fakeTransport(() => Promise.resolve(new Response("ok")));
  const b = backend();
  const t0 = performance.now();
  const checker = new HealthChecker([b], transport, {
    intervalMs: 200,
    timeoutMs: 1000,
    optimistic: false,
    random: () => 0.5,
  });
  await checker.start();
  assert.equal(b.up, true);
  assert.ok(starts[0] - t0 < 100, "immediate first check");
  await waitFor(() => starts.length >= 4, "four checks");
  checker.stop();
  // Timers fire late on a busy machine, never early: the lower bounds are exact, the upper
  // ones leave room for a loaded test runner while still telling d from d + 0.5d.
  const gaps = starts.slice(1, 4).map((s, i) => s - starts[i]);
  assert.ok(gaps[0] >= 198 && gaps[0] < 295, `second check after d: ${gaps[0]}`);
  for (const g of gaps.slice(1)) assert.ok(g >= 298 && g < 450, `then d + 0.5d: ${g}`);
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
  const { transport, checksOf } = fakeTransport((url) => answerWitness(url, status));
  const b = backend();
  const w = witness();
  const checker = new HealthChecker([b, w], transport, {
    intervalMs: 20,
    timeoutMs: 1000,
    optimistic: true,
    random: () => 0,
  });
  const witnessChecks = async (more: number) => {
    const n = checksOf(w) + more;
    await waitFor(() => checksOf(w) >= n, `${more} more checks of the witness`);
  };
  await checker.start();
  assert.equal(b.up, true);
  assert.equal(w.up, false);
  await witnessChecks(3);
  assert.equal(checksOf(b), 1, "the loop stopped once UP");
  status = 503;
  b.markDown("connection reset");
  checker.backendDown(b);
  checker.backendDown(b); // a second notice must not start a second loop
  await waitFor(() => checksOf(b) >= 3, "checks while DOWN");
  status = 200;
  await waitFor(() => b.up, "recovered");
  const n = checksOf(b);
  await witnessChecks(3);
  assert.equal(checksOf(b), n, "stopped again once UP");
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

/** A checker of one backend whose checks answer `status()`; counts the transitions it reports. */
function hysteresis(rise: number, fall: number, optimistic = false) {
  let status = 200;
  const { transport } = fakeTransport(() => Promise.resolve(new Response("", { status })));
  const transitions: string[] = [];
  const b = new Backend("http://b:1", 1, "http://b:1/health", (t) => transitions.push(t.state));
  const records: ExchangeRecord[] = [];
  const checker = new HealthChecker([b], transport, {
    intervalMs: 1000,
    timeoutMs: 1000,
    optimistic,
    rise,
    fall,
    onRecord: (r) => records.push(r),
  });
  /** Runs one check answering `s` and returns whether the backend is UP afterwards. */
  const check = async (s: number) => {
    status = s;
    await checker.check(b);
    return b.up;
  };
  return { b, checker, check, transitions, records };
}

Deno.test("rise 3: the first passing check of a new backend brings it UP at once", async () => {
  const { checker, check, transitions } = hysteresis(3, 1);
  assert.equal(await check(200), true);
  assert.deepEqual(transitions, ["up"]);
  checker.stop();
});

Deno.test("rise 3: a new backend failing at first still comes UP on its first pass", async () => {
  const { checker, check } = hysteresis(3, 1);
  assert.equal(await check(503), false);
  assert.equal(await check(503), false);
  assert.equal(await check(200), true, "never UP before: no rise count");
  checker.stop();
});

Deno.test("rise 3: a recovered backend is UP after three passes in a row; a failure restarts", async () => {
  const { b, checker, check, transitions, records } = hysteresis(3, 1);
  assert.equal(await check(200), true);
  assert.equal(await check(503), false, "fall 1: out at once");
  assert.equal(b.lastError, "response status 503");
  assert.equal(await check(200), false, "one pass");
  assert.equal(await check(200), false, "two passes");
  assert.equal(await check(503), false, "a failure restarts the count");
  assert.equal(await check(200), false, "one pass");
  assert.equal(await check(200), false, "two passes");
  assert.equal(await check(200), true, "three passes in a row");
  assert.equal(await check(200), true);
  assert.deepEqual(transitions, ["up", "down", "up"], "only real transitions are reported");
  assert.deepEqual(
    records.map((r) => r.status),
    [200, 503, 200, 200, 503, 200, 200, 200, 200],
    "every check still produces its record",
  );
  checker.stop();
});

Deno.test("fall 2: one failed check keeps a backend UP, two in a row take it out", async () => {
  const { b, checker, check, transitions } = hysteresis(1, 2);
  assert.equal(await check(200), true);
  assert.equal(await check(503), true, "one failure: still UP");
  assert.equal(await check(200), true, "a pass resets the fall count");
  assert.equal(await check(503), true, "one failure again: still UP");
  assert.equal(await check(503), false, "two in a row: DOWN");
  assert.equal(b.lastError, "response status 503");
  assert.equal(await check(200), true, "rise 1: back on the first pass");
  assert.deepEqual(transitions, ["up", "down", "up"]);
  checker.stop();
});

Deno.test("fall 2, rise 2: a transport error counts as a failed check", async () => {
  let fail = false;
  const { transport } = fakeTransport(() =>
    fail
      ? Promise.reject(new TypeError("fetch failed", { cause: new Error("Connection refused") }))
      : Promise.resolve(new Response("ok"))
  );
  const b = backend();
  const checker = new HealthChecker([b], transport, {
    intervalMs: 1000,
    timeoutMs: 1000,
    optimistic: false,
    rise: 2,
    fall: 2,
  });
  await checker.check(b);
  fail = true;
  await checker.check(b);
  assert.equal(b.up, true);
  await checker.check(b);
  assert.equal(b.up, false);
  assert.match(b.lastError, /Connection refused/);
  fail = false;
  await checker.check(b);
  assert.equal(b.up, false);
  await checker.check(b);
  assert.equal(b.up, true);
  checker.stop();
});

Deno.test("fall 3: a passive ejection is immediate, and recovery still needs rise passes", async () => {
  const { b, checker, check, transitions } = hysteresis(2, 3);
  assert.equal(await check(200), true);
  assert.equal(await check(503), true, "one failed check: still UP");
  assert.equal(b.markDown("connection reset"), true);
  assert.equal(b.up, false, "the proxy's ejection does not wait for the fall count");
  assert.equal(await check(200), false, "one pass");
  assert.equal(await check(200), true, "two passes");
  assert.equal(await check(503), true, "the fall count started over after the recovery");
  assert.deepEqual(transitions, ["up", "down", "up"]);
  checker.stop();
});

Deno.test("rise 2: passes seen while UP do not count towards a later recovery", async () => {
  const { b, checker, check } = hysteresis(2, 1);
  assert.equal(await check(200), true);
  assert.equal(await check(200), true);
  b.markDown("connection reset");
  assert.equal(await check(200), false, "the first pass after the ejection");
  assert.equal(await check(200), true);
  checker.stop();
});

Deno.test("optimistic with rise 3: the loop keeps checking until the third pass", async () => {
  const { transport, checksOf } = fakeTransport((url) => answerWitness(url, 200));
  const b = backend();
  const w = witness();
  const checker = new HealthChecker([b, w], transport, {
    intervalMs: 10,
    timeoutMs: 1000,
    optimistic: true,
    rise: 3,
    random: () => 0,
  });
  await checker.start();
  assert.equal(b.up, true, "first pass of a new backend");
  assert.equal(checksOf(b), 1);
  b.markDown("connection reset");
  checker.backendDown(b);
  await waitFor(() => b.up, "recovered");
  assert.equal(checksOf(b), 4, "three checks after the ejection, the loop stopped at the third");
  const more = checksOf(w) + 3;
  await waitFor(() => checksOf(w) >= more, "three more checks of the witness");
  assert.equal(checksOf(b), 4, "no checks once UP again");
  checker.stop();
});
