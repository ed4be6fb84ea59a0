/**
 * Sites of backends in priority order. The first site with an UP backend serves; inside it the
 * balancer picks. Pure: health checks and the proxy act on the backends, the pool only reads them.
 * @module
 */

import type { Backend } from "./backend.ts";
import { balancerFor, type HostBalance, type Random } from "./balancer.ts";
import type { Outliers } from "./outlier.ts";
import { type PeakEwma, pickEwma } from "./peak_ewma.ts";

/** How long a backend back from an ejection ramps up when `--slow-start` is off, ms. */
export const EJECTION_RAMP_MS = 10_000;

/** The backends of all sites, in priority order. */
export class Pool {
  /** `sites[i]` holds the backends of site i+1, in expansion order. */
  readonly sites: readonly (readonly Backend[])[];
  readonly #pick: (candidates: readonly Backend[], random?: Random) => Backend | undefined;
  readonly #random: Random;
  readonly #slowStartMs: number;
  readonly #now: () => number;
  readonly #members: ReadonlySet<Backend>;
  /** Outlier ejection state (`--eject-after`), if on. */
  readonly outliers?: Outliers;
  /** Latency estimates (`--host-balance ewma`), if that is the policy. */
  readonly ewma?: PeakEwma;

  /**
   * A pool over the given sites with a balancing policy; with `slowStartMs`, a backend that
   * came back UP takes a share of new requests that grows linearly over that window.
   */
  constructor(
    sites: Backend[][],
    policy: HostBalance,
    random: Random = Math.random,
    options: {
      slowStartMs?: number;
      now?: () => number;
      outliers?: Outliers;
      ewma?: PeakEwma;
    } = {},
  ) {
    this.sites = sites;
    this.#members = new Set(sites.flat());
    this.#random = random;
    this.#slowStartMs = options.slowStartMs ?? 0;
    this.#now = options.now ?? Date.now;
    this.outliers = options.outliers?.after ? options.outliers : undefined;
    const ewma = this.ewma = policy === "ewma" ? options.ewma : undefined;
    const now = this.#now;
    this.#pick = ewma
      ? (c: readonly Backend[], r?: Random) => pickEwma(c, ewma, now(), r)
      : balancerFor(policy);
  }

  /** Whether `b` may be picked: UP and not ejected. */
  #usable(b: Backend, now: number): boolean {
    return b.up && (this.outliers === undefined || !this.outliers.ejected(b.index, now));
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
   * — the first site has usable backends — picks from the site itself, without building a list.
   * A site whose UP backends are all ejected still serves from them rather than fail over.
   */
  pick(): Backend | undefined {
    const now = this.#now();
    for (const site of this.sites) {
      let usable = 0;
      let up = 0;
      for (const b of site) {
        if (!b.up) continue;
        up++;
        if (this.#usable(b, now)) usable++;
      }
      if (up === 0) continue;
      const candidates = usable === site.length
        ? site
        : usable > 0
        ? site.filter((b) => this.#usable(b, now))
        : site.filter((b) => b.up);
      return this.#slowStart(candidates, this.#pick(candidates, this.#random)!, now);
    }
    return undefined;
  }

  /**
   * Slow start: a pick of a backend `t` ms into its ramp stands with probability `t / window`;
   * otherwise the request goes to the policy's pick among the others, so the ramping backend's
   * share of new requests grows linearly from zero to its full share over the window. A backend
   * ramps after it came back UP (`--slow-start`) and after an ejection ended (`--slow-start`, or
   * {@linkcode EJECTION_RAMP_MS} when that is off).
   */
  #slowStart(candidates: readonly Backend[], picked: Backend, now: number): Backend {
    if (candidates.length < 2) return picked;
    let into = Infinity;
    let window = this.#slowStartMs;
    if (window > 0 && picked.upSince !== 0) into = now - picked.upSince;
    if (this.outliers) {
      const until = this.outliers.until(picked.index);
      if (until !== 0 && now - until < into) {
        into = now - until;
        window = window || EJECTION_RAMP_MS;
      }
    }
    if (into >= window || this.#random() * window < into) return picked;
    return this.#pick(candidates.filter((b) => b !== picked), this.#random) ?? picked;
  }

  /**
   * The backend for another attempt of a request that already tried `tried`: the best other
   * usable backend by the policy, in the first site that has one, then the next sites in order
   * (an ejected backend only when no other UP backend is left).
   */
  pickExcept(tried: readonly Backend[]): Backend | undefined {
    const now = this.#now();
    for (const site of this.sites) {
      const candidates = site.filter((b) => this.#usable(b, now) && !tried.includes(b));
      if (candidates.length > 0) return this.#pick(candidates, this.#random);
    }
    for (const site of this.sites) {
      const candidates = site.filter((b) => b.up && !tried.includes(b));
      if (candidates.length > 0) return this.#pick(candidates, this.#random);
    }
    return undefined;
  }

  /** The rows of the backends of `b`'s site (for the ejection cap). */
  siteIndices(b: Backend): number[] {
    return (this.sites[b.site - 1] ?? [b]).map((x) => x.index);
  }

  /** Whether `b` is one of this pool's backends (not one of a generation since replaced). */
  has(b: Backend): boolean {
    return this.#members.has(b);
  }

  /** Whether any backend of any site is UP. */
  online(): boolean {
    return this.sites.some((site) => site.some((b) => b.up));
  }
}
