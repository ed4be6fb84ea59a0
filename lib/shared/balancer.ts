/**
 * Backend selection inside one site: `least` (true least-in-flight, uniformly random tie-break)
 * and `random` (uniform). Pure functions over anything with an in-flight count.
 * @module
 */

/** Backend selection policy inside one site (`--host-balance`). */
export type HostBalance = "least" | "random";

/** What a balancer needs to know of a candidate. */
export interface Candidate {
  /** Requests currently in flight to it. */
  readonly inflight: number;
}

/** A source of uniform random numbers in [0, 1). */
export type Random = () => number;

/** The candidate with the fewest in-flight requests; ties broken uniformly at random. */
export function pickLeast<T extends Candidate>(
  candidates: readonly T[],
  random: Random = Math.random,
): T | undefined {
  let best: T | undefined;
  let ties = 0;
  for (const c of candidates) {
    if (best === undefined || c.inflight < best.inflight) {
      best = c;
      ties = 1;
    } else if (c.inflight === best.inflight) {
      // Reservoir sampling over the tied candidates keeps the choice uniform in one pass.
      ties++;
      if (random() * ties < 1) best = c;
    }
  }
  return best;
}

/** A uniformly random candidate. */
export function pickRandom<T>(
  candidates: readonly T[],
  random: Random = Math.random,
): T | undefined {
  if (candidates.length === 0) return undefined;
  return candidates[Math.floor(random() * candidates.length)];
}

/** The picking function for a `--host-balance` policy. */
export function balancerFor(
  policy: HostBalance,
): <T extends Candidate>(candidates: readonly T[], random?: Random) => T | undefined {
  return policy === "random" ? pickRandom : pickLeast;
}
