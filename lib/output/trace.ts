/**
 * Log and trace lines: UP/DOWN state changes and one record per exchange, as
 * short text, short JSON, a `--debug` text block or debug JSON, with the print filters of
 * `--trace`, `--errors` and `--status-code`. Pure formatting: nothing here writes.
 *
 * Secrets stay out of the output: the values of `Authorization` and `X-Amz-Security-Token`
 * request headers, and of the `X-Amz-Signature` / `X-Amz-Security-Token` query parameters of
 * presigned URLs, are replaced by `*REDACTED*` (an `AWS4-HMAC-SHA256` authorization keeps its
 * credential scope and signed headers, only the signature is hidden).
 *
 * @example
 * ```ts
 * import { formatTransition } from "./trace.ts";
 * formatTransition(
 *   { endpoint: "http://10.0.0.1:9000", site: 1, state: "down", reason: "response status 503", downtimeMs: 0, at: 0 },
 *   { json: false, debug: false, colors: false },
 * ); // "LOG  : 00:00:00.000  http://10.0.0.1:9000 is down: response status 503"
 * ```
 * @module
 */

import type { Transition } from "../shared/backend.ts";
import type { Config } from "../config/config.ts";
import { formatDuration, formatDurationRounded } from "../config/duration.ts";
import {
  ANSI,
  byteLength,
  canonicalHeaderName,
  formatClock,
  formatIBytes,
  formatRfc3339Nano,
  paint,
} from "./text_format.ts";
import { statusText } from "../shared/http_facts.ts";
import type { ExchangeRecord } from "../shared/exchange_record.ts";
import { headerValue } from "../shared/exchange_record.ts";
import { exchangeSizes } from "../shared/stats.ts";

/** How lines are written. */
export interface TraceStyle {
  /** `--json`: one JSON object per line. */
  json: boolean;
  /** `--debug`: the full record (text block or debug JSON). */
  debug: boolean;
  /** ANSI colours (text forms only; JSON never carries escapes). */
  colors: boolean;
}

/** The flags that decide which records are printed. */
export type TraceFilterConfig = Pick<Config, "quiet" | "trace" | "errors" | "statusCodes">;

/** The placeholder printed instead of bodies. */
export const BODY_PLACEHOLDER = "<BODY>";

/** What replaces a secret. */
export const REDACTED = "*REDACTED*";

/**
 * The print filter, in order: nothing with `--quiet` or `--trace ""`; never a
 * record without a response (failed health check) or one whose client went away mid-response
 * (one whose backend broke the body off is printed, with its marker);
 * `--trace application` drops health checks; `--trace minio` keeps only health checks and MinIO's
 * own API (paths under `/minio/`); `--errors` keeps 400 ≤ status < 600 and bodies the backend
 * broke off; `--status-code` keeps the
 * listed statuses. Returns undefined when nothing can ever be printed.
 */
export function traceFilter(
  config: TraceFilterConfig,
): ((r: ExchangeRecord) => boolean) | undefined {
  if (config.quiet || config.trace === "") return undefined;
  const codes = config.statusCodes.length > 0 ? new Set(config.statusCodes) : undefined;
  const mode = config.trace;
  const errors = config.errors;
  return (r) => {
    if (r.status === 0 || (!r.completed && r.aborted !== "backend")) return false;
    if (mode === "application" && r.kind === "health") return false;
    if (mode === "minio" && r.kind !== "health" && !r.path.startsWith("/minio/")) return false;
    if (errors && (r.status < 400 || r.status >= 600) && r.aborted !== "backend") return false;
    if (codes && !codes.has(r.status)) return false;
    return true;
  };
}

/**
 * Go's `json.Marshal` string escaping on top of `JSON.stringify`: U+2028/U+2029 always, and with
 * `html` also `<`, `>`, `&` (as `\u003c`, `\u003e`, `\u0026`).
 */
function goJson(value: unknown, html: boolean): string {
  const text = JSON.stringify(value);
  const re = html ? /[<>&\u2028\u2029]/g : /[\u2028\u2029]/g;
  return re.test(text)
    ? text.replace(re, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    : text;
}

/** Milliseconds to whole nanoseconds (the unit of Go's `time.Duration` in JSON). */
function ns(ms: number): number {
  return Math.round(ms * 1e6);
}

/**
 * A state-change line: `LOG  : 12:00:01.234  <endpoint> is down: <reason>` or
 * `... is up Downtime duration: 5.555s` (suffix omitted for a zero downtime); with `json`,
 * `{"Type":"LOG","Endpoint":…,"Error":…,"Status":"down|up","Downtime":<ns>,"Timestamp":…}` where
 * `Error` and `Downtime` are omitted when empty or zero.
 */
export function formatTransition(t: Transition, style: TraceStyle): string {
  if (style.json) {
    const obj: Record<string, unknown> = { Type: "LOG", Endpoint: t.endpoint };
    if (t.reason) obj.Error = t.reason;
    obj.Status = t.state;
    const downtime = ns(t.downtimeMs);
    if (downtime > 0) obj.Downtime = downtime;
    obj.Timestamp = formatRfc3339Nano(t.at);
    return goJson(obj, true);
  }
  const head = `${paint(style.colors, "LOG", ANSI.bold, ANSI.magenta)}  : ${formatClock(t.at)}  `;
  if (t.state === "down") {
    return `${head}${t.endpoint} is ${paint(style.colors, "down", ANSI.red)}: ${t.reason}`;
  }
  const downtime = ns(t.downtimeMs) > 0
    ? ` Downtime duration: ${formatDuration(t.downtimeMs)}`
    : "";
  return `${head}${t.endpoint} is ${paint(style.colors, "up", ANSI.green)}${downtime}`;
}

/** When the record is stamped: completion for proxied requests, the start for health checks. */
export function recordTime(r: ExchangeRecord): number {
  return r.kind === "health" ? r.start : r.start + r.latencyMs;
}

/**
 * The client shown in traces: the first address of a client-supplied `X-Forwarded-For`, else of a
 * client-supplied `X-Real-IP`, else the first `for=` of `Forwarded`, else the socket's address;
 * empty for health checks. (The proxy appends its own entry to the first two, so a header only
 * counts as client-supplied when it has more than one entry.)
 */
export function traceClient(r: ExchangeRecord): string {
  if (r.kind === "health") return "";
  const h = r.requestHeaders;
  if (h) {
    for (const name of ["x-forwarded-for", "x-real-ip"]) {
      const v = headerValue(h, name);
      const comma = v ? v.indexOf(",") : -1;
      if (v && comma >= 0) return v.slice(0, comma).trim();
    }
    const fwd = headerValue(h, "forwarded");
    if (fwd) {
      const m = /(?:^|[;,\s])for=("?)([^";,]+)\1/i.exec(fwd);
      if (m) return m[2].trim();
    }
  }
  return r.client;
}

const QUERY_SECRET = /(^|&)(x-amz-(?:signature|security-token))=[^&]*/gi;

/** The raw query with the values of `X-Amz-Signature` and `X-Amz-Security-Token` redacted. */
export function redactQuery(rawQuery: string): string {
  if (!/x-amz-s/i.test(rawQuery)) return rawQuery;
  return rawQuery.replace(QUERY_SECRET, (_m, sep, name) => `${sep}${name}=${REDACTED}`);
}

/**
 * A header value as traces may show it: `Authorization` and `X-Amz-Security-Token` values are
 * redacted (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=*REDACTED*`,
 * `AWS <access key>:*REDACTED*`, `Bearer *REDACTED*`); other values pass unchanged.
 */
export function redactHeader(name: string, value: string): string {
  const lower = name.toLowerCase();
  if (lower === "x-amz-security-token") return REDACTED;
  if (lower !== "authorization" && lower !== "proxy-authorization") return value;
  if (/^AWS4-HMAC-SHA256\s/i.test(value) && /Signature=/i.test(value)) {
    return value.replace(/(Signature=)[^,\s]*/gi, `$1${REDACTED}`);
  }
  const v2 = /^(AWS\s+[^:\s]+:)/i.exec(value);
  if (v2) return v2[1] + REDACTED;
  const space = value.indexOf(" ");
  return space > 0 ? `${value.slice(0, space)} ${REDACTED}` : REDACTED;
}

/** The request line target: path plus `?query` (redacted) when there is one. */
function target(r: ExchangeRecord): string {
  return r.rawQuery ? `${r.path}?${redactQuery(r.rawQuery)}` : r.path;
}

/** `n` spaces, but at least one (Go's `%*s` of a single space with a width of ±n). */
function pad(n: number): string {
  return " ".repeat(Math.max(1, Math.abs(n)));
}

/**
 * The short text line:
 * `   LOG: 03:06:25.805 [200 OK]  http://127.0.0.1:9000 GET /path?q 10.0.0.7 <pad>  1.406ms<pad> ↑ 0 B ↓ 0 B`.
 */
export function formatShortText(r: ExchangeRecord, colors: boolean): string {
  const { rx, tx } = exchangeSizes(r);
  const client = traceClient(r);
  const latency = formatDurationRounded(r.latencyMs);
  const status = paint(
    colors,
    `${r.status} ${statusText(r.status)}`,
    r.status >= 400 ? ANSI.red : ANSI.yellow,
  );
  return `   LOG: ${formatClock(recordTime(r))} [${status}]  ${r.endpoint} ${r.method} ${
    target(r)
  }` +
    ` ${client} ${pad(15 - byteLength(client))}  ${latency}${pad(12 - byteLength(latency))}` +
    ` ↑ ${formatIBytes(rx)} ↓ ${formatIBytes(tx)}${retriedText(r)}${abortedText(r)}`;
}

/**
 * The marker of a response broken off before its end:
 * `  (aborted by the backend after 256 KiB of 1.0 MiB: <error>)` (`of …` when a length was
 * declared, `: <error>` when there was one); empty for a response delivered in full.
 */
export function abortedText(r: ExchangeRecord): string {
  if (r.aborted === undefined) return "";
  const who = r.aborted === "shutdown" ? "the stop" : `the ${r.aborted}`;
  const declared = r.responseHeaders ? headerValue(r.responseHeaders, "content-length") : null;
  const of = declared !== null && /^\d+$/.test(declared)
    ? ` of ${formatIBytes(Number(declared))}`
    : "";
  const why = r.error ? `: ${r.error}` : "";
  return `  (aborted by ${who} after ${formatIBytes(r.responseBodyBytes)}${of}${why})`;
}

/** Fields beyond the Go sidekick's for a response broken off: `aborted` (who) and `error`. */
function abortedFields(r: ExchangeRecord): Record<string, unknown> {
  if (r.aborted === undefined) return {};
  return r.error ? { aborted: r.aborted, error: r.error } : { aborted: r.aborted };
}

/** ` (after N failed attempts: <endpoint> <reason>: <error>; …)` for a retried exchange. */
function retriedText(r: ExchangeRecord): string {
  const hedge = r.hedge
    ? `  (hedged: ${r.hedge.primary} had not answered, ${r.hedge.endpoint} too; ` +
      `${r.hedge.won ? "the hedge" : "the first attempt"} answered first)`
    : "";
  if (!r.retried?.length) return hedge;
  const what = r.retried.map((f) => `${f.endpoint} ${f.reason}: ${f.error}`).join("; ");
  const n = r.retried.length;
  return `  (after ${n} failed attempt${n === 1 ? "" : "s"}: ${what})${hedge}`;
}

/**
 * Fields beyond the Go sidekick's, present only when the exchange took more than one attempt:
 * `attempts` and the `failedBackends` that were tried first, and `hedge` (`endpoint`, `primary`,
 * `won`) when a hedge was sent.
 */
function retriedFields(r: ExchangeRecord): Record<string, unknown> {
  const hedge = r.hedge ? { hedge: r.hedge } : {};
  if (!r.retried?.length) return hedge;
  return { attempts: r.retried.length + 1, failedBackends: r.retried, ...hedge };
}

/**
 * The short JSON line, keys in Go's order:
 * `{"type":"TRACE","host":…,"time":…,"client":…,"callStats":{"rx":…,"tx":…,"latency":<ns>,
 * "timetofirstbyte":0,"healthError":null},"statusCode":…,"statusMsg":…,"method":…,"path":…,"query":…}`.
 */
export function formatShortJson(r: ExchangeRecord): string {
  const { rx, tx } = exchangeSizes(r);
  return goJson({
    type: "TRACE",
    host: r.endpoint,
    time: formatRfc3339Nano(recordTime(r)),
    client: traceClient(r),
    callStats: { rx, tx, latency: ns(r.latencyMs), timetofirstbyte: 0, healthError: null },
    statusCode: r.status,
    statusMsg: statusText(r.status),
    method: r.method,
    path: r.path,
    query: redactQuery(r.rawQuery),
    ...retriedFields(r),
    ...abortedFields(r),
  }, false);
}

/**
 * The request headers a trace shows, canonical names, sorted, secrets redacted, with `Host` and
 * `Content-Length` (or `Transfer-Encoding`) synthesised as the Go sidekick does. Health checks
 * show `Host` and `Content-Length: 0` only.
 */
export function traceRequestHeaders(r: ExchangeRecord): [string, string[]][] {
  const out = new Map<string, string[]>();
  if (r.kind === "health" || !r.requestHeaders) {
    out.set("Host", [hostOf(r)]);
    out.set("Content-Length", ["0"]);
  } else {
    for (const [name, value] of r.requestHeaders) {
      const key = canonicalHeaderName(name);
      const list = out.get(key) ?? [];
      list.push(redactHeader(name, value));
      out.set(key, list);
    }
    if (!out.has("Host")) out.set("Host", [hostOf(r)]);
    if (!out.has("Content-Length")) {
      if (r.method === "GET" || r.method === "HEAD") out.set("Content-Length", ["0"]);
      else out.set("Transfer-Encoding", ["chunked"]);
    }
  }
  return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The response headers a trace shows: canonical names, sorted, `Set-Cookie` values kept apart. */
export function traceResponseHeaders(r: ExchangeRecord): [string, string[]][] {
  const out = new Map<string, string[]>();
  for (const [name, value] of r.responseHeaders ?? []) {
    const key = canonicalHeaderName(name);
    const list = out.get(key) ?? [];
    list.push(value);
    out.set(key, list);
  }
  return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The host a health check addresses (the endpoint's authority). */
function hostOf(r: ExchangeRecord): string {
  try {
    return new URL(r.endpoint).host;
  } catch {
    return r.endpoint;
  }
}

/**
 * The `--debug` text block: every line prefixed with `DEBUG: <endpoint> `;
 * `[REQUEST] <time>`, the request line, `Host:`, the other request headers, `<BODY>`,
 * `[RESPONSE] [<time>] [ Duration <latency>  ↑ <rx>  ↓ <tx> ]`, the status, the response headers,
 * the body placeholder (or the transport error for sidekick's own 502), then the bare prefix.
 * Returned without a trailing newline.
 */
export function formatDebugText(r: ExchangeRecord, colors: boolean): string {
  const { rx, tx } = exchangeSizes(r);
  const prefix = `${paint(colors, "DEBUG", ANSI.bold, ANSI.magenta)}: ${r.endpoint} `;
  const lines: string[] = [];
  const add = (text: string) => lines.push(prefix + text);
  add(`${paint(colors, "[REQUEST] ", ANSI.cyan)}${formatClock(r.start)}`);
  add(paint(colors, `${r.method} ${target(r)}`, ANSI.bold));
  const headers = traceRequestHeaders(r);
  const host = headers.find(([k]) => k === "Host");
  add(`Host: ${host ? host[1].join("") : ""}`);
  for (const [k, v] of headers) {
    if (k !== "Host") add(`${paint(colors, k, ANSI.blue)}: ${v.join("")}`);
  }
  add(BODY_PLACEHOLDER);
  add(
    `${paint(colors, "[RESPONSE] ", ANSI.cyan)}[${formatClock(r.start + r.latencyMs)}] ` +
      `[ Duration ${formatDurationRounded(r.latencyMs)}  ↑ ${formatIBytes(rx)}  ↓ ${
        formatIBytes(tx)
      } ]`,
  );
  add(paint(
    colors,
    `${r.status} ${statusText(r.status)}`,
    r.status === 200 ? ANSI.yellow : ANSI.red,
  ));
  for (const [k, v] of traceResponseHeaders(r)) {
    add(`${paint(colors, k, ANSI.blue)}: ${v.join("")}`);
  }
  add(responseBody(r));
  lines.push(prefix);
  return lines.join("\n");
}

/** What the trace shows as the response body (with the marker of a body broken off). */
function responseBody(r: ExchangeRecord): string {
  if (r.aborted !== undefined) return BODY_PLACEHOLDER + abortedText(r);
  return r.error && r.status >= 400 ? r.error : BODY_PLACEHOLDER;
}

/**
 * The debug JSON line: `{"type":"DEBUG","nodename":…,"request":{"time","method",
 * "path","rawquery","headers","body","client"},"response":{"time","headers","body","statuscode"},
 * "stats":{"rx","tx","latency","timetofirstbyte","healthError"}}`; `path`, `rawquery`, `headers`,
 * `body`, `statuscode` omitted when empty; header keys sorted.
 */
export function formatDebugJson(r: ExchangeRecord): string {
  const { rx, tx } = exchangeSizes(r);
  const request: Record<string, unknown> = {
    time: formatRfc3339Nano(r.start),
    method: r.method,
  };
  if (r.path) request.path = r.path;
  if (r.rawQuery) request.rawquery = redactQuery(r.rawQuery);
  request.headers = Object.fromEntries(traceRequestHeaders(r));
  request.body = BODY_PLACEHOLDER;
  request.client = traceClient(r);
  const response: Record<string, unknown> = { time: formatRfc3339Nano(r.start + r.latencyMs) };
  const responseHeaders = traceResponseHeaders(r);
  if (responseHeaders.length > 0) response.headers = Object.fromEntries(responseHeaders);
  response.body = responseBody(r);
  if (r.status) response.statuscode = r.status;
  return goJson({
    type: "DEBUG",
    nodename: r.endpoint,
    request,
    response,
    stats: {
      rx,
      tx,
      latency: ns(r.latencyMs),
      timetofirstbyte: ns(r.ttfbMs),
      healthError: null,
    },
    ...retriedFields(r),
    ...abortedFields(r),
  }, false);
}

/** One record in the form the style asks for (the debug text form spans several lines). */
export function formatRecord(r: ExchangeRecord, style: TraceStyle): string {
  if (style.json) return style.debug ? formatDebugJson(r) : formatShortJson(r);
  return style.debug ? formatDebugText(r, style.colors) : formatShortText(r, style.colors);
}
