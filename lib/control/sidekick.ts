/**
 * Assembles one sidekick from a {@linkcode Config}. This module is the composition root of the
 * control plane: flags, sites, DNS, health checks, reloads, certificates and the scrape-time
 * metrics live in the isolate that calls {@linkcode createSidekick}. Requests are served by data
 * planes (`../data/data_plane.ts`): one in this isolate with `workers: 1`, else one per worker
 * isolate, all on one port. The UP flags, in-flight counts and counters they share are in shared
 * memory, so the N isolates balance, eject and count as one sidekick. No global state: tests
 * start several in one process on port 0.
 *
 * @example
 * ```ts
 * import { createSidekick, makeConfig } from "../mod.ts";
 * const sk = createSidekick(makeConfig({ address: "127.0.0.1:0", sites: ["http://127.0.0.1:9000"] }));
 * await sk.start();
 * console.log(sk.url);
 * await sk.stop();
 * ```
 * @module
 */

import { type ListenAddress, reachableHostPort } from "../config/address.ts";
import type { Config } from "../config/config.ts";
import { pickPublicIp } from "../data/headers.ts";
import { planeFlags } from "../data/plane_settings.ts";
import { RetryBudget } from "../data/retry.ts";
import { createMetricsHandler } from "../output/metrics.ts";
import type { TraceStyle } from "../output/trace.ts";
import type { TransitionListener } from "../shared/backend.ts";
import type { Random } from "../shared/balancer.ts";
import type { RecordListener } from "../shared/exchange_record.ts";
import type { Pool } from "../shared/pool.ts";
import { Stats } from "../shared/stats.ts";
import type { ServerTlsHooks } from "../tls/server_tls.ts";
import { DnsCache } from "../upstream/dns.ts";
import { createTransport } from "../upstream/transport.ts";
import { Generations } from "./generations.ts";
import { chooseWorkers, Planes } from "./planes.ts";
import { type PprofServer, startPprof } from "./pprof.ts";
import { ConfigError, preflight } from "./preflight.ts";
import { RrDnsSites } from "./rr_dns.ts";

export { ConfigError };

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

/** Builds a sidekick; throws {@linkcode ConfigError} for bad configuration. */
export function createSidekick(config: Config, options: SidekickOptions = {}): Sidekick {
  const { onInfo: info, onError, onBanner } = reporters(options);
  const checked = preflight(config, { onInfo: info, onError, onBanner }); // before anything binds
  const { serverTls } = checked;
  const dns = new DnsCache({ ttlMs: config.dnsTtlMs, resolver: options.resolver });
  const transport = createTransport({ tls: checked.backendTls, dns }); // health checks only
  const rrDns = new RrDnsSites(checked.sites, dns, transport);
  const { workers, note } = chooseWorkers(config.workers); // the CPUs, if the port can be shared
  // Counters in shared memory: stripe 0 for this isolate, one more per worker isolate.
  const stats = new Stats({ stripes: workers > 1 ? workers + 1 : 1 });
  const onRecord: RecordListener = (r) => {
    stats.observe(r); // all sites, health checks in their own series
    options.onRecord?.(r); // then the embedder's (the console applies the --trace filters)
  };
  const generations = new Generations(checked.sites, {
    config,
    stats,
    transport,
    serverNames: rrDns.serverNames,
    random: options.random ?? Math.random,
    onTransition: options.onTransition,
    onRecord,
    onSwap: (plan) => planes.generation(plan),
  });
  const metrics = createMetricsHandler({
    pool: () => generations.current.pool,
    stats,
    traceLinesDropped: options.traceLinesDropped,
  });
  const planes = new Planes({
    generations,
    stats,
    dns,
    onRecord,
    metrics,
    onError,
    traceFilter: config,
    traceLines: options.traceLines,
  });
  const settings = {
    ...planeFlags(config),
    ...checked.listen,
    backendTls: checked.backendTls,
    publicIp: options.publicIp ?? localPublicIp(),
    retryBudget: new RetryBudget().memory, // one for every plane: its floor stays as it is
  };
  let pprof: PprofServer | undefined;
  let stopWatching = () => {};

  const sidekick: Sidekick = {
    config,
    stats,
    finished: planes.finished,
    get workers() {
      return planes.count;
    },
    get pprofAddr() {
      return pprof?.addr;
    },
    get pool() {
      return generations.current.pool;
    },
    get addr() {
      return planes.addr;
    },
    get url() {
      return `${serverTls ? "https" : "http"}://${reachableHostPort(planes.addr)}`;
    },
    async start() {
      if (planes.count > 0) return;
      if (config.rrDnsMode) generations.reset(await rrDns.first(info));
      dns.start();
      if (checked.pprof && !pprof) pprof = await startPprofOrFail(checked.pprof, config, info);
      await serverTls?.prepare(); // auto-TLS: generate the certificate, print the banner
      if (note) info(note);
      const certificatePem = serverTls?.certificatePem();
      await planes.start(workers, { ...settings, tls: serverTls?.pair(), certificatePem });
      const noDelayError = planes.noDelayError;
      if (noDelayError) info(`TLS responses above 512 bytes may wait ~40 ms: ${noDelayError}`);
      stopWatching = serverTls?.watch((pair) => planes.swapCertificate(pair)) ?? stopWatching;
      generations.start();
    },
    ready: () => generations.ready(),
    reload: () => generations.swap(() => rrDns.reloadSites(config)),
    async stop(drainTimeoutMs = options.drainTimeoutMs ?? DRAIN_TIMEOUT_MS) {
      dns.stop();
      stopWatching();
      generations.stop();
      await planes.stop(drainTimeoutMs);
      await pprof?.stop();
      transport.close();
    },
  };
  if (config.rrDnsMode) rrDns.follow(generations, () => planes.count > 0, info);
  return sidekick;
}

/** Where info, error and banner lines go: the options', else the console. */
function reporters(options: SidekickOptions): Required<ServerTlsHooks> {
  return {
    onInfo: options.onInfo ?? ((text) => console.log(`sidekick: ${text}`)),
    onError: options.onError ?? ((text) => console.error(`sidekick: <ERROR> ${text}`)),
    onBanner: options.onBanner ?? ((text) => console.log(text)),
  };
}

/** Starts the `--pprof` listener and says where; a bind error is a {@linkcode ConfigError}. */
async function startPprofOrFail(
  address: ListenAddress,
  config: Config,
  info: (text: string) => void,
): Promise<PprofServer> {
  let pprof: PprofServer;
  try {
    pprof = await startPprof(address);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`--pprof: unable to listen on '${config.pprof}': ${why}`);
  }
  info(`profiling (--pprof) on '${pprof.url}/.pprof/'`);
  return pprof;
}

/** This machine's first non-loopback address, for loopback clients' `X-Forwarded-For`. */
function localPublicIp(): string {
  try {
    return pickPublicIp(Deno.networkInterfaces(), "127.0.0.1");
  } catch {
    return "127.0.0.1"; // no --allow-sys=networkInterfaces: keep the loopback address
  }
}
