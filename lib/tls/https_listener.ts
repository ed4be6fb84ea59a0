/**
 * An HTTPS listener whose certificate can be replaced without dropping in-flight requests.
 *
 * `Deno.serve` takes its certificate once, at bind time, and has no public way to swap it. A
 * reload therefore binds a second `Deno.serve` on the same port with `SO_REUSEPORT`, then shuts
 * the old one down gracefully: new connections reach the new listener (and certificate), while
 * requests already in flight on the old one finish. `reusePort` on a TLS listener is an unstable
 * Deno API (`--unstable-net`, set in deno.json); without it the certificate is served until
 * restart and a changed pair is reported, never half-applied.
 *
 * @example
 * ```ts
 * import { loadKeyPair } from "./key_pair.ts";
 * import { serveTls } from "./https_listener.ts";
 * const loaded = loadKeyPair({ certPath: "public.crt", keyPath: "private.key" });
 * if (!loaded.ok) throw new Error(loaded.error);
 * const server = serveTls({ hostname: "127.0.0.1", port: 8443 }, () => new Response("hi"), loaded.value.pair);
 * await server.shutdown();
 * ```
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";
import type { KeyPair } from "./key_pair.ts";
import { setListenerNoDelay } from "./listener_nodelay.ts";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Listener options of {@linkcode serveTls} (the TLS-free part of `Deno.ServeTcpOptions`). */
export interface TlsServeOptions {
  /** Address to bind. */
  readonly hostname: string;
  /** Port to bind; 0 lets the kernel pick (later rebinds reuse the picked one). */
  readonly port: number;
  /** Passed to `Deno.serve`. */
  readonly automaticCompression?: boolean;
  /** Passed to `Deno.serve`. */
  readonly onError?: (error: unknown) => Response | Promise<Response>;
  /** Called once, when the first listener is bound. */
  readonly onListen?: (addr: Deno.NetAddr) => void;
  /**
   * How long a shutdown waits, once no request is in flight, for connections that never finished
   * their TLS handshake (default {@linkcode HANDSHAKE_GRACE_MS}).
   */
  readonly handshakeGraceMs?: number;
  /**
   * The port is shared with listeners of other isolates (`--workers`): bind it with
   * `SO_REUSEPORT` directly, since the caller already checked that it was free.
   */
  readonly shared?: boolean;
  /** Offer HTTP/2 by ALPN (default true); false: HTTP/1.1 only (`--no-http2`). */
  readonly http2?: boolean;
}

/** The part of `Deno.ServeTcpOptions & Deno.TlsCertifiedKeyPem` that {@linkcode serveTls} uses. */
type TlsBindOptions = {
  hostname: string;
  port: number;
  reusePort: boolean;
  cert: string;
  key: string;
  automaticCompression?: boolean;
  onError?: (error: unknown) => Response | Promise<Response>;
};

/** The runtime's server loop over a listener of our own (not part of Deno's public API). */
type ServeOnListener = (
  listener: Deno.Listener,
  signal: AbortSignal | undefined,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  onError: (error: unknown) => Response | Promise<Response>,
  onListen: () => void,
  automaticCompression?: boolean,
) => Deno.HttpServer<Deno.NetAddr>;

/**
 * The runtime's `serveHttpOnListener`, or undefined if this runtime lacks it. `Deno.serve` always
 * offers `h2` and `http/1.1` by ALPN and refuses an `alpnProtocols` option, so an HTTP/1.1-only
 * HTTPS server binds its own `Deno.listenTls` listener and hands it to the same server loop that
 * `Deno.serve` runs, found among the runtime's internals (Deno 2.9.6 keeps it there).
 */
export function serveOnListener(): ServeOnListener | undefined {
  const deno = Deno as unknown as Record<symbol | string, unknown>;
  const key = deno.internal as symbol | undefined;
  const internals = key === undefined ? undefined : deno[key] as Record<string, unknown>;
  const serve = internals?.serveHttpOnListener;
  return typeof serve === "function" ? serve as ServeOnListener : undefined;
}

/** `Deno.serve` over TLS offering HTTP/1.1 only by ALPN. */
function serveHttp1Tls(
  options: TlsBindOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  const serve = serveOnListener();
  if (!serve) throw new Error("--no-http2: this Deno runtime cannot serve HTTPS without HTTP/2");
  const listener = Deno.listenTls(
    {
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
      cert: options.cert,
      key: options.key,
      alpnProtocols: ["http/1.1"],
    } as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
  );
  const onError = options.onError ??
    ((e: unknown) => new Response(`internal error: ${message(e)}\n`, { status: 500 }));
  try {
    return serve(listener, undefined, handler, onError, () => {}, options.automaticCompression);
  } catch (e) {
    listener.close();
    throw e;
  }
}

/**
 * Deno 2.9.6's graceful shutdown of an HTTPS server waits, without limit, for every connection
 * still in its TLS handshake (a client that connects and sends nothing), and forcing it through
 * the server's `signal` after `shutdown()` throws an uncaught `BadResource`. So once no request is
 * in flight, a shutdown gives such connections this long (the 5 s after which Go's
 * `http.Server.Shutdown` drops never-used connections), then reports the server finished; the
 * stragglers go when their clients do, or with the process.
 */
export const HANDSHAKE_GRACE_MS = 5_000;

/**
 * Whether this process may bind TLS listeners with `reusePort` (`--unstable-net`). Checked
 * through `Deno.listenDatagram`, which exists only under that flag: asking `Deno.serve` for
 * `reusePort` without it ends the process instead of throwing.
 */
export function canRebindTls(): boolean {
  return Deno.build.os === "linux" &&
    typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}

/** An HTTPS server whose certificate can be replaced; see {@linkcode serveTls}. */
export interface TlsServer extends Deno.HttpServer<Deno.NetAddr> {
  /** Whether {@linkcode TlsServer.swap} can work in this process (Linux, `--unstable-net`). */
  readonly reloadable: boolean;
  /**
   * Serves `pair` to new connections: binds a new listener on the same address, then shuts the
   * old one down gracefully (its in-flight requests finish). On error nothing changes.
   */
  swap(pair: KeyPair): Result<void>;
  /**
   * Whether the listener has `TCP_NODELAY` (so responses never wait for the client's delayed
   * acknowledgement), as of the latest bind: how many sockets were set, or why it failed.
   */
  readonly noDelay: Result<number>;
}

/**
 * `Deno.serve` over TLS (HTTP/1.1 and HTTP/2 by ALPN) with a replaceable certificate. Throws
 * what `Deno.serve` throws for the first bind (e.g. `Deno.errors.AddrInUse`).
 */
export function serveTls(
  options: TlsServeOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  pair: KeyPair,
): TlsServer {
  const reusePort = canRebindTls();
  // Requests in flight (until their response is delivered or the client leaves), across every
  // listener: what a shutdown must wait for, unlike connections stuck in a handshake.
  let active = 0;
  const settled = () => void active--;
  const counted: Deno.ServeHandler<Deno.NetAddr> = (req, info) => {
    active++;
    info.completed.then(settled, settled);
    return handler(req, info);
  };
  let noDelay: Result<number> = err("not listening");
  const bind = (p: KeyPair, port: number): Deno.HttpServer<Deno.NetAddr> => {
    const bindOptions: TlsBindOptions = {
      hostname: options.hostname,
      port,
      reusePort,
      cert: p.cert,
      key: p.key,
      automaticCompression: options.automaticCompression,
      onError: options.onError,
    };
    const server = options.http2 === false
      ? serveHttp1Tls(bindOptions, counted)
      : Deno.serve({ ...bindOptions, onListen: () => {} }, counted);
    // Before the event loop runs again, so before the first connection is accepted.
    noDelay = setListenerNoDelay(server.addr.port);
    return server;
  };

  let port = options.port;
  if (reusePort && !options.shared) {
    // SO_REUSEPORT would let a second process share the port silently: probe it first so an
    // address in use fails as it does without TLS.
    const probe = Deno.listen({ hostname: options.hostname, port, transport: "tcp" });
    port = (probe.addr as Deno.NetAddr).port;
    probe.close();
  }
  let current = bind(pair, port);
  const addr = current.addr;
  const draining = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let closing: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  options.onListen?.(addr);

  const grace = options.handshakeGraceMs ?? HANDSHAKE_GRACE_MS;
  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      let done = false;
      const graceful = Promise.all([current.shutdown(), ...[...draining].map((s) => s.finished)])
        .catch(() => {}) // nothing more to do about a listener that failed to close
        .finally(() => (done = true));
      let quietSince: number | undefined;
      while (!done) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([graceful, new Promise((r) => (timer = setTimeout(r, 50)))]);
        clearTimeout(timer);
        if (done) break;
        if (active > 0) quietSince = undefined;
        else if (Date.now() - (quietSince ??= Date.now()) >= grace) break;
      }
      resolveFinished();
    })();
    return closing;
  };
  return {
    addr,
    finished,
    reloadable: reusePort,
    get noDelay() {
      return noDelay;
    },
    swap(next) {
      if (closing) return err("the server is shutting down");
      if (!reusePort) {
        return err(
          Deno.build.os === "linux"
            ? "replacing the certificate of a running listener needs --unstable-net; " +
              "restart sidekick to serve the new certificate"
            : "replacing the certificate of a running listener needs Linux; " +
              "restart sidekick to serve the new certificate",
        );
      }
      let fresh: Deno.HttpServer<Deno.NetAddr>;
      try {
        fresh = bind(next, addr.port);
      } catch (e) {
        return err(`unable to listen with the new certificate: ${message(e)}`);
      }
      const old = current;
      current = fresh;
      draining.add(old);
      old.shutdown().finally(() => draining.delete(old));
      return ok(undefined);
    },
    shutdown,
    ref() {
      for (const s of [current, ...draining]) s.ref();
    },
    unref() {
      for (const s of [current, ...draining]) s.unref();
    },
    [Symbol.asyncDispose]: shutdown,
  };
}
