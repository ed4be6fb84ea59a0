/**
 * Name resolution for backends: a DNS cache for hostname endpoints.
 *
 * - {@linkcode DnsCache}: hostname → addresses from the system resolver (`getaddrinfo`, so
 *   `/etc/hosts` and search domains apply, as in Go), each lookup bounded by 5 s and shared by
 *   concurrent callers. Every `--dns-ttl` the entries used since the last refresh are resolved
 *   again, unused ones are dropped, and an entry whose new lookup fails keeps its stale addresses.
 *   Record TTLs are ignored, as in the Go sidekick. One cache per sidekick; `stop()` ends it.
 * @module
 */

import { lookup as nodeLookup } from "node:dns/promises";

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
export const systemResolver: Resolver = async (hostname): Promise<string[]> => {
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
