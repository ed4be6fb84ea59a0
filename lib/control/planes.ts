/**
 * The data planes of a sidekick as one: started in this isolate (`--workers 1`, no messages, no
 * copies) or as N worker isolates on one shared port, both from the same
 * {@linkcode PlaneSettings}; then driven alike through their {@linkcode PlaneHandle}s (a new
 * generation, a new certificate, a stop).
 * @module
 */

import type { TraceFilterConfig, TraceStyle } from "../output/trace.ts";
import type { RecordListener } from "../shared/exchange_record.ts";
import type { Stats } from "../shared/stats.ts";
import { startDataPlane } from "../data/data_plane.ts";
import type { PlaneSettings } from "../data/plane_settings.ts";
import type { DnsCache } from "../upstream/dns.ts";
import type { GenerationPlan } from "../shared/generation.ts";
import { ok, type Result } from "../shared/result.ts";
import { canRebindTls } from "../tls/https_listener.ts";
import type { KeyPair } from "../tls/key_pair.ts";
import type { Generations } from "./generations.ts";
import type { PlaneHandle } from "./plane_handle.ts";
import { startWorkerPlanes } from "./spawn_workers.ts";

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
  cpus: number = navigator.hardwareConcurrency,
  canShare: boolean = canRebindTls(),
  os: string = Deno.build.os,
): { workers: number; note?: string } {
  const wanted = asked > 0 ? asked : Math.max(1, Math.min(cpus, DEFAULT_MAX_WORKERS));
  if (wanted === 1 || canShare) return { workers: wanted };
  const why = os !== "linux"
    ? `${os} does not spread connections over listeners that share a port`
    : "sharing the port needs --unstable-net";
  return { workers: 1, note: `serving with one worker: ${why}` };
}

/** What the data planes read and report to in the control plane. */
export interface PlanesContext {
  /** The pool generations the planes serve, and where passive ejections are reported. */
  readonly generations: Generations;
  /** The counters; worker isolates count into its shared memory. */
  readonly stats: Stats;
  /** The control plane's DNS cache, which a data plane in this isolate shares. */
  readonly dns: DnsCache;
  /** Receives the records of the requests served in this isolate. */
  readonly onRecord: RecordListener;
  /** Answers `/.prometheus/metrics`, whichever plane received it. */
  metrics(req: Request): Response | Promise<Response>;
  /** Error lines. */
  onError(text: string): void;
  /** The filters of the trace lines that workers print. */
  readonly traceFilter: TraceFilterConfig;
  /**
   * With workers: the style of their trace lines, and where the batches go. Undefined: workers
   * print no trace lines.
   */
  readonly traceLines?: { style: TraceStyle; write(lines: string[]): void };
}

/** The running data planes of one sidekick. */
export class Planes {
  readonly #context: PlanesContext;
  #handles: PlaneHandle[] = [];
  #resolveFinished!: () => void;
  /** Resolves when every plane's listener has closed. */
  readonly finished: Promise<void> = new Promise((r) => (this.#resolveFinished = r));

  /** Planes that will read from and report to `context`. */
  constructor(context: PlanesContext) {
    this.#context = context;
  }

  /** How many planes serve (0 before {@linkcode Planes.start}). */
  get count(): number {
    return this.#handles.length;
  }

  /** The address they listen on; throws before {@linkcode Planes.start}. */
  get addr(): Deno.NetAddr {
    if (this.#handles.length === 0) throw new Error("sidekick not started");
    return this.#handles[0].addr;
  }

  /** HTTPS: why a listener lacks `TCP_NODELAY`, if one does. */
  get noDelayError(): string | undefined {
    return this.#handles.find((p) => p.noDelayError)?.noDelayError;
  }

  /** Starts `count` planes with `settings`; resolves once all listen. */
  async start(count: number, settings: PlaneSettings): Promise<void> {
    this.#handles = await startHandles(count, settings, this.#context);
    const done = () => this.#resolveFinished();
    Promise.all(this.#handles.map((p) => p.finished)).then(done, done);
  }

  /** Every plane serves `plan` from now on. */
  generation(plan: GenerationPlan): void {
    for (const p of this.#handles) p.generation(plan);
  }

  /** Every plane serves `pair` to new connections; stops at the first that cannot. */
  swapCertificate(pair: KeyPair): Result<void> {
    for (const p of this.#handles) {
      const swapped = p.swapCertificate(pair);
      if (!swapped.ok) return swapped;
    }
    return ok(undefined);
  }

  /** Drains every plane for `drainTimeoutMs` at most, then closes them. */
  async stop(drainTimeoutMs: number): Promise<void> {
    await Promise.all(this.#handles.map((p) => p.stop(drainTimeoutMs)));
  }
}

async function startHandles(
  count: number,
  settings: PlaneSettings,
  context: PlanesContext,
): Promise<PlaneHandle[]> {
  const { generations, metrics, onError } = context;
  if (count > 1) {
    const traceLines = context.traceLines;
    return await startWorkerPlanes(count, {
      ...settings,
      stats: context.stats.memory,
      generation: generations.current.plan,
      trace: traceLines ? { filter: context.traceFilter, style: traceLines.style } : undefined,
    }, {
      lines: (lines) => traceLines?.write(lines),
      ejected: (...args) => generations.ejected(...args),
      metrics,
      onError,
    });
  }
  const plane = await startDataPlane(settings, { shared: false, dns: context.dns }, {
    pool: () => generations.current.pool,
    onRecord: context.onRecord,
    onEject: (b) => generations.current.checker.backendDown(b),
    metrics,
    onError,
  });
  plane.addServerNames(new Map(generations.current.plan.serverNames));
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
