/**
 * TLS towards https backends: the `--cacert`, `--client-cert`/`--client-key` and `--insecure`
 * flags, read and checked once, and the `Deno.createHttpClient` options they become.
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";
import { readError } from "../shared/read_error.ts";

/** TLS settings towards https backends (`--cacert`, `--client-cert/--client-key`, `--insecure`). */
export interface BackendTls {
  /** Extra CA certificates (PEM blocks), added to the default roots. */
  caCerts: string[];
  /** Client certificate chain (PEM), or `""`. */
  cert: string;
  /** Client private key (PEM), or `""`. */
  key: string;
  /** Skip certificate verification (Node path). */
  insecure: boolean;
}

/** `Deno.createHttpClient` options carrying `--cacert` and the client certificate. */
export function httpClientTlsOptions(tls: Partial<BackendTls> = {}): Deno.CreateHttpClientOptions {
  return {
    ...(tls.caCerts?.length ? { caCerts: tls.caCerts } : {}),
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
  };
}

/** What {@linkcode loadBackendTls} reads. */
export interface BackendTlsFlags {
  /** `--cacert` path or `""`. */
  cacert: string;
  /** `--client-cert` path or `""`. */
  clientCert: string;
  /** `--client-key` path or `""`. */
  clientKey: string;
  /** `--insecure`. */
  insecure: boolean;
}

/** How many PEM blocks of `text` begin with a label that `label` matches. */
function countPemBlocks(text: string, label: RegExp): number {
  let n = 0;
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)) if (label.test(m[1])) n++;
  return n;
}

/**
 * Reads and checks the backend TLS files; every error is one line naming the flag and the file.
 * `readFile` is injectable for tests.
 */
export function loadBackendTls(
  flags: BackendTlsFlags,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Result<BackendTls> {
  const read = (flag: string, what: string, path: string): Result<string> => {
    try {
      return ok(readFile(path));
    } catch (e) {
      return err(`${flag}: unable to load ${what} ${JSON.stringify(path)}: ${readError(e)}`);
    }
  };
  const tls: BackendTls = { caCerts: [], cert: "", key: "", insecure: flags.insecure };
  if (flags.cacert !== "") {
    const text = read("--cacert", "CA certificate", flags.cacert);
    if (!text.ok) return text;
    if (countPemBlocks(text.value, /^(X509 |TRUSTED )?CERTIFICATE$/) === 0) {
      return err(
        `--cacert: ${
          JSON.stringify(flags.cacert)
        } is not a valid certificate: no PEM CERTIFICATE block found`,
      );
    }
    try {
      Deno.createHttpClient({ caCerts: [text.value] }).close();
    } catch (e) {
      return err(
        `--cacert: ${JSON.stringify(flags.cacert)} is not a valid certificate: ${readError(e)}`,
      );
    }
    tls.caCerts = [text.value];
  }
  if (flags.clientCert !== "" || flags.clientKey !== "") {
    if (flags.clientCert === "" || flags.clientKey === "") {
      return err("--client-cert and --client-key must be given together");
    }
    const cert = read("--client-cert", "client certificate", flags.clientCert);
    if (!cert.ok) return cert;
    const key = read("--client-key", "client key", flags.clientKey);
    if (!key.ok) return key;
    if (countPemBlocks(cert.value, /CERTIFICATE$/) === 0) {
      return err(
        `--client-cert: ${JSON.stringify(flags.clientCert)} holds no PEM CERTIFICATE block`,
      );
    }
    if (
      countPemBlocks(key.value, /^ENCRYPTED PRIVATE KEY$/) > 0 ||
      /Proc-Type: 4,ENCRYPTED/.test(key.value)
    ) {
      return err(
        `--client-key: ${
          JSON.stringify(flags.clientKey)
        } is encrypted; give an unencrypted key (--key-password applies to --key only)`,
      );
    }
    if (countPemBlocks(key.value, /PRIVATE KEY$/) === 0) {
      return err(`--client-key: ${JSON.stringify(flags.clientKey)} holds no PEM private key`);
    }
    try {
      Deno.createHttpClient({ cert: cert.value, key: key.value }).close();
    } catch (e) {
      return err(
        `--client-cert/--client-key: ${JSON.stringify(flags.clientCert)} and ${
          JSON.stringify(flags.clientKey)
        } are not a valid key pair: ${readError(e)}`,
      );
    }
    tls.cert = cert.value;
    tls.key = key.value;
  }
  return ok(tls);
}
