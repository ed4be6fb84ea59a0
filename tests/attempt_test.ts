import assert from "node:assert/strict";
import {
  type Attempt,
  type ClientRequest,
  Deadlines,
  exchange,
  type ExchangePlan,
  HEDGE_LOST,
  RESPONSE_TIMEOUT,
} from "../lib/data/attempt.ts";
import { Backend } from "../lib/shared/backend.ts";
import { CLIENT_GONE } from "../lib/upstream/fetch_errors.ts";

function backend(port: number): Backend {
  const b = new Backend(`http://127.0.0.1:${port}`, 1, `http://127.0.0.1:${port}/h`, () => {});
  b.markUp();
  return b;
}

/** A send whose answer for each backend comes after the given delay (never: hangs until aborted). */
function sender(delays: Map<Backend, number>, aborted: Map<Backend, unknown>) {
  return (b: Backend, signal: AbortSignal): Promise<Response> =>
    new Promise((resolve, reject) => {
      const ms = delays.get(b)!;
      const timer = ms === Infinity
        ? undefined
        : setTimeout(() => resolve(new Response(b.endpoint)), ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        aborted.set(b, signal.reason);
        reject(signal.reason);
      }, { once: true });
    });
}

function primary(b: Backend): Attempt {
  b.begin();
  return { backend: b, controller: new AbortController() };
}

Deno.test("exchange: without bounds, a bare send", async () => {
  const a = backend(1);
  const out = await exchange({
    send: () => Promise.resolve(new Response("ok")),
    responseTimeoutMs: 0,
    hedgeAfterMs: 0,
    parent: new AbortController().signal,
  }, primary(a));
  assert.ok(out.ok);
  assert.equal(out.winner.backend, a);
  assert.equal(a.inflight, 1, "the caller ends the attempt it gets back");
});

Deno.test("exchange: no headers within the response timeout abandons the attempt", async () => {
  const a = backend(1);
  const aborted = new Map<Backend, unknown>();
  const p = primary(a);
  const t0 = performance.now();
  const out = await exchange({
    send: sender(new Map([[a, Infinity]]), aborted),
    responseTimeoutMs: 50,
    hedgeAfterMs: 0,
    parent: p.controller.signal,
  }, p);
  assert.ok(!out.ok);
  assert.equal(out.error, RESPONSE_TIMEOUT);
  assert.equal(aborted.get(a), RESPONSE_TIMEOUT, "the fetch was cancelled");
  assert.ok(performance.now() - t0 >= 45);
});

Deno.test("exchange: a slow primary is hedged; the hedge wins, the primary is cancelled and ended", async () => {
  const [a, b] = [backend(1), backend(2)];
  const aborted = new Map<Backend, unknown>();
  const lost: Backend[] = [];
  const p = primary(a);
  const plan: ExchangePlan = {
    send: sender(new Map([[a, 2_000], [b, 5]]), aborted),
    responseTimeoutMs: 5_000,
    hedgeAfterMs: 20,
    pickHedge: () => b,
    parent: p.controller.signal,
    onLost: (x) => lost.push(x.backend),
  };
  const out = await exchange(plan, p);
  assert.ok(out.ok);
  assert.equal(out.winner.backend, b);
  assert.equal(await out.response.text(), b.endpoint);
  assert.deepEqual(out.hedge, { endpoint: b.endpoint, primary: a.endpoint, won: true });
  assert.equal(aborted.get(a), HEDGE_LOST);
  assert.ok(!out.winner.controller.signal.aborted, "the winner's body keeps flowing");
  assert.deepEqual(lost, [a]);
  assert.equal(a.inflight, 0);
  assert.equal(b.inflight, 1);
});

Deno.test("exchange: the primary answers before the hedge: the hedge is cancelled", async () => {
  const [a, b] = [backend(1), backend(2)];
  const aborted = new Map<Backend, unknown>();
  const p = primary(a);
  const out = await exchange({
    send: sender(new Map([[a, 60], [b, Infinity]]), aborted),
    responseTimeoutMs: 0,
    hedgeAfterMs: 20,
    pickHedge: () => b,
    parent: p.controller.signal,
  }, p);
  assert.ok(out.ok);
  assert.equal(out.winner.backend, a);
  assert.deepEqual(out.hedge, { endpoint: b.endpoint, primary: a.endpoint, won: false });
  assert.equal(aborted.get(b), HEDGE_LOST);
  assert.equal(b.inflight, 0);
});

Deno.test("exchange: no hedge when none is granted; an answer before the hedge moment sends none", async () => {
  const [a, b] = [backend(1), backend(2)];
  let asked = 0;
  const p = primary(a);
  const out = await exchange({
    send: sender(new Map([[a, 60]]), new Map()),
    responseTimeoutMs: 0,
    hedgeAfterMs: 20,
    pickHedge: () => (asked++, undefined),
    parent: p.controller.signal,
  }, p);
  assert.ok(out.ok && out.hedge === undefined);
  assert.equal(asked, 1);
  const q = primary(a);
  const fast = await exchange({
    send: sender(new Map([[a, 1]]), new Map()),
    responseTimeoutMs: 0,
    hedgeAfterMs: 50,
    pickHedge: () => b,
    parent: q.controller.signal,
  }, q);
  assert.ok(fast.ok && fast.hedge === undefined);
  assert.equal(b.inflight, 0);
});

Deno.test("exchange: a primary that times out while its hedge runs: the hedge still answers", async () => {
  const [a, b] = [backend(1), backend(2)];
  const failed: unknown[] = [];
  const p = primary(a);
  const out = await exchange({
    send: sender(new Map([[a, Infinity], [b, 250]]), new Map()),
    responseTimeoutMs: 300,
    hedgeAfterMs: 100,
    pickHedge: () => b,
    parent: p.controller.signal,
    onFailed: (_x, e) => failed.push(e),
  }, p);
  assert.ok(out.ok);
  assert.equal(out.winner.backend, b);
  assert.deepEqual(failed, [RESPONSE_TIMEOUT]);
  assert.equal(a.inflight, 0);
});

Deno.test("exchange: the request's cancellation reaches a running hedge", async () => {
  const [a, b] = [backend(1), backend(2)];
  const aborted = new Map<Backend, unknown>();
  const p = primary(a);
  setTimeout(() => p.controller.abort("client went away"), 40);
  const out = await exchange({
    send: sender(new Map([[a, Infinity], [b, Infinity]]), aborted),
    responseTimeoutMs: 0,
    hedgeAfterMs: 10,
    pickHedge: () => b,
    parent: p.controller.signal,
  }, p);
  assert.ok(!out.ok);
  assert.equal(aborted.get(b), "client went away");
  assert.equal(a.inflight + b.inflight, 1, "only the attempt returned stays counted");
});

Deno.test("exchange with a shared Deadlines sweeper: a timeout without a timer of its own", async () => {
  const a = backend(1);
  const aborted = new Map<Backend, unknown>();
  const deadlines = new Deadlines(10);
  const p = primary(a);
  const out = await exchange({
    send: sender(new Map([[a, Infinity]]), aborted),
    responseTimeoutMs: 40,
    hedgeAfterMs: 0,
    parent: p.controller.signal,
    deadlines,
  }, p);
  assert.ok(!out.ok);
  assert.equal(out.error, RESPONSE_TIMEOUT);
  assert.equal(aborted.get(a), RESPONSE_TIMEOUT);
  assert.equal(deadlines.size, 0);
  const q = primary(a);
  const quick = client();
  const fast = await exchange({
    send: sender(new Map([[a, 1]]), new Map()),
    responseTimeoutMs: 1_000,
    hedgeAfterMs: 0,
    parent: q.controller.signal,
    deadlines,
    client: quick,
  }, q);
  assert.ok(fast.ok);
  assert.equal(deadlines.size, 0, "an answer leaves the set");
  assert.equal(quick.reads, 0, "an answer within a tick costs no cancellation watch");
  deadlines.stop();
});

/** A client whose cancellation is counted when read, and fired by `leave()`. */
function client(): ClientRequest & { reads: number; leave(): void } {
  const gone = new AbortController();
  return {
    reads: 0,
    get signal() {
      this.reads++;
      return gone.signal;
    },
    leave: () => gone.abort(),
  };
}

Deno.test("Deadlines: the client of an attempt still waiting after a tick is followed", async () => {
  const a = backend(1);
  const deadlines = new Deadlines(10);
  // Without a response timeout the sweeper still follows the client of a late attempt.
  const slow = client();
  const aborted = new Map<Backend, unknown>();
  const p = primary(a);
  const pending = exchange({
    send: sender(new Map([[a, Infinity]]), aborted),
    responseTimeoutMs: 0,
    hedgeAfterMs: 0,
    parent: p.controller.signal,
    deadlines,
    client: slow,
  }, p);
  for (let i = 0; slow.reads === 0; i++) {
    assert.ok(i < 200, "the sweeper never followed the late attempt's client");
    await new Promise((r) => setTimeout(r, 5));
  }
  slow.leave();
  const out = await pending;
  assert.ok(!out.ok);
  assert.equal(out.error, CLIENT_GONE);
  assert.equal(aborted.get(a), CLIENT_GONE);
  assert.equal(slow.reads, 1, "followed once");
  assert.equal(deadlines.size, 0);
  deadlines.stop();
});

Deno.test("exchange: without a sweeper, or hedging, the client is followed from the start", async () => {
  const a = backend(1);
  const b = backend(2);
  for (const hedge of [false, true]) {
    const c = client();
    const aborted = new Map<Backend, unknown>();
    const p = primary(a);
    const pending = exchange({
      send: sender(new Map([[a, Infinity], [b, Infinity]]), aborted),
      responseTimeoutMs: 0,
      hedgeAfterMs: hedge ? 1_000 : 0,
      pickHedge: hedge ? () => b : undefined,
      parent: p.controller.signal,
      client: c,
    }, p);
    assert.equal(c.reads, 1, `hedge ${hedge}: read at once`);
    c.leave();
    const out = await pending;
    assert.ok(!out.ok);
    assert.equal(out.error, CLIENT_GONE);
  }
});
