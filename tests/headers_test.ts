import assert from "node:assert/strict";
import {
  connectionTokens,
  downstreamHeaderList,
  isLoopback,
  pickPublicIp,
  upstreamHeaderList,
  upstreamRequestHeaders,
} from "../lib/data/headers.ts";

const INFO = { host: "h", remoteIp: "10.0.0.5", publicIp: "192.0.2.2" };

/** The names both directions keep from `h`, without the ones each adds itself. */
function kept(h: Headers): { up: string[]; down: string[] } {
  const added = ["host", "x-forwarded-host", "x-real-ip", "x-forwarded-for", "accept-encoding"];
  return {
    up: upstreamHeaderList(h, INFO).map(([k]) => k).filter((k) => !added.includes(k)),
    down: downstreamHeaderList(h).map(([k]) => k).filter((k) => k !== "x-proxy" && k !== "server"),
  };
}

Deno.test("hop-by-hop headers and those named in Connection are removed", () => {
  const h = new Headers({
    "connection": "close, X-Fake-Connection-Token, , x-other",
    "x-fake-connection-token": "1",
    "x-other": "2",
    "keep-alive": "timeout=5",
    "proxy-connection": "keep-alive",
    "te": "trailers",
    "trailer": "x-t",
    "transfer-encoding": "chunked",
    "upgrade": "foo",
    "expect": "100-continue",
    "proxy-authorization": "secret",
    "x-keep": "yes",
  });
  assert.deepEqual(connectionTokens(h.get("connection")), [
    "close",
    "x-fake-connection-token",
    "x-other",
  ]);
  assert.deepEqual(kept(h), { up: ["x-keep"], down: ["x-keep"] });
});

Deno.test("connectionTokens: no list for no Connection header, keep-alive or close", () => {
  assert.equal(connectionTokens(null), undefined);
  for (const value of ["keep-alive", "close", "Keep-Alive", " close "]) {
    assert.equal(connectionTokens(value), undefined, value);
  }
  assert.deepEqual(connectionTokens("keep-alive, X-Trace"), [
    "keep-alive",
    "x-trace",
  ]);
  const h = new Headers({ connection: "Keep-Alive", "keep-alive": "timeout=5", "x-a": "1" });
  assert.deepEqual(kept(h), { up: ["x-a"], down: ["x-a"] }, "keep-alive still dropped");
});

Deno.test("empty Connection values are tolerated", () => {
  const h = new Headers({ connection: " , ", "x-a": "1" });
  assert.deepEqual(kept(h), { up: ["x-a"], down: ["x-a"] });
});

Deno.test("upstream headers: Host kept, X-Forwarded-* added once, identity encoding", () => {
  const incoming = new Headers({
    host: "s3.example.com:9000",
    "accept-encoding": "gzip, br",
    connection: "keep-alive",
    authorization: "AWS4-HMAC-SHA256 ...",
  });
  const h = upstreamRequestHeaders(incoming, {
    host: "s3.example.com:9000",
    remoteIp: "10.0.0.5",
    publicIp: "192.0.2.2",
  });
  assert.equal(h.get("host"), "s3.example.com:9000");
  assert.equal(h.get("x-forwarded-host"), "s3.example.com:9000");
  assert.equal(h.get("x-real-ip"), "10.0.0.5");
  assert.equal(h.get("x-forwarded-for"), "10.0.0.5", "the client address appears once, not twice");
  assert.equal(h.get("accept-encoding"), "identity");
  assert.equal(h.get("authorization"), "AWS4-HMAC-SHA256 ...");
  assert.equal(h.has("connection"), false);
  assert.equal(incoming.get("connection"), "keep-alive", "the caller's headers are not mutated");
});

Deno.test("upstream headers: existing X-Forwarded-For gets the client appended", () => {
  const h = upstreamRequestHeaders(new Headers({ "x-forwarded-for": "1.2.3.4" }), {
    host: "h",
    remoteIp: "10.0.0.9",
    publicIp: "192.0.2.2",
  });
  assert.equal(h.get("x-forwarded-for"), "1.2.3.4, 10.0.0.9");
});

Deno.test("upstream headers: a loopback client is replaced by the host's public IP", () => {
  for (const remoteIp of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
    const h = upstreamRequestHeaders(new Headers(), { host: "h", remoteIp, publicIp: "192.0.2.2" });
    assert.equal(h.get("x-real-ip"), "192.0.2.2", remoteIp);
    assert.equal(h.get("x-forwarded-for"), "192.0.2.2", remoteIp);
  }
  assert.equal(isLoopback("10.0.0.1"), false);
});

Deno.test("downstream headers: X-Proxy added, Server kept or set, multi Set-Cookie kept", () => {
  const up = new Headers([["set-cookie", "a=1"], ["set-cookie", "b=2"], ["connection", "x-h"], [
    "x-h",
    "1",
  ]]);
  const h = new Headers(downstreamHeaderList(up));
  assert.equal(h.get("x-proxy"), "true");
  assert.equal(h.get("server"), "SideKick");
  assert.deepEqual(h.getSetCookie(), ["a=1", "b=2"]);
  assert.equal(h.has("x-h"), false);
  const minio = new Headers(downstreamHeaderList(new Headers({ server: "MinIO" })));
  assert.equal(minio.get("server"), "MinIO");
});

Deno.test("pickPublicIp prefers a non-loopback IPv4, skips link-local", () => {
  const ifs = [
    { address: "127.0.0.1", family: "IPv4" },
    { address: "fe80::1", family: "IPv6" },
    { address: "fd00::2", family: "IPv6" },
    { address: "192.0.2.2", family: "IPv4" },
  ];
  assert.equal(pickPublicIp(ifs, "x"), "192.0.2.2");
  assert.equal(pickPublicIp(ifs.slice(0, 3), "x"), "fd00::2");
  assert.equal(pickPublicIp(ifs.slice(0, 1), "x"), "x");
});

Deno.test("downstreamHeaderList: a Server the Connection header names leaves, and SideKick's takes its place", () => {
  const named = new Headers({ connection: "server", server: "nginx", "x-a": "1" });
  assert.deepEqual(downstreamHeaderList(named), [["x-a", "1"], ["x-proxy", "true"], [
    "server",
    "SideKick",
  ]]);
  const kept = new Headers({ connection: "keep-alive", server: "nginx", "x-proxy": "spoofed" });
  assert.deepEqual(downstreamHeaderList(kept), [["server", "nginx"], ["x-proxy", "true"]]);
});
