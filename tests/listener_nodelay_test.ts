import assert from "node:assert/strict";
import {
  inspectSockets,
  setListenerNoDelay,
  setNoDelayOnListeners,
  sockaddrPort,
  type SocketCalls,
} from "../lib/tls/listener_nodelay.ts";
import { serverCerts } from "./helpers/server_certs.ts";

const linuxOnly = Deno.build.os !== "linux";

Deno.test("sockaddrPort: the port of IPv4 and IPv6 addresses, nothing for other families", () => {
  // sockaddr_in for 127.0.0.1:8443: family 2 (host order), port 0x20FB (network order).
  const v4 = new Uint8Array([2, 0, 0x20, 0xfb, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(sockaddrPort(v4, 16), 8443);
  const v6 = new Uint8Array(28);
  v6.set([10, 0, 0x00, 0x50]);
  assert.equal(sockaddrPort(v6, 28), 80);
  const unix = new Uint8Array([1, 0, 0x2f, 0x74, 0x6d, 0x70]); // AF_UNIX "/tmp"
  assert.equal(sockaddrPort(unix, 6), undefined);
  assert.equal(sockaddrPort(new Uint8Array(16), 2), undefined, "too short");
});

/**
 * Fake descriptors: fd → listening port (-1: another socket) and TCP_NODELAY state; the rest are
 * not sockets. `refuse` makes setsockopt fail.
 */
function fakeCalls(
  sockets: Map<number, { port: number; noDelay: boolean }>,
  refuse = false,
): SocketCalls & { looked: number[] } {
  const looked: number[] = [];
  return {
    looked,
    limit: () => 1_000,
    listeningPort(fd) {
      looked.push(fd);
      return sockets.get(fd)?.port;
    },
    noDelay: (fd) => sockets.get(fd)!.noDelay,
    setNoDelay(fd) {
      if (refuse) return false;
      sockets.get(fd)!.noDelay = true;
      return true;
    },
  };
}

Deno.test("setNoDelayOnListeners: every listener of the port that lacks it, whoever bound it; other sockets untouched", () => {
  const sockets = new Map([
    [3, { port: 8443, noDelay: true }], // a listener bound earlier (another worker's)
    [5, { port: 9000, noDelay: false }], // another port
    [6, { port: -1, noDelay: false }], // a connection
    [7, { port: 8443, noDelay: false }], // the one just bound
    [9, { port: 8443, noDelay: false }], // bound at the same time by another isolate
  ]);
  assert.deepEqual(setNoDelayOnListeners(8443, fakeCalls(sockets), 4), { ok: true, value: 2 });
  assert.deepEqual([3, 5, 6, 7, 9].map((fd) => sockets.get(fd)!.noDelay), [
    true,
    false,
    false,
    true,
    true,
  ]);
  assert.deepEqual(setNoDelayOnListeners(8443, fakeCalls(sockets), 4), { ok: true, value: 0 });
});

Deno.test("setNoDelayOnListeners: the walk ends after a gap of non-sockets, or at the limit", () => {
  const sockets = new Map([[2, { port: 8443, noDelay: false }], [20, {
    port: 8443,
    noDelay: false,
  }]]);
  const calls = fakeCalls(sockets);
  assert.deepEqual(setNoDelayOnListeners(8443, calls, 5), { ok: true, value: 1 });
  assert.equal(calls.looked.at(-1), 7, "five non-sockets after fd 2");
  assert.equal(sockets.get(20)!.noDelay, false, "beyond the gap");
  const all = fakeCalls(sockets);
  assert.deepEqual(setNoDelayOnListeners(8443, all), { ok: true, value: 1 });
  assert.equal(all.looked.length, 1_000, "up to the limit when the gap is never reached");
});

Deno.test("setNoDelayOnListeners: no listener, or a refused setsockopt, is an error that says so", () => {
  const none = setNoDelayOnListeners(8443, fakeCalls(new Map()));
  assert.deepEqual(none, { ok: false, error: "no listening socket of port 8443 found" });
  const refused = setNoDelayOnListeners(
    8443,
    fakeCalls(new Map([[4, { port: 8443, noDelay: false }]]), true),
  );
  assert.deepEqual(refused, {
    ok: false,
    error: "setsockopt(TCP_NODELAY) failed on the listener of port 8443",
  });
});

/** The listening sockets of `port` in this process. */
function listenersOf(port: number) {
  return inspectSockets(4096).filter((s) => s.port === port);
}

Deno.test({
  name:
    "setListenerNoDelay: sets TCP_NODELAY on real listeners, IPv4 then IPv6; a closed port is an error",
  ignore: linuxOnly,
  fn() {
    const v4 = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = v4.addr.port;
    assert.deepEqual(listenersOf(port).map((s) => s.noDelay), [false], "the kernel's default");
    assert.deepEqual(setListenerNoDelay(port), { ok: true, value: 1 });
    assert.deepEqual(listenersOf(port).map((s) => s.noDelay), [true]);
    let v6: Deno.Listener | undefined;
    try {
      v6 = Deno.listen({ hostname: "::1", port });
    } catch {
      // no IPv6 on this host: the IPv4 listener alone is checked
    }
    try {
      if (v6) {
        assert.deepEqual(setListenerNoDelay(port), { ok: true, value: 1 });
        assert.deepEqual(listenersOf(port).map((s) => s.noDelay), [true, true]);
      }
      assert.deepEqual(setListenerNoDelay(port), { ok: true, value: 0 }, "all set already");
    } finally {
      v6?.close();
      v4.close();
    }
    assert.deepEqual(setListenerNoDelay(port), {
      ok: false,
      error: `no listening socket of port ${port} found`,
    });
  },
});

Deno.test({
  name: "setListenerNoDelay: finds and sets the listener of a Deno.serve HTTPS server",
  ignore: linuxOnly,
  async fn() {
    const c = await serverCerts();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: Deno.readTextFileSync(c.aCert),
      key: Deno.readTextFileSync(c.aKey),
      onListen() {},
    }, () => new Response("ok"));
    try {
      const port = server.addr.port;
      assert.deepEqual(listenersOf(port).map((s) => s.noDelay), [false]);
      assert.ok(setListenerNoDelay(port).ok);
      assert.deepEqual(listenersOf(port).map((s) => s.noDelay), [true]);
    } finally {
      await server.shutdown();
    }
  },
});
