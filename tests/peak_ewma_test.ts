import assert from "node:assert/strict";
import { DECAY_MS, ewmaMemory, nextEstimate, PeakEwma, pickEwma } from "../lib/shared/peak_ewma.ts";

Deno.test("nextEstimate: a higher sample at once, lower ones by the time since the last", () => {
  assert.equal(nextEstimate(10, 5, 150), 150, "peak-sensitive");
  const soon = nextEstimate(150, 1, 10);
  assert.ok(soon > 149, `${soon}: one lower sample right after barely moves it`);
  const later = nextEstimate(150, DECAY_MS, 10);
  assert.ok(Math.abs(later - (150 / Math.E + 10 * (1 - 1 / Math.E))) < 1e-9);
});

Deno.test("PeakEwma: decays towards zero without news; cost grows with in-flight requests", () => {
  const e = new PeakEwma(ewmaMemory(2));
  assert.equal(e.estimate(0, 0), 0);
  e.observe(0, 100, 1_000);
  assert.equal(e.estimate(0, 1_000), 100);
  assert.ok(Math.abs(e.estimate(0, 1_000 + DECAY_MS) - 100 / Math.E) < 1e-9);
  assert.equal(e.cost(0, 0, 1_000), 101);
  assert.equal(e.cost(0, 2, 1_000), 303);
  assert.equal(e.cost(1, 0, 1_000), 1, "no sample yet: only the in-flight count matters");
});

Deno.test("PeakEwma in shared memory: one view's samples are the other's", () => {
  const memory = ewmaMemory(1);
  new PeakEwma(memory).observe(0, 42, 10);
  assert.equal(new PeakEwma(memory).estimate(0, 10), 42);
});

Deno.test("pickEwma: the cheaper of two; a backend 150 ms slower gets nearly nothing", () => {
  const e = new PeakEwma(ewmaMemory(3));
  const now = 1_000;
  e.observe(0, 151, now);
  e.observe(1, 1, now);
  e.observe(2, 1.2, now);
  const candidates = [0, 1, 2].map((index) => ({ index, inflight: 0 }));
  const counts = [0, 0, 0];
  for (let i = 0; i < 3_000; i++) counts[pickEwma(candidates, e, now)!.index]++;
  assert.equal(counts[0], 0, `${counts}`);
  assert.ok(counts[1] > counts[2], "the fastest wins a tie-free pair");
  // Load on the fast ones moves traffic back to the slow one in proportion.
  const busy = [{ index: 0, inflight: 0 }, { index: 1, inflight: 200 }];
  assert.equal(pickEwma(busy, e, now)!.index, 0);
  assert.equal(pickEwma([], e, now), undefined);
  assert.equal(pickEwma([candidates[2]], e, now)!.index, 2);
});
