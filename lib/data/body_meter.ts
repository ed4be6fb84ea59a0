/**
 * Counting the body bytes that really cross the proxy, and learning how a body ended.
 *
 * A body with a declared length passes through natively: the runtime copies it from the backend's
 * connection to the client's without it entering JavaScript, and it is counted by that length
 * when the server says the response completed. A body sidekick streams (one of unknown length,
 * or every body with `--verify-bodies`) is wrapped in a {@linkcode MeteredBody}: a pull stream
 * that passes each chunk on as it is read, adds up its length, and reports once how the body
 * ended — read to its end, failed (the backend or the client broke it off), or cancelled by the
 * reader (the server cancels the response body when the client goes away). That report is the
 * exchange's completion. A small body of unknown length that comes at once is read whole instead
 * ({@linkcode peek}): its length is then exact before the response starts, and the server writes
 * it with the head.
 *
 * @example
 * ```ts
 * import { MeteredBody } from "./body_meter.ts";
 * const upstream = await fetch("http://127.0.0.1:8080/big");
 * const metered = new MeteredBody(upstream.body!, (end) => console.log(end, metered.bytes));
 * const response = new Response(metered.stream, { headers: upstream.headers });
 * ```
 * @module
 */

import { declaredLength, NULL_BODY_STATUS } from "../shared/http_facts.ts";

/** How a metered body ended: read to its end, failed while being read, or cancelled. */
export type BodyEnd = "complete" | "failed" | "cancelled";

/**
 * A response body of unknown length that comes at once and is at most this many bytes is read
 * whole before the response starts (see {@linkcode peek}); else it streams through a
 * {@linkcode MeteredBody}.
 */
export const WHOLE_BODY_LIMIT = 16 * 1024;

/**
 * On an HTTPS listener without `TCP_NODELAY`, declared bodies up to this many bytes are read
 * whole so that the server writes them in one piece with the head: a body written after its
 * head there waits ~40 ms for the client's delayed ACK (Nagle), and most small answers (S3
 * errors, health, listings of a few keys) fit.
 */
export const HEAD_BODY_LIMIT = 512;

/** A body passed on chunk by chunk, its bytes counted, its end reported once. */
export class MeteredBody {
  /** Bytes passed on so far. */
  bytes = 0;
  /** The stream to hand on in place of the source. */
  readonly stream: ReadableStream<Uint8Array>;

  /**
   * Wraps `source` (a stream, or a reader already taken from one). `onEnd` is called once:
   * `complete` after the last chunk was passed on, `failed` with the error the source threw,
   * `cancelled` with the reason the reader gave. `ahead` is what was already read from the
   * reader: chunks passed on first, then the read still pending, if any.
   */
  constructor(
    source: ReadableStream<Uint8Array> | ChunkReader,
    onEnd?: (end: BodyEnd, reason?: unknown) => void,
    ahead?: Peeked,
  ) {
    const reader = source instanceof ReadableStream ? chunkReader(source) : source;
    const chunks = ahead?.chunks ?? [];
    let pending = ahead?.pending;
    let ended = false;
    const end = (how: BodyEnd, reason?: unknown) => {
      if (ended) return;
      ended = true;
      onEnd?.(how, reason);
    };
    this.stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const first = chunks.shift();
        if (first !== undefined) {
          this.bytes += first.byteLength;
          controller.enqueue(first);
          return;
        }
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          const read = pending ?? reader.read();
          pending = undefined;
          chunk = await read;
        } catch (e) {
          end("failed", e);
          controller.error(e);
          return;
        }
        if (chunk.done) {
          controller.close();
          end("complete");
          return;
        }
        this.bytes += chunk.value.byteLength;
        controller.enqueue(chunk.value);
      },
      cancel: (reason) => {
        end("cancelled", reason);
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }
}

/** Reads chunks from a body: `read` gives the next one, `cancel` stops the source. */
export interface ChunkReader {
  /** The next chunk, or done. */
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  /** Cancels the source with `reason`. */
  cancel(reason?: unknown): Promise<void>;
}

/** Bytes a read of {@linkcode chunkReader} asks for at most (what a stream gives by default). */
const CHUNK_BYTES = 64 * 1024;

/**
 * A {@linkcode ChunkReader} over `stream`: from a byte stream (fetch bodies) each read fills a
 * buffer of at most `first` bytes for the first read, {@linkcode CHUNK_BYTES} after a read that
 * filled most of its buffer; else a default reader. A read that used at most half of its buffer
 * hands on a copy of its bytes and keeps the buffer for the next read: a chunked answer of a few
 * bytes then costs one small buffer, not a fresh one for the read that sees its end (a default
 * reader allocates 64 KiB for every read, even of a 2-byte body).
 */
export function chunkReader(stream: ReadableStream<Uint8Array>, first = CHUNK_BYTES): ChunkReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    const reader = stream.getReader();
    return { read: () => reader.read(), cancel: (reason) => reader.cancel(reason) };
  }
  let size = first;
  let spare: ArrayBuffer | undefined;
  return {
    read: async () => {
      const view = new Uint8Array(spare ?? new ArrayBuffer(size));
      spare = undefined;
      const r = await byob!.read(view);
      if (r.done) return { done: true, value: undefined };
      const value = r.value!;
      if (value.byteLength * 2 <= value.buffer.byteLength) {
        spare = value.buffer as ArrayBuffer;
        return { done: false, value: value.slice() };
      }
      size = CHUNK_BYTES;
      return { done: false, value };
    },
    cancel: (reason) => byob!.cancel(reason),
  };
}

/** The start of a body of unknown length, read while it came at once (see {@linkcode peek}). */
export interface Peeked {
  /** The chunks read. */
  chunks: Uint8Array[];
  /** The read that did not complete in time, if any (its rejection is marked handled). */
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>;
}

/**
 * How long a body of unknown length may take to arrive whole before the response starts
 * streaming it instead, ms: a small chunked answer is usually in the client's buffer already.
 */
export const PEEK_WAIT_MS = 20;

/**
 * The end of the peeks of one data plane: a promise that resolves between `PEEK_WAIT_MS` and
 * twice that from now, shared by every peek that starts in the same tick. One interval timer
 * runs while some peek waits, instead of a timer per chunked answer (which cost several µs each).
 */
export class PeekClock {
  #next = Promise.withResolvers<"late">();
  #after = Promise.withResolvers<"late">();
  #timer: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  readonly #tickMs: number;

  /** A clock ticking every `tickMs` (default {@linkcode PEEK_WAIT_MS}) while it is used. */
  constructor(tickMs = PEEK_WAIT_MS) {
    this.#tickMs = tickMs;
  }

  /** Resolves ("late") at the second tick from now: one to two ticks away. */
  late(): Promise<"late"> {
    this.#idleTicks = 0;
    this.#timer ??= setInterval(() => this.#tick(), this.#tickMs);
    return this.#after.promise;
  }

  #tick(): void {
    this.#next.resolve("late");
    this.#next = this.#after;
    this.#after = Promise.withResolvers<"late">();
    // Two ticks without a new waiter: nobody can still be waiting on a pending promise.
    if (++this.#idleTicks > 2) this.stop();
  }

  /** Stops the timer (it starts again with the next peek). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Reads `reader` while its chunks come at once (within {@linkcode PEEK_WAIT_MS}, or until
 * `clock` says late) and total at most `limit` bytes: the whole body when it ends in that time
 * (`done`), or what was read so far to be streamed on; or the error that broke it off.
 */
export async function peek(
  reader: ChunkReader,
  limit: number,
  clock?: PeekClock,
): Promise<(Peeked & { done: boolean; bytes: number }) | { error: unknown }> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = clock?.late() ?? new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), PEEK_WAIT_MS);
  });
  try {
    for (;;) {
      const read = reader.read();
      const r = await Promise.race([read, late]);
      if (r === "late") {
        read.catch(() => {}); // awaited later by the metered stream
        return { chunks, pending: read, done: false, bytes };
      }
      if (r.done) return { chunks, done: true, bytes };
      chunks.push(r.value);
      bytes += r.value.byteLength;
      if (bytes > limit) return { chunks, done: false, bytes };
    }
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

/** The chunks as one byte array (the chunk itself when there is one). */
function concat(chunks: readonly Uint8Array[], bytes: number): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1) return chunks[0] as Uint8Array<ArrayBuffer>;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The whole body of `upstream` as bytes, or the error that broke it off. The read is bounded by
 * the declared length, which the HTTP client enforces while framing the message.
 */
export async function readWhole(
  upstream: Response,
): Promise<{ ok: true; bytes: Uint8Array<ArrayBuffer> } | { ok: false; error: unknown }> {
  try {
    return { ok: true, bytes: await upstream.bytes() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A stream that fails at once with `error`: a response that breaks off right after its head. */
export function failedStream(error: unknown): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({ start: (controller) => controller.error(error) });
}

/** How a relayed response body ended, for the exchange record. */
export interface BodyOutcome {
  /** Body bytes handed to the server for the client. */
  bytes: number;
  /** Whether the body was delivered in full (or there was none). */
  completed: boolean;
  /** How it broke off, with the error or the cancel reason; absent when completed. */
  broken?: { how: "failed" | "cancelled"; reason: unknown };
}

/** What {@linkcode relayResponse} needs besides the upstream response. */
export interface RelayOptions {
  /** The request method (`HEAD` answers send no body). */
  method: string;
  /** The server's view of the exchange: its `completed` is used for a native pass-through only. */
  info: { readonly completed: Promise<void> };
  /** Stream every body through a {@linkcode MeteredBody}, never natively (`--verify-bodies`). */
  verify?: boolean;
  /**
   * Declared bodies up to this many bytes are read whole, to leave with the head (see
   * {@linkcode HEAD_BODY_LIMIT}; 0 or absent: none).
   */
  wholeUpTo?: number;
  /** The data plane's clock for peeks at bodies of unknown length (absent: a timer per peek). */
  clock?: PeekClock;
  /** Called once, when the body has ended (before the response is returned, if it can). */
  onEnd(outcome: BodyOutcome): void;
}

/**
 * The response to hand to the server for `upstream`, with `init` (status, headers), and one
 * report of how its body ended:
 * - no body (`HEAD`, 204, 304, the other bodyless statuses) or a declared length of 0: 0 bytes,
 *   at once;
 * - a declared length up to `wholeUpTo`: read whole, exact, at once; a body that fails while read
 *   is reported broken, and the response breaks off right after its head;
 * - a declared length, unless `verify`: passed through natively (the runtime moves the bytes, no
 *   chunk enters this isolate), reported with its declared length when the server says the
 *   response completed, or cancelled when it says it did not. Deno 2.9.6's HTTP/1.1 server says
 *   "completed" even when the body broke off, so a break is not seen on this path there (its
 *   HTTP/2 server does say it);
 * - unknown length: read whole when it all comes at once and is small (see {@linkcode peek}),
 *   reported at once; else a {@linkcode MeteredBody} that starts with what was read;
 * - else (`verify`): a {@linkcode MeteredBody}, reported when it ends.
 */
export function relayResponse(
  upstream: Response,
  init: ResponseInit,
  options: RelayOptions,
): Response | Promise<Response> {
  const source = upstream.body;
  if (NULL_BODY_STATUS.has(upstream.status)) return respondEmpty(source, init, options);
  if (source === null || options.method === "HEAD") {
    return respond(source, init, options, { bytes: 0, completed: true });
  }
  // The list the proxy built from the upstream headers, when it is one: no Headers lookup.
  const list = init.headers;
  const declared = declaredLength(
    Array.isArray(list) ? list as [string, string][] : upstream.headers,
  );
  // Declared empty (what MinIO answers an upload with): nothing to read or to pass.
  if (declared === 0) return respondEmpty(source, init, options);
  if (declared !== undefined && declared <= (options.wholeUpTo ?? 0)) {
    return relayWhole(upstream, init, options);
  }
  if (declared === undefined || options.verify) {
    return relayStreamed(source, declared, init, options);
  }
  // Passed through natively: the common case, without a promise of its own.
  const response = respond(source, init, options);
  options.info.completed.then(
    () => options.onEnd({ bytes: declared, completed: true }),
    (reason) => options.onEnd({ bytes: 0, completed: false, broken: { how: "cancelled", reason } }),
  );
  return response;
}

/**
 * The response for `body`, then `now` reported if given (else the caller reports later). A
 * status the Response constructor refuses (600 and up) is reported as not completed and thrown:
 * the server answers 500 instead.
 */
function respond(
  body: BodyInit | null,
  init: ResponseInit,
  options: RelayOptions,
  now?: BodyOutcome,
): Response {
  let response: Response;
  try {
    response = new Response(body, init);
  } catch (e) {
    options.onEnd({ bytes: 0, completed: false });
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    throw e;
  }
  if (now) options.onEnd(now);
  return response;
}

/**
 * The response without a body for an answer that has none, reported at once: the server writes
 * the head alone. `source` is cancelled (a finished body: its connection stays pooled).
 */
function respondEmpty(
  source: ReadableStream<Uint8Array> | null,
  init: ResponseInit,
  options: RelayOptions,
): Response {
  source?.cancel().catch(() => {});
  return respond(null, init, options, { bytes: 0, completed: true });
}

/** The response for a body that failed while read: it breaks off right after its head. */
function respondBroken(error: unknown, init: ResponseInit, options: RelayOptions): Response {
  return respond(failedStream(error), init, options, {
    bytes: 0,
    completed: false,
    broken: { how: "failed", reason: error },
  });
}

/** {@linkcode relayResponse} for a declared body read whole, to leave with the head. */
async function relayWhole(
  upstream: Response,
  init: ResponseInit,
  options: RelayOptions,
): Promise<Response> {
  const whole = await readWhole(upstream);
  return whole.ok
    ? respond(whole.bytes, init, options, { bytes: whole.bytes.byteLength, completed: true })
    : respondBroken(whole.error, init, options);
}

/** {@linkcode relayResponse} for a body sidekick streams: peeked (unknown length), or metered. */
async function relayStreamed(
  source: ReadableStream<Uint8Array>,
  declared: number | undefined,
  init: ResponseInit,
  options: RelayOptions,
): Promise<Response> {
  // Unknown length (or verified): whole if it comes at once and is small, else metered.
  // A small first read: a chunked answer is mostly a few bytes.
  const reader = chunkReader(source, declared === undefined ? 4096 : CHUNK_BYTES);
  const peeked = declared === undefined
    ? await peek(reader, WHOLE_BODY_LIMIT, options.clock)
    : undefined;
  if (peeked && "error" in peeked) return respondBroken(peeked.error, init, options);
  if (peeked?.done) {
    return respond(concat(peeked.chunks, peeked.bytes), init, options, {
      bytes: peeked.bytes,
      completed: true,
    });
  }
  let ended = false; // the constructor's refusal and the body's end are one report
  const report = (outcome: BodyOutcome) => {
    if (ended) return;
    ended = true;
    options.onEnd(outcome);
  };
  const metered = new MeteredBody(reader, (how, reason) => {
    report(
      how === "complete"
        ? { bytes: metered.bytes, completed: true }
        : { bytes: metered.bytes, completed: false, broken: { how, reason } },
    );
  }, peeked);
  return respond(metered.stream, init, { ...options, onEnd: report });
}
