/**
 * Classifies what `fetch` threw towards a backend. Deno has no error codes here, only message
 * texts (`TypeError("fetch failed", { cause })` since 2.9.2), so the matcher table below is pinned
 * to Deno 2.9.6 and unit-tested; review it whenever the Deno version changes.
 * @module
 */

/** What went wrong with one upstream attempt. */
export type FailureKind =
  | "refused"
  | "reset"
  | "closed"
  | "dns"
  | "tls"
  | "timeout"
  | "protocol"
  | "client"
  | "shutdown"
  | "other";

/** A classified upstream failure. */
export interface Failure {
  /** The class of failure. */
  kind: FailureKind;
  /** A short human text for logs and the 502 document. */
  message: string;
  /** Whether this failure says something about the backend (passive ejection). */
  marksDown: boolean;
  /** Whether no byte of the request can have reached the backend (safe to retry elsewhere). */
  beforeSend: boolean;
}

/** The reason attached to an abort caused by the client going away. */
export const CLIENT_GONE = "client went away";

/** The reason attached to exchanges cut because sidekick stops (drain deadline passed). */
export const SHUTTING_DOWN = "sidekick is shutting down";

/** Substring matchers, first match wins; texts as Deno 2.9.6 produces them. */
const MATCHERS: readonly [RegExp, FailureKind][] = [
  [/error from user's Body stream|request body|Body stream/i, "client"],
  [/dns error|failed to lookup address|Name or service not known|nodename nor servname/i, "dns"],
  [/Connection refused|os error 111|os error 61|os error 10061/i, "refused"],
  [
    /certificate|InvalidCertificate|UnknownIssuer|NotValidForName|handshake|corrupt message|tls|ssl|AlertReceived/i,
    "tls",
  ],
  [/Connection reset|os error 104|os error 54|os error 10054|broken pipe|os error 32/i, "reset"],
  [
    /connection closed before message completed|IncompleteMessage|unexpected EOF|end of file/i,
    "closed",
  ],
  [/timed out|os error 110|timeout/i, "timeout"],
  [/invalid HTTP|parse|header|invalid status|HPE_|malformed/i, "protocol"],
];

function detail(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return cause.message;
    return e.message;
  }
  return String(e);
}

/** Strips Deno's "error sending request … for <url> (…):" prefix, keeping the useful tail. */
function shorten(text: string): string {
  const m = /^error sending request.*?\): (.*)$/s.exec(text);
  return (m ? m[1] : text).trim();
}

/**
 * Classifies an error thrown by `fetch` (or an abort reason). `clientGone` tells whether the
 * client's own cancellation caused it (then the backend is never blamed).
 */
export function classifyFetchError(e: unknown, clientGone = false): Failure {
  if (e === SHUTTING_DOWN) {
    return { kind: "shutdown", message: SHUTTING_DOWN, marksDown: false, beforeSend: false };
  }
  if (clientGone || e === CLIENT_GONE) {
    return { kind: "client", message: CLIENT_GONE, marksDown: false, beforeSend: false };
  }
  if (e instanceof DOMException && e.name === "TimeoutError") {
    return { kind: "timeout", message: "timeout", marksDown: true, beforeSend: false };
  }
  if (e instanceof DOMException && e.name === "AbortError") {
    return { kind: "client", message: CLIENT_GONE, marksDown: false, beforeSend: false };
  }
  const text = detail(e);
  const message = shorten(text);
  for (const [re, kind] of MATCHERS) {
    if (re.test(text)) {
      return {
        kind,
        message,
        // "closed" is Go's EOF family: usually a stale pooled connection, not a dead backend
        // (a dead one refuses the next connect and is ejected then) — spec §4.3.
        marksDown: kind !== "client" && kind !== "closed",
        beforeSend: kind === "refused" || kind === "dns",
      };
    }
  }
  return { kind: "other", message, marksDown: true, beforeSend: false };
}
