/**
 * lib/server.ts `createRouter`, called directly with requests and a fake transport: sidekick's
 * own routes, the requests it refuses (bad method case, no Host, CONNECT, absolute-form targets,
 * upgrades other than WebSocket), no backend UP, and everything else to the proxy with the raw
 * target.
 */
import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import { ALL_OFFLINE } from "../lib/data/error_document.ts";
import { Pool } from "../lib/shared/pool.ts";
import type { Target } from "../lib/data/proxy.ts";
import { createRouter, type RouterDeps, splitTarget } from "../lib/data/router.ts";
import type { Transport } from "../lib/upstream/transport.ts";

const info: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "10.0.0.7", port: 40_000 },
  completed: new Promise(() => {}),
};

/** A router over one site of `n` backends (`up` of them UP) and a transport answering "proxied". */
function router(options: { up?: number; n?: number } & Partial<RouterDeps> = {}) {
  const n = options.n ?? 2;
  const backends = Array.from({ length: n }, (_, i) => {
    const b = new Backend(`http://127.0.0.1:${9001 + i}`, 1, "http://x/health", () => {});
    if (i < (options.up ?? n)) b.markUp();
    return b;
  });
  const urls: string[] = [];
  const hosts: (string | null)[] = [];
  const transport: Transport = {
    fetch(url, init) {
      urls.push(url);
      hosts.push(new Headers(init.headers as [string, string][]).get("host"));
      return Promise.resolve(new Response("proxied"));
    },
    close() {},
  };
  const pool = new Pool([backends], "least");
  const handler = createRouter({
    pool: () => pool,
    proxy: { transport, publicIp: "192.0.2.7" },
    ...options,
  });
  const call = async (req: Request) => await handler(req, info);
  return { call, urls, hosts, backends };
}

/** A request-like object for what `new Request` refuses to build (CONNECT is a forbidden method). */
function rawRequest(method: string, url: string, headers: Record<string, string>): Request {
  return { method, url, headers: new Headers(headers) } as unknown as Request;
}

Deno.test("splitTarget: authority, raw path and raw query, untouched", () => {
  assert.deepEqual(splitTarget("http://h:9000/a%20b/c?x=1&y=%zz;z"), {
    authority: "h:9000",
    path: "/a%20b/c",
    rawQuery: "x=1&y=%zz;z",
  });
  assert.deepEqual(splitTarget("http://h"), { authority: "h", path: "/", rawQuery: "" });
  assert.deepEqual(splitTarget("http://h/?"), { authority: "h", path: "/", rawQuery: "" });
  assert.deepEqual(splitTarget("https://[::1]:8443/p"), {
    authority: "[::1]:8443",
    path: "/p",
    rawQuery: "",
  });
});

Deno.test("router: an ordinary request goes to a picked backend with the raw target and Host", async () => {
  const { call, urls, hosts } = router({ n: 1 });
  const res = await call(
    new Request("http://s3.example:9000/bucket/a%20b?x=1&y=%zz", {
      headers: { host: "s3.example:9000" },
    }),
  );
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "proxied");
  assert.deepEqual(urls, ["http://127.0.0.1:9001/bucket/a%20b?x=1&y=%zz"]);
  assert.deepEqual(hosts, ["s3.example:9000"]);
});

Deno.test("router: without a Host header (HTTP/2 over TLS) the authority is the Host", async () => {
  const { call, hosts } = router({ n: 1 });
  const res = await call(new Request("https://s3.example/p"));
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.deepEqual(hosts, ["s3.example"]);
});

Deno.test("router: /v1/health is 200 while a backend is UP, the 502 document when none; never proxied", async () => {
  const up = router({ up: 1 });
  const res = await up.call(new Request("http://h/v1/health"));
  assert.equal(res.status, 200);
  assert.equal(res.body, null);
  assert.equal(res.headers.get("server"), "SideKick");
  const down = router({ up: 0 });
  const bad = await down.call(new Request("http://h/v1/health", { method: "HEAD" }));
  assert.equal(bad.status, 502);
  assert.match(await bad.text(), new RegExp(`${ALL_OFFLINE}.*<Resource>/v1/health</Resource>`));
  assert.deepEqual([...up.urls, ...down.urls], []);
});

Deno.test("router: /v1/certificates answers GET with the PEM, 404 without one; other methods proxied", async () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n";
  const withPem = router({ n: 1, certificatePem: () => pem });
  const res = await withPem.call(new Request("http://h/v1/certificates"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await res.text(), pem);
  const none = router({ certificatePem: () => undefined });
  const missing = await none.call(new Request("http://h/v1/certificates"));
  assert.equal(missing.status, 404);
  assert.equal(await missing.text(), "no configured certificates found\n");
  const absent = router();
  assert.equal((await absent.call(new Request("http://h/v1/certificates"))).status, 404);
  const put = await withPem.call(new Request("http://h/v1/certificates", { method: "PUT" }));
  assert.equal(await put.text(), "proxied");
  assert.deepEqual(withPem.urls, ["http://127.0.0.1:9001/v1/certificates"]);
});

Deno.test("router: /.prometheus/metrics goes to the metrics hook when there is one, else to a backend", async () => {
  const seen: string[] = [];
  const withMetrics = router({
    metrics: (req) => {
      seen.push(req.method);
      return new Response("# metrics\n");
    },
  });
  const res = await withMetrics.call(
    new Request("http://h/.prometheus/metrics?x", { method: "POST" }),
  );
  assert.equal(await res.text(), "# metrics\n");
  assert.deepEqual(seen, ["POST"]);
  assert.deepEqual(withMetrics.urls, []);
  const without = router({ n: 1 });
  const proxied = await without.call(new Request("http://h/.prometheus/metrics"));
  assert.equal(await proxied.text(), "proxied");
  assert.deepEqual(without.urls, ["http://127.0.0.1:9001/.prometheus/metrics"]);
});

Deno.test("router: a lower-case method is the client's 400 before any backend is picked", async () => {
  const { call, urls } = router();
  const res = await call(new Request("http://h/p", { method: "patch" }));
  assert.equal(res.status, 400);
  assert.equal(await res.text(), 'method names are case-sensitive: "patch" is not a method\n');
  assert.equal(res.headers.get("server"), "SideKick");
  assert.deepEqual(urls, []);
});

Deno.test("router: a plain-HTTP request without Host is the client's 400", async () => {
  const { call, urls } = router({ missingHostAuthority: () => "localhost:8080" });
  const res = await call(new Request("http://localhost:8080/p"));
  assert.equal(res.status, 400);
  assert.equal(await res.text(), "an HTTP/1.1 request needs a Host header\n");
  // With a Host header naming that same authority it is an ordinary request.
  const ok = await call(
    new Request("http://localhost:8080/p", { headers: { host: "localhost:8080" } }),
  );
  assert.equal(await ok.text(), "proxied");
  assert.equal(urls.length, 1);
});

Deno.test("router: CONNECT is refused with 501: sidekick is not a forward proxy", async () => {
  const { call, urls } = router();
  const res = await call(
    rawRequest("CONNECT", "http://example.com:443/", { host: "example.com:443" }),
  );
  assert.equal(res.status, 501);
  assert.equal(await res.text(), "sidekick is not a forward proxy: CONNECT is not supported\n");
  assert.deepEqual(urls, []);
});

Deno.test("router: an absolute-form target (URL authority other than Host) is refused with 400", async () => {
  const { call, urls } = router();
  const res = await call(
    new Request("http://elsewhere.example/p", { headers: { host: "sidekick:8080" } }),
  );
  assert.equal(res.status, 400);
  assert.equal(
    await res.text(),
    "absolute-form request targets are not supported; send origin-form\n",
  );
  // The comparison ignores case, as host names do.
  const same = await call(new Request("http://s3.example/p", { headers: { host: "S3.Example" } }));
  assert.equal(await same.text(), "proxied");
  assert.equal(urls.length, 1);
});

Deno.test("router: upgrades other than WebSocket are refused with 501; WebSocket goes to its route", async () => {
  const targets: Target[] = [];
  const ws = router({
    websocket: (_req, _info, target) => {
      targets.push(target);
      return new Response("websocket route");
    },
  });
  const h2c = await ws.call(new Request("http://h/p", { headers: { upgrade: "h2c" } }));
  assert.equal(h2c.status, 501);
  assert.equal(await h2c.text(), 'protocol upgrade to "h2c" is not supported\n');
  const upgraded = await ws.call(
    new Request("http://h/socket?x=1", { headers: { upgrade: "WebSocket", host: "h" } }),
  );
  assert.equal(await upgraded.text(), "websocket route");
  assert.deepEqual(targets, [{ path: "/socket", rawQuery: "x=1", host: "h" }]);
  assert.deepEqual(ws.urls, [], "no upgrade is proxied as plain HTTP");
  const noRoute = router();
  const refused = await noRoute.call(
    new Request("http://h/p", { headers: { upgrade: "websocket" } }),
  );
  assert.equal(refused.status, 501);
  await refused.body?.cancel();
  assert.deepEqual(noRoute.urls, []);
});

Deno.test("router: no backend UP is the 502 document naming the path; nothing proxied", async () => {
  const { call, urls } = router({ up: 0 });
  const res = await call(new Request("http://h/bucket/object?x=1"));
  assert.equal(res.status, 502);
  assert.equal(res.headers.get("content-type"), "application/xml");
  const doc = await res.text();
  assert.match(doc, new RegExp(`\\(${ALL_OFFLINE}\\)`));
  assert.match(doc, /<Resource>\/bucket\/object<\/Resource>/);
  assert.deepEqual(urls, []);
});

Deno.test("router: reads the pool at each request (a reload swaps it)", async () => {
  const a = new Backend("http://127.0.0.1:9001", 1, "http://x/health", () => {});
  const b = new Backend("http://127.0.0.1:9002", 1, "http://x/health", () => {});
  a.markUp();
  b.markUp();
  let pool = new Pool([[a]], "least");
  const urls: string[] = [];
  const handler = createRouter({
    pool: () => pool,
    proxy: {
      transport: {
        fetch: (url) => {
          urls.push(url);
          return Promise.resolve(new Response("ok"));
        },
        close() {},
      },
      publicIp: "192.0.2.7",
    },
  });
  await (await handler(new Request("http://h/1"), info)).body?.cancel();
  pool = new Pool([[b]], "least");
  await (await handler(new Request("http://h/2"), info)).body?.cancel();
  assert.deepEqual(urls, ["http://127.0.0.1:9001/1", "http://127.0.0.1:9002/2"]);
});
