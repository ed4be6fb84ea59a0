import assert from "node:assert/strict";
import { declaredLength } from "../lib/shared/http_facts.ts";

Deno.test("declaredLength: one plain decimal number, else undefined", () => {
  const h = (v?: string) => new Headers(v === undefined ? {} : { "content-length": v });
  assert.equal(declaredLength(h("0")), 0);
  assert.equal(declaredLength(h(" 12 ")), 12);
  assert.equal(declaredLength(h()), undefined);
  assert.equal(declaredLength(h("-1")), undefined);
  assert.equal(declaredLength(h("1e3")), undefined);
  assert.equal(declaredLength(h("12, 12")), undefined);
  assert.equal(declaredLength(h("9999999999999999")), undefined);
});
