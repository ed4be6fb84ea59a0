/**
 * Header rewriting for one proxied exchange: hop-by-hop headers removed in both directions,
 * `X-Forwarded-*`/`X-Real-IP` added, compression left untouched.
 *
 * The proxy builds plain `[name, value]` lists in one pass over the incoming headers, and hands
 * those to `fetch` and `Response`: copying a `Headers` object into another goes through the
 * WebIDL sequence conversion of its iterator and costs several times more per request.
 * @module
 */

/** Headers that describe one connection, never the message (RFC 9110 §7.6.1, plus `expect`). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "http2-settings",
]);

/**
 * Lower-cased header names listed in a `Connection` header value, empty tokens ignored; undefined
 * when there are none, or only `keep-alive` or `close` (already hop-by-hop, and what almost every
 * message carries: no list is built for them).
 */
export function connectionTokens(value: string | null | undefined): string[] | undefined {
  if (value === null || value === undefined) return undefined;
  const usual = value.length <= 12 ? value.trim().toLowerCase() : "";
  if (usual === "keep-alive" || usual === "close") return undefined;
  const tokens = value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
  return tokens.length > 0 ? tokens : undefined;
}

/** `list` without the headers `named` (the {@linkcode connectionTokens} of its message). */
function withoutNamed(
  list: [string, string][],
  named: readonly string[] | undefined,
): [string, string][] {
  return named ? list.filter(([name]) => !named.includes(name)) : list;
}

/** Whether an address is loopback (`127.0.0.0/8`, `::1`, `::ffff:127.x`, `localhost`). */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || ip === "localhost" || ip.startsWith("127.") ||
    ip.startsWith("::ffff:127.");
}

/** What the upstream request headers are built from. */
export interface ForwardInfo {
  /** The client's `Host` (or HTTP/2 `:authority`). */
  host: string;
  /** The client's IP address as the socket reports it. */
  remoteIp: string;
  /** This machine's non-loopback IP, used in place of a loopback client's address. */
  publicIp: string;
}

/**
 * The headers sent to the backend, as a list: the client's headers minus hop-by-hop ones, with
 * the client's `Host` kept, `X-Forwarded-Host`, `X-Real-IP` and `X-Forwarded-For` (client
 * address appended once) added, and `Accept-Encoding: identity` so bodies pass through
 * byte-identical. One pass over the incoming headers.
 */
export function upstreamHeaderList(incoming: Headers, info: ForwardInfo): [string, string][] {
  const ip = isLoopback(info.remoteIp) ? info.publicIp : info.remoteIp;
  const out: [string, string][] = [];
  let forwardedHost = info.host;
  let realIp = ip;
  let xff = ip;
  let connection: string | undefined; // the headers it names leave after the pass
  // forEach, not for-of: Deno's Headers iterator looks the sorted list up again at every step
  // (and rebuilds it, for headers built in JavaScript); forEach reads it once.
  incoming.forEach((value, name) => {
    switch (name) {
      case "host":
      case "accept-encoding":
        return;
      case "x-forwarded-host":
        forwardedHost = `${value}, ${info.host}`;
        return;
      case "x-real-ip":
        realIp = `${value}, ${ip}`;
        return;
      case "x-forwarded-for":
        xff = `${value}, ${ip}`;
        return;
      case "connection":
        connection = value;
        return;
    }
    if (!HOP_BY_HOP.has(name)) out.push([name, value]);
  });
  const kept = withoutNamed(out, connectionTokens(connection));
  kept.push(
    ["host", info.host],
    ["x-forwarded-host", forwardedHost],
    ["x-real-ip", realIp],
    ["x-forwarded-for", xff],
    ["accept-encoding", "identity"],
  );
  return kept;
}

/** {@linkcode upstreamHeaderList} as a `Headers` object (the WebSocket handshake edits it). */
export function upstreamRequestHeaders(incoming: Headers, info: ForwardInfo): Headers {
  return new Headers(upstreamHeaderList(incoming, info));
}

/**
 * The headers sent to the client, as a list: the backend's minus hop-by-hop, plus `X-Proxy` and
 * `Server` (when the backend sent none). One pass over the upstream headers.
 */
export function downstreamHeaderList(upstream: Headers): [string, string][] {
  const out: [string, string][] = [];
  let connection: string | undefined; // the headers it names leave after the pass
  let server = false;
  upstream.forEach((value, name) => {
    if (name === "connection") connection = value;
    else if (name !== "x-proxy" && !HOP_BY_HOP.has(name)) {
      if (name === "server") server = true;
      out.push([name, value]);
    }
  });
  const named = connectionTokens(connection);
  const kept = withoutNamed(out, named);
  kept.push(["x-proxy", "true"]);
  // A `Server` that `Connection` named has left the list: sidekick names itself then.
  if (!server || named?.includes("server")) kept.push(["server", "SideKick"]);
  return kept;
}

/** This machine's first non-loopback address (IPv4 preferred), or `fallback` when none. */
export function pickPublicIp(
  addresses: readonly { address: string; family: string }[],
  fallback: string,
): string {
  const usable = addresses.filter((a) => !isLoopback(a.address) && !a.address.startsWith("fe80:"));
  return usable.find((a) => a.family === "IPv4")?.address ?? usable[0]?.address ?? fallback;
}
