/**
 * TLS termination end to end, through `main.ts` as a user runs it: HTTPS with `--cert/--key`
 * checked by curl (HTTP/2 negotiated by ALPN, HTTP/1.1 too), the certificate replaced on disk
 * while an upload is in flight, `--key-password` with both encrypted-key formats,
 * `--auto-tls-host` (banner, PEM at `/v1/certificates`, SANs), and every bad-file case → exit 2
 * with one line naming the file.
 */

import assert from "node:assert/strict";
import { startBackend, waitFor } from "../helpers/backends.ts";
import { runSidekick, startSidekick } from "../helpers/sidekick_process.ts";
import {
  KEY_PASSWORD,
  opensslSerial,
  servedCertificate,
  serverCerts,
} from "../helpers/server_certs.ts";

const read = (path: string) => Deno.readTextFileSync(path);

/** Runs curl; returns its exit code, stdout and stderr. */
async function curl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", "--max-time", "10", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Waits until sidekick answers `/v1/health` 200 over HTTPS, trusting `pem`. */
async function waitHealthyTls(port: number, pem: string): Promise<void> {
  using client = Deno.createHttpClient({ caCerts: [pem] });
  await waitFor(async () => {
    const res = await fetch(`https://localhost:${port}/v1/health`, { client }).catch(() => null);
    await res?.body?.cancel();
    return res?.status === 200;
  }, "sidekick healthy over https");
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Copies certificate A and its key into a fresh directory (so a test can replace them). */
async function certDir(): Promise<{ dir: string; cert: string; key: string }> {
  const c = await serverCerts();
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-tls-" });
  await Deno.copyFile(c.aCert, `${dir}/public.crt`);
  await Deno.copyFile(c.aKey, `${dir}/private.key`);
  return { dir, cert: `${dir}/public.crt`, key: `${dir}/private.key` };
}

Deno.test("--cert/--key: HTTPS, HTTP/2 by ALPN (curl --http2) and HTTP/1.1, proxied; /v1/certificates 404", async () => {
  const c = await serverCerts();
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--health-path",
    "/health",
    "--cert",
    c.aCert,
    "--key",
    c.aKey,
    backend.url,
  ]);
  try {
    const port = portOf(sk.url);
    await waitHealthyTls(port, read(c.aCert));
    const url = `https://localhost:${port}`;
    const fmt = ["--write-out", "\n%{http_version}"];
    const h2 = await curl(["--cacert", c.aCert, "--http2", ...fmt, `${url}/object`]);
    assert.equal(h2.code, 0, h2.err);
    assert.equal(h2.out, "b1\n2");
    const h1 = await curl(["--cacert", c.aCert, "--http1.1", ...fmt, `${url}/object`]);
    assert.equal(h1.out, "b1\n1.1");
    // by IP too (the certificate has an IP SAN)
    const ip = await curl(["--cacert", c.aCert, `https://127.0.0.1:${port}/v1/certificates`]);
    assert.equal(ip.out, "no configured certificates found\n");
    // not trusted without the certificate
    const untrusted = await curl([`${url}/object`]);
    assert.notEqual(untrusted.code, 0);
    // plain HTTP on the TLS port is not served
    const plain = await curl([`http://127.0.0.1:${port}/v1/health`]);
    assert.notEqual(plain.code, 0);
    assert.equal(backend.seen.filter((s) => new URL(s.url).pathname === "/object").length, 2);
  } finally {
    const status = await sk.stop();
    await backend.close();
    assert.equal(status.code, 0);
  }
});

Deno.test("--cert/--key hot reload: files replaced → new connections get the new certificate; the upload in flight completes; a broken pair keeps the old one", async () => {
  const c = await serverCerts();
  const files = await certDir();
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--workers",
    "2", // every worker swaps its listener
    "--health-path",
    "/health",
    "--cert",
    files.cert,
    "--key",
    files.key,
    backend.url,
  ]);
  using both = Deno.createHttpClient({ caCerts: [read(c.aCert), read(c.bCert)] });
  const port = portOf(sk.url);
  const url = `https://localhost:${port}`;
  /** Whether a new connection trusting only `pem` gets through. */
  const servedIs = async (pem: string) => {
    using client = Deno.createHttpClient({ caCerts: [pem], poolMaxIdlePerHost: 0 });
    const res = await fetch(`${url}/v1/health`, { client }).catch(() => null);
    await res?.body?.cancel();
    return res?.status === 200;
  };
  let finishUpload: () => void = () => {};
  try {
    await waitHealthyTls(port, read(c.aCert));
    assert.equal(await opensslSerial(files.cert), await opensslSerial(c.aCert));

    // An upload that stays in flight until we end its body.
    const part = new TextEncoder().encode("x".repeat(1000));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(part);
        sent += part.length;
        await new Promise<void>((r) => (finishUpload = r));
        controller.enqueue(part);
        sent += part.length;
        controller.close();
      },
    });
    const upload = fetch(`${url}/echo`, { method: "PUT", body, client: both });
    await waitFor(() => backend.inflight === 1, "the upload reaching the backend");

    // Replace the pair on disk (key first, then certificate, each by rename).
    await Deno.writeTextFile(`${files.dir}/k.tmp`, read(c.bKey));
    await Deno.rename(`${files.dir}/k.tmp`, files.key);
    await Deno.writeTextFile(`${files.dir}/c.tmp`, read(c.bCert));
    await Deno.rename(`${files.dir}/c.tmp`, files.cert);
    await sk.waitForLine(/reloaded TLS certificate .*public\.crt/);
    await waitFor(() => servedIs(read(c.bCert)), "certificate B served to new connections");
    assert.equal(await servedIs(read(c.aCert)), false, "A no longer served");
    const served = await servedCertificate(port);
    assert.equal(served.trim(), read(c.bCert).trim());
    const serialB = await opensslSerial(c.bCert);
    assert.ok(sk.stdout.some((l) => l.includes(`serial ${serialB}`)));

    finishUpload();
    const res = await upload;
    assert.equal(res.status, 200);
    const echo = await res.json();
    assert.equal(echo.bodyBytes, 2000);
    assert.equal(sent, 2000);

    // A broken new pair (A's key with B's certificate): logged, B kept.
    await Deno.writeTextFile(`${files.dir}/k.tmp`, read(c.aKey));
    await Deno.rename(`${files.dir}/k.tmp`, files.key);
    await waitFor(
      () => sk.stderr.some((l) => /reload failed, keeping the current certificate/.test(l)),
      "the broken pair reported",
    );
    const line = sk.stderr.find((l) => /reload failed/.test(l))!;
    assert.match(
      line,
      /private\.key" is not the private key of the certificate in ".*public\.crt"/,
    );
    assert.ok(await servedIs(read(c.bCert)), "B still served");
  } finally {
    finishUpload();
    const status = await sk.stop();
    await backend.close();
    await Deno.remove(files.dir, { recursive: true });
    assert.equal(status.code, 0);
  }
});

Deno.test("--cert/--key: SIGTERM exits 0 even while a client sits in the TLS handshake", async () => {
  const c = await serverCerts();
  const backend = await startBackend("b1");
  const sk = await startSidekick(["--cert", c.aCert, "--key", c.aKey, backend.url]);
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: portOf(sk.url) });
  try {
    await waitHealthyTls(portOf(sk.url), read(c.aCert));
    const t0 = Date.now();
    const status = await sk.stop();
    assert.equal(status.code, 0);
    assert.ok(Date.now() - t0 < 15_000, "bounded by the handshake grace, not by the client");
  } finally {
    silent.close();
    await backend.close();
  }
});

for (
  const [name, key] of [
    ["legacy PEM (Proc-Type: 4,ENCRYPTED, DES-EDE3-CBC)", "rsaKeyLegacyDes3"],
    ["encrypted PKCS#8 (PBES2, AES-256-CBC)", "aKeyPkcs8Aes"],
  ] as const
) {
  Deno.test(`--key-password, ${name} key: served`, async () => {
    const c = await serverCerts();
    const cert = key === "rsaKeyLegacyDes3" ? c.rsaCert : c.aCert;
    const backend = await startBackend("b1");
    const sk = await startSidekick([
      "--health-path",
      "/health",
      "--cert",
      cert,
      "--key",
      c[key],
      "--key-password",
      KEY_PASSWORD,
      backend.url,
    ]);
    try {
      const port = portOf(sk.url);
      await waitHealthyTls(port, read(cert));
      const r = await curl(["--cacert", cert, `https://localhost:${port}/`]);
      assert.equal(r.out, "b1", r.err);
    } finally {
      await sk.stop();
      await backend.close();
    }
  });
}

Deno.test("--auto-tls-host: banner on stdout, PEM at GET /v1/certificates with the SANs, trusted by curl over HTTP/2", async () => {
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--workers",
    "2",
    "--health-path",
    "/health",
    "--auto-tls-host",
    "localhost,127.0.0.1,::1",
    backend.url,
  ]);
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-autotls-" });
  try {
    const port = portOf(sk.url);
    const pemFile = `${dir}/sidekick.pem`;
    const got = await curl(["--insecure", `https://127.0.0.1:${port}/v1/certificates`]);
    assert.equal(got.code, 0, got.err);
    assert.match(got.out, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    await Deno.writeTextFile(pemFile, got.out);
    await waitHealthyTls(port, got.out);

    const text = await openssl([
      "x509",
      "-in",
      pemFile,
      "-noout",
      "-text",
      "-fingerprint",
      "-sha256",
    ]);
    assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /Subject: O ?= ?Acme Co/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /TLS Web Server Authentication/);
    const fp = /sha256 Fingerprint=([0-9A-F:]+)/i.exec(text)![1].split(":");

    assert.equal(sk.stdout[0], "Generated TLS certificate for host 'localhost,127.0.0.1,::1'");
    assert.equal(sk.stdout[1], "");
    assert.equal(sk.stdout[2], `Certificate: ${fp.slice(0, 16).join(" ")}`);
    assert.equal(sk.stdout[3], `             ${fp.slice(16).join(" ")}`);
    assert.match(sk.stdout[4], /^Public Key: {2}[A-Za-z0-9+/]{43}=$/);
    assert.equal(sk.stdout[5], "");

    // Every SAN verifies: curl checks the name it was given while connecting to 127.0.0.1.
    const fmt = ["--write-out", "\n%{http_version}"];
    for (const host of ["localhost", "127.0.0.1", "[::1]"]) {
      const to = ["--connect-to", `${host}:${port}:127.0.0.1:${port}`];
      const r = await curl([
        "--cacert",
        pemFile,
        "--http2",
        ...fmt,
        ...to,
        `https://${host}:${port}/x`,
      ]);
      assert.equal(r.out, "b1\n2", `${host}: ${r.err}`);
    }
    const wrong = await curl([
      "--cacert",
      pemFile,
      "--connect-to",
      `other.test:${port}:127.0.0.1:${port}`,
      `https://other.test:${port}/x`,
    ]);
    assert.notEqual(wrong.code, 0, "a name not in the SANs is refused");
  } finally {
    await sk.stop();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function openssl(args: string[]): Promise<string> {
  const o = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(o.stdout);
}

Deno.test("bad certificate/key files: exit 2, one line naming the file", async () => {
  const c = await serverCerts();
  const dir = await Deno.makeTempDir({ prefix: "sidekick-e2e-badtls-" });
  const garbage = `${dir}/garbage.pem`;
  await Deno.writeTextFile(garbage, "this is not PEM\n");
  const missing = `${dir}/missing.pem`;
  const site = "http://127.0.0.1:9";
  const cases: [string, string[], RegExp][] = [
    [
      "missing certificate",
      ["--cert", missing, "--key", c.aKey],
      /--cert: .*missing\.pem.*no such file/,
    ],
    ["missing key", ["--cert", c.aCert, "--key", missing], /--key: .*missing\.pem.*no such file/],
    [
      "garbage certificate",
      ["--cert", garbage, "--key", c.aKey],
      /--cert: .*garbage\.pem.* not a valid certificate/,
    ],
    [
      "garbage key",
      ["--cert", c.aCert, "--key", garbage],
      /--key: .*garbage\.pem.* holds no PEM private key/,
    ],
    ["directory as certificate", ["--cert", dir, "--key", c.aKey], /--cert: .*is a directory/],
    [
      "mismatched pair",
      ["--cert", c.aCert, "--key", c.bKey],
      /--key: ".*b\.key" is not the private key of the certificate in ".*a\.pem"/,
    ],
    [
      "swapped files",
      ["--cert", c.aKey, "--key", c.aCert],
      /--cert: ".*a\.key" .*were --cert and --key swapped\?/,
    ],
    [
      "encrypted key, no password",
      ["--cert", c.aCert, "--key", c.aKeyPkcs8Aes],
      /--key: ".*a-pkcs8\.key" is encrypted; give its password with --key-password/,
    ],
    ["wrong password (legacy PEM)", [
      "--cert",
      c.rsaCert,
      "--key",
      c.rsaKeyLegacyDes3,
      "--key-password",
      "nope",
    ], /--key-password: unable to decrypt ".*rsa-legacy-des3\.key": wrong password/],
    ["wrong password (PKCS#8)", [
      "--cert",
      c.aCert,
      "--key",
      c.aKeyPkcs8Aes,
      "--key-password",
      "nope",
    ], /--key-password: unable to decrypt ".*a-pkcs8\.key": wrong password/],
    ["PBES1 key", [
      "--cert",
      c.rsaCert,
      "--key",
      c.rsaKeyPkcs8Pbes1,
      "--key-password",
      KEY_PASSWORD,
    ], /--key-password: unable to decrypt ".*rsa-pbes1\.key": unsupported encryption scheme/],
    ["--cert without --key", ["--cert", c.aCert], /--cert: given without --key/],
    ["bad --auto-tls-host", ["--auto-tls-host", "a b"], /--auto-tls-host: invalid host "a b"/],
  ];
  try {
    await Promise.all(cases.map(async ([name, args, pattern]) => {
      const r = await runSidekick(["--address", "127.0.0.1:0", ...args, site]);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${name}: ${r.stderr}`);
      assert.match(lines[0], /^sidekick: /, name);
      assert.match(lines[0], pattern, name);
      assert.equal(r.stdout, "", `${name}: nothing listened`);
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
