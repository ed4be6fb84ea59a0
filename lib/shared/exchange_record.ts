/**
 * The record of one finished exchange — a proxied request or a health check — handed to the
 * observers (traces, metrics, the table). Built once per exchange; formatting happens elsewhere,
 * and only when some output wants it. Its header lists are read with {@linkcode headerValue}.
 * @module
 */

/** Header fields as `[lower-case name, value]` pairs: a `Headers` object or a plain list. */
export type HeaderList = Iterable<readonly [string, string]>;

/** The value of `name` (lower case) in a list, `Headers` semantics for repeats: joined by ", ". */
export function headerValue(headers: HeaderList, name: string): string | null {
  if (headers instanceof Headers) return headers.get(name);
  let value: string | null = null;
  // The proxy's lists are arrays: read by index, without an iterator and a destructured pair
  // per header (what V8 allocates for `for…of` over this union type).
  if (Array.isArray(headers)) {
    const list = headers as readonly (readonly [string, string])[];
    for (let i = 0; i < list.length; i++) {
      const h = list[i];
      if (h[0] === name) value = value === null ? h[1] : `${value}, ${h[1]}`;
    }
    return value;
  }
  for (const [k, v] of headers) if (k === name) value = value === null ? v : `${value}, ${v}`;
  return value;
}

/**
 * Why an attempt was retried: nothing was sent, the connection closed before a response, or no
 * response headers came within `--response-timeout`.
 */
export type RetryReason = "connect" | "closed" | "timeout";

/** An attempt of a proxied request that failed and was retried on another backend. */
export interface FailedAttempt {
  /** The backend that failed. */
  endpoint: string;
  /** Why the request could go elsewhere. */
  reason: RetryReason;
  /** The transport error. */
  error: string;
}

/** A hedge that was sent: where to, and whether it delivered the response. */
export interface HedgeNote {
  /** The backend the hedge went to. */
  endpoint: string;
  /** The backend that had not answered in time. */
  primary: string;
  /** True when the hedge answered first. */
  won: boolean;
}

/** One finished exchange with a backend. */
export interface ExchangeRecord {
  /** `request` for proxied traffic, `health` for an active check. */
  kind: "request" | "health";
  /** The backend's endpoint string. */
  endpoint: string;
  /** 1-based site number of the backend. */
  site: number;
  /** Request method. */
  method: string;
  /** Raw request path (as received, not decoded). */
  path: string;
  /** Raw query without `?` (empty if none). */
  rawQuery: string;
  /** Status sent to the client (502 for transport errors); 0: health check got no response. */
  status: number;
  /** Wall-clock start, ms since the epoch. */
  start: number;
  /** Start to completion, ms (fractional). */
  latencyMs: number;
  /** Start to response headers, ms (fractional); 0 when there was no backend response. */
  ttfbMs: number;
  /** The client's address (remote IP); empty for health checks. */
  client: string;
  /** The headers sent to the backend (null for health checks). */
  requestHeaders: HeaderList | null;
  /** The headers sent to the client (null if none). */
  responseHeaders: HeaderList | null;
  /**
   * Request body bytes sent to the backend: counted as they pass for a body of unknown length,
   * the length of a body held for a retry, the declared `Content-Length` of a streamed one once
   * the backend has answered (0 when the attempt failed); 0 for `GET`, `HEAD` and no body.
   */
  requestBodyBytes: number;
  /**
   * Response body bytes handed to the client, counted as they pass (0 for `HEAD`, 204, 304 and
   * the other bodyless answers; what was passed on before a break when the body broke off).
   */
  responseBodyBytes: number;
  /** Transport error text, empty when the backend answered (and its body did not break off). */
  error: string;
  /** Whether the response was delivered in full (false: client went away or stream failed). */
  completed: boolean;
  /**
   * Who broke the response off before its end, if someone did: `backend` (its body failed: a
   * reset, or fewer bytes than its `Content-Length`; an error of the backend's), `client` (it
   * went away), `shutdown` (the drain deadline of a stop passed).
   */
  aborted?: AbortedBy;
  /** Attempts that failed before `endpoint` answered, in order (absent: the first attempt). */
  retried?: readonly FailedAttempt[];
  /** A retry was allowed by the policy but refused because the retry budget was spent. */
  retryDenied?: boolean;
  /**
   * The client caused the failure (it went away, or sent a body shorter than its
   * `Content-Length`): no backend's error counters see it.
   */
  clientFault?: boolean;
  /** A hedge was sent (`--hedge-after`): where to, and which attempt answered. */
  hedge?: HedgeNote;
  /** rx/tx as counted by `exchangeSizes`, memoised there (counters and traces both need them). */
  sizes?: { rx: number; tx: number };
}

/** Who broke a response off before its end. */
export type AbortedBy = "backend" | "client" | "shutdown";

/** Receives every finished exchange. */
export type RecordListener = (record: ExchangeRecord) => void;
