/**
 * The data plane of one isolate: the listener and everything a request touches on its way to a
 * backend — the router, the proxy, the WebSocket relay and the upstream transport. It decides
 * nothing about health: it reads the current pool through a hook and reports what it sees
 * (records, passive ejections) through others. The control plane runs one data plane in its own
 * isolate (`--workers 1`) or one per worker isolate, all listening on one port with
 * `SO_REUSEPORT` so the kernel spreads connections over them.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import type { DnsCache } from "../upstream/dns.ts";
import type { PlaneSettings } from "./plane_settings.ts";
import { ALL_OFFLINE, badGateway } from "./error_document.ts";
import { SHUTTING_DOWN } from "../upstream/fetch_errors.ts";
import type { Pool } from "../shared/pool.ts";
import type { RecordListener } from "../shared/exchange_record.ts";
import { err, type Result } from "../shared/result.ts";
import { createRouter } from "./router.ts";
import type { KeyPair } from "../tls/key_pair.ts";
import { serveTls, type TlsServer } from "../tls/https_listener.ts";
import { httpClientTlsOptions } from "../tls/backend_tls.ts";
import { createTransport } from "../upstream/transport.ts";
import type { InFlight, ProxyContext } from "./proxy.ts";
import { LinkedList } from "../shared/linked_list.ts";
import { proxyWebSocket } from "./websocket.ts";
import { ReplayMemory, RetryBudget } from "./retry.ts";
import { BackendChoice } from "./choice.ts";
import { Deadlines } from "./attempt.ts";
import { PeekClock } from "./body_meter.ts";
import type { Ejection } from "../shared/outlier.ts";

/** What the isolate that runs a data plane lends it, besides its {@linkcode PlaneSettings}. */
export interface PlaneIsolate {
  /** The port is shared with other isolates' listeners (bind with `SO_REUSEPORT`, no probe). */
  shared: boolean;
  /** Resolves hostname endpoints for the transport. */
  dns: DnsCache;
}

/**
 * How many request bodies of the largest retryable size one data plane keeps at once; past
 * that, bodies stream (and are not retried) rather than hold more memory.
 */
export const REPLAY_BODIES = 32;

/** How a data plane reads the pool and reports back. */
export interface DataPlaneHooks {
  /** The current pool (swapped by the control plane on reload). */
  pool(): Pool;
  /** Receives every finished proxied exchange. */
  onRecord: RecordListener;
  /** Called when a transport failure marked a backend DOWN here. */
  onEject(backend: Backend): void;
  /** Answers `/.prometheus/metrics`. */
  metrics(req: Request): Response | Promise<Response>;
  /** Error lines (a handler that threw, a failed certificate swap). */
  onError(text: string): void;
  /** This isolate ejected a backend (`--eject-after`): log it, count it. */
  onEjection?(backend: Backend, ejection: Ejection): void;
}

/** A listening data plane. */
export interface DataPlane {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the listener has closed. */
  readonly finished: Promise<void>;
  /** Serves `pair` to new connections (HTTPS only); in-flight requests keep the old one. */
  swapCertificate(pair: KeyPair): Result<void>;
  /** rr-dns: https connections to these URL hosts verify and send SNI for the mapped name. */
  addServerNames(names: ReadonlyMap<string, string>): void;
  /** Stops accepting, lets in-flight requests finish for `drainTimeoutMs`, then cuts them. */
  stop(drainTimeoutMs: number): Promise<void>;
  /**
   * HTTPS only: why `TCP_NODELAY` could not be set on the listener (responses may then wait
   * ~40 ms for the client's delayed acknowledgement); undefined when it is set or not HTTPS.
   */
  readonly noDelayError: string | undefined;
}

/** Binds the listener; resolves once listening, rejects with what `Deno.serve` threw. */
export function startDataPlane(
  settings: PlaneSettings,
  isolate: PlaneIsolate,
  hooks: DataPlaneHooks,
): Promise<DataPlane> {
  const transport = createTransport({ tls: settings.backendTls, dns: isolate.dns });
  // WebSocket sessions need their own client: the handshake must carry the client's Host.
  const wsClient = Deno.createHttpClient({
    allowHost: true,
    ...httpClientTlsOptions(settings.backendTls),
  });
  const inflight = new LinkedList<InFlight>();
  let tlsServer: TlsServer | undefined; // set once listening over HTTPS
  const publicIp = settings.publicIp;
  const choice = new BackendChoice(hooks.pool, {
    responseTimeoutMs: settings.responseTimeoutMs ?? 0,
    hedgeAfterMs: settings.hedgeAfterMs ?? 0,
    onEjection: hooks.onEjection,
  });
  // Swept every 50 ms, or a tenth of a shorter timeout (at least 5 ms). Without a timeout it
  // still follows the clients of exchanges waiting that long (see Deadlines).
  const timeoutMs = settings.responseTimeoutMs ?? 0;
  const deadlines = new Deadlines(timeoutMs > 0 ? Math.min(50, Math.max(5, timeoutMs / 10)) : 50);
  const peekClock = new PeekClock();
  const proxy: ProxyContext = {
    transport,
    publicIp,
    onRecord: hooks.onRecord,
    onEject: hooks.onEject,
    inflight,
    verifyBodies: settings.verifyBodies,
    headStalls: () => tlsServer !== undefined && !tlsServer.noDelay.ok,
    gray: choice,
    deadlines,
    peekClock,
    retry: settings.retries > 0
      ? {
        retries: settings.retries,
        bufferBytes: settings.retryBufferBytes,
        memory: new ReplayMemory(settings.retryBufferBytes * REPLAY_BODIES),
        budget: new RetryBudget({}, settings.retryBudget),
        pick: (tried) => choice.forRetry(tried),
      }
      : undefined,
  };
  const router = createRouter({
    pool: hooks.pool,
    choice,
    certificatePem: () => settings.certificatePem,
    missingHostAuthority: () => settings.tls ? undefined : noHost,
    metrics: hooks.metrics,
    proxy,
    websocket: (req, info, target) => {
      const backend = choice.forWebSocket();
      if (!backend) return badGateway(ALL_OFFLINE, target.path);
      return proxyWebSocket(req, info, backend, target, { client: wsClient, publicIp });
    },
  });
  let noHost: string | undefined; // set once the port is known
  const onError = (e: unknown) => {
    hooks.onError(e instanceof Error ? e.message : String(e));
    return new Response("internal error\n", { status: 500 });
  };

  return new Promise<DataPlane>((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    // onListen may run before Deno.serve returns: resolve once `plane` exists.
    const listening = () => queueMicrotask(() => resolve(plane));
    try {
      const options = {
        hostname: settings.hostname,
        port: settings.port,
        automaticCompression: false,
        onError,
      };
      if (settings.tls) {
        const tlsOptions = {
          ...options,
          shared: isolate.shared,
          http2: !settings.noHttp2,
          onListen: listening,
        };
        server = tlsServer = serveTls(tlsOptions, router, settings.tls);
      } else {
        server = Deno.serve(
          { ...options, reusePort: isolate.shared, onListen: listening },
          router,
        );
      }
    } catch (e) {
      transport.close();
      wsClient.close();
      reject(e);
      return;
    }
    noHost = `localhost:${server.addr.port}`;
    const plane: DataPlane = {
      get noDelayError() {
        const noDelay = tlsServer?.noDelay;
        return noDelay && !noDelay.ok ? noDelay.error : undefined;
      },
      get addr() {
        return server.addr;
      },
      finished: server.finished,
      swapCertificate(pair) {
        if (!tlsServer) return err("not serving HTTPS");
        const swapped = tlsServer.swap(pair);
        return swapped;
      },
      addServerNames: (names) => transport.addServerNames(names),
      async stop(drainTimeoutMs) {
        // Past the deadline, cut the exchanges still in flight. (Aborting Deno.serve's own signal
        // once shutdown() has begun throws an uncaught BadResource inside Deno 2.9.6.)
        const timer = setTimeout(() => {
          for (const f of inflight.entries()) f.controller.abort(SHUTTING_DOWN);
        }, drainTimeoutMs);
        await server.shutdown();
        clearTimeout(timer);
        await server.finished;
        deadlines.stop();
        peekClock.stop();
        transport.close();
        wsClient.close();
      },
    };
  });
}
