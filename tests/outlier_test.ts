import assert from "node:assert/strict";
import {
  BASE_EJECTION_MS,
  ejectionMs,
  MAX_EJECTION_MS,
  maxEjected,
  outlierMemory,
  Outliers,
  statusFails,
} from "../lib/shared/outlier.ts";
import { Backend } from "../lib/shared/backend.ts";
import { EJECTION_RAMP_MS, Pool } from "../lib/shared/pool.ts";

Deno.test("ejectionMs: base × n, capped", () => {
  assert.equal(ejectionMs(1), BASE_EJECTION_MS);
  assert.equal(ejectionMs(3), 3 * BASE_EJECTION_MS);
  assert.equal(ejectionMs(100), MAX_EJECTION_MS);
  assert.equal(ejectionMs(2, 1_000, 10_000), 2_000);
});

Deno.test("statusFails: gateway statuses only; never 4xx, 503 backpressure or 500", () => {
  assert.ok(statusFails(502) && statusFails(504));
  for (const s of [200, 206, 304, 400, 403, 404, 429, 500, 503]) assert.ok(!statusFails(s), `${s}`);
});

Deno.test("maxEjected: half a site, rounded down", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(maxEjected), [0, 1, 1, 2, 2]);
});

Deno.test("Outliers: N consecutive failures eject once; a success starts the count over", () => {
  const o = new Outliers(outlierMemory(4), 3);
  const site = [0, 1, 2, 3];
  const t = 1_000_000;
  assert.equal(o.failure(0, site, t), undefined);
  assert.equal(o.failure(0, site, t), undefined);
  o.success(0, t);
  assert.equal(o.failure(0, site, t), undefined);
  assert.equal(o.failure(0, site, t), undefined);
  const e = o.failure(0, site, t);
  assert.deepEqual(e, {
    index: 0,
    count: 1,
    durationMs: BASE_EJECTION_MS,
    until: t + BASE_EJECTION_MS,
  });
  assert.ok(o.ejected(0, t + 1));
  assert.ok(!o.ejected(0, t + BASE_EJECTION_MS));
  // Failures while ejected do not eject again.
  for (let i = 0; i < 5; i++) assert.equal(o.failure(0, site, t + 10), undefined);
});

Deno.test("Outliers: repeated ejections last longer; good behaviour brings the multiplier down", () => {
  const o = new Outliers(outlierMemory(2), 1, { baseMs: 1_000, maxMs: 5_000 });
  const site = [0, 1, 2, 3];
  assert.equal(o.failure(0, site, 0)?.durationMs, 1_000);
  assert.equal(o.failure(0, site, 1_000)?.durationMs, 2_000);
  assert.equal(o.failure(0, site, 3_000)?.durationMs, 3_000);
  assert.equal(o.ejections(0), 3);
  o.success(0, 6_500); // back for less than a base time: no decay
  assert.equal(o.ejections(0), 3);
  o.success(0, 7_000);
  assert.equal(o.ejections(0), 2);
  o.success(0, 7_500);
  assert.equal(o.ejections(0), 2, "one step per base time");
  o.success(0, 8_000);
  assert.equal(o.ejections(0), 1);
});

Deno.test("Outliers: never more than half of a site; off with 0", () => {
  const o = new Outliers(outlierMemory(3), 1);
  const site = [0, 1, 2];
  assert.ok(o.failure(0, site, 0));
  assert.equal(o.failure(1, site, 0), undefined, "a second of three would be more than half");
  assert.equal(o.failure(2, site, 0), undefined);
  assert.ok(!o.ejected(1, 1) && !o.ejected(2, 1));
  const single = new Outliers(outlierMemory(1), 1);
  assert.equal(single.failure(0, [0], 0), undefined, "a site of one is never emptied");
  const off = new Outliers(outlierMemory(2), 0);
  for (let i = 0; i < 10; i++) assert.equal(off.failure(0, [0, 1], 0), undefined);
});

Deno.test("Outliers in shared memory: two isolates' views, one ejection reported", () => {
  const memory = outlierMemory(4);
  const a = new Outliers(memory, 2);
  const b = new Outliers(memory, 2);
  const site = [0, 1, 2, 3];
  assert.equal(a.failure(1, site, 0), undefined);
  const e = b.failure(1, site, 0);
  assert.ok(e, "the second failure, counted from another view, ejects");
  assert.ok(a.ejected(1, 1), "and both views see it");
});

function backends(n: number): Backend[] {
  const state = new Int32Array(n);
  const inflight = new Int32Array(n);
  return Array.from({ length: n }, (_, i) => {
    const b = new Backend(`http://127.0.0.1:${9000 + i}`, 1, "", () => {}, 0, {
      state,
      stateIndex: i,
      inflight,
      inflightIndex: i,
    });
    b.markUp();
    return b;
  });
}

Deno.test("Pool with outliers: an ejected backend is not picked; it ramps back after", () => {
  const bs = backends(3);
  let now = 1_000_000;
  const outliers = new Outliers(outlierMemory(3), 1);
  let seed = 42;
  const random = () => { // mulberry32: deterministic, well spread
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pool = new Pool([bs], "least", random, { outliers, now: () => now });
  assert.ok(outliers.failure(0, [0, 1, 2], now));
  const picks = new Set(Array.from({ length: 200 }, () => pool.pick()));
  assert.ok(!picks.has(bs[0]), "ejected: never picked");
  assert.ok(!pool.pickExcept([bs[1]]) || pool.pickExcept([bs[1]]) === bs[2]);
  // Just after the ejection ends, its share ramps up from zero.
  now = outliers.until(0) + EJECTION_RAMP_MS / 10;
  let mine = 0;
  for (let i = 0; i < 3_000; i++) if (pool.pick() === bs[0]) mine++;
  assert.ok(mine > 0 && mine < 3_000 / 3 * 0.3, `${mine} of 3000 at 10 % of the ramp`);
  now = outliers.until(0) + EJECTION_RAMP_MS;
  mine = 0;
  for (let i = 0; i < 3_000; i++) if (pool.pick() === bs[0]) mine++;
  assert.ok(mine > 700, `${mine} of 3000 after the ramp`);
});

Deno.test("Pool with outliers: a site whose UP backends are all ejected still serves from them", () => {
  const bs = backends(2);
  const outliers = new Outliers(outlierMemory(2), 1);
  const pool = new Pool([bs], "least", Math.random, { outliers, now: () => 5 });
  assert.ok(outliers.failure(0, [0, 1], 0));
  bs[1].markDown("gone");
  assert.equal(pool.pick(), bs[0]);
  assert.equal(pool.pickExcept([]), bs[0]);
});
