import assert from "node:assert/strict";
import {
  classifyFetchError,
  type Failure,
  RESPONSE_TIMEOUT,
} from "../lib/upstream/fetch_errors.ts";
import { ReplayMemory, RetryBudget, retryReason } from "../lib/data/retry.ts";

function failure(kind: Failure["kind"], beforeSend: boolean): Failure {
  return { kind, message: kind, marksDown: true, beforeSend };
}

Deno.test("retryReason: nothing sent → any method; closed before a response → idempotent only", () => {
  for (const method of ["GET", "PUT", "POST", "PATCH"]) {
    assert.equal(retryReason(failure("refused", true), method), "connect", method);
    assert.equal(retryReason(failure("tls", true), method), "connect", method);
  }
  for (const method of ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]) {
    assert.equal(retryReason(failure("closed", false), method), "closed", method);
    assert.equal(retryReason(failure("reset", false), method), "closed", method);
  }
  for (const method of ["POST", "PATCH", "CONNECT"]) {
    assert.equal(retryReason(failure("closed", false), method), undefined, method);
  }
  for (const kind of ["timeout", "protocol", "client", "shutdown", "other"] as const) {
    assert.equal(retryReason(failure(kind, false), "GET"), undefined, kind);
  }
});

Deno.test("retryReason: no response headers within --response-timeout → idempotent only", () => {
  const timedOut = classifyFetchError(RESPONSE_TIMEOUT);
  assert.equal(timedOut.kind, "timeout");
  assert.equal(timedOut.marksDown, false, "ejection counts it, no DOWN mark of its own");
  for (const method of ["GET", "HEAD", "PUT", "DELETE"]) {
    assert.equal(retryReason(timedOut, method), "timeout", method);
  }
  for (const method of ["POST", "PATCH"]) {
    assert.equal(retryReason(timedOut, method), undefined, method);
  }
});

Deno.test("RetryBudget: 20 % of the window's requests plus a floor of one a second", () => {
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowSeconds: 10 });
  const t = 1_000_000;
  let granted = 0;
  for (let i = 0; i < 100; i++) {
    budget.request(t);
    if (budget.tryRetry(t)) granted++;
  }
  assert.equal(granted, 30, "0.2 × 100 + 10");
  // Past the window, the old requests and retries no longer count.
  const later = t + 10_000;
  assert.equal(budget.tryRetry(later), true, "the floor again");
  let more = 1;
  while (budget.tryRetry(later)) more++;
  assert.equal(more, 10);
});

Deno.test("RetryBudget: single failures at low traffic are still retried", () => {
  const budget = new RetryBudget();
  for (let s = 0; s < 30; s++) {
    budget.request(s * 1000);
    assert.equal(budget.tryRetry(s * 1000), true, `second ${s}`);
  }
});

Deno.test("ReplayMemory: reservations beyond the bound are refused until released", () => {
  const memory = new ReplayMemory(100);
  assert.equal(memory.reserve(60), true);
  assert.equal(memory.reserve(50), false);
  memory.release(60);
  assert.equal(memory.reserve(100), true);
  assert.equal(memory.held, 100);
});

Deno.test("RetryBudget in shared memory: two isolates' views spend one budget", () => {
  const a = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowSeconds: 10 });
  const b = new RetryBudget({ ratio: 0.2, minPerSecond: 1, windowSeconds: 10 }, a.memory);
  const t = 5_000_000;
  for (let i = 0; i < 50; i++) {
    a.request(t);
    b.request(t);
  }
  let granted = 0;
  for (let i = 0; i < 100; i++) if ((i % 2 ? a : b).tryRetry(t)) granted++;
  assert.equal(granted, 30, "0.2 × 100 requests of both + one floor of 10, not two");
});
