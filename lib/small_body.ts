/**
 * The body the proxy hands downstream for an upstream response: the bytes themselves when the
 * response declares a small `Content-Length`, the upstream stream otherwise.
 *
 * Why: `Deno.serve` leaves Nagle's algorithm on for TLS connections (it sets `TCP_NODELAY` only
 * on plain TCP ones). A streamed body goes out in its own write after the response head; the
 * kernel holds that second small segment until the client acknowledges the head, and the client
 * delays that acknowledgement by about 40 ms, so every small HTTPS response stalls that long.
 * Handed a complete byte body instead, `Deno.serve` writes head and body together when they fit
 * its write buffer, and nothing waits. A body of unknown or larger length keeps streaming:
 * nothing here ever holds more than `limit` bytes of one response.
 *
 * @example
 * ```ts
 * import { downstreamBody } from "./small_body.ts";
 * const upstream = await fetch("http://127.0.0.1:8080/");
 * const response = new Response(await downstreamBody(upstream, "GET"), {
 *   status: upstream.status,
 *   headers: upstream.headers,
 * });
 * ```
 * @module
 */

/** Largest declared `Content-Length` whose body is read whole before the response starts. */
export const SMALL_BODY_LIMIT = 64 * 1024;

/** The declared length of a response body, or undefined when absent or not one plain number. */
export function declaredLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  // A repeated header arrives joined with ", " and fails the pattern, as it should.
  if (value === null || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/**
 * The body to pass to the downstream `Response` for `upstream`: a `Uint8Array` holding the whole
 * body when it declares a `Content-Length` of at most `limit` bytes and delivers exactly that,
 * else a stream with the same bytes as `upstream.body` (null when it has none).
 *
 * Reading stops as soon as more than `limit` bytes arrive or the body ends short of its declared
 * length; the bytes read so far are then replayed ahead of the rest of the stream, so the client
 * sees what it would have seen without this function, including a failure of the upstream body
 * (the returned stream fails the same way after the bytes that did arrive). `HEAD` responses
 * are passed through untouched: their `Content-Length` describes a body that is not sent.
 */
export async function downstreamBody(
  upstream: Response,
  method: string,
  limit: number = SMALL_BODY_LIMIT,
): Promise<BodyInit | null> {
  const body = upstream.body;
  if (body === null || method === "HEAD") return body;
  const length = declaredLength(upstream.headers);
  if (length === undefined || length > limit) return body;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let failure: { error: unknown } | undefined;
  let ended = false;
  try {
    while (total <= limit) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      chunks.push(value);
      total += value.byteLength;
    }
  } catch (error) {
    failure = { error };
  }
  if (ended && total === length) {
    reader.releaseLock();
    return concat(chunks, total);
  }
  return replay(chunks, reader, ended, failure);
}

function concat(chunks: Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** The chunks already read, then the rest of `reader` (or its end, or its failure). */
function replay(
  chunks: Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ended: boolean,
  failure: { error: unknown } | undefined,
): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next < chunks.length) {
        controller.enqueue(chunks[next]);
        chunks[next++] = EMPTY; // let the buffered bytes go once they are handed on
        return;
      }
      if (failure) return controller.error(failure.error);
      if (ended) return controller.close();
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

const EMPTY = new Uint8Array(0);
