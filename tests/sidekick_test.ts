/** The library entry: a whole sidekick in-process on port 0, started and stopped cleanly. */
import assert from "node:assert/strict";
import {
  type Config,
  ConfigError,
  createSidekick,
  makeConfig,
  type Sidekick,
  type SidekickOptions,
  type Transition,
} from "../lib/mod.ts";
import { startBackends, type TestBackend, waitFor } from "./helpers/backends.ts";
import { chooseWorkers } from "../lib/control/planes.ts";

/** Test backends closed when the scope ends, whether the test passed or failed. */
async function scopedBackends(n: number): Promise<TestBackend[] & AsyncDisposable> {
  const backends = await startBackends(n);
  return Object.assign(backends, {
    [Symbol.asyncDispose]: async () => {
      await Promise.all(backends.map((b) => b.close()));
    },
  });
}

/**
 * A sidekick stopped when the scope ends, whether the test passed or failed; `stop` stops it at
 * most once, so a test may stop it itself.
 */
function scopedSidekick(config: Config, options?: SidekickOptions) {
  const sk: Sidekick = createSidekick(config, options);
  let stopping: Promise<void> | undefined;
  const stop = (drainTimeoutMs?: number) => (stopping ??= sk.stop(drainTimeoutMs));
  // A short drain: after a failed assertion a request may still hang.
  return { sk, stop, [Symbol.asyncDispose]: () => stop(1_000) };
}

Deno.test("createSidekick: start on port 0, proxy, reload, stop", async () => {
  await using backends = await scopedBackends(2);
  const transitions: Transition[] = [];
  await using scope = scopedSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      healthPath: "/health",
      readHealthPath: "/health",
      healthDurationMs: 100,
      sites: [backends.map((b) => b.url).join(",")],
    }),
    { onTransition: (t) => transitions.push(t), publicIp: "192.0.2.7" },
  );
  const { sk } = scope;
  await sk.start();
  assert.match(sk.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  await sk.ready();
  assert.equal(sk.pool.backends.filter((b) => b.up).length, 2);
  using client = Deno.createHttpClient({ allowHost: true });
  const res = await fetch(sk.url + "/echo", { headers: { host: "s3.local" }, client });
  const echo = await res.json();
  assert.equal(echo.headers["host"], "s3.local");
  assert.equal(echo.headers["x-forwarded-for"], "192.0.2.7");
  const before = sk.pool;
  await sk.reload();
  assert.notEqual(sk.pool, before, "a new generation of backends");
  assert.equal(sk.pool.backends.filter((b) => b.up).length, 2, "swapped in only once UP");
  assert.equal(transitions.filter((t) => t.state === "up").length, 4);
});

Deno.test("createSidekick: bad configuration is a ConfigError before anything binds", () => {
  assert.throws(
    () => createSidekick(makeConfig({ sites: ["ftp://x"] })),
    (e) => e instanceof ConfigError && /ftp:\/\/x/.test(e.message),
  );
  assert.throws(
    () => createSidekick(makeConfig({ address: "nope", sites: ["http://127.0.0.1:1"] })),
    ConfigError,
  );
});

Deno.test("stop() drains a slow request within the deadline", async () => {
  await using backends = await scopedBackends(1);
  const [b] = backends;
  await using scope = scopedSidekick(
    makeConfig({ address: "127.0.0.1:0", healthPath: "/health", sites: [b.url] }),
  );
  const { sk } = scope;
  await sk.start();
  await sk.ready();
  const url = sk.url;
  const slow = fetch(url + "/slow?ms=300").then((r) => r.text());
  await waitFor(() => b.inflight === 1, "in flight");
  await scope.stop(5_000);
  assert.equal(await slow, "b1 slow");
  const after = await fetch(url + "/x").catch((e) => e);
  assert.ok(after instanceof Error, "no longer accepting");
});

Deno.test("stop() forces connections closed after the deadline", async () => {
  await using backends = await scopedBackends(1);
  const [b] = backends;
  await using scope = scopedSidekick(
    makeConfig({ address: "127.0.0.1:0", healthPath: "/health", sites: [b.url] }),
  );
  const { sk } = scope;
  await sk.start();
  await sk.ready();
  const hanging = fetch(sk.url + "/hang").then(async (r) => [r.status, await r.text()]);
  await waitFor(() => b.inflight === 1, "in flight");
  const t0 = performance.now();
  await scope.stop(100);
  assert.ok(performance.now() - t0 < 2_000, "did not wait for the hanging request");
  const [status, text] = await hanging;
  assert.equal(status, 502, "the hanging request was cut with the 502 document");
  assert.match(String(text), /sidekick is shutting down/);
  assert.equal(sk.pool.backends[0].up, true, "the backend was not blamed");
});

Deno.test("chooseWorkers: --workers, else the CPUs up to 4; one where the port cannot be shared", () => {
  assert.deepEqual(chooseWorkers(0, 2, true, "linux"), { workers: 2 });
  assert.deepEqual(chooseWorkers(0, 16, true, "linux"), { workers: 4 });
  assert.deepEqual(chooseWorkers(0, 1, true, "linux"), { workers: 1 });
  assert.deepEqual(chooseWorkers(8, 2, true, "linux"), { workers: 8 }, "asked for: granted");
  assert.deepEqual(chooseWorkers(1, 8, false, "darwin"), { workers: 1 }, "one asked: no note");
  const mac = chooseWorkers(0, 8, false, "darwin");
  assert.equal(mac.workers, 1);
  assert.match(mac.note!, /^serving with one worker: darwin does not spread connections/);
  const flagless = chooseWorkers(4, 8, false, "linux");
  assert.equal(flagless.workers, 1);
  assert.match(flagless.note!, /needs --unstable-net$/);
});
