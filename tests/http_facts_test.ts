import assert from "node:assert/strict";
import { declaredLength } from "../lib/shared/http_facts.ts";

Deno.test("declaredLength: one plain decimal number, else undefined; Headers or a list alike", () => {
  const headers = (v?: string) => new Headers(v === undefined ? {} : { "content-length": v });
  const list = (v?: string): [string, string][] =>
    v === undefined ? [["x-a", "1"]] : [["x-a", "1"], ["content-length", v]];
  for (const h of [headers, list]) {
    assert.equal(declaredLength(h("0")), 0);
    assert.equal(declaredLength(h(" 12 ")), 12);
    assert.equal(declaredLength(h()), undefined);
    assert.equal(declaredLength(h("-1")), undefined);
    assert.equal(declaredLength(h("1e3")), undefined);
    assert.equal(declaredLength(h("12, 12")), undefined);
    assert.equal(declaredLength(h("9999999999999999")), undefined);
  }
  // A list may repeat the header where Headers joins it: two values are not one length.
  assert.equal(declaredLength([["content-length", "12"], ["content-length", "12"]]), undefined);
});
