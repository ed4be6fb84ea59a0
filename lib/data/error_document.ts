/**
 * The 502 (and 504) error document sidekick answers with when no backend can serve a request,
 * with two fixes over the Go sidekick's: `Content-Type: application/xml` and XML-escaped values.
 * @module
 */

/** Seconds a client is told to wait before retrying. */
export const RETRY_AFTER_SECONDS = 120;

/** The message used when no backend of any site is UP. */
export const ALL_OFFLINE = "all backend servers are offline";

/** Escapes the five XML special characters. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) =>
      c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === "&"
        ? "&amp;"
        : c === "'"
        ? "&apos;"
        : "&quot;",
  );
}

/** The XML body: `<Error><Code>BackendDown</Code>…` (or another code) on a single line. */
export function errorDocumentXml(message: string, resource: string, code = "BackendDown"): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code>` +
    `<Message>The remote server returned an error (${escapeXml(message)})</Message>` +
    `<Resource>${escapeXml(resource)}</Resource></Error>`;
}

/** The whole 502 response. */
export function badGateway(message: string, resource: string): Response {
  return new Response(errorDocumentXml(message, resource), {
    status: 502,
    headers: {
      "content-type": "application/xml",
      "retry-after": String(RETRY_AFTER_SECONDS),
      "server": "SideKick",
    },
  });
}

/**
 * The whole 504 response: a backend had no response headers within `--response-timeout` and the
 * request could not go elsewhere. `Retry-After` is short: the next attempt will likely be picked
 * elsewhere (the backend that hung is on its way to being ejected).
 */
export function gatewayTimeout(message: string, resource: string): Response {
  return new Response(errorDocumentXml(message, resource, "GatewayTimeout"), {
    status: 504,
    headers: {
      "content-type": "application/xml",
      "retry-after": "1",
      "server": "SideKick",
    },
  });
}
