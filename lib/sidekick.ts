/**
 * Assembles one sidekick from a {@linkcode Config}. This module is the control plane: flags,
 * sites, DNS, health checks, reloads, certificates and the scrape-time metrics live here, in the
 * isolate that calls {@linkcode createSidekick}. Requests are served by data planes
 * (`data_plane.ts`): one in this isolate with `workers: 1`, else one per worker isolate
 * (`data_worker.ts`), all on one port. The UP flags, in-flight counts and counters they share are
 * in shared memory, so the N isolates balance, eject and count as one sidekick. No global state:
 * tests start several in one process on port 0.
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
import type { TransitionListener } from "./backend.ts";
import type { Random } from "./balancer.ts";
import type { Config } from "./config.ts";
import { type DataPlane, startDataPlane } from "./data_plane.ts";
import { HealthChecker } from "./health.ts";
import { pickPublicIp } from "./headers.ts";
import { type GenerationPlan, planGeneration, poolOf } from "./generation.ts";
import type { Pool } from "./pool.ts";
import type { RecordListener } from "./record.ts";
import { healthUrl, parseSites } from "./sites.ts";
import { type BackendTls, createTransport, loadBackendTls } from "./transport.ts";
import { DnsCache, DnsLookupError, expandRrDns, type PlannedEndpoint, samePlan } from "./dns.ts";
import { createMetricsHandler } from "./metrics.ts";
import { inspectorAllowed, type PprofServer, startPprof } from "./pprof.ts";
import { Stats } from "./stats.ts";
import { canRebindTls, type KeyPair, planServerTls } from "./tls.ts";
import type { TraceStyle } from "./trace.ts";
import { type PlaneHandle, startWorkerPlanes } from "./worker_planes.ts";
import type { Result } from "./result.ts";
import { RetryBudget } from "./retry.ts";

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
  /**
   * Receives every finished exchange: health checks, and proxied requests served in this isolate
   * (`workers: 1`). Worker isolates format their requests' trace lines themselves: see
   * {@linkcode SidekickOptions.traceLines}.
   */
  onRecord?: RecordListener;
  /**
   * With more than one worker: the style of the trace lines the workers print (the `--trace`,
   * `--errors`, `--status-code` and `--quiet` filters of the configuration apply) and where the
   * batches of lines go. Undefined: workers print no trace lines.
   */
  traceLines?: { style: TraceStyle; write(lines: string[]): void };
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
  /** How many data planes serve requests (valid after `start()`). */
  readonly workers: number;
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
  plan: GenerationPlan;
  pool: Pool;
  checker: HealthChecker;
}

/** The most workers chosen by default: past four, a sidecar rarely has the cores to spare. */
export const DEFAULT_MAX_WORKERS = 4;

/**
 * How many data planes to run: `--workers`, or the CPUs this process may use (the runtime counts
 * the affinity mask and cgroup quota) up to {@linkcode DEFAULT_MAX_WORKERS}; one where the kernel
 * would not spread connections over listeners sharing a port (`SO_REUSEPORT` balances only on
 * Linux) or where the runtime cannot share one (`--unstable-net` missing). Returns the count and
 * the reason for one when more were asked for or available.
 */
export function chooseWorkers(
  asked: number,
  cpus: number,
  canShare: boolean,
  os: string = Deno.build.os,
): { workers: number; note?: string } {
  const wanted = asked > 0 ? asked : Math.max(1, Math.min(cpus, DEFAULT_MAX_WORKERS));
  if (wanted === 1 || canShare) return { workers: wanted };
  const why = os !== "linux"
    ? `${os} does not spread connections over listeners that share a port`
    : "sharing the port needs --unstable-net";
  return { workers: 1, note: `serving with one worker: ${why}` };
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
  // The control plane's own transport: health checks only.
  const transport = createTransport({ tls, dns });
  const info = options.onInfo ?? ((text: string) => console.log(`sidekick: ${text}`));
  const onError = options.onError ?? ((text) => console.error(`sidekick: <ERROR> ${text}`));
  // Server TLS: --cert/--key are read and checked now (errors before anything binds).
  const tlsPlan = planServerTls(config, {
    onInfo: info,
    onError,
    onBanner: options.onBanner ?? ((text) => console.log(text)),
  });
  if (!tlsPlan.ok) throw new ConfigError(tlsPlan.error);
  const serverTls = tlsPlan.value;
  const { workers, note } = chooseWorkers(
    config.workers,
    navigator.hardwareConcurrency,
    canRebindTls(),
  );
  let currentPlan: PlannedEndpoint[][] = plan;
  let stopped = false;
  const serverNames = new Map<string, string>();
  /** rr-dns: the sites with single-hostname sites expanded; `fresh` bypasses the DNS cache. */
  const rrPlan = async (fresh: boolean) => {
    const expanded = await expandRrDns(plan, (h) => fresh ? dns.resolveNow(h) : dns.lookup(h));
    transport.addServerNames(expanded.serverNames);
    for (const [host, name] of expanded.serverNames) serverNames.set(host, name);
    return expanded;
  };
  const random = options.random ?? Math.random;
  const publicIp = options.publicIp ?? localPublicIp();
  const drainDefault = options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
  // Counters in shared memory: stripe 0 for this isolate (health checks, requests it serves),
  // one more per worker isolate.
  const stats = new Stats({ stripes: workers > 1 ? workers + 1 : 1 });
  // Every record feeds the counters (all sites, health checks in their own series), then the
  // embedder's listener (the console applies the --trace filters).
  const onRecord: RecordListener = (r) => {
    stats.observe(r);
    options.onRecord?.(r);
  };
  let pprof: PprofServer | undefined;
  let generations = 0;
  // One retry budget for every data plane, so that its floor does not grow with the workers.
  const retryBudget = new RetryBudget().memory;

  const build = (sitePlan: PlannedEndpoint[][] = plan): Generation => {
    const genPlan = planGeneration(++generations, sitePlan, stats, serverNames);
    const pool = poolOf(genPlan, stats, {
      hostBalance: config.hostBalance,
      slowStartMs: config.slowStartMs,
      onTransition: (t) => options.onTransition?.(t),
      random,
    });
    const checker = new HealthChecker(pool.backends, transport, {
      intervalMs: config.healthDurationMs,
      timeoutMs: config.healthTimeoutMs,
      optimistic: config.healthOptimistic,
      rise: config.healthRise,
      fall: config.healthFall,
      onRecord,
      random,
    });
    return { plan: genPlan, pool, checker };
  };

  let current = build();
  let planes: PlaneHandle[] = [];
  let stopWatching = () => {};
  let reloading: Promise<void> = Promise.resolve();
  let firstRound: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const metrics = createMetricsHandler({
    pool: () => current.pool,
    stats,
    traceLinesDropped: options.traceLinesDropped,
  });
  /** A worker's passive ejection: log it once, and let optimistic checks resume. */
  const ejected = (generation: number, stateIndex: number, reason: string, at: number) => {
    if (generation !== current.plan.id) return; // a retired generation: nothing to report
    const backend = current.pool.backends[stateIndex];
    backend.noteDown(reason, at);
    current.checker.backendDown(backend);
  };

  const startPlanes = async (pair: KeyPair | undefined): Promise<PlaneHandle[]> => {
    const certificatePem = serverTls?.certificatePem();
    if (workers === 1) {
      const plane: DataPlane = await startDataPlane({
        hostname: listen.value.hostname,
        port: listen.value.port,
        shared: false,
        tls: pair,
        certificatePem,
        backendTls: tls,
        dns,
        publicIp,
        retries: config.retries,
        retryBufferBytes: config.retryBufferBytes,
        retryBudget,
      }, {
        pool: () => current.pool,
        onRecord,
        onEject: (b) => current.checker.backendDown(b),
        metrics,
        onError,
      });
      plane.addServerNames(new Map(current.plan.serverNames));
      return [{
        addr: plane.addr,
        finished: plane.finished,
        swapCertificate: (p) => plane.swapCertificate(p),
        get noDelayError() {
          return plane.noDelayError;
        },
        generation: (g) => plane.addServerNames(new Map(g.serverNames)),
        stop: (ms) => plane.stop(ms),
      }];
    }
    return await startWorkerPlanes(workers, {
      hostname: listen.value.hostname,
      port: listen.value.port,
      tls: pair,
      certificatePem,
      backendTls: tls,
      dnsTtlMs: config.dnsTtlMs,
      publicIp,
      hostBalance: config.hostBalance,
      retries: config.retries,
      retryBufferBytes: config.retryBufferBytes,
      retryBudget,
      slowStartMs: config.slowStartMs,
      stats: stats.memory,
      generation: current.plan,
      trace: options.traceLines ? { filter: config, style: options.traceLines.style } : undefined,
    }, {
      lines: (lines) => options.traceLines?.write(lines),
      ejected,
      metrics,
      onError,
    });
  };

  const sidekick: Sidekick = {
    config,
    stats,
    get workers() {
      return planes.length;
    },
    get pprofAddr() {
      return pprof?.addr;
    },
    get pool() {
      return current.pool;
    },
    get addr() {
      if (planes.length === 0) throw new Error("sidekick not started");
      return planes[0].addr;
    },
    get url() {
      return `${serverTls ? "https" : "http"}://${reachableHostPort(sidekick.addr)}`;
    },
    async start() {
      if (planes.length > 0) return;
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
      if (note) info(note);
      planes = await startPlanes(serverTls?.pair());
      const noDelayError = planes.find((p) => p.noDelayError)?.noDelayError;
      if (noDelayError) info(`TLS responses above 512 bytes may wait ~40 ms: ${noDelayError}`);
      Promise.all(planes.map((p) => p.finished)).then(resolveFinished, resolveFinished);
      stopWatching = serverTls?.watch((pair): Result<void> => {
        for (const p of planes) {
          const swapped = p.swapCertificate(pair);
          if (!swapped.ok) return swapped;
        }
        return { ok: true, value: undefined };
      }) ?? stopWatching;
      firstRound = current.checker.start();
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
      stopWatching();
      current.checker.stop();
      await Promise.all(planes.map((p) => p.stop(drainTimeoutMs)));
      await pprof?.stop();
      transport.close();
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
      for (const p of planes) p.generation(next.plan);
      old.checker.stop();
      stats.retain(current.pool.backends.map((b) => b.endpoint)); // gone endpoints: no series
    });
    return reloading;
  };

  // rr-dns beyond the Go sidekick: every --dns-ttl refresh re-expands the sites, and a changed
  // address set is swapped in like a reload (the old sites serve until the new ones are checked).
  if (config.rrDnsMode) {
    dns.onRefresh(async () => {
      if (planes.length === 0 || stopped) return;
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
