/**
 * lib/proxy.ts `forward`, against a fake transport: the upstream request (URL, headers, body),
 * the response handed back, in-flight accounting, the record, passive ejection, retries on
 * another backend, the 502 document, and the client's faults (400, a client that went away).
 */
import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import { CLIENT_GONE } from "../lib/upstream/fetch_errors.ts";
import {
  forward,
  type InFlight,
  type ProxyContext,
  type RetryContext,
  type Target,
} from "../lib/data/proxy.ts";
import { LinkedList } from "../lib/shared/linked_list.ts";
import { WHOLE_BODY_LIMIT } from "../lib/data/body_meter.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import { ReplayMemory, RetryBudget } from "../lib/data/retry.ts";
import type { Transport } from "../lib/upstream/transport.ts";

/** What the fake transport was asked to send. */
interface Call {
  url: string;
  init: RequestInit;
  /** The body as sent (a stream is read to the end). */
  body: Uint8Array | null;
}

type Answer = (call: Call, signal: AbortSignal) => Promise<Response>;

/** A transport that answers each call with the next of `answers` (the last one repeats). */
function fakeTransport(...answers: Answer[]) {
  const calls: Call[] = [];
  const transport: Transport = {
    async fetch(url, init) {
      let body: Uint8Array | null = null;
      if (init.body instanceof Uint8Array) body = init.body;
      else if (init.body instanceof ReadableStream) {
        body = await new Response(init.body).bytes();
      } else assert.equal(init.body ?? null, null, "a body the fake does not know");
      const call = { url, init, body };
      calls.push(call);
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
      return answer(call, init.signal!);
    },
    close() {},
  };
  return { transport, calls };
}

const ok = (body = "ok", init: ResponseInit = {}): Answer => () =>
  Promise.resolve(new Response(body, init));

/** What `fetch` throws (Deno 2.9.6) when `cause` is the underlying error text. */
const fails = (cause: string): Answer => () =>
  Promise.reject(new TypeError("fetch failed", { cause: new Error(cause) }));
const REFUSED = "tcp connect error: Connection refused (os error 111)";
const CLOSED = "connection closed before message completed";

/** Never answers; rejects with the signal's reason once aborted. */
const hang: Answer = (_call, signal) =>
  new Promise((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

/** The handler info of a client at `hostname`; `complete` settles `completed` as the server would. */
function clientInfo(hostname = "10.0.0.7") {
  let complete!: () => void;
  let fail!: () => void;
  const completed = new Promise<void>((resolve, reject) => {
    complete = resolve;
    fail = reject;
  });
  completed.catch(() => {});
  const info: Deno.ServeHandlerInfo<Deno.NetAddr> = {
    remoteAddr: { transport: "tcp", hostname, port: 40_000 },
    completed,
  };
  return { info, complete, fail };
}

function upBackend(endpoint: string, site = 1): Backend {
  const b = new Backend(endpoint, site, `${endpoint}/health`, () => {});
  b.markUp();
  return b;
}

/** A context over `transport` that collects records and ejections. */
function context(transport: Transport, extra: Partial<ProxyContext> = {}) {
  const records: ExchangeRecord[] = [];
  const ejected: Backend[] = [];
  const inflight = new LinkedList<InFlight>();
  const ctx: ProxyContext = {
    transport,
    publicIp: "192.0.2.7",
    onRecord: (r) => records.push(r),
    onEject: (b) => ejected.push(b),
    inflight,
    ...extra,
  };
  return { ctx, records, ejected, inflight };
}

/** Retries over `others` (tried in order), with a budget that allows them unless `budget`. */
function retries(others: Backend[], options: { budget?: RetryBudget; bufferBytes?: number } = {}) {
  const picks: (readonly Backend[])[] = [];
  const retry: RetryContext = {
    retries: 2,
    bufferBytes: options.bufferBytes ?? 1024,
    memory: new ReplayMemory(1 << 20),
    budget: options.budget ?? new RetryBudget({ minPerSecond: 100 }),
    pick: (tried) => {
      picks.push([...tried]);
      return others.find((b) => b.up && !tried.includes(b));
    },
  };
  return { retry, picks };
}

const target: Target = { path: "/bucket/a%20b", rawQuery: "x=1&y=%zz", host: "s3.example:9000" };

Deno.test("forward: the upstream request keeps path, raw query, Host; X-Forwarded-*; hop-by-hop removed", async () => {
  const { transport, calls } = fakeTransport(ok());
  const { ctx } = context(transport);
  const b = upBackend("http://127.0.0.1:9001");
  const req = new Request("http://s3.example:9000/bucket/a%20b?x=1&y=%zz", {
    headers: {
      host: "s3.example:9000",
      connection: "keep-alive, x-hop",
      "x-hop": "secret",
      "keep-alive": "timeout=5",
      "x-forwarded-for": "1.2.3.4",
      "accept-encoding": "gzip",
      "x-amz-date": "20260101T000000Z",
    },
  });
  const { info, complete } = clientInfo("10.0.0.7");
  const res = await forward(req, info, b, target, ctx);
  await res.body?.cancel();
  complete();
  assert.equal(calls.length, 1);
  const { url, init } = calls[0];
  assert.equal(url, "http://127.0.0.1:9001/bucket/a%20b?x=1&y=%zz");
  assert.equal(init.method, "GET");
  assert.equal(init.redirect, "manual");
  const sent = new Headers(init.headers as [string, string][]);
  assert.equal(sent.get("host"), "s3.example:9000");
  assert.equal(sent.get("x-forwarded-host"), "s3.example:9000");
  assert.equal(sent.get("x-forwarded-for"), "1.2.3.4, 10.0.0.7");
  assert.equal(sent.get("x-real-ip"), "10.0.0.7");
  assert.equal(sent.get("accept-encoding"), "identity");
  assert.equal(sent.get("x-amz-date"), "20260101T000000Z");
  for (const h of ["connection", "x-hop", "keep-alive"]) assert.equal(sent.has(h), false, h);
});

Deno.test("forward: a loopback client is sent as the public IP; no query, no '?'", async () => {
  const { transport, calls } = fakeTransport(ok());
  const { ctx } = context(transport);
  const { info, complete } = clientInfo("127.0.0.1");
  const res = await forward(
    new Request("http://h/p"),
    info,
    upBackend("http://127.0.0.1:9001"),
    { path: "/p", rawQuery: "", host: "h" },
    ctx,
  );
  await res.body?.cancel();
  complete();
  assert.equal(calls[0].url, "http://127.0.0.1:9001/p");
  const sent = new Headers(calls[0].init.headers as [string, string][]);
  assert.equal(sent.get("x-forwarded-for"), "192.0.2.7");
  assert.equal(sent.get("x-real-ip"), "192.0.2.7");
});

Deno.test("forward: the response keeps status and body, drops hop-by-hop, adds X-Proxy and Server", async () => {
  const { transport } = fakeTransport(ok("created", {
    status: 201,
    statusText: "Created",
    headers: { connection: "x-secret", "x-secret": "1", etag: '"e"', "set-cookie": "a=1" },
  }));
  const { ctx } = context(transport);
  const { info, complete } = clientInfo();
  const res = await forward(
    new Request("http://h/p", { method: "PUT", body: "data" }),
    info,
    upBackend("http://127.0.0.1:9001"),
    target,
    ctx,
  );
  assert.equal(res.status, 201);
  assert.equal(res.statusText, "Created");
  assert.equal(await res.text(), "created");
  complete();
  assert.equal(res.headers.get("etag"), '"e"');
  assert.deepEqual(res.headers.getSetCookie(), ["a=1"]);
  assert.equal(res.headers.has("x-secret"), false);
  assert.equal(res.headers.get("x-proxy"), "true");
  assert.equal(res.headers.get("server"), "SideKick");
});

Deno.test("forward: a backend's own Server header is kept; a 204 has no body", async () => {
  const { transport } = fakeTransport(() =>
    Promise.resolve(new Response(null, { status: 204, headers: { server: "MinIO" } }))
  );
  const { ctx } = context(transport);
  const { info, complete } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, upBackend("http://b:1"), target, ctx);
  complete();
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
  assert.equal(res.headers.get("server"), "MinIO");
});

Deno.test("forward: a streamed upload reaches the backend byte for byte", async () => {
  const { transport, calls } = fakeTransport(ok());
  const { ctx } = context(transport);
  const body = new Uint8Array(100_000).map((_, i) => i % 251);
  const { info, complete } = clientInfo();
  const res = await forward(
    new Request("http://h/p", { method: "PUT", body: new Blob([body]).stream() }),
    info,
    upBackend("http://b:1"),
    target,
    ctx,
  );
  await res.body?.cancel();
  complete();
  assert.equal(calls[0].init.method, "PUT");
  assert.deepEqual(calls[0].body, body);
});

Deno.test("forward: a declared body passes natively, in flight until the server has sent it; then one record", async () => {
  for (const size of [10, WHOLE_BODY_LIMIT + 1]) {
    const body = "x".repeat(size);
    const { transport } = fakeTransport(ok(body, { headers: { "content-length": `${size}` } }));
    const { ctx, records, inflight } = context(transport);
    const b = upBackend("http://127.0.0.1:9001", 2);
    const { info, complete } = clientInfo();
    const res = await forward(new Request("http://h/p"), info, b, target, ctx);
    assert.equal((await res.text()).length, size);
    assert.equal(b.inflight, 1, `${size} B: read, but the server has not finished sending it`);
    assert.equal(inflight.size, 1);
    assert.equal(records.length, 0);
    complete();
    await info.completed;
    await Promise.resolve(); // the completion handler runs after the test's own continuation
    assert.equal(b.inflight, 0);
    assert.equal(inflight.size, 0);
    assert.equal(records.length, 1);
    assert.equal(records[0].responseBodyBytes, size, "its declared length");
    assert.equal(records[0].completed, true);
  }
});

Deno.test("forward: a small answer on a stalling HTTPS listener is read whole: one record, at once", async () => {
  const { transport } = fakeTransport(ok("0123456789", { headers: { "content-length": "10" } }));
  const { ctx, records, inflight } = context(transport);
  ctx.headStalls = () => true; // no TCP_NODELAY: the body must leave with the head
  const b = upBackend("http://127.0.0.1:9001", 2);
  const { info } = clientInfo(); // never settled: not needed
  const res = await forward(
    new Request("http://h/p", { method: "PUT", body: "abc", headers: { "content-length": "3" } }),
    info,
    b,
    target,
    ctx,
  );
  assert.equal(b.inflight, 0);
  assert.equal(inflight.size, 0);
  assert.equal(records.length, 1);
  assert.equal(await res.text(), "0123456789");
  const r = records[0];
  assert.equal(r.kind, "request");
  assert.equal(r.endpoint, "http://127.0.0.1:9001");
  assert.equal(r.site, 2);
  assert.equal(r.method, "PUT");
  assert.equal(r.path, "/bucket/a%20b");
  assert.equal(r.rawQuery, "x=1&y=%zz");
  assert.equal(r.status, 200);
  assert.equal(r.client, "10.0.0.7");
  assert.equal(r.requestBodyBytes, 3);
  assert.equal(r.responseBodyBytes, 10);
  assert.equal(r.error, "");
  assert.equal(r.completed, true);
  assert.equal(r.retried, undefined);
  assert.equal(r.clientFault, false);
  assert.ok(r.latencyMs >= r.ttfbMs && r.ttfbMs > 0);
});

Deno.test("forward: a response the client did not take in full is recorded as not completed", async () => {
  // Passed natively: the server says it was not sent in full.
  const big = "x".repeat(WHOLE_BODY_LIMIT + 1);
  const { transport } = fakeTransport(ok(big, { headers: { "content-length": `${big.length}` } }));
  const { ctx, records } = context(transport);
  const { info, fail } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, upBackend("http://b:1"), target, ctx);
  await res.body?.cancel();
  fail();
  await info.completed.catch(() => {});
  await Promise.resolve();
  assert.equal(records.length, 1);
  assert.equal(records[0].completed, false);
  assert.equal(records[0].aborted, "client");

  // Streamed through sidekick (no length, slow): the cancel says so, with the bytes passed on.
  let sent = 0;
  const slow = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent++ > 0) await new Promise((r) => setTimeout(r, 20));
      c.enqueue(new Uint8Array(100));
    },
  });
  const streamed = fakeTransport(() => Promise.resolve(new Response(slow)));
  const other = context(streamed.transport);
  const res2 = await forward(
    new Request("http://h/p"),
    clientInfo().info,
    upBackend("http://b:1"),
    target,
    other.ctx,
  );
  const reader = res2.body!.getReader();
  await reader.read();
  await reader.cancel("gone");
  assert.equal(other.records.length, 1);
  assert.equal(other.records[0].completed, false);
  assert.equal(other.records[0].aborted, "client");
  assert.equal(other.records[0].responseBodyBytes, 100);
});

Deno.test("forward: connection refused is the 502 document; the backend is ejected once", async () => {
  const { transport } = fakeTransport(fails(REFUSED));
  const { ctx, records, ejected } = context(transport);
  const b = upBackend("http://127.0.0.1:9001");
  const { info, complete } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, b, target, ctx);
  assert.equal(res.status, 502);
  assert.equal(res.headers.get("content-type"), "application/xml");
  assert.equal(res.headers.get("retry-after"), "120");
  const doc = await res.text();
  assert.match(doc, /<Code>BackendDown<\/Code>/);
  assert.match(doc, /<Message>The remote server returned an error \([^)]*Connection refused/);
  assert.match(doc, /<Resource>\/bucket\/a%20b<\/Resource>/);
  complete();
  await info.completed;
  await Promise.resolve();
  assert.equal(b.up, false);
  assert.match(b.lastError, /Connection refused/);
  assert.deepEqual(ejected, [b]);
  assert.equal(records[0].status, 502);
  assert.match(records[0].error, /Connection refused/);
  assert.equal(records[0].clientFault, false);

  // A backend already DOWN is not reported again.
  const again = clientInfo();
  await (await forward(new Request("http://h/p"), again.info, b, target, ctx)).body?.cancel();
  assert.deepEqual(ejected, [b]);
});

Deno.test("forward: a closed connection is a 502 but ejects nothing (a stale pooled connection)", async () => {
  const { transport } = fakeTransport(fails(CLOSED));
  const { ctx, ejected } = context(transport);
  const b = upBackend("http://b:1");
  const { info } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, b, target, ctx);
  await res.body?.cancel();
  assert.equal(res.status, 502);
  assert.equal(b.up, true);
  assert.deepEqual(ejected, []);
});

Deno.test("forward: refused, then retried on another backend; the record says who failed", async () => {
  const { transport, calls } = fakeTransport(fails(REFUSED), ok("from b"));
  const a = upBackend("http://127.0.0.1:9001");
  const b = upBackend("http://127.0.0.1:9002");
  const { retry, picks } = retries([a, b]);
  const { ctx, records, ejected } = context(transport, { retry });
  const { info, complete } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, a, target, ctx);
  assert.equal(await res.text(), "from b");
  assert.deepEqual(calls.map((c) => c.url), [
    "http://127.0.0.1:9001/bucket/a%20b?x=1&y=%zz",
    "http://127.0.0.1:9002/bucket/a%20b?x=1&y=%zz",
  ]);
  assert.deepEqual(picks, [[a]]);
  assert.deepEqual(ejected, [a]);
  assert.equal(a.inflight, 0, "the failed backend's attempt ended at once");
  assert.equal(b.inflight, 0, "a small answer, read whole: the exchange ended too");
  complete();
  const r = records[0];
  assert.equal(r.endpoint, "http://127.0.0.1:9002");
  assert.equal(r.status, 200);
  assert.equal(r.retried?.length, 1);
  assert.equal(r.retried![0].endpoint, "http://127.0.0.1:9001");
  assert.equal(r.retried![0].reason, "connect");
  assert.match(r.retried![0].error, /Connection refused/);
  assert.equal(r.retryDenied, false);
});

Deno.test("forward: a kept upload's memory is given back once the backend answered, before the answer's body ends", async () => {
  const { transport, calls } = fakeTransport(ok("ok", { headers: { "content-length": "2" } }));
  const a = upBackend("http://a:1");
  const { retry } = retries([a]);
  const { ctx, records } = context(transport, { retry });
  const { info, complete } = clientInfo();
  const res = await forward(
    new Request("http://h/p", {
      method: "PUT",
      body: new Blob([new Uint8Array(10)]).stream(),
      headers: { "content-length": "10" },
    }),
    info,
    a,
    target,
    ctx,
  );
  assert.equal(calls.length, 1);
  assert.equal(retry.memory.held, 0, "no retry can follow an answer");
  assert.equal(records.length, 0, "the answer's body (passed natively) has not ended yet");
  complete();
  await info.completed;
  await res.body?.cancel();
  assert.equal(records.length, 1);
  assert.equal(records[0].requestBodyBytes, 10);
});

Deno.test("forward: an idempotent upload is kept and sent again whole; the memory is given back", async () => {
  const { transport, calls } = fakeTransport(fails(CLOSED), ok());
  const a = upBackend("http://a:1");
  const b = upBackend("http://b:1");
  const { retry } = retries([a, b]);
  const { ctx, records } = context(transport, { retry });
  const { info, complete } = clientInfo();
  const body = new TextEncoder().encode("0123456789");
  const res = await forward(
    new Request("http://h/p", {
      method: "PUT",
      body: new Blob([body]).stream(),
      headers: { "content-length": "10" },
    }),
    info,
    a,
    target,
    ctx,
  );
  await res.body?.cancel();
  assert.equal(
    retry.memory.held,
    0,
    "given back when the exchange ended (a small answer: at once)",
  );
  complete();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0].body, body);
  assert.deepEqual(calls[1].body, body);
  assert.equal(records[0].retried![0].reason, "closed");
  assert.equal(a.up, true, "closed: not ejected");
});

Deno.test("forward: no retry for a streamed POST, a body over the buffer, or a closed non-idempotent request", async () => {
  for (
    const [what, init, failure] of [
      ["streamed POST", { method: "POST", body: "x", headers: { "content-length": "1" } }, REFUSED],
      [
        "PUT over --retry-buffer",
        { method: "PUT", body: "x".repeat(2000), headers: { "content-length": "2000" } },
        REFUSED,
      ],
      ["bodiless POST, connection closed", { method: "POST" }, CLOSED],
    ] as const
  ) {
    const { transport, calls } = fakeTransport(fails(failure), ok());
    const a = upBackend("http://a:1");
    const b = upBackend("http://b:1");
    const { retry, picks } = retries([a, b]);
    const { ctx } = context(transport, { retry });
    const { info } = clientInfo();
    const res = await forward(new Request("http://h/p", init), info, a, target, ctx);
    await res.body?.cancel();
    assert.equal(res.status, 502, what);
    assert.equal(calls.length, 1, what);
    assert.deepEqual(picks, [], what);
  }
});

Deno.test("forward: a bodiless POST refused before sending is retried (nothing reached the backend)", async () => {
  const { transport, calls } = fakeTransport(fails(REFUSED), ok());
  const a = upBackend("http://a:1");
  const b = upBackend("http://b:1");
  const { retry } = retries([a, b]);
  const { ctx } = context(transport, { retry });
  const { info } = clientInfo();
  const res = await forward(new Request("http://h/p", { method: "POST" }), info, a, target, ctx);
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.equal(calls.length, 2);
});

Deno.test("forward: a spent retry budget answers 502 and says the retry was denied", async () => {
  const { transport, calls } = fakeTransport(fails(REFUSED), ok());
  const a = upBackend("http://a:1");
  const b = upBackend("http://b:1");
  const { retry } = retries([a, b], { budget: new RetryBudget({ ratio: 0, minPerSecond: 0 }) });
  const { ctx, records } = context(transport, { retry });
  const { info, complete } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, a, target, ctx);
  await res.body?.cancel();
  complete();
  await info.completed;
  await Promise.resolve();
  assert.equal(res.status, 502);
  assert.equal(calls.length, 1);
  assert.equal(records[0].retryDenied, true);
  assert.equal(records[0].retried, undefined);
  assert.equal(b.inflight, 0);
});

Deno.test("forward: retries stop when every backend was tried, and at the --retries count", async () => {
  const { transport, calls } = fakeTransport(fails(REFUSED));
  const backends = ["a", "b", "c", "d"].map((n) => upBackend(`http://${n}:1`));
  const { retry } = retries(backends);
  const { ctx, records } = context(transport, { retry });
  const { info, complete } = clientInfo();
  const res = await forward(new Request("http://h/p"), info, backends[0], target, ctx);
  await res.body?.cancel();
  complete();
  await info.completed;
  await Promise.resolve();
  assert.equal(res.status, 502);
  assert.equal(calls.length, 3, "one attempt and retry.retries = 2 more");
  assert.deepEqual(records[0].retried?.map((f) => f.endpoint), ["http://a:1", "http://b:1"]);
  assert.equal(records[0].endpoint, "http://c:1");
  assert.equal(backends[3].up, true, "never tried");
  for (const b of backends) assert.equal(b.inflight, 0);

  const two = fakeTransport(fails(REFUSED));
  const pair = [upBackend("http://a:1"), upBackend("http://b:1")];
  const { retry: r2 } = retries(pair);
  const { info: i2 } = clientInfo();
  const res2 = await forward(
    new Request("http://h/p"),
    i2,
    pair[0],
    target,
    context(two.transport, { retry: r2 }).ctx,
  );
  await res2.body?.cancel();
  assert.equal(res2.status, 502);
  assert.equal(two.calls.length, 2, "no third attempt: no backend left");
});

Deno.test("forward: a body shorter than its Content-Length is the client's 400, no backend asked", async () => {
  const { transport, calls } = fakeTransport(ok());
  const a = upBackend("http://a:1");
  const { retry } = retries([a]);
  const { ctx, records, ejected } = context(transport, { retry });
  const short = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(3));
      c.error(new Error("connection closed mid-body"));
    },
  });
  const { info, complete } = clientInfo();
  const res = await forward(
    new Request("http://h/p", { method: "PUT", body: short, headers: { "content-length": "10" } }),
    info,
    a,
    target,
    ctx,
  );
  assert.equal(res.status, 400);
  assert.equal(await res.text(), "request body shorter than its Content-Length\n");
  complete();
  await info.completed;
  await Promise.resolve();
  assert.equal(calls.length, 0);
  assert.equal(a.up, true);
  assert.deepEqual(ejected, []);
  assert.equal(records[0].status, 400);
  assert.equal(records[0].clientFault, true);
  assert.equal(retry.memory.held, 0);
});

Deno.test("forward: a streamed body that fails mid-upload is the client's 400; the backend stays UP", async () => {
  const { transport } = fakeTransport(fails("error from user's Body stream"));
  const a = upBackend("http://a:1");
  const { ctx, records, ejected } = context(transport);
  const { info, complete } = clientInfo();
  const res = await forward(
    new Request("http://h/p", { method: "POST", body: "x" }),
    info,
    a,
    target,
    ctx,
  );
  assert.equal(res.status, 400);
  assert.equal(await res.text(), "request body shorter than its Content-Length\n");
  complete();
  await info.completed;
  await Promise.resolve();
  assert.equal(a.up, true);
  assert.deepEqual(ejected, []);
  assert.equal(records[0].clientFault, true);
});

Deno.test("forward: a client that goes away aborts the upstream call and blames no backend", async () => {
  const { transport, calls } = fakeTransport(hang);
  const a = upBackend("http://a:1");
  const b = upBackend("http://b:1");
  const { retry, picks } = retries([a, b]);
  const { ctx, records, ejected, inflight } = context(transport, { retry });
  const client = new AbortController();
  const { info, fail } = clientInfo();
  const pending = forward(
    new Request("http://h/p", { signal: client.signal }),
    info,
    a,
    target,
    ctx,
  );
  await waitUntil(() => calls.length === 1);
  assert.equal(inflight.size, 1);
  client.abort();
  const res = await pending;
  await res.body?.cancel();
  fail();
  await info.completed.catch(() => {});
  await Promise.resolve();
  assert.equal(calls[0].init.signal!.reason, CLIENT_GONE);
  assert.equal(a.up, true);
  assert.deepEqual(ejected, []);
  assert.deepEqual(picks, [], "not retried");
  assert.equal(records[0].clientFault, true);
  assert.equal(records[0].error, CLIENT_GONE);
  assert.equal(inflight.size, 0);
});

Deno.test("forward: the controller in ctx.inflight cuts the exchange (a forced stop)", async () => {
  const { transport, calls } = fakeTransport(hang);
  const a = upBackend("http://a:1");
  const { ctx, inflight, ejected } = context(transport);
  const { info } = clientInfo();
  const pending = forward(new Request("http://h/p"), info, a, target, ctx);
  await waitUntil(() => calls.length === 1);
  for (const f of inflight.entries()) f.controller.abort("sidekick is shutting down");
  const res = await pending;
  assert.equal(res.status, 502);
  assert.match(await res.text(), /sidekick is shutting down/);
  assert.equal(a.up, true, "a stop is no backend's fault");
  assert.deepEqual(ejected, []);
});

/** Yields to the event loop until `condition` holds (bounded). */
async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(condition(), "condition not reached");
}
