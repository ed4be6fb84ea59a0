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
 * then see about `1 + ratio` times the client's requests, not `1 + retries` times.
 * @module
 */

import type { Failure } from "./fetch_errors.ts";

/** Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/** Why an attempt was retried: nothing was sent, or the connection closed before a response. */
export type RetryReason = "connect" | "closed";

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
 * `ratio × requests + minPerSecond × windowSeconds` of the window.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #second: Float64Array;
  readonly #requests: Float64Array;
  readonly #retries: Float64Array;

  /** A budget with the given shape (defaults: 20 %, 1 per second, 10 s). */
  constructor(options: RetryBudgetOptions = {}) {
    const window = options.windowSeconds ?? 10;
    this.#ratio = options.ratio ?? 0.2;
    this.#floor = (options.minPerSecond ?? 1) * window;
    this.#second = new Float64Array(window).fill(-1);
    this.#requests = new Float64Array(window);
    this.#retries = new Float64Array(window);
  }

  #bucket(now: number): number {
    const second = Math.floor(now / 1000);
    const i = second % this.#second.length;
    if (this.#second[i] !== second) {
      this.#second[i] = second;
      this.#requests[i] = 0;
      this.#retries[i] = 0;
    }
    return i;
  }

  /** Counts a request (its first attempt). */
  request(now: number): void {
    this.#requests[this.#bucket(now)]++;
  }

  /** Takes one retry from the budget if there is one left; false when it is spent. */
  tryRetry(now: number): boolean {
    const current = this.#bucket(now);
    const oldest = Math.floor(now / 1000) - this.#second.length + 1;
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.#second.length; i++) {
      if (this.#second[i] < oldest) continue;
      requests += this.#requests[i];
      retries += this.#retries[i];
    }
    if (retries + 1 > this.#ratio * requests + this.#floor) return false;
    this.#retries[current]++;
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
