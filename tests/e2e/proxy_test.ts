/**
 * Black-box tests of proxying: sidekick runs as a child process (main.ts) in front of real
 * backends on 127.0.0.1, and every assertion is on what a client or a backend sees.
 */
import assert from "node:assert/strict";
import {
  digestStream,
  GZIP_HELLO,
  patternStream,
  rawRequest,
  startBackends,
  type TestBackend,
  waitFor,
} from "../helpers/backends.ts";
import { startSidekick } from "../helpers/sidekick_process.ts";
import { pickPublicIp } from "../../lib/data/headers.ts";
import { scrapeSum } from "../helpers/metrics_text.ts";

const FAST = ["--health-path", "/health", "--health-duration", "200ms", "--health-timeout", "2s"];

async function withSidekick(
  backendCount: number,
  extra: string[],
  body: (url: string, backends: TestBackend[]) => Promise<void>,
) {
  const backends = await startBackends(backendCount);
  const sk = await startSidekick([...FAST, ...extra, backends.map((b) => b.url).join(",")]);
  try {
    await sk.waitHealthy();
    await body(sk.url, backends);
  } finally {
    await sk.stop();
    await Promise.all(backends.map((b) => b.close()));
  }
}

Deno.test("load is spread over 4 backends", async () => {
  await withSidekick(4, [], async (url) => {
    // Wait until sidekick has all four UP (the first health round is immediate).
    await waitFor(
      async () => (await scrapeSum(url, "sidekick_backend_up{")) === 4,
      "all four backends UP",
    );
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const res = await fetch(url + "/spread");
      const name = await res.text();
      counts[name] = (counts[name] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(counts).sort(), ["b1", "b2", "b3", "b4"]);
    for (const n of Object.values(counts)) assert.ok(n > 20, JSON.stringify(counts));
  });
});

Deno.test("Host kept, X-Forwarded-* added, hop-by-hop stripped, raw query kept", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const port = new URL(url).port;
    const reply = await rawRequest(
      Number(port),
      "GET /echo?a=1&a=2;b=3&c=%zz HTTP/1.1\r\n" +
        "Host: bucket.s3.example.com:9000\r\n" +
        "Connection: close, X-Fake-Hop\r\n" +
        "X-Fake-Hop: secret\r\n" +
        "Keep-Alive: timeout=5\r\n" +
        "Proxy-Connection: keep-alive\r\n" +
        "X-Forwarded-For: 1.2.3.4\r\n" +
        "X-Amz-Date: 20260101T000000Z\r\n\r\n",
    );
    assert.match(reply, /^HTTP\/1\.1 200/);
    const seen = b.seen.at(-1)!;
    assert.equal(new URL(seen.url).search, "?a=1&a=2;b=3&c=%zz");
    assert.equal(seen.headers.get("host"), "bucket.s3.example.com:9000");
    assert.equal(seen.headers.get("x-forwarded-host"), "bucket.s3.example.com:9000");
    const xff = seen.headers.get("x-forwarded-for")!;
    assert.match(xff, /^1\.2\.3\.4, [^,]+$/, "client address appended exactly once");
    assert.equal(seen.headers.get("x-real-ip"), xff.split(", ")[1]);
    // A loopback client is replaced by this machine's first non-loopback address, found as
    // sidekick finds it; on a host whose only interface is loopback that is 127.0.0.1 itself.
    const publicIp = pickPublicIp(Deno.networkInterfaces(), "127.0.0.1");
    assert.equal(seen.headers.get("x-real-ip"), publicIp, "loopback client replaced");
    assert.equal(seen.headers.get("x-amz-date"), "20260101T000000Z");
    for (const h of ["x-fake-hop", "keep-alive", "proxy-connection"]) {
      assert.equal(seen.headers.has(h), false, h);
    }
    assert.equal(seen.headers.get("accept-encoding"), "identity");
  });
});

Deno.test("response: status, headers, X-Proxy, Server, Connection-named headers stripped", async () => {
  await withSidekick(1, [], async (url) => {
    const res = await fetch(url + "/anything");
    assert.equal(await res.text(), "b1");
    assert.equal(res.headers.get("x-proxy"), "true");
    assert.equal(res.headers.get("server"), "SideKick");
    assert.deepEqual(res.headers.getSetCookie(), ["a=1"]);
    assert.equal(res.headers.get("x-multi"), "one");
    assert.equal(res.headers.has("x-secret-hop"), false);
    const notFound = await fetch(url + "/status?code=404");
    assert.equal(notFound.status, 404);
    assert.equal(await notFound.text(), "status from b1");
    const head = await fetch(url + "/anything", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });
});

Deno.test("a backend's gzip body reaches the client byte-identical, header included", async () => {
  await withSidekick(1, [], async (url) => {
    const reply = await rawRequest(
      Number(new URL(url).port),
      "GET /gzip HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    assert.match(reply, /content-encoding: gzip/i);
    const binary = String.fromCharCode(...GZIP_HELLO);
    assert.ok(reply.endsWith("\r\n\r\n" + binary), "gzip bytes intact at the end of the reply");
    const res = await fetch(url + "/gzip", { headers: { "accept-encoding": "identity" } });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), GZIP_HELLO);
  });
});

Deno.test("64 MiB upload keeps Content-Length and arrives intact", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const size = 64 * 1024 * 1024;
    const expected = await digestStream(patternStream(size, 7));
    // Send a fixed-length body: a Blob gives fetch a known length.
    const parts: Uint8Array[] = [];
    for await (const c of patternStream(size, 7)) parts.push(c);
    const res = await fetch(url + "/upload", {
      method: "PUT",
      body: new Blob(parts as BlobPart[]),
    });
    assert.equal(await res.text(), "b1");
    const seen = b.seen.at(-1)!;
    assert.equal(seen.headers.get("content-length"), String(size));
    assert.equal(seen.headers.has("transfer-encoding"), false);
    assert.equal(seen.bodyBytes, size);
    assert.equal(seen.bodySha256, expected.sha256);
  });
});

Deno.test("chunked upload is proxied as a stream", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const res = await fetch(url + "/chunked", { method: "POST", body: patternStream(300_000, 3) });
    assert.equal(await res.text(), "b1");
    assert.equal(b.seen.at(-1)!.bodyBytes, 300_000);
    assert.equal(b.seen.at(-1)!.bodySha256, (await digestStream(patternStream(300_000, 3))).sha256);
  });
});

Deno.test("CONNECT, absolute-form targets and non-WebSocket upgrades are refused clearly", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const port = Number(new URL(url).port);
    const connect = await rawRequest(
      port,
      "CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n",
      2000,
    );
    assert.match(connect, /^HTTP\/1\.1 501/);
    const absolute = await rawRequest(
      port,
      "GET http://other.example/x HTTP/1.1\r\nHost: mine:9000\r\nConnection: close\r\n\r\n",
    );
    assert.match(absolute, /^HTTP\/1\.1 400/);
    const upgrade = await rawRequest(
      port,
      "GET /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\nUpgrade: foo\r\n\r\n",
    );
    assert.match(upgrade, /^HTTP\/1\.1 501/);
    assert.equal(b.seen.length, 0, "nothing reached the backend");
    const health = await fetch(url + "/v1/health");
    await health.body?.cancel();
    assert.equal(health.status, 200, "the backend was not marked down");
  });
});

Deno.test("malformed requests get an answer or a closed connection, never a crash", async () => {
  await withSidekick(1, [], async (url) => {
    const port = Number(new URL(url).port);
    const junk = [
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX: \x01\x02\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789",
      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "GET /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
      "GET /echo HTTP/1.0\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      `GET /${"a".repeat(70_000)} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${"b".repeat(200_000)}\r\n\r\n`,
      "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "\r\n\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial",
    ];
    for (const text of junk) {
      const reply = await rawRequest(port, text, 1_500);
      if (reply) assert.match(reply, /^HTTP\/1\.[01] \d{3} /, JSON.stringify(text.slice(0, 40)));
    }
    const health = await fetch(url + "/v1/health");
    await health.body?.cancel();
    assert.equal(health.status, 200, "alive, and the backend was not blamed");
    assert.equal(await (await fetch(url + "/after")).text(), "b1");
  });
});

Deno.test("a backend's redirect reaches the client as is (never followed)", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const res = await fetch(url + "/redirect", { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/elsewhere");
    assert.equal(b.seen.filter((s) => new URL(s.url).pathname === "/elsewhere").length, 0);
  });
});

Deno.test("uploads of 4 KiB keep both connections alive (Deno 2.8.3–2.9.5 regression)", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const port = Number(new URL(url).port);
    const body = "x".repeat(4096);
    const one = `PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // Three uploads on one client connection, the last asking to close: three answers.
    const reply = await rawRequest(
      port,
      one + one + one.replace("Host: h\r\n", "Host: h\r\nConnection: close\r\n"),
    );
    assert.equal(reply.match(/HTTP\/1\.1 200 /g)?.length, 3, reply.slice(0, 300));
    assert.doesNotMatch(reply.split("HTTP/1.1 200")[1], /connection: close/i);
    // Twenty more through fetch: the upstream side reuses its pooled connection(s).
    for (let i = 0; i < 20; i++) {
      await (await fetch(url + "/echo", { method: "PUT", body })).arrayBuffer();
    }
    assert.equal(b.seen.length, 23);
    assert.ok(b.connections.size <= 2, `${b.connections.size} upstream connections for 23 PUTs`);
  });
});

Deno.test("an upload the backend answers before reading is relayed, not stalled", async () => {
  await withSidekick(1, [], async (url) => {
    const res = await fetch(url + "/reject", {
      method: "PUT",
      body: patternStream(8 * 1024 * 1024),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 403);
    assert.equal(await res.text(), "denied");
    const health = await fetch(url + "/v1/health");
    await health.body?.cancel();
    assert.equal(health.status, 200, "an early answer does not blame the backend");
  });
});

/** Sends `text`, closes the sending side (the body ends early), reads the answer. */
async function halfClosed(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text));
    await conn.closeWrite();
    const reply = await new Response(conn.readable).text().catch(() => "");
    return reply;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the readable */ }
  }
}

Deno.test("bad input is the client's: no Host, a lower-case method, a body shorter than its Content-Length", async () => {
  await withSidekick(1, [], async (url, [b]) => {
    const port = Number(new URL(url).port);
    const noHost = await rawRequest(port, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert.match(noHost, /^HTTP\/1\.1 400 /);
    assert.match(noHost, /needs a Host header/);
    const lower = await rawRequest(port, "get /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert.match(lower, /^HTTP\/1\.1 400 /);
    assert.match(lower, /case-sensitive/);
    assert.equal(b.seen.length, 0, "neither reached the backend");
    // A short upload: kept for a retry (PUT) or streamed (POST); either way the client's fault.
    for (const method of ["PUT", "POST"]) {
      const reply = await halfClosed(
        port,
        `${method} /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial`,
      );
      if (reply) assert.match(reply, /^HTTP\/1\.1 400 /, `${method}: ${reply.slice(0, 80)}`);
    }
    const metrics = await (await fetch(url + "/.prometheus/metrics")).text();
    assert.match(metrics, new RegExp(`sidekick_errors_total\\{endpoint="${b.url}"\\} 0\\n`));
    assert.match(metrics, new RegExp(`sidekick_backend_up\\{endpoint="${b.url}",site="1"\\} 1\\n`));
    assert.equal(await (await fetch(url + "/after")).text(), "b1");
  });
});
