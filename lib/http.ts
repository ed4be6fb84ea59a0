/**
 * HTTP facts shared by the proxy paths, the upstream transports and the byte accounting.
 * @module
 */

/** Statuses whose responses never carry a body (RFC 9110 §6.4.1). */
export const NULL_BODY_STATUS: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/** Methods whose requests `fetch` refuses to send with a body. */
export const BODYLESS_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);
