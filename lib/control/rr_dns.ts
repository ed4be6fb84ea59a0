/**
 * `--rr-dns-mode`: every site that is one hostname is served as one endpoint per address of
 * that name. The sites are expanded at start (a name that does not resolve is a
 * {@linkcode ConfigError}), on reload, and, beyond the Go sidekick, on every `--dns-ttl` refresh:
 * a changed address set is swapped in like a reload (the old sites serve until the new ones are
 * checked).
 *
 * {@linkcode expandRrDns}: a site with exactly one hostname endpoint becomes one endpoint per
 * address (IPv6 bracketed: the Go version built `http://::1:9000` and crashed), and https
 * addresses remember the hostname so TLS is still verified against it.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { PlannedEndpoint } from "../shared/generation.ts";
import { type DnsCache, DnsLookupError, isIpHost, urlHost } from "../upstream/dns.ts";
import type { BackendTransport } from "../upstream/transport.ts";
import type { Generations } from "./generations.ts";
import { ConfigError, planSites } from "./preflight.ts";

/** What {@linkcode expandRrDns} produced. */
export interface RrDnsPlan {
  /** The sites, rr-dns sites replaced by one endpoint per address. */
  sites: PlannedEndpoint[][];
  /** For https rr-dns endpoints: URL host of the address (`10.0.0.7`, `[::1]`) → hostname. */
  serverNames: Map<string, string>;
  /** The original endpoints of the sites that were expanded, in site order. */
  expanded: string[];
}

/** Replaces the host of an absolute URL string, leaving every other character as it was. */
export function replaceUrlHost(url: string, host: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(\[[^\]]*\]|[^:/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  return m[1] + host + m[3];
}

/**
 * Expands every site that has exactly one endpoint with a hostname (not an IP) into one
 * endpoint per address of that hostname, in resolver order; other sites are kept. `lookup`
 * errors propagate (the caller decides: fatal at start, keep the old sites on a refresh).
 */
export async function expandRrDns(
  sites: readonly (readonly PlannedEndpoint[])[],
  lookup: (host: string) => Promise<string[]>,
): Promise<RrDnsPlan> {
  const serverNames = new Map<string, string>();
  const expanded: string[] = [];
  const out: PlannedEndpoint[][] = [];
  for (const site of sites) {
    const url = site.length === 1 ? new URL(site[0].endpoint) : undefined;
    if (!url || isIpHost(url.hostname)) {
      out.push([...site]);
      continue;
    }
    const addresses = await lookup(url.hostname);
    expanded.push(site[0].endpoint);
    const seen = new Set<string>();
    const endpoints: PlannedEndpoint[] = [];
    for (const address of addresses) {
      const host = urlHost(address);
      if (seen.has(host)) continue;
      seen.add(host);
      if (url.protocol === "https:") serverNames.set(host, url.hostname);
      endpoints.push({
        endpoint: replaceUrlHost(site[0].endpoint, host),
        healthUrl: replaceUrlHost(site[0].healthUrl, host),
      });
    }
    out.push(endpoints);
  }
  return { sites: out, serverNames, expanded };
}

/** Whether two plans have the same endpoints in the same sites (order inside a site ignored). */
export function samePlan(
  a: readonly (readonly PlannedEndpoint[])[],
  b: readonly (readonly PlannedEndpoint[])[],
): boolean {
  if (a.length !== b.length) return false;
  return a.every((site, i) => {
    const x = site.map((e) => e.endpoint + " " + e.healthUrl).sort();
    const y = b[i].map((e) => e.endpoint + " " + e.healthUrl).sort();
    return x.length === y.length && x.every((v, j) => v === y[j]);
  });
}

/** The sites of a sidekick with their rr-dns names expanded through its DNS cache. */
export class RrDnsSites {
  /** For https rr-dns endpoints: URL host of an address → the hostname to verify and send. */
  readonly serverNames: Map<string, string> = new Map();
  readonly #sites: PlannedEndpoint[][];
  readonly #dns: DnsCache;
  readonly #transport: BackendTransport;

  /** Expands `sites` (as configured) through `dns`; `transport` learns the TLS names. */
  constructor(sites: PlannedEndpoint[][], dns: DnsCache, transport: BackendTransport) {
    this.#sites = sites;
    this.#dns = dns;
    this.#transport = transport;
  }

  /** The expanded sites; `fresh` bypasses the DNS cache. Rejects with {@linkcode DnsLookupError}. */
  async expand(fresh: boolean): Promise<RrDnsPlan> {
    const dns = this.#dns;
    const expanded = await expandRrDns(
      this.#sites,
      (h) => fresh ? dns.resolveNow(h) : dns.lookup(h),
    );
    this.#transport.addServerNames(expanded.serverNames);
    for (const [host, name] of expanded.serverNames) this.serverNames.set(host, name);
    return expanded;
  }

  /** The sites a reload swaps in: expanded afresh in rr-dns mode, else parsed again. */
  async reloadSites(config: Config): Promise<PlannedEndpoint[][]> {
    return config.rrDnsMode ? (await this.expand(true)).sites : planSites(config);
  }

  /** The first expansion, at start: each expanded site is reported; throws {@linkcode ConfigError}. */
  async first(info: (text: string) => void): Promise<PlannedEndpoint[][]> {
    try {
      const expanded = await this.expand(true);
      for (const e of expanded.expanded) info(`RR DNS mode enabled, using ${e} as hostname`);
      return expanded.sites;
    } catch (e) {
      if (!(e instanceof DnsLookupError)) throw e;
      throw new ConfigError(`--rr-dns-mode: unable to lookup host ${e.host}: ${e.reason}`);
    }
  }

  /**
   * After every DNS refresh while `serving()` and not stopped: re-expands the sites from the cache and swaps a
   * changed set into `generations`. A failed lookup keeps the stale sites.
   */
  follow(generations: Generations, serving: () => boolean, info: (text: string) => void): void {
    this.#dns.onRefresh(async () => {
      if (!serving() || generations.stopped) return;
      const expanded = await this.expand(false).catch(() => undefined);
      if (!expanded || samePlan(expanded.sites, generations.sites)) return;
      const names = expanded.sites.flat().map((e) => e.endpoint).join(", ");
      info(`RR DNS: addresses changed, now using ${names}`);
      await generations.swap(() => Promise.resolve(expanded.sites)).catch(() => {});
    });
  }
}
