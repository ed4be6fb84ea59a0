/**
 * Test backends: real `Deno.serve` servers on 127.0.0.1 port 0 that answer with their own name,
 * expose a health endpoint whose status can be switched, and can echo, hang, or serve big bodies
 * on demand. Used by every test instead of ad-hoc servers.
 * @module
 */

/** What a test backend saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: Headers;
  bodyBytes: number;
  bodySha256: string;
}

/** A controllable test backend. */
export interface TestBackend {
  /** Its name, returned as the body of `GET /`-style requests. */
  readonly name: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The status its health path answers (200 = healthy). */
  healthStatus: number;
  /** Requests it received (health checks excluded). */
  readonly seen: Seen[];
  /** Health checks it received. */
  healthChecks: number;
  /** Client ports of the connections requests arrived on (health checks excluded). */
  readonly connections: Set<number>;
  /** Requests currently being handled (health checks excluded). */
  inflight: number;
  /** Resolves when the next request whose upstream was cancelled by sidekick is noticed. */
  readonly aborted: Promise<void>[];
  /** Stops the server (connections closed). */
  close(): Promise<void>;
}

/** Hex SHA-256 of bytes. */
export async function sha256(data: Uint8Array | ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as ArrayBuffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A stream of `size` deterministic pseudo-random bytes, produced in 64 KiB chunks. */
export function patternStream(size: number, seed = 1): ReadableStream<Uint8Array> {
  let sent = 0;
  let x = seed >>> 0 || 1;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(65536, size - sent);
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk[i] = x & 0xff;
      }
      sent += n;
      controller.enqueue(chunk);
    },
  });
}

/** Reads a stream to the end, returning its byte count and SHA-256. */
export async function digestStream(
  stream: ReadableStream<Uint8Array> | null,
): Promise<{ bytes: number; sha256: string }> {
  if (!stream) return { bytes: 0, sha256: await sha256(new Uint8Array()) };
  const parts: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    parts.push(chunk);
    bytes += chunk.length;
  }
  const all = new Uint8Array(bytes);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return { bytes, sha256: await sha256(all) };
}

/**
 * Starts a backend. Paths:
 * - `<healthPath>` (default `/health`): `healthStatus`, empty body.
 * - `/echo`: JSON of method, url, headers, body size and sha256.
 * - `/big?size=N`: N pattern bytes with `Content-Length`.
 * - `/gzip`: a fixed gzip body with `Content-Encoding: gzip`.
 * - `/hang`: never answers until the client goes away.
 * - `/slow?ms=N`: answers after N ms, streaming the body over that time.
 * - `/status?code=N`: answers with status N.
 * - `/redirect`: 302 to `/elsewhere`.
 * - `/reject`: 403 at once, without reading the request body.
 * - anything else: the backend's name.
 */
export function startBackend(
  name: string,
  options: { healthPath?: string; port?: number; hostname?: string } = {},
): Promise<TestBackend> {
  const healthPath = options.healthPath ?? "/health";
  const abortedResolvers: (() => void)[] = [];
  const aborted: Promise<void>[] = [];
  const nextAborted = () => {
    aborted.push(new Promise<void>((r) => abortedResolvers.push(r)));
  };
  nextAborted();
  return new Promise((resolve) => {
    const backend: TestBackend = {
      name,
      url: "",
      port: 0,
      healthStatus: 200,
      seen: [],
      healthChecks: 0,
      connections: new Set<number>(),
      inflight: 0,
      aborted,
      close: async () => {
        controller.abort();
        await server.finished;
      },
    };
    const controller = new AbortController();
    const server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      signal: controller.signal,
      onListen: ({ port }) => {
        const host = (options.hostname ?? "127.0.0.1").includes(":")
          ? `[${options.hostname}]`
          : options.hostname ?? "127.0.0.1";
        Object.assign(backend, { port, url: `http://${host}:${port}` });
        resolve(backend);
      },
    }, async (req, info) => {
      const url = new URL(req.url);
      if (url.pathname === healthPath) {
        backend.healthChecks++;
        return new Response(null, { status: backend.healthStatus });
      }
      backend.connections.add(info.remoteAddr.port);
      if (url.pathname === "/reject") {
        // Answers at once without reading the upload (an S3 403 before the body).
        return new Response("denied", { status: 403 });
      }
      backend.inflight++;
      try {
        const body = await digestStream(req.body).catch(() => ({ bytes: -1, sha256: "" }));
        const seen: Seen = {
          method: req.method,
          url: req.url,
          headers: req.headers,
          bodyBytes: body.bytes,
          bodySha256: body.sha256,
        };
        backend.seen.push(seen);
        switch (url.pathname) {
          case "/echo":
            return Response.json({
              name,
              method: req.method,
              url: req.url,
              headers: Object.fromEntries(req.headers),
              bodyBytes: body.bytes,
              bodySha256: body.sha256,
            });
          case "/big": {
            const size = Number(url.searchParams.get("size") ?? "0");
            return new Response(patternStream(size), {
              headers: { "content-length": String(size) },
            });
          }
          case "/gzip":
            return new Response(GZIP_HELLO, {
              headers: { "content-encoding": "gzip", "content-type": "text/plain" },
            });
          case "/hang":
            await new Promise<void>((r) => req.signal.addEventListener("abort", () => r()));
            abortedResolvers.shift()?.();
            nextAborted();
            return new Response("too late");
          case "/slow": {
            const ms = Number(url.searchParams.get("ms") ?? "500");
            await new Promise((r) => setTimeout(r, ms));
            return new Response(`${name} slow`);
          }
          case "/redirect":
            return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
          case "/status":
            return new Response(`status from ${name}`, {
              status: Number(url.searchParams.get("code") ?? "200"),
            });
          default:
            return new Response(name, {
              headers: {
                "set-cookie": "a=1",
                "x-multi": "one",
                "connection": "x-secret-hop",
                "x-secret-hop": "leak",
              },
            });
        }
      } finally {
        backend.inflight--;
      }
    });
  });
}

/** Starts `n` backends named `b1`…`bn`. */
export function startBackends(
  n: number,
  options: { healthPath?: string } = {},
): Promise<TestBackend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startBackend(`b${i + 1}`, options)));
}

/** "hello, gzip\n" gzip-compressed (fixed bytes, so tests can compare them exactly). */
export const GZIP_HELLO: Uint8Array<ArrayBuffer> = new Uint8Array([
  0x1f,
  0x8b,
  0x08,
  0x00,
  0x00,
  0x00,
  0x00,
  0x00,
  0x02,
  0x03,
  0xcb,
  0x48,
  0xcd,
  0xc9,
  0xc9,
  0xd7,
  0x51,
  0x48,
  0xaf,
  0xca,
  0x2c,
  0xe0,
  0x02,
  0x00,
  0x86,
  0x1f,
  0x82,
  0xa4,
  0x0c,
  0x00,
  0x00,
  0x00,
]);

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Polls `condition` every 10 ms until true or `timeoutMs` passes (then throws `what`). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Sends raw bytes on a new connection and returns everything read until the server closes, as a
 * binary string (one char per byte, so bodies compare byte for byte).
 */
export async function rawRequest(port: number, text: string, timeoutMs = 5_000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    await conn.write(new TextEncoder().encode(text));
    const chunks: string[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(String.fromCharCode(...buf.subarray(0, n)));
    }
    return chunks.join("");
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}
