/**
 * Backend-side TLS end to end: `--cacert`, `--insecure` (the `node:https` path, same code in
 * `deno run` and in a compiled binary), mTLS with `--client-cert/--client-key`, TLS failures
 * marking backends DOWN with the reason, and every bad file → exit 2 naming flag and file.
 * Certificates are generated with openssl at test time (tests/helpers/certs.ts).
 */
import assert from "node:assert/strict";
import { makeConfig } from "../../lib/config/config.ts";
import { ConfigError, createSidekick } from "../../lib/control/sidekick.ts";
import { digestStream, patternStream, waitFor } from "../helpers/backends.ts";
import { testCerts } from "../helpers/certs.ts";
import { runSidekick, startSidekick } from "../helpers/sidekick_process.ts";
import { startHttpsBackend, startMtlsBackend } from "../helpers/tls_backends.ts";

const certs = await testCerts();
const pem = certs.read;
const serverPair = { cert: pem(certs.serverCert), key: pem(certs.serverKey) };
const HEALTH = ["--health-path", "/health", "--read-health-path", "/health"];

/** A fetch that may set Host (Deno drops it otherwise). */
async function getWithHost(url: string, host: string): Promise<Response> {
  using client = Deno.createHttpClient({ allowHost: true });
  const res = await fetch(url, { headers: { host }, client });
  return new Response(await res.arrayBuffer(), res);
}

Deno.test("e2e: https backend with --cacert is proxied, client's Host kept", async () => {
  const b = await startHttpsBackend("tls1", serverPair);
  const sk = await startSidekick(["--cacert", certs.ca, ...HEALTH, b.url]);
  try {
    await sk.waitHealthy();
    const res = await getWithHost(`${sk.url}/obj?x=1`, "bucket.s3.example");
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "tls1");
    const seen = b.seen.at(-1)!;
    assert.equal(seen.path, "/obj?x=1");
    assert.equal(seen.headers.get("host"), "bucket.s3.example");
  } finally {
    await sk.stop();
    await b.close();
  }
});

/** In-process: the reason a backend is DOWN after its first check. */
async function downReason(
  site: string,
  extra: Partial<Parameters<typeof makeConfig>[0]> = {},
): Promise<string> {
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [site],
      healthPath: "/health",
      readHealthPath: "/health",
      ...extra,
    }),
  );
  try {
    await sk.start();
    await sk.ready();
    const [backend] = sk.pool.backends;
    assert.equal(backend.up, false);
    return backend.lastError;
  } finally {
    await sk.stop();
  }
}

Deno.test("TLS failures mark the backend DOWN with a reason that says which", async () => {
  const cases = [
    { what: "no --cacert", pair: serverPair, cacert: "", re: /unknown authority.*--cacert/ },
    {
      what: "name mismatch",
      pair: { cert: pem(certs.otherCert), key: pem(certs.otherKey) },
      cacert: certs.ca,
      re: /not valid for its name/,
    },
    {
      what: "expired",
      pair: { cert: pem(certs.expiredCert), key: pem(certs.serverKey) },
      cacert: certs.ca,
      re: /has expired/,
    },
  ];
  for (const c of cases) {
    const b = await startHttpsBackend("b", c.pair);
    try {
      // An IP endpoint goes through fetch, a hostname endpoint through node:https.
      for (const host of ["127.0.0.1", "localhost"]) {
        const reason = await downReason(`https://${host}:${b.port}`, { cacert: c.cacert });
        assert.match(reason, c.re, `${c.what} via ${host}: ${reason}`);
        assert.match(reason, /^TLS: /);
      }
    } finally {
      await b.close();
    }
  }
});

Deno.test("e2e: a backend whose certificate turns bad goes DOWN with the reason in the log", async () => {
  let b = await startHttpsBackend("tls1", serverPair);
  const port = b.port;
  const sk = await startSidekick([
    "--cacert",
    certs.ca,
    "--log",
    "--health-duration",
    "100ms",
    ...HEALTH,
    `https://localhost:${port}`,
  ]);
  try {
    await sk.waitHealthy();
    await b.close();
    // Same port, same name, now an expired certificate.
    b = await startHttpsBackend("tls1", {
      cert: pem(certs.expiredCert),
      key: pem(certs.serverKey),
      port,
    });
    const line = await sk.waitForLine(/is down: TLS: backend certificate has expired/);
    assert.match(line, new RegExp(`https://localhost:${port}`));
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("e2e: --insecure against a self-signed backend: warning, streaming both ways, headers, Host", async () => {
  const b = await startHttpsBackend("self1", {
    cert: pem(certs.selfCert),
    key: pem(certs.selfKey),
  });
  const sk = await startSidekick(["--insecure", ...HEALTH, b.url]);
  try {
    await waitFor(
      () => sk.stderr.some((l) => /WARNING: --insecure: .*NOT verified/.test(l)),
      "the --insecure warning",
    );
    await sk.waitHealthy();

    // Upload with a fixed length: Content-Length reaches the backend, body intact.
    const size = 32 * 1024 * 1024;
    const parts: Uint8Array[] = [];
    for await (const c of patternStream(size, 5)) parts.push(c);
    const expected = await digestStream(patternStream(size, 5));
    const up = await fetch(`${sk.url}/echo`, {
      method: "PUT",
      body: new Blob(parts as BlobPart[]),
    });
    const echo = await up.json();
    assert.equal(echo.bodyBytes, size);
    assert.equal(echo.bodySha256, expected.sha256);
    const seen = b.seen.at(-1)!;
    assert.equal(seen.headers.get("content-length"), String(size));
    assert.equal(seen.headers.has("transfer-encoding"), false);

    // Download: 32 MiB, byte for byte, with its length.
    const down = await fetch(`${sk.url}/big?size=${size}`);
    assert.equal(down.headers.get("content-length"), String(size));
    const got = await digestStream(down.body);
    assert.equal(got.bytes, size);
    assert.equal(got.sha256, (await digestStream(patternStream(size))).sha256);

    // Streaming: the first chunk reaches the client while the backend holds the rest.
    const gated = await fetch(`${sk.url}/gate`);
    const reader = gated.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "first");
    b.openGate();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    assert.equal(rest, "second");

    // Headers both ways; the client's Host is what the backend sees.
    const plain = await getWithHost(`${sk.url}/k`, "bucket.example:9000");
    assert.equal(await plain.text(), "self1");
    assert.deepEqual(plain.headers.getSetCookie(), ["a=1", "b=2"]);
    assert.equal(plain.headers.get("x-backend"), "self1");
    assert.equal(plain.headers.get("x-proxy"), "true");
    assert.equal(b.seen.at(-1)!.headers.get("host"), "bucket.example:9000");
  } finally {
    b.openGate();
    await sk.stop();
    await b.close();
  }
});

Deno.test("e2e: mTLS backend: with --client-cert it answers; without, it stays DOWN and says why", async () => {
  const m = await startMtlsBackend("m1", { ...serverPair, ca: pem(certs.ca) });
  const sk = await startSidekick([
    "--cacert",
    certs.ca,
    "--client-cert",
    certs.clientCert,
    "--client-key",
    certs.clientKey,
    m.url,
  ]);
  try {
    await sk.waitHealthy();
    const res = await fetch(`${sk.url}/x`);
    assert.equal(await res.text(), "m1 sidekick client");
    assert.equal(m.clients.at(-1), "sidekick client");
  } finally {
    await sk.stop();
  }
  try {
    for (const site of [m.url, `https://127.0.0.1:${m.port}`]) {
      const reason = await downReason(site, { cacert: certs.ca });
      assert.match(reason, /requires a client certificate.*--client-cert/, reason);
    }
  } finally {
    await m.close();
  }
});

Deno.test("e2e: every bad backend TLS file → exit 2, one line naming the flag and the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sidekick-badtls-" });
  const encrypted = `${dir}/encrypted.key`;
  const out = await new Deno.Command("openssl", {
    args: [
      "pkcs8",
      "-topk8",
      "-in",
      certs.clientKey,
      "-out",
      encrypted,
      "-v2",
      "aes-256-cbc",
      "-passout",
      "pass:secret",
    ],
    stderr: "null",
  }).output();
  assert.ok(out.success);
  const notPem = `${dir}/not.pem`;
  await Deno.writeTextFile(notPem, "hello\n");
  const site = "https://127.0.0.1:9";
  const cases: [string[], RegExp][] = [
    [["--cacert", "/nonexistent/ca.pem"], /--cacert: .*"\/nonexistent\/ca\.pem": no such file/],
    [["--cacert", notPem], /--cacert: ".*not\.pem" is not a valid certificate/],
    [["--cacert", dir], /--cacert: .*sidekick-badtls-.*": is a directory/],
    [
      ["--client-cert", "/nonexistent/c.pem", "--client-key", certs.clientKey],
      /--client-cert: .*"\/nonexistent\/c\.pem": no such file/,
    ],
    [
      ["--client-cert", certs.clientCert, "--client-key", "/nonexistent/k.pem"],
      /--client-key: .*"\/nonexistent\/k\.pem": no such file/,
    ],
    [
      ["--client-cert", notPem, "--client-key", certs.clientKey],
      /--client-cert: ".*not\.pem" holds no PEM CERTIFICATE block/,
    ],
    [
      ["--client-cert", certs.clientCert, "--client-key", notPem],
      /--client-key: ".*not\.pem" holds no PEM private key/,
    ],
    [
      ["--client-cert", certs.clientCert, "--client-key", certs.serverKey],
      /--client-cert\/--client-key: ".*client\.pem" and ".*server\.key" are not a valid key pair/,
    ],
    [
      ["--client-cert", certs.clientCert, "--client-key", encrypted],
      /--client-key: ".*encrypted\.key" is encrypted/,
    ],
    [["--client-cert", certs.clientCert], /--client-cert: given without --client-key/],
  ];
  try {
    for (const [args, re] of cases) {
      const r = await runSidekick([...args, site]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backend TLS files are read at start even when every site is http (unlike Go)", () => {
  for (
    const files of [
      { cacert: "/nonexistent" },
      { clientCert: "/nonexistent/c.pem", clientKey: "/nonexistent/k.pem" },
    ]
  ) {
    for (const sites of [["http://127.0.0.1:9"], ["http://127.0.0.1:9", "https://127.0.0.1:9"]]) {
      assert.throws(
        () => createSidekick(makeConfig({ address: "127.0.0.1:0", sites, ...files })),
        (e) => e instanceof ConfigError && /^--(cacert|client-cert): .*nonexistent/.test(e.message),
        `${JSON.stringify(files)} ${sites}`,
      );
    }
  }
});
