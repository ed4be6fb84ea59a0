/**
 * HTTP facts shared by the proxy paths, the upstream transports and the byte accounting, and
 * the plain-text answer sidekick gives for requests it refuses itself.
 * @module
 */

/** Statuses whose responses never carry a body (RFC 9110 §6.4.1). */
export const NULL_BODY_STATUS: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/** Methods whose requests `fetch` refuses to send with a body. */
export const BODYLESS_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);

/** A short plain-text answer of sidekick's own (a refused request), one line plus a newline. */
export function plainText(
  status: number,
  text: string,
  extra: Record<string, string> = {},
): Response {
  return new Response(text + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-content-type-options": "nosniff",
      "server": "SideKick",
      ...extra,
    },
  });
}
