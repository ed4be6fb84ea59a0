/**
 * One data plane as the control plane drives it, whether it runs in this isolate or in a
 * worker isolate.
 * @module
 */

import type { GenerationPlan } from "../shared/generation.ts";
import type { Result } from "../shared/result.ts";
import type { KeyPair } from "../tls/key_pair.ts";

/** One data plane as the control plane drives it, in this isolate or another. */
export interface PlaneHandle {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the plane's listener has closed. */
  readonly finished: Promise<void>;
  /** Serves `pair` to new connections. */
  swapCertificate(pair: KeyPair): Result<void>;
  /** Serves this generation from now on. */
  generation(plan: GenerationPlan): void;
  /** Drains for `drainTimeoutMs` at most, then closes. */
  stop(drainTimeoutMs: number): Promise<void>;
  /** HTTPS: why the listener lacks `TCP_NODELAY`, if it does (see `DataPlane.noDelayError`). */
  readonly noDelayError: string | undefined;
}
