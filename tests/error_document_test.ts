import assert from "node:assert/strict";
import {
  ALL_OFFLINE,
  badGateway,
  errorDocumentXml,
  escapeXml,
} from "../lib/data/error_document.ts";

Deno.test("the 502 document has the Go sidekick's shape", () => {
  assert.equal(
    errorDocumentXml(ALL_OFFLINE, "/bucket/key"),
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>BackendDown</Code><Message>The remote server returned an error (all backend servers are offline)</Message><Resource>/bucket/key</Resource></Error>',
  );
});

Deno.test("values are XML-escaped", () => {
  assert.equal(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
  const xml = errorDocumentXml("a<b", "/x&y");
  assert.ok(xml.includes("(a&lt;b)"));
  assert.ok(xml.includes("<Resource>/x&amp;y</Resource>"));
});

Deno.test("badGateway: 502, application/xml, Retry-After 120, Server SideKick", async () => {
  const res = badGateway("boom", "/p");
  assert.equal(res.status, 502);
  assert.equal(res.headers.get("content-type"), "application/xml");
  assert.equal(res.headers.get("retry-after"), "120");
  assert.equal(res.headers.get("server"), "SideKick");
  assert.ok((await res.text()).includes("<Code>BackendDown</Code>"));
});
