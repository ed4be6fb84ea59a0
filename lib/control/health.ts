/**
 * Active health checks: one loop per backend, an immediate first check, then
 * `d`, then `d + random[0, d)` between checks; `GET <health URL>` bounded by the timeout for the
 * whole exchange; UP iff status 200. Checks never overlap for one backend and their bodies are
 * always consumed or cancelled. Optimistic mode checks only while a backend is DOWN.
 *
 * Hysteresis: a backend that was UP before needs `rise` passing checks in a row to take traffic
 * again, and an UP backend is taken out after `fall` failed checks in a row. A backend that has
 * never been UP under this checker (a new one, at start-up or after a reload) comes UP on its first
 * passing check, so start-up stays as fast as without hysteresis. A passive ejection by the proxy
 * is never delayed: it does not go through the checker.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import type { Random } from "../shared/balancer.ts";
import { classifyFetchError } from "../upstream/fetch_errors.ts";
import type { ExchangeRecord, RecordListener } from "../shared/exchange_record.ts";
import type { Transport } from "../upstream/transport.ts";

/** Settings of the health checker. */
export interface HealthOptions {
  /** Base interval `d`, ms. */
  intervalMs: number;
  /** Bound on one whole check (connect, headers, body), ms. */
  timeoutMs: number;
  /** `--health-optimistic`: stop checking a backend while it is UP. */
  optimistic: boolean;
  /**
   * Receives a record for every check: status 0 and the error text when it got no response
   * (counted as a failed check; traces skip it).
   */
  onRecord?: RecordListener;
  /** Random source for the jitter. */
  random?: Random;
  /**
   * `--health-rise`: passing checks in a row before a backend that was UP before and went DOWN
   * takes traffic again (default 1).
   */
  rise?: number;
  /** `--health-fall`: failed checks in a row before an UP backend is taken out (default 1). */
  fall?: number;
}

/** One backend's current run of check outcomes, as this checker saw them. */
interface Streak {
  /** Passing checks in a row while DOWN. */
  passes: number;
  /** Failed checks in a row while UP. */
  failures: number;
  /** Whether the backend was ever seen UP: only then does `rise` apply. */
  wasUp: boolean;
}

/** Runs the check loops of one set of backends. */
export class HealthChecker {
  readonly #backends: readonly Backend[];
  readonly #transport: Transport;
  readonly #options: HealthOptions;
  readonly #random: Random;
  readonly #running = new Set<Backend>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #controllers = new Set<AbortController>();
  // Streaks are the checker's own: the UP flag lives in memory shared with the data planes, which
  // may flip it DOWN at any time, so every decision reads `backend.up` afresh.
  readonly #streaks = new Map<Backend, Streak>();
  readonly #rise: number;
  readonly #fall: number;
  #stopped = false;
  #firstRound: Promise<void> | undefined;

  /** A checker for these backends; nothing runs until {@linkcode HealthChecker.start}. */
  constructor(backends: readonly Backend[], transport: Transport, options: HealthOptions) {
    this.#backends = backends;
    this.#transport = transport;
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#rise = Math.max(1, Math.floor(options.rise ?? 1));
    this.#fall = Math.max(1, Math.floor(options.fall ?? 1));
  }

  /** Starts every loop with an immediate check; resolves when each backend was checked once. */
  start(): Promise<void> {
    if (!this.#firstRound) {
      const firsts = this.#backends.map((b) => this.#runLoop(b, true));
      this.#firstRound = Promise.all(firsts).then(() => {});
    }
    return this.#firstRound;
  }

  /**
   * Tells the checker a backend was marked DOWN by the proxy. In optimistic mode this restarts its
   * loop (first check after `d`); otherwise its loop is running anyway.
   */
  backendDown(backend: Backend): void {
    if (this.#options.optimistic && !this.#stopped && !this.#running.has(backend)) {
      this.#runLoop(backend, false);
    }
  }

  /** Stops every loop and cancels checks in flight. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#controllers) c.abort();
  }

  /**
   * Starts one backend's loop; the returned promise settles after its first check, while the
   * loop goes on in the background.
   */
  #runLoop(backend: Backend, immediate: boolean): Promise<void> {
    this.#running.add(backend);
    let firstDone!: () => void;
    const first = new Promise<void>((resolve) => (firstDone = resolve));
    const d = this.#options.intervalMs;
    (async () => {
      try {
        let delay = immediate ? 0 : d;
        let checks = 0;
        while (!this.#stopped) {
          if (delay > 0 && !(await this.#sleep(delay))) break;
          await this.check(backend);
          if (checks++ === 0) firstDone();
          if (this.#options.optimistic && backend.up) break;
          delay = checks === 1 && immediate ? d : d + this.#random() * d;
        }
      } finally {
        firstDone();
        this.#running.delete(backend);
      }
    })();
    return first;
  }

  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        this.#timers.delete(id);
        resolve(!this.#stopped);
      }, ms);
      this.#timers.add(id);
    });
  }

  /** Performs one check of one backend now and applies its outcome. */
  async check(backend: Backend): Promise<void> {
    const controller = new AbortController();
    this.#controllers.add(controller);
    const timer = setTimeout(
      () => controller.abort(new DOMException("health check timed out", "TimeoutError")),
      this.#options.timeoutMs,
    );
    const start = Date.now();
    const t0 = performance.now();
    let status = 0;
    let error = "";
    let ttfbMs = 0;
    let responseHeaders: [string, string][] | null = null;
    try {
      const res = await this.#transport.fetch(backend.healthUrl, {
        method: "GET",
        signal: controller.signal,
        redirect: "follow",
      });
      ttfbMs = performance.now() - t0;
      status = res.status;
      responseHeaders = [...res.headers];
      // Drain (bounded by the same timeout) so the pooled connection can be reused.
      await res.arrayBuffer();
    } catch (e) {
      if (this.#stopped) return;
      status = 0;
      error = classifyFetchError(e).message;
    } finally {
      clearTimeout(timer);
      this.#controllers.delete(controller);
    }
    if (this.#stopped) return;
    this.#apply(backend, status === 200, error || `response status ${status}`);
    if (this.#options.onRecord) {
      const url = new URL(backend.healthUrl);
      const record: ExchangeRecord = {
        kind: "health",
        endpoint: backend.endpoint,
        site: backend.site,
        method: "GET",
        path: url.pathname,
        rawQuery: url.search.slice(1),
        status,
        start,
        latencyMs: performance.now() - t0,
        ttfbMs,
        client: "",
        requestHeaders: null,
        responseHeaders,
        requestBodyBytes: 0,
        responseBodyBytes: 0,
        error,
        completed: true,
      };
      this.#options.onRecord(record);
    }
  }

  /** Counts one check's outcome into the backend's streak and changes its state when due. */
  #apply(backend: Backend, passed: boolean, reason: string): void {
    let streak = this.#streaks.get(backend);
    if (!streak) {
      streak = { passes: 0, failures: 0, wasUp: false };
      this.#streaks.set(backend, streak);
    }
    // Read once: a data plane may eject the backend while this runs, and the streak must follow
    // the state the decision was made on.
    const up = backend.up;
    if (up) {
      streak.wasUp = true;
      // Passes counted before a passive ejection must not shorten the next recovery.
      streak.passes = 0;
      if (passed) {
        streak.failures = 0;
      } else if (++streak.failures >= this.#fall) {
        streak.failures = 0;
        backend.markDown(reason);
      }
      return;
    }
    streak.failures = 0;
    if (!passed) {
      streak.passes = 0;
      backend.markDown(reason); // already DOWN: keeps the latest reason, reports nothing
      return;
    }
    if (!streak.wasUp || ++streak.passes >= this.#rise) {
      streak.passes = 0;
      streak.wasUp = true;
      backend.markUp();
    }
  }
}
