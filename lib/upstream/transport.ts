/**
 * How bytes reach a backend. Proxied traffic and health checks share one {@linkcode Transport},
 * as in the Go sidekick. Which path a request takes depends on its URL:
 *
 * | URL                                   | path                                                   |
 * | ------------------------------------- | ------------------------------------------------------ |
 * | `http://<ip>`                          | `fetch` with one `Deno.HttpClient`                      |
 * | `http://<name>` (DNS cache on)         | `fetch` to `http://<cached address>`, `Host: <name>`     |
 * | `https://<ip>`                         | `fetch` (`--cacert` → `caCerts`, mTLS `cert`/`key`)      |
 * | `https://<name>` (DNS cache on)        | Node `https`, connecting to cached addresses            |
 * | `https://<ip>` of an rr-dns site       | Node `https`, verified against the original hostname   |
 * | any `https` with `--insecure`          | Node `https` with `rejectUnauthorized: false`           |
 *
 * Why two paths: see `node_transport.ts`. Both stream bodies both ways, keep the caller's `Host`,
 * never decompress, and fail with errors `fetch_errors.ts` classifies. When an `HTTP(S)_PROXY`
 * environment variable applies to a hostname, addresses are not pinned: the proxy resolves it.
 * @module
 */

import { type DnsCache, DnsLookupError, isIpHost, urlHost } from "./dns.ts";
import { classifyFetchError } from "./fetch_errors.ts";
import { createNodeHttpsFetch, nextHop } from "./node_transport.ts";
import { type BackendTls, httpClientTlsOptions } from "../tls/backend_tls.ts";

/** Sends requests to backends. */
export interface Transport {
  /**
   * One HTTP exchange; rejects on transport failure (see `fetch_errors.ts`). `origin`, when the
   * caller knows it, is `url`'s origin (`http://host:port`), spared from being cut out of `url`.
   * `init` is this exchange's own: the transport may add to it (its HTTP client) instead of
   * copying it.
   */
  fetch(url: string, init: RequestInit, origin?: string): Promise<Response>;
  /** Closes pooled connections. */
  close(): void;
}

/** Options of {@linkcode createTransport}. */
export interface TransportOptions {
  /** Idle pooled connections are closed after this many ms (Go sidekick: 15 s). */
  poolIdleTimeoutMs?: number;
  /** TLS towards https backends; default: system roots, no client certificate, verified. */
  tls?: Partial<BackendTls>;
  /** Resolve hostname endpoints through this cache and connect to its addresses. */
  dns?: DnsCache;
  /** Reads an environment variable (proxy settings); default `Deno.env.get`, errors → unset. */
  env?: (name: string) => string | undefined;
}

/** A transport that also knows rr-dns TLS names. */
export interface BackendTransport extends Transport {
  /**
   * Records that https connections to these URL hosts (`10.0.0.7`, `[::1]`) verify and send SNI
   * for the mapped hostname (rr-dns mode). Entries are added, never removed.
   */
  addServerNames(names: ReadonlyMap<string, string>): void;
}

/** The idle timeout of pooled upstream connections: below MinIO's and most servers' defaults. */
export const POOL_IDLE_TIMEOUT_MS = 15_000;

/** Whether `fetch` reports a failure to open a connection (nothing was sent). */
function connectFailed(e: unknown): boolean {
  const f = classifyFetchError(e);
  return f.beforeSend;
}

/** Deno's `NO_PROXY` rule for a hostname: `*`, the name itself, or a parent domain. */
export function noProxyMatches(noProxy: string, host: string): boolean {
  const name = host.toLowerCase();
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    const domain = entry.startsWith(".") ? entry.slice(1) : entry;
    if (name === domain || name.endsWith("." + domain)) return true;
  }
  return false;
}

/** Whether `fetch` would send a request for `url` through a proxy from the environment. */
export function envProxyApplies(url: URL, env: (name: string) => string | undefined): boolean {
  const scheme = url.protocol === "https:" ? "https" : "http";
  const pick = (name: string) => env(name.toUpperCase()) || env(name) || "";
  // Deno ignores HTTP_PROXY under CGI (REQUEST_METHOD set), against header injection.
  const cgi = scheme === "http" && env("REQUEST_METHOD") !== undefined;
  const proxy = pick("all_proxy") || (cgi ? "" : pick(`${scheme}_proxy`));
  if (!proxy) return false;
  return !noProxyMatches(pick("no_proxy"), url.hostname);
}

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: as if unset
  }
}

/** The transport of one sidekick; see the module documentation for the routing. */
export function createTransport(options: TransportOptions = {}): BackendTransport {
  const idle = options.poolIdleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS;
  const tls: BackendTls = { caCerts: [], cert: "", key: "", insecure: false, ...options.tls };
  const dns = options.dns;
  const env = options.env ?? defaultEnv;
  const base: Deno.CreateHttpClientOptions = {
    allowHost: true,
    http2: false,
    poolIdleTimeout: idle,
    ...httpClientTlsOptions(tls),
  };
  const client = Deno.createHttpClient(base);
  const serverNames = new Map<string, string>();

  /** Per hostname:port, the address that last connected (tried first next time). */
  const preferred = new Map<string, string>();

  /**
   * Origins whose requests take the plain `fetch` path, decided once per origin: the decision
   * depends only on the origin, and parsing a URL per request is a cost of the hot path.
   */
  const plainOrigins = new Set<string>();

  /** Routes one request (see the module documentation); `redirects`: hops already followed. */
  function dispatch(
    url: string,
    init: RequestInit,
    redirects: number,
    origin = url.slice(0, url.indexOf("/", url.indexOf("//") + 2) >>> 0),
  ): Promise<Response> {
    if (plainOrigins.has(origin)) return fetch(url, withClient(init));
    const u = new URL(url);
    const named = !isIpHost(u.hostname);
    const pin = dns !== undefined && named && !envProxyApplies(u, env);
    if (u.protocol === "https:") {
      const servername = serverNames.get(u.hostname);
      if (tls.insecure || servername !== undefined || pin) {
        return node.fetch(url, init, { servername }, redirects);
      }
    } else if (pin) {
      return pinnedFetch(u, url, init, redirects);
    }
    if (u.origin === origin) plainOrigins.add(origin);
    return fetch(url, withClient(init));
  }

  /** `init` with the HTTP client, set on the caller's one-use object: no copy per request. */
  function withClient(init: RequestInit): RequestInit {
    (init as RequestInit & { client?: Deno.HttpClient }).client = client;
    return init;
  }

  const transport: BackendTransport = {
    fetch: (url, init, origin) => dispatch(url, init, 0, origin),
    addServerNames(names) {
      for (const [host, name] of names) serverNames.set(host, name);
      if (names.size > 0) plainOrigins.clear(); // an origin may now need the Node path
    },
    close() {
      client.close();
      node.close();
    },
  };

  const node = createNodeHttpsFetch({
    caCerts: tls.caCerts,
    cert: tls.cert || undefined,
    key: tls.key || undefined,
    rejectUnauthorized: !tls.insecure,
    idleTimeoutMs: idle,
    lookup: dns ? (host) => dns.lookup(host) : undefined,
  }, dispatch);

  /**
   * `http` to a hostname: the request goes to `http://<cached address>:<port>/…` with `Host` set
   * to the name when the caller set none, so the request line stays origin-form and the backend
   * sees the same Host as without the cache. (`Deno.createHttpClient`'s `proxy: tcp` would pin
   * the address too, but it sends absolute-form request targets, `GET http://name/… HTTP/1.1`,
   * and Go servers then take the Host from that URL, breaking S3 signatures.) Addresses are tried
   * in order, the last good one first; a request whose body went to a failed attempt cannot be
   * replayed, so it fails (the next request starts at the next address). Redirects are followed
   * here so that relative ones stay on the name.
   */
  async function pinnedFetch(
    u: URL,
    url: string,
    init: RequestInit,
    redirects: number,
  ): Promise<Response> {
    let addresses: string[];
    try {
      addresses = await dns!.lookup(u.hostname);
    } catch (e) {
      const reason = e instanceof DnsLookupError ? e.message : String(e);
      throw new TypeError("fetch failed", {
        cause: new Error(`error sending request for url (${url}): dns error: ${reason}`),
      });
    }
    const headers = new Headers(init.headers ?? undefined);
    if (!headers.has("host")) headers.set("host", u.host);
    const follow = (init.redirect ?? "follow") === "follow";
    const key = u.host;
    const start = Math.max(0, addresses.indexOf(preferred.get(key) ?? ""));
    let last: unknown;
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[(start + i) % addresses.length];
      const target = new URL(url);
      target.hostname = urlHost(address);
      let res: Response;
      try {
        res = await fetch(target.href, {
          ...init,
          headers,
          client,
          redirect: follow ? "manual" : init.redirect,
        });
      } catch (e) {
        if (!connectFailed(e) || init.signal?.aborted) throw e;
        last = e;
        preferred.set(key, addresses[(start + i + 1) % addresses.length]);
        if (init.body instanceof ReadableStream) throw e; // consumed: only bytes can go again
        continue;
      }
      preferred.set(key, address);
      const replayable = init.body === null || init.body === undefined;
      const hop = follow && replayable
        ? nextHop(url, res.status, res.headers.get("location"), init, redirects)
        : undefined;
      if (hop === undefined) return res;
      await res.body?.cancel();
      if (hop instanceof Error) {
        throw new TypeError("fetch failed", {
          cause: new Error(`error sending request for url (${url}): ${hop.message}`),
        });
      }
      return dispatch(hop.url, hop.init, redirects + 1);
    }
    throw last;
  }

  return transport;
}
