/**
 * The upstream transport: every path (fetch with an HttpClient, fetch pinned to a DNS-cache
 * address, Node https pinned, Node https --insecure, Node https with an rr-dns TLS name) passes
 * the same conformance checks; TLS failures are classified with the problem named; the backend
 * TLS files are validated with one-line errors.
 */
import assert from "node:assert/strict";
import { DnsCache } from "../lib/upstream/dns.ts";
import { classifyFetchError, type Failure, tlsProblem } from "../lib/upstream/fetch_errors.ts";
import {
  type BackendTransport,
  createTransport,
  envProxyApplies,
  noProxyMatches,
  type TransportOptions,
} from "../lib/upstream/transport.ts";
import { loadBackendTls } from "../lib/tls/backend_tls.ts";
import { closedPort, digestStream, patternStream, startBackend } from "./helpers/backends.ts";
import { testCerts } from "./helpers/certs.ts";
import { startHttpsBackend, startMtlsBackend } from "./helpers/tls_backends.ts";

const certs = await testCerts();
const pem = (path: string) => certs.read(path);
const CA = pem(certs.ca);

/** A DNS cache answering from a fixed table (no system resolver involved). */
function fakeDns(table: Record<string, string[]>): DnsCache & { calls: string[] } {
  const calls: string[] = [];
  const cache = new DnsCache({
    ttlMs: 60_000,
    resolver: (host) => {
      calls.push(host);
      const answer = table[host];
      return answer ? Promise.resolve(answer) : Promise.reject(new Error("no such host"));
    },
  });
  return Object.assign(cache, { calls });
}

async function failure(p: Promise<Response>): Promise<Failure> {
  try {
    const res = await p;
    await res.body?.cancel();
  } catch (e) {
    return classifyFetchError(e);
  }
  throw new Error("expected the request to fail");
}

interface Path {
  name: string;
  /** Starts backends and a transport; `base` is the URL prefix the transport is asked for. */
  setup(): Promise<
    { transport: BackendTransport; base: string; https: boolean; close(): Promise<void> }
  >;
}

const serverPair = () => ({ cert: pem(certs.serverCert), key: pem(certs.serverKey) });

const PATHS: Path[] = [
  {
    name: "fetch, http IP",
    async setup() {
      const b = await startBackend("b1", { healthPath: "/health" });
      const transport = createTransport({});
      return { transport, base: b.url, https: false, close: b.close };
    },
  },
  {
    name: "fetch to the cached address of an http hostname",
    async setup() {
      const b = await startBackend("b1", { healthPath: "/health" });
      const transport = createTransport({ dns: fakeDns({ "svc.test": ["127.0.0.1"] }) });
      return { transport, base: `http://svc.test:${b.port}`, https: false, close: b.close };
    },
  },
  {
    name: "fetch, https IP with --cacert",
    async setup() {
      const b = await startHttpsBackend("b1", serverPair());
      const transport = createTransport({ tls: { caCerts: [CA] } });
      return {
        transport,
        base: `https://127.0.0.1:${b.port}`,
        https: true,
        close: () => (b.openGate(), b.close()),
      };
    },
  },
  {
    name: "node https pinned to the DNS cache, hostname verified",
    async setup() {
      const b = await startHttpsBackend("b1", serverPair());
      const dns = fakeDns({ localhost: ["127.0.0.1"] });
      const transport = createTransport({ tls: { caCerts: [CA] }, dns });
      return { transport, base: b.url, https: true, close: () => (b.openGate(), b.close()) };
    },
  },
  {
    name: "node https --insecure, self-signed backend",
    async setup() {
      const b = await startHttpsBackend("b1", {
        cert: pem(certs.selfCert),
        key: pem(certs.selfKey),
      });
      const transport = createTransport({ tls: { insecure: true } });
      return { transport, base: b.url, https: true, close: () => (b.openGate(), b.close()) };
    },
  },
  {
    name: "node https to an rr-dns address, verified against the original hostname",
    async setup() {
      // The certificate names only other.test: verification against 127.0.0.1 would fail.
      const b = await startHttpsBackend("b1", {
        cert: pem(certs.otherCert),
        key: pem(certs.otherKey),
      });
      const transport = createTransport({ tls: { caCerts: [CA] } });
      transport.addServerNames(new Map([["127.0.0.1", "other.test"]]));
      return {
        transport,
        base: `https://127.0.0.1:${b.port}`,
        https: true,
        close: () => (b.openGate(), b.close()),
      };
    },
  },
];

for (const path of PATHS) {
  Deno.test(`transport [${path.name}]: Host, headers, streamed upload and download`, async () => {
    const { transport, base, https, close } = await path.setup();
    try {
      // The caller's Host goes out unchanged; repeated response headers stay separate.
      const echo = await transport.fetch(`${base}/echo?q=1`, {
        method: "GET",
        headers: { host: "client.example:8080", "x-custom": "v" },
        redirect: "manual",
      });
      assert.equal(echo.status, 200);
      const seen = await echo.json();
      assert.equal(seen.headers.host, "client.example:8080");
      assert.equal(seen.headers["x-custom"], "v");

      const plain = await transport.fetch(`${base}/`, { redirect: "manual" });
      assert.deepEqual(plain.headers.getSetCookie(), https ? ["a=1", "b=2"] : ["a=1"]);
      await plain.body?.cancel();

      // Upload: a stream of unknown length, arriving intact.
      const size = 4 * 1024 * 1024;
      const expected = await digestStream(patternStream(size, 3));
      const up = await transport.fetch(`${base}/echo`, {
        method: "PUT",
        body: patternStream(size, 3),
        redirect: "manual",
      });
      const upSeen = await up.json();
      assert.equal(upSeen.bodyBytes, size);
      assert.equal(upSeen.bodySha256, expected.sha256);

      // Download: 8 MiB with its Content-Length, byte for byte.
      const big = 8 * 1024 * 1024;
      const down = await transport.fetch(`${base}/big?size=${big}`, { redirect: "manual" });
      assert.equal(down.headers.get("content-length"), String(big));
      const got = await digestStream(down.body);
      assert.equal(got.bytes, big);
      assert.equal(got.sha256, (await digestStream(patternStream(big))).sha256);

      // HEAD has no body.
      const head = await transport.fetch(`${base}/`, { method: "HEAD", redirect: "manual" });
      assert.equal(head.body, null);
    } finally {
      transport.close();
      await close();
    }
  });
}

for (const path of PATHS.filter((p) => p.name.includes("https"))) {
  Deno.test(`transport [${path.name}]: bodies stream, aborts reach the body, redirects`, async () => {
    const { transport, base, close } = await path.setup();
    try {
      // The first chunk arrives while the backend still holds the rest back.
      const gated = await transport.fetch(`${base}/gate`, { redirect: "manual" });
      const reader = gated.body!.getReader();
      const first = await reader.read();
      assert.equal(new TextDecoder().decode(first.value), "first");
      reader.releaseLock();

      // Aborting mid-body errors the stream with the abort reason.
      const controller = new AbortController();
      const held = await transport.fetch(`${base}/gate`, {
        redirect: "manual",
        signal: controller.signal,
      });
      const r2 = held.body!.getReader();
      await r2.read();
      controller.abort("stop now");
      await assert.rejects(r2.read(), (e) => e === "stop now");

      // An already aborted signal rejects with its reason before anything is sent.
      const gone = new AbortController();
      gone.abort("gone");
      await assert.rejects(
        transport.fetch(`${base}/echo`, { signal: gone.signal }),
        (e) => e === "gone",
      );

      // Redirects: manual returns them, follow follows them.
      const manual = await transport.fetch(`${base}/redirect`, { redirect: "manual" });
      assert.equal(manual.status, 302);
      assert.equal(manual.headers.get("location"), "/echo");
      await manual.body?.cancel();
      const follow = await transport.fetch(`${base}/redirect`, { redirect: "follow" });
      assert.equal(follow.status, 200);
      assert.equal((await follow.json()).path, "/echo");

      await gated.body!.cancel();
    } finally {
      transport.close();
      await close();
    }
  });
}

/** TLS failures, through the fetch path (no DNS cache) and the Node path (DNS cache). */
const TLS_CASES: {
  name: string;
  cert: string;
  key: string;
  problem: string;
  phrase: RegExp;
  options?: Partial<TransportOptions["tls"]>;
}[] = [
  {
    name: "no --cacert for a private CA",
    cert: certs.serverCert,
    key: certs.serverKey,
    problem: "unknown-ca",
    phrase: /unknown authority/,
    options: {},
  },
  {
    name: "self-signed certificate",
    cert: certs.selfCert,
    key: certs.selfKey,
    problem: "unknown-ca",
    phrase: /unknown authority/,
  },
  {
    name: "certificate for another name",
    cert: certs.otherCert,
    key: certs.otherKey,
    problem: "name-mismatch",
    phrase: /not valid for its name/,
  },
  {
    name: "expired certificate",
    cert: certs.expiredCert,
    key: certs.serverKey,
    problem: "expired",
    phrase: /has expired/,
  },
];

for (const c of TLS_CASES) {
  for (const viaNode of [false, true]) {
    Deno.test(`TLS failure [${c.name}] via ${viaNode ? "node https" : "fetch"}: marks down, says which`, async () => {
      const b = await startHttpsBackend("b1", { cert: pem(c.cert), key: pem(c.key) });
      const transport = createTransport({
        tls: c.options ?? { caCerts: [CA] },
        dns: viaNode ? fakeDns({ localhost: ["127.0.0.1"] }) : undefined,
      });
      try {
        const f = await failure(transport.fetch(`${b.url}/`, {}));
        assert.equal(f.kind, "tls", f.message);
        assert.equal(f.tls, c.problem, f.message);
        assert.match(f.message, c.phrase);
        assert.equal(f.marksDown, true);
      } finally {
        transport.close();
        await b.close();
      }
    });
  }
}

Deno.test("TLS failure: a plain HTTP backend on an https URL is named as such", async () => {
  const b = await startBackend("plain");
  for (const dns of [undefined, fakeDns({ localhost: ["127.0.0.1"] })]) {
    const transport = createTransport({ dns });
    try {
      const f = await failure(transport.fetch(`https://localhost:${b.port}/`, {}));
      assert.equal(f.kind, "tls", f.message);
      assert.equal(f.tls, "not-tls", f.message);
    } finally {
      transport.close();
    }
  }
  await b.close();
});

Deno.test("mTLS: with --client-cert the backend sees the client; without it the reason says so", async () => {
  const m = await startMtlsBackend("m1", { ...serverPair(), ca: CA });
  const withCert = {
    caCerts: [CA],
    cert: pem(certs.clientCert),
    key: pem(certs.clientKey),
  };
  try {
    for (const dns of [undefined, fakeDns({ localhost: ["127.0.0.1"] })]) {
      const ok = createTransport({ tls: withCert, dns });
      const res = await ok.fetch(`${m.url}/`, {});
      assert.equal(await res.text(), "m1 sidekick client");
      ok.close();

      const none = createTransport({ tls: { caCerts: [CA] }, dns });
      const f = await failure(none.fetch(`${m.url}/`, {}));
      assert.equal(f.kind, "tls", f.message);
      assert.equal(f.tls, "client-cert-required", f.message);
      assert.match(f.message, /requires a client certificate/);
      none.close();

      const stranger = createTransport({
        tls: { caCerts: [CA], cert: pem(certs.strangerCert), key: pem(certs.strangerKey) },
        dns,
      });
      // This backend (node:tls) hangs up without a TLS alert, so all either path can tell is
      // a failed handshake or a reset; what matters is the backend goes DOWN.
      const s = await failure(stranger.fetch(`${m.url}/`, {}));
      assert.ok(s.kind === "tls" || s.kind === "reset", s.message);
      assert.equal(s.marksDown, true);
      stranger.close();
    }
  } finally {
    await m.close();
  }
});

Deno.test("connect failures: refused and unresolvable are safe to retry, on both paths", async () => {
  const port = closedPort();
  const dns = fakeDns({ localhost: ["127.0.0.1"] });
  const t = createTransport({ tls: { insecure: true }, dns });
  try {
    for (
      const url of [
        `http://127.0.0.1:${port}/`,
        `http://localhost:${port}/`,
        `https://localhost:${port}/`,
      ]
    ) {
      const f = await failure(t.fetch(url, {}));
      assert.equal(f.kind, "refused", `${url}: ${f.message}`);
      assert.equal(f.beforeSend, true);
    }
    for (const url of [`http://gone.test:${port}/`, `https://gone.test:${port}/`]) {
      const f = await failure(t.fetch(url, {}));
      assert.equal(f.kind, "dns", `${url}: ${f.message}`);
      assert.match(f.message, /gone\.test/);
      assert.equal(f.beforeSend, true);
    }
  } finally {
    t.close();
  }
});

Deno.test("DNS cache: first reachable address wins, the good one is tried first next time", async () => {
  const b = await startBackend("b1");
  const h = await startHttpsBackend("h1", serverPair());
  // 127.0.0.2 is loopback too, but nothing listens there on these ports.
  const dns = fakeDns({
    "svc.test": ["127.0.0.2", "127.0.0.1"],
    localhost: ["127.0.0.2", "127.0.0.1"],
  });
  const t = createTransport({ tls: { caCerts: [CA] }, dns });
  try {
    for (let i = 0; i < 2; i++) {
      const res = await t.fetch(`http://svc.test:${b.port}/`, {});
      assert.equal(await res.text(), "b1");
      const tlsRes = await t.fetch(`${h.url}/`, {});
      assert.equal(await tlsRes.text(), "h1");
    }
    assert.deepEqual(dns.calls.sort(), ["localhost", "svc.test"], "one lookup per hostname");
  } finally {
    t.close();
    await b.close();
    await h.close();
  }
});

/** A raw HTTP/1.1 server that records each request head and answers `reply(head)`. */
function rawServer(reply: (head: string) => string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        let text = "";
        while (!text.includes("\r\n\r\n")) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) return;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        const head = text.slice(0, text.indexOf("\r\n\r\n"));
        heads.push(head);
        await conn.write(new TextEncoder().encode(reply(head))).catch(() => {});
        conn.close();
        conns.delete(conn);
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    heads,
    close: async () => {
      listener.close();
      for (const c of conns) c.close();
      await done.catch(() => {});
    },
  };
}

Deno.test("DNS cache, http: origin-form request line, Host = the name or the caller's", async () => {
  const raw = rawServer(() =>
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
  );
  const t = createTransport({ dns: fakeDns({ "svc.test": ["127.0.0.1"] }) });
  try {
    await (await t.fetch(`http://svc.test:${raw.port}/a/b?c=d`, {})).text();
    await (await t.fetch(`http://svc.test:${raw.port}/x`, { headers: { host: "s3.example" } }))
      .text();
    const [health, proxied] = raw.heads.map((h) => h.split("\r\n"));
    // Not `GET http://svc.test:…/a/b?c=d`: Go servers would take the Host from such a URL.
    assert.equal(health[0], "GET /a/b?c=d HTTP/1.1");
    assert.ok(health.includes(`host: svc.test:${raw.port}`), health.join("\n"));
    assert.equal(proxied[0], "GET /x HTTP/1.1");
    assert.ok(proxied.includes("host: s3.example"), proxied.join("\n"));
  } finally {
    t.close();
    await raw.close();
  }
});

Deno.test("DNS cache, http: a relative redirect stays on the name (and its cached address)", async () => {
  const raw = rawServer((head) =>
    head.startsWith("GET /start ")
      ? "HTTP/1.1 302 Found\r\nlocation: /final\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
      : "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfinal"
  );
  const t = createTransport({ dns: fakeDns({ "svc.test": ["127.0.0.1"] }) });
  try {
    const manual = await t.fetch(`http://svc.test:${raw.port}/start`, { redirect: "manual" });
    assert.equal(manual.status, 302);
    await manual.body?.cancel();
    const followed = await t.fetch(`http://svc.test:${raw.port}/start`, {});
    assert.equal(await followed.text(), "final");
    const last = raw.heads.at(-1)!.split("\r\n");
    assert.equal(last[0], "GET /final HTTP/1.1");
    assert.ok(last.includes(`host: svc.test:${raw.port}`), last.join("\n"));
  } finally {
    t.close();
    await raw.close();
  }
});

Deno.test("DNS cache: a request with a body fails on a dead address; the next one moves on", async () => {
  const b = await startBackend("b1");
  const dns = fakeDns({ "svc.test": ["127.0.0.2", "127.0.0.1"] });
  const t = createTransport({ dns });
  try {
    const f = await failure(t.fetch(`http://svc.test:${b.port}/echo`, {
      method: "PUT",
      body: patternStream(1000),
    }));
    assert.equal(f.kind, "refused");
    const res = await t.fetch(`http://svc.test:${b.port}/echo`, {
      method: "PUT",
      body: patternStream(1000),
    });
    assert.equal((await res.json()).bodyBytes, 1000);
  } finally {
    t.close();
    await b.close();
  }
});

Deno.test("proxy from the environment: hostnames are not pinned, the proxy resolves them", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  const u = new URL("http://minio1:9000/");
  const s = new URL("https://minio1.svc.cluster.local:9000/");
  assert.equal(envProxyApplies(u, env({})), false);
  assert.equal(envProxyApplies(u, env({ HTTP_PROXY: "http://p:3128" })), true);
  assert.equal(envProxyApplies(u, env({ http_proxy: "http://p:3128" })), true);
  assert.equal(envProxyApplies(s, env({ HTTP_PROXY: "http://p:3128" })), false);
  assert.equal(envProxyApplies(s, env({ HTTPS_PROXY: "http://p:3128" })), true);
  assert.equal(envProxyApplies(s, env({ ALL_PROXY: "socks5://p:1080" })), true);
  assert.equal(
    envProxyApplies(s, env({ HTTPS_PROXY: "http://p:3128", NO_PROXY: ".cluster.local" })),
    false,
  );
  assert.equal(
    envProxyApplies(u, env({ HTTP_PROXY: "http://p:3128", REQUEST_METHOD: "GET" })),
    false,
    "Deno ignores HTTP_PROXY under CGI",
  );
  assert.equal(noProxyMatches("*", "x"), true);
  assert.equal(noProxyMatches("example.com", "a.example.com"), true);
  assert.equal(noProxyMatches("example.com", "notexample.com"), false);
  assert.equal(noProxyMatches(" a , b ", "b"), true);
});

Deno.test("proxy from the environment: the DNS cache is not consulted", async () => {
  const dns = fakeDns({ "svc.test": ["127.0.0.1"] });
  const t = createTransport({
    dns,
    env: (n) => (n === "HTTP_PROXY" ? "http://127.0.0.1:9" : undefined),
  });
  try {
    await failure(t.fetch("http://svc.test:1234/", {}));
    assert.deepEqual(dns.calls, []);
  } finally {
    t.close();
  }
});

Deno.test("classification of Node path texts", () => {
  const node = (code: string, message: string) =>
    classifyFetchError(
      new TypeError("fetch failed", {
        cause: new Error(`error sending request for url (https://h/): ${code}: ${message}`),
      }),
    );
  assert.equal(node("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:9000").kind, "refused");
  assert.equal(node("EHOSTUNREACH", "connect EHOSTUNREACH 10.0.0.1:9000").kind, "refused");
  assert.equal(node("ENOTFOUND", "lookup h: no such host").kind, "dns");
  assert.equal(node("ECONNRESET", "read ECONNRESET").kind, "reset");
  assert.equal(node("ECONNRESET", "socket hang up").kind, "reset");
  assert.equal(classifyFetchError(new Error("socket hang up")).kind, "closed");
  assert.equal(node("ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:9000").kind, "timeout");
  assert.equal(node("CERT_HAS_EXPIRED", "certificate has expired").tls, "expired");
  assert.equal(
    node("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames").tls,
    "name-mismatch",
  );
  assert.equal(
    node("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate").tls,
    "unknown-ca",
  );
  assert.equal(node("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate").tls, "unknown-ca");
  assert.equal(node("CERT_NOT_YET_VALID", "certificate is not yet valid").tls, "not-yet-valid");
  assert.equal(
    classifyFetchError(
      new TypeError("fetch failed", { cause: new Error("error from user's Body stream: boom") }),
    ).kind,
    "client",
  );
});

Deno.test("classification of rustls texts (fetch path, Deno 2.9.6)", () => {
  const cases: [string, string][] = [
    ["invalid peer certificate: UnknownIssuer", "unknown-ca"],
    ["invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))", "unknown-ca"],
    [
      'invalid peer certificate: certificate not valid for name "localhost"; certificate is only valid for DnsName("other.test")',
      "name-mismatch",
    ],
    [
      "invalid peer certificate: certificate expired: verification time 1795320146 (UNIX), but certificate is not valid after 1580515200 (214804946 seconds ago)",
      "expired",
    ],
    ["received fatal alert: CertificateRequired", "client-cert-required"],
    ["received fatal alert: BadCertificate", "client-cert-rejected"],
    ["received corrupt message of type InvalidContentType", "not-tls"],
    ["peer closed connection without sending TLS close_notify", "handshake"],
  ];
  for (const [text, problem] of cases) {
    assert.equal(tlsProblem(text).problem, problem, text);
    const f = classifyFetchError(
      new TypeError("fetch failed", {
        cause: new Error(
          `error sending request for url (https://h:1/): client error (Connect): ${text}`,
        ),
      }),
    );
    assert.equal(f.kind, "tls", text);
    assert.equal(f.tls, problem, text);
    assert.ok(f.message.endsWith(text), f.message);
  }
});

Deno.test("loadBackendTls: good files load; every bad file is one line naming flag and file", () => {
  const flags = { cacert: "", clientCert: "", clientKey: "", insecure: false };
  const good = loadBackendTls({
    ...flags,
    cacert: certs.ca,
    clientCert: certs.clientCert,
    clientKey: certs.clientKey,
  });
  assert.ok(good.ok);
  assert.equal(good.value.caCerts.length, 1);
  assert.match(good.value.cert, /BEGIN CERTIFICATE/);
  assert.ok(loadBackendTls({ ...flags, insecure: true }).ok);

  const bad = (f: Partial<typeof flags>, re: RegExp, files: Record<string, string> = {}) => {
    const r = loadBackendTls({ ...flags, ...f }, (p) => {
      if (p in files) return files[p];
      return Deno.readTextFileSync(p);
    });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.error, re);
    assert.ok(!r.error.includes("\n"), "one line");
  };
  bad(
    { cacert: "/nonexistent/ca.pem" },
    /^--cacert: unable to load CA certificate "\/nonexistent\/ca.pem": no such file$/,
  );
  bad({ cacert: certs.dir }, /^--cacert: unable to load CA certificate ".*": is a directory$/);
  bad(
    { cacert: certs.clientKey },
    /^--cacert: ".*client\.key" is not a valid certificate: no PEM CERTIFICATE block/,
  );
  bad(
    { cacert: "garbage.pem" },
    /^--cacert: "garbage\.pem" is not a valid certificate: /,
    { "garbage.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" },
  );
  bad({ clientCert: certs.clientCert }, /--client-cert and --client-key must be given together/);
  bad(
    { clientCert: "/nonexistent/c.pem", clientKey: certs.clientKey },
    /^--client-cert: unable to load client certificate "\/nonexistent\/c.pem": no such file$/,
  );
  bad(
    { clientCert: certs.clientCert, clientKey: "/nonexistent/k.pem" },
    /^--client-key: unable to load client key "\/nonexistent\/k.pem": no such file$/,
  );
  bad(
    { clientCert: certs.clientKey, clientKey: certs.clientKey },
    /^--client-cert: ".*client\.key" holds no PEM CERTIFICATE block$/,
  );
  bad(
    { clientCert: certs.clientCert, clientKey: certs.clientCert },
    /^--client-key: ".*client\.pem" holds no PEM private key$/,
  );
  bad(
    { clientCert: certs.clientCert, clientKey: certs.serverKey },
    /^--client-cert\/--client-key: ".*client\.pem" and ".*server\.key" are not a valid key pair: /,
  );
  bad(
    { clientCert: certs.clientCert, clientKey: "enc.key" },
    /^--client-key: "enc\.key" is encrypted; give an unencrypted key/,
    {
      "enc.key":
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    },
  );
});
