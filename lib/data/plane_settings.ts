/**
 * The one settings type of a data plane, whether it runs in the control plane's isolate
 * (`--workers 1`) or in a worker isolate: plain data, so that it is posted to a worker as is.
 * A flag that the data plane reads is added to {@linkcode PLANE_FLAGS} (and to the flag table);
 * nothing else copies it.
 *
 * @example
 * ```ts
 * import { makeConfig } from "../config/config.ts";
 * import { planeFlags } from "./plane_settings.ts";
 * const flags = planeFlags(makeConfig({ sites: ["http://127.0.0.1:9000"], retries: 2 }));
 * flags.retries; // 2
 * ```
 * @module
 */

import type { Config } from "../config/config.ts";
import type { BackendTls } from "../tls/backend_tls.ts";
import type { KeyPair } from "../tls/key_pair.ts";

/** The configuration fields a data plane reads, taken from the {@linkcode Config} as they are. */
export const PLANE_FLAGS = [
  "dnsTtlMs",
  "hostBalance",
  "slowStartMs",
  "retries",
  "retryBufferBytes",
  "noHttp2",
  "responseTimeoutMs",
  "hedgeAfterMs",
  "ejectAfter",
  "verifyBodies",
] as const satisfies readonly (keyof Config)[];

/** The fields named by {@linkcode PLANE_FLAGS}. */
export type PlaneFlags = Pick<Config, typeof PLANE_FLAGS[number]>;

/** The {@linkcode PLANE_FLAGS} of a configuration. */
export function planeFlags(config: Config): PlaneFlags {
  return Object.fromEntries(PLANE_FLAGS.map((k) => [k, config[k]])) as unknown as PlaneFlags;
}

/** Where and how one data plane listens and connects: the flags plus what the control plane made. */
export interface PlaneSettings extends PlaneFlags {
  /** Address to bind. */
  hostname: string;
  /** Port to bind (0: the kernel picks, only when not shared). */
  port: number;
  /** Serve HTTPS with this pair (replaceable later). */
  tls?: KeyPair;
  /** The PEM answered at `GET /v1/certificates` (a generated certificate), if any. */
  certificatePem?: string;
  /** TLS towards https backends. */
  backendTls?: BackendTls;
  /** This machine's non-loopback IP, for `X-Forwarded-For` of loopback clients. */
  publicIp: string;
  /** The cells of the retry budget shared by every data plane. */
  retryBudget: SharedArrayBuffer;
}
