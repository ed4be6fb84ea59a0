/**
 * One generation of the pool as plain, cloneable data: the sites of endpoints, each backend's
 * cell in a shared UP-flag buffer and its endpoint's counter slot. The control plane plans a
 * generation at start-up and on every reload; each data plane (in its own isolate, if need be)
 * builds its {@linkcode Pool} from the same plan, so that every isolate sees the same UP flags and
 * in-flight counts.
 * @module
 */

import { Backend, type TransitionListener } from "./backend.ts";
import type { HostBalance, Random } from "./balancer.ts";
import { Pool } from "./pool.ts";
import type { Stats } from "./stats.ts";

/** One endpoint of a planned site (as the control plane plans them from the SITE arguments). */
export interface PlannedEndpoint {
  /** The endpoint URL as given (display name and metric label). */
  endpoint: string;
  /** Its health check URL. */
  healthUrl: string;
}

/** One backend of a generation. */
export interface PlannedBackend {
  /** The endpoint string. */
  endpoint: string;
  /** The full URL of its health check. */
  healthUrl: string;
  /** Its UP flag's index in {@linkcode GenerationPlan.state}. */
  stateIndex: number;
}

/** A generation of the pool, copyable into a message to a worker isolate. */
export interface GenerationPlan {
  /** Increases with every reload. */
  id: number;
  /** One int32 UP flag per backend (1 UP), written by health checks and passive ejections. */
  state: SharedArrayBuffer;
  /** One float64 per backend: when it came back UP (slow start), written by health checks. */
  since: SharedArrayBuffer;
  /** The backends of each site, in priority order. */
  sites: PlannedBackend[][];
  /** Endpoint → counter slot of every endpoint in the sites (see `Stats.adopt`). */
  slots: [string, number][];
  /** rr-dns: URL host → the hostname to verify and send as SNI. */
  serverNames: [string, string][];
}

/** Plans generation `id` from the endpoints of every site, assigning counter slots in `stats`. */
export function planGeneration(
  id: number,
  sites: readonly (readonly PlannedEndpoint[])[],
  stats: Stats,
  serverNames: ReadonlyMap<string, string> = new Map(),
): GenerationPlan {
  let n = 0;
  const planned = sites.map((site) =>
    site.map((e) => {
      stats.slot(e.endpoint);
      return { endpoint: e.endpoint, healthUrl: e.healthUrl, stateIndex: n++ };
    })
  );
  const slots = planned.flat().map((b): [string, number] => [b.endpoint, stats.slot(b.endpoint)!]);
  return {
    id,
    state: new SharedArrayBuffer(Math.max(1, n) * 4),
    since: new SharedArrayBuffer(Math.max(1, n) * 8),
    sites: planned,
    slots,
    serverNames: [...serverNames],
  };
}

/** What a pool built from a plan needs besides the plan. */
export interface PoolSettings {
  /** `--host-balance`. */
  hostBalance: HostBalance;
  /** Receives the real UP/DOWN transitions made through this isolate's backends. */
  onTransition: TransitionListener;
  /** Random source for balancing. */
  random?: Random;
  /** `--slow-start`, ms (0: off). */
  slowStartMs?: number;
}

/**
 * The pool of a plan over shared cells: UP flags from the plan's buffer, in-flight counts from
 * the counter memory of `stats` (which must know the plan's slots).
 */
export function poolOf(plan: GenerationPlan, stats: Stats, settings: PoolSettings): Pool {
  const state = new Int32Array(plan.state);
  const since = new Float64Array(plan.since);
  const inflight = new Int32Array(stats.memory.inflight);
  const slots = new Map(plan.slots);
  const sites = plan.sites.map((site, i) =>
    site.map((b) =>
      new Backend(b.endpoint, i + 1, b.healthUrl, settings.onTransition, Date.now(), {
        state,
        stateIndex: b.stateIndex,
        inflight,
        inflightIndex: slots.get(b.endpoint)!,
        since,
      })
    )
  );
  return new Pool(sites, settings.hostBalance, settings.random, {
    slowStartMs: settings.slowStartMs,
  });
}
