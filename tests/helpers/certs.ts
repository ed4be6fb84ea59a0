/**
 * Test certificates, made with `openssl` at test time into a temporary directory (once per test
 * process): a CA, a server certificate for localhost/127.0.0.1/::1, one for another name, an
 * expired one, a self-signed one, a client certificate of the same CA and one of another CA.
 * The directory is removed when the process exits.
 * @module
 */

import { openssl, tempDirRemovedAtExit } from "./openssl.ts";

/** Paths (and PEM texts) of the generated files. */
export interface TestCerts {
  /** The directory holding everything (removed at process exit). */
  dir: string;
  /** CA certificate (PEM path). */
  ca: string;
  /** Server certificate for `localhost`, `127.0.0.1`, `::1`, signed by the CA. */
  serverCert: string;
  /** Its key. */
  serverKey: string;
  /** Server certificate for `other.test` only (name mismatch for localhost). */
  otherCert: string;
  /** Its key. */
  otherKey: string;
  /** The server certificate's twin, valid only in January 2020. */
  expiredCert: string;
  /** Self-signed certificate (CA:FALSE) for localhost/127.0.0.1, not signed by the CA. */
  selfCert: string;
  /** Its key. */
  selfKey: string;
  /** Client certificate signed by the CA (clientAuth). */
  clientCert: string;
  /** Its key. */
  clientKey: string;
  /** Client certificate of an unrelated CA. */
  strangerCert: string;
  /** Its key. */
  strangerKey: string;
  /** Reads a file of this set as text. */
  read(path: string): string;
}

let made: Promise<TestCerts> | undefined;

/** The certificates (generated on first use in this process). */
export function testCerts(): Promise<TestCerts> {
  made ??= generate();
  return made;
}

async function generate(): Promise<TestCerts> {
  const dir = await tempDirRemovedAtExit("sidekick-certs-");
  const w = (name: string, text: string) => Deno.writeTextFile(`${dir}/${name}`, text);
  await w(
    "server.ext",
    [
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      "basicConstraints=CA:FALSE",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  await w("other.ext", "subjectAltName=DNS:other.test\nbasicConstraints=CA:FALSE\n");
  await w("client.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  await w(
    "ca.cnf",
    [
      "[ ca ]",
      "default_ca = d",
      "[ d ]",
      "database = index.txt",
      "new_certs_dir = .",
      "serial = serial",
      "default_md = sha256",
      "policy = p",
      "unique_subject = no",
      "[ p ]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  await w("index.txt", "");
  await w("serial", "1000\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = (name: string, cn: string) =>
    openssl(dir, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
      "-days",
      "30",
      "-subj",
      `/CN=${cn}`,
    ]);
  const leaf = async (name: string, cn: string, ext: string, signer = "ca") => {
    await openssl(dir, [
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    ]);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${signer}.pem`,
      "-CAkey",
      `${signer}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "30",
      "-extfile",
      ext,
    ]);
  };
  await ca("ca", "sidekick test CA");
  await ca("stranger-ca", "unrelated CA");
  await leaf("server", "localhost", "server.ext");
  await leaf("other", "other.test", "other.ext");
  await leaf("client", "sidekick client", "client.ext");
  await leaf("stranger", "stranger client", "client.ext", "stranger-ca");
  await openssl(dir, [
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.pem",
    "-keyfile",
    "ca.key",
    "-in",
    "server.csr",
    "-out",
    "expired.pem",
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200201000000Z",
    "-extfile",
    "server.ext",
    "-notext",
  ]);
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "self.key",
    "-out",
    "self.pem",
    "-days",
    "30",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
  ]);
  const p = (name: string) => `${dir}/${name}`;
  return {
    dir,
    ca: p("ca.pem"),
    serverCert: p("server.pem"),
    serverKey: p("server.key"),
    otherCert: p("other.pem"),
    otherKey: p("other.key"),
    expiredCert: p("expired.pem"),
    selfCert: p("self.pem"),
    selfKey: p("self.key"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
    strangerCert: p("stranger.pem"),
    strangerKey: p("stranger.key"),
    read: (path) => Deno.readTextFileSync(path),
  };
}
