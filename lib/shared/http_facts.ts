/**
 * HTTP facts shared by the proxy paths, the upstream transports and the byte accounting: statuses
 * without a body, methods without one, Go's status reason phrases, and the plain-text answer
 * sidekick gives for requests it refuses itself.
 * @module
 */

import { type HeaderList, headerValue } from "./exchange_record.ts";

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

/** Go's `http.StatusText` table (Go 1.24 wording). */
const STATUS_TEXT: ReadonlyMap<number, string> = new Map([
  [100, "Continue"],
  [101, "Switching Protocols"],
  [102, "Processing"],
  [103, "Early Hints"],
  [200, "OK"],
  [201, "Created"],
  [202, "Accepted"],
  [203, "Non-Authoritative Information"],
  [204, "No Content"],
  [205, "Reset Content"],
  [206, "Partial Content"],
  [207, "Multi-Status"],
  [208, "Already Reported"],
  [226, "IM Used"],
  [300, "Multiple Choices"],
  [301, "Moved Permanently"],
  [302, "Found"],
  [303, "See Other"],
  [304, "Not Modified"],
  [305, "Use Proxy"],
  [307, "Temporary Redirect"],
  [308, "Permanent Redirect"],
  [400, "Bad Request"],
  [401, "Unauthorized"],
  [402, "Payment Required"],
  [403, "Forbidden"],
  [404, "Not Found"],
  [405, "Method Not Allowed"],
  [406, "Not Acceptable"],
  [407, "Proxy Authentication Required"],
  [408, "Request Timeout"],
  [409, "Conflict"],
  [410, "Gone"],
  [411, "Length Required"],
  [412, "Precondition Failed"],
  [413, "Request Entity Too Large"],
  [414, "Request URI Too Long"],
  [415, "Unsupported Media Type"],
  [416, "Requested Range Not Satisfiable"],
  [417, "Expectation Failed"],
  [418, "I'm a teapot"],
  [421, "Misdirected Request"],
  [422, "Unprocessable Entity"],
  [423, "Locked"],
  [424, "Failed Dependency"],
  [425, "Too Early"],
  [426, "Upgrade Required"],
  [428, "Precondition Required"],
  [429, "Too Many Requests"],
  [431, "Request Header Fields Too Large"],
  [451, "Unavailable For Legal Reasons"],
  [500, "Internal Server Error"],
  [501, "Not Implemented"],
  [502, "Bad Gateway"],
  [503, "Service Unavailable"],
  [504, "Gateway Timeout"],
  [505, "HTTP Version Not Supported"],
  [506, "Variant Also Negotiates"],
  [507, "Insufficient Storage"],
  [508, "Loop Detected"],
  [510, "Not Extended"],
  [511, "Network Authentication Required"],
]);

/** The reason phrase Go uses for a status code (`OK`, `Bad Gateway`); empty when unknown. */
export function statusText(status: number): string {
  return STATUS_TEXT.get(status) ?? "";
}

/**
 * The declared length of a message body, or undefined when absent or not one plain number. The
 * headers are a `Headers` object or a list of `[lower-case name, value]` pairs (the proxy's lists
 * are read without the lookup a `Headers` object costs).
 */
export function declaredLength(headers: HeaderList): number | undefined {
  // A repeated header arrives joined with ", " and fails the pattern, as it should.
  const value = headerValue(headers, "content-length")?.trim();
  return value !== undefined && PLAIN_LENGTH.test(value) ? Number(value) : undefined;
}

/** One to fifteen decimal digits: a body length that stays exact as a number. */
const PLAIN_LENGTH = /^\d{1,15}$/;
