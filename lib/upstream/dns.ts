/**
 * Name resolution for backends: a DNS cache for hostname endpoints and the
 * `--rr-dns-mode` expansion of single-endpoint sites.
 *
 * - {@linkcode DnsCache}: hostname → addresses from the system resolver (`getaddrinfo`, so
 *   `/etc/hosts` and search domains apply, as in Go), each lookup bounded by 5 s and shared by
 *   concurrent callers. Every `--dns-ttl` the entries used since the last refresh are resolved
 *   again, unused ones are dropped, and an entry whose new lookup fails keeps its stale addresses.
 *   Record TTLs are ignored, as in the Go sidekick. One cache per sidekick; `stop()` ends it.
 * - {@linkcode expandRrDns}: a site with exactly one hostname endpoint becomes one endpoint per
 *   address (IPv6 bracketed: the Go version built `http://::1:9000` and crashed), and https
 *   addresses remember the hostname so TLS is still verified against it.
 * @module
 */

import { lookup as nodeLookup } from "node:dns/promises";
import type { PlannedEndpoint } from "../shared/generation.ts";

/** Resolves a hostname to its addresses, in resolver order; rejects when it cannot. */
export type Resolver = (hostname: string) => Promise<string[]>;

/** The bound on one lookup (as the Go sidekick's resolver). */
export const LOOKUP_TIMEOUT_MS = 5_000;

/** A lookup that failed: `host` could not be resolved, `reason` says why. */
export class DnsLookupError extends Error {
  /** The hostname that failed. */
  readonly host: string;
  /** Why, in a short phrase (`no such host`). */
  readonly reason: string;
  /** A failed lookup of `host`. */
  constructor(host: string, reason: string) {
    super(`lookup ${host}: ${reason}`);
    this.name = "DnsLookupError";
    this.host = host;
    this.reason = reason;
  }
}

/** Whether a URL hostname is an IP literal (`10.0.0.1`, `[::1]`, `::1`). */
export function isIpHost(host: string): boolean {
  if (host.startsWith("[") || host.includes(":")) return true;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** An address as a URL host: IPv6 in brackets, IPv4 unchanged. */
export function urlHost(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

/** The system resolver: `getaddrinfo` through `node:dns`, both families, in resolver order. */
export const systemResolver: Resolver = async (hostname) => {
  const found = await nodeLookup(hostname, { all: true, order: "verbatim" });
  return [...new Set(found.map((a) => a.address))];
};

/** Why a lookup failed, in one short phrase. */
function reasonOf(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (code === "ENOTFOUND") return "no such host";
  if (code === "EAI_AGAIN") return "temporary failure in name resolution";
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Settings of a {@linkcode DnsCache}. */
export interface DnsCacheOptions {
  /** `--dns-ttl`: refresh period, ms. */
  ttlMs: number;
  /** The resolver (default {@linkcode systemResolver}; tests pass a fake). */
  resolver?: Resolver;
  /** Bound on one lookup, ms. */
  lookupTimeoutMs?: number;
}

interface Entry {
  addresses: string[];
  used: boolean;
}

/** Hostname → addresses, refreshed every TTL; see the module documentation. */
export class DnsCache {
  readonly #ttlMs: number;
  readonly #resolver: Resolver;
  readonly #timeoutMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<string[]>>();
  readonly #listeners = new Set<() => void | Promise<void>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** A cache; nothing is refreshed until {@linkcode DnsCache.start}. */
  constructor(options: DnsCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#resolver = options.resolver ?? systemResolver;
    this.#timeoutMs = options.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS;
  }

  /** The hostnames currently cached. */
  get hosts(): string[] {
    return [...this.#entries.keys()];
  }

  /** The cached addresses of `host` without resolving or marking it used. */
  peek(host: string): string[] | undefined {
    return this.#entries.get(host.toLowerCase())?.addresses;
  }

  /**
   * The addresses of `host`: from the cache (marking the entry used) or from one lookup shared
   * with concurrent callers. Rejects with {@linkcode DnsLookupError} when nothing is known.
   */
  lookup(host: string): Promise<string[]> {
    const key = host.toLowerCase();
    const entry = this.#entries.get(key);
    if (entry) {
      entry.used = true;
      return Promise.resolve(entry.addresses);
    }
    return this.#resolve(key);
  }

  /**
   * Resolves `host` now, bypassing the cached answer (SIGHUP). On success the entry is
   * replaced; on failure it rejects and the entry, if any, is left as it was.
   */
  resolveNow(host: string): Promise<string[]> {
    return this.#resolve(host.toLowerCase());
  }

  /** Calls `listener` after every periodic refresh (rr-dns re-expands its sites there). */
  onRefresh(listener: () => void | Promise<void>): void {
    this.#listeners.add(listener);
  }

  /** Starts the periodic refresh every TTL. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#schedule();
  }

  /** Stops the periodic refresh; lookups still work (uncached entries are resolved). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One refresh: entries used since the last refresh are resolved again (a failure keeps the
   * stale addresses), unused entries are dropped; then every `onRefresh` listener runs.
   */
  async refresh(): Promise<void> {
    const work: Promise<unknown>[] = [];
    for (const [host, entry] of this.#entries) {
      if (!entry.used) {
        this.#entries.delete(host);
        continue;
      }
      entry.used = false;
      work.push(this.#resolve(host).catch(() => {/* stale entry kept */}));
    }
    await Promise.all(work);
    for (const listener of this.#listeners) {
      if (this.#stopped) break;
      try {
        await listener();
      } catch {
        // A listener's failure must not stop the refresh loop; listeners report their own.
      }
    }
  }

  #schedule(): void {
    this.#timer = setTimeout(async () => {
      await this.refresh();
      if (!this.#stopped) this.#schedule();
    }, this.#ttlMs);
  }

  #resolve(key: string): Promise<string[]> {
    const pending = this.#pending.get(key);
    if (pending) return pending;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DnsLookupError(key, `timed out after ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    const attempt = (async () => {
      let addresses: string[];
      try {
        addresses = await Promise.race([this.#resolver(key), timeout]);
      } catch (e) {
        throw e instanceof DnsLookupError ? e : new DnsLookupError(key, reasonOf(e));
      } finally {
        clearTimeout(timer);
      }
      if (addresses.length === 0) throw new DnsLookupError(key, "no addresses");
      const existing = this.#entries.get(key);
      if (existing) existing.addresses = addresses;
      else this.#entries.set(key, { addresses, used: true });
      return addresses;
    })();
    this.#pending.set(key, attempt);
    attempt.then(
      () => this.#pending.delete(key),
      () => this.#pending.delete(key),
    );
    return attempt;
  }
}

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
