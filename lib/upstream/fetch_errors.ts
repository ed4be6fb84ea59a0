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
  /** For `kind: "tls"`: which TLS problem it was. */
  tls?: TlsProblem;
}

/** What went wrong in a TLS handshake with a backend. */
export type TlsProblem =
  | "unknown-ca"
  | "name-mismatch"
  | "expired"
  | "not-yet-valid"
  | "client-cert-required"
  | "client-cert-rejected"
  | "not-tls"
  | "handshake";

/** The reason attached to an abort caused by the client going away. */
export const CLIENT_GONE = "client went away";

/** The reason attached to exchanges cut because sidekick stops (drain deadline passed). */
export const SHUTTING_DOWN = "sidekick is shutting down";

/**
 * Substring matchers, first match wins; texts as Deno 2.9.6 produces them, from `fetch` and from
 * the `node:https` path of `node_transport.ts` (Node error codes such as `ECONNREFUSED`,
 * `CERT_HAS_EXPIRED`, `socket hang up`).
 */
const MATCHERS: readonly [RegExp, FailureKind][] = [
  [/error from user's Body stream|request body|Body stream/i, "client"],
  [
    /dns error|failed to lookup address|Name or service not known|nodename nor servname|ENOTFOUND|EAI_AGAIN|getaddrinfo/i,
    "dns",
  ],
  [/Connection refused|os error 111|os error 61|os error 10061|ECONNREFUSED/i, "refused"],
  // Unreachable address: no connection was made either, so it counts as refused (safe to retry).
  [
    /No route to host|Network is unreachable|os error 113|os error 101|EHOSTUNREACH|ENETUNREACH/i,
    "refused",
  ],
  [
    /certificate|InvalidCertificate|UnknownIssuer|NotValidForName|handshake|corrupt message|tls|ssl|AlertReceived|CERT_|ERR_TLS|UNABLE_TO_VERIFY|SELF_SIGNED|DEPTH_ZERO|fatal alert|wrong version number/i,
    "tls",
  ],
  [
    /Connection reset|os error 104|os error 54|os error 10054|broken pipe|os error 32|ECONNRESET|EPIPE/i,
    "reset",
  ],
  [
    /connection closed before message completed|IncompleteMessage|unexpected EOF|end of file|socket hang up/i,
    "closed",
  ],
  [/timed out|os error 110|timeout|ETIMEDOUT/i, "timeout"],
  [/invalid HTTP|parse|header|invalid status|HPE_|malformed/i, "protocol"],
];

/**
 * TLS problems, first match wins: rustls texts (fetch and node:tls in Deno) and OpenSSL-style
 * Node codes, each with the phrase that starts the failure's message.
 */
const TLS_MATCHERS: readonly [RegExp, TlsProblem, string][] = [
  [
    /NotValidYet|not valid yet|not valid before|CERT_NOT_YET_VALID/i,
    "not-yet-valid",
    "TLS: backend certificate is not yet valid",
  ],
  [
    /certificate expired|\bExpired\b|CERT_HAS_EXPIRED/i,
    "expired",
    "TLS: backend certificate has expired",
  ],
  [
    /NotValidForName|not valid for name|ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate/i,
    "name-mismatch",
    "TLS: backend certificate is not valid for its name",
  ],
  [
    /UnknownIssuer|CaUsedAsEndEntity|UNABLE_TO_VERIFY_LEAF|UNABLE_TO_GET_ISSUER|SELF_SIGNED|DEPTH_ZERO_SELF_SIGNED|unknown (certificate )?authority|unable to verify the first certificate/i,
    "unknown-ca",
    "TLS: backend certificate signed by unknown authority (see --cacert)",
  ],
  [
    /CertificateRequired|certificate required/i,
    "client-cert-required",
    "TLS: backend requires a client certificate (see --client-cert/--client-key)",
  ],
  [
    /alert:? ?(BadCertificate|UnknownCA|DecryptError|AccessDenied|CertificateUnknown|UnsupportedCertificate)|alert (bad certificate|unknown ca)/i,
    "client-cert-rejected",
    "TLS: backend rejected the client certificate",
  ],
  [
    /corrupt message of type InvalidContentType|wrong version number|WRONG_VERSION_NUMBER|packet length too long/i,
    "not-tls",
    "TLS: backend does not speak TLS (plain HTTP on an https endpoint?)",
  ],
];

/** The TLS problem of a failure text, with its leading phrase. */
export function tlsProblem(text: string): { problem: TlsProblem; phrase: string } {
  for (const [re, problem, phrase] of TLS_MATCHERS) {
    if (re.test(text)) return { problem, phrase };
  }
  return { problem: "handshake", phrase: "TLS: handshake with backend failed" };
}

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
      if (kind === "tls") {
        const { problem, phrase } = tlsProblem(text);
        return {
          kind,
          message: `${phrase}: ${message}`,
          marksDown: true,
          beforeSend: true,
          tls: problem,
        };
      }
      return {
        kind,
        message,
        // "closed" is Go's EOF family: usually a stale pooled connection, not a dead backend
        // (a dead one refuses the next connect and is ejected then).
        marksDown: kind !== "client" && kind !== "closed",
        // A TLS failure towards a backend is a handshake failure; "(Connect)" is hyper's mark of
        // a failure while connecting (a connect timeout too): no request byte left either way.
        beforeSend: kind === "refused" || kind === "dns" || /client error \(Connect\)/.test(text),
      };
    }
  }
  return { kind: "other", message, marksDown: true, beforeSend: false };
}
