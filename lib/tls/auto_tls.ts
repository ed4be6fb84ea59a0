/**
 * `--auto-tls-host`: a fresh ECDSA P-256 key and a self-signed certificate for the
 * given host names and IP addresses, valid one year, for server authentication, made with
 * `@peculiar/x509` over WebCrypto; and the banner the Go sidekick prints about it.
 *
 * One deliberate difference (see the README's TLS section): the certificate is not a CA
 * (`CA:FALSE`, no cert-sign usage). rustls-based clients, Deno's `fetch` among them, reject a CA
 * certificate used as a server certificate; curl, OpenSSL and Go accept either.
 *
 * @example
 * ```ts
 * import { generateAutoTls } from "./auto_tls.ts";
 * const tls = await generateAutoTls("localhost,127.0.0.1");
 * console.log(tls.banner);
 * ```
 * @module
 */

import type * as X509 from "@peculiar/x509";
import { err, ok, type Result } from "../shared/result.ts";
import type { KeyPair } from "./key_pair.ts";

/** The subject alternative names of an `--auto-tls-host` value. */
export interface AutoTlsHosts {
  /** DNS names, in the order given. */
  readonly dns: string[];
  /** IP addresses (IPv6 without brackets), in the order given. */
  readonly ips: string[];
}

/** A generated certificate. */
export interface AutoTls {
  /** What `Deno.serve` serves. */
  readonly pair: KeyPair;
  /** The certificate alone, PEM (served at `GET /v1/certificates`). */
  readonly certPem: string;
  /** The lines printed at start-up (as the Go sidekick prints them), ending with an empty line. */
  readonly banner: string;
  /** Its names. */
  readonly hosts: AutoTlsHosts;
}

function isIPv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function isIPv6(s: string): boolean {
  if (!s.includes(":") || s.includes("%")) return false;
  try {
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Splits an `--auto-tls-host` value on `,`: IP literals become IP SANs, the rest DNS SANs. */
export function parseAutoTlsHosts(value: string): Result<AutoTlsHosts> {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const raw of value.split(",")) {
    const host = raw.trim();
    if (host === "") continue;
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    if (isIPv4(bare) || isIPv6(bare)) ips.push(bare);
    else if (/^[A-Za-z0-9*_.-]+$/.test(host)) dns.push(host);
    else {
      return err(
        `--auto-tls-host: invalid host ${
          JSON.stringify(host)
        }: expected host names and IP addresses separated by commas`,
      );
    }
  }
  if (dns.length + ips.length === 0) {
    return err("--auto-tls-host: no host given: expected e.g. --auto-tls-host localhost,127.0.0.1");
  }
  return ok({ dns, ips });
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ");
}

/**
 * The start-up banner, as the Go sidekick prints it: the host value, the SHA-256 of the certificate (two lines
 * of 16 upper-case hex bytes) and the base64 SHA-256 of the public key (SPKI).
 */
export async function autoTlsBanner(
  value: string,
  certDer: ArrayBuffer,
  spkiDer: ArrayBuffer,
): Promise<string> {
  const fp = new Uint8Array(await crypto.subtle.digest("SHA-256", certDer));
  const pk = new Uint8Array(await crypto.subtle.digest("SHA-256", spkiDer));
  return [
    `Generated TLS certificate for host '${value}'`,
    "",
    `Certificate: ${hexBytes(fp.subarray(0, 16))}`,
    `             ${hexBytes(fp.subarray(16))}`,
    `Public Key:  ${btoa(String.fromCharCode(...pk))}`,
    "",
  ].join("\n");
}

/**
 * `@peculiar/x509`, loaded on first use (its tsyringe dependency needs the Reflect polyfill).
 * The runtime caches dynamic imports, so later calls cost nothing.
 */
async function loadX509(): Promise<typeof X509> {
  await import("reflect-metadata");
  return await import("@peculiar/x509");
}

/** One year, as the Go sidekick's auto-TLS certificate. */
export const AUTO_TLS_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;

/** Generates the key and certificate for an `--auto-tls-host` value. */
export async function generateAutoTls(value: string, now: Date = new Date()): Promise<AutoTls> {
  const hosts = parseAutoTlsHosts(value);
  if (!hosts.ok) throw new Error(hosts.error);
  const x509 = await loadX509();
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  // A random positive 128-bit serial (top bit clear, never zero).
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0] & 0x7f) | 0x01;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Array.from(serial, (b) => b.toString(16).padStart(2, "0")).join(""),
    name: "O=Acme Co",
    notBefore: now,
    notAfter: new Date(now.getTime() + AUTO_TLS_VALIDITY_MS),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...hosts.value.dns.map((d) => ({ type: "dns" as const, value: d })),
        ...hosts.value.ips.map((ip) => ({ type: "ip" as const, value: ip })),
      ]),
    ],
  });
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  const certPem = pem("CERTIFICATE", cert.rawData);
  return {
    pair: { cert: certPem, key: pem("PRIVATE KEY", pkcs8) },
    certPem,
    banner: await autoTlsBanner(value, cert.rawData, spki),
    hosts: hosts.value,
  };
}
