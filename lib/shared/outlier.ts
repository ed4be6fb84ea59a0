/**
 * Outlier ejection (`--eject-after N`), after Envoy's outlier detection: N consecutive failures of
 * a backend (transport failures and response timeouts; never a 4xx, never a 503 that is the
 * backend's backpressure) take it out of picking for a time that grows with each ejection of it,
 * even while its health check passes. It comes back by itself when that time is over, with a share
 * of new requests that ramps up. At most half of a site is ejected at once.
 *
 * The state lives in shared memory, one row per backend of a generation, so that every data-plane
 * isolate counts into the same failures and sees the same ejections; of several isolates that see
 * the N-th failure at once, exactly one ejects (a compare-and-swap on the failure count), so an
 * ejection is reported once.
 * @module
 */

/** How long the first ejection of a backend lasts, ms (Envoy's `base_ejection_time`). */
export const BASE_EJECTION_MS = 30_000;

/** The longest ejection, ms (Envoy's `max_ejection_time`). */
export const MAX_EJECTION_MS = 300_000;

/** int32 cells per backend: consecutive failures, ejections so far. */
const INTS = 2;
/** float64 cells per backend: ejected until (ms since the epoch), last decay of the multiplier. */
const FLOATS = 2;

/** How long the `n`-th ejection in a row lasts: `n × base`, at most `max`. */
export function ejectionMs(
  n: number,
  baseMs: number = BASE_EJECTION_MS,
  maxMs: number = MAX_EJECTION_MS,
): number {
  return Math.min(Math.max(1, n) * baseMs, maxMs);
}

/**
 * Whether an answer with `status` is a failure of the backend for ejection: the gateway statuses
 * 502 and 504 (the backend could not reach what it fronts); not 503, which MinIO answers as
 * backpressure (`SlowDown`), nor 500, an S3 error about one request, nor any 4xx.
 */
export function statusFails(status: number): boolean {
  return status === 502 || status === 504;
}

/** The most backends of a site of `size` that may be ejected at once: half, rounded down. */
export function maxEjected(size: number): number {
  return Math.floor(size / 2);
}

/** An ejection that just happened (reported by the isolate that made it). */
export interface Ejection {
  /** The backend's row. */
  index: number;
  /** How many times in a row it has been ejected (1 for the first). */
  count: number;
  /** How long this ejection lasts, ms. */
  durationMs: number;
  /** Until when, ms since the epoch. */
  until: number;
}

/** The shared memory of {@linkcode Outliers}, to hand to worker isolates. */
export interface OutlierMemory {
  /** int32 rows. */
  ints: SharedArrayBuffer;
  /** float64 rows. */
  floats: SharedArrayBuffer;
}

/** Allocates the cells for `backends` backends. */
export function outlierMemory(backends: number): OutlierMemory {
  const n = Math.max(1, backends);
  return {
    ints: new SharedArrayBuffer(n * INTS * 4),
    floats: new SharedArrayBuffer(n * FLOATS * 8),
  };
}

/** The outlier state of one generation's backends, over shared cells. */
export class Outliers {
  /** `--eject-after` (0: never eject). */
  readonly after: number;
  readonly #ints: Int32Array;
  readonly #floats: Float64Array;
  readonly #baseMs: number;
  readonly #maxMs: number;

  /** Outlier state over `memory`, ejecting after `after` consecutive failures. */
  constructor(
    memory: OutlierMemory,
    after: number,
    options: { baseMs?: number; maxMs?: number } = {},
  ) {
    this.after = after;
    this.#ints = new Int32Array(memory.ints);
    this.#floats = new Float64Array(memory.floats);
    this.#baseMs = options.baseMs ?? BASE_EJECTION_MS;
    this.#maxMs = options.maxMs ?? MAX_EJECTION_MS;
  }

  /** Until when backend `index` is ejected, ms since the epoch (0 if never). */
  until(index: number): number {
    return this.#floats[index * FLOATS];
  }

  /** Whether backend `index` is ejected at `now`. */
  ejected(index: number, now: number): boolean {
    return this.#floats[index * FLOATS] > now;
  }

  /** Consecutive failures of backend `index` so far. */
  failures(index: number): number {
    return Atomics.load(this.#ints, index * INTS);
  }

  /** How many times backend `index` was ejected in a row (decays while it behaves). */
  ejections(index: number): number {
    return Atomics.load(this.#ints, index * INTS + 1);
  }

  /**
   * Counts a failure of backend `index`, whose site holds the rows `site` (itself included). Returns
   * the ejection it caused, if this call made one: the N-th consecutive failure, at most half of
   * the site ejected.
   */
  failure(index: number, site: readonly number[], now: number): Ejection | undefined {
    if (this.after <= 0) return undefined;
    const at = index * INTS;
    const n = Atomics.add(this.#ints, at, 1) + 1;
    if (n < this.after || this.ejected(index, now)) return undefined;
    let out = 0;
    for (const i of site) if (i !== index && this.ejected(i, now)) out++;
    if (out + 1 > maxEjected(site.length)) return undefined;
    // One isolate wins the reset of the count, and with it the ejection.
    if (Atomics.compareExchange(this.#ints, at, n, 0) !== n) return undefined;
    const count = Atomics.add(this.#ints, at + 1, 1) + 1;
    const durationMs = ejectionMs(count, this.#baseMs, this.#maxMs);
    const until = now + durationMs;
    this.#floats[index * FLOATS] = until;
    this.#floats[index * FLOATS + 1] = until;
    return { index, count, durationMs, until };
  }

  /**
   * A success of backend `index`: its consecutive failures start over, and once it has behaved for
   * a base ejection time since it came back (or since the last decay), the multiplier of its next
   * ejection goes down by one.
   */
  success(index: number, now: number): void {
    const at = index * INTS;
    if (Atomics.load(this.#ints, at) !== 0) Atomics.store(this.#ints, at, 0);
    const count = Atomics.load(this.#ints, at + 1);
    if (count === 0) return;
    const since = this.#floats[index * FLOATS + 1];
    if (now - since < this.#baseMs) return;
    this.#floats[index * FLOATS + 1] = now;
    Atomics.compareExchange(this.#ints, at + 1, count, count - 1);
  }
}

/** The log line of an ejection (without the `sidekick: ` prefix). */
export function ejectionText(
  endpoint: string,
  after: number,
  count: number,
  duration: string,
): string {
  return `${endpoint} ejected for ${duration} after ${after} consecutive failures ` +
    `(ejection ${count} in a row); it comes back with slow start`;
}
