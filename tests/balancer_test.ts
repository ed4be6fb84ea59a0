import assert from "node:assert/strict";
import { balancerFor, pickLeast, pickRandom } from "../lib/shared/balancer.ts";

const c = (name: string, inflight: number) => ({ name, inflight });

Deno.test("pickLeast picks the strictly least in-flight candidate", () => {
  // The Go quirk: [A(5), B(0)] could select A. Ours must pick B whatever the order.
  assert.equal(pickLeast([c("A", 5), c("B", 0)])?.name, "B");
  assert.equal(pickLeast([c("B", 0), c("A", 5)])?.name, "B");
  assert.equal(pickLeast([c("A", 3), c("B", 2), c("C", 7), c("D", 2), c("E", 1)])?.name, "E");
});

Deno.test("pickLeast breaks ties uniformly at random", () => {
  const cands = [c("A", 1), c("B", 0), c("C", 0), c("D", 0), c("E", 4)];
  const counts: Record<string, number> = {};
  for (let i = 0; i < 30_000; i++) {
    const name = pickLeast(cands)!.name;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  assert.deepEqual(Object.keys(counts).sort(), ["B", "C", "D"]);
  for (const k of ["B", "C", "D"]) {
    assert.ok(Math.abs(counts[k] - 10_000) < 800, `${k}: ${counts[k]}`);
  }
});

Deno.test("pickLeast and pickRandom on an empty list give undefined", () => {
  assert.equal(pickLeast([]), undefined);
  assert.equal(pickRandom([]), undefined);
});

Deno.test("pickRandom is uniform and ignores in-flight counts", () => {
  const cands = [c("A", 100), c("B", 0)];
  let a = 0;
  for (let i = 0; i < 20_000; i++) if (pickRandom(cands)!.name === "A") a++;
  assert.ok(Math.abs(a - 10_000) < 600, `A: ${a}`);
  assert.equal(pickRandom(cands, () => 0.99)!.name, "B");
});

Deno.test("balancerFor maps policies", () => {
  assert.equal(balancerFor("least"), pickLeast);
  assert.equal(balancerFor("random"), pickRandom);
});
