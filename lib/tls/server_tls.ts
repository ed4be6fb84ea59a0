/**
 * The server-TLS plan of one sidekick: `--cert`/`--key` files (read and checked before anything
 * binds, then watched for changes) or a certificate generated for `--auto-tls-host`.
 * @module
 */

import { type AutoTls, generateAutoTls, parseAutoTlsHosts } from "./auto_tls.ts";
import { CertWatcher } from "./cert_watcher.ts";
import { type KeyPair, parseKeyPair, readPair } from "./key_pair.ts";
import { ok, type Result } from "../shared/result.ts";

const q = JSON.stringify;

/** The TLS flags of a {@linkcode Config}-like object. */
export interface ServerTlsFlags {
  /** `--cert` path or `""`. */
  readonly cert: string;
  /** `--key` path or `""`. */
  readonly key: string;
  /** `--key-password` or `""`. */
  readonly keyPassword: string;
  /** `--auto-tls-host` value or `""`. */
  readonly autoTlsHost: string;
}

/** Where the server-TLS code reports. */
export interface ServerTlsHooks {
  /** Info lines (certificate reloaded). */
  onInfo(text: string): void;
  /** Error and warning lines (reload failed, certificate expired). */
  onError(text: string): void;
  /** The auto-TLS banner (stdout in the Go sidekick). */
  onBanner(text: string): void;
}

/** The server-TLS part of one sidekick: which certificate, and how it changes. */
export interface ServerTls {
  /** `files` for `--cert/--key`, `auto` for `--auto-tls-host`. */
  readonly mode: "files" | "auto";
  /** The PEM of `GET /v1/certificates`: the generated certificate in auto mode, else undefined. */
  certificatePem(): string | undefined;
  /** Auto mode: generates the certificate and prints the banner (once). Files mode: nothing. */
  prepare(): Promise<void>;
  /** The pair to serve now (after {@linkcode ServerTls.prepare}). */
  pair(): KeyPair;
  /**
   * Files mode: watches `--cert/--key` and hands every changed, valid pair to `apply` (which
   * swaps it into every listener) until the returned `stop`. Auto mode: nothing to watch.
   */
  watch(apply: (pair: KeyPair) => Result<void>): () => void;
}

/**
 * The server TLS of a configuration, or undefined for plain HTTP. `--cert/--key` win over
 * `--auto-tls-host` (as in the Go sidekick); their files are read and checked now, so errors
 * surface before anything binds.
 */
export function planServerTls(
  flags: ServerTlsFlags,
  hooks: ServerTlsHooks,
): Result<ServerTls | undefined> {
  if (flags.cert !== "" && flags.key !== "") {
    const source = { certPath: flags.cert, keyPath: flags.key, password: flags.keyPassword };
    const read = readPair(source, Deno.readTextFileSync);
    if (!read.ok) return read;
    const [cert, key] = read.value;
    const loaded = parseKeyPair(cert, key, source);
    if (!loaded.ok) return loaded;
    if (loaded.value.notAfter.getTime() < Date.now()) {
      hooks.onError(
        `the certificate ${q(flags.cert)} expired on ${loaded.value.notAfter.toISOString()}`,
      );
    }
    return ok({
      mode: "files",
      certificatePem: () => undefined,
      prepare: () => Promise.resolve(),
      pair: () => loaded.value.pair,
      watch(apply) {
        const watcher = new CertWatcher({
          ...source,
          initial: { cert, key },
          apply: (next) => apply(next.pair),
          onInfo: hooks.onInfo,
          onError: hooks.onError,
        });
        watcher.start();
        return () => watcher.stop();
      },
    });
  }
  if (flags.autoTlsHost !== "") {
    const hosts = parseAutoTlsHosts(flags.autoTlsHost);
    if (!hosts.ok) return hosts;
    let generated: AutoTls | undefined;
    return ok({
      mode: "auto",
      certificatePem: () => generated?.certPem,
      async prepare() {
        if (generated) return;
        generated = await generateAutoTls(flags.autoTlsHost);
        hooks.onBanner(generated.banner);
      },
      pair() {
        if (!generated) throw new Error("auto-TLS certificate not generated: call prepare()");
        return generated.pair;
      },
      watch: () => () => {},
    });
  }
  return ok(undefined);
}
