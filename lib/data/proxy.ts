/**
 * One proxied exchange: upstream request headers, streaming bodies both ways, in-flight
 * accounting for the whole exchange, passive ejection on transport failures, the 502 document,
 * and the exchange record for the observers.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import { type Deadlines, exchange, type ExchangePlan, type HedgeNote } from "./attempt.ts";
import { badGateway, gatewayTimeout } from "./error_document.ts";
import {
  classifyFetchError,
  CLIENT_GONE,
  RESPONSE_TIMEOUT,
  SHUTTING_DOWN,
} from "../upstream/fetch_errors.ts";
import { downstreamHeaderList, upstreamHeaderList } from "./headers.ts";
import type { AbortedBy, RecordListener } from "../shared/exchange_record.ts";
import { IDEMPOTENT_METHODS, type ReplayMemory, type RetryBudget, retryReason } from "./retry.ts";
import type { FailedAttempt } from "../shared/exchange_record.ts";
import { HEAD_BODY_LIMIT, MeteredBody, type PeekClock, relayResponse } from "./body_meter.ts";
import type { Transport } from "../upstream/transport.ts";
import type { Link, LinkedList } from "../shared/linked_list.ts";
import { BODYLESS_METHODS, declaredLength, plainText } from "../shared/http_facts.ts";

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
  /** Holds every exchange in flight, so a forced stop can abort them. */
  inflight?: LinkedList<InFlight>;
  /**
   * Every response body streams through sidekick, its bytes counted as they pass, so that one the
   * backend breaks off is seen (`--verify-bodies`). Without it, a body with a declared length
   * passes through natively: counted by that length once the response completed, a break by the
   * backend unseen over HTTP/1.1. Bodies of unknown length are always counted.
   */
  verifyBodies?: boolean;
  /**
   * Whether the HTTPS listener lacks `TCP_NODELAY` (no FFI, not Linux): small declared bodies are
   * then read whole to leave with their head (see `HEAD_BODY_LIMIT` in body_meter.ts).
   */
  headStalls?: () => boolean;
  /** Retries after a failed attempt (`--retries`, 0 or absent: none) and what they need. */
  retry?: RetryContext;
  /** Bounds on waiting for a backend, and where attempts' outcomes go (absent: no bounds). */
  gray?: GrayContext;
  /** Sweeps the response deadlines of this data plane's attempts (absent: a timer per request). */
  deadlines?: Deadlines;
  /** Ends the peeks at chunked answers of this data plane (absent: a timer per peek). */
  peekClock?: PeekClock;
}

/** An exchange in flight: the controller of its current attempt. */
export interface InFlight extends Link<InFlight> {
  /** Aborts the attempt running now (replaced when a retry or a hedge takes over). */
  controller: AbortController;
}

/**
 * Gray failures: how long to wait for response headers, when to hedge, and the listener of every
 * attempt's outcome (outlier ejection and latency-aware balancing feed on it).
 */
export interface GrayContext {
  /** `--response-timeout`, ms (0: none). */
  responseTimeoutMs: number;
  /** `--hedge-after`, ms (0: no hedges). */
  hedgeAfterMs: number;
  /** An attempt failed (transport failure or timeout) after `ms`. */
  failed(backend: Backend, ms: number): void;
  /** An attempt had response headers with `status` after `ms`. */
  answered(backend: Backend, status: number, ms: number): void;
  /** An attempt was cancelled after `ms` because another answered first. */
  lost(backend: Backend, ms: number): void;
  /** The backend for a hedge of an attempt on `primary` (before the budget is asked). */
  forHedge(primary: Backend): Backend | undefined;
}

/** Streamed uploads up to this size count as sent at once (without `--retries`). */
const SMALL_UPLOAD = 1 << 20;

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

/**
 * Proxies `req` to `backend` and returns the response to send to the client. Per request: one
 * pass over the request headers, one `fetch`, one pass over the response headers, one record.
 * The record is made when the exchange ends: at once for an answer without a body or with one
 * read whole (`body_meter.ts`), else when the streamed body ends, fails or is cancelled, or (a
 * body passed through natively) when the server says the response completed.
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
  // Built first: nothing that can throw stands between begin() and the finish() of each exit.
  const requestHeaders = upstreamHeaderList(req.headers, {
    host: target.host,
    remoteIp,
    publicIp: ctx.publicIp,
  });
  const method = req.method;
  const retry = ctx.retry;
  retry?.budget.request(start);
  // The client going away aborts the attempt with CLIENT_GONE, followed only once an attempt has
  // waited for its backend a while (plan.client; see Deadlines in attempt.ts for why).
  let controller = new AbortController();
  const gone = () => controller.signal.reason === CLIENT_GONE;
  const flight: InFlight = { controller, prev: undefined, next: undefined, linked: false };
  ctx.inflight?.add(flight);
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
  let hedge: HedgeNote | undefined;
  let requestBytes = 0; // body bytes sent, when known without counting
  let upload: MeteredBody | undefined; // a body of unknown length, counted as it passes
  let responseBytes = 0;
  let aborted: AbortedBy | undefined;
  const finish = (completed: boolean) => {
    ctx.inflight?.delete(flight);
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
      requestBodyBytes: upload ? upload.bytes : requestBytes,
      responseBodyBytes: responseBytes,
      error,
      completed,
      aborted,
      retried,
      retryDenied,
      clientFault,
      hedge,
      // Present from the start, so that memoising the sizes later keeps the record's shape.
      sizes: undefined,
    });
  };
  /** Ends the exchange with an answer of sidekick's own (a 400, 502 or 504) instead of one relayed. */
  const answer = (res: Response, completed: boolean): Response => {
    status = res.status;
    responseHeaders = [...res.headers];
    finish(completed);
    return res;
  };

  // The body: kept whole when a retry may need to send it again and it is small enough, else
  // passed through unwrapped so that a fixed-length upload keeps its Content-Length. Only the
  // bodies of idempotent methods are kept: they can be retried after any failure before a
  // response, and keeping a body costs CPU (it is read into this isolate and copied out again,
  // where a passed-through body never leaves the runtime's native side). A POST or PATCH with a
  // body streams, and is retried only if it has none.
  let body: BodyInit | null = null;
  let replayable = true;
  let uploadLength: number | undefined; // the Content-Length of an upload passed through
  if (!BODYLESS_METHODS.has(method) && req.body !== null) {
    const declared = declaredLength(requestHeaders);
    const length = retry && retry.retries > 0 && IDEMPOTENT_METHODS.has(method)
      ? declared
      : undefined;
    if (length !== undefined && length <= retry!.bufferBytes && retry!.memory.reserve(length)) {
      kept = length;
      try {
        body = await req.bytes();
      } catch {
        // The client sent less than its Content-Length (or left): its fault, no backend's.
        clientFault = true;
        error = "request body shorter than its Content-Length";
        return answer(plainText(400, error), true);
      }
    } else {
      uploadLength = declared;
      // Chunked: counted as it passes; a fixed-length body keeps the native pass-through.
      if (uploadLength === undefined) upload = new MeteredBody(req.body);
      body = upload ? upload.stream : req.body;
      replayable = false;
    }
  }

  const pathAndQuery = target.path + (target.rawQuery ? "?" + target.rawQuery : "");
  const send = (b: Backend, s: AbortSignal) =>
    ctx.transport.fetch(b.origin + pathAndQuery, {
      method,
      headers: requestHeaders,
      body,
      redirect: "manual",
      signal: s,
    }, b.origin);
  const gray = ctx.gray;
  // The response timeout starts once the request is sent: at once for a request without a body
  // or with one kept in memory (or small enough to be sent in a moment); an upload streamed
  // through, larger than that, has no bound on its wait (its sending time is unknown).
  const bounded = replayable || body === null ||
    (uploadLength ?? Infinity) <= (retry?.bufferBytes ?? SMALL_UPLOAD);
  const plan: ExchangePlan = {
    send,
    responseTimeoutMs: gray && bounded ? gray.responseTimeoutMs : 0,
    hedgeAfterMs: gray && retry && body === null && (method === "GET" || method === "HEAD")
      ? gray.hedgeAfterMs
      : 0,
    parent: controller.signal,
    deadlines: ctx.deadlines,
    client: req,
  };
  if (plan.hedgeAfterMs > 0) {
    // What only a hedged exchange needs: built for hedgeable requests only.
    plan.pickHedge = (primary) => {
      const next = gray!.forHedge(primary);
      return next && retry!.budget.tryRetry(Date.now()) ? next : undefined;
    };
    plan.onFailed = (a, e, ms) => {
      const failure = classifyFetchError(e, gone());
      if (failure.marksDown && a.backend.markDown(failure.message)) ctx.onEject?.(a.backend);
      if (failure.kind !== "client") gray!.failed(a.backend, ms);
    };
    plan.onLost = (a, ms) => gray!.lost(a.backend, ms);
  }
  let upstream: Response;
  // When the current attempt was sent: latency samples are per attempt (a body read whole first
  // took its time before the first one).
  let sent = kept > 0 ? performance.now() : t0;
  for (;;) {
    const outcome = await exchange(plan, { backend, controller }, sent);
    hedge = outcome.hedge;
    const attempt = outcome.ok ? outcome.winner : outcome.failed;
    backend = attempt.backend;
    controller = flight.controller = attempt.controller;
    if (outcome.ok) {
      upstream = outcome.response;
      break;
    }
    const e = outcome.error;
    const failure = classifyFetchError(e, gone());
    error = failure.message;
    if (failure.marksDown && backend.markDown(failure.message)) ctx.onEject?.(backend);
    if (failure.kind !== "client" && failure.kind !== "shutdown") {
      gray?.failed(backend, performance.now() - sent);
    }
    // A client that went away, or a streamed body that ended early: never the backend's fault.
    if (failure.kind === "client") clientFault = true;
    if (failure.kind === "client" && !gone()) {
      return answer(plainText(400, "request body shorter than its Content-Length"), true);
    }
    const reason = retry && replayable && !gone() && (retried?.length ?? 0) < retry.retries
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
        if (controller.signal.aborted) {
          controller = flight.controller = new AbortController();
          plan.parent = controller.signal;
        }
        sent = performance.now();
        continue;
      }
      retryDenied = true;
    }
    const res = e === RESPONSE_TIMEOUT
      ? gatewayTimeout(failure.message, target.path)
      : badGateway(failure.message, target.path);
    return answer(res, !gone());
  }
  const answeredAt = performance.now();
  ttfbMs = answeredAt - t0;
  status = upstream.status;
  // A hedge that won was sent later than `sent`: its sample errs on the slow side, which costs it
  // nothing it did not earn (the request did wait that long).
  gray?.answered(backend, status, answeredAt - sent);
  responseHeaders = downstreamHeaderList(upstream.headers);
  // A body held whole was sent in full; a streamed fixed-length one, once the backend answered.
  if (body !== null && upload === undefined) {
    requestBytes = kept > 0 ? kept : uploadLength ?? 0;
  }
  // No retry follows an answer: a body kept for one is let go now rather than when the response
  // ends, which can be long after, and a buffer held that long is one V8 moves to its old space.
  body = null;
  if (kept > 0) {
    retry!.memory.release(kept);
    kept = 0;
  }
  // Who broke a body off: the client (gone), a stop, or else (its body failed) the backend.
  return relayResponse(upstream, {
    status,
    statusText: upstream.statusText,
    headers: responseHeaders,
  }, {
    method,
    info,
    verify: ctx.verifyBodies,
    wholeUpTo: ctx.headStalls?.() ? HEAD_BODY_LIMIT : 0,
    clock: ctx.peekClock,
    onEnd: ({ bytes, completed, broken }) => {
      responseBytes = bytes;
      if (broken) {
        const failure = broken.how === "failed"
          ? classifyFetchError(broken.reason, gone())
          : undefined;
        const kind = failure?.kind ??
          (controller.signal.reason === SHUTTING_DOWN ? "shutdown" : "client");
        aborted = kind === "client" || kind === "shutdown" ? kind : "backend";
        if (failure) error = failure.message;
      }
      finish(completed);
    },
  });
}
