/**
 * The 502 error document sidekick answers with when no backend can serve a request,
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

/** The XML body: `<Error><Code>BackendDown</Code>…` on a single line. */
export function errorDocumentXml(message: string, resource: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>BackendDown</Code>` +
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
