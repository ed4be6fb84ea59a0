import assert from "node:assert/strict";
import { classifyFetchError, CLIENT_GONE, SHUTTING_DOWN } from "../lib/upstream/fetch_errors.ts";

// Texts as Deno 2.9.6 produces them (TypeError "fetch failed" with the detail in `cause`).
const failed = (detail: string) => new TypeError("fetch failed", { cause: new Error(detail) });

Deno.test("connection refused: marks down, safe to retry", () => {
  const f = classifyFetchError(failed(
    "error sending request for url (http://127.0.0.1:37477/): client error (Connect): tcp connect error: Connection refused (os error 111)",
  ));
  assert.equal(f.kind, "refused");
  assert.equal(f.marksDown, true);
  assert.equal(f.beforeSend, true);
  assert.equal(
    f.message,
    "client error (Connect): tcp connect error: Connection refused (os error 111)",
  );
});

Deno.test("backend closed the connection mid-exchange: 502, but no ejection (Go's EOF rule)", () => {
  const f = classifyFetchError(failed(
    "error sending request from 127.0.0.1:32940 for http://127.0.0.1:40647/ (127.0.0.1:40647): client error (SendRequest): connection closed before message completed",
  ));
  assert.equal(f.kind, "closed");
  assert.equal(f.marksDown, false, "EOF-like: a stale keep-alive connection, not a dead backend");
  assert.equal(f.beforeSend, false);
  assert.equal(f.message, "client error (SendRequest): connection closed before message completed");
});

Deno.test("dns, tls, reset, protocol errors", () => {
  assert.equal(
    classifyFetchError(failed(
      "error sending request for url (http://nonexistent.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
    )).kind,
    "dns",
  );
  assert.equal(
    classifyFetchError(failed(
      "error sending request for url (https://127.0.0.1:41417/): client error (Connect): received corrupt message of type InvalidContentType",
    )).kind,
    "tls",
  );
  assert.equal(
    classifyFetchError(failed(
      "client error (Connect): invalid peer certificate: UnknownIssuer",
    )).kind,
    "tls",
  );
  assert.equal(
    classifyFetchError(failed("connection error: Connection reset by peer (os error 104)")).kind,
    "reset",
  );
  assert.equal(
    classifyFetchError(failed(
      "error sending request from 127.0.0.1:45126 for http://127.0.0.1:35015/ (127.0.0.1:35015): client error (SendRequest): invalid HTTP version parsed",
    )).kind,
    "protocol",
  );
});

Deno.test("the client's own body failing or going away never marks a backend down", () => {
  const body = classifyFetchError(failed("error from user's Body stream"));
  assert.equal(body.kind, "client");
  assert.equal(body.marksDown, false);
  assert.equal(classifyFetchError(CLIENT_GONE).marksDown, false);
  assert.equal(classifyFetchError(new Error("anything"), true).marksDown, false);
  assert.equal(classifyFetchError(new DOMException("aborted", "AbortError")).marksDown, false);
});

Deno.test("timeouts mark down; unknown errors mark down with their text", () => {
  const t = classifyFetchError(
    new DOMException("The operation was aborted due to timeout", "TimeoutError"),
  );
  assert.equal(t.kind, "timeout");
  assert.equal(t.marksDown, true);
  const o = classifyFetchError(new Error("something new"));
  assert.equal(o.kind, "other");
  assert.equal(o.message, "something new");
});

Deno.test("exchanges cut by a stopping sidekick never blame the backend", () => {
  const f = classifyFetchError(SHUTTING_DOWN);
  assert.equal(f.kind, "shutdown");
  assert.equal(f.marksDown, false);
});
