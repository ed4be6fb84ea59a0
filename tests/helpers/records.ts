/**
 * Shared `ExchangeRecord` fixtures: one literal of each kind, overridden per test. The defaults
 * describe a plain, successful `GET /` from 127.0.0.1 to `http://127.0.0.1:9001` (site 1) with no
 * headers, no bodies and zero latency; tests override what they assert on.
 * @module
 */

import type { ExchangeRecord } from "../../lib/shared/exchange_record.ts";

/** A proxied request record as lib/proxy.ts builds it, with `overrides` applied. */
export function requestRecord(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return {
    kind: "request",
    endpoint: "http://127.0.0.1:9001",
    site: 1,
    method: "GET",
    path: "/",
    rawQuery: "",
    status: 200,
    start: 0,
    latencyMs: 0,
    ttfbMs: 0,
    client: "127.0.0.1",
    requestHeaders: null,
    responseHeaders: null,
    requestBodyBytes: 0,
    responseBodyBytes: 0,
    error: "",
    completed: true,
    ...overrides,
  };
}

/**
 * A health-check record as lib/health.ts builds it (no client, no request headers), with
 * `overrides` applied.
 */
export function healthRecord(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return requestRecord({
    kind: "health",
    path: "/health",
    client: "",
    ...overrides,
  });
}
