/**
 * `TCP_NODELAY` on a freshly bound listening socket, so that every connection accepted on it has
 * Nagle's algorithm off from its first byte.
 *
 * Why: `Deno.serve` turns Nagle's algorithm off on the plain-TCP connections it accepts, but not
 * on TLS ones. A response whose body leaves in a write of its own after the head then waits in
 * the kernel until the client acknowledges the head, and the client delays that acknowledgement
 * by about 40 ms: every HTTPS response stalls that long. The runtime gives no handle on those
 * sockets, but on Linux an accepted socket inherits `TCP_NODELAY` from its listening socket. So
 * right after binding, this process's descriptors are walked from 0 with libc's `getsockname`
 * and `getsockopt(SO_ACCEPTCONN)` (through FFI: `/proc` would need every permission), and every
 * listening TCP socket on the port that lacks the option gets it. Every listener of the port, not
 * just the first: worker isolates bind and walk at the same time on their own threads, so two
 * walks may both reach the same new socket first. A new socket takes the lowest free descriptor,
 * so the walk ends after a long run of descriptors that are not sockets (about 20 ms of calls);
 * nothing runs per request or per connection.
 *
 * @example
 * ```ts
 * import { setListenerNoDelay } from "./listener_nodelay.ts";
 * const server = Deno.serve({ port: 0, cert: "…", key: "…", onListen() {} }, () => new Response("hi"));
 * const set = setListenerNoDelay(server.addr.port);
 * if (!set.ok) console.error(`TLS responses may be delayed: ${set.error}`);
 * ```
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";

/** `IPPROTO_TCP` on Linux. */
const IPPROTO_TCP = 6;
/** `TCP_NODELAY` on Linux. */
const TCP_NODELAY = 1;
/** `SOL_SOCKET` on Linux. */
const SOL_SOCKET = 1;
/** `SO_ACCEPTCONN` on Linux (x86 and ARM). */
const SO_ACCEPTCONN = 30;
/** `RLIMIT_NOFILE` on Linux. */
const RLIMIT_NOFILE = 7;
/** `AF_INET` and `AF_INET6` on Linux. */
const AF_INET = 2, AF_INET6 = 10;
/** The walk stops here even if the descriptor limit is higher (or unlimited). */
const MAX_FDS = 1 << 20;
/**
 * The walk also stops after this many descriptors in a row that are not sockets: past the last
 * socket of a process the rest of the table is empty.
 */
export const SOCKET_GAP = 1 << 16;

/** The libc entry points used here. */
const LIBC_SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

/**
 * The TCP port of a `sockaddr` as `getsockname` fills it (IPv4 or IPv6, family in host byte
 * order, port in network byte order), or undefined for any other family.
 */
export function sockaddrPort(addr: Uint8Array, length: number): number | undefined {
  if (length < 4) return undefined;
  const family = new DataView(addr.buffer, addr.byteOffset).getUint16(0, true);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  return (addr[2] << 8) | addr[3];
}

/** The socket calls {@linkcode setNoDelayOnListeners} makes (tests pass fakes). */
export interface SocketCalls {
  /** One past the highest descriptor to look at. */
  limit(): number;
  /**
   * The local TCP port of `fd` if it is a listening IPv4/IPv6 socket, -1 for any other socket,
   * undefined if `fd` is not a socket (or not open).
   */
  listeningPort(fd: number): number | undefined;
  /** Whether `TCP_NODELAY` is set on `fd`. */
  noDelay(fd: number): boolean;
  /** Sets `TCP_NODELAY` on `fd`; false if the kernel refused. */
  setNoDelay(fd: number): boolean;
}

/**
 * Walks the descriptors from 0 and sets `TCP_NODELAY` on every listening socket of `port` that
 * lacks it (the one just bound, and any another isolate bound at the same time), until the limit
 * or {@linkcode SOCKET_GAP} descriptors in a row that are not sockets. Resolves to how many were
 * set (0: every listener of the port had it already); an error when the port has no listener
 * here or the kernel refused.
 */
export function setNoDelayOnListeners(
  port: number,
  calls: SocketCalls,
  gap: number = SOCKET_GAP,
): Result<number> {
  let found = 0, set = 0, sinceSocket = 0;
  const limit = calls.limit();
  for (let fd = 0; fd < limit && sinceSocket < gap; fd++) {
    const listening = calls.listeningPort(fd);
    if (listening === undefined) {
      sinceSocket++;
      continue;
    }
    sinceSocket = 0;
    if (listening !== port) continue;
    found++;
    if (calls.noDelay(fd)) continue;
    if (!calls.setNoDelay(fd)) {
      return err(`setsockopt(TCP_NODELAY) failed on the listener of port ${port}`);
    }
    set++;
  }
  return found > 0 ? ok(set) : err(`no listening socket of port ${port} found`);
}

/** Why `TCP_NODELAY` cannot be set here, or undefined when it can be tried. */
function unsupported(): string | undefined {
  if (Deno.build.os !== "linux") return "setting TCP_NODELAY on a listener needs Linux";
  const ffi = Deno.permissions.querySync({ name: "ffi" }).state;
  // Asking dlopen without the permission would prompt on a terminal: check first.
  if (ffi !== "granted") return "setting TCP_NODELAY on the listener needs --allow-ffi";
  return undefined;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** The real {@linkcode SocketCalls} over libc. */
function libcCalls(libc: Libc): SocketCalls {
  const addr = new Uint8Array(128);
  const length = new Uint32Array(1);
  const value = new Int32Array(1);
  const intOption = (fd: number, level: number, option: number): number | undefined => {
    length[0] = 4;
    return libc.getsockopt(fd, level, option, value, length) === 0 ? value[0] : undefined;
  };
  return {
    limit() {
      const limits = new BigUint64Array(2);
      if (libc.getrlimit(RLIMIT_NOFILE, limits) !== 0) return MAX_FDS;
      return Number(limits[0] < BigInt(MAX_FDS) ? limits[0] : BigInt(MAX_FDS));
    },
    listeningPort(fd) {
      length[0] = addr.length;
      if (libc.getsockname(fd, addr, length) !== 0) return undefined; // not a socket, or closed
      const port = sockaddrPort(addr, length[0]);
      if (port === undefined) return -1;
      return intOption(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1 ? port : -1;
    },
    noDelay: (fd) => intOption(fd, IPPROTO_TCP, TCP_NODELAY) === 1,
    setNoDelay: (fd) => libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, new Int32Array([1]), 4) === 0,
  };
}

/**
 * Gives the listening sockets of `port` `TCP_NODELAY` (see the module's doc). The result holds
 * how many were set (0: all had it already), or why it could not be done: not Linux, no FFI
 * permission, libc not found, no listener found, or `setsockopt` refused.
 */
export function setListenerNoDelay(port: number): Result<number> {
  const why = unsupported();
  if (why) return err(why);
  let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch (e) {
    return err(`unable to load libc.so.6 to set TCP_NODELAY: ${message(e)}`);
  }
  try {
    return setNoDelayOnListeners(port, libcCalls(libc.symbols));
  } finally {
    libc.close();
  }
}

/**
 * Whether `TCP_NODELAY` is set on socket `fd`, and the listening port of each descriptor below
 * `limit` (Linux with FFI only). For tests and diagnostics.
 */
export function inspectSockets(limit: number): { fd: number; port: number; noDelay: boolean }[] {
  const libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  try {
    const calls = libcCalls(libc.symbols);
    const found = [];
    for (let fd = 0; fd < limit; fd++) {
      const port = calls.listeningPort(fd);
      if (port !== undefined && port >= 0) found.push({ fd, port, noDelay: calls.noDelay(fd) });
    }
    return found;
  } finally {
    libc.close();
  }
}
