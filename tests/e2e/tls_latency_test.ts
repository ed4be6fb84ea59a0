/**
 * Latency of proxied responses over sidekick's HTTPS listener, on keep-alive connections sent by
 * curl over HTTP/1.1 and HTTP/2. A response whose body leaves in a write of its own after the head
 * waits for the client's delayed acknowledgement (about 40 ms) on a socket with Nagle's algorithm
 * on, which is what `Deno.serve` leaves TLS sockets with unless the listener has `TCP_NODELAY`:
 * each size, protocol, worker count and certificate source must answer at plain-TCP speed. Without
 * the FFI permission sidekick says so in one line and still serves, tiny bodies without a stall.
 */

import assert from "node:assert/strict";
import { sha256, startBackend, waitFor } from "../helpers/backends.ts";
import { RUN_ARGS, startSidekick } from "../helpers/sidekick_process.ts";
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
  /** Body bytes received. */
  bytes: number;
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
  cacert: string | undefined,
): Promise<Transfer[]> {
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-latency-" });
  try {
    const trust = cacert ? ["--cacert", cacert] : ["--insecure"];
    const args = ["--silent", "--show-error", "--max-time", "10", ...trust, protocol];
    args.push(
      "--write-out",
      "%{http_code} %{http_version} %{num_connects} %{time_total} %{size_download}\\n",
    );
    for (let i = 0; i < count; i++) args.push("--output", `${dir}/${i}`, url);
    const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    const lines = dec.decode(out.stdout).trim().split("\n");
    return await Promise.all(lines.map(async (line, i) => {
      const [status, version, connects, seconds, bytes] = line.split(" ");
      return {
        status: Number(status),
        version,
        connects: Number(connects),
        ms: Number(seconds) * 1000,
        bytes: Number(bytes),
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

/** Body sizes of the keep-alive latency matrix: below and above every buffer on the way. */
const SIZES = [600, 2_000, 20_000, 256 * 1024];
/** Bound on the median keep-alive request: a delayed-ACK stall alone is ~40 ms. */
const MEDIAN_BUDGET_MS = 10;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * For every size and protocol: ten requests on one connection through `sk`, the first (the
 * connection's set-up) left out; returns a line for each median over the budget.
 */
async function slowMedians(
  origin: string,
  cacert: string | undefined,
  http2 = true,
): Promise<string[]> {
  const slow: string[] = [];
  for (const size of SIZES) {
    for (const [protocol, version] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
      const url = `${origin}/big?size=${size}`;
      const transfers = await curlSequence(url, REQUESTS, protocol, cacert);
      for (const t of transfers) {
        assert.equal(t.status, 200);
        assert.equal(t.version, http2 ? version : "1.1");
        assert.equal(t.bytes, size);
      }
      assert.deepEqual(transfers.map((t) => t.connects), [1, ...Array(REQUESTS - 1).fill(0)]);
      const ms = median(transfers.slice(1).map((t) => t.ms));
      if (ms >= MEDIAN_BUDGET_MS) {
        slow.push(`${size} B ${protocol}: median ${ms.toFixed(1)} ms`);
      }
    }
  }
  return slow;
}

/** A sidekick over HTTPS in front of one backend, proxying once `origin` answers. */
interface TlsSidekick {
  /** `https://localhost:<port>`. */
  origin: string;
  /** Lines it printed on stdout. */
  stdout: string[];
  /** The certificate to trust (undefined for a generated one: curl --insecure). */
  cacert: string | undefined;
  /** Stops it and the backend; asserts exit status 0. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a backend and sidekick with `args` (before the SITE) and `tls` (`files` for the test
 * certificate, `auto` for `--auto-tls-host localhost`), under `runArgs`; resolves once a request
 * through it, offered over `protocol`, answers.
 */
async function tlsSidekick(
  args: string[],
  tls: "files" | "auto",
  protocol = "--http1.1",
  runArgs: readonly string[] = RUN_ARGS,
): Promise<TlsSidekick> {
  const c = await serverCerts();
  const backend = await startBackend("b1");
  const tlsArgs = tls === "files"
    ? ["--cert", c.aCert, "--key", c.aKey]
    : ["--auto-tls-host", "localhost"];
  const sk = await startSidekick(
    [...args, "--health-path", "/health", ...tlsArgs, backend.url],
    runArgs,
  );
  const origin = `https://localhost:${new URL(sk.url).port}`;
  const cacert = tls === "files" ? c.aCert : undefined;
  const stop = async () => {
    const status = await sk.stop();
    await backend.close();
    assert.equal(status.code, 0);
  };
  try {
    await waitFor(async () => {
      const [t] = await curlSequence(`${origin}/object`, 1, protocol, cacert);
      return t.status === 200 && t.body === "b1";
    }, "sidekick proxying over https");
  } catch (e) {
    await stop();
    throw e;
  }
  return { origin, stdout: sk.stdout, cacert, [Symbol.asyncDispose]: stop };
}

for (const workers of ["1", "2"]) {
  for (const [source, tls] of [["--cert/--key", "files"], ["--auto-tls-host", "auto"]] as const) {
    Deno.test(`${source}, --workers ${workers}: the median keep-alive request is under ${MEDIAN_BUDGET_MS} ms for 600 B to 256 KiB bodies, HTTP/1.1 and HTTP/2`, async () => {
      await using sk = await tlsSidekick(["--workers", workers], tls);
      assert.ok(
        !sk.stdout.some((l) => /may wait/.test(l)),
        `no latency warning expected:\n${sk.stdout.join("\n")}`,
      );
      const slow = await slowMedians(sk.origin, sk.cacert);
      assert.deepEqual(slow, [], `over the ${MEDIAN_BUDGET_MS} ms median:\n${slow.join("\n")}`);
    });
  }
}

Deno.test("without --allow-ffi: one line says HTTPS responses may wait, and sidekick serves anyway, tiny bodies without a stall", async () => {
  const noFfi = RUN_ARGS.filter((a) => a !== "--allow-ffi");
  await using sk = await tlsSidekick(["--workers", "2"], "files", "--http1.1", noFfi);
  const warnings = sk.stdout.filter((l) => /may wait/.test(l));
  assert.deepEqual(warnings, [
    "sidekick: TLS responses above 512 bytes may wait ~40 ms: " +
    "setting TCP_NODELAY on the listener needs --allow-ffi",
  ]);
  const transfers = await curlSequence(`${sk.origin}/object`, REQUESTS, "--http1.1", sk.cacert);
  const ms = median(transfers.slice(1).map((t) => t.ms));
  assert.ok(ms < MEDIAN_BUDGET_MS, `tiny bodies: median ${ms.toFixed(1)} ms`);
});

Deno.test("--no-http2, --workers 2: HTTP/1.1 even for clients that offer HTTP/2, at plain-TCP latency; uploads arrive intact", async () => {
  await using sk = await tlsSidekick(["--workers", "2", "--no-http2"], "files", "--http2");
  const origin = sk.origin;
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-h1-" });
  try {
    const slow = await slowMedians(origin, sk.cacert, false);
    assert.deepEqual(slow, [], `over the ${MEDIAN_BUDGET_MS} ms median:\n${slow.join("\n")}`);
    // A 4 MiB upload offered over HTTP/2 goes up over HTTP/1.1 and reaches the backend intact.
    const upload = new Uint8Array(4 << 20).map((_, i) => (i * 7) & 0xff);
    await Deno.writeFile(`${dir}/up`, upload);
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--cacert",
        sk.cacert!,
        "--http2",
        "--data-binary",
        `@${dir}/up`,
        "-o",
        `${dir}/down`,
        "-w",
        "%{http_code} %{http_version}",
        `${origin}/echo`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(dec.decode(out.stdout), "200 1.1", dec.decode(out.stderr));
    const echoed = JSON.parse(await Deno.readTextFile(`${dir}/down`));
    assert.equal(echoed.bodyBytes, upload.length);
    assert.equal(echoed.bodySha256, await sha256(upload));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
