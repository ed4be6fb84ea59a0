/**
 * The smallest useful Deno HTTP proxy: `Deno.serve` plus `fetch` to the backends in turn, hop-by-hop
 * headers stripped, bodies streamed both ways, no health checks, no metrics, no traces. The
 * benchmark runs it next to sidekick as the runtime's floor: whatever sidekick costs beyond this
 * is sidekick's own work.
 *
 *   deno run -A --unstable-net bench/bare_proxy.ts --port 8080 [--hostname 127.0.0.1] \
 *     [--workers N] [--cert cert.pem --key key.pem] [--duties] http://127.0.0.1:9001 ...
 *
 * `--workers N` (N > 1) serves from N Web Workers that share the port through `reusePort`, so the
 * kernel spreads connections over N isolates (Linux; needs `--unstable-net`). With `--cert` and
 * `--key` it serves HTTPS, HTTP/1.1 and HTTP/2, with `TCP_NODELAY` set on the listener as sidekick
 * does (Linux, `--allow-ffi`). `--duties` adds what sidekick must do per request beyond a bare
 * proxy (see {@linkcode bareHandler}): the floor of its obligations rather than of the runtime. It
 * prints `listening on <url>` once every isolate listens.
 * @module
 */

import { parseArgs } from "node:util";
import { setListenerNoDelay } from "../lib/tls/listener_nodelay.ts";

/** Headers that describe one connection, not the message, and so must not cross a proxy. */
export const HOP_BY_HOP: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/** A copy of `headers` without hop-by-hop headers, including those named by `Connection`. */
export function endToEndHeaders(headers: Headers): Headers {
  const out = new Headers(headers);
  for (const name of (headers.get("connection") ?? "").split(",")) {
    if (name.trim()) out.delete(name.trim());
  }
  for (const name of HOP_BY_HOP) out.delete(name);
  return out;
}

/** What one serving isolate needs to know. */
export interface BareProxyOptions {
  /** Listen address. */
  hostname: string;
  /** Listen port. */
  port: number;
  /** Backend origins, `http://host:port`, used in turn. */
  backends: string[];
  /** PEM certificate and key: serve HTTPS when both are set. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Share the port with other isolates (Linux, `--unstable-net`). */
  reusePort: boolean;
  /** Also do sidekick's per-request duties (see {@linkcode bareHandler}). */
  duties?: boolean;
}

/** The headers of `headers` as a list without hop-by-hop ones, in one `forEach` pass. */
function endToEndList(headers: Headers, skip: readonly string[] = []): [string, string][] {
  const named = (headers.get("connection") ?? "").toLowerCase().split(",").map((t) => t.trim());
  const out: [string, string][] = [];
  headers.forEach((value, name) => {
    if (!HOP_BY_HOP.includes(name) && !named.includes(name) && !skip.includes(name)) {
      out.push([name, value]);
    }
  });
  return out;
}

/** Whether sidekick keeps a body of this `Content-Length` for a retry (`--retry-buffer`, 1 MiB). */
function keepable(length: string | null): boolean {
  return length !== null && Number(length) <= 1 << 20;
}

/**
 * A request handler forwarding each request to the next backend in turn. With `duties`, it also
 * does what sidekick must do per request and a bare proxy need not — the floor of sidekick's
 * obligations rather than of the runtime, to tell them from the cost of sidekick's own code: the
 * client's `Host` kept (an HTTP client that allows it), `X-Forwarded-Host`, `X-Real-IP`,
 * `X-Forwarded-For` and `Accept-Encoding: identity` added, a fetch that can be cancelled (an
 * `AbortController` signal), `X-Proxy` and `Server` on the answer, the server's completion of
 * the response awaited, and the body of a `PUT` with a `Content-Length` up to 1 MiB read whole
 * before it is sent (sidekick keeps such a body so that a retry can send it again; `req.bytes()`,
 * the cheapest read the runtime offers). Its headers go as plain lists built in one `forEach` pass
 * (the cheapest way the runtime offers), so that it is a floor, not a straw man.
 */
export function bareHandler(
  backends: string[],
  duties = false,
): (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
  let next = 0;
  const client = duties ? Deno.createHttpClient({ allowHost: true, http2: false }) : undefined;
  const ignore = () => {};
  return async (req, info) => {
    const url = new URL(req.url);
    const backend = backends[next];
    next = (next + 1) % backends.length;
    try {
      if (duties) {
        const ip = info.remoteAddr.hostname;
        const headers = endToEndList(req.headers, ["host", "accept-encoding"]);
        headers.push(
          ["host", url.host],
          ["x-forwarded-host", url.host],
          ["x-real-ip", ip],
          ["x-forwarded-for", ip],
          ["accept-encoding", "identity"],
        );
        const res = await fetch(backend + url.pathname + url.search, {
          method: req.method,
          headers,
          body: req.method === "PUT" && keepable(req.headers.get("content-length"))
            ? await req.bytes()
            : req.body,
          redirect: "manual",
          signal: new AbortController().signal,
          client,
        });
        const out = endToEndList(res.headers);
        out.push(["x-proxy", "true"]);
        if (!res.headers.has("server")) out.push(["server", "SideKick"]);
        info.completed.then(ignore, ignore);
        return new Response(res.body, {
          status: res.status,
          statusText: res.statusText,
          headers: out,
        });
      }
      const headers = endToEndHeaders(req.headers);
      // fetch derives Host from the URL; a copied Host would name the proxy instead.
      headers.delete("host");
      const res = await fetch(backend + url.pathname + url.search, {
        method: req.method,
        headers,
        body: req.body,
        redirect: "manual",
      });
      return new Response(res.body, {
        status: res.status,
        statusText: res.statusText,
        headers: endToEndHeaders(res.headers),
      });
    } catch {
      await req.body?.cancel().catch(() => {});
      return new Response("bad gateway\n", { status: 502 });
    }
  };
}

/** Serves `opts` in this isolate; resolves once it listens. */
export function serveBare(opts: BareProxyOptions): Promise<Deno.HttpServer> {
  // onListen runs inside Deno.serve, before it returns the server.
  const listening = Promise.withResolvers<void>();
  const tls = opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {};
  const server = Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    reusePort: opts.reusePort,
    ...tls,
    onListen: () => listening.resolve(),
    onError: () => new Response("proxy error\n", { status: 502 }),
  }, bareHandler(opts.backends, opts.duties));
  return listening.promise.then(() => {
    // The one fix sidekick also makes, so that the TLS floor is not the stalled runtime default:
    // TCP_NODELAY on the listener (accepted TLS connections inherit it; Deno.serve sets it only
    // on plain-TCP ones). Without it every HTTPS response above a few hundred bytes waits ~40 ms.
    if (opts.cert && opts.key) {
      const set = setListenerNoDelay(server.addr.port);
      if (!set.ok) console.error(`bare proxy: TLS responses may be delayed: ${set.error}`);
    }
    return server;
  });
}

const WORKER_NAME = "bare-proxy-worker";

// Each worker is this module again: it receives its options from the main isolate and reports
// back once it listens, so the main isolate can announce one ready line for all of them.
if ((globalThis as { name?: string }).name === WORKER_NAME) {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<BareProxyOptions>) => void) | null;
    postMessage(msg: unknown): void;
  };
  scope.onmessage = async (e) => {
    scope.onmessage = null;
    await serveBare(e.data);
    scope.postMessage("listening");
  };
} else if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      hostname: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8080" },
      workers: { type: "string", default: "1" },
      cert: { type: "string" },
      key: { type: "string" },
      duties: { type: "boolean", default: false },
    },
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || positionals.length === 0) {
    console.error(
      "usage: bare_proxy.ts --port P [--workers N] [--cert F --key F] [--duties] BACKEND...",
    );
    Deno.exit(2);
  }
  const opts: BareProxyOptions = {
    hostname: values.hostname,
    port: Number(values.port),
    backends: positionals.map((b) => b.replace(/\/+$/, "")),
    cert: values.cert ? await Deno.readTextFile(values.cert) : undefined,
    key: values.key ? await Deno.readTextFile(values.key) : undefined,
    reusePort: workers > 1,
    duties: values.duties,
  };
  if (workers === 1) {
    await serveBare(opts);
  } else {
    await Promise.all(Array.from({ length: workers }, () => {
      const w = new Worker(import.meta.url, { type: "module", name: WORKER_NAME });
      const ready = new Promise<void>((resolve, reject) => {
        w.onmessage = () => resolve();
        w.onerror = (e) => reject(new Error(e.message));
      });
      w.postMessage(opts);
      return ready;
    }));
  }
  const scheme = opts.cert ? "https" : "http";
  console.log(`listening on ${scheme}://${opts.hostname}:${opts.port} (${workers} isolate(s))`);
}
