/**
 * lib/data/data_plane.ts `startDataPlane`: one isolate's listener on 127.0.0.1 port 0 in front of test
 * backends, with a pool the test owns and hooks that record what the plane reports — proxying,
 * the pool read per request, passive ejection and retries, sidekick's own answers (missing Host,
 * WebSocket with no backend, a hook that throws), the drain deadline on stop, a port in use.
 */
import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import { type DataPlane, startDataPlane } from "../lib/data/data_plane.ts";
import { planeFlags, type PlaneSettings } from "../lib/data/plane_settings.ts";
import { makeConfig } from "../lib/config/config.ts";
import { RetryBudget } from "../lib/data/retry.ts";
import { DnsCache } from "../lib/upstream/dns.ts";
import { Pool } from "../lib/shared/pool.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import {
  closedPort,
  rawRequest,
  startBackends,
  type TestBackend,
  waitFor,
} from "./helpers/backends.ts";

function backendAt(url: string, site = 1, isUp = true): Backend {
  const b = new Backend(url, site, `${url}/health`, () => {});
  if (isUp) b.markUp();
  return b;
}

/** The settings of a plane on 127.0.0.1 port 0 without retries, plus `overrides`. */
function planeSettings(overrides: Partial<PlaneSettings> = {}): PlaneSettings {
  return {
    ...planeFlags(makeConfig({ sites: [], retries: 0, retryBufferBytes: 1024 })),
    hostname: "127.0.0.1",
    port: 0,
    publicIp: "192.0.2.7",
    retryBudget: new RetryBudget().memory,
    ...overrides,
  };
}

/** What a plane in this isolate needs besides its settings. */
const isolate = () => ({ shared: false, dns: new DnsCache({ ttlMs: 60_000 }) });

/** A started data plane over `pool` (swappable), with what its hooks received. */
async function plane(pool: Pool, settings: Partial<PlaneSettings> = {}) {
  const records: ExchangeRecord[] = [];
  const ejected: Backend[] = [];
  const errors: string[] = [];
  let current = pool;
  let metrics: (req: Request) => Response | Promise<Response> = () =>
    new Response("# metrics of the test\n");
  const dp: DataPlane = await startDataPlane(
    planeSettings(settings),
    isolate(),
    {
      pool: () => current,
      onRecord: (r) => records.push(r),
      onEject: (b) => ejected.push(b),
      metrics: (req) => metrics(req),
      onError: (text) => errors.push(text),
    },
  );
  let stopped = false;
  return {
    dp,
    url: `http://127.0.0.1:${dp.addr.port}`,
    records,
    ejected,
    errors,
    swapPool: (next: Pool) => (current = next),
    setMetrics: (m: typeof metrics) => (metrics = m),
    stop: async (drainMs = 1_000) => {
      if (stopped) return;
      stopped = true;
      await dp.stop(drainMs);
    },
    async [Symbol.asyncDispose]() {
      await this.stop();
    },
  };
}

/** Test backends closed when the scope ends. */
async function backends(n: number): Promise<TestBackend[] & AsyncDisposable> {
  const list = await startBackends(n);
  return Object.assign(list, {
    [Symbol.asyncDispose]: async () => {
      await Promise.all(list.map((b) => b.close()));
    },
  });
}

Deno.test("startDataPlane: listens on a kernel-chosen port and proxies to the pool's backend", async () => {
  await using bs = await backends(1);
  await using p = await plane(new Pool([[backendAt(bs[0].url)]], "least"));
  assert.equal(p.dp.addr.hostname, "127.0.0.1");
  assert.ok(p.dp.addr.port > 0);
  assert.equal(p.dp.noDelayError, undefined, "plain HTTP: no TCP_NODELAY question");
  const res = await fetch(`${p.url}/echo?a=1`, { headers: { "x-test": "yes" } });
  const echo = await res.json();
  assert.equal(res.headers.get("x-proxy"), "true");
  assert.equal(echo.name, "b1");
  assert.equal(echo.path, "/echo?a=1");
  assert.equal(echo.headers["x-test"], "yes");
  assert.equal(echo.headers["x-forwarded-for"], "192.0.2.7", "loopback client: the public IP");
  await waitFor(() => p.records.length === 1, "the exchange's record");
  assert.equal(p.records[0].endpoint, bs[0].url);
  assert.equal(p.records[0].status, 200);
  assert.equal(p.records[0].client, "127.0.0.1");
});

Deno.test("startDataPlane: /v1/health and the metrics hook are answered by the plane itself", async () => {
  await using bs = await backends(1);
  const b = backendAt(bs[0].url);
  await using p = await plane(new Pool([[b]], "least"));
  const health = await fetch(`${p.url}/v1/health`);
  await health.body?.cancel();
  assert.equal(health.status, 200);
  assert.equal(
    await (await fetch(`${p.url}/.prometheus/metrics`)).text(),
    "# metrics of the test\n",
  );
  b.markDown("test");
  const down = await fetch(`${p.url}/v1/health`);
  await down.body?.cancel();
  assert.equal(down.status, 502);
  assert.equal(bs[0].seen.length, 0, "nothing reached the backend");
});

Deno.test("startDataPlane: the pool is read at each request (the control plane swaps it)", async () => {
  await using bs = await backends(2);
  await using p = await plane(new Pool([[backendAt(bs[0].url)]], "least"));
  assert.equal(await (await fetch(`${p.url}/`)).text(), "b1");
  p.swapPool(new Pool([[backendAt(bs[1].url)]], "least"));
  assert.equal(await (await fetch(`${p.url}/`)).text(), "b2");
  p.swapPool(new Pool([[backendAt(bs[0].url, 1, false)]], "least"));
  const none = await fetch(`${p.url}/x`);
  assert.equal(none.status, 502);
  assert.match(await none.text(), /all backend servers are offline/);
});

Deno.test("startDataPlane: a refused backend is ejected through onEject; no retries: 502", async () => {
  const dead = backendAt(`http://127.0.0.1:${closedPort()}`);
  await using p = await plane(new Pool([[dead]], "least"));
  const res = await fetch(`${p.url}/x`);
  assert.equal(res.status, 502);
  assert.match(await res.text(), /Connection refused|refused/i);
  assert.equal(dead.up, false);
  assert.deepEqual(p.ejected, [dead]);
});

Deno.test("startDataPlane: --retries takes a failed request to another backend of the pool", async () => {
  await using bs = await backends(1);
  const dead = backendAt(`http://127.0.0.1:${closedPort()}`);
  const live = backendAt(bs[0].url);
  // The dead one is site 1, so every first attempt goes there; the retry finds site 2.
  const pool = new Pool([[dead], [live]], "least");
  await using p = await plane(pool, { retries: 1 });
  const res = await fetch(`${p.url}/x`, { method: "PUT", body: "again" });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "b1");
  assert.equal(bs[0].seen[0].bodyBytes, 5, "the kept body was sent whole");
  assert.deepEqual(p.ejected, [dead]);
  await waitFor(() => p.records.length === 1, "the record");
  assert.equal(p.records[0].endpoint, bs[0].url);
  assert.deepEqual(p.records[0].retried?.map((f) => f.endpoint), [dead.endpoint]);
});

Deno.test("startDataPlane: a plain-HTTP request without Host is the client's 400", async () => {
  await using bs = await backends(1);
  await using p = await plane(new Pool([[backendAt(bs[0].url)]], "least"));
  const reply = await rawRequest(p.dp.addr.port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.match(reply, /an HTTP\/1\.1 request needs a Host header/);
  assert.equal(bs[0].seen.length, 0);
});

Deno.test("startDataPlane: a WebSocket upgrade with no backend UP is the 502 document", async () => {
  await using p = await plane(new Pool([[backendAt("http://127.0.0.1:1", 1, false)]], "least"));
  const reply = await rawRequest(
    p.dp.addr.port,
    "GET /ws HTTP/1.1\r\nHost: sk\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  assert.match(reply, /^HTTP\/1\.1 502/);
  assert.match(reply, /all backend servers are offline/);
});

Deno.test("startDataPlane: a hook that throws is a 500 and an error line", async () => {
  await using p = await plane(new Pool([], "least"));
  p.setMetrics(() => {
    throw new Error("metrics exploded");
  });
  const res = await fetch(`${p.url}/.prometheus/metrics`);
  assert.equal(res.status, 500);
  assert.equal(await res.text(), "internal error\n");
  assert.deepEqual(p.errors, ["metrics exploded"]);
});

Deno.test("startDataPlane: stop cuts a request still in flight at the deadline with the 502 document", async () => {
  await using bs = await backends(1);
  const b = backendAt(bs[0].url);
  await using p = await plane(new Pool([[b]], "least"));
  const hanging = fetch(`${p.url}/hang`).then(async (r) => [r.status, await r.text()] as const);
  await waitFor(() => bs[0].inflight === 1, "the request in flight");
  const t0 = performance.now();
  await p.stop(100);
  assert.ok(performance.now() - t0 < 5_000, "stop did not wait for the hanging request");
  const [status, text] = await hanging;
  assert.equal(status, 502);
  assert.match(text, /sidekick is shutting down/);
  assert.equal(b.up, true, "a stop is no backend's fault");
  await p.dp.finished;
  const after = await fetch(`${p.url}/`).catch((e) => e);
  assert.ok(after instanceof Error, "no longer listening");
});

Deno.test("startDataPlane: a port in use rejects with what Deno.serve threw", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await assert.rejects(
    startDataPlane(
      planeSettings({ port: taken.addr.port, retryBufferBytes: 0 }),
      isolate(),
      {
        pool: () => new Pool([], "least"),
        onRecord: () => {},
        onEject: () => {},
        metrics: () => new Response(""),
        onError: () => {},
      },
    ),
    Deno.errors.AddrInUse,
  );
});
