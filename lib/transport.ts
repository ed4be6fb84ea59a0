/**
 * How bytes reach a backend: one `Deno.HttpClient` with the client's `Host` allowed through and
 * a keep-alive idle timeout below common backend idle timeouts. Proxied traffic and health checks
 * share it, as in the Go sidekick.
 * @module
 */

/** Sends requests to backends. */
export interface Transport {
  /** One HTTP exchange; rejects on transport failure (see `fetch_errors.ts`). */
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** Closes pooled connections. */
  close(): void;
}

/** Options of the fetch-based transport. */
export interface TransportOptions {
  /** Idle pooled connections are closed after this many ms (Go sidekick: 15 s). */
  poolIdleTimeoutMs?: number;
}

/** The idle timeout of pooled upstream connections: below MinIO's and most servers' defaults. */
export const POOL_IDLE_TIMEOUT_MS = 15_000;

/** A transport over `fetch` with its own `Deno.HttpClient`. */
export function createFetchTransport(options: TransportOptions = {}): Transport {
  const client = Deno.createHttpClient({
    allowHost: true,
    http2: false,
    poolIdleTimeout: options.poolIdleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS,
  });
  return {
    fetch: (url, init) => fetch(url, { ...init, client }),
    close: () => client.close(),
  };
}
