/**
 * One upstream exchange up to its response headers, bounded in time: `--response-timeout`
 * abandons an attempt that has sent its request and has no response headers after that long, and
 * `--hedge-after` sends a bodyless GET or HEAD that has no response headers after that long to a
 * second backend too, the first response winning and the other attempt cancelled.
 *
 * Without hedging (the default), no timer exists per exchange: the attempt joins a
 * {@linkcode Deadlines} set while it waits for headers, which one coarse timer per data plane
 * sweeps (it runs only while some attempt waits). With hedging, one timer per exchange exists
 * while it waits for headers, armed for the nearest of the hedge moment and the attempts'
 * deadlines. With neither bound set, the exchange is a bare `send`.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import { CLIENT_GONE, HEDGE_LOST, RESPONSE_TIMEOUT } from "../upstream/fetch_errors.ts";
import type { HedgeNote } from "../shared/exchange_record.ts";
import { type Link, LinkedList } from "../shared/linked_list.ts";

export { HEDGE_LOST, RESPONSE_TIMEOUT };
export type { HedgeNote };

/** One attempt: the backend and the controller that cancels its fetch (and, later, its body). */
export interface Attempt {
  /** Where the attempt went (counted in flight with `begin()` while it runs). */
  backend: Backend;
  /** Aborts this attempt only. */
  controller: AbortController;
}

/** What an exchange needs from the proxy. */
export interface ExchangePlan {
  /** Sends the request to `backend`; rejects with the abort reason when `signal` aborts. */
  send(backend: Backend, signal: AbortSignal): Promise<Response>;
  /** `--response-timeout`, ms (0: no bound). */
  responseTimeoutMs: number;
  /** `--hedge-after`, ms, when this request may be hedged (0: never). */
  hedgeAfterMs: number;
  /**
   * The backend for a hedge of an attempt on `primary`, with its cost already taken from the retry
   * budget; undefined when there is none or the budget is spent.
   */
  pickHedge?(primary: Backend): Backend | undefined;
  /** The data plane's sweeper of response deadlines (absent: a timer of the exchange's own). */
  deadlines?: Deadlines;
  /** Follows the request's own cancellation (client gone, shutdown) until a winner is known. */
  parent: AbortSignal;
  /**
   * The client's request: when it is cancelled (the client went away), the attempt is aborted
   * with {@linkcode CLIENT_GONE}. Followed only once the attempt has waited for its headers a
   * while (one sweep of {@linkcode Deadlines}), or at once without a sweeper or when hedging.
   */
  client?: ClientRequest;
  /**
   * An attempt that failed while another still runs (`error` is {@linkcode RESPONSE_TIMEOUT} for
   * one that timed out). The exchange has already ended its in-flight count.
   */
  onFailed?(attempt: Attempt, error: unknown, elapsedMs: number): void;
  /** An attempt cancelled because another answered first, after `elapsedMs`. */
  onLost?(attempt: Attempt, elapsedMs: number): void;
}

/** What an exchange needs of the client's request: its cancellation, read only when needed. */
export interface ClientRequest {
  /** Aborts when the client goes away before the response is complete. */
  readonly signal: AbortSignal;
}

/** Aborts `controller` with {@linkcode CLIENT_GONE} when `client` goes away. */
export function followClient(client: ClientRequest, controller: AbortController): void {
  const signal = client.signal;
  if (signal.aborted) controller.abort(CLIENT_GONE);
  else signal.addEventListener("abort", () => controller.abort(CLIENT_GONE), { once: true });
}

/** How an exchange ended: a response, or the failure of its last running attempt. */
export type Outcome =
  | { ok: true; winner: Attempt; response: Response; hedge?: HedgeNote }
  | { ok: false; failed: Attempt; error: unknown; hedge?: HedgeNote };

interface Running {
  attempt: Attempt;
  started: number;
  deadline: number;
  timedOut: boolean;
}

/**
 * Runs `primary` (already counted in flight by the caller) and, if the plan says so, one hedge.
 * Every attempt except the one returned has been ended (`backend.end()`) and, if still running,
 * aborted; the returned attempt stays counted for the caller to end. `since`: when the caller
 * started the attempt (`performance.now()` ms, default now), where its response deadline counts
 * from when a {@linkcode Deadlines} sweeper keeps it.
 */
export function exchange(plan: ExchangePlan, primary: Attempt, since?: number): Promise<Outcome> {
  const timeoutMs = plan.responseTimeoutMs;
  let hedgeAt = plan.hedgeAfterMs > 0 && plan.pickHedge ? plan.hedgeAfterMs : 0;
  const client = plan.client;
  if (hedgeAt <= 0 && (timeoutMs <= 0 || plan.deadlines)) {
    const deadlines = plan.deadlines;
    if (deadlines === undefined || (timeoutMs <= 0 && client === undefined)) {
      if (client) followClient(client, primary.controller);
      return plan.send(primary.backend, primary.controller.signal).then(
        (response): Outcome => ({ ok: true, winner: primary, response }),
        (error): Outcome => ({ ok: false, failed: primary, error }),
      );
    }
    const watched = deadlines.watch(
      primary.controller,
      timeoutMs > 0 ? timeoutMs : Infinity,
      client,
      since,
    );
    return plan.send(primary.backend, primary.controller.signal).then(
      (response): Outcome => {
        deadlines.done(watched);
        return { ok: true, winner: primary, response };
      },
      (error): Outcome => {
        deadlines.done(watched);
        return { ok: false, failed: primary, error: watched.expired ? RESPONSE_TIMEOUT : error };
      },
    );
  }
  // A timer of its own per exchange already: the client is followed at once.
  if (client) followClient(client, primary.controller);
  return new Promise<Outcome>((resolve) => {
    const t0 = performance.now();
    if (hedgeAt > 0) hedgeAt += t0;
    const running: Running[] = [];
    let settled = false;
    let hedge: HedgeNote | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let following: (() => void) | undefined;

    const settle = (outcome: Outcome) => {
      settled = true;
      clearTimeout(timer);
      if (following) plan.parent.removeEventListener("abort", following);
      resolve(outcome);
    };
    const arm = () => {
      clearTimeout(timer);
      let next = hedgeAt > 0 ? hedgeAt : Infinity;
      for (const r of running) if (!r.timedOut && r.deadline < next) next = r.deadline;
      if (next === Infinity) return;
      timer = setTimeout(fire, Math.max(0, next - performance.now()));
    };
    const fire = () => {
      const now = performance.now();
      for (const r of running) {
        if (!r.timedOut && r.deadline <= now) {
          r.timedOut = true;
          r.attempt.controller.abort(RESPONSE_TIMEOUT);
        }
      }
      if (hedgeAt > 0 && hedgeAt <= now) {
        hedgeAt = 0;
        const alive = running.find((r) => !r.timedOut);
        const next = alive ? plan.pickHedge!(alive.attempt.backend) : undefined;
        if (alive && next) {
          next.begin();
          const controller = new AbortController();
          // Until a winner is known, the request's cancellation reaches the hedge too.
          following = () => {
            const why = plan.parent.reason;
            if (why !== RESPONSE_TIMEOUT && why !== HEDGE_LOST) controller.abort(why);
          };
          plan.parent.addEventListener("abort", following, { once: true });
          hedge = { endpoint: next.endpoint, primary: alive.attempt.backend.endpoint, won: false };
          start({ backend: next, controller });
        }
      }
      if (!settled) arm();
    };
    const start = (attempt: Attempt) => {
      const started = performance.now();
      const r: Running = {
        attempt,
        started,
        deadline: timeoutMs > 0 ? started + timeoutMs : Infinity,
        timedOut: false,
      };
      running.push(r);
      plan.send(attempt.backend, attempt.controller.signal).then(
        (response) => won(r, response),
        (error) => failed(r, error),
      );
    };
    const won = (r: Running, response: Response) => {
      if (settled) {
        response.body?.cancel().catch(() => {});
        return;
      }
      const now = performance.now();
      if (following) plan.parent.removeEventListener("abort", following);
      following = undefined;
      for (const other of running) {
        if (other === r) continue;
        other.attempt.controller.abort(HEDGE_LOST);
        other.attempt.backend.end();
        plan.onLost?.(other.attempt, now - other.started);
      }
      running.length = 0;
      if (hedge) hedge.won = r.attempt !== primary;
      settle({ ok: true, winner: r.attempt, response, hedge });
    };
    const failed = (r: Running, error: unknown) => {
      if (settled) return;
      const reason = r.timedOut ? RESPONSE_TIMEOUT : error;
      running.splice(running.indexOf(r), 1);
      if (running.length === 0) {
        settle({ ok: false, failed: r.attempt, error: reason, hedge });
        return;
      }
      r.attempt.backend.end();
      plan.onFailed?.(r.attempt, reason, performance.now() - r.started);
      arm();
    };
    start(primary);
    arm();
  });
}

/** An attempt waiting for its response headers until `deadline` (`performance.now()` ms). */
export interface Watched extends Link<Watched> {
  /** When the attempt is abandoned (`Infinity`: never). */
  readonly deadline: number;
  /** When it started waiting. */
  readonly since: number;
  /** The client to follow once the attempt has waited a tick (cleared once followed). */
  client: ClientRequest | undefined;
  /** Aborted with {@linkcode RESPONSE_TIMEOUT} at the deadline. */
  readonly controller: AbortController;
  /** Whether the deadline passed (the attempt was aborted for it). */
  expired: boolean;
}

/**
 * The response deadlines of one data plane's attempts, swept by a single timer that runs only
 * while some attempt waits: joining and leaving the set is all an exchange pays. The sweep runs
 * every `tickMs`, so an attempt is abandoned between its deadline and one tick later.
 *
 * The sweep also starts following the client of an attempt that has waited a tick or more
 * ({@linkcode followClient}): reading `request.signal` makes the server watch that request for
 * cancellation, and paid by every request that was several percent of the proxy's CPU for small
 * answers, while the client leaving matters only to an exchange still waiting for its backend
 * (once the response has started, the server cancels its body when the client goes).
 */
export class Deadlines {
  // A linked list, not a Set: see linked_list.ts for what a Set cost the GC.
  readonly #waiting = new LinkedList<Watched>();
  readonly #tickMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** A sweeper with the given granularity, ms (default 50). */
  constructor(tickMs = 50) {
    this.#tickMs = tickMs;
  }

  /** Attempts waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Watches `controller` for `timeoutMs` from `since` (`performance.now()` ms, default now); pass
   * the result to {@linkcode Deadlines.done}.
   */
  watch(
    controller: AbortController,
    timeoutMs: number,
    client?: ClientRequest,
    since: number = performance.now(),
  ): Watched {
    const w: Watched = {
      deadline: since + timeoutMs,
      since,
      client,
      controller,
      expired: false,
      prev: undefined,
      next: undefined,
      linked: false,
    };
    this.#waiting.add(w);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.#tickMs);
    }
    return w;
  }

  /** The attempt has its headers, or failed: no deadline any more. */
  done(w: Watched): void {
    this.#waiting.delete(w);
    w.client = undefined;
  }

  #sweep(): void {
    const now = performance.now();
    const lateSince = now - this.#tickMs;
    for (const w of this.#waiting.entries()) {
      if (!w.linked) continue; // done while an earlier one was aborted
      if (w.deadline > now) {
        if (w.client !== undefined && w.since <= lateSince) {
          followClient(w.client, w.controller);
          w.client = undefined;
        }
        continue;
      }
      this.#waiting.delete(w);
      w.expired = true;
      w.controller.abort(RESPONSE_TIMEOUT);
    }
    if (this.#waiting.size === 0) this.stop();
  }

  /** Stops the timer (it starts again with the next watch). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
