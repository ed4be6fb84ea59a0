import assert from "node:assert/strict";
import {
  type BodyOutcome,
  chunkReader,
  HEAD_BODY_LIMIT,
  MeteredBody,
  PeekClock,
  relayResponse,
  WHOLE_BODY_LIMIT,
} from "../lib/data/body_meter.ts";

/** A stream of `chunks`, then `end`: closed, or failed with that error. */
function source(chunks: number[], end: "close" | Error = "close"): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(new Uint8Array(chunks[i++]));
      else if (end === "close") c.close();
      else c.error(end);
    },
  });
}

async function drain(stream: ReadableStream<Uint8Array> | null): Promise<number | Error> {
  let n = 0;
  try {
    for await (const chunk of stream ?? []) n += chunk.byteLength;
    return n;
  } catch (e) {
    return e as Error;
  }
}

/** A `completed` that never settles (the native path must not be taken in these cases). */
const NEVER = {
  get completed(): Promise<void> {
    throw new Error("completed read");
  },
};

Deno.test("MeteredBody passes every chunk, counts them, reports the end once", async () => {
  const ends: unknown[][] = [];
  const m = new MeteredBody(source([3, 5, 7]), (...a) => ends.push(a));
  assert.equal(await drain(m.stream), 15);
  assert.equal(m.bytes, 15);
  assert.deepEqual(ends, [["complete", undefined]]);

  const boom = new Error("reset");
  const failed: unknown[][] = [];
  const f = new MeteredBody(source([4, 4], boom), (...a) => failed.push(a));
  assert.equal(await drain(f.stream), boom);
  assert.equal(f.bytes, 8);
  assert.deepEqual(failed, [["failed", boom]]);

  let cancelled: unknown;
  const upstream = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(10)),
    cancel: (reason) => {
      cancelled = reason;
    },
  });
  const gone: unknown[][] = [];
  const g = new MeteredBody(upstream, (...a) => gone.push(a));
  const reader = g.stream.getReader();
  await reader.read();
  await reader.cancel("client went away");
  assert.deepEqual(gone, [["cancelled", "client went away"]]);
  assert.equal(cancelled, "client went away", "the cancel reaches the source");
  assert.equal(g.bytes, 10);
});

Deno.test("relayResponse: HEAD, 204 and 304 count no body, at once", async () => {
  for (
    const [method, upstream] of [
      ["HEAD", new Response(null, { headers: { "content-length": "20971520" } })],
      ["GET", new Response(null, { status: 204 })],
      ["GET", new Response(null, { status: 304, headers: { "content-length": "99" } })],
    ] as const
  ) {
    const seen: BodyOutcome[] = [];
    const res = await relayResponse(upstream, { status: upstream.status }, {
      method,
      info: NEVER,
      onEnd: (o) => seen.push(o),
    });
    assert.equal(res.status, upstream.status);
    assert.deepEqual(seen, [{ bytes: 0, completed: true }], `${method} ${upstream.status}`);
  }
});

Deno.test("relayResponse: a declared empty body is reported at once, passed as none, its source cancelled", async () => {
  let cancelled = false;
  const empty = new ReadableStream<Uint8Array>({
    pull() {},
    cancel() {
      cancelled = true;
    },
  });
  const seen: BodyOutcome[] = [];
  const upstream = new Response(empty, { headers: { "content-length": "0" } });
  const res = await relayResponse(upstream, { status: 200, headers: [["content-length", "0"]] }, {
    method: "PUT",
    info: NEVER,
    onEnd: (o) => seen.push(o),
  });
  assert.deepEqual(seen, [{ bytes: 0, completed: true }]);
  assert.equal(res.body, null);
  assert.equal(res.headers.get("content-length"), "0");
  assert.ok(cancelled, "the upstream body was cancelled");
});

Deno.test("relayResponse: up to wholeUpTo a declared body is read whole; one cut short breaks after the head", async () => {
  const seen: BodyOutcome[] = [];
  const onEnd = (o: BodyOutcome) => seen.push(o);
  const wholeUpTo = HEAD_BODY_LIMIT;
  const hello = new Response("hello", { headers: { "content-length": "5" } });
  const ok = await relayResponse(hello, {}, { method: "GET", info: NEVER, wholeUpTo, onEnd });
  assert.deepEqual(seen, [{ bytes: 5, completed: true }]);
  assert.equal(await ok.text(), "hello");

  seen.length = 0;
  const boom = new Error("connection reset");
  const cut = new Response(source([100], boom), { headers: { "content-length": "500" } });
  const res = await relayResponse(cut, { status: 200 }, {
    method: "GET",
    info: NEVER,
    wholeUpTo,
    onEnd,
  });
  assert.equal(res.status, 200);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], {
    bytes: 0,
    completed: false,
    broken: { how: "failed", reason: boom },
  });
  assert.equal(await drain(res.body), boom);
});

Deno.test("relayResponse: a declared body passes natively unless verify; unknown length is metered", async () => {
  const big = String(WHOLE_BODY_LIMIT + 1);
  // Native: reported from `completed`, with the declared length.
  let complete!: () => void;
  const info = { completed: new Promise<void>((r) => (complete = r)) };
  const seen: BodyOutcome[] = [];
  const upstream = new Response(source([WHOLE_BODY_LIMIT + 1]), {
    headers: { "content-length": big },
  });
  const body = upstream.body;
  const res = await relayResponse(upstream, {}, {
    method: "GET",
    info,
    onEnd: (o) => seen.push(o),
  });
  assert.equal(res.body, body, "the upstream stream itself");
  assert.deepEqual(seen, []);
  complete();
  await info.completed;
  assert.deepEqual(seen, [{ bytes: WHOLE_BODY_LIMIT + 1, completed: true }]);

  // --verify-bodies: the same body metered, cut short: seen with the bytes that got through.
  const boom = new Error("unexpected EOF");
  const verified: BodyOutcome[] = [];
  const cut = new Response(source([1000, 1000], boom), { headers: { "content-length": big } });
  const metered = await relayResponse(cut, {}, {
    method: "GET",
    info: NEVER,
    verify: true,
    onEnd: (o) => verified.push(o),
  });
  assert.equal(await drain(metered.body), boom);
  assert.deepEqual(verified, [{
    bytes: 2000,
    completed: false,
    broken: { how: "failed", reason: boom },
  }]);

  // No declared length: always metered, whatever its size.
  const chunked: BodyOutcome[] = [];
  const stream = await relayResponse(new Response(source([70_000, 30_000])), {}, {
    method: "GET",
    info: NEVER,
    onEnd: (o) => chunked.push(o),
  });
  assert.equal(await drain(stream.body), 100_000);
  assert.deepEqual(chunked, [{ bytes: 100_000, completed: true }]);
});

Deno.test("relayResponse: a status the Response constructor refuses is reported, then thrown", async () => {
  // Streamed (unknown length) and passed natively (declared): the same one report.
  for (const headers of [{}, { "content-length": "10" }] as Record<string, string>[]) {
    const seen: BodyOutcome[] = [];
    const upstream = new Response(source([10]), { headers });
    await assert.rejects(
      async () =>
        await relayResponse(upstream, { status: 600 }, {
          method: "GET",
          info: NEVER,
          onEnd: (o) => seen.push(o),
        }),
      RangeError,
    );
    assert.deepEqual(seen, [{ bytes: 0, completed: false }], JSON.stringify(headers));
  }
});

Deno.test("relayResponse: a body of unknown length that comes at once and is small is sent whole", async () => {
  const seen: BodyOutcome[] = [];
  const res = await relayResponse(new Response(source([2, 3])), {}, {
    method: "POST",
    info: NEVER,
    onEnd: (o) => seen.push(o),
  });
  assert.deepEqual(seen, [{ bytes: 5, completed: true }], "reported before the response starts");
  assert.equal(await drain(res.body), 5);
  const one = await relayResponse(new Response("ok"), {}, {
    method: "GET",
    info: NEVER,
    onEnd: (o) => seen.push(o),
  });
  assert.equal(await one.text(), "ok", "one chunk: sent as it came");
  assert.deepEqual(seen[1], { bytes: 2, completed: true });

  const boom = new Error("reset");
  const failed: BodyOutcome[] = [];
  const cut = await relayResponse(new Response(source([2], boom)), {}, {
    method: "GET",
    info: NEVER,
    onEnd: (o) => failed.push(o),
  });
  assert.deepEqual(failed, [{
    bytes: 0,
    completed: false,
    broken: { how: "failed", reason: boom },
  }]);
  assert.equal(await drain(cut.body), boom);
});

Deno.test("relayResponse: a slow body of unknown length streams on at once, what was read first", async () => {
  // With a timer of its own, and with the data plane's shared clock.
  for (const clock of [undefined, new PeekClock(5)]) {
    let step = 0;
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    const slow = new ReadableStream<Uint8Array>({
      async pull(c) {
        step++;
        if (step === 1) c.enqueue(new Uint8Array(3));
        else if (step === 2) {
          await later; // held past the peek: the head must not wait for it
          c.enqueue(new Uint8Array(4));
        } else c.close();
      },
    });
    const seen: BodyOutcome[] = [];
    const res = await relayResponse(new Response(slow), {}, {
      method: "GET",
      info: NEVER,
      clock,
      onEnd: (o) => seen.push(o),
    });
    assert.deepEqual(seen, [], "streaming: not ended yet");
    release();
    assert.equal(await drain(res.body), 7);
    assert.deepEqual(seen, [{ bytes: 7, completed: true }]);
    clock?.stop();
  }
});

Deno.test("PeekClock: peeks of one tick share a promise, late after one to two ticks", async () => {
  const clock = new PeekClock(10);
  const t0 = performance.now();
  const a = clock.late();
  assert.equal(clock.late(), a, "one promise, not a timer, per peek");
  assert.equal(await a, "late");
  const waited = performance.now() - t0;
  assert.ok(waited >= 9, `late after ${waited} ms: at least one tick`);
  const b = clock.late();
  assert.notEqual(b, a, "a later peek waits for a later tick");
  await b;
  clock.stop();
});

Deno.test("chunkReader: a byte stream is read into buffers of the asked size, a plain stream as it comes", async () => {
  const bytes = new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      const view = c.byobRequest!.view as Uint8Array;
      view.fill(1);
      c.byobRequest!.respond(view.byteLength);
      if (view.byteLength < 100) c.close();
    },
  });
  const r = chunkReader(bytes, 10);
  const first = await r.read();
  assert.equal(first.value?.byteLength, 10, "the first read asks for 10 bytes");
  await r.cancel();
  const plain = chunkReader(source([7]));
  assert.equal((await plain.read()).value?.byteLength, 7);
  assert.equal((await plain.read()).done, true);
});

Deno.test("chunkReader: small chunks keep their bytes while the reader reuses its buffer", async () => {
  // Chunks of 2, 3 and 5000 bytes, each filled with its own number, from a byte stream that
  // answers each read with at most the next chunk.
  const chunks = [2, 3, 5000].map((n, i) => new Uint8Array(n).fill(i + 1));
  let next = 0;
  const views: ArrayBufferLike[] = [];
  const bytes = new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      const chunk = chunks[next];
      if (!chunk) {
        c.close();
        return c.byobRequest!.respond(0); // the pending read ends: done
      }
      const view = c.byobRequest!.view as Uint8Array;
      views.push(view.buffer);
      const n = Math.min(chunk.byteLength, view.byteLength);
      view.set(chunk.subarray(0, n));
      chunks[next] = chunk.subarray(n);
      if (chunks[next].byteLength === 0) next++;
      c.byobRequest!.respond(n);
    },
  });
  const r = chunkReader(bytes, 4096);
  const got: Uint8Array[] = [];
  for (let c = await r.read(); !c.done; c = await r.read()) got.push(c.value);
  assert.deepEqual(got.map((c) => c.byteLength), [2, 3, 4096, 904]);
  assert.ok(got[0].every((b) => b === 1) && got[1].every((b) => b === 2), "copies, not views");
  assert.ok(got[2].every((b) => b === 3) && got[3].every((b) => b === 3));
  // 2 and 3 bytes used little of the 4 KiB buffer: kept for the next read, not a new one each.
  assert.equal(new Set(views.slice(0, 3).map((b) => b.byteLength)).size, 1);
});
