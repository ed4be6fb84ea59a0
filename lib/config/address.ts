/**
 * Listen addresses in Go's `host:port` form: `:8080` (all interfaces), `127.0.0.1:8080`,
 * `localhost:0`, `[::1]:8080`. Pure.
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";

/** Where to listen. */
export interface ListenAddress {
  /** Interface to bind (`0.0.0.0` for "all"). */
  hostname: string;
  /** TCP port, 0 for "any free port". */
  port: number;
}

/** Parses `--address`. */
export function parseListenAddress(address: string, flag = "--address"): Result<ListenAddress> {
  const m = /^(?:\[([0-9a-fA-F:.%\w]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const bad = `invalid ${flag} "${address}": expected host:port, :port or [ipv6]:port`;
  if (!m) return err(bad);
  const port = Number(m[3]);
  if (port > 65535) return err(`invalid ${flag} "${address}": port must be in [0, 65535]`);
  const hostname = m[1] ?? m[2];
  return ok({ hostname: hostname === "" ? "0.0.0.0" : hostname, port });
}

/** How a listening address is written in URLs and messages (IPv6 bracketed). */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * The `host:port` a client on this machine uses to reach a bound address: a wildcard bind
 * (`0.0.0.0`, `::`) is reached through loopback.
 */
export function reachableHostPort(addr: { hostname: string; port: number }): string {
  const host = addr.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : addr.hostname === "::"
    ? "::1"
    : addr.hostname;
  return formatHostPort(host, addr.port);
}
