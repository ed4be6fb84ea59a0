/**
 * Server certificates for the TLS-termination tests, made with `openssl` at test time into a
 * temporary directory (once per test process): two self-signed certificates for
 * localhost/127.0.0.1/::1 (`CA:FALSE`, so a client that trusts only one of them tells which one
 * is served), an RSA one, a key written by `openssl ecparam -genkey` (with its `EC PARAMETERS`
 * block), and the same keys encrypted in every format `--key-password` accepts. The directory is
 * removed when the process exits.
 * @module
 */

import { openssl, tempDirRemovedAtExit } from "./openssl.ts";

/** Password of every encrypted key below. */
export const KEY_PASSWORD = "s3cret pass";

/** Paths of the generated files. */
export interface ServerCerts {
  /** The directory holding everything (removed at process exit). */
  dir: string;
  /** Self-signed EC P-256 certificate "A" (PEM path) and its PKCS#8 key. */
  aCert: string;
  /** Key of A. */
  aKey: string;
  /** Self-signed EC P-256 certificate "B" for the same names, another key. */
  bCert: string;
  /** Key of B. */
  bKey: string;
  /** Self-signed RSA-2048 certificate. */
  rsaCert: string;
  /** Its key, PKCS#1 (`RSA PRIVATE KEY`). */
  rsaKey: string;
  /** The RSA key, legacy PEM encrypted with DES-EDE3-CBC (`Proc-Type: 4,ENCRYPTED`). */
  rsaKeyLegacyDes3: string;
  /** Key A, legacy SEC1 PEM encrypted with AES-256-CBC. */
  aKeyLegacyAes: string;
  /** Key A, encrypted PKCS#8 (PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256). */
  aKeyPkcs8Aes: string;
  /** The RSA key, encrypted PKCS#8 with the old PBES1 scheme (PBE-SHA1-3DES): unsupported. */
  rsaKeyPkcs8Pbes1: string;
  /** A certificate whose key file starts with an `EC PARAMETERS` block. */
  paramsCert: string;
  /** That key file. */
  paramsKey: string;
}

const SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1";

function selfSigned(dir: string, name: string, keyArgs: string[], cn: string) {
  return openssl(dir, [
    "req",
    "-x509",
    ...keyArgs,
    "-out",
    `${name}.pem`,
    "-days",
    "30",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    SAN,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "extendedKeyUsage=serverAuth",
  ]);
}

let made: Promise<ServerCerts> | undefined;

/** The certificates (generated on first use in this process). */
export function serverCerts(): Promise<ServerCerts> {
  made ??= generate();
  return made;
}

async function generate(): Promise<ServerCerts> {
  const dir = await tempDirRemovedAtExit("sidekick-server-certs-");
  const ec = (key: string) => [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
  ];
  await selfSigned(dir, "a", ec("a.key"), "sidekick test A");
  await selfSigned(dir, "b", ec("b.key"), "sidekick test B");
  await openssl(dir, ["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
  await selfSigned(dir, "rsa", ["-key", "rsa.key"], "sidekick test RSA");
  await openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-out", "params.key"]);
  await selfSigned(dir, "params", ["-key", "params.key"], "sidekick test params");
  const pass = `pass:${KEY_PASSWORD}`;
  await openssl(dir, [
    "rsa",
    "-in",
    "rsa.key",
    "-traditional",
    "-des3",
    "-passout",
    pass,
    "-out",
    "rsa-legacy-des3.key",
  ]);
  await openssl(dir, ["ec", "-in", "a.key", "-aes256", "-passout", pass, "-out", "a-legacy.key"]);
  await openssl(dir, [
    "pkcs8",
    "-topk8",
    "-in",
    "a.key",
    "-v2",
    "aes-256-cbc",
    "-v2prf",
    "hmacWithSHA256",
    "-passout",
    pass,
    "-out",
    "a-pkcs8.key",
  ]);
  await openssl(dir, [
    "pkcs8",
    "-topk8",
    "-in",
    "rsa.key",
    "-v1",
    "PBE-SHA1-3DES",
    "-passout",
    pass,
    "-out",
    "rsa-pbes1.key",
  ]);
  const p = (name: string) => `${dir}/${name}`;
  return {
    dir,
    aCert: p("a.pem"),
    aKey: p("a.key"),
    bCert: p("b.pem"),
    bKey: p("b.key"),
    rsaCert: p("rsa.pem"),
    rsaKey: p("rsa.key"),
    rsaKeyLegacyDes3: p("rsa-legacy-des3.key"),
    aKeyLegacyAes: p("a-legacy.key"),
    aKeyPkcs8Aes: p("a-pkcs8.key"),
    rsaKeyPkcs8Pbes1: p("rsa-pbes1.key"),
    paramsCert: p("params.pem"),
    paramsKey: p("params.key"),
  };
}

/** Serial number of a PEM certificate file, upper-case hex, as `openssl x509 -serial` says. */
export async function opensslSerial(certPath: string): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", certPath, "-noout", "-serial"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().replace(/^serial=/, "").toUpperCase();
}

/**
 * The certificate a TLS server at 127.0.0.1:`port` presents to a new connection, PEM, fetched
 * with `openssl s_client` (SNI `localhost`).
 */
export async function servedCertificate(port: number): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text)?.[0] ?? "";
}
