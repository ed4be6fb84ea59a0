/**
 * The typed configuration of one sidekick, produced by `cli.ts` from argv (or built by hand
 * when embedding). Durations are in milliseconds.
 * @module
 */

import type { HostBalance } from "../shared/balancer.ts";

export type { HostBalance };

/** Everything a sidekick needs to run; one field per command-line flag plus the SITE arguments. */
export interface Config {
  /** `--address`, `-a`: listen address (`host:port`, `:port`, `[::1]:port`). */
  address: string;
  /** `--health-path`, `-p`: normalised, always starts with `/`. */
  healthPath: string;
  /** `--read-health-path`, `-r`: health path of the last site; normalised, starts with `/`. */
  readHealthPath: string;
  /** `--health-port`: 0 means "the endpoint's own port". */
  healthPort: number;
  /** `--health-duration`, `-d`: base interval between checks, ms, > 0. */
  healthDurationMs: number;
  /** `--health-timeout`: bound on one whole health exchange, ms, > 0. */
  healthTimeoutMs: number;
  /** `--insecure`, `-i`: skip TLS verification towards https backends. */
  insecure: boolean;
  /** `--rr-dns-mode`: one backend per resolved address for single-endpoint sites. */
  rrDnsMode: boolean;
  /** `--health-optimistic`: only check backends while they are DOWN. */
  healthOptimistic: boolean;
  /** `--auto-tls-host`: comma-separated hosts/IPs for a generated self-signed certificate. */
  autoTlsHost: string;
  /** `--log`, `-l`: print UP/DOWN state changes. */
  log: boolean;
  /** `--trace`, `-t`: `all`, `application`, `minio`, or `""` for no trace output. */
  trace: string;
  /** Whether `--trace` was given explicitly (forces console mode). */
  traceExplicit: boolean;
  /** `--quiet`, `-q`: no log or trace lines. */
  quiet: boolean;
  /** `--json`: log and trace lines as JSON. */
  json: boolean;
  /** `--debug`: verbose trace records. */
  debug: boolean;
  /** `--cacert`: PEM file with extra CAs for https backends. */
  cacert: string;
  /** `--client-cert`: PEM client certificate for mTLS towards backends. */
  clientCert: string;
  /** `--client-key`: PEM client key for mTLS towards backends. */
  clientKey: string;
  /** `--cert`: server certificate (PEM) for TLS termination. */
  cert: string;
  /** `--key`: server private key (PEM). */
  key: string;
  /** `--no-http2`: the HTTPS listener offers HTTP/1.1 only. */
  noHttp2: boolean;
  /** `--key-password`: password of an encrypted server key. */
  keyPassword: string;
  /** `--pprof`: address of the separate profiling listener, or `""`. */
  pprof: string;
  /** `--dns-ttl`: DNS cache refresh period, ms, > 0. */
  dnsTtlMs: number;
  /** `--errors`, `-e`: only trace records with status 400..599. */
  errors: boolean;
  /** `--status-code` (repeatable): only trace records with one of these statuses. */
  statusCodes: number[];
  /** `--host-balance`: `least` (default) or `random`. */
  hostBalance: HostBalance;
  /** `--workers`: data-plane isolates; 0 means "the CPUs available, at most 4". */
  workers: number;
  /** `--retries`: at most this many further attempts of a failed request, on other backends. */
  retries: number;
  /** `--retry-buffer`: request bodies up to this many bytes are kept for a retry. */
  retryBufferBytes: number;
  /** `--health-rise`: consecutive passing checks before a DOWN backend is UP again. */
  healthRise: number;
  /** `--health-fall`: consecutive failed checks before an UP backend is DOWN. */
  healthFall: number;
  /** `--slow-start`: a recovered backend's share ramps up over this long, ms (0: off). */
  slowStartMs: number;
  /** `--response-timeout`: longest wait for a backend's response headers once sent, ms (0: none). */
  responseTimeoutMs: number;
  /** `--eject-after`: consecutive failures that take a backend out of picking for a while (0: off). */
  ejectAfter: number;
  /** `--hedge-after`: a bodyless GET/HEAD without response headers this long goes elsewhere too, ms (0: off). */
  hedgeAfterMs: number;
  /**
   * `--verify-bodies`: every response body passes through sidekick's own stream, counted as it
   * goes, so that one the backend breaks off is seen; without it a body with a declared length
   * passes through natively and counts its declared length.
   */
  verifyBodies: boolean;
  /** `--tls-max` (hidden): only `1.3` is supported by the Deno TLS stack. */
  tlsMax: string;
  /** The SITE arguments, in priority order, unexpanded. */
  sites: string[];
}

/** The defaults of every flag, as in the Go sidekick. */
export const DEFAULTS: Readonly<Omit<Config, "sites" | "statusCodes">> = Object.freeze({
  address: ":8080",
  healthPath: "/",
  readHealthPath: "/",
  healthPort: 0,
  healthDurationMs: 5_000,
  healthTimeoutMs: 10_000,
  insecure: false,
  rrDnsMode: false,
  healthOptimistic: false,
  autoTlsHost: "",
  log: false,
  trace: "all",
  traceExplicit: false,
  quiet: false,
  json: false,
  debug: false,
  cacert: "",
  clientCert: "",
  clientKey: "",
  cert: "",
  key: "",
  keyPassword: "",
  noHttp2: false,
  pprof: "",
  dnsTtlMs: 600_000,
  errors: false,
  hostBalance: "least",
  workers: 0,
  retries: 2,
  retryBufferBytes: 1 << 20,
  healthRise: 1,
  healthFall: 1,
  slowStartMs: 0,
  responseTimeoutMs: 60_000,
  ejectAfter: 5,
  hedgeAfterMs: 0,
  verifyBodies: false,
  tlsMax: "1.3",
});

/**
 * A full {@linkcode Config} from the defaults plus the given overrides (for embedding and tests).
 * Unlike the command line, it serves from the calling isolate (`workers: 1`) unless told
 * otherwise, so that an embedder's record listener sees every request.
 */
export function makeConfig(overrides: Partial<Config> & { sites: string[] }): Config {
  return { ...DEFAULTS, workers: 1, statusCodes: [], ...overrides };
}
