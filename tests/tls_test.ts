/**
 * Server TLS (lib/tls/): key formats and encryption, pair checks with one-line
 * errors naming the file, the certificate watcher (polling, directory events, Kubernetes-style
 * symlink swaps, broken pairs), the reloadable listener (new connections get the new
 * certificate while a request in flight finishes), auto-TLS certificates and their banner, and a
 * whole in-process sidekick over HTTPS.
 */

import assert from "node:assert/strict";
import { inspectSockets } from "../lib/tls/listener_nodelay.ts";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { CertWatcher } from "../lib/tls/cert_watcher.ts";
import {
  decryptPrivateKey,
  isEncryptedKey,
  type LoadedPair,
  loadKeyPair,
  parseKeyPair,
} from "../lib/tls/key_pair.ts";
import { planServerTls } from "../lib/tls/server_tls.ts";
import { serveOnListener, serveTls } from "../lib/tls/https_listener.ts";
import {
  AUTO_TLS_VALIDITY_MS,
  autoTlsBanner,
  generateAutoTls,
  parseAutoTlsHosts,
} from "../lib/tls/auto_tls.ts";
import { ConfigError, createSidekick, makeConfig } from "../lib/mod.ts";
import { ok } from "../lib/shared/result.ts";
import { startBackends, waitFor } from "./helpers/backends.ts";
import { KEY_PASSWORD, opensslSerial, serverCerts } from "./helpers/server_certs.ts";

const read = (path: string) => Deno.readTextFileSync(path);

function errorOf<T>(r: { ok: true; value: T } | { ok: false; error: string }): string {
  assert.equal(r.ok, false, "expected an error");
  return (r as { error: string }).error;
}

function valueOf<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) assert.fail(r.error);
  return r.value;
}

/** A fetch client trusting exactly one certificate (PEM text). */
function trusting(pem: string): Deno.HttpClient {
  return Deno.createHttpClient({ caCerts: [pem], poolMaxIdlePerHost: 0 });
}

/** Asserts that a fetch fails on the server's certificate (fetch puts the reason in `cause`). */
async function rejectsCertificate(p: Promise<Response>): Promise<void> {
  const e = await p.then((r) => r.body?.cancel(), (e) => e);
  assert.ok(e instanceof Error, "the request should have failed");
  assert.match(String(e.cause ?? e.message), /certificate/i);
}

Deno.test("decryptPrivateKey: plain keys in every PEM form become PKCS#8", async () => {
  const c = await serverCerts();
  for (const path of [c.aKey, c.rsaKey, c.paramsKey]) {
    const pkcs8 = valueOf(decryptPrivateKey(read(path), path));
    assert.match(pkcs8, /^-----BEGIN PRIVATE KEY-----\n/);
  }
  // a password given for a plain key is ignored (as in the Go sidekick)
  assert.ok(decryptPrivateKey(read(c.aKey), c.aKey, "unused").ok);
  assert.match(read(c.rsaKey), /BEGIN RSA PRIVATE KEY/);
  assert.match(read(c.paramsKey), /BEGIN EC PARAMETERS/);
});

Deno.test("decryptPrivateKey: legacy PEM (DES3, AES) and PKCS#8 PBES2 with --key-password", async () => {
  const c = await serverCerts();
  const cases: [string, string][] = [
    [c.rsaKeyLegacyDes3, c.rsaKey],
    [c.aKeyLegacyAes, c.aKey],
    [c.aKeyPkcs8Aes, c.aKey],
  ];
  for (const [encrypted, plain] of cases) {
    const text = read(encrypted);
    assert.ok(isEncryptedKey(text), encrypted);
    const got = valueOf(decryptPrivateKey(text, encrypted, KEY_PASSWORD));
    assert.equal(got, valueOf(decryptPrivateKey(read(plain), plain)), encrypted);
  }
  assert.match(read(c.rsaKeyLegacyDes3), /Proc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC/);
  assert.match(read(c.aKeyLegacyAes), /DEK-Info: AES-256-CBC/);
  assert.match(read(c.aKeyPkcs8Aes), /BEGIN ENCRYPTED PRIVATE KEY/);
});

Deno.test("decryptPrivateKey: one-line errors name the file and the flag", async () => {
  const c = await serverCerts();
  for (const path of [c.rsaKeyLegacyDes3, c.aKeyLegacyAes, c.aKeyPkcs8Aes]) {
    assert.equal(
      errorOf(decryptPrivateKey(read(path), path)),
      `--key: ${JSON.stringify(path)} is encrypted; give its password with --key-password`,
    );
    assert.equal(
      errorOf(decryptPrivateKey(read(path), path, "wrong")),
      `--key-password: unable to decrypt ${JSON.stringify(path)}: wrong password`,
    );
  }
  assert.match(
    errorOf(decryptPrivateKey(read(c.rsaKeyPkcs8Pbes1), "old.key", KEY_PASSWORD)),
    /^--key-password: unable to decrypt "old\.key": unsupported encryption scheme .*-v2 aes-256-cbc\)$/,
  );
  assert.equal(
    errorOf(decryptPrivateKey("not a key at all\n", "k.pem")),
    `--key: "k.pem" holds no PEM private key`,
  );
  assert.equal(
    errorOf(decryptPrivateKey(read(c.aCert), "k.pem")),
    `--key: "k.pem" holds no PEM private key (it holds a certificate: were --cert and --key swapped?)`,
  );
  assert.equal(
    errorOf(decryptPrivateKey(read(c.aKey) + read(c.bKey), "k.pem")),
    `--key: "k.pem" holds 2 private keys; expected exactly one`,
  );
  const corrupt = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  const e = errorOf(decryptPrivateKey(corrupt, "k.pem"));
  assert.match(e, /^--key: "k\.pem" is not a valid private key: /);
  assert.ok(!e.includes("\n"));
});

Deno.test("parseKeyPair: a matching pair, its serial and fingerprint; chains kept leaf first", async () => {
  const c = await serverCerts();
  const loaded = valueOf(parseKeyPair(read(c.aCert), read(c.aKey), {
    certPath: c.aCert,
    keyPath: c.aKey,
  }));
  assert.equal(loaded.serial, await opensslSerial(c.aCert));
  assert.equal(loaded.fingerprint, new X509Certificate(read(c.aCert)).fingerprint256);
  assert.ok(loaded.notAfter.getTime() > Date.now());
  const chain = valueOf(parseKeyPair(read(c.aCert) + read(c.bCert), read(c.aKey), {
    certPath: "chain.pem",
    keyPath: "a.key",
  }));
  assert.equal((chain.pair.cert.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.ok(chain.pair.cert.startsWith(read(c.aCert).trim()));
  // an encrypted key with its password
  assert.ok(
    parseKeyPair(read(c.rsaCert), read(c.rsaKeyLegacyDes3), {
      certPath: "rsa.pem",
      keyPath: "rsa.key",
      password: KEY_PASSWORD,
    }).ok,
  );
});

Deno.test("parseKeyPair/loadKeyPair: bad files → one line naming the file", async () => {
  const c = await serverCerts();
  const src = { certPath: "cert.pem", keyPath: "key.pem" };
  assert.equal(
    errorOf(parseKeyPair(read(c.aCert), read(c.bKey), src)),
    `--key: "key.pem" is not the private key of the certificate in "cert.pem"`,
  );
  assert.equal(
    errorOf(parseKeyPair("garbage\n", read(c.aKey), src)),
    `--cert: "cert.pem" is not a valid certificate: no PEM CERTIFICATE block found`,
  );
  assert.equal(
    errorOf(parseKeyPair(read(c.aKey), read(c.aCert), src)),
    `--cert: "cert.pem" is not a valid certificate: no PEM CERTIFICATE block found ` +
      `(it holds a private key: were --cert and --key swapped?)`,
  );
  const broken = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  assert.match(
    errorOf(parseKeyPair(read(c.aCert) + broken, read(c.aKey), src)),
    /^--cert: "cert\.pem" is not a valid certificate: certificate 2 of 2: /,
  );
  const missing = `${c.dir}/does-not-exist.pem`;
  assert.equal(
    errorOf(loadKeyPair({ certPath: missing, keyPath: c.aKey })),
    `--cert: unable to load server certificate ${JSON.stringify(missing)}: no such file`,
  );
  assert.equal(
    errorOf(loadKeyPair({ certPath: c.aCert, keyPath: missing })),
    `--key: unable to load server key ${JSON.stringify(missing)}: no such file`,
  );
  assert.equal(
    errorOf(loadKeyPair({ certPath: c.dir, keyPath: c.aKey })),
    `--cert: unable to load server certificate ${JSON.stringify(c.dir)}: is a directory`,
  );
});

/** A temp dir with cert.pem/key.pem holding pair A. */
async function pairDir(): Promise<{ dir: string; cert: string; key: string }> {
  const c = await serverCerts();
  const dir = await Deno.makeTempDir({ prefix: "sidekick-watch-" });
  await Deno.copyFile(c.aCert, `${dir}/cert.pem`);
  await Deno.copyFile(c.aKey, `${dir}/key.pem`);
  return { dir, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}

/** Replaces a file atomically (write a sibling, rename over). */
async function replace(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

function recorder() {
  const applied: LoadedPair[] = [];
  const errors: string[] = [];
  const infos: string[] = [];
  return {
    applied,
    errors,
    infos,
    hooks: {
      apply: (l: LoadedPair) => {
        applied.push(l);
        return ok(undefined);
      },
      onError: (t: string) => errors.push(t),
      onInfo: (t: string) => infos.push(t),
    },
  };
}

Deno.test("CertWatcher: polling picks up a new pair; a broken one is logged once and skipped", async () => {
  const c = await serverCerts();
  const p = await pairDir();
  const r = recorder();
  const w = new CertWatcher({
    certPath: p.cert,
    keyPath: p.key,
    initial: { cert: read(p.cert), key: read(p.key) },
    pollMs: 20,
    watch: false,
    ...r.hooks,
  });
  w.start();
  try {
    await w.check();
    assert.equal(r.applied.length, 0, "unchanged files: nothing applied");
    // broken: B's certificate with A's key
    await replace(p.cert, read(c.bCert));
    await waitFor(() => r.errors.length > 0, "the broken pair reported");
    await w.check();
    await w.check();
    assert.equal(r.errors.length, 1, "reported once per content");
    assert.match(
      r.errors[0],
      /^TLS certificate reload failed, keeping the current certificate: --key: ".*key\.pem" is not the private key/,
    );
    assert.equal(r.applied.length, 0);
    await replace(p.key, read(c.bKey));
    await waitFor(() => r.applied.length === 1, "the fixed pair applied");
    assert.equal(r.applied[0].serial, await opensslSerial(c.bCert));
    assert.match(
      r.infos[0],
      /^reloaded TLS certificate ".*cert\.pem" \(serial [0-9A-F]+, valid until /,
    );
    // a file going away is reported, then the same pair coming back is not re-applied
    await Deno.remove(p.key);
    await waitFor(() => r.errors.length === 2, "the missing key reported");
    assert.match(r.errors[1], /keeping the current certificate: no such file/);
    await Deno.writeTextFile(p.key, read(c.bKey));
    await waitFor(() => r.applied.length === 2, "the pair re-read");
  } finally {
    w.stop();
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("CertWatcher: a directory event triggers a reload without waiting for the poll", async () => {
  const c = await serverCerts();
  const p = await pairDir();
  const r = recorder();
  const w = new CertWatcher({
    certPath: p.cert,
    keyPath: p.key,
    initial: { cert: read(p.cert), key: read(p.key) },
    pollMs: 3_600_000,
    debounceMs: 20,
    ...r.hooks,
  });
  w.start();
  try {
    await replace(p.key, read(c.bKey));
    await replace(p.cert, read(c.bCert));
    await waitFor(() => r.applied.length === 1, "the watched change applied", 5_000);
    assert.equal(r.applied[0].serial, await opensslSerial(c.bCert));
    assert.deepEqual(r.errors, [], "debounced: the half-written pair was never checked");
  } finally {
    w.stop();
    await Deno.remove(p.dir, { recursive: true });
  }
});

Deno.test("CertWatcher: a Kubernetes-style ..data symlink swap is noticed", async () => {
  const c = await serverCerts();
  const dir = await Deno.makeTempDir({ prefix: "sidekick-k8s-" });
  const r = recorder();
  let w: CertWatcher | undefined;
  try {
    // <dir>/tls.crt -> ..data/tls.crt, ..data -> ..v1 (what the kubelet does for secrets)
    await Deno.mkdir(`${dir}/..v1`);
    await Deno.copyFile(c.aCert, `${dir}/..v1/tls.crt`);
    await Deno.copyFile(c.aKey, `${dir}/..v1/tls.key`);
    await Deno.symlink("..v1", `${dir}/..data`);
    await Deno.symlink("..data/tls.crt", `${dir}/tls.crt`);
    await Deno.symlink("..data/tls.key", `${dir}/tls.key`);
    w = new CertWatcher({
      certPath: `${dir}/tls.crt`,
      keyPath: `${dir}/tls.key`,
      initial: { cert: read(c.aCert), key: read(c.aKey) },
      pollMs: 3_600_000,
      debounceMs: 20,
      ...r.hooks,
    });
    w.start();
    await Deno.mkdir(`${dir}/..v2`);
    await Deno.copyFile(c.bCert, `${dir}/..v2/tls.crt`);
    await Deno.copyFile(c.bKey, `${dir}/..v2/tls.key`);
    await Deno.symlink("..v2", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await waitFor(() => r.applied.length === 1, "the swapped secret applied", 5_000);
    assert.equal(r.applied[0].serial, await opensslSerial(c.bCert));
  } finally {
    w?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serveTls: swap → new connections get the new certificate; the in-flight request finishes", async () => {
  const c = await serverCerts();
  const a = valueOf(loadKeyPair({ certPath: c.aCert, keyPath: c.aKey }));
  const b = valueOf(loadKeyPair({ certPath: c.bCert, keyPath: c.bKey }));
  let entered!: () => void;
  const slowEntered = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server = serveTls({ hostname: "127.0.0.1", port: 0 }, async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      entered();
      await released;
      return new Response("slow done");
    }
    return new Response("fast");
  }, a.pair);
  const url = `https://localhost:${server.addr.port}`;
  using clientA = trusting(read(c.aCert));
  using clientB = trusting(read(c.bCert));
  try {
    assert.ok(server.reloadable, "deno.json enables --unstable-net for tests");
    assert.ok(server.noDelay.ok || Deno.build.os !== "linux", JSON.stringify(server.noDelay));
    assert.equal(await (await fetch(url, { client: clientA })).text(), "fast");
    await rejectsCertificate(fetch(url, { client: clientB }));
    const slow = fetch(`${url}/slow`, { client: clientA });
    await slowEntered;
    assert.deepEqual(server.swap(b.pair), ok(undefined));
    if (Deno.build.os === "linux") {
      // The re-bound listener gets TCP_NODELAY too; the draining one kept it.
      assert.ok(server.noDelay.ok, JSON.stringify(server.noDelay));
      const listeners = inspectSockets(4096).filter((s) => s.port === server.addr.port);
      assert.deepEqual(listeners.map((s) => s.noDelay), [true, true]);
    }
    assert.equal(await (await fetch(url, { client: clientB })).text(), "fast");
    await rejectsCertificate(fetch(url, { client: clientA }));
    release();
    const res = await slow;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "slow done");
    // and back again
    assert.ok(server.swap(a.pair).ok);
    assert.equal(await (await fetch(url, { client: clientA })).text(), "fast");
  } finally {
    release();
    await server.shutdown();
    await server.finished;
  }
  assert.match(errorOf(server.swap(b.pair)), /shutting down/);
});

Deno.test("serveTls: an address in use fails like a plain listener (no silent SO_REUSEPORT sharing)", async () => {
  const c = await serverCerts();
  const a = valueOf(loadKeyPair({ certPath: c.aCert, keyPath: c.aKey }));
  const first = serveTls({ hostname: "127.0.0.1", port: 0 }, () => new Response("1"), a.pair);
  try {
    assert.throws(
      () =>
        serveTls({ hostname: "127.0.0.1", port: first.addr.port }, () => new Response("2"), a.pair),
      Deno.errors.AddrInUse,
    );
  } finally {
    await first.shutdown();
  }
});

Deno.test("serveTls: shutdown waits for requests in flight, not for a connection stuck in its handshake", async () => {
  const c = await serverCerts();
  const a = valueOf(loadKeyPair({ certPath: c.aCert, keyPath: c.aKey }));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const slowEntered = new Promise<void>((r) => (entered = r));
  const server = serveTls({ hostname: "127.0.0.1", port: 0, handshakeGraceMs: 200 }, async () => {
    entered();
    await released;
    return new Response("slow done");
  }, a.pair);
  // A client that connects and never says hello (Deno's shutdown alone would wait for it).
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  using client = trusting(read(c.aCert));
  try {
    const slow = fetch(`https://localhost:${server.addr.port}/`, { client });
    await slowEntered;
    let finished = false;
    const stopping = server.shutdown().then(() => (finished = true));
    await new Promise((r) => setTimeout(r, 400)); // longer than the grace: a request is in flight
    assert.equal(finished, false, "the request in flight is waited for");
    release();
    assert.equal(await (await slow).text(), "slow done");
    await stopping;
    await server.finished;
  } finally {
    release();
    silent.close();
  }
});

Deno.test("parseAutoTlsHosts: IP literals → IP SANs, the rest DNS SANs", () => {
  assert.deepEqual(valueOf(parseAutoTlsHosts("localhost,127.0.0.1,::1,[fe80::1],minio.local")), {
    dns: ["localhost", "minio.local"],
    ips: ["127.0.0.1", "::1", "fe80::1"],
  });
  assert.deepEqual(valueOf(parseAutoTlsHosts(" a.example , 10.0.0.1 ,")), {
    dns: ["a.example"],
    ips: ["10.0.0.1"],
  });
  assert.deepEqual(valueOf(parseAutoTlsHosts("999.1.1.1")).dns, ["999.1.1.1"]);
  assert.match(errorOf(parseAutoTlsHosts(",")), /^--auto-tls-host: no host given/);
  assert.match(errorOf(parseAutoTlsHosts("a b")), /^--auto-tls-host: invalid host "a b"/);
});

Deno.test("generateAutoTls: ECDSA P-256, self-signed, one year, server auth, the SANs", async () => {
  const now = new Date("2026-01-02T03:04:05Z");
  const tls = await generateAutoTls("localhost,127.0.0.1,::1,minio.local", now);
  const cert = new X509Certificate(tls.certPem);
  assert.match(
    cert.subjectAltName ?? "",
    /^DNS:localhost, DNS:minio\.local, IP Address:127\.0\.0\.1, IP Address:(::1|0:0:0:0:0:0:0:1)$/,
  );
  assert.equal(cert.subject, "O=Acme Co");
  assert.equal(cert.issuer, "O=Acme Co");
  assert.ok(cert.verify(cert.publicKey), "self-signed");
  assert.equal(cert.publicKey.asymmetricKeyType, "ec");
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.equal(new Date(cert.validFrom).getTime(), Math.floor(now.getTime() / 1000) * 1000);
  assert.equal(
    new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime(),
    AUTO_TLS_VALIDITY_MS,
  );
  assert.equal(cert.ca, false);
  assert.ok(cert.checkPrivateKey(createPrivateKey(tls.pair.key)));
  assert.equal(tls.pair.cert, tls.certPem);
  const text = await openssl(["x509", "-noout", "-text"], tls.certPem);
  assert.match(text, /X509v3 Extended Key Usage: *\n *TLS Web Server Authentication/);
  assert.match(text, /X509v3 Key Usage: critical\n *Digital Signature, Key Encipherment/);
  assert.match(text, /Serial Number:\s*\n?\s*[0-9a-f:]{20,}/);
  // two certificates never share a serial or a key
  const other = new X509Certificate((await generateAutoTls("localhost", now)).certPem);
  assert.notEqual(other.serialNumber, cert.serialNumber);
  assert.notEqual(other.fingerprint256, cert.fingerprint256);
});

async function openssl(args: string[], stdin: string): Promise<string> {
  const p = new Deno.Command("openssl", { args, stdin: "piped", stdout: "piped", stderr: "null" })
    .spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  return new TextDecoder().decode((await p.output()).stdout);
}

Deno.test("auto-TLS banner: the Go sidekick's layout, certificate and public-key hashes", async () => {
  const tls = await generateAutoTls("localhost,127.0.0.1");
  const cert = new X509Certificate(tls.certPem);
  const fp = cert.fingerprint256.split(":");
  const spki = cert.publicKey.export({ format: "der", type: "spki" });
  const pk = createHash("sha256").update(spki).digest("base64");
  assert.equal(
    tls.banner,
    [
      "Generated TLS certificate for host 'localhost,127.0.0.1'",
      "",
      `Certificate: ${fp.slice(0, 16).join(" ")}`,
      `             ${fp.slice(16).join(" ")}`,
      `Public Key:  ${pk}`,
      "",
    ].join("\n"),
  );
  // the formatter on fixed input
  const banner = await autoTlsBanner("h", new Uint8Array([1]).buffer, new Uint8Array([2]).buffer);
  assert.match(banner, /^Generated TLS certificate for host 'h'\n\nCertificate: 4B F5 12 2F/);
});

Deno.test("planServerTls: plain, files, auto; --cert/--key win over --auto-tls-host", async () => {
  const c = await serverCerts();
  const hooks = { onInfo: () => {}, onError: () => {}, onBanner: () => {} };
  const flags = { cert: "", key: "", keyPassword: "", autoTlsHost: "" };
  assert.equal(valueOf(planServerTls(flags, hooks)), undefined);
  const files = valueOf(planServerTls({ ...flags, cert: c.aCert, key: c.aKey }, hooks));
  assert.equal(files?.mode, "files");
  assert.equal(files?.certificatePem(), undefined);
  const both = valueOf(
    planServerTls({ ...flags, cert: c.aCert, key: c.aKey, autoTlsHost: "localhost" }, hooks),
  );
  assert.equal(both?.mode, "files");
  const banners: string[] = [];
  const auto = valueOf(
    planServerTls({ ...flags, autoTlsHost: "localhost" }, {
      ...hooks,
      onBanner: (t) => banners.push(t),
    }),
  );
  assert.equal(auto?.mode, "auto");
  assert.equal(auto?.certificatePem(), undefined);
  await auto?.prepare();
  await auto?.prepare();
  assert.equal(banners.length, 1);
  assert.match(auto?.certificatePem() ?? "", /^-----BEGIN CERTIFICATE-----/);
  assert.match(
    errorOf(planServerTls({ ...flags, cert: c.aCert, key: c.aKeyPkcs8Aes }, hooks)),
    /is encrypted; give its password with --key-password$/,
  );
  assert.ok(
    planServerTls(
      { ...flags, cert: c.aCert, key: c.aKeyPkcs8Aes, keyPassword: KEY_PASSWORD },
      hooks,
    )
      .ok,
  );
});

Deno.test("createSidekick over HTTPS: https url, proxying, 404 /v1/certificates; bad key → ConfigError", async () => {
  const c = await serverCerts();
  const backends = await startBackends(1);
  const config = makeConfig({
    address: "127.0.0.1:0",
    healthPath: "/health",
    cert: c.aCert,
    key: c.aKeyLegacyAes,
    keyPassword: KEY_PASSWORD,
    sites: [backends[0].url],
  });
  assert.throws(
    () => createSidekick({ ...config, keyPassword: "" }),
    (e) => e instanceof ConfigError && /is encrypted; give its password/.test(e.message),
  );
  const sk = createSidekick(config, { onInfo: () => {} });
  using client = trusting(read(c.aCert));
  try {
    await sk.start();
    await sk.ready();
    assert.match(sk.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const url = sk.url.replace("127.0.0.1", "localhost");
    const res = await fetch(`${url}/`, { client });
    assert.equal(await res.text(), "b1");
    const certs = await fetch(`${url}/v1/certificates`, { client });
    assert.equal(certs.status, 404);
    assert.equal(await certs.text(), "no configured certificates found\n");
  } finally {
    await sk.stop();
    await backends[0].close();
  }
});

Deno.test("createSidekick with --auto-tls-host: banner, PEM at GET /v1/certificates, trusted by it", async () => {
  const backends = await startBackends(1);
  const banners: string[] = [];
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      healthPath: "/health",
      autoTlsHost: "localhost,127.0.0.1",
      sites: [backends[0].url],
    }),
    { onBanner: (t) => banners.push(t), onInfo: () => {} },
  );
  try {
    await sk.start();
    await sk.ready();
    assert.equal(banners.length, 1);
    await rejectsCertificate(fetch(`${sk.url}/v1/certificates`)); // not trusted yet
    // learn the PEM (as mc admin would), then trust exactly it
    const pem = await openssl(
      ["s_client", "-connect", `127.0.0.1:${sk.addr.port}`, "-servername", "localhost"],
      "",
    );
    const served = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem)![0];
    using client = trusting(served);
    const res = await fetch(`${sk.url}/v1/certificates`, { client });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    const body = await res.text();
    assert.equal(body.trim(), served.trim());
    const fp = new X509Certificate(body).fingerprint256.split(":").slice(0, 16).join(" ");
    assert.ok(banners[0].includes(`Certificate: ${fp}`));
    const proxied = await fetch(`https://localhost:${sk.addr.port}/x`, { client });
    assert.equal(await proxied.text(), "b1");
    // other methods on the path are proxied
    const put = await fetch(`${sk.url}/v1/certificates`, { method: "PUT", body: "x", client });
    assert.equal(await put.text(), "b1");
  } finally {
    await sk.stop();
    await backends[0].close();
  }
});

Deno.test("decryptPrivateKey: a wrong password whose garbage the decoder calls 'unsupported' is still a wrong password", async () => {
  const c = await serverCerts();
  const text = Deno.readTextFileSync(c.rsaKeyLegacyDes3);
  // About one wrong password in 400 decrypts to bytes with valid padding, which the key decoder
  // then rejects as "unsupported": find one, so the test does not depend on luck.
  let password: string | undefined;
  for (let i = 0; i < 50_000 && password === undefined; i++) {
    try {
      createPrivateKey({ key: text, format: "pem", passphrase: `wrong-${i}` });
    } catch (e) {
      if (/unsupported/i.test((e as Error).message)) password = `wrong-${i}`;
    }
  }
  assert.ok(password, "a wrong password that decodes to garbage");
  assert.deepEqual(
    decryptPrivateKey(text, "k.pem", password),
    { ok: false, error: '--key-password: unable to decrypt "k.pem": wrong password' },
  );
});

Deno.test("serveOnListener: the runtime's own server loop, which --no-http2 needs, is there", () => {
  // Deno.serve always offers h2 by ALPN; an HTTP/1.1-only listener relies on this internal.
  assert.equal(typeof serveOnListener(), "function");
});
