/**
 * Sites of backends in priority order. The first site with an UP backend serves; inside it the
 * balancer picks. Pure: health checks and the proxy act on the backends, the pool only reads them.
 * @module
 */

import type { Backend } from "./backend.ts";
import { balancerFor, type HostBalance, type Random } from "./balancer.ts";

/** The backends of all sites, in priority order. */
export class Pool {
  /** `sites[i]` holds the backends of site i+1, in expansion order. */
  readonly sites: readonly (readonly Backend[])[];
  readonly #pick: ReturnType<typeof balancerFor>;
  readonly #random: Random;
  readonly #slowStartMs: number;
  readonly #now: () => number;

  /**
   * A pool over the given sites with a balancing policy; with `slowStartMs`, a backend that
   * came back UP takes a share of new requests that grows linearly over that window.
   */
  constructor(
    sites: Backend[][],
    policy: HostBalance,
    random: Random = Math.random,
    options: { slowStartMs?: number; now?: () => number } = {},
  ) {
    this.sites = sites;
    this.#pick = balancerFor(policy);
    this.#random = random;
    this.#slowStartMs = options.slowStartMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /** Every backend of every site, site by site. */
  get backends(): Backend[] {
    return this.sites.flat();
  }

  /** The UP backends of the first site that has any (empty if none). */
  activeSite(): Backend[] {
    for (const site of this.sites) {
      const up = site.filter((b) => b.up);
      if (up.length > 0) return up;
    }
    return [];
  }

  /**
   * The backend for the next request, or undefined when every backend is DOWN. The common case
   * — the first site has UP backends — picks from the site itself, without building a list.
   */
  pick(): Backend | undefined {
    for (const site of this.sites) {
      let up = 0;
      for (const b of site) if (b.up) up++;
      if (up === 0) continue;
      const candidates = up === site.length ? site : site.filter((b) => b.up);
      return this.#slowStart(candidates, this.#pick(candidates, this.#random)!);
    }
    return undefined;
  }

  /**
   * Slow start: a pick of a backend `t` ms into its ramp stands with probability `t / window`;
   * otherwise the request goes to the policy's pick among the others, so the ramping backend's
   * share of new requests grows linearly from zero to its full share over the window.
   */
  #slowStart(candidates: readonly Backend[], picked: Backend): Backend {
    if (this.#slowStartMs <= 0 || candidates.length < 2 || picked.upSince === 0) return picked;
    const into = this.#now() - picked.upSince;
    if (into >= this.#slowStartMs || this.#random() * this.#slowStartMs < into) return picked;
    return this.#pick(candidates.filter((b) => b !== picked), this.#random) ?? picked;
  }

  /**
   * The backend for another attempt of a request that already tried `tried`: the best other UP
   * backend by the policy, in the first site that has one, then the next sites in order.
   */
  pickExcept(tried: readonly Backend[]): Backend | undefined {
    for (const site of this.sites) {
      const candidates = site.filter((b) => b.up && !tried.includes(b));
      if (candidates.length > 0) return this.#pick(candidates, this.#random);
    }
    return undefined;
  }

  /** Whether any backend of any site is UP. */
  online(): boolean {
    return this.sites.some((site) => site.some((b) => b.up));
  }
}
