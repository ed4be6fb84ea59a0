/**
 * One proxied exchange: upstream request headers, streaming bodies both ways, in-flight
 * accounting for the whole exchange, passive ejection on transport failures, the 502 document,
 * and the exchange record for the observers.
 * @module
 */

import type { Backend } from "./backend.ts";
import { badGateway } from "./error_document.ts";
import { classifyFetchError, CLIENT_GONE } from "./fetch_errors.ts";
import { downstreamHeaderList, upstreamHeaderList } from "./headers.ts";
import type { RecordListener } from "./record.ts";
import { downstreamBody } from "./small_body.ts";
import type { Transport } from "./transport.ts";
import { BODYLESS_METHODS, NULL_BODY_STATUS } from "./http.ts";

/** What the proxy needs besides the request. */
export interface ProxyContext {
  /** How requests reach backends. */
  transport: Transport;
  /** This machine's non-loopback IP (substituted for loopback clients in `X-Forwarded-For`). */
  publicIp: string;
  /** Receives one record per finished exchange. */
  onRecord?: RecordListener;
  /** Called when a transport failure marked a backend DOWN. */
  onEject?: (backend: Backend) => void;
  /** Holds the controller of every exchange in flight, so a forced stop can abort them. */
  inflight?: Set<AbortController>;
  /**
   * Hand tiny response bodies to the server as bytes (see `small_body.ts`): needed over TLS,
   * where the runtime leaves Nagle's algorithm on; over plain TCP streaming costs less.
   */
  smallBodies?: boolean;
}

/** The parts of the request target that are forwarded byte-for-byte. */
export interface Target {
  /** Raw path, as received. */
  path: string;
  /** Raw query without `?` (empty if none). */
  rawQuery: string;
  /** The client's `Host` (or HTTP/2 authority). */
  host: string;
}

/** The declared body length of a header list (0 when absent or not a plain number). */
function contentLength(headers: readonly (readonly [string, string])[] | null): number {
  if (headers === null) return 0;
  for (const [name, value] of headers) {
    if (name === "content-length") {
      const n = Number(value);
      return Number.isFinite(n) && n > 0 ? n : 0;
    }
  }
  return 0;
}

/**
 * Proxies `req` to `backend` and returns the response to send to the client. Per request: one
 * pass over the request headers, one `fetch`, one pass over the response headers, one record.
 */
export async function forward(
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  backend: Backend,
  target: Target,
  ctx: ProxyContext,
): Promise<Response> {
  const start = Date.now();
  const t0 = performance.now();
  const remoteIp = info.remoteAddr.hostname;
  // Built first: nothing that can throw stands between begin() and the completion hook below.
  const requestHeaders = upstreamHeaderList(req.headers, {
    host: target.host,
    remoteIp,
    publicIp: ctx.publicIp,
  });
  const method = req.method;
  const controller = new AbortController();
  let clientGone = false;
  const onClientAbort = () => {
    clientGone = true;
    controller.abort(CLIENT_GONE);
  };
  const signal = req.signal;
  signal.addEventListener("abort", onClientAbort, { once: true });
  ctx.inflight?.add(controller);
  backend.begin();
  let status = 502;
  let ttfbMs = 0;
  let error = "";
  let responseHeaders: [string, string][] | null = null;
  const finish = (completed: boolean) => {
    signal.removeEventListener("abort", onClientAbort);
    ctx.inflight?.delete(controller);
    backend.end();
    ctx.onRecord?.({
      kind: "request",
      endpoint: backend.endpoint,
      site: backend.site,
      method,
      path: target.path,
      rawQuery: target.rawQuery,
      status,
      start,
      latencyMs: performance.now() - t0,
      ttfbMs,
      client: remoteIp,
      requestHeaders,
      responseHeaders,
      requestBodyBytes: contentLength(requestHeaders),
      responseBodyBytes: contentLength(responseHeaders),
      error,
      completed,
    });
  };
  info.completed.then(() => finish(true), () => finish(false));

  const url = backend.origin + target.path + (target.rawQuery ? "?" + target.rawQuery : "");
  let upstream: Response;
  try {
    upstream = await ctx.transport.fetch(url, {
      method,
      headers: requestHeaders,
      // Passed unwrapped so a fixed-length upload keeps its Content-Length.
      body: BODYLESS_METHODS.has(method) ? null : req.body,
      redirect: "manual",
      signal: controller.signal,
    });
  } catch (e) {
    const failure = classifyFetchError(e, clientGone);
    error = failure.message;
    if (failure.marksDown && backend.markDown(failure.message)) ctx.onEject?.(backend);
    const res = badGateway(failure.message, target.path);
    responseHeaders = [...res.headers];
    return res;
  }
  ttfbMs = performance.now() - t0;
  status = upstream.status;
  responseHeaders = downstreamHeaderList(upstream.headers);
  let body: BodyInit | null = null;
  if (NULL_BODY_STATUS.has(status)) await upstream.body?.cancel();
  else body = ctx.smallBodies ? await downstreamBody(upstream, method) : upstream.body;
  return new Response(body, { status, statusText: upstream.statusText, headers: responseHeaders });
}
