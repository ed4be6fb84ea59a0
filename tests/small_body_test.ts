import assert from "node:assert/strict";
import { declaredLength, downstreamBody, SMALL_BODY_LIMIT } from "../lib/data/small_body.ts";

const enc = new TextEncoder();

/** A streamed body of `parts`, with `Content-Length` set to `length` when given. */
function upstream(parts: string[], length?: string): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(enc.encode(parts[i++]));
      else controller.close();
    },
  });
  return new Response(body, {
    headers: length === undefined ? {} : { "content-length": length },
  });
}

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

Deno.test("downstreamBody: a small declared length is read whole into bytes", async () => {
  const body = await downstreamBody(upstream(["he", "llo"], "5"), "GET");
  assert.ok(body instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(body), "hello");
  const empty = await downstreamBody(upstream([], "0"), "GET");
  assert.ok(empty instanceof Uint8Array);
  assert.equal(empty.byteLength, 0);
});

Deno.test("downstreamBody: the limit is inclusive and the default is the Deno.serve buffer size", async () => {
  assert.equal(SMALL_BODY_LIMIT, 512);
  const at = "x".repeat(SMALL_BODY_LIMIT);
  assert.ok(await downstreamBody(upstream([at], String(at.length)), "GET") instanceof Uint8Array);
  assert.ok(await downstreamBody(upstream(["abcd"], "4"), "GET", 4) instanceof Uint8Array);
});

Deno.test("downstreamBody: unknown, larger or unparseable lengths keep the upstream stream", async () => {
  const cases: [Response, number | undefined][] = [
    [upstream(["abc"]), undefined],
    [upstream(["x".repeat(513)], "513"), undefined],
    [upstream(["abcde"], "5"), 4],
    [upstream(["ab"], "2, 2"), undefined],
  ];
  for (const [res, limit] of cases) {
    const body = await downstreamBody(res, "GET", limit);
    assert.equal(body, res.body);
    assert.equal(res.bodyUsed, false);
  }
});

Deno.test("downstreamBody: HEAD answers and bodiless responses pass through", async () => {
  const head = upstream([], "100");
  assert.equal(await downstreamBody(head, "HEAD"), head.body);
  assert.equal(await downstreamBody(new Response(null, { status: 204 }), "GET"), null);
});

Deno.test("downstreamBody: a body failing while read becomes a stream failing the same way", async () => {
  const boom = new Error("backend reset");
  let sent = false;
  const res = new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(boom);
        sent = true;
        controller.enqueue(enc.encode("par"));
      },
    }),
    { headers: { "content-length": "10" } },
  );
  const body = await downstreamBody(res, "GET");
  assert.ok(body instanceof ReadableStream);
  await assert.rejects(() => new Response(body).bytes(), (e) => e === boom);
});
