/**
 * Test backends: real `Deno.serve` servers on 127.0.0.1 port 0 that answer with their own name,
 * expose a health endpoint whose status can be switched, and can echo, hang, stream, or serve big
 * bodies on demand; given a certificate and key they serve https. Used by every test instead of
 * ad-hoc servers.
 * @module
 */

/** What a test backend saw of one request. */
export interface Seen {
  method: string;
  /** The full request URL (`http://127.0.0.1:<port>/p?q`). */
  url: string;
  /** Path and query (`/p?q`). */
  path: string;
  headers: Headers;
  bodyBytes: number;
  bodySha256: string;
}

/** A controllable test backend. */
export interface TestBackend {
  /** Its name, returned as the body of `GET /`-style requests. */
  readonly name: string;
  /** `http://<hostname>:<port>`, or `https://<urlHost>:<port>` when serving TLS. */
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
  /**
   * Gray failure: every request (health checks excepted) waits for its client to go away, never
   * answering, while the health path still answers `healthStatus`.
   */
  hang: boolean;
  /** Every request (health checks excepted) waits this long before its response headers, ms. */
  delayMs: number;
  /**
   * Every request (health checks excepted) gets its headers and a first chunk, then the body
   * stalls until the client goes away.
   */
  stallMidBody: boolean;
  /** Lets `/gate` responses send their second chunk. */
  openGate(): void;
  /** Stops the server (connections closed). */
  close(): Promise<void>;
}

/** How to start a test backend. */
export interface BackendOptions {
  /** The health path (default `/health`). */
  healthPath?: string;
  /** The port (default 0: any free one). */
  port?: number;
  /** The address to listen on (default `127.0.0.1`). */
  hostname?: string;
  /** PEM certificate: with `key`, the backend serves https. */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
  /** The host written in `url` (default: `hostname`, bracketed if IPv6). */
  urlHost?: string;
  /** Where `/redirect` points (default `/elsewhere`). */
  redirectTo?: string;
  /**
   * Headers of the default route's answer (default: `set-cookie: a=1`, `x-multi: one`, and
   * `x-secret-hop`, named in `Connection`).
   */
  headers?: HeadersInit;
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
 * - `/echo`: JSON of name, method, url, path, headers, body size and sha256.
 * - `/big?size=N`: N pattern bytes with `Content-Length`.
 * - `/stream?size=N`: N pattern bytes without a length (chunked).
 * - `/chunks?n=N`: N 1 KiB chunks, 20 ms apart, no length.
 * - `/gate`: `first`, then `second` once `openGate()` was called.
 * - `/gzip`: a fixed gzip body with `Content-Encoding: gzip`.
 * - `/hang`: never answers until the client goes away.
 * - `/slow?ms=N`: answers after N ms, streaming the body over that time.
 * - `/status?code=N`: answers with status N (no body for 204, 205, 304).
 * - `/redirect`: 302 to `redirectTo` (default `/elsewhere`).
 * - `/reject`: 403 at once, without reading the request body.
 * - anything else: the backend's name, with `headers`.
 */
export function startBackend(name: string, options: BackendOptions = {}): Promise<TestBackend> {
  const healthPath = options.healthPath ?? "/health";
  const hostname = options.hostname ?? "127.0.0.1";
  const urlHost = options.urlHost ?? (hostname.includes(":") ? `[${hostname}]` : hostname);
  const tls = options.cert !== undefined && options.key !== undefined
    ? { cert: options.cert, key: options.key }
    : undefined;
  const defaultHeaders: HeadersInit = options.headers ?? [
    ["set-cookie", "a=1"],
    ["x-multi", "one"],
    ["connection", "x-secret-hop"],
    ["x-secret-hop", "leak"],
  ];
  const abortedResolvers: (() => void)[] = [];
  const aborted: Promise<void>[] = [];
  const nextAborted = () => {
    aborted.push(new Promise<void>((r) => abortedResolvers.push(r)));
  };
  nextAborted();
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
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
      hang: false,
      delayMs: 0,
      stallMidBody: false,
      openGate,
      close: async () => {
        controller.abort();
        await server.finished;
      },
    };
    const controller = new AbortController();
    const server = Deno.serve({
      hostname,
      port: options.port ?? 0,
      ...tls,
      signal: controller.signal,
      onListen: ({ port }) => {
        Object.assign(backend, { port, url: `${tls ? "https" : "http"}://${urlHost}:${port}` });
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
          path: url.pathname + url.search,
          headers: req.headers,
          bodyBytes: body.bytes,
          bodySha256: body.sha256,
        };
        backend.seen.push(seen);
        if (backend.hang) {
          await new Promise<void>((r) => req.signal.addEventListener("abort", () => r()));
          return new Response("too late");
        }
        if (backend.delayMs > 0) await new Promise((r) => setTimeout(r, backend.delayMs));
        if (backend.stallMidBody) {
          return new Response(
            new ReadableStream<Uint8Array>({
              start(c) {
                c.enqueue(new TextEncoder().encode(`${name} first chunk`));
                req.signal.addEventListener("abort", () => c.close());
              },
            }),
          );
        }
        switch (url.pathname) {
          case "/echo":
            return Response.json({ name, ...seen, headers: Object.fromEntries(req.headers) });
          case "/big": {
            const size = Number(url.searchParams.get("size") ?? "0");
            return new Response(patternStream(size), {
              headers: { "content-length": String(size) },
            });
          }
          case "/stream":
            return new Response(patternStream(Number(url.searchParams.get("size") ?? "0")));
          case "/chunks": {
            let left = Number(url.searchParams.get("n") ?? "5");
            return new Response(
              new ReadableStream<Uint8Array>({
                async pull(c) {
                  if (left-- <= 0) return c.close();
                  await new Promise((r) => setTimeout(r, 20));
                  c.enqueue(new Uint8Array(1024).fill(97));
                },
              }),
            );
          }
          case "/gate": {
            const enc = new TextEncoder();
            return new Response(
              new ReadableStream<Uint8Array>({
                async start(c) {
                  c.enqueue(enc.encode("first"));
                  await gate;
                  c.enqueue(enc.encode("second"));
                  c.close();
                },
              }),
            );
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
            return new Response(null, {
              status: 302,
              headers: { location: options.redirectTo ?? "/elsewhere" },
            });
          case "/status": {
            const status = Number(url.searchParams.get("code") ?? "200");
            const bodyless = status === 204 || status === 205 || status === 304;
            return new Response(bodyless ? null : `status from ${name}`, { status });
          }
          default:
            return new Response(name, { headers: defaultHeaders });
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
