/**
 * The server's key pair: reading `--cert`/`--key`, decrypting a key protected by
 * `--key-password` (legacy PEM or PKCS#8), and checking that certificate and key belong together.
 *
 * @example
 * ```ts
 * import { loadKeyPair } from "./key_pair.ts";
 * const loaded = loadKeyPair({ certPath: "public.crt", keyPath: "private.key" });
 * if (!loaded.ok) throw new Error(loaded.error);
 * console.log(loaded.value.serial, loaded.value.notAfter);
 * ```
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { err, ok, type Result } from "../shared/result.ts";
import { readError } from "../shared/read_error.ts";

/** A certificate chain and its private key, PEM, as `Deno.serve` takes them. */
export interface KeyPair {
  /** The certificate chain, leaf first (only the CERTIFICATE blocks of the file). */
  readonly cert: string;
  /** The private key as unencrypted PKCS#8 PEM (whatever format and encryption the file had). */
  readonly key: string;
}

/** A checked pair plus what the logs say about it. */
export interface LoadedPair {
  /** The pair to serve. */
  readonly pair: KeyPair;
  /** Serial number of the leaf certificate, upper-case hex. */
  readonly serial: string;
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:…`. */
  readonly fingerprint: string;
  /** End of the leaf certificate's validity. */
  readonly notAfter: Date;
}

/** Where a pair comes from: the `--cert`, `--key` and `--key-password` values. */
export interface KeyPairSource {
  /** Path of the PEM certificate (chain). */
  readonly certPath: string;
  /** Path of the PEM private key. */
  readonly keyPath: string;
  /** Password of an encrypted key; `""` for none. */
  readonly password?: string;
}

/** One whole PEM block: its label (`CERTIFICATE`, `ENCRYPTED PRIVATE KEY`) and its text. */
interface PemBlock {
  label: string;
  text: string;
}

/** Every whole `BEGIN`…`END` block of a PEM text, in order. */
function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  for (const m of text.matchAll(re)) blocks.push({ label: m[1], text: m[0] });
  return blocks;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const q = JSON.stringify;

/** Whether a PEM private key block is password-protected (legacy RFC 1423 or PKCS#8). */
export function isEncryptedKey(block: string): boolean {
  return /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(block) ||
    /^Proc-Type:\s*4,\s*ENCRYPTED\s*$/m.test(block);
}

/** The DER of the PBES2 object identifier (1.2.840.113549.1.5.13). */
const PBES2_OID = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];

/**
 * Whether an encrypted key block uses a scheme the runtime decrypts: every legacy PEM cipher it
 * names (DES-EDE3-CBC, AES-CBC), and PBES2 for PKCS#8. Decrypting with a wrong password can yield
 * garbage that the key decoder then calls "unsupported"; only this check tells that apart from a
 * scheme (such as PKCS#8 PBES1) that really is unsupported.
 */
function supportedScheme(block: string): boolean {
  if (!/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(block)) return true;
  const base64 = block.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  let der: Uint8Array;
  try {
    der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    return true; // not base64: let the wrong-password message stand
  }
  // The algorithm identifier comes first, within the first few dozen bytes.
  const head = der.subarray(0, 64);
  for (let i = 0; i + PBES2_OID.length <= head.length; i++) {
    if (PBES2_OID.every((b, j) => head[i + j] === b)) return true;
  }
  return false;
}

/**
 * The private key of a `--key` file as unencrypted PKCS#8 PEM. Accepts PKCS#8, PKCS#1 (RSA) and
 * SEC1 (EC) keys, plain or encrypted: legacy `Proc-Type: 4,ENCRYPTED` PEM (DES-EDE3-CBC,
 * AES-CBC) and encrypted PKCS#8 (PBES2). `EC PARAMETERS` blocks, which `openssl ecparam -genkey`
 * writes before the key, are ignored.
 */
export function decryptPrivateKey(text: string, keyPath: string, password = ""): Result<string> {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => b.label.endsWith("PRIVATE KEY"));
  if (keys.length === 0) {
    const swapped = blocks.some((b) => b.label.endsWith("CERTIFICATE"));
    return err(
      `--key: ${q(keyPath)} holds no PEM private key` +
        (swapped ? " (it holds a certificate: were --cert and --key swapped?)" : ""),
    );
  }
  if (keys.length > 1) {
    return err(`--key: ${q(keyPath)} holds ${keys.length} private keys; expected exactly one`);
  }
  const block = keys[0].text;
  const encrypted = isEncryptedKey(block);
  if (encrypted && password === "") {
    return err(`--key: ${q(keyPath)} is encrypted; give its password with --key-password`);
  }
  try {
    const key = createPrivateKey({
      key: block,
      format: "pem",
      ...(encrypted ? { passphrase: password } : {}),
    });
    return ok(key.export({ format: "pem", type: "pkcs8" }) as string);
  } catch (e) {
    const why = message(e);
    if (!encrypted) return err(`--key: ${q(keyPath)} is not a valid private key: ${why}`);
    if (/unsupported/i.test(why) && !supportedScheme(block)) {
      return err(
        `--key-password: unable to decrypt ${q(keyPath)}: unsupported encryption scheme ` +
          "(re-encrypt it with PBES2: openssl pkcs8 -topk8 -v2 aes-256-cbc)",
      );
    }
    return err(`--key-password: unable to decrypt ${q(keyPath)}: wrong password`);
  }
}

/**
 * Checks a certificate file's text and a key file's text as a serving pair: at least one
 * parseable certificate, exactly one private key (decrypted with `password` if needed), and the
 * key belonging to the first (leaf) certificate. Errors are one line naming the flag and file.
 */
export function parseKeyPair(
  certText: string,
  keyText: string,
  source: KeyPairSource,
): Result<LoadedPair> {
  const { certPath, keyPath } = source;
  const blocks = pemBlocks(certText);
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (certs.length === 0) {
    const swapped = blocks.some((b) => b.label.endsWith("PRIVATE KEY"));
    return err(
      `--cert: ${q(certPath)} is not a valid certificate: no PEM CERTIFICATE block found` +
        (swapped ? " (it holds a private key: were --cert and --key swapped?)" : ""),
    );
  }
  const parsed: X509Certificate[] = [];
  for (const [i, c] of certs.entries()) {
    try {
      parsed.push(new X509Certificate(c.text));
    } catch (e) {
      const which = certs.length > 1 ? `certificate ${i + 1} of ${certs.length}` : "certificate";
      return err(`--cert: ${q(certPath)} is not a valid certificate: ${which}: ${message(e)}`);
    }
  }
  const key = decryptPrivateKey(keyText, keyPath, source.password ?? "");
  if (!key.ok) return key;
  const leaf = parsed[0];
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key.value));
  } catch {
    matches = false;
  }
  if (!matches) {
    return err(
      `--key: ${q(keyPath)} is not the private key of the certificate in ${q(certPath)}`,
    );
  }
  return ok({
    pair: { cert: certs.map((c) => c.text).join("\n") + "\n", key: key.value },
    serial: evenHex(leaf.serialNumber.toUpperCase()),
    fingerprint: leaf.fingerprint256,
    notAfter: new Date(leaf.validTo),
  });
}

/** Hex with an even number of digits (whole bytes), as `openssl x509 -serial` prints it. */
function evenHex(hex: string): string {
  return hex.length % 2 ? "0" + hex : hex;
}

/** Reads both files and checks them with {@linkcode parseKeyPair}. */
export function loadKeyPair(
  source: KeyPairSource,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Result<LoadedPair> {
  const texts = readPair(source, readFile);
  return texts.ok ? parseKeyPair(texts.value[0], texts.value[1], source) : texts;
}

/** Reads the `--cert` and `--key` files; an error names the flag and the file. */
export function readPair(
  source: KeyPairSource,
  readFile: (path: string) => string,
): Result<[string, string]> {
  let cert: string;
  try {
    cert = readFile(source.certPath);
  } catch (e) {
    return err(`--cert: unable to load server certificate ${q(source.certPath)}: ${readError(e)}`);
  }
  try {
    return ok([cert, readFile(source.keyPath)]);
  } catch (e) {
    return err(`--key: unable to load server key ${q(source.keyPath)}: ${readError(e)}`);
  }
}
