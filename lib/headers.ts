/**
 * Header rewriting for one proxied exchange (spec §6.2–6.3 and DECISIONS): hop-by-hop headers
 * removed in both directions, `X-Forwarded-*`/`X-Real-IP` added, compression left untouched.
 * Pure functions over `Headers`.
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

/** Lower-cased header names listed in the `Connection` header(s), empty tokens ignored. */
export function connectionTokens(headers: Headers): string[] {
  const value = headers.get("connection");
  if (!value) return [];
  return value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

/** Removes hop-by-hop headers and those named in `Connection`, in place. */
export function stripHopByHop(headers: Headers): Headers {
  const named = connectionTokens(headers);
  for (const name of HOP_BY_HOP) headers.delete(name);
  for (const name of named) headers.delete(name);
  return headers;
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
 * The headers sent to the backend: the client's headers minus hop-by-hop ones, with the client's
 * `Host` kept, `X-Forwarded-Host`, `X-Real-IP` and `X-Forwarded-For` (client address appended
 * once) added, and `Accept-Encoding: identity` so bodies pass through byte-identical.
 */
export function upstreamRequestHeaders(incoming: Headers, info: ForwardInfo): Headers {
  const headers = stripHopByHop(new Headers(incoming));
  const ip = isLoopback(info.remoteIp) ? info.publicIp : info.remoteIp;
  headers.set("host", info.host);
  headers.append("x-forwarded-host", info.host);
  headers.append("x-real-ip", ip);
  const xff = headers.get("x-forwarded-for");
  headers.set("x-forwarded-for", xff ? `${xff}, ${ip}` : ip);
  headers.set("accept-encoding", "identity");
  return headers;
}

/** The headers sent to the client: the backend's minus hop-by-hop, plus `X-Proxy` and `Server`. */
export function downstreamResponseHeaders(upstream: Headers): Headers {
  const headers = stripHopByHop(new Headers(upstream));
  headers.set("x-proxy", "true");
  if (!headers.has("server")) headers.set("server", "SideKick");
  return headers;
}

/** This machine's first non-loopback address (IPv4 preferred), or `fallback` when none. */
export function pickPublicIp(
  addresses: readonly { address: string; family: string }[],
  fallback: string,
): string {
  const usable = addresses.filter((a) => !isLoopback(a.address) && !a.address.startsWith("fe80:"));
  return usable.find((a) => a.family === "IPv4")?.address ?? usable[0]?.address ?? fallback;
}
