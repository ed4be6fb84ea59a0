import assert from "node:assert/strict";
import { formatHostPort, parseListenAddress, reachableHostPort } from "../lib/config/address.ts";
import { splitTarget } from "../lib/data/router.ts";

Deno.test("listen addresses in Go form", () => {
  assert.deepEqual(parseListenAddress(":8080"), {
    ok: true,
    value: { hostname: "0.0.0.0", port: 8080 },
  });
  assert.deepEqual(parseListenAddress("127.0.0.1:0"), {
    ok: true,
    value: { hostname: "127.0.0.1", port: 0 },
  });
  assert.deepEqual(parseListenAddress("[::1]:9000"), {
    ok: true,
    value: { hostname: "::1", port: 9000 },
  });
  assert.deepEqual(parseListenAddress("localhost:80"), {
    ok: true,
    value: { hostname: "localhost", port: 80 },
  });
});

Deno.test("bad listen addresses name the flag", () => {
  for (const bad of ["8080", ":99999", "host:", "::1:80", "a:b", ""]) {
    const r = parseListenAddress(bad);
    assert.equal(r.ok, false, bad);
    if (!r.ok) assert.match(r.error, /--address/);
  }
});

Deno.test("formatHostPort brackets IPv6", () => {
  assert.equal(formatHostPort("::1", 80), "[::1]:80");
  assert.equal(formatHostPort("127.0.0.1", 80), "127.0.0.1:80");
});

Deno.test("splitTarget keeps the raw path and query byte-for-byte", () => {
  assert.deepEqual(splitTarget("http://foo:9000/a/../b//c?x=%zz&a=1;b=2"), {
    authority: "foo:9000",
    path: "/a/../b//c",
    rawQuery: "x=%zz&a=1;b=2",
  });
  assert.deepEqual(splitTarget("http://h"), { authority: "h", path: "/", rawQuery: "" });
  assert.deepEqual(splitTarget("http://h/?"), { authority: "h", path: "/", rawQuery: "" });
  assert.deepEqual(splitTarget("http://[::1]:80/%2F/x?"), {
    authority: "[::1]:80",
    path: "/%2F/x",
    rawQuery: "",
  });
});

Deno.test("reachableHostPort: wildcard binds are reached through loopback", () => {
  assert.equal(reachableHostPort({ hostname: "0.0.0.0", port: 8080 }), "127.0.0.1:8080");
  assert.equal(reachableHostPort({ hostname: "::", port: 8080 }), "[::1]:8080");
  assert.equal(reachableHostPort({ hostname: "192.0.2.1", port: 80 }), "192.0.2.1:80");
  assert.equal(reachableHostPort({ hostname: "fd00::2", port: 80 }), "[fd00::2]:80");
});
