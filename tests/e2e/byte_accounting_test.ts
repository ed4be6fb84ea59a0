/**
 * End-to-end byte accounting: the rx/tx of traces and metrics are the bytes that really crossed
 * sidekick — `HEAD` and 204/304 answers count no body, chunked bodies their real length both
 * ways — and a response the backend breaks off before its declared length is visible: a trace
 * marker, `sidekick_responses_aborted_total{by="backend"}` and `sidekick_errors_total`, with one
 * data plane and with two (with `--verify-bodies` for a body too big to be read whole).
 */

import assert from "node:assert/strict";
import { startBackend, type TestBackend, waitFor } from "../helpers/backends.ts";
import { scrapeSum } from "../helpers/metrics_text.ts";
import { type SidekickProcess, startSidekick } from "../helpers/sidekick_process.ts";

const FAST = ["--health-path", "/health", "--health-duration", "100ms"];
const KiB = 1024;
const MiB = 1024 * KiB;

/** Lines of `sk`'s stdout that parse as JSON objects, health checks left out. */
function traces(sk: SidekickProcess): Record<string, unknown>[] {
  return sk.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .filter((l) => l.path !== "/health");
}

/** Waits for the one trace of `path` and returns it. */
async function traceOf(sk: SidekickProcess, path: string): Promise<Record<string, unknown>> {
  await waitFor(() => traces(sk).some((l) => l.path === path), `the trace of ${path}`);
  const found = traces(sk).filter((l) => l.path === path);
  assert.equal(found.length, 1, JSON.stringify(found));
  return found[0];
}

const callStats = (t: Record<string, unknown>) => t.callStats as { rx: number; tx: number };

/** The counter sum of `family{endpoint="…"` (and more labels when given). */
function counter(
  sk: SidekickProcess,
  family: string,
  endpoint: string,
  more = "",
): Promise<number> {
  return scrapeSum(sk.url, `${family}{endpoint="${endpoint}"${more}`);
}

/** Reads a response body to its end or its failure: the bytes that arrived, and whether it broke. */
async function drain(res: Response): Promise<{ bytes: number; broken: boolean }> {
  let bytes = 0;
  try {
    for await (const chunk of res.body!) bytes += chunk.byteLength;
    return { bytes, broken: false };
  } catch {
    return { bytes, broken: true };
  }
}

/**
 * A backend on a raw socket: `/health` answers 200; `/cut?declared=N&sent=M` answers 200 with
 * `Content-Length: N`, sends M bytes and closes the connection; `/drop` closes it unanswered.
 */
function startCuttingBackend(): { url: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    const enc = new TextEncoder();
    const buf = new Uint8Array(16 * KiB);
    let head = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) continue;
        const target = head.split(" ")[1] ?? "/";
        head = head.slice(end + 4); // requests here carry no body
        const url = new URL(target, "http://x");
        if (url.pathname === "/drop") return; // closed without an answer
        if (url.pathname !== "/cut") {
          await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
          continue;
        }
        const declared = Number(url.searchParams.get("declared"));
        const sent = Number(url.searchParams.get("sent"));
        await conn.write(enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${declared}\r\n\r\n`));
        for (let left = sent; left > 0; left -= 64 * KiB) {
          await conn.write(new Uint8Array(Math.min(left, 64 * KiB)).fill(120));
        }
        return;
      }
    } catch {
      // the peer went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

Deno.test("HEAD of a 20 MiB object and 204/304 answers count no body bytes", async () => {
  const b = await startBackend("b1");
  const sk = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    const head = await fetch(`${sk.url}/big?size=${20 * MiB}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(20 * MiB));
    await head.body?.cancel();
    for (const code of [204, 304]) {
      const res = await fetch(`${sk.url}/status?code=${code}`);
      assert.equal(res.status, code);
      await res.body?.cancel();
    }
    const small = await fetch(`${sk.url}/status?code=200`);
    assert.equal(await small.text(), "status from b1");

    const tx = callStats(await traceOf(sk, "/big")).tx;
    assert.ok(tx > 0 && tx < KiB, `HEAD tx ${tx}: the headers only`);
    await waitFor(() => traces(sk).length === 4, "four traces");
    const txOf = (code: string) =>
      traces(sk).filter((t) => t.query === `code=${code}`).map((t) => callStats(t).tx)[0];
    // The same headers minus the body: the 200's tx is the 204's plus its 14 body bytes and the
    // length of its own status text and headers; both stay far below a KiB.
    assert.ok(txOf("204") < KiB && txOf("304") < KiB, `${txOf("204")} ${txOf("304")}`);
    assert.ok(txOf("200") >= 14, `${txOf("200")}`);
    const total = await counter(sk, "sidekick_tx_bytes_total", b.url);
    assert.ok(total < 4 * KiB, `tx_bytes_total ${total}: no HEAD body counted`);
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("an upload answered with a declared empty body: Content-Length 0, pooled connections, rx counted", async () => {
  const b = await startBackend("b1");
  const sk = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    const body = new Uint8Array(64 * KiB);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${sk.url}/big?size=0&i=${i}`, { method: "PUT", body });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-length"), "0");
      assert.equal((await res.bytes()).byteLength, 0);
    }
    assert.equal(b.seen.length, 20);
    assert.ok(b.seen.every((s) => s.bodyBytes === 64 * KiB), "every upload arrived whole");
    // One pooled connection carries them (a second if a health check held the first).
    assert.ok(b.connections.size <= 2, `${b.connections.size} backend connections`);
    await waitFor(() => traces(sk).length === 20, "twenty traces");
    for (const t of traces(sk)) {
      const { rx, tx } = callStats(t);
      assert.ok(rx > 64 * KiB && rx < 65 * KiB, `rx ${rx}: the upload and its headers`);
      assert.ok(tx > 0 && tx < KiB, `tx ${tx}: the headers only`);
    }
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("a chunked 100 KiB download and a chunked 300 KB upload count their real length", async () => {
  const b = await startBackend("b1");
  const sk = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    const down = await fetch(`${sk.url}/stream?size=${100 * KiB}`);
    assert.equal(down.headers.get("content-length"), null);
    assert.deepEqual(await drain(down), { bytes: 100 * KiB, broken: false });

    let left = 300_000;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (left <= 0) return c.close();
        const n = Math.min(left, 32 * KiB);
        left -= n;
        c.enqueue(new Uint8Array(n).fill(7));
      },
    });
    const up = await fetch(`${sk.url}/echo`, { method: "PUT", body });
    const echo = await up.json();
    assert.equal(echo.bodyBytes, 300_000);
    assert.equal(echo.headers["content-length"], undefined, "still chunked upstream");

    const downTx = callStats(await traceOf(sk, "/stream")).tx;
    assert.ok(downTx >= 100 * KiB && downTx < 100 * KiB + KiB, `download tx ${downTx}`);
    const upRx = callStats(await traceOf(sk, "/echo")).rx;
    assert.ok(upRx >= 300_000 && upRx < 300_000 + KiB, `upload rx ${upRx}`);
    const rx = await counter(sk, "sidekick_rx_bytes_total", b.url);
    const tx = await counter(sk, "sidekick_tx_bytes_total", b.url);
    assert.ok(rx >= 300_000 && rx < 300_000 + 2 * KiB, `rx_bytes_total ${rx}`);
    assert.ok(tx >= 100 * KiB && tx < 100 * KiB + 2 * KiB, `tx_bytes_total ${tx}`);
  } finally {
    await sk.stop();
    await b.close();
  }
});

for (const workers of ["1", "2"]) {
  Deno.test(`--workers ${workers} --verify-bodies: a body the backend breaks off is traced as such and counted against it`, async () => {
    const b = startCuttingBackend();
    const flags = ["--workers", workers, "--verify-bodies", ...FAST];
    const json = await startSidekick([...flags, "--json", b.url]);
    const text = await startSidekick([...flags, "--trace", "application", b.url]);
    try {
      await Promise.all([json.waitHealthy(), text.waitHealthy()]);
      for (const sk of [json, text]) {
        // A declared 1 MiB body cut after 256 KiB, and a 10 KiB one cut after 1 KiB: both streamed.
        const big = await fetch(`${sk.url}/cut?declared=${MiB}&sent=${256 * KiB}`);
        assert.equal(big.status, 200);
        const got = await drain(big);
        assert.ok(got.broken && got.bytes <= 256 * KiB, JSON.stringify(got));
        const small = await fetch(`${sk.url}/cut?declared=${10 * KiB}&sent=${KiB}`);
        assert.equal(small.status, 200);
        assert.deepEqual(await drain(small), { bytes: KiB, broken: true });
      }

      const line = await text.waitForLine(/ \/cut\?declared=1048576/);
      assert.match(
        line,
        /\[200 OK\] .* ↓ 256 KiB {2}\(aborted by the backend after 256 KiB of 1\.0 MiB: .+\)$/,
      );
      const smallLine = await text.waitForLine(/ \/cut\?declared=10240/);
      assert.match(smallLine, /\(aborted by the backend after 1\.0 KiB of 10 KiB: .+\)$/);

      await waitFor(() => traces(json).length === 2, "two JSON traces");
      const [bigTrace, smallTrace] = ["declared=1048576", "declared=10240"].map((q) =>
        traces(json).find((t) => String(t.query).startsWith(q))!
      );
      assert.equal(bigTrace.statusCode, 200);
      assert.equal(bigTrace.aborted, "backend");
      assert.ok(typeof bigTrace.error === "string" && bigTrace.error !== "");
      const tx = callStats(bigTrace).tx;
      assert.ok(tx >= 256 * KiB && tx < 256 * KiB + KiB, `tx ${tx}: what got through`);
      assert.equal(smallTrace.aborted, "backend");
      const smallTx = callStats(smallTrace).tx;
      assert.ok(smallTx >= KiB && smallTx < 2 * KiB, `tx ${smallTx}: what got through`);

      for (const sk of [json, text]) {
        const aborted = await counter(
          sk,
          "sidekick_responses_aborted_total",
          b.url,
          ',by="backend"',
        );
        assert.equal(aborted, 2);
        assert.equal(await counter(sk, "sidekick_errors_total", b.url), 2);
        assert.equal(await counter(sk, "sidekick_requests_total", b.url), 2);
        const txTotal = await counter(sk, "sidekick_tx_bytes_total", b.url);
        assert.ok(txTotal >= 257 * KiB && txTotal < 257 * KiB + 2 * KiB, `${txTotal}`);
        const byClient = await counter(
          sk,
          "sidekick_responses_aborted_total",
          b.url,
          ',by="client"',
        );
        assert.equal(byClient, 0);
      }
    } finally {
      await Promise.all([json.stop(), text.stop()]);
      await b.close();
    }
  });
}

// When this test fails, the runtime has started to tell a broken HTTP/1.1 response from a complete
// one: the native path then sees breaks too (they arrive as a rejected `completed`), and the
// README's note on it ("A body passed through natively is blind to breaks") should say so.
Deno.test("without --verify-bodies: declared bodies pass natively, their breaks unseen over HTTP/1.1 (Deno 2.9.6)", async () => {
  const b = startCuttingBackend();
  const sk = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    const small = await fetch(`${sk.url}/cut?declared=${10 * KiB}&sent=${KiB}`);
    assert.deepEqual(await drain(small), { bytes: KiB, broken: true });
    const big = await fetch(`${sk.url}/cut?declared=${MiB}&sent=${256 * KiB}`);
    const got = await drain(big);
    assert.ok(got.broken, "the client still sees the break");
    await waitFor(() => traces(sk).length === 2, "two traces");
    for (const t of traces(sk)) {
      assert.equal(t.aborted, undefined, `${t.query}: not seen on the native path`);
    }
    assert.equal(await counter(sk, "sidekick_responses_aborted_total", b.url, ',by="backend"'), 0);
    // The native pass-through reports completion, and counts the declared length.
    await waitFor(
      async () => await counter(sk, "sidekick_requests_total", b.url) === 2,
      "both requests counted",
    );
    assert.equal(await counter(sk, "sidekick_errors_total", b.url), 0);
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("a client that leaves mid-download: counted as aborted by the client, no error, not traced", async () => {
  const b: TestBackend = await startBackend("b1");
  const sk = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    // Chunked, so counted as it passes (the runtime reports a native pass-through as complete).
    const res = await fetch(`${sk.url}/stream?size=${64 * MiB}`);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await waitFor(
      async () =>
        await counter(sk, "sidekick_responses_aborted_total", b.url, ',by="client"') === 1,
      "the abort counted",
    );
    assert.equal(await counter(sk, "sidekick_errors_total", b.url), 0);
    assert.equal(await counter(sk, "sidekick_requests_in_flight", b.url), 0);
    const tx = await counter(sk, "sidekick_tx_bytes_total", b.url);
    assert.ok(tx < 64 * MiB, `tx ${tx}: only what was passed on`);
    const done = await fetch(`${sk.url}/status?code=200`);
    await done.text();
    await traceOf(sk, "/status");
    assert.equal(traces(sk).filter((t) => t.path === "/stream").length, 0);
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("every way out of an exchange is recorded once and gives the backend back", async () => {
  const b = startCuttingBackend();
  const sk = await startSidekick(["--retries", "0", "--trace", "", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    // sidekick's own 502: the backend closed the connection without answering.
    const dropped = await fetch(`${sk.url}/drop`);
    assert.equal(dropped.status, 502);
    await dropped.body?.cancel();
    // An upload that ends before its Content-Length, the client gone: the client's fault.
    const port = Number(new URL(sk.url).port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode(
        "PUT /cut?declared=0&sent=0 HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nshort",
      ),
    );
    conn.close();
    // A whole answer read whole, and one the backend broke off.
    const small = await fetch(`${sk.url}/cut?declared=10&sent=10`);
    assert.deepEqual(await drain(small), { bytes: 10, broken: false });
    await waitFor(
      async () => await counter(sk, "sidekick_requests_total", b.url) === 3,
      "three exchanges recorded",
    );
    assert.equal(await counter(sk, "sidekick_errors_total", b.url), 1, "the 502 only");
    assert.equal(await counter(sk, "sidekick_requests_in_flight", b.url), 0);
    assert.equal(await counter(sk, "sidekick_request_duration_seconds_count", b.url), 3);
  } finally {
    await sk.stop();
    await b.close();
  }
});
