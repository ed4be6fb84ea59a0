/**
 * Per-endpoint counters fed by the exchange records: proxied calls, failures, bytes in and out,
 * latency extremes and a latency histogram, and health-check outcomes. One {@linkcode Stats} per
 * sidekick, keyed by endpoint string, so the counts of an endpoint survive a SIGHUP reload that
 * keeps it. Counters are plain numbers; {@linkcode Stats.observe} does a few additions per record.
 *
 * @example
 * ```ts
 * import { Stats } from "./stats.ts";
 * const stats = new Stats();
 * // stats.observe(record) for every ExchangeRecord; then:
 * console.log(stats.get("http://127.0.0.1:9000")?.requests ?? 0);
 * ```
 * @module
 */

import type { ExchangeRecord, FailedAttempt, HeaderList } from "./exchange_record.ts";
import { BODYLESS_METHODS, statusText } from "./http_facts.ts";

/** Upper bounds (seconds) of the request duration histogram: Prometheus' default buckets. */
export const DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The counters of one endpoint. */
export class EndpointStats {
  /** Proxied requests (every finished exchange, delivered in full or not). */
  requests = 0;
  /**
   * Proxied requests answered with a status of 400 or more (sidekick's own 502s included), and
   * responses whose body the backend broke off.
   */
  errors = 0;
  /** Σ rx of proxied requests (see {@linkcode exchangeSizes}). */
  rxBytes = 0;
  /** Σ tx of proxied requests (see {@linkcode exchangeSizes}). */
  txBytes = 0;
  /** Smallest proxied-request latency, ms (0 until the first request). */
  minLatencyMs = 0;
  /** Largest proxied-request latency, ms (0 until the first request). */
  maxLatencyMs = 0;
  /** Σ proxied-request latency, seconds. */
  latencySumSeconds = 0;
  /**
   * Per-bucket (not cumulative) request counts: index i counts latencies in
   * (`DURATION_BUCKETS[i-1]`, `DURATION_BUCKETS[i]`], the last index those above every bound.
   */
  readonly latencyBuckets: number[] = new Array(DURATION_BUCKETS.length + 1).fill(0);
  /** Health checks answered 200. */
  healthSuccesses = 0;
  /** Health checks that failed: another status, a transport error or a timeout. */
  healthFailures = 0;
  /** Attempts on this endpoint that failed before anything was sent, retried elsewhere. */
  retriesConnect = 0;
  /** Attempts on this endpoint whose connection closed before a response, retried elsewhere. */
  retriesClosed = 0;
  /** Failed attempts on this endpoint not retried because the retry budget was spent. */
  retryBudgetExhausted = 0;
  /** Attempts on this endpoint with no response headers in time, retried elsewhere. */
  retriesTimeout = 0;
  /** Outlier ejections of this endpoint (`--eject-after`). */
  ejections = 0;
  /** Requests hedged because this endpoint had not answered in time, the hedge answering first. */
  hedgesWon = 0;
  /** Requests hedged because this endpoint had not answered in time, this endpoint answering first. */
  hedgesLost = 0;
  /** Responses whose body the backend broke off (a reset, fewer bytes than declared). */
  abortedByBackend = 0;
  /** Responses broken off because the client went away. */
  abortedByClient = 0;
  /** Responses cut because a stop's drain deadline passed. */
  abortedByShutdown = 0;
}

/** Lengths of `"Name: value"` pairs plus the body, as Go's sidekick counts rx and tx. */
export interface ExchangeSizes {
  /** Request body bytes (when known) plus Σ len(name)+len(value) of the request headers. */
  rx: number;
  /** Response body bytes (when known) plus the `"<code> <text>\n"` line and `"Name: v\n"` lines. */
  tx: number;
}

/**
 * The rx/tx of one record as the Go sidekick counts them: for a proxied request, rx is the request body
 * bytes (as the record counts them: chunked uploads by their real length) plus, for each request header (`Host`
 * included, `Content-Length` — or `Transfer-Encoding` for bodies of unknown length — synthesised
 * when absent), the length of its name and value; tx is the response body bytes plus the length
 * of a `"<code> <text>\n"` line and one `"<Name>: <first value>\n"` line per response header
(the body bytes are those really passed on: 0 for `HEAD` and 204/304, what got through when
the body broke off).
 * Health checks count 0 both ways, as in the Go sidekick.
 */
export function exchangeSizes(r: ExchangeRecord): ExchangeSizes {
  return r.sizes ??= countSizes(r);
}

function countSizes(r: ExchangeRecord): ExchangeSizes {
  if (r.kind === "health") return { rx: 0, tx: 0 };
  let rx = r.requestBodyBytes;
  const req = r.requestHeaders;
  if (req) {
    let declared = false;
    const list = asList(req);
    for (let i = 0; i < list.length; i++) {
      const h = list[i];
      rx += h[0].length + h[1].length;
      if (h[0] === "content-length") declared = true;
    }
    if (!declared) {
      rx += BODYLESS_METHODS.has(r.method)
        ? "content-length".length + 1 // "0"
        : "transfer-encoding".length + "chunked".length;
    }
  }
  let tx = r.responseBodyBytes;
  const status = r.status;
  if (status > 0) {
    tx += String(status).length + 2 + statusText(status).length; // "200 OK\n"
    const res = r.responseHeaders;
    if (res) {
      let cookieSeen = false;
      const list = asList(res);
      for (let i = 0; i < list.length; i++) {
        const h = list[i];
        if (h[0] === "set-cookie") {
          if (cookieSeen) continue; // Go counts the first value of each header only
          cookieSeen = true;
        }
        tx += h[0].length + h[1].length + 3; // "Name: value\n"
      }
    }
  }
  return { rx, tx };
}

/** A header list as an array: the proxy's records carry arrays already (no copy then). */
function asList(headers: HeaderList): readonly (readonly [string, string])[] {
  return Array.isArray(headers) ? headers : [...headers];
}

/** Per slot and stripe: the fields of {@linkcode EndpointStats}, then the latency buckets. */
const F_REQUESTS = 0;
const F_ERRORS = 1;
const F_RX = 2;
const F_TX = 3;
const F_MIN = 4;
const F_MAX = 5;
const F_SUM = 6;
const F_HEALTH_OK = 7;
const F_HEALTH_FAIL = 8;
const F_RETRY_CONNECT = 9;
const F_RETRY_CLOSED = 10;
const F_RETRY_DENIED = 11;
const F_RETRY_TIMEOUT = 12;
const F_EJECTIONS = 13;
const F_HEDGE_WON = 14;
const F_HEDGE_LOST = 15;
const F_ABORT_BACKEND = 16;
const F_ABORT_CLIENT = 17;
const F_ABORT_SHUTDOWN = 18;
const F_BUCKETS = 19;
const FIELDS = F_BUCKETS + DURATION_BUCKETS.length + 1;

/** The most endpoints whose counters one sidekick holds at once (sites plus a reload's new ones). */
export const MAX_ENDPOINT_SLOTS = 32_768;

/**
 * The memory behind a {@linkcode Stats}, shareable with worker isolates: two growable
 * `SharedArrayBuffer`s (counters as float64 in per-writer stripes, in-flight counts as int32).
 */
export interface StatsMemory {
  /** `slot × stripes × fields` float64 counters; grows by whole slots. */
  readonly counters: SharedArrayBuffer;
  /** One int32 in-flight count per slot, updated with `Atomics`. */
  readonly inflight: SharedArrayBuffer;
  /** How many isolates write counters: each writes only its own stripe. */
  readonly stripes: number;
}

/**
 * The counters of every endpoint of one sidekick, in shared memory so that several isolates can
 * count into them and any isolate can read the totals.
 *
 * Each endpoint owns a slot. Each writing isolate owns a stripe of every slot and does plain
 * float64 adds into it — no atomics, no contention; readers sum the stripes. The isolate that
 * created the memory (the control plane) assigns slots; the others learn the endpoint → slot map
 * from it ({@linkcode Stats.adopt}). In-flight counts are int32 cells shared by every writer
 * (`Atomics.add`), so that `least` balancing sees the requests of every isolate.
 */
export class Stats {
  readonly #memory: StatsMemory;
  readonly #stripe: number;
  readonly #owner: boolean;
  readonly #counters: Float64Array;
  readonly #inflight: Int32Array;
  #slots = new Map<string, number>();
  /** Slots given up by {@linkcode Stats.retain}, reused oldest first. */
  readonly #free: number[] = [];
  #used = 0;

  /**
   * Counters in new memory with room for `stripes` writers (this instance writes stripe 0), or a
   * view on another isolate's `memory` writing `stripe`.
   */
  constructor(options: { stripes?: number } | { memory: StatsMemory; stripe: number } = {}) {
    if ("memory" in options) {
      this.#memory = options.memory;
      this.#stripe = options.stripe;
      this.#owner = false;
    } else {
      const stripes = options.stripes ?? 1;
      this.#memory = {
        counters: new SharedArrayBuffer(0, {
          maxByteLength: MAX_ENDPOINT_SLOTS * stripes * FIELDS * 8,
        }),
        inflight: new SharedArrayBuffer(0, { maxByteLength: MAX_ENDPOINT_SLOTS * 4 }),
        stripes,
      };
      this.#stripe = 0;
      this.#owner = true;
    }
    // Length-tracking views: they see the buffers grow without being rebuilt.
    this.#counters = new Float64Array(this.#memory.counters);
    this.#inflight = new Int32Array(this.#memory.inflight);
  }

  /** The shared memory, to hand to worker isolates. */
  get memory(): StatsMemory {
    return this.#memory;
  }

  /** The endpoint → slot map, to hand to worker isolates. */
  get slots(): ReadonlyMap<string, number> {
    return this.#slots;
  }

  /** Takes the endpoint → slot map of the owning isolate (worker isolates). */
  adopt(slots: ReadonlyMap<string, number>): void {
    this.#slots = new Map(slots);
  }

  /**
   * The slot of `endpoint`; the owner assigns a zeroed one if needed. Undefined only in a
   * non-owning view that was not told of the endpoint.
   */
  slot(endpoint: string): number | undefined {
    let slot = this.#slots.get(endpoint);
    if (slot !== undefined || !this.#owner) return slot;
    if (this.#free.length > 0) slot = this.#free.shift()!;
    else {
      if (this.#used >= MAX_ENDPOINT_SLOTS) {
        throw new RangeError(`more than ${MAX_ENDPOINT_SLOTS} endpoints`);
      }
      slot = this.#used++;
      const stride = this.#memory.stripes * FIELDS * 8;
      this.#memory.counters.grow(this.#used * stride);
      this.#memory.inflight.grow(this.#used * 4);
    }
    const base = slot * this.#memory.stripes * FIELDS;
    this.#counters.fill(0, base, base + this.#memory.stripes * FIELDS);
    Atomics.store(this.#inflight, slot, 0);
    this.#slots.set(endpoint, slot);
    return slot;
  }

  /** The totals of `endpoint` over every stripe, or undefined if it has no slot. */
  get(endpoint: string): EndpointStats | undefined {
    const slot = this.#slots.get(endpoint);
    if (slot === undefined) return undefined;
    const c = this.#counters;
    const out = new EndpointStats();
    for (let stripe = 0; stripe < this.#memory.stripes; stripe++) {
      const at = (slot * this.#memory.stripes + stripe) * FIELDS;
      const n = c[at + F_REQUESTS];
      if (n > 0) {
        if (out.requests === 0 || c[at + F_MIN] < out.minLatencyMs) {
          out.minLatencyMs = c[at + F_MIN];
        }
        out.maxLatencyMs = Math.max(out.maxLatencyMs, c[at + F_MAX]);
      }
      out.requests += n;
      out.errors += c[at + F_ERRORS];
      out.rxBytes += c[at + F_RX];
      out.txBytes += c[at + F_TX];
      out.latencySumSeconds += c[at + F_SUM];
      out.healthSuccesses += c[at + F_HEALTH_OK];
      out.healthFailures += c[at + F_HEALTH_FAIL];
      out.retriesConnect += c[at + F_RETRY_CONNECT];
      out.retriesClosed += c[at + F_RETRY_CLOSED];
      out.retryBudgetExhausted += c[at + F_RETRY_DENIED];
      out.retriesTimeout += c[at + F_RETRY_TIMEOUT];
      out.ejections += c[at + F_EJECTIONS];
      out.hedgesWon += c[at + F_HEDGE_WON];
      out.hedgesLost += c[at + F_HEDGE_LOST];
      out.abortedByBackend += c[at + F_ABORT_BACKEND];
      out.abortedByClient += c[at + F_ABORT_CLIENT];
      out.abortedByShutdown += c[at + F_ABORT_SHUTDOWN];
      for (let i = 0; i < out.latencyBuckets.length; i++) {
        out.latencyBuckets[i] += c[at + F_BUCKETS + i];
      }
    }
    return out;
  }

  /** The endpoints that have counters. */
  endpoints(): string[] {
    return [...this.#slots.keys()];
  }

  /** Requests in flight to `endpoint` across every isolate. */
  inflightOf(slot: number): number {
    return Atomics.load(this.#inflight, slot);
  }

  /** Counts a request to the endpoint of `slot` as started (`+1`) or finished (`-1`). */
  addInflight(slot: number, delta: number): void {
    Atomics.add(this.#inflight, slot, delta);
  }

  /** Counts one finished exchange into this isolate's stripe. */
  observe(r: ExchangeRecord): void {
    const slot = this.slot(r.endpoint);
    if (slot === undefined) return;
    const c = this.#counters;
    const at = (slot * this.#memory.stripes + this.#stripe) * FIELDS;
    if (r.kind === "health") {
      if (r.status === 200) c[at + F_HEALTH_OK]++;
      else c[at + F_HEALTH_FAIL]++;
      return;
    }
    const { rx, tx } = exchangeSizes(r);
    const ms = r.latencyMs;
    if (c[at + F_REQUESTS]++ === 0 || ms < c[at + F_MIN]) c[at + F_MIN] = ms;
    if (ms > c[at + F_MAX]) c[at + F_MAX] = ms;
    // A request the client broke is no failure of the backend's; a body the backend broke is.
    const aborted = r.aborted;
    if ((r.status >= 400 && !r.clientFault) || aborted === "backend") c[at + F_ERRORS]++;
    if (aborted !== undefined) {
      c[
        at +
        (aborted === "backend"
          ? F_ABORT_BACKEND
          : aborted === "client"
          ? F_ABORT_CLIENT
          : F_ABORT_SHUTDOWN)
      ]++;
    }
    if (r.retryDenied) c[at + F_RETRY_DENIED]++;
    if (r.retried) this.#countRetries(r.retried);
    if (r.hedge) this.#count(r.hedge.primary, r.hedge.won ? F_HEDGE_WON : F_HEDGE_LOST);
    c[at + F_RX] += rx;
    c[at + F_TX] += tx;
    const seconds = ms / 1000;
    c[at + F_SUM] += seconds;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
    c[at + F_BUCKETS + i]++;
  }

  #countRetries(retried: readonly FailedAttempt[]): void {
    for (const f of retried) {
      this.#count(
        f.endpoint,
        f.reason === "connect"
          ? F_RETRY_CONNECT
          : f.reason === "timeout"
          ? F_RETRY_TIMEOUT
          : F_RETRY_CLOSED,
      );
    }
  }

  /** Adds one to `field` of `endpoint` in this isolate's stripe. */
  #count(endpoint: string, field: number): void {
    const slot = this.slot(endpoint);
    if (slot === undefined) return;
    this.#counters[(slot * this.#memory.stripes + this.#stripe) * FIELDS + field]++;
  }

  /** Counts an outlier ejection of `endpoint` (`--eject-after`). */
  countEjection(endpoint: string): void {
    this.#count(endpoint, F_EJECTIONS);
  }

  /**
   * Forgets the endpoints not in `keep` (called after a reload that removed some). Their slots
   * are reused last, so a request of the old sites still finishing is unlikely to count into a
   * new endpoint.
   */
  retain(keep: Iterable<string>): void {
    const wanted = new Set(keep);
    for (const [endpoint, slot] of this.#slots) {
      if (wanted.has(endpoint)) continue;
      this.#slots.delete(endpoint);
      this.#free.push(slot);
    }
  }
}
