/**
 * The request router behind `Deno.serve`: sidekick-owned routes (`/v1/health`,
 * `/v1/certificates`, `/.prometheus/metrics`), requests the proxy refuses (CONNECT,
 * absolute-form targets, non-WebSocket upgrades), and everything else to the proxy.
 * @module
 */

import { ALL_OFFLINE, badGateway } from "./error_document.ts";
import type { BackendChoice } from "./choice.ts";
import type { Pool } from "../shared/pool.ts";
import { forward, type ProxyContext, type Target } from "./proxy.ts";
import { plainText } from "../shared/http_facts.ts";

/** What the router reads at request time. */
export interface RouterDeps {
  /** The current pool (swapped on SIGHUP). */
  pool(): Pool;
  /** Picks the backend of each request (default: the pool's pick). */
  choice?: BackendChoice;
  /** Proxy settings. */
  proxy: ProxyContext;
  /** Answers `/.prometheus/metrics`, if metrics are enabled. */
  metrics?: (req: Request) => Response | Promise<Response>;
  /** The PEM served at `GET /v1/certificates`, if a certificate was generated. */
  certificatePem?: () => string | undefined;
  /**
   * The authority the runtime puts in `req.url` of a request that came without `Host` (plain
   * HTTP listeners only): `localhost:<port>`. Undefined: no such check (HTTPS, where an HTTP/2
   * request also has no `Host` header and nothing else tells the versions apart).
   */
  missingHostAuthority?: () => string | undefined;
  /** Handles a WebSocket upgrade to a backend, if supported. */
  websocket?: (
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    target: Target,
  ) => Response | Promise<Response>;
}

/** Splits the raw target of `req.url` into the raw path and raw query, untouched. */
export function splitTarget(url: string): { authority: string; path: string; rawQuery: string } {
  const authorityStart = url.indexOf("//") + 2;
  let slash = url.indexOf("/", authorityStart);
  if (slash < 0) slash = url.length;
  const authority = url.slice(authorityStart, slash);
  const rest = url.slice(slash) || "/";
  const q = rest.indexOf("?");
  return q < 0
    ? { authority, path: rest, rawQuery: "" }
    : { authority, path: rest.slice(0, q), rawQuery: rest.slice(q + 1) };
}

/** The `Deno.serve` handler of one sidekick. */
export function createRouter(
  deps: RouterDeps,
): (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response> {
  return (req, info) => {
    const { authority, path, rawQuery } = splitTarget(req.url);
    if (path === "/.prometheus/metrics" && deps.metrics) return deps.metrics(req);
    if (path === "/v1/certificates" && req.method === "GET") {
      const pem = deps.certificatePem?.();
      return pem
        ? new Response(pem, { headers: { "content-type": "text/plain; charset=utf-8" } })
        : plainText(404, "no configured certificates found");
    }
    // Bad requests are the client's: answered here, before any backend is picked or blamed.
    const method = req.method;
    if (method !== method.toUpperCase()) {
      return plainText(400, `method names are case-sensitive: "${method}" is not a method`);
    }
    const hostHeader = req.headers.get("host");
    if (hostHeader === null && authority === deps.missingHostAuthority?.()) {
      return plainText(400, "an HTTP/1.1 request needs a Host header");
    }
    const pool = deps.pool();
    if (path === "/v1/health") {
      return pool.online()
        ? new Response(null, { status: 200, headers: { server: "SideKick" } })
        : badGateway(ALL_OFFLINE, path);
    }
    if (method === "CONNECT") {
      return plainText(501, "sidekick is not a forward proxy: CONNECT is not supported");
    }
    if (
      hostHeader !== null && hostHeader !== authority &&
      hostHeader.toLowerCase() !== authority.toLowerCase()
    ) {
      return plainText(400, "absolute-form request targets are not supported; send origin-form");
    }
    const target: Target = { path, rawQuery, host: hostHeader ?? authority };
    const upgrade = req.headers.get("upgrade");
    if (upgrade !== null) {
      if (upgrade.toLowerCase() === "websocket" && deps.websocket) {
        return deps.websocket(req, info, target);
      }
      return plainText(501, `protocol upgrade to "${upgrade}" is not supported`);
    }
    const backend = deps.choice ? deps.choice.forRequest() : pool.pick();
    if (!backend) return badGateway(ALL_OFFLINE, path);
    return forward(req, info, backend, target, deps.proxy);
  };
}
