/**
 * One proxied exchange: upstream request headers, streaming bodies both ways, in-flight
 * accounting for the whole exchange, passive ejection on transport failures, the 502 document,
 * and the exchange record for the observers.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import { badGateway } from "./error_document.ts";
import { classifyFetchError, CLIENT_GONE } from "../upstream/fetch_errors.ts";
import { downstreamHeaderList, upstreamHeaderList } from "./headers.ts";
import type { RecordListener } from "../shared/exchange_record.ts";
import { declaredLength, downstreamBody } from "./small_body.ts";
import { IDEMPOTENT_METHODS, type ReplayMemory, type RetryBudget, retryReason } from "./retry.ts";
import type { FailedAttempt } from "../shared/exchange_record.ts";
import type { Transport } from "../upstream/transport.ts";
import { BODYLESS_METHODS, NULL_BODY_STATUS, plainText } from "../shared/http_facts.ts";

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
   * Hand tiny response bodies to the server as bytes (see `small_body.ts`): needed over TLS
   * where the listener could not be given `TCP_NODELAY`; elsewhere streaming costs less.
   */
  smallBodies?: boolean;
  /** Retries after a failed attempt (`--retries`, 0 or absent: none) and what they need. */
  retry?: RetryContext;
}

/** What retrying on another backend needs. */
export interface RetryContext {
  /** Further attempts allowed per request. */
  retries: number;
  /** Request bodies up to this size are kept so that they can be sent again. */
  bufferBytes: number;
  /** Bounds the bytes kept by all requests at once. */
  memory: ReplayMemory;
  /** Keeps retries to a share of recent requests. */
  budget: RetryBudget;
  /** The backend for the next attempt, avoiding those already tried. */
  pick(tried: readonly Backend[]): Backend | undefined;
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
 * A failed attempt goes to another backend when `ctx.retry` allows it (see `retry.ts`); its body
 * is then one kept in memory, never a stream that a backend may have consumed.
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
  const retry = ctx.retry;
  retry?.budget.request(start);
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
  let retried: FailedAttempt[] | undefined;
  let tried: Backend[] | undefined;
  let retryDenied = false;
  let clientFault = false;
  let kept = 0; // bytes reserved in the replay memory
  const finish = (completed: boolean) => {
    signal.removeEventListener("abort", onClientAbort);
    ctx.inflight?.delete(controller);
    backend.end();
    if (kept > 0) retry!.memory.release(kept);
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
      retried,
      retryDenied,
      clientFault,
    });
  };
  info.completed.then(() => finish(true), () => finish(false));

  // The body: kept whole when a retry may need to send it again and it is small enough, else
  // passed through unwrapped so that a fixed-length upload keeps its Content-Length. Only the
  // bodies of idempotent methods are kept: they can be retried after any failure before a
  // response, and keeping a body costs CPU (it is read into this isolate and copied out again,
  // where a passed-through body never leaves the runtime's native side). A POST or PATCH with a
  // body streams, and is retried only if it has none.
  let body: BodyInit | null = null;
  let replayable = true;
  if (!BODYLESS_METHODS.has(method) && req.body !== null) {
    const length = retry && retry.retries > 0 && IDEMPOTENT_METHODS.has(method)
      ? declaredLength(req.headers)
      : undefined;
    if (length !== undefined && length <= retry!.bufferBytes && retry!.memory.reserve(length)) {
      kept = length;
      try {
        body = await req.bytes();
      } catch {
        // The client sent less than its Content-Length (or left): its fault, no backend's.
        clientFault = true;
        error = clientGone ? CLIENT_GONE : "request body shorter than its Content-Length";
        status = 400;
        const res = plainText(400, error);
        responseHeaders = [...res.headers];
        return res;
      }
    } else {
      body = req.body;
      replayable = false;
    }
  }

  const pathAndQuery = target.path + (target.rawQuery ? "?" + target.rawQuery : "");
  let upstream: Response;
  for (;;) {
    try {
      upstream = await ctx.transport.fetch(backend.origin + pathAndQuery, {
        method,
        headers: requestHeaders,
        body,
        redirect: "manual",
        signal: controller.signal,
      });
      break;
    } catch (e) {
      const failure = classifyFetchError(e, clientGone);
      error = failure.message;
      if (failure.marksDown && backend.markDown(failure.message)) ctx.onEject?.(backend);
      // A client that went away, or a streamed body that ended early: never the backend's fault.
      if (failure.kind === "client") clientFault = true;
      if (failure.kind === "client" && !clientGone) {
        status = 400;
        const res = plainText(400, "request body shorter than its Content-Length");
        responseHeaders = [...res.headers];
        return res;
      }
      const reason = retry && replayable && !clientGone && (retried?.length ?? 0) < retry.retries
        ? retryReason(failure, method)
        : undefined;
      if (reason) (tried ??= []).push(backend);
      const next = reason ? retry!.pick(tried!) : undefined;
      if (next) {
        if (retry!.budget.tryRetry(Date.now())) {
          (retried ??= []).push({ endpoint: backend.endpoint, reason: reason!, error });
          backend.end();
          next.begin();
          backend = next;
          continue;
        }
        retryDenied = true;
      }
      const res = badGateway(failure.message, target.path);
      responseHeaders = [...res.headers];
      return res;
    }
  }
  ttfbMs = performance.now() - t0;
  status = upstream.status;
  responseHeaders = downstreamHeaderList(upstream.headers);
  let responseBody: BodyInit | null = null;
  if (NULL_BODY_STATUS.has(status)) await upstream.body?.cancel();
  else responseBody = ctx.smallBodies ? await downstreamBody(upstream, method) : upstream.body;
  return new Response(responseBody, {
    status,
    statusText: upstream.statusText,
    headers: responseHeaders,
  });
}
