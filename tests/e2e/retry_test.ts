/**
 * Retries on another backend: what is retried (nothing sent; idempotent requests whose
 * connection closed before a response), what never is (a body that reached a backend), the
 * replay buffer, the budget, and what the traces and metrics say about it.
 */

import assert from "node:assert/strict";
import {
  patternStream,
  sha256,
  startBackend,
  startBackends,
  waitFor,
} from "../helpers/backends.ts";
import { type SidekickProcess, startSidekick } from "../helpers/sidekick_process.ts";
import { scrapeSum } from "../helpers/metrics_text.ts";

/** A backend whose health path answers 200 and which drops every other request unanswered. */
interface Dropper {
  readonly url: string;
  /** Requests (not health checks) that arrived. */
  requests: number;
  /** Request body bytes that arrived with them. */
  bodyBytes: number;
  close(): void;
}

/**
 * Starts a {@linkcode Dropper}: it reads a request's head (and with `readBody`, the body its
 * Content-Length announces), then closes the connection without a response.
 */
function startDropper(readBody: boolean): Dropper {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const dropper: Dropper = {
    url: `http://127.0.0.1:${port}`,
    requests: 0,
    bodyBytes: 0,
    close: () => listener.close(),
  };
  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(1 << 16);
    let text = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        text += new TextDecoder().decode(buf.subarray(0, n));
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) continue;
        if (/^GET \/health /.test(text)) {
          await conn.write(
            new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
          );
          text = text.slice(end + 4);
          continue;
        }
        dropper.requests++;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? "0");
        let got = text.length - end - 4;
        while (readBody && got < length) {
          const m = await conn.read(buf);
          if (m === null) break;
          got += m;
        }
        dropper.bodyBytes += readBody ? got : 0;
        return;
      }
    } catch {
      // the peer went away
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* listener closed */ }
  })();
  return dropper;
}

const FLAGS = ["--health-path", "/health", "--quiet"];

function metric(sk: SidekickProcess, prefix: string): Promise<number> {
  return scrapeSum(sk.url, prefix);
}

async function allUp(sk: SidekickProcess, n: number): Promise<void> {
  await waitFor(async () => (await metric(sk, "sidekick_backend_up{")) === n, `${n} backends UP`);
}

Deno.test("a backend killed while 8 clients send GETs: no failed request", async () => {
  const backends = await startBackends(3);
  const sk = await startSidekick([
    ...FLAGS,
    "--health-duration",
    "150ms",
    backends.map((b) => b.url).join(","),
  ]);
  try {
    await allUp(sk, 3);
    const statuses: number[] = [];
    let stop = false;
    using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const res = await fetch(`${sk.url}/k`, { client });
        await res.body?.cancel();
        statuses.push(res.status);
      }
    });
    await waitFor(() => statuses.length >= 100, "load before the kill");
    await backends[0].close();
    const killedAt = statuses.length;
    await waitFor(() => statuses.length >= killedAt + 300, "load after the kill");
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], "no failed request");
    assert.ok(await metric(sk, "sidekick_retries_total{") >= 1, "the dead backend was retried");
  } finally {
    await sk.stop();
    for (const b of backends.slice(1)) await b.close();
  }
});

Deno.test("a 256 KiB PUT to a backend that refuses connections reaches the failover site once, byte-identical", async () => {
  const [dying, failover] = await startBackends(2);
  const sk = await startSidekick([
    "--health-path",
    "/health",
    "--health-duration",
    "1h",
    "--log",
    "--trace",
    "application",
    dying.url,
    failover.url,
  ]);
  try {
    await allUp(sk, 2);
    await dying.close(); // still UP in sidekick's eyes: the PUT finds the port closed
    const body = new Uint8Array(await new Response(patternStream(256 * 1024)).arrayBuffer());
    const res = await fetch(`${sk.url}/bucket/object`, { method: "PUT", body });
    assert.equal(res.status, 200, await res.text());
    assert.equal(failover.seen.length, 1, "exactly once");
    const seen = failover.seen[0];
    assert.equal(seen.bodyBytes, body.length);
    assert.equal(seen.bodySha256, await sha256(body));
    assert.equal(seen.headers.get("content-length"), String(body.length));
    const line = await sk.waitForLine(/\/bucket\/object/);
    assert.match(line, new RegExp(`after 1 failed attempt: ${dying.url} connect: `));
    assert.equal(
      await metric(sk, `sidekick_retries_total{endpoint="${dying.url}",reason="connect"`),
      1,
    );
  } finally {
    await sk.stop();
    await failover.close();
  }
});

Deno.test("a PUT larger than --retry-buffer streams and is never duplicated", async () => {
  const dropper = startDropper(true);
  const other = await startBackend("b2");
  const sk = await startSidekick([
    ...FLAGS,
    "--health-duration",
    "1h",
    "--retry-buffer",
    "64KiB",
    dropper.url,
    other.url,
  ]);
  try {
    await allUp(sk, 2);
    const body = new Uint8Array(256 * 1024).fill(7);
    const res = await fetch(`${sk.url}/big`, { method: "PUT", body });
    assert.equal(res.status, 502, "its body went to a backend that dropped it: not replayable");
    await res.body?.cancel();
    assert.equal(dropper.requests, 1);
    assert.equal(other.seen.length, 0, "never sent twice");
  } finally {
    await sk.stop();
    dropper.close();
    await other.close();
  }
});

Deno.test("a GET whose backend closes before answering is answered by another backend", async () => {
  const dropper = startDropper(false);
  const good = await startBackend("good");
  const sk = await startSidekick([
    ...FLAGS,
    "--health-duration",
    "1h",
    `${dropper.url},${good.url}`,
  ]);
  try {
    await allUp(sk, 2);
    using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    for (let i = 0; i < 20 && dropper.requests === 0; i++) {
      const res = await fetch(`${sk.url}/g${i}`, { client });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "good");
    }
    assert.ok(dropper.requests >= 1, "the dropping backend was tried");
    // An exchange is counted when its response has been delivered, a moment after the client
    // read it: wait for the count rather than race it.
    const closed = `sidekick_retries_total{endpoint="${dropper.url}",reason="closed"`;
    await waitFor(async () => (await metric(sk, closed)) >= 1, "the retry counted as 'closed'");
  } finally {
    await sk.stop();
    dropper.close();
    await good.close();
  }
});

Deno.test("a POST whose body reached a backend that then closes gets a 502; no other backend sees it", async () => {
  const dropper = startDropper(true);
  const failover = await startBackend("failover");
  const sk = await startSidekick([...FLAGS, "--health-duration", "1h", dropper.url, failover.url]);
  try {
    await allUp(sk, 2);
    const res = await fetch(`${sk.url}/post`, { method: "POST", body: "x".repeat(1000) });
    assert.equal(res.status, 502);
    await res.body?.cancel();
    assert.equal(dropper.bodyBytes, 1000);
    assert.equal(failover.seen.length, 0);
  } finally {
    await sk.stop();
    dropper.close();
    await failover.close();
  }
});

Deno.test("three backends that drop every request see about 1.2× the requests: the budget", async () => {
  const droppers = [startDropper(false), startDropper(false), startDropper(false)];
  const sk = await startSidekick([
    ...FLAGS,
    "--workers",
    "2", // one budget for both workers: its floor is not doubled
    "--retries",
    "2",
    "--health-duration",
    "1h",
    droppers.map((d) => d.url).join(","),
  ]);
  try {
    await allUp(sk, 3);
    const n = 200;
    using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${sk.url}/d${i}`, { client });
      assert.equal(res.status, 502);
      await res.body?.cancel();
    }
    const attempts = droppers.reduce((t, d) => t + d.requests, 0);
    // 20 % of the requests plus a floor of one retry a second over the 10 s window.
    assert.ok(attempts >= n, `${attempts}`);
    assert.ok(attempts <= n * 1.2 + 10, `${attempts} attempts for ${n} requests`);
    assert.ok(await metric(sk, "sidekick_retry_budget_exhausted_total{") > 0);
  } finally {
    await sk.stop();
    for (const d of droppers) d.close();
  }
});

Deno.test("--retries 0: a refused connection answers 502, nothing retried", async () => {
  const [dying, other] = await startBackends(2);
  const sk = await startSidekick([
    ...FLAGS,
    "--retries",
    "0",
    "--health-duration",
    "1h",
    dying.url,
    other.url,
  ]);
  try {
    await allUp(sk, 2);
    await dying.close();
    const res = await fetch(`${sk.url}/x`);
    assert.equal(res.status, 502);
    await res.body?.cancel();
    assert.equal(other.seen.length, 0);
  } finally {
    await sk.stop();
    await other.close();
  }
});
