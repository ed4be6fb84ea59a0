/**
 * Assembles one sidekick from a {@linkcode Config}: sites of backends, health checks, transport,
 * router and listener. No global state: tests start several in one process on port 0.
 *
 * @example
 * ```ts
 * import { createSidekick, makeConfig } from "./mod.ts";
 * const sk = createSidekick(makeConfig({ address: "127.0.0.1:0", sites: ["http://127.0.0.1:9000"] }));
 * await sk.start();
 * console.log(sk.url);
 * await sk.stop();
 * ```
 * @module
 */

import { parseListenAddress, reachableHostPort } from "./address.ts";
import { Backend, type TransitionListener } from "./backend.ts";
import type { Random } from "./balancer.ts";
import type { Config } from "./config.ts";
import { HealthChecker } from "./health.ts";
import { pickPublicIp } from "./headers.ts";
import { Pool } from "./pool.ts";
import type { RecordListener } from "./record.ts";
import { createRouter } from "./server.ts";
import { healthUrl, parseSites } from "./sites.ts";
import {
  type BackendTls,
  createTransport,
  httpClientTlsOptions,
  loadBackendTls,
} from "./transport.ts";
import { DnsCache, DnsLookupError, expandRrDns, type PlannedEndpoint, samePlan } from "./dns.ts";
import { proxyWebSocket } from "./websocket.ts";
import { ALL_OFFLINE, badGateway } from "./error_document.ts";
import { SHUTTING_DOWN } from "./fetch_errors.ts";
import { createMetricsHandler } from "./metrics.ts";
import { inspectorAllowed, type PprofServer, startPprof } from "./pprof.ts";
import { Stats } from "./stats.ts";
import { planServerTls, serveMaybeTls } from "./tls.ts";

/** Bad configuration: a one-line message for the user (exit status 2 from the CLI). */
export class ConfigError extends Error {
  /** A configuration error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Hooks and knobs that are not flags. */
export interface SidekickOptions {
  /** Receives every real UP/DOWN transition. */
  onTransition?: TransitionListener;
  /** Receives every finished exchange (proxied requests and health checks). */
  onRecord?: RecordListener;
  /** Random source for balancing and jitter (tests make it deterministic). */
  random?: Random;
  /** The address put in `X-Forwarded-For` for loopback clients; default: a local interface's. */
  publicIp?: string;
  /** How long `stop()` lets in-flight requests finish before closing connections, ms. */
  drainTimeoutMs?: number;
  /** Receives info lines (rr-dns); default: `console.log("sidekick: " + text)`. */
  onInfo?: (text: string) => void;
  /** Hostname resolver of the DNS cache (tests pass a fake); default: the system resolver. */
  resolver?: (hostname: string) => Promise<string[]>;
  /** Per-endpoint counters to feed (default: a new {@linkcode Stats}). */
  stats?: Stats;
  /** Trace lines the console dropped so far, exported as `sidekick_trace_lines_dropped_total`. */
  traceLinesDropped?: () => number;
  /** Receives error lines (TLS reload failures); default: `console.error` with a prefix. */
  onError?: (text: string) => void;
  /** Receives the `--auto-tls-host` banner; default: `console.log`. */
  onBanner?: (text: string) => void;
}

/** A running (or ready-to-run) sidekick. */
export interface Sidekick {
  /** The configuration it was built from. */
  readonly config: Config;
  /** The current pool of backends (replaced by `reload()`). */
  readonly pool: Pool;
  /** `http(s)://host:port` of the listener; valid after `start()`. */
  readonly url: string;
  /** The bound address; valid after `start()`. */
  readonly addr: Deno.NetAddr;
  /** Binds the listener and starts the health checks; resolves once listening. */
  start(): Promise<void>;
  /** Resolves after every backend has been checked once. */
  ready(): Promise<void>;
  /** Rebuilds the sites from the same configuration; swaps after the new first health round. */
  reload(): Promise<void>;
  /** Stops accepting, drains in-flight requests (then forces), stops health checks. */
  stop(drainTimeoutMs?: number): Promise<void>;
  /** Resolves when the listener has closed. */
  readonly finished: Promise<void>;
  /** Per-endpoint counters of every site (metrics, table); kept across `reload()`. */
  readonly stats: Stats;
  /** The `--pprof` listener's address once started; undefined without `--pprof`. */
  readonly pprofAddr: Deno.NetAddr | undefined;
}

/** The default drain deadline of a graceful stop. */
export const DRAIN_TIMEOUT_MS = 30_000;

/** Endpoints of every site with their health URLs; throws {@linkcode ConfigError}. */
export function planSites(config: Config): { endpoint: string; healthUrl: string }[][] {
  const parsed = parseSites(config.sites);
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value.map((endpoints, i) => {
    const last = i === parsed.value.length - 1;
    const path = last ? config.readHealthPath : config.healthPath;
    return endpoints.map((endpoint) => {
      const url = healthUrl(endpoint, path, config.healthPort);
      if (!url.ok) throw new ConfigError(url.error);
      return { endpoint, healthUrl: url.value };
    });
  });
}

interface Generation {
  pool: Pool;
  checker: HealthChecker;
}

/** Builds a sidekick; throws {@linkcode ConfigError} for bad configuration. */
export function createSidekick(config: Config, options: SidekickOptions = {}): Sidekick {
  const listen = parseListenAddress(config.address);
  if (!listen.ok) throw new ConfigError(listen.error);
  const plan = planSites(config); // validate now, before anything binds
  const pprofListen = config.pprof ? parseListenAddress(config.pprof, "--pprof") : undefined;
  if (pprofListen && !pprofListen.ok) throw new ConfigError(pprofListen.error);
  if (pprofListen && !inspectorAllowed()) {
    throw new ConfigError("--pprof needs the sys permission for the inspector (--allow-sys)");
  }

  // Backend TLS files are read only when a site uses https (as the Go sidekick does).
  let tls: BackendTls | undefined;
  if (plan.flat().some((e) => /^https:/i.test(e.endpoint))) {
    const loaded = loadBackendTls(config);
    if (!loaded.ok) throw new ConfigError(loaded.error);
    tls = loaded.value;
  }
  const dns = new DnsCache({ ttlMs: config.dnsTtlMs, resolver: options.resolver });
  const transport = createTransport({ tls, dns });
  const info = options.onInfo ?? ((text: string) => console.log(`sidekick: ${text}`));
  // Server TLS: --cert/--key are read and checked now (errors before anything binds).
  const tlsPlan = planServerTls(config, {
    onInfo: info,
    onError: options.onError ?? ((text) => console.error(`sidekick: <ERROR> ${text}`)),
    onBanner: options.onBanner ?? ((text) => console.log(text)),
  });
  if (!tlsPlan.ok) throw new ConfigError(tlsPlan.error);
  const serverTls = tlsPlan.value;
  let currentPlan: PlannedEndpoint[][] = plan;
  let stopped = false;
  /** rr-dns: the sites with single-hostname sites expanded; `fresh` bypasses the DNS cache. */
  const rrPlan = async (fresh: boolean) => {
    const expanded = await expandRrDns(plan, (h) => fresh ? dns.resolveNow(h) : dns.lookup(h));
    transport.addServerNames(expanded.serverNames);
    return expanded;
  };
  const random = options.random ?? Math.random;
  const publicIp = options.publicIp ?? localPublicIp();
  const drainDefault = options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
  // Every record feeds the counters (all sites, health checks in their own series), then the
  // embedder's listener (the console applies the --trace filters).
  const stats = options.stats ?? new Stats();
  const onRecord: RecordListener = (r) => {
    stats.observe(r);
    options.onRecord?.(r);
  };
  let pprof: PprofServer | undefined;

  const build = (sitePlan: PlannedEndpoint[][] = plan): Generation => {
    const onTransition: TransitionListener = (t) => options.onTransition?.(t);
    const sites = sitePlan.map((site, i) =>
      site.map((s) => new Backend(s.endpoint, i + 1, s.healthUrl, onTransition))
    );
    const pool = new Pool(sites, config.hostBalance, random);
    const checker = new HealthChecker(pool.backends, transport, {
      intervalMs: config.healthDurationMs,
      timeoutMs: config.healthTimeoutMs,
      optimistic: config.healthOptimistic,
      onRecord,
      random,
    });
    return { pool, checker };
  };

  let current = build();
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let firstRound: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));

  const inflight = new Set<AbortController>();
  // WebSocket sessions need their own client: the handshake must carry the client's Host.
  const wsClient = Deno.createHttpClient({ allowHost: true, ...httpClientTlsOptions(tls) });
  const router = createRouter({
    pool: () => current.pool,
    certificatePem: () => serverTls?.certificatePem(),
    metrics: createMetricsHandler({
      pool: () => current.pool,
      stats,
      traceLinesDropped: options.traceLinesDropped,
    }),
    proxy: {
      transport,
      publicIp,
      onRecord,
      onEject: (b) => current.checker.backendDown(b),
      inflight,
    },
    websocket: (req, info, target) => {
      const backend = current.pool.pick();
      if (!backend) return badGateway(ALL_OFFLINE, target.path);
      return proxyWebSocket(req, info, backend, target, { client: wsClient, publicIp });
    },
  });

  const sidekick: Sidekick = {
    config,
    stats,
    get pprofAddr() {
      return pprof?.addr;
    },
    get pool() {
      return current.pool;
    },
    get addr() {
      if (!server) throw new Error("sidekick not started");
      return server.addr;
    },
    get url() {
      return `${serverTls ? "https" : "http"}://${reachableHostPort(sidekick.addr)}`;
    },
    async start() {
      if (server) return;
      if (config.rrDnsMode) {
        try {
          const expanded = await rrPlan(true);
          for (const e of expanded.expanded) info(`RR DNS mode enabled, using ${e} as hostname`);
          currentPlan = expanded.sites;
          current = build(currentPlan);
        } catch (e) {
          if (!(e instanceof DnsLookupError)) throw e;
          throw new ConfigError(`--rr-dns-mode: unable to lookup host ${e.host}: ${e.reason}`);
        }
      }
      dns.start();
      if (pprofListen?.ok && !pprof) {
        try {
          pprof = await startPprof(pprofListen.value);
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          throw new ConfigError(`--pprof: unable to listen on '${config.pprof}': ${why}`);
        }
        info(`profiling (--pprof) on '${pprof.url}/.pprof/'`);
      }
      await serverTls?.prepare(); // auto-TLS: generate the certificate, print the banner
      return new Promise<void>((resolve, reject) => {
        try {
          server = serveMaybeTls(serverTls, {
            hostname: listen.value.hostname,
            port: listen.value.port,
            automaticCompression: false,
            onListen: () => resolve(),
            onError: (e) => {
              console.error(`sidekick: <ERROR> ${e instanceof Error ? e.message : e}`);
              return new Response("internal error\n", { status: 500 });
            },
          }, router);
          server.finished.then(resolveFinished, resolveFinished);
          firstRound = current.checker.start();
        } catch (e) {
          reject(e);
        }
      });
    },
    ready() {
      return firstRound ?? current.checker.start();
    },
    reload() {
      return swap(async () => config.rrDnsMode ? (await rrPlan(true)).sites : planSites(config));
    },
    async stop(drainTimeoutMs = drainDefault) {
      stopped = true;
      dns.stop();
      current.checker.stop();
      if (server) {
        // Past the deadline, cut the exchanges still in flight. (Aborting Deno.serve's own signal
        // once shutdown() has begun throws an uncaught BadResource inside Deno 2.9.6.)
        const timer = setTimeout(() => {
          for (const c of inflight) c.abort(SHUTTING_DOWN);
        }, drainTimeoutMs);
        await server.shutdown();
        clearTimeout(timer);
        await server.finished;
      }
      await pprof?.stop();
      transport.close();
      wsClient.close();
    },
    finished,
  };

  /** Builds a generation from a plan, checks it once, then swaps it in (SIGHUP, rr-dns). */
  const swap = (makePlan: () => Promise<PlannedEndpoint[][]>): Promise<void> => {
    // A failed swap (e.g. DNS down on SIGHUP) keeps the current sites and later swaps still run.
    reloading = reloading.catch(() => {}).then(async () => {
      const nextPlan = await makePlan();
      const next = build(nextPlan);
      await next.checker.start();
      if (stopped) return next.checker.stop();
      const old = current;
      current = next;
      currentPlan = nextPlan;
      old.checker.stop();
      stats.retain(current.pool.backends.map((b) => b.endpoint)); // gone endpoints: no series
    });
    return reloading;
  };

  // rr-dns beyond the Go sidekick: every --dns-ttl refresh re-expands the sites, and a changed
  // address set is swapped in like a reload (the old sites serve until the new ones are checked).
  if (config.rrDnsMode) {
    dns.onRefresh(async () => {
      if (!server || stopped) return;
      const expanded = await rrPlan(false).catch(() => undefined); // failure: stale sites kept
      if (!expanded || samePlan(expanded.sites, currentPlan)) return;
      const names = expanded.sites.flat().map((e) => e.endpoint).join(", ");
      info(`RR DNS: addresses changed, now using ${names}`);
      await swap(() => Promise.resolve(expanded.sites)).catch(() => {});
    });
  }
  return sidekick;
}

/** This machine's first non-loopback address, for loopback clients' `X-Forwarded-For`. */
function localPublicIp(): string {
  try {
    return pickPublicIp(Deno.networkInterfaces(), "127.0.0.1");
  } catch {
    return "127.0.0.1"; // no --allow-sys=networkInterfaces: keep the loopback address
  }
}
