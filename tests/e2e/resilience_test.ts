/**
 * Black-box resilience tests: health-driven ejection and recovery, site failover and fail-back,
 * everything down, big downloads with bounded memory, backends dying under load, clients going
 * away, graceful stop on SIGTERM, and SIGHUP reloads under traffic.
 */
import assert from "node:assert/strict";
import {
  closedPort,
  digestStream,
  patternStream,
  startBackend,
  startBackends,
  type TestBackend,
  waitFor,
} from "../helpers/backends.ts";
import { type SidekickProcess, startSidekick } from "../helpers/sidekick_process.ts";

const FAST = ["--health-path", "/health", "--health-duration", "150ms", "--health-timeout", "2s"];
const site = (bs: TestBackend[]) => bs.map((b) => b.url).join(",");

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

/**
 * Sends requests from `concurrency` loops for `ms` milliseconds, or until `until` settles when
 * given (a promise that settles, by success or by a `waitFor` timeout); returns every outcome.
 */
async function load(
  url: string,
  ms: number | Promise<unknown>,
  concurrency = 8,
): Promise<{ status: number; at: number }[]> {
  let running = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (typeof ms === "number") timer = setTimeout(() => (running = false), ms);
  else ms.finally(() => (running = false)).catch(() => {});
  const results: { status: number; at: number }[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await fetch(url);
        await res.body?.cancel();
        results.push({ status: res.status, at: Date.now() });
      } catch {
        results.push({ status: 0, at: Date.now() });
      }
    }
  }));
  clearTimeout(timer);
  return results;
}

async function cleanup(sk: SidekickProcess, backends: TestBackend[]) {
  await sk.stop();
  await Promise.all(backends.map((b) => b.close().catch(() => {})));
}

Deno.test("a backend whose health check fails gets no traffic, and comes back", async () => {
  const backends = await startBackends(2);
  const sk = await startSidekick([...FAST, site(backends)]);
  try {
    await sk.waitHealthy();
    await waitFor(async () => (await get(sk.url + "/")).text === "b2", "b2 serving");
    backends[1].healthStatus = 503;
    const checks = backends[1].healthChecks;
    await waitFor(() => backends[1].healthChecks > checks + 1, "b2 checked again");
    const before = backends[1].seen.length;
    for (let i = 0; i < 40; i++) assert.equal((await get(sk.url + "/")).text, "b1");
    assert.equal(backends[1].seen.length, before, "no traffic to the unhealthy backend");
    backends[1].healthStatus = 200;
    await waitFor(async () => (await get(sk.url + "/")).text === "b2", "b2 back in rotation");
  } finally {
    await cleanup(sk, backends);
  }
});

Deno.test("two sites: failover when site 1 is down, fail-back when it returns", async () => {
  const [a1, a2, b1] = await Promise.all([
    startBackend("site1-a"),
    startBackend("site1-b"),
    startBackend("site2"),
  ]);
  const sk = await startSidekick([...FAST, site([a1, a2]), site([b1])]);
  try {
    await sk.waitHealthy();
    await waitFor(async () => (await get(sk.url + "/")).text.startsWith("site1"), "site 1 up");
    for (let i = 0; i < 20; i++) assert.match((await get(sk.url + "/")).text, /^site1-/);
    a1.healthStatus = 500;
    a2.healthStatus = 500;
    await waitFor(async () => (await get(sk.url + "/")).text === "site2", "failover to site 2");
    for (let i = 0; i < 20; i++) assert.equal((await get(sk.url + "/")).text, "site2");
    a2.healthStatus = 200;
    await waitFor(async () => (await get(sk.url + "/")).text === "site1-b", "fail-back");
    for (let i = 0; i < 20; i++) assert.equal((await get(sk.url + "/")).text, "site1-b");
  } finally {
    await cleanup(sk, [a1, a2, b1]);
  }
});

Deno.test("everything down: the 502 document, and /v1/health answers 502", async () => {
  const sk = await startSidekick([...FAST, `http://127.0.0.1:${closedPort()}`]);
  try {
    const res = await fetch(sk.url + "/bucket/key?x=1");
    assert.equal(res.status, 502);
    assert.equal(res.headers.get("retry-after"), "120");
    assert.equal(res.headers.get("content-type"), "application/xml");
    assert.equal(
      await res.text(),
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>BackendDown</Code><Message>The remote server returned an error (all backend servers are offline)</Message><Resource>/bucket/key</Resource></Error>',
    );
    const health = await fetch(sk.url + "/v1/health");
    assert.equal(health.status, 502);
    assert.match(await health.text(), /<Resource>\/v1\/health<\/Resource>/);
  } finally {
    await sk.stop();
  }
});

function peakRssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]);
}

Deno.test({
  name: "64 MiB download arrives intact while sidekick's memory stays flat",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const backends = await startBackends(1);
    const sk = await startSidekick([...FAST, site(backends)]);
    try {
      await sk.waitHealthy();
      await (await fetch(sk.url + "/big?size=1024")).arrayBuffer(); // warm up
      const before = peakRssKiB(sk.child.pid);
      const size = 64 * 1024 * 1024;
      const res = await fetch(sk.url + "/big?size=" + size);
      assert.equal(res.headers.get("content-length"), String(size));
      const got = await digestStream(res.body);
      const want = await digestStream(patternStream(size));
      assert.equal(got.bytes, size);
      assert.equal(got.sha256, want.sha256);
      const grew = peakRssKiB(sk.child.pid) - before;
      assert.ok(grew < 32 * 1024, `peak RSS grew by ${grew} KiB for a 64 MiB body`);
    } finally {
      await cleanup(sk, backends);
    }
  },
});

Deno.test("a backend killed under load: traffic moves to the others within moments", async () => {
  const backends = await startBackends(3);
  const sk = await startSidekick([...FAST, site(backends)]);
  try {
    await sk.waitHealthy();
    await waitFor(() => backends.every((b) => b.healthChecks > 0), "first health round");
    await waitFor(async () => (await get(sk.url + "/")).status === 200, "serving");
    let killAt = Infinity;
    const killed = (async () => {
      const before = backends[0].seen.length;
      await waitFor(() => backends[0].seen.length >= before + 30, "load reaching the backend");
      killAt = Date.now();
      await backends[0].close();
    })();
    const results = await load(sk.url + "/", 1500, 8);
    await killed;
    const failures = results.filter((r) => r.status !== 200);
    // Only requests in flight to (or racing for) the dead backend may fail; after that, none.
    assert.ok(failures.length <= 16, `${failures.length} failures of ${results.length}`);
    const late = results.filter((r) => r.at > killAt + 500);
    assert.ok(late.length > 50, "load continued");
    assert.equal(late.filter((r) => r.status !== 200).length, 0, "no failures once ejected");
  } finally {
    await cleanup(sk, backends.slice(1));
  }
});

Deno.test("a client that goes away cancels the upstream request and ejects nothing", async () => {
  const backends = await startBackends(1);
  const sk = await startSidekick([...FAST, site(backends)]);
  try {
    await sk.waitHealthy();
    const controller = new AbortController();
    const pending = fetch(sk.url + "/hang", { signal: controller.signal }).catch((e) => e);
    await waitFor(() => backends[0].inflight === 1, "request reached the backend");
    controller.abort();
    await pending;
    await backends[0].aborted[0]; // the backend saw its request cancelled
    await waitFor(() => backends[0].inflight === 0, "backend request finished");
    const health = await fetch(sk.url + "/v1/health");
    await health.body?.cancel();
    assert.equal(health.status, 200);
    assert.equal((await get(sk.url + "/after")).text, "b1", "backend still in rotation");
  } finally {
    await cleanup(sk, backends);
  }
});

Deno.test("SIGTERM with a slow request in flight: full response, then exit 0", async () => {
  const backends = await startBackends(1);
  const sk = await startSidekick([...FAST, site(backends)]);
  try {
    await sk.waitHealthy();
    const pending = fetch(sk.url + "/slow?ms=800").then(async (r) => [r.status, await r.text()]);
    await waitFor(() => backends[0].inflight === 1, "slow request in flight");
    sk.kill("SIGTERM");
    assert.deepEqual(await pending, [200, "b1 slow"]);
    const status = await sk.exited(); // no second signal: that one means "exit now"
    assert.equal(status.code, 0);
    assert.ok(sk.stdout.some((l) => /caught signal 'terminated'/.test(l)));
  } finally {
    await cleanup(sk, backends);
  }
});

Deno.test({
  name: "a second SIGTERM exits at once, without waiting for the drain",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const backends = await startBackends(1);
    const sk = await startSidekick([...FAST, site(backends)]);
    try {
      await sk.waitHealthy();
      const pending = fetch(sk.url + "/hang").catch((e) => e);
      await waitFor(() => backends[0].inflight === 1, "hanging request in flight");
      sk.kill("SIGTERM");
      await sk.waitForLine(/caught signal 'terminated'/);
      sk.kill("SIGTERM");
      const status = await sk.exited();
      assert.equal(status.code, 1);
      assert.ok((await pending) instanceof Error, "the hanging request was cut");
    } finally {
      await cleanup(sk, backends);
    }
  },
});

Deno.test({
  name: "SIGHUP under traffic: sites rebuilt, zero failed requests",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const backends = await startBackends(2);
    const sk = await startSidekick([...FAST, site(backends)]);
    try {
      await sk.waitHealthy();
      await waitFor(() => backends.every((b) => b.healthChecks > 0), "first health round");
      const checks = backends[0].healthChecks;
      const served = () => backends[0].seen.length + backends[1].seen.length;
      const moreTraffic = async (what: string) => {
        const n = served() + 50;
        await waitFor(() => served() >= n, what);
      };
      const hangups = () => sk.stdout.filter((l) => /caught signal 'hangup'/.test(l)).length;
      // Each reload starts under traffic once the previous one was taken; traffic goes on after
      // the last one.
      const hups = (async () => {
        for (let i = 1; i <= 3; i++) {
          await moreTraffic(`traffic before reload ${i}`);
          sk.kill("SIGHUP");
          await waitFor(() => hangups() === i, `reload ${i} taken`);
        }
        await moreTraffic("traffic after the last reload");
      })();
      const results = await load(sk.url + "/", hups, 6);
      await hups;
      assert.ok(results.length > 100, `only ${results.length} requests`);
      assert.deepEqual(results.filter((r) => r.status !== 200), [], "no failed request");
      assert.equal(sk.stdout.filter((l) => /caught signal 'hangup'/.test(l)).length, 3);
      assert.ok(backends[0].healthChecks > checks, "the new generation checked the backends");
    } finally {
      await cleanup(sk, backends);
    }
  },
});

Deno.test("--read-health-path is used for the last site only", async () => {
  const primary = await startBackend("primary", { healthPath: "/health" });
  const reader = await startBackend("reader", { healthPath: "/read" });
  const sk = await startSidekick([
    ...FAST,
    "--read-health-path",
    "/read",
    primary.url,
    reader.url,
  ]);
  try {
    await sk.waitHealthy();
    await waitFor(() => primary.healthChecks > 1 && reader.healthChecks > 1, "both checked");
    assert.equal(primary.seen.length, 0, "site 1 was checked on /health, not /read");
    assert.equal(reader.seen.length, 0, "site 2 was checked on /read, not /health");
    primary.healthStatus = 503;
    await waitFor(async () => (await get(sk.url + "/")).text === "reader", "failover to reader");
  } finally {
    await cleanup(sk, [primary, reader]);
  }
});

Deno.test("--health-port sends checks to another port than the traffic", async () => {
  const data = await startBackend("data", { healthPath: "/never" });
  const health = await startBackend("health", { healthPath: "/health" });
  const sk = await startSidekick([...FAST, "--health-port", String(health.port), data.url]);
  try {
    await sk.waitHealthy();
    assert.equal((await get(sk.url + "/obj")).text, "data");
    assert.ok(health.healthChecks > 0);
    assert.equal(data.healthChecks, 0);
    assert.equal(data.seen.filter((s) => new URL(s.url).pathname === "/health").length, 0);
  } finally {
    await cleanup(sk, [data, health]);
  }
});
