/**
 * Everything a sidekick checks before anything binds: the listen address, the SITE arguments,
 * the `--pprof` address and permission, the backend TLS files and the server certificate. A
 * problem is a {@linkcode ConfigError}: one line for the user, exit status 2 from the CLI.
 * @module
 */

import { type ListenAddress, parseListenAddress } from "../config/address.ts";
import type { Config } from "../config/config.ts";
import { healthUrl, parseSites } from "../config/sites.ts";
import type { PlannedEndpoint } from "../shared/generation.ts";
import { type BackendTls, loadBackendTls } from "../tls/backend_tls.ts";
import { planServerTls, type ServerTls, type ServerTlsHooks } from "../tls/server_tls.ts";
import { inspectorAllowed } from "./pprof.ts";

/** Bad configuration: a one-line message for the user (exit status 2 from the CLI). */
export class ConfigError extends Error {
  /** A configuration error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Endpoints of every site with their health URLs; throws {@linkcode ConfigError}. */
export function planSites(config: Config): PlannedEndpoint[][] {
  const parsed = parseSites(config.sites);
  if (!parsed.ok) throw new ConfigError(parsed.error);
  return parsed.value.map((endpoints, i) => {
    const last = i === parsed.value.length - 1;
    const path = last ? config.readHealthPath : config.healthPath;
    return endpoints.map((endpoint) => {
      const url = healthUrl(endpoint, path, config.healthPort);
      if (!url.ok) throw new ConfigError(url.error);
      return { endpoint, healthUrl: url.value };
    });
  });
}

/** A configuration that passed {@linkcode preflight}, with what its files held. */
export interface CheckedConfig {
  /** Where the data planes listen. */
  listen: ListenAddress;
  /** The sites as configured (before any rr-dns expansion). */
  sites: PlannedEndpoint[][];
  /** Where `--pprof` listens, if set. */
  pprof?: ListenAddress;
  /** TLS towards https backends; read when a site uses https or a backend TLS file is named. */
  backendTls?: BackendTls;
  /** Server TLS (`--cert/--key` or `--auto-tls-host`); undefined for plain HTTP. */
  serverTls?: ServerTls;
}

/** Checks `config` and reads its files; throws {@linkcode ConfigError}. */
export function preflight(config: Config, hooks: ServerTlsHooks): CheckedConfig {
  const listen = parseListenAddress(config.address);
  if (!listen.ok) throw new ConfigError(listen.error);
  const sites = planSites(config);
  let pprof: ListenAddress | undefined;
  if (config.pprof) {
    const parsed = parseListenAddress(config.pprof, "--pprof");
    if (!parsed.ok) throw new ConfigError(parsed.error);
    if (!inspectorAllowed()) {
      throw new ConfigError("--pprof needs the sys permission for the inspector (--allow-sys)");
    }
    pprof = parsed.value;
  }
  // Backend TLS files are read when a site uses https, and whenever one is named: a missing or
  // bad file fails now rather than at the first https backend.
  let backendTls: BackendTls | undefined;
  const tlsFiles = config.cacert !== "" || config.clientCert !== "" || config.clientKey !== "";
  if (tlsFiles || sites.flat().some((e) => /^https:/i.test(e.endpoint))) {
    const loaded = loadBackendTls(config);
    if (!loaded.ok) throw new ConfigError(loaded.error);
    backendTls = loaded.value;
  }
  const serverTls = planServerTls(config, hooks);
  if (!serverTls.ok) throw new ConfigError(serverTls.error);
  return { listen: listen.value, sites, pprof, backendTls, serverTls: serverTls.value };
}
