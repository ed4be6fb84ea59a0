/**
 * Latency-aware balancing (`--host-balance ewma`), after Finagle's and Linkerd's peak EWMA: each
 * backend's response-header latency is a moving average that jumps at once to a higher sample
 * (peak-sensitive) and follows lower ones with a weight that depends on the time since the last
 * sample; with no news it decays towards zero, so a backend that was slow is tried again after a
 * while. A request goes to the cheaper of two backends picked at random (power of two choices),
 * the cost being the estimate times the requests in flight plus one.
 *
 * The estimates are float64 cells in shared memory, one row per backend of a generation, written
 * by every data-plane isolate (a lost update between two isolates is one sample less: harmless).
 * @module
 */

import type { Random } from "./balancer.ts";

/** The decay time of the average, ms (Linkerd's default). */
export const DECAY_MS = 10_000;

/** float64 cells per backend: estimate (ms), time of the last sample (ms since the epoch). */
const FLOATS = 2;

/** Allocates the cells for `backends` backends. */
export function ewmaMemory(backends: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, backends) * FLOATS * 8);
}

/** The next estimate from `estimate` (taken `dtMs` ago) and a new `sample`, all ms. */
export function nextEstimate(
  estimate: number,
  dtMs: number,
  sample: number,
  decayMs = DECAY_MS,
): number {
  const w = Math.exp(-Math.max(0, dtMs) / decayMs);
  const smoothed = estimate * w + sample * (1 - w);
  return sample > smoothed ? sample : smoothed;
}

/** Peak-EWMA estimates of one generation's backends, over shared cells. */
export class PeakEwma {
  readonly #cells: Float64Array;
  readonly #decayMs: number;

  /** Estimates over `memory` (from {@linkcode ewmaMemory}). */
  constructor(memory: SharedArrayBuffer, decayMs = DECAY_MS) {
    this.#cells = new Float64Array(memory);
    this.#decayMs = decayMs;
  }

  /** The estimate of backend `index` at `now`, ms: the last one decayed towards zero. */
  estimate(index: number, now: number): number {
    const at = index * FLOATS;
    const e = this.#cells[at];
    if (e === 0) return 0;
    return e * Math.exp(-Math.max(0, now - this.#cells[at + 1]) / this.#decayMs);
  }

  /** Feeds a latency sample of backend `index`, ms. */
  observe(index: number, sampleMs: number, now: number): void {
    const at = index * FLOATS;
    const e = this.#cells[at];
    this.#cells[at] = e === 0
      ? sampleMs
      : nextEstimate(e, now - this.#cells[at + 1], sampleMs, this.#decayMs);
    this.#cells[at + 1] = now;
  }

  /** The cost of sending one more request to backend `index` with `inflight` in flight. */
  cost(index: number, inflight: number, now: number): number {
    return (this.estimate(index, now) + 1) * (inflight + 1);
  }
}

/** What the ewma balancer needs of a candidate. */
export interface EwmaCandidate {
  /** Its row in the estimates. */
  readonly index: number;
  /** Requests in flight to it (all isolates). */
  readonly inflight: number;
}

/**
 * Power of two choices: two distinct candidates at random, the cheaper one by
 * {@linkcode PeakEwma.cost} (ties: the first drawn).
 */
export function pickEwma<T extends EwmaCandidate>(
  candidates: readonly T[],
  ewma: PeakEwma,
  now: number,
  random: Random = Math.random,
): T | undefined {
  const n = candidates.length;
  if (n <= 1) return candidates[0];
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = candidates[i];
  const b = candidates[j];
  return ewma.cost(b.index, b.inflight, now) < ewma.cost(a.index, a.inflight, now) ? b : a;
}
