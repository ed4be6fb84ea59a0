/**
 * The one owner of backend choice on the data plane: every new request, WebSocket session, retry
 * and hedge asks it for a backend, and every attempt's outcome comes back to it, feeding outlier
 * ejection (`--eject-after`) and the latency estimates of `--host-balance ewma`. It reads the
 * current pool at each call, so a reload changes what it picks from at once; the policy itself
 * (sites in order, UP and not ejected, slow start, the balancer) is the pool's.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import { type Ejection, statusFails } from "../shared/outlier.ts";
import type { Pool } from "../shared/pool.ts";
import type { GrayContext } from "./proxy.ts";

/** How a {@linkcode BackendChoice} is set up. */
export interface ChoiceSettings {
  /** `--response-timeout`, ms (0: none). */
  responseTimeoutMs: number;
  /** `--hedge-after`, ms (0: no hedges). */
  hedgeAfterMs: number;
  /** Called by the isolate that ejected a backend (once per ejection across isolates). */
  onEjection?: (backend: Backend, ejection: Ejection) => void;
  /** The clock, ms since the epoch (tests pass a fake). */
  now?: () => number;
}

/** Picks backends for the data plane and learns from the outcomes of attempts. */
export class BackendChoice implements GrayContext {
  /** `--response-timeout`, ms. */
  readonly responseTimeoutMs: number;
  /** `--hedge-after`, ms. */
  readonly hedgeAfterMs: number;
  readonly #pool: () => Pool;
  readonly #onEjection?: (backend: Backend, ejection: Ejection) => void;
  readonly #now: () => number;

  /** A choice over whatever pool `pool()` returns at each call. */
  constructor(pool: () => Pool, settings: ChoiceSettings) {
    this.#pool = pool;
    this.responseTimeoutMs = settings.responseTimeoutMs;
    this.hedgeAfterMs = settings.hedgeAfterMs;
    this.#onEjection = settings.onEjection;
    this.#now = settings.now ?? Date.now;
  }

  /** The backend for a new request (or undefined: no backend is UP). */
  forRequest(): Backend | undefined {
    return this.#pool().pick();
  }

  /** The backend for a new WebSocket session. */
  forWebSocket(): Backend | undefined {
    return this.#pool().pick();
  }

  /** The backend for a retry of a request that already tried `tried`. */
  forRetry(tried: readonly Backend[]): Backend | undefined {
    return this.#pool().pickExcept(tried);
  }

  /** The backend for a hedge of an attempt on `primary`. */
  forHedge(primary: Backend): Backend | undefined {
    return this.#pool().pickExcept([primary]);
  }

  /** An attempt on `backend` failed (transport failure or response timeout) after `ms`. */
  failed(backend: Backend, ms: number): void {
    const pool = this.#pool();
    if (!pool.has(backend)) return;
    const now = this.#now();
    pool.ewma?.observe(backend.index, ms, now);
    this.#failure(pool, backend, now);
  }

  /** An attempt on `backend` had response headers with `status` after `ms`. */
  answered(backend: Backend, status: number, ms: number): void {
    const pool = this.#pool();
    if ((!pool.outliers && !pool.ewma) || !pool.has(backend)) return;
    const now = this.#now();
    pool.ewma?.observe(backend.index, ms, now);
    if (!pool.outliers) return;
    if (statusFails(status)) this.#failure(pool, backend, now);
    else pool.outliers.success(backend.index, now);
  }

  /** An attempt on `backend` was cancelled after `ms`, another having answered first. */
  lost(backend: Backend, ms: number): void {
    const pool = this.#pool();
    if (!pool.ewma || !pool.has(backend)) return;
    // Its latency is at least that long: a lower bound is still news for a peak estimate.
    pool.ewma.observe(backend.index, ms, this.#now());
  }

  #failure(pool: Pool, backend: Backend, now: number): void {
    if (!pool.outliers || !backend.up) return;
    const ejection = pool.outliers.failure(backend.index, pool.siteIndices(backend), now);
    if (ejection) this.#onEjection?.(backend, ejection);
  }
}
