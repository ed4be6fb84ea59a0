/**
 * When a failed upstream attempt may be tried again on another backend, and how many retries
 * the recent traffic allows. Pure policy: the proxy asks, these answer.
 *
 * - A failure before anything was sent (connection refused, DNS, TLS handshake) never reached
 *   the backend: any method may go elsewhere, if its body can be sent again intact.
 * - A connection closed or reset before any response byte may have delivered the request: only
 *   idempotent methods (RFC 9110 §9.2.2) go elsewhere, again only with a replayable body.
 * - Nothing else is retried: not a response status (a backend's 5xx is its answer), not a
 *   failure after the response began, not a client that went away.
 *
 * The budget keeps retries to a share of the requests of the last seconds, with a small floor
 * so that a single failure at low traffic is still retried: backends that drop every request
 * then see about `1 + ratio` times the client's requests, not `1 + retries` times. One budget
 * serves every data-plane isolate of a sidekick, through shared memory.
 * @module
 */

import type { RetryReason } from "../shared/exchange_record.ts";
import type { Failure } from "../upstream/fetch_errors.ts";

/** Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * The reason to retry after `failure` of a `method` request, or undefined when it must not be
 * retried (the caller also checks that the body is replayable and the client still there).
 */
export function retryReason(failure: Failure, method: string): RetryReason | undefined {
  if (failure.beforeSend) return "connect";
  if ((failure.kind === "closed" || failure.kind === "reset") && IDEMPOTENT_METHODS.has(method)) {
    return "closed";
  }
  return undefined;
}

/** The shape of a {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per request of the window (default 0.2). */
  ratio?: number;
  /** Retries allowed per second of the window whatever the traffic (default 1). */
  minPerSecond?: number;
  /** Length of the window, seconds (default 10). */
  windowSeconds?: number;
}

/**
 * A retry budget over a sliding window of one-second buckets: retries may not exceed
 * `ratio × requests + minPerSecond × windowSeconds` of the window. The buckets are int32 cells
 * that may live in shared memory ({@linkcode RetryBudget.memory}), so that every data-plane isolate
 * counts into one budget: the floor does not grow with the number of workers.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #window: number;
  /** `[second, requests, retries]` per bucket. */
  readonly #cells: Int32Array;

  /**
   * A budget with the given shape (defaults: 20 %, 1 per second, 10 s), in new memory or over
   * the `memory` of another isolate's budget of the same shape.
   */
  constructor(options: RetryBudgetOptions = {}, memory?: SharedArrayBuffer) {
    this.#window = options.windowSeconds ?? 10;
    this.#ratio = options.ratio ?? 0.2;
    this.#floor = (options.minPerSecond ?? 1) * this.#window;
    this.#cells = new Int32Array(memory ?? new SharedArrayBuffer(this.#window * 3 * 4));
    if (!memory) { for (let i = 0; i < this.#window; i++) this.#cells[i * 3] = -1; }
  }

  /** The shared cells, to hand to worker isolates. */
  get memory(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /** The bucket of `now`, cleared first if it still holds an older second. */
  #bucket(now: number): number {
    const second = Math.floor(now / 1000);
    const at = (second % this.#window) * 3;
    const seen = Atomics.load(this.#cells, at);
    // One isolate wins the turn of the second and clears the counts of the old one.
    if (seen !== second && Atomics.compareExchange(this.#cells, at, seen, second) === seen) {
      Atomics.store(this.#cells, at + 1, 0);
      Atomics.store(this.#cells, at + 2, 0);
    }
    return at;
  }

  /** Counts a request (its first attempt). */
  request(now: number): void {
    Atomics.add(this.#cells, this.#bucket(now) + 1, 1);
  }

  /** Takes one retry from the budget if there is one left; false when it is spent. */
  tryRetry(now: number): boolean {
    const current = this.#bucket(now);
    const oldest = Math.floor(now / 1000) - this.#window + 1;
    let requests = 0;
    let retries = 0;
    for (let at = 0; at < this.#cells.length; at += 3) {
      if (Atomics.load(this.#cells, at) < oldest) continue;
      requests += Atomics.load(this.#cells, at + 1);
      retries += Atomics.load(this.#cells, at + 2);
    }
    if (retries + 1 > this.#ratio * requests + this.#floor) return false;
    Atomics.add(this.#cells, current + 2, 1);
    return true;
  }
}

/**
 * Bounds the memory held by bodies kept for a retry, across all requests of one data plane:
 * a body that does not fit is streamed (and so not retried) instead.
 */
export class ReplayMemory {
  readonly #limit: number;
  #held = 0;

  /** At most `limitBytes` held at once. */
  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** Bytes held now. */
  get held(): number {
    return this.#held;
  }

  /** Reserves `bytes` if they fit; the caller must {@linkcode ReplayMemory.release} them. */
  reserve(bytes: number): boolean {
    if (this.#held + bytes > this.#limit) return false;
    this.#held += bytes;
    return true;
  }

  /** Gives back what {@linkcode ReplayMemory.reserve} took. */
  release(bytes: number): void {
    this.#held -= bytes;
  }
}
