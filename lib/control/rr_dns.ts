/**
 * `--rr-dns-mode`: every site that is one hostname is served as one endpoint per address of
 * that name. The sites are expanded at start (a name that does not resolve is a
 * {@linkcode ConfigError}), on reload, and, beyond the Go sidekick, on every `--dns-ttl` refresh:
 * a changed address set is swapped in like a reload (the old sites serve until the new ones are
 * checked).
 * @module
 */

import type { Config } from "../config/config.ts";
import type { PlannedEndpoint } from "../shared/generation.ts";
import {
  type DnsCache,
  DnsLookupError,
  expandRrDns,
  type RrDnsPlan,
  samePlan,
} from "../upstream/dns.ts";
import type { BackendTransport } from "../upstream/transport.ts";
import type { Generations } from "./generations.ts";
import { ConfigError, planSites } from "./preflight.ts";

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
