/**
 * lib/pool.ts: which backend serves the next request — the first site with an UP backend, the
 * balancing policy inside it, slow start — and which one takes a retry (`pickExcept`).
 */
import assert from "node:assert/strict";
import { Backend, type Transition } from "../lib/shared/backend.ts";
import { Pool } from "../lib/shared/pool.ts";

function make(endpoint = "http://127.0.0.1:9001", site = 1, now = 1000) {
  const events: Transition[] = [];
  const b = new Backend(endpoint, site, endpoint + "/health", (t) => events.push(t), now);
  return { b, events };
}

/** An UP backend of `site`. */
function up(endpoint: string, site = 1): Backend {
  const b = new Backend(endpoint, site, endpoint + "/health", () => {});
  b.markUp();
  return b;
}

/** A random source that returns `values` in turn (then the last one). */
function scripted(...values: number[]) {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

Deno.test("pool: the first site with an UP backend serves; failover and fail-back", () => {
  const s1 = [make("http://a:1", 1).b, make("http://a:2", 1).b];
  const s2 = [make("http://b:1", 2).b];
  const pool = new Pool([s1, s2], "least");
  assert.equal(pool.pick(), undefined);
  assert.equal(pool.online(), false);
  s2[0].markUp();
  assert.equal(pool.pick(), s2[0]);
  s1[1].markUp();
  assert.equal(pool.pick(), s1[1], "site 1 takes over as soon as one of its backends is UP");
  assert.deepEqual(pool.activeSite(), [s1[1]]);
  s1[1].markDown("x");
  assert.equal(pool.pick(), s2[0]);
  assert.equal(pool.backends.length, 3);
});

Deno.test("pool: least spreads over the active site's UP backends only", () => {
  const site = [make("http://a:1").b, make("http://a:2").b, make("http://a:3").b];
  site[0].markUp();
  site[2].markUp();
  const pool = new Pool([site], "least");
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(pool.pick()!.endpoint);
  assert.deepEqual([...seen].sort(), ["http://a:1", "http://a:3"]);
  site[0].begin();
  for (let i = 0; i < 50; i++) assert.equal(pool.pick(), site[2]);
});

Deno.test("slow start: a recovered backend's share ramps up linearly over the window", () => {
  let now = 0;
  const make = (endpoint: string) =>
    new Backend(endpoint, 1, endpoint + "/health", () => {}, 0, {
      state: new Int32Array(1),
      stateIndex: 0,
      inflight: new Int32Array(1),
      inflightIndex: 0,
      since: new Float64Array(1),
    });
  const [a, b] = [make("http://a"), make("http://b")];
  a.markUp(0);
  b.markUp(0);
  assert.equal(b.upSince, 0, "a first UP takes its full share at once");
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const pool = new Pool([[a, b]], "random", random, { slowStartMs: 10_000, now: () => now });
  const shareOfB = () => {
    let n = 0;
    for (let i = 0; i < 20_000; i++) if (pool.pick() === b) n++;
    return n / 20_000;
  };
  assert.ok(Math.abs(shareOfB() - 0.5) < 0.02, "fair before");
  b.markDown("refused", 1_000);
  b.markUp(2_000);
  assert.equal(b.upSince, 2_000);
  now = 2_000;
  assert.ok(shareOfB() < 0.01, "nothing at the start of the window");
  now = 4_500; // a quarter into it
  assert.ok(Math.abs(shareOfB() - 0.125) < 0.02, `${shareOfB()}`);
  now = 7_000; // half
  assert.ok(Math.abs(shareOfB() - 0.25) < 0.02);
  now = 12_000; // past it
  assert.ok(Math.abs(shareOfB() - 0.5) < 0.02);
});

Deno.test("pickExcept: another UP backend of the site first, then the next sites", () => {
  const make = (endpoint: string, site: number) => {
    const b = new Backend(endpoint, site, endpoint + "/health", () => {});
    b.markUp();
    return b;
  };
  const [a, b] = [make("http://a", 1), make("http://b", 1)];
  const c = make("http://c", 2);
  const pool = new Pool([[a, b], [c]], "least");
  assert.equal(pool.pickExcept([a]), b);
  assert.equal(pool.pickExcept([a, b]), c);
  b.markDown("refused");
  assert.equal(pool.pickExcept([a]), c, "a DOWN backend is no candidate");
  assert.equal(pool.pickExcept([a, c]), undefined);
});

Deno.test("pool: a site with every backend DOWN is skipped for the next, in priority order", () => {
  const s1 = [make("http://a:1", 1).b];
  const s2 = [make("http://b:1", 2).b, make("http://b:2", 2).b];
  const s3 = [up("http://c:1", 3)];
  const pool = new Pool([s1, s2, s3], "least");
  assert.equal(pool.pick(), s3[0]);
  assert.deepEqual(pool.activeSite(), s3);
  assert.equal(pool.online(), true);
  s2[1].markUp();
  assert.equal(pool.pick(), s2[1], "site 2 before site 3");
  assert.deepEqual(pool.activeSite(), [s2[1]]);
  assert.deepEqual(pool.backends, [...s1, ...s2, ...s3], "site by site, in expansion order");
  for (const b of pool.backends) b.markDown("x");
  assert.equal(pool.pick(), undefined);
  assert.deepEqual(pool.activeSite(), []);
  assert.equal(pool.online(), false);
});

Deno.test("pool: random picks uniformly among the active site's UP backends by the given source", () => {
  const site = [up("http://a:1"), up("http://a:2"), up("http://a:3"), up("http://a:4")];
  const picks = (pool: Pool, n: number) => Array.from({ length: n }, () => pool.pick()!.endpoint);
  // Every backend UP: the site itself is the candidate list.
  const all = new Pool([site], "random", scripted(0, 0.26, 0.5, 0.99));
  assert.deepEqual(picks(all, 4), ["http://a:1", "http://a:2", "http://a:3", "http://a:4"]);
  // Some DOWN: only the UP ones, in site order.
  site[1].markDown("x");
  site[3].markDown("x");
  const some = new Pool([site], "random", scripted(0.49, 0.5));
  assert.deepEqual(picks(some, 2), ["http://a:1", "http://a:3"]);
});

Deno.test("pool: least takes the fewest in flight; ties broken by the random source", () => {
  const site = [up("http://a:1"), up("http://a:2"), up("http://a:3")];
  site[0].begin();
  site[0].begin();
  site[1].begin();
  assert.equal(new Pool([site], "least", () => 0.99).pick(), site[2]);
  site[2].begin();
  // a:2 and a:3 tie at one in flight: the reservoir keeps a:2 unless the draw replaces it.
  assert.equal(new Pool([site], "least", () => 0.99).pick(), site[1]);
  assert.equal(new Pool([site], "least", () => 0).pick(), site[2]);
});

Deno.test("pickExcept: the policy chooses among the untried UP backends", () => {
  const [a, b, c] = [up("http://a:1"), up("http://a:2"), up("http://a:3")];
  const d = up("http://b:1", 2);
  const pool = new Pool([[a, b, c], [d]], "least", () => 0.99);
  b.begin();
  assert.equal(pool.pickExcept([a]), c, "fewest in flight among b and c");
  c.begin();
  c.begin();
  assert.equal(pool.pickExcept([a]), b);
  assert.equal(pool.pickExcept([a, b, c]), d, "then the next site");
  assert.equal(pool.pickExcept([]), a, "nothing tried: the policy over the whole site");
  assert.equal(pool.pickExcept([a, b, c, d]), undefined);
});

Deno.test("slow start: a ramping backend that is the only candidate is picked; off without a window", () => {
  let now = 0;
  const [a, b] = [up("http://a:1"), up("http://a:2")];
  b.markDown("refused", 1_000);
  b.markUp(2_000);
  assert.equal(b.upSince, 2_000);
  now = 2_000; // the very start of b's ramp
  a.markDown("refused");
  const ramping = new Pool([[a, b]], "random", () => 0.99, { slowStartMs: 10_000, now: () => now });
  assert.equal(ramping.pick(), b, "no other candidate");
  a.markUp();
  assert.equal(ramping.pick(), a, "another candidate: the ramp starts at zero");
  const off = new Pool([[a, b]], "random", () => 0.99, { now: () => now });
  assert.equal(off.pick(), b, "no slow start: the policy's pick stands");
});
