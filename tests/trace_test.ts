import assert from "node:assert/strict";
import type { Transition } from "../lib/shared/backend.ts";
import { makeConfig } from "../lib/config/config.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import { healthRecord, requestRecord } from "./helpers/records.ts";
import {
  formatDebugJson,
  formatDebugText,
  formatRecord,
  formatShortJson,
  formatShortText,
  formatTransition,
  redactHeader,
  redactQuery,
  traceClient,
  traceFilter,
} from "../lib/output/trace.ts";

const T0 = Date.UTC(2024, 4, 1, 3, 6, 25, 805);
const plain = { json: false, debug: false, colors: false };

/** A health-check record as lib/control/health.ts builds it. */
function health(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return healthRecord({
    endpoint: "http://127.0.0.1:9000",
    path: "/minio/health/cluster",
    start: T0,
    latencyMs: 1.4061,
    ttfbMs: 1.2,
    responseHeaders: new Headers({ "content-length": "0" }),
    ...overrides,
  });
}

/** A proxied request record as lib/data/proxy.ts builds it. */
function request(overrides: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return requestRecord({
    method: "PUT",
    path: "/bucket/object",
    start: T0 - 250,
    latencyMs: 250,
    ttfbMs: 200,
    client: "10.0.0.7",
    requestHeaders: new Headers({
      host: "s3.local", // 4 + 8
      "content-length": "1000", // 14 + 4
      "x-real-ip": "10.0.0.7", // 9 + 8
      "x-forwarded-for": "10.0.0.7", // 15 + 8
    }),
    responseHeaders: new Headers({ etag: '"abc"', server: "MinIO" }),
    requestBodyBytes: 1000,
    ...overrides,
  });
}

Deno.test("state-change text lines, as the Go sidekick writes them", () => {
  const down: Transition = {
    endpoint: "http://10.0.0.1:9000",
    site: 1,
    state: "down",
    reason: "response status 503",
    downtimeMs: 0,
    at: Date.UTC(2024, 0, 1, 12, 0, 1, 234),
  };
  assert.equal(
    formatTransition(down, plain),
    "LOG  : 12:00:01.234  http://10.0.0.1:9000 is down: response status 503",
  );
  const up: Transition = { ...down, state: "up", reason: "", downtimeMs: 5555.012345 };
  assert.equal(
    formatTransition(up, plain),
    "LOG  : 12:00:01.234  http://10.0.0.1:9000 is up Downtime duration: 5.555012345s",
  );
  assert.equal(
    formatTransition({ ...up, downtimeMs: 0 }, plain),
    "LOG  : 12:00:01.234  http://10.0.0.1:9000 is up",
  );
  const colored = formatTransition(down, { ...plain, colors: true });
  assert.ok(colored.startsWith("\x1b[") && colored.includes("LOG\x1b[0m  : "), colored);
});

Deno.test("state-change JSON lines: key order, omitted fields, Go's HTML escaping", () => {
  const at = Date.UTC(2024, 0, 1, 12, 0, 1, 234);
  const json = { json: true, debug: false, colors: true };
  assert.equal(
    formatTransition({
      endpoint: "http://10.0.0.1:9000",
      site: 1,
      state: "down",
      reason: "dial <x> & y",
      downtimeMs: 0,
      at,
    }, json),
    '{"Type":"LOG","Endpoint":"http://10.0.0.1:9000","Error":"dial \\u003cx\\u003e \\u0026 y",' +
      '"Status":"down","Timestamp":"2024-01-01T12:00:01.234Z"}',
  );
  assert.equal(
    formatTransition({
      endpoint: "http://10.0.0.1:9000",
      site: 1,
      state: "up",
      reason: "",
      downtimeMs: 5555.012345,
      at,
    }, json),
    '{"Type":"LOG","Endpoint":"http://10.0.0.1:9000","Status":"up","Downtime":5555012345,' +
      '"Timestamp":"2024-01-01T12:00:01.234Z"}',
  );
});

Deno.test("short text line of a health check matches the Go sidekick's line byte for byte", () => {
  assert.equal(
    formatShortText(health(), false),
    "   LOG: 03:06:25.805 [200 OK]  http://127.0.0.1:9000 GET /minio/health/cluster" +
      "                   1.406ms      ↑ 0 B ↓ 0 B",
  );
});

Deno.test("short text line of a request: completion time, client, padding, IEC sizes", () => {
  const line = formatShortText(request({ rawQuery: "uploads" }), false);
  // rx = 1000 + (12 + 18 + 17 + 23) + 0 synthesised; tx = "200 OK\n" (7) + etag (4+5+3) + server (6+5+3)
  assert.equal(
    line,
    "   LOG: 03:06:25.805 [200 OK]  http://127.0.0.1:9001 PUT /bucket/object?uploads 10.0.0.7" +
      "          250ms        ↑ 1.0 KiB ↓ 33 B",
  );
  const colored = formatShortText(request({ status: 503 }), true);
  assert.ok(colored.includes("[\x1b[31m503 Service Unavailable\x1b[0m]"));
  const ok = formatShortText(request(), true);
  assert.ok(ok.includes("[\x1b[33m200 OK\x1b[0m]"));
});

Deno.test("µs latency pads by bytes (µ counts 2) and long clients get |15-len| spaces", () => {
  const line = formatShortText(
    request({ latencyMs: 0.25, client: "2001:db8:1234:5678::99", requestHeaders: null }),
    false,
  );
  assert.ok(line.includes(" 2001:db8:1234:5678::99          250µs       ↑"), line);
});

Deno.test("short JSON line: Go key order, ns latency, no HTML escaping", () => {
  const line = formatShortJson(request({ path: "/a<b>", rawQuery: "x=1&y=2" }));
  assert.equal(
    line,
    '{"type":"TRACE","host":"http://127.0.0.1:9001","time":"2024-05-01T03:06:25.805Z",' +
      '"client":"10.0.0.7","callStats":{"rx":1070,"tx":33,"latency":250000000,' +
      '"timetofirstbyte":0,"healthError":null},"statusCode":200,"statusMsg":"OK",' +
      '"method":"PUT","path":"/a<b>","query":"x=1&y=2"}',
  );
  const h = JSON.parse(formatShortJson(health()));
  assert.equal(h.time, "2024-05-01T03:06:25.805Z"); // health checks: the start time
  assert.equal(h.client, "");
  assert.equal(h.callStats.rx, 0);
  assert.equal(h.callStats.tx, 0);
  assert.equal(h.callStats.latency, 1406100);
});

Deno.test("debug text block: prefix on every line, Host first, sorted headers, final prefix", () => {
  const text = formatDebugText(
    request({
      requestHeaders: new Headers({
        host: "s3.local",
        "content-length": "1000",
        authorization: "AWS4-HMAC-SHA256 Credential=AK/2024/us-east-1/s3/aws4_request, " +
          "SignedHeaders=host;x-amz-date, Signature=deadbeef",
        "x-amz-security-token": "SECRET-TOKEN",
      }),
    }),
    false,
  );
  const p = "DEBUG: http://127.0.0.1:9001 ";
  assert.deepEqual(text.split("\n"), [
    `${p}[REQUEST] 03:06:25.555`,
    `${p}PUT /bucket/object`,
    `${p}Host: s3.local`,
    `${p}Authorization: AWS4-HMAC-SHA256 Credential=AK/2024/us-east-1/s3/aws4_request, ` +
    "SignedHeaders=host;x-amz-date, Signature=*REDACTED*",
    `${p}Content-Length: 1000`,
    `${p}X-Amz-Security-Token: *REDACTED*`,
    `${p}<BODY>`,
    `${p}[RESPONSE] [03:06:25.805] [ Duration 250ms  ↑ 1.2 KiB  ↓ 33 B ]`,
    `${p}200 OK`,
    `${p}Etag: "abc"`,
    `${p}Server: MinIO`,
    `${p}<BODY>`,
    p,
  ]);
  assert.ok(!text.includes("deadbeef") && !text.includes("SECRET-TOKEN"));
});

Deno.test("debug text of a health check shows Host and Content-Length: 0 only", () => {
  const lines = formatDebugText(health(), false).split("\n");
  assert.equal(lines[2], "DEBUG: http://127.0.0.1:9000 Host: 127.0.0.1:9000");
  assert.equal(lines[3], "DEBUG: http://127.0.0.1:9000 Content-Length: 0");
  assert.equal(lines[4], "DEBUG: http://127.0.0.1:9000 <BODY>");
});

Deno.test("debug text of sidekick's own 502 shows the transport error as the body", () => {
  const text = formatDebugText(
    request({
      status: 502,
      error: "dial tcp 127.0.0.1:9001: connect: connection refused",
      responseHeaders: new Headers({ "content-type": "application/xml" }),
    }),
    false,
  );
  assert.ok(text.includes("502 Bad Gateway\n"));
  assert.ok(text.includes(" dial tcp 127.0.0.1:9001: connect: connection refused\n"));
});

Deno.test("debug JSON: full record, key order, omitted empties, sorted header keys, redaction", () => {
  const r = request({
    rawQuery: "X-Amz-Signature=abc&partNumber=1",
    requestHeaders: new Headers({
      host: "s3.local",
      "x-b": "2",
      "x-a": "1",
      "x-amz-security-token": "tok",
      "content-length": "5",
    }),
    requestBodyBytes: 5,
  });
  const line = formatDebugJson(r);
  const obj = JSON.parse(line);
  assert.deepEqual(Object.keys(obj), ["type", "nodename", "request", "response", "stats"]);
  assert.equal(obj.type, "DEBUG");
  assert.deepEqual(Object.keys(obj.request), [
    "time",
    "method",
    "path",
    "rawquery",
    "headers",
    "body",
    "client",
  ]);
  assert.deepEqual(Object.keys(obj.request.headers), [
    "Content-Length",
    "Host",
    "X-A",
    "X-Amz-Security-Token",
    "X-B",
  ]);
  assert.deepEqual(obj.request.headers["X-Amz-Security-Token"], ["*REDACTED*"]);
  assert.equal(obj.request.rawquery, "X-Amz-Signature=*REDACTED*&partNumber=1");
  assert.equal(obj.request.body, "<BODY>");
  assert.deepEqual(Object.keys(obj.response), ["time", "headers", "body", "statuscode"]);
  assert.equal(obj.response.statuscode, 200);
  assert.deepEqual(obj.stats, {
    rx: 5 + 12 + 4 + 4 + 23 + 15,
    tx: 33,
    latency: 250_000_000,
    timetofirstbyte: 200_000_000,
    healthError: null,
  });
  const bare = JSON.parse(formatDebugJson(request({ path: "", responseHeaders: null })));
  assert.ok(!("path" in bare.request) && !("rawquery" in bare.request));
  assert.ok(!("headers" in bare.response));
});

Deno.test("formatRecord picks the form from the style", () => {
  const r = request();
  assert.ok(formatRecord(r, plain).startsWith("   LOG: "));
  assert.ok(formatRecord(r, { ...plain, debug: true }).startsWith("DEBUG: "));
  assert.ok(formatRecord(r, { ...plain, json: true }).startsWith('{"type":"TRACE"'));
  assert.ok(formatRecord(r, { ...plain, json: true, debug: true }).startsWith('{"type":"DEBUG"'));
});

Deno.test("traceClient prefers client-supplied forwarding headers", () => {
  assert.equal(traceClient(health()), "");
  assert.equal(traceClient(request()), "10.0.0.7"); // only sidekick's own XFF entry
  const cases: [Record<string, string>, string][] = [
    [{ "x-forwarded-for": "203.0.113.9, 10.0.0.1, 10.0.0.7" }, "203.0.113.9"],
    [{ "x-forwarded-for": "10.0.0.7", "x-real-ip": "198.51.100.2, 10.0.0.7" }, "198.51.100.2"],
    [{ forwarded: 'for="192.0.2.60";proto=http, for=198.51.100.17' }, "192.0.2.60"],
  ];
  // A Headers object, and the plain list the proxy records (read in one pass).
  for (const [init, client] of cases) {
    assert.equal(traceClient(request({ requestHeaders: new Headers(init) })), client);
    assert.equal(traceClient(request({ requestHeaders: Object.entries(init) })), client);
  }
  // A list repeats a header where Headers joins it: the first entry is still the client's.
  const repeated: [string, string][] = [
    ["x-forwarded-for", "203.0.113.9"],
    ["host", "h"],
    ["x-forwarded-for", "10.0.0.7"],
  ];
  assert.equal(traceClient(request({ requestHeaders: repeated })), "203.0.113.9");
});

Deno.test("redaction of Authorization forms, the session token, and presigned query secrets", () => {
  assert.equal(redactHeader("x-amz-security-token", "abc"), "*REDACTED*");
  assert.equal(
    redactHeader("Authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl"),
    "AWS AKIDEXAMPLE:*REDACTED*",
  );
  assert.equal(redactHeader("authorization", "Bearer eyJhbGciOi"), "Bearer *REDACTED*");
  assert.equal(redactHeader("authorization", "opaque"), "*REDACTED*");
  assert.equal(redactHeader("content-type", "text/plain"), "text/plain");
  assert.equal(
    redactQuery("X-Amz-Algorithm=AWS4&X-Amz-Security-Token=t0k&x-amz-signature=ff&a=1"),
    "X-Amz-Algorithm=AWS4&X-Amz-Security-Token=*REDACTED*&x-amz-signature=*REDACTED*&a=1",
  );
  assert.equal(redactQuery("uploads"), "uploads");
});

Deno.test('filters: --quiet, --trace "", application, minio, --errors, --status-code', () => {
  const cfg = (o: Partial<ReturnType<typeof makeConfig>>) => makeConfig({ sites: ["x"], ...o });
  assert.equal(traceFilter(cfg({ quiet: true })), undefined);
  assert.equal(traceFilter(cfg({ trace: "" })), undefined);

  const all = traceFilter(cfg({}))!;
  assert.ok(all(request()) && all(health()));
  assert.ok(!all(health({ status: 0, error: "connection refused" })), "no response: not traced");
  assert.ok(!all(request({ completed: false })), "client went away: not traced");

  const app = traceFilter(cfg({ trace: "application" }))!;
  assert.ok(app(request()) && !app(health()));

  const minio = traceFilter(cfg({ trace: "minio" }))!;
  assert.ok(minio(health()));
  assert.ok(minio(request({ path: "/minio/admin/v3/info" })));
  assert.ok(!minio(request({ path: "/" })));
  assert.ok(!minio(request()));

  const errors = traceFilter(cfg({ errors: true }))!;
  assert.ok(
    !errors(request()) && errors(request({ status: 404 })) && errors(request({ status: 503 })),
  );

  const codes = traceFilter(cfg({ statusCodes: [404, 502] }))!;
  assert.ok(codes(request({ status: 404 })) && codes(request({ status: 502 })));
  assert.ok(!codes(request({ status: 500 })) && !codes(health()));

  const both = traceFilter(cfg({ errors: true, statusCodes: [200, 404] }))!;
  assert.ok(both(request({ status: 404 })) && !both(request()));
});

Deno.test("a retried exchange says which backends failed first, in text and JSON", () => {
  const r = request({
    retried: [{ endpoint: "http://10.0.0.9:9000", reason: "connect", error: "connection refused" }],
  });
  assert.match(
    formatShortText(r, false),
    / \(after 1 failed attempt: http:\/\/10\.0\.0\.9:9000 connect: connection refused\)$/,
  );
  for (const line of [formatShortJson(r), formatDebugJson(r)]) {
    const json = JSON.parse(line);
    assert.equal(json.attempts, 2);
    assert.deepEqual(json.failedBackends, r.retried);
  }
  // A first-attempt exchange keeps the Go sidekick's fields only.
  assert.equal(JSON.parse(formatShortJson(request())).attempts, undefined);
  assert.ok(!formatShortText(request(), false).includes("failed attempt"));
});

Deno.test("a hedged exchange says where the hedge went and which attempt won, in text and JSON", () => {
  const hedge = { endpoint: "http://10.0.0.8:9000", primary: "http://10.0.0.9:9000", won: true };
  const r = request({ hedge });
  assert.match(
    formatShortText(r, false),
    / \(hedged: http:\/\/10\.0\.0\.9:9000 had not answered, http:\/\/10\.0\.0\.8:9000 too; the hedge answered first\)$/,
  );
  for (const line of [formatShortJson(r), formatDebugJson(r)]) {
    assert.deepEqual(JSON.parse(line).hedge, hedge);
  }
  const lost = request({ hedge: { ...hedge, won: false } });
  assert.match(formatShortText(lost, false), /the first attempt answered first\)$/);
  const timedOut = request({
    status: 200,
    retried: [{
      endpoint: "http://10.0.0.9:9000",
      reason: "timeout",
      error: "no response headers within --response-timeout",
    }],
  });
  assert.match(
    formatShortText(timedOut, false),
    /after 1 failed attempt: http:\/\/10\.0\.0\.9:9000 timeout: no response headers within --response-timeout\)$/,
  );
});

Deno.test("a body broken off: a marker in every form; printed when the backend broke it, not the client", () => {
  const r = request({
    method: "GET",
    responseHeaders: new Headers({ "content-length": String(1 << 20) }),
    responseBodyBytes: 256 * 1024,
    completed: false,
    aborted: "backend",
    error: "error reading a body from connection",
  });
  assert.match(
    formatShortText(r, false),
    / ↓ 256 KiB {2}\(aborted by the backend after 256 KiB of 1\.0 MiB: error reading a body from connection\)$/,
  );
  for (const line of [formatShortJson(r), formatDebugJson(r)]) {
    const json = JSON.parse(line);
    assert.equal(json.aborted, "backend");
    assert.equal(json.error, "error reading a body from connection");
  }
  assert.match(
    formatDebugText(r, false),
    /<BODY> {2}\(aborted by the backend after 256 KiB of 1\.0 MiB/,
  );
  // Unknown length: no "of …"; no error text: no ": …".
  const chunked = request({ responseBodyBytes: 100, completed: false, aborted: "client" });
  assert.match(formatShortText(chunked, false), / {2}\(aborted by the client after 100 B\)$/);
  const all = traceFilter(makeConfig({ sites: ["http://x"] }))!;
  assert.ok(all(r), "a break by the backend is printed");
  assert.ok(!all(chunked), "a client that went away is not");
  assert.ok(!all(request({ completed: false, aborted: "shutdown" })));
  const errors = traceFilter(makeConfig({ sites: ["http://x"], errors: true }))!;
  assert.ok(errors(r), "--errors keeps a 200 whose body the backend broke off");
  // A whole exchange has none of it.
  assert.equal(JSON.parse(formatShortJson(request())).aborted, undefined);
  assert.ok(!formatShortText(request(), false).includes("aborted"));
});
