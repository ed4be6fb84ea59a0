/**
 * Pool generations: the backends of the sites, their pool and their health checker, rebuilt
 * when the sites change (SIGHUP, or an rr-dns name whose addresses changed). A new generation is
 * checked once before it is swapped in, so the old one serves until then; swaps run one at a
 * time, and a failed one keeps the current sites.
 * @module
 */

import type { TransitionListener } from "../shared/backend.ts";
import type { Random } from "../shared/balancer.ts";
import type { Config } from "../config/config.ts";
import type { RecordListener } from "../shared/exchange_record.ts";
import {
  type GenerationPlan,
  planGeneration,
  type PlannedEndpoint,
  poolOf,
} from "../shared/generation.ts";
import type { Pool } from "../shared/pool.ts";
import type { Stats } from "../shared/stats.ts";
import type { Transport } from "../upstream/transport.ts";
import { HealthChecker } from "./health.ts";

/** One generation: what the data planes serve, and what checks it. */
export interface Generation {
  /** The plan the data planes (in this isolate or workers) build their pool from. */
  readonly plan: GenerationPlan;
  /** This isolate's pool of the generation. */
  readonly pool: Pool;
  /** The active health checks of its backends. */
  readonly checker: HealthChecker;
}

/** What every generation is built with. */
export interface GenerationSettings {
  /** The health-check and balancing flags. */
  readonly config: Config;
  /** Per-endpoint counters, kept across generations. */
  readonly stats: Stats;
  /** The control plane's transport (health checks). */
  readonly transport: Transport;
  /** rr-dns: URL host → hostname for TLS, as known when a generation is built. */
  readonly serverNames: ReadonlyMap<string, string>;
  /** Random source of balancing and jitter. */
  readonly random: Random;
  /** Receives every real UP/DOWN transition. */
  readonly onTransition?: TransitionListener;
  /** Receives every health-check record. */
  readonly onRecord: RecordListener;
  /** Called with each generation swapped in, for the data planes to serve from now on. */
  readonly onSwap: (plan: GenerationPlan) => void;
}

/** The current generation and the swaps that replace it. */
export class Generations {
  readonly #s: GenerationSettings;
  #count = 0;
  #current: Generation;
  #sites: PlannedEndpoint[][];
  #swapping: Promise<void> = Promise.resolve();
  #stopped = false;
  #firstRound: Promise<void> | undefined;

  /** Builds the first generation from `sites` (not yet checked). */
  constructor(sites: PlannedEndpoint[][], settings: GenerationSettings) {
    this.#s = settings;
    this.#sites = sites;
    this.#current = this.#build(sites);
  }

  /** The generation served now. */
  get current(): Generation {
    return this.#current;
  }

  /** The sites of the current generation. */
  get sites(): PlannedEndpoint[][] {
    return this.#sites;
  }

  /** Starts the health checks of the current generation (once the planes serve it). */
  start(): void {
    this.#firstRound = this.#current.checker.start();
  }

  /** Resolves after every backend has been checked once (starting the checks if need be). */
  ready(): Promise<void> {
    return this.#firstRound ?? this.#current.checker.start();
  }

  /** Replaces the first generation before anything serves it (rr-dns at start). */
  reset(sites: PlannedEndpoint[][]): void {
    this.#sites = sites;
    this.#current = this.#build(sites);
  }

  /** Builds a generation from `makeSites()`, checks it once, then swaps it in. */
  swap(makeSites: () => Promise<PlannedEndpoint[][]>): Promise<void> {
    // A failed swap (e.g. DNS down on SIGHUP) keeps the current sites and later swaps still run.
    this.#swapping = this.#swapping.catch(() => {}).then(async () => {
      const sites = await makeSites();
      const next = this.#build(sites);
      await next.checker.start();
      if (this.#stopped) return next.checker.stop();
      const old = this.#current;
      this.#current = next;
      this.#sites = sites;
      this.#s.onSwap(next.plan);
      old.checker.stop();
      this.#s.stats.retain(next.pool.backends.map((b) => b.endpoint)); // gone endpoints: no series
    });
    return this.#swapping;
  }

  /** A worker's passive ejection: log it once, and let optimistic checks resume. */
  ejected(generation: number, stateIndex: number, reason: string, at: number): void {
    if (generation !== this.#current.plan.id) return; // a retired generation: nothing to report
    const backend = this.#current.pool.backends[stateIndex];
    backend.noteDown(reason, at);
    this.#current.checker.backendDown(backend);
  }

  /** Whether {@linkcode Generations.stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops the health checks; a swap still under way is dropped. */
  stop(): void {
    this.#stopped = true;
    this.#current.checker.stop();
  }

  #build(sites: PlannedEndpoint[][]): Generation {
    const { config, stats, random } = this.#s;
    const plan = planGeneration(++this.#count, sites, stats, this.#s.serverNames);
    const pool = poolOf(plan, stats, {
      hostBalance: config.hostBalance,
      slowStartMs: config.slowStartMs,
      onTransition: (t) => this.#s.onTransition?.(t),
      random,
    });
    const checker = new HealthChecker(pool.backends, this.#s.transport, {
      intervalMs: config.healthDurationMs,
      timeoutMs: config.healthTimeoutMs,
      optimistic: config.healthOptimistic,
      rise: config.healthRise,
      fall: config.healthFall,
      onRecord: this.#s.onRecord,
      random,
    });
    return { plan, pool, checker };
  }
}
