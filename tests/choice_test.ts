import assert from "node:assert/strict";
import { BackendChoice } from "../lib/data/choice.ts";
import { planGeneration, poolOf } from "../lib/shared/generation.ts";
import type { Ejection } from "../lib/shared/outlier.ts";
import type { Pool } from "../lib/shared/pool.ts";
import { Stats } from "../lib/shared/stats.ts";

function pool(policy: "least" | "ewma", ejectAfter: number, n = 3): Pool {
  const endpoints = Array.from({ length: n }, (_, i) => ({
    endpoint: `http://127.0.0.1:${9100 + i}`,
    healthUrl: `http://127.0.0.1:${9100 + i}/h`,
  }));
  const stats = new Stats();
  const p = poolOf(planGeneration(1, [endpoints], stats), stats, {
    hostBalance: policy,
    ejectAfter,
    onTransition: () => {},
  });
  for (const b of p.backends) b.markUp();
  return p;
}

Deno.test("BackendChoice: transport failures and gateway statuses eject; 4xx, 503 and successes do not", () => {
  let current = pool("least", 2);
  const ejections: [string, Ejection][] = [];
  const choice = new BackendChoice(() => current, {
    responseTimeoutMs: 1_000,
    hedgeAfterMs: 0,
    onEjection: (b, e) => ejections.push([b.endpoint, e]),
  });
  const [a, b] = current.backends;
  choice.answered(a, 503, 1);
  choice.answered(a, 404, 1);
  choice.failed(a, 1_000);
  choice.answered(a, 200, 1); // starts the count over
  choice.failed(a, 1_000);
  assert.equal(ejections.length, 0);
  choice.answered(a, 502, 1);
  assert.equal(ejections.length, 1);
  assert.equal(ejections[0][0], a.endpoint);
  for (let i = 0; i < 50; i++) assert.notEqual(choice.forRequest(), a, "ejected: not picked");
  assert.notEqual(choice.forRetry([b]), a);
  assert.notEqual(choice.forHedge(b), a);
  // A backend of a generation since replaced says nothing about the new one.
  const old = b;
  current = pool("least", 2);
  choice.failed(old, 1);
  choice.failed(old, 1);
  assert.equal(ejections.length, 1);
});

Deno.test("BackendChoice with ewma: latencies steer new requests", () => {
  const current = pool("ewma", 0);
  const choice = new BackendChoice(() => current, { responseTimeoutMs: 0, hedgeAfterMs: 0 });
  const [slow, x, y] = current.backends;
  choice.answered(slow, 200, 150);
  choice.answered(x, 200, 1);
  choice.answered(y, 200, 1);
  let picked = 0;
  for (let i = 0; i < 300; i++) if (choice.forRequest() === slow) picked++;
  assert.equal(picked, 0);
  // A hedge lost tells a lower bound of the latency; a failure a penalty as long as it took.
  choice.lost(x, 400);
  choice.failed(y, 1_000);
  assert.equal(current.ewma!.estimate(x.index, Date.now()) > 390, true);
});
