import assert from "node:assert/strict";
import {
  DnsCache,
  DnsLookupError,
  isIpHost,
  systemResolver,
  urlHost,
} from "../lib/upstream/dns.ts";
import { expandRrDns, replaceUrlHost, samePlan } from "../lib/control/rr_dns.ts";

/** A fake resolver: answers from a table that tests change, counting calls per host. */
function fakeResolver(table: Record<string, string[] | Error>) {
  const calls: Record<string, number> = {};
  const resolver = (host: string) => {
    calls[host] = (calls[host] ?? 0) + 1;
    const answer = table[host];
    if (answer === undefined) {
      return Promise.reject(Object.assign(new Error("x"), { code: "ENOTFOUND" }));
    }
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve([...answer]);
  };
  return { resolver, calls, table };
}

Deno.test("DnsCache: one lookup per host, shared by concurrent callers, then cached", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let calls = 0;
  const cache = new DnsCache({
    ttlMs: 60_000,
    resolver: async () => {
      calls++;
      await gate;
      return ["10.0.0.1", "10.0.0.2"];
    },
  });
  const a = cache.lookup("minio1");
  const b = cache.lookup("MINIO1");
  release();
  assert.deepEqual(await a, ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(await b, ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(await cache.lookup("minio1"), ["10.0.0.1", "10.0.0.2"]);
  assert.equal(calls, 1);
  assert.deepEqual(cache.hosts, ["minio1"]);
});

Deno.test("DnsCache: refresh re-resolves used entries and drops unused ones", async () => {
  const fake = fakeResolver({ a: ["10.0.0.1"], b: ["10.0.0.2"] });
  const cache = new DnsCache({ ttlMs: 60_000, resolver: fake.resolver });
  await cache.lookup("a");
  await cache.lookup("b");
  await cache.refresh(); // both were used (by their first lookup): both re-resolved
  assert.deepEqual(fake.calls, { a: 2, b: 2 });
  fake.table.a = ["10.0.0.9"];
  await cache.lookup("a"); // a used since the last refresh, b not
  await cache.refresh();
  assert.deepEqual(fake.calls, { a: 3, b: 2 });
  assert.deepEqual(cache.peek("a"), ["10.0.0.9"]);
  assert.equal(cache.peek("b"), undefined, "unused entry dropped");
  assert.deepEqual(cache.hosts, ["a"]);
});

Deno.test("DnsCache: a failed re-resolution keeps the stale addresses", async () => {
  const fake = fakeResolver({ a: ["10.0.0.1"] });
  const cache = new DnsCache({ ttlMs: 60_000, resolver: fake.resolver });
  await cache.lookup("a");
  fake.table.a = new Error("SERVFAIL");
  await cache.refresh();
  assert.deepEqual(cache.peek("a"), ["10.0.0.1"]);
  assert.deepEqual(await cache.lookup("a"), ["10.0.0.1"]);
  // And an empty answer is a failure too, not "no addresses".
  fake.table.a = [];
  await cache.refresh();
  assert.deepEqual(cache.peek("a"), ["10.0.0.1"]);
});

Deno.test("DnsCache: failures are not cached and say which host and why", async () => {
  const fake = fakeResolver({});
  const cache = new DnsCache({ ttlMs: 60_000, resolver: fake.resolver });
  const e = await cache.lookup("nope.test").catch((e) => e);
  assert.ok(e instanceof DnsLookupError);
  assert.equal(e.host, "nope.test");
  assert.equal(e.reason, "no such host");
  assert.equal(e.message, "lookup nope.test: no such host");
  fake.table["nope.test"] = ["10.1.1.1"];
  assert.deepEqual(await cache.lookup("nope.test"), ["10.1.1.1"]);
});

Deno.test("DnsCache: a lookup that hangs is bounded by the lookup timeout", async () => {
  const cache = new DnsCache({
    ttlMs: 60_000,
    lookupTimeoutMs: 30,
    resolver: () => new Promise(() => {}),
  });
  const e = await cache.lookup("slow.test").catch((e) => e);
  assert.ok(e instanceof DnsLookupError);
  assert.match(e.message, /lookup slow\.test: timed out after 30 ms/);
});

Deno.test("DnsCache: resolveNow bypasses the cached answer; failure leaves the entry", async () => {
  const fake = fakeResolver({ a: ["10.0.0.1"] });
  const cache = new DnsCache({ ttlMs: 60_000, resolver: fake.resolver });
  await cache.lookup("a");
  fake.table.a = ["10.0.0.2"];
  assert.deepEqual(await cache.lookup("a"), ["10.0.0.1"]);
  assert.deepEqual(await cache.resolveNow("a"), ["10.0.0.2"]);
  assert.deepEqual(await cache.lookup("a"), ["10.0.0.2"]);
  fake.table.a = new Error("down");
  await assert.rejects(cache.resolveNow("a"), DnsLookupError);
  assert.deepEqual(cache.peek("a"), ["10.0.0.2"]);
});

Deno.test("DnsCache: start() refreshes every TTL and calls the listeners; stop() ends it", async () => {
  const fake = fakeResolver({ a: ["10.0.0.1"] });
  const cache = new DnsCache({ ttlMs: 20, resolver: fake.resolver });
  await cache.lookup("a");
  let refreshes = 0;
  let second!: () => void;
  const twice = new Promise<void>((r) => (second = r));
  cache.onRefresh(() => {
    if (++refreshes === 2) second();
    return cache.lookup("a").then(() => {}); // keep the entry used, as rr-dns does
  });
  cache.onRefresh(() => {
    throw new Error("a failing listener does not stop the loop");
  });
  cache.start();
  await twice;
  cache.stop();
  assert.ok(fake.calls.a >= 3, "first lookup plus one per refresh");
  assert.deepEqual(cache.peek("a"), ["10.0.0.1"]);
});

Deno.test("isIpHost, urlHost, replaceUrlHost", () => {
  assert.equal(isIpHost("10.0.0.1"), true);
  assert.equal(isIpHost("[::1]"), true);
  assert.equal(isIpHost("::1"), true);
  assert.equal(isIpHost("minio1"), false);
  assert.equal(isIpHost("1.2.3.example"), false);
  assert.equal(urlHost("::1"), "[::1]");
  assert.equal(urlHost("10.0.0.1"), "10.0.0.1");
  assert.equal(replaceUrlHost("http://MinIO.example:9000/x", "10.0.0.7"), "http://10.0.0.7:9000/x");
  assert.equal(replaceUrlHost("https://minio/health", "[fd00::7]"), "https://[fd00::7]/health");
  assert.equal(replaceUrlHost("http://[::1]:80", "127.0.0.1"), "http://127.0.0.1:80");
});

Deno.test("expandRrDns: a single hostname endpoint becomes one endpoint per address", async () => {
  const fake = fakeResolver({ "minio.example": ["10.0.0.7", "fd00::7", "10.0.0.7"] });
  const plan = await expandRrDns([
    [{ endpoint: "https://minio.example:9000", healthUrl: "https://minio.example:4242/health" }],
    [
      { endpoint: "http://a:9000", healthUrl: "http://a:9000/" },
      { endpoint: "http://b:9000", healthUrl: "http://b:9000/" },
    ],
    [{ endpoint: "http://10.9.9.9:9000", healthUrl: "http://10.9.9.9:9000/" }],
  ], fake.resolver);
  assert.deepEqual(plan.sites[0], [
    { endpoint: "https://10.0.0.7:9000", healthUrl: "https://10.0.0.7:4242/health" },
    { endpoint: "https://[fd00::7]:9000", healthUrl: "https://[fd00::7]:4242/health" },
  ]);
  assert.equal(plan.sites[1].length, 2, "sites with several endpoints are left alone");
  assert.deepEqual(plan.sites[2], [
    { endpoint: "http://10.9.9.9:9000", healthUrl: "http://10.9.9.9:9000/" },
  ]);
  assert.deepEqual(plan.expanded, ["https://minio.example:9000"]);
  assert.deepEqual(
    [...plan.serverNames],
    [["10.0.0.7", "minio.example"], ["[fd00::7]", "minio.example"]],
  );
  assert.deepEqual(fake.calls, { "minio.example": 1 });
});

Deno.test("expandRrDns: http sites need no TLS names; lookup failures propagate", async () => {
  const fake = fakeResolver({ "svc": ["10.0.0.1"] });
  const plan = await expandRrDns(
    [[{ endpoint: "http://svc", healthUrl: "http://svc/" }]],
    fake.resolver,
  );
  assert.deepEqual(plan.sites, [[{ endpoint: "http://10.0.0.1", healthUrl: "http://10.0.0.1/" }]]);
  assert.equal(plan.serverNames.size, 0);
  const cache = new DnsCache({ ttlMs: 60_000, resolver: fake.resolver });
  await assert.rejects(
    expandRrDns([[{ endpoint: "http://gone", healthUrl: "http://gone/" }]], (h) => cache.lookup(h)),
    (e) => e instanceof DnsLookupError && e.host === "gone",
  );
});

Deno.test("samePlan ignores the order of addresses inside a site", () => {
  const e = (s: string) => ({ endpoint: s, healthUrl: s + "/" });
  assert.equal(samePlan([[e("a"), e("b")]], [[e("b"), e("a")]]), true);
  assert.equal(samePlan([[e("a"), e("b")]], [[e("a")]]), false);
  assert.equal(samePlan([[e("a")], [e("b")]], [[e("b")], [e("a")]]), false);
});

Deno.test("systemResolver: getaddrinfo answers localhost (with /etc/hosts)", async () => {
  const addresses = await systemResolver("localhost");
  assert.ok(
    addresses.includes("127.0.0.1") || addresses.includes("::1"),
    `localhost resolved to ${addresses.join(", ")}`,
  );
  await assert.rejects(systemResolver("no-such-host.invalid"));
});
