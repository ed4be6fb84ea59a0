/**
 * Latency of small proxied responses over the `--cert/--key` listener: ten requests on one
 * keep-alive TLS connection, sent by curl over HTTP/1.1 and over HTTP/2, must take well under
 * 150 ms in all. A response whose body leaves in a write of its own after the head waits for the
 * client's delayed acknowledgement (about 40 ms) on a socket with Nagle's algorithm on, which is
 * what `Deno.serve` leaves TLS sockets with; ten such responses take over 400 ms.
 */

import assert from "node:assert/strict";
import { startBackend, waitFor } from "../helpers/backends.ts";
import { startSidekick } from "../helpers/sidekick_process.ts";
import { serverCerts } from "../helpers/server_certs.ts";

/** Requests per connection. */
const REQUESTS = 10;
/** Bound on the time of all of them together: a single stall each would take about 400 ms. */
const BUDGET_MS = 150;

/** One transfer as curl reports it. */
interface Transfer {
  status: number;
  version: string;
  connects: number;
  ms: number;
  body: string;
}

/**
 * Fetches `url` `count` times in one curl run (so on one connection, which curl reuses), with
 * `protocol` (`--http1.1` or `--http2`); returns each transfer.
 */
async function curlSequence(
  url: string,
  count: number,
  protocol: string,
  cacert: string,
): Promise<Transfer[]> {
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-latency-" });
  try {
    const args = ["--silent", "--show-error", "--max-time", "10", "--cacert", cacert, protocol];
    args.push("--write-out", "%{http_code} %{http_version} %{num_connects} %{time_total}\\n");
    for (let i = 0; i < count; i++) args.push("--output", `${dir}/${i}`, url);
    const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    const lines = dec.decode(out.stdout).trim().split("\n");
    return await Promise.all(lines.map(async (line, i) => {
      const [status, version, connects, seconds] = line.split(" ");
      return {
        status: Number(status),
        version,
        connects: Number(connects),
        ms: Number(seconds) * 1000,
        body: await Deno.readTextFile(`${dir}/${i}`),
      };
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("--cert/--key: ten small responses on one TLS connection take well under 150 ms, HTTP/1.1 and HTTP/2", async () => {
  const c = await serverCerts();
  const pem = Deno.readTextFileSync(c.aCert);
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--health-path",
    "/health",
    "--cert",
    c.aCert,
    "--key",
    c.aKey,
    backend.url,
  ]);
  try {
    const origin = `https://localhost:${new URL(sk.url).port}`;
    using client = Deno.createHttpClient({ caCerts: [pem] });
    // Once the backend is up, one proxied request warms the proxy path and its backend
    // connection, so what is timed below is the steady state of a client connection.
    await waitFor(async () => {
      const res = await fetch(`${origin}/object`, { client }).catch(() => null);
      const text = await res?.text();
      return res?.status === 200 && text === "b1";
    }, "sidekick proxying over https");

    const slow: string[] = [];
    for (const [protocol, version] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
      const transfers = await curlSequence(`${origin}/object`, REQUESTS, protocol, c.aCert);
      assert.equal(transfers.length, REQUESTS);
      for (const t of transfers) {
        assert.equal(t.status, 200);
        assert.equal(t.version, version);
        assert.equal(t.body, "b1");
      }
      // All on one connection: only the first transfer connected.
      assert.deepEqual(transfers.map((t) => t.connects), [1, ...Array(REQUESTS - 1).fill(0)]);
      const total = transfers.reduce((sum, t) => sum + t.ms, 0);
      if (total >= BUDGET_MS) {
        slow.push(
          `${protocol}: ${REQUESTS} requests took ${total.toFixed(1)} ms ` +
            `(${transfers.map((t) => t.ms.toFixed(1)).join(", ")} ms each)`,
        );
      }
    }
    // Both protocols are measured before judging, so a failure reports each of them.
    assert.deepEqual(slow, [], `over the ${BUDGET_MS} ms budget:\n${slow.join("\n")}`);
  } finally {
    const status = await sk.stop();
    await backend.close();
    assert.equal(status.code, 0);
  }
});
