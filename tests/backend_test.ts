import assert from "node:assert/strict";
import { Backend, type Transition } from "../lib/shared/backend.ts";

function make(endpoint = "http://127.0.0.1:9001", site = 1, now = 1000) {
  const events: Transition[] = [];
  const b = new Backend(endpoint, site, endpoint + "/health", (t) => events.push(t), now);
  return { b, events };
}

Deno.test("a backend starts DOWN and reports only real transitions", () => {
  const { b, events } = make();
  assert.equal(b.up, false);
  assert.equal(b.markDown("refused", 1500), false, "DOWN→DOWN is silent");
  assert.equal(events.length, 0);
  assert.equal(b.markUp(3000), true);
  assert.equal(b.markUp(3500), false, "UP→UP is silent");
  assert.deepEqual(events, [{
    endpoint: "http://127.0.0.1:9001",
    site: 1,
    state: "up",
    reason: "",
    downtimeMs: 2000,
    at: 3000,
  }]);
  assert.equal(b.markDown("connection refused", 4000), true);
  assert.equal(events[1].state, "down");
  assert.equal(events[1].reason, "connection refused");
  assert.equal(b.lastError, "connection refused");
});

Deno.test("downtime bookkeeping: total includes the running downtime, last is the running one", () => {
  const { b } = make("http://h:1", 1, 0);
  b.markUp(1000); // startup downtime 1000
  assert.equal(b.totalDowntimeMs(5000), 1000);
  assert.equal(b.lastDowntimeMs(5000), 1000);
  b.markDown("x", 6000);
  assert.equal(b.lastDowntimeMs(6500), 500);
  assert.equal(b.totalDowntimeMs(6500), 1500);
  b.markUp(7000);
  assert.equal(b.totalDowntimeMs(9000), 2000);
  assert.equal(b.lastDowntimeMs(9000), 1000);
  assert.equal(b.snapshot().totalDowntimeMs, 2000);
});

Deno.test("begin/end count in-flight requests", () => {
  const { b } = make();
  b.begin();
  b.begin();
  assert.equal(b.inflight, 2);
  b.end();
  assert.equal(b.inflight, 1);
});

Deno.test("shared cells: backends of one endpoint share in-flight; one DOWN report per race", () => {
  const state = new Int32Array(new SharedArrayBuffer(8));
  const inflight = new Int32Array(new SharedArrayBuffer(4));
  const seen: string[] = [];
  const at = (stateIndex: number, who: string) =>
    new Backend("http://h:9000", 1, "http://h:9000/", (t) => seen.push(`${who} ${t.state}`), 0, {
      state,
      stateIndex,
      inflight,
      inflightIndex: 0,
    });
  const control = at(0, "control");
  const worker = at(0, "worker"); // another isolate's view of the same backend
  const otherSite = at(1, "site2");
  control.markUp(1);
  assert.equal(worker.up, true, "the worker sees the control plane's UP");
  assert.equal(otherSite.up, false, "a flag of its own");
  worker.begin();
  otherSite.begin();
  assert.equal(control.inflight, 2, "one endpoint, one in-flight count");
  assert.equal(worker.markDown("connection refused", 2), true);
  assert.equal(control.markDown("timeout", 3), false, "the race is lost: no second report");
  assert.equal(control.up, false);
  control.noteDown("connection refused", 2);
  assert.deepEqual(seen, ["control up", "worker down", "control down"]);
  assert.equal(control.lastDowntimeMs(10), 8);
});

Deno.test("the origin drops the endpoint's path", () => {
  assert.equal(make("http://h:9000/api").b.origin, "http://h:9000");
});
