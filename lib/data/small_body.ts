/**
 * The body the proxy hands downstream for an upstream response: the bytes themselves when the
 * response declares a tiny `Content-Length`, the upstream stream otherwise.
 *
 * Why: `Deno.serve` leaves Nagle's algorithm on for TLS connections (it sets `TCP_NODELAY` only
 * on plain TCP ones). sidekick normally turns it off on its HTTPS listeners (`../tls/listener_nodelay.ts`);
 * this is the fallback where it cannot (not Linux, no FFI permission). A streamed body leaves in its own write after the response head; the
 * kernel holds that second small segment until the client acknowledges the head, and the client
 * delays that acknowledgement by about 40 ms, so every proxied HTTPS/1.1 response stalls that
 * long. Given the whole body as bytes, `Deno.serve` writes head and body in one write when both
 * fit its 512-byte response buffer, and nothing waits. A bigger byte body is written after the
 * head again, so buffering it would only cost CPU and memory: the limit stays at that buffer's
 * size, and every other body keeps streaming.
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

/**
 * Largest declared `Content-Length` whose body is read whole before the response starts: the
 * size of the buffer in which `Deno.serve` (2.9) joins an HTTP/1.1 response head and its body.
 */
export const SMALL_BODY_LIMIT = 512;

/** The declared length of a message body, or undefined when absent or not one plain number. */
export function declaredLength(headers: Headers): number | undefined {
  // A repeated header arrives joined with ", " and fails the pattern, as it should.
  const value = headers.get("content-length")?.trim();
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

/**
 * The body to pass to the downstream `Response` for `upstream` (the answer to a `method`
 * request): a `Uint8Array` with the whole body when it declares a `Content-Length` of at most
 * `limit` bytes, else `upstream.body` itself (null when there is none).
 *
 * The read is bounded by the declared length, which the HTTP client enforces while framing the
 * message. If the body fails while being read (the backend resets, the client goes away and
 * the fetch is aborted), the result is a stream that fails with the same error, so the response
 * breaks off after its head exactly as the streamed body would have. `HEAD` answers pass through
 * untouched: their `Content-Length` describes a body that is not sent.
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
  try {
    return await upstream.bytes();
  } catch (error) {
    return new ReadableStream<Uint8Array>({ start: (controller) => controller.error(error) });
  }
}
