/**
 * One backend: its endpoint, its UP/DOWN state with timestamps, and its in-flight count.
 * State changes only through {@linkcode Backend.markUp} and {@linkcode Backend.markDown}, which
 * report real transitions (never UP→UP or DOWN→DOWN) to the listener given at construction.
 *
 * The UP flag and the in-flight count are int32 cells that may live in shared memory
 * ({@linkcode BackendCells}): then every isolate serving requests sees one state. A transition is
 * a compare-and-swap on the flag, so when the control plane and a worker isolate race to mark a
 * backend DOWN, exactly one of them reports it.
 * @module
 */

/** A real UP/DOWN transition of one backend, as the `--log` lines report it. */
export interface Transition {
  /** The backend's endpoint string (display name and metric label). */
  endpoint: string;
  /** 1-based site number. */
  site: number;
  /** The new state. */
  state: "up" | "down";
  /** Why the backend went DOWN (empty for UP). */
  reason: string;
  /** For UP: how long it had been DOWN, in ms (0 if unknown). */
  downtimeMs: number;
  /** Wall-clock time of the transition, ms since the epoch. */
  at: number;
}

/** Receives every real transition. */
export type TransitionListener = (t: Transition) => void;

/** The plain-data view of a backend (copyable into a message, e.g. for worker isolates). */
export interface BackendSnapshot {
  /** The endpoint string (display name and metric label). */
  endpoint: string;
  /** 1-based site number. */
  site: number;
  /** Whether it takes traffic. */
  up: boolean;
  /** Requests in flight. */
  inflight: number;
  /** Reason of the last DOWN transition or failed check. */
  lastError: string;
  /** Start of the current (or last) downtime, ms since the epoch. */
  downSince: number;
  /** Sum of finished downtimes, ms. */
  totalDowntimeMs: number;
  /** Length of the last finished downtime, ms. */
  lastDowntimeMs: number;
}

/** Where a backend's shared state lives (default: private cells of its own). */
export interface BackendCells {
  /** Holds the UP flag (1 UP, 0 DOWN) at `stateIndex`. */
  readonly state: Int32Array;
  /** Index of this backend's flag in `state`. */
  readonly stateIndex: number;
  /** Holds the in-flight count at `inflightIndex` (shared by backends of one endpoint). */
  readonly inflight: Int32Array;
  /** Index of this backend's in-flight count in `inflight`. */
  readonly inflightIndex: number;
  /** Holds, at `stateIndex`, when the backend last came back UP (ms since the epoch; 0: never). */
  readonly since?: Float64Array;
}

/** One backend of one site. */
export class Backend {
  /** The endpoint as given (minus one trailing slash): display name and metric label. */
  readonly endpoint: string;
  /** 1-based site number (priority tier). */
  readonly site: number;
  /** `scheme://host[:port]` of the endpoint: where proxied requests go. */
  readonly origin: string;
  /** The full URL of the active health check. */
  readonly healthUrl: string;
  readonly #state: Int32Array;
  readonly #stateIndex: number;
  readonly #inflight: Int32Array;
  readonly #inflightIndex: number;
  readonly #since: Float64Array;
  #wasUp = false;
  #lastError = "";
  #downSince: number;
  #totalDowntimeMs = 0;
  #lastDowntimeMs = 0;
  readonly #onTransition: TransitionListener;

  /** A backend starts DOWN; its downtime counts from `now`. */
  constructor(
    endpoint: string,
    site: number,
    healthUrl: string,
    onTransition: TransitionListener,
    now: number = Date.now(),
    cells?: BackendCells,
  ) {
    this.endpoint = endpoint;
    this.site = site;
    this.origin = new URL(endpoint).origin;
    this.healthUrl = healthUrl;
    this.#onTransition = onTransition;
    this.#downSince = now;
    this.#state = cells?.state ?? new Int32Array(1);
    this.#stateIndex = cells?.stateIndex ?? 0;
    this.#inflight = cells?.inflight ?? new Int32Array(1);
    this.#inflightIndex = cells?.inflightIndex ?? 0;
    this.#since = cells?.since ?? new Float64Array(this.#stateIndex + 1);
  }

  /**
   * When the backend last came back UP after having been UP before, ms since the epoch; 0 when
   * it never did (a backend that comes UP for the first time takes its full share at once).
   */
  get upSince(): number {
    return this.#since[this.#stateIndex];
  }

  /** Whether the backend currently takes traffic. */
  get up(): boolean {
    return this.#state[this.#stateIndex] === 1;
  }

  /** Requests currently being proxied to this endpoint (whole exchange, body included). */
  get inflight(): number {
    return Atomics.load(this.#inflight, this.#inflightIndex);
  }

  /** The reason of the last DOWN transition (or failed check). */
  get lastError(): string {
    return this.#lastError;
  }

  /** Marks the backend UP; returns true if that was a real transition. */
  markUp(now: number = Date.now()): boolean {
    if (Atomics.compareExchange(this.#state, this.#stateIndex, 0, 1) !== 0) return false;
    if (this.#wasUp) this.#since[this.#stateIndex] = now;
    this.#wasUp = true;
    const downtimeMs = Math.max(0, now - this.#downSince);
    this.#lastDowntimeMs = downtimeMs;
    this.#totalDowntimeMs += downtimeMs;
    this.#onTransition({
      endpoint: this.endpoint,
      site: this.site,
      state: "up",
      reason: "",
      downtimeMs,
      at: now,
    });
    return true;
  }

  /** Marks the backend DOWN with a reason; returns true if that was a real transition. */
  markDown(reason: string, now: number = Date.now()): boolean {
    this.#lastError = reason;
    if (Atomics.compareExchange(this.#state, this.#stateIndex, 1, 0) !== 1) return false;
    this.noteDown(reason, now);
    return true;
  }

  /**
   * Records a DOWN transition that another isolate already made on the shared flag (its
   * compare-and-swap won): the bookkeeping and the report of {@linkcode Backend.markDown}.
   */
  noteDown(reason: string, now: number = Date.now()): void {
    this.#lastError = reason;
    this.#downSince = now;
    this.#onTransition({
      endpoint: this.endpoint,
      site: this.site,
      state: "down",
      reason,
      downtimeMs: 0,
      at: now,
    });
  }

  /** Counts a request as started on this backend. */
  begin(): void {
    Atomics.add(this.#inflight, this.#inflightIndex, 1);
  }

  /** Counts a request as finished (body fully sent, failed, or client gone). */
  end(): void {
    Atomics.sub(this.#inflight, this.#inflightIndex, 1);
  }

  /** Total downtime including a running one, ms. */
  totalDowntimeMs(now: number = Date.now()): number {
    return this.#totalDowntimeMs + (this.up ? 0 : now - this.#downSince);
  }

  /** The last downtime: the running one while DOWN, else the last finished one, ms. */
  lastDowntimeMs(now: number = Date.now()): number {
    return this.up ? this.#lastDowntimeMs : now - this.#downSince;
  }

  /** A plain-data copy of the state. */
  snapshot(): BackendSnapshot {
    return {
      endpoint: this.endpoint,
      site: this.site,
      up: this.up,
      inflight: this.inflight,
      lastError: this.#lastError,
      downSince: this.#downSince,
      totalDowntimeMs: this.#totalDowntimeMs,
      lastDowntimeMs: this.#lastDowntimeMs,
    };
  }
}
