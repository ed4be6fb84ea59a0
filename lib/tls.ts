/**
 * Server-side TLS: loading `--cert`/`--key` (with `--key-password` for encrypted
 * keys), watching them for changes, and an HTTPS listener whose certificate can be replaced
 * without dropping in-flight requests.
 *
 * `Deno.serve` takes its certificate once, at bind time, and has no public way to swap it. A
 * reload therefore binds a second `Deno.serve` on the same port with `SO_REUSEPORT`, then shuts
 * the old one down gracefully: new connections reach the new listener (and certificate), while
 * requests already in flight on the old one finish. `reusePort` on a TLS listener is an unstable
 * Deno API (`--unstable-net`, set in deno.json); without it the certificate is served until
 * restart and a changed pair is reported, never half-applied.
 *
 * @example
 * ```ts
 * import { loadKeyPair, serveTls } from "./tls.ts";
 * const loaded = loadKeyPair({ certPath: "public.crt", keyPath: "private.key" });
 * if (!loaded.ok) throw new Error(loaded.error);
 * const server = serveTls({ hostname: "127.0.0.1", port: 8443 }, () => new Response("hi"), loaded.value.pair);
 * await server.shutdown();
 * ```
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { type AutoTls, generateAutoTls, parseAutoTlsHosts } from "./autotls.ts";
import { err, ok, type Result } from "./result.ts";
import { readError } from "./read_error.ts";
import { setListenerNoDelay } from "./listener_nodelay.ts";

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

interface PemBlock {
  label: string;
  text: string;
}

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

function readPair(
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

/** The parent directory of a path (`.` for a bare file name). */
function parentDir(path: string): string {
  const i = Math.max(
    path.lastIndexOf("/"),
    Deno.build.os === "windows" ? path.lastIndexOf("\\") : -1,
  );
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** What a {@linkcode CertWatcher} needs. */
export interface CertWatcherOptions extends KeyPairSource {
  /** The texts of the pair being served now (changes are detected against them). */
  readonly initial?: { cert: string; key: string };
  /** Applies a changed, valid pair; an error result is logged and the old pair stays. */
  apply(loaded: LoadedPair): Result<void>;
  /** Info lines (a successful reload). */
  onInfo(text: string): void;
  /** Error lines (a broken new pair, a failed swap). */
  onError(text: string): void;
  /** Re-read period, ms (default one minute, as the Go sidekick polls). */
  readonly pollMs?: number;
  /** Quiet time after a file-system event before re-reading, ms (default 200). */
  readonly debounceMs?: number;
  /** Watch the parent directories for changes (default true). */
  readonly watch?: boolean;
  /** Async file reader (tests inject one). */
  readonly readFile?: (path: string) => Promise<string>;
}

/** Default period of the certificate re-read. */
export const CERT_POLL_MS = 60_000;

/**
 * Watches a `--cert`/`--key` pair: `Deno.watchFs` on the parent directories (any event there,
 * e.g. a Kubernetes secret's `..data` symlink swap, triggers a debounced re-read) plus a re-read
 * every minute, as the Go sidekick does for symlinks and secrets. A re-read whose texts differ
 * from the pair in use is checked and applied; a broken pair is logged once per content and the
 * current one kept.
 */
export class CertWatcher {
  readonly #o: CertWatcherOptions;
  #seen: string;
  #poll: ReturnType<typeof setInterval> | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #watchers: Deno.FsWatcher[] = [];
  #checking: Promise<void> = Promise.resolve();
  #stopped = false;

  /** A watcher; nothing happens until {@linkcode CertWatcher.start}. */
  constructor(options: CertWatcherOptions) {
    this.#o = options;
    this.#seen = options.initial ? `${options.initial.cert}\0${options.initial.key}` : "";
  }

  /** Starts polling and watching. */
  start(): void {
    if (this.#poll || this.#stopped) return;
    this.#poll = setInterval(() => this.check(), this.#o.pollMs ?? CERT_POLL_MS);
    if (this.#o.watch === false) return;
    const dirs = [...new Set([parentDir(this.#o.certPath), parentDir(this.#o.keyPath)])];
    for (const dir of dirs) {
      let watcher: Deno.FsWatcher;
      try {
        watcher = Deno.watchFs(dir, { recursive: false });
      } catch (e) {
        this.#o.onError(
          `unable to watch ${q(dir)} for certificate changes (polling only): ${message(e)}`,
        );
        continue;
      }
      this.#watchers.push(watcher);
      (async () => {
        try {
          for await (const _ of watcher) this.#schedule();
        } catch {
          // directory gone or watcher closed: polling still covers it
        }
      })();
    }
  }

  /** Stops polling and watching (idempotent). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    this.#poll = undefined;
    for (const w of this.#watchers.splice(0)) {
      try {
        w.close();
      } catch {
        // already closed
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.check(), this.#o.debounceMs ?? 200);
  }

  /** Re-reads the pair now and applies it if it changed; resolves when done. */
  check(): Promise<void> {
    this.#checking = this.#checking.then(() => this.#check());
    return this.#checking;
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    const read = this.#o.readFile ?? Deno.readTextFile;
    let cert: string, key: string;
    try {
      [cert, key] = await Promise.all([read(this.#o.certPath), read(this.#o.keyPath)]);
    } catch (e) {
      const state = `unreadable\0${message(e)}`;
      if (state === this.#seen) return;
      this.#seen = state;
      this.#o.onError(
        `TLS certificate reload failed, keeping the current certificate: ${readError(e)}`,
      );
      return;
    }
    const state = `${cert}\0${key}`;
    if (state === this.#seen || this.#stopped) return;
    this.#seen = state;
    const loaded = parseKeyPair(cert, key, this.#o);
    if (!loaded.ok) {
      this.#o.onError(
        `TLS certificate reload failed, keeping the current certificate: ${loaded.error}`,
      );
      return;
    }
    const applied = this.#o.apply(loaded.value);
    if (!applied.ok) {
      this.#o.onError(`TLS certificate not reloaded: ${applied.error}`);
      return;
    }
    this.#o.onInfo(
      `reloaded TLS certificate ${q(this.#o.certPath)} (serial ${loaded.value.serial}, ` +
        `valid until ${loaded.value.notAfter.toISOString()})`,
    );
  }
}

/** Listener options of {@linkcode serveTls} (the TLS-free part of `Deno.ServeTcpOptions`). */
export interface TlsServeOptions {
  /** Address to bind. */
  readonly hostname: string;
  /** Port to bind; 0 lets the kernel pick (later rebinds reuse the picked one). */
  readonly port: number;
  /** Passed to `Deno.serve`. */
  readonly automaticCompression?: boolean;
  /** Passed to `Deno.serve`. */
  readonly onError?: (error: unknown) => Response | Promise<Response>;
  /** Called once, when the first listener is bound. */
  readonly onListen?: (addr: Deno.NetAddr) => void;
  /**
   * How long a shutdown waits, once no request is in flight, for connections that never finished
   * their TLS handshake (default {@linkcode HANDSHAKE_GRACE_MS}).
   */
  readonly handshakeGraceMs?: number;
  /**
   * The port is shared with listeners of other isolates (`--workers`): bind it with
   * `SO_REUSEPORT` directly, since the caller already checked that it was free.
   */
  readonly shared?: boolean;
}

/**
 * Deno 2.9.6's graceful shutdown of an HTTPS server waits, without limit, for every connection
 * still in its TLS handshake (a client that connects and sends nothing), and forcing it through
 * the server's `signal` after `shutdown()` throws an uncaught `BadResource`. So once no request is
 * in flight, a shutdown gives such connections this long (the 5 s after which Go's
 * `http.Server.Shutdown` drops never-used connections), then reports the server finished; the
 * stragglers go when their clients do, or with the process.
 */
export const HANDSHAKE_GRACE_MS = 5_000;

/**
 * Whether this process may bind TLS listeners with `reusePort` (`--unstable-net`). Checked
 * through `Deno.listenDatagram`, which exists only under that flag: asking `Deno.serve` for
 * `reusePort` without it ends the process instead of throwing.
 */
export function canRebindTls(): boolean {
  return Deno.build.os === "linux" &&
    typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}

/** An HTTPS server whose certificate can be replaced; see {@linkcode serveTls}. */
export interface TlsServer extends Deno.HttpServer<Deno.NetAddr> {
  /** Whether {@linkcode TlsServer.swap} can work in this process (Linux, `--unstable-net`). */
  readonly reloadable: boolean;
  /**
   * Serves `pair` to new connections: binds a new listener on the same address, then shuts the
   * old one down gracefully (its in-flight requests finish). On error nothing changes.
   */
  swap(pair: KeyPair): Result<void>;
  /**
   * Whether the listener has `TCP_NODELAY` (so responses never wait for the client's delayed
   * acknowledgement), as of the latest bind: how many sockets were set, or why it failed.
   */
  readonly noDelay: Result<number>;
}

/**
 * `Deno.serve` over TLS (HTTP/1.1 and HTTP/2 by ALPN) with a replaceable certificate. Throws
 * what `Deno.serve` throws for the first bind (e.g. `Deno.errors.AddrInUse`).
 */
export function serveTls(
  options: TlsServeOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  pair: KeyPair,
): TlsServer {
  const reusePort = canRebindTls();
  // Requests in flight (until their response is delivered or the client leaves), across every
  // listener: what a shutdown must wait for, unlike connections stuck in a handshake.
  let active = 0;
  const settled = () => void active--;
  const counted: Deno.ServeHandler<Deno.NetAddr> = (req, info) => {
    active++;
    info.completed.then(settled, settled);
    return handler(req, info);
  };
  let noDelay: Result<number> = err("not listening");
  const bind = (p: KeyPair, port: number): Deno.HttpServer<Deno.NetAddr> => {
    const server = Deno.serve({
      hostname: options.hostname,
      port,
      reusePort,
      cert: p.cert,
      key: p.key,
      automaticCompression: options.automaticCompression,
      onError: options.onError,
      onListen: () => {},
    }, counted);
    // Before the event loop runs again, so before the first connection is accepted.
    noDelay = setListenerNoDelay(server.addr.port);
    return server;
  };

  let port = options.port;
  if (reusePort && !options.shared) {
    // SO_REUSEPORT would let a second process share the port silently: probe it first so an
    // address in use fails as it does without TLS.
    const probe = Deno.listen({ hostname: options.hostname, port, transport: "tcp" });
    port = (probe.addr as Deno.NetAddr).port;
    probe.close();
  }
  let current = bind(pair, port);
  const addr = current.addr;
  const draining = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let closing: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  options.onListen?.(addr);

  const grace = options.handshakeGraceMs ?? HANDSHAKE_GRACE_MS;
  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      let done = false;
      const graceful = Promise.all([current.shutdown(), ...[...draining].map((s) => s.finished)])
        .catch(() => {}) // nothing more to do about a listener that failed to close
        .finally(() => (done = true));
      let quietSince: number | undefined;
      while (!done) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([graceful, new Promise((r) => (timer = setTimeout(r, 50)))]);
        clearTimeout(timer);
        if (done) break;
        if (active > 0) quietSince = undefined;
        else if (Date.now() - (quietSince ??= Date.now()) >= grace) break;
      }
      resolveFinished();
    })();
    return closing;
  };
  return {
    addr,
    finished,
    reloadable: reusePort,
    get noDelay() {
      return noDelay;
    },
    swap(next) {
      if (closing) return err("the server is shutting down");
      if (!reusePort) {
        return err(
          Deno.build.os === "linux"
            ? "replacing the certificate of a running listener needs --unstable-net; " +
              "restart sidekick to serve the new certificate"
            : "replacing the certificate of a running listener needs Linux; " +
              "restart sidekick to serve the new certificate",
        );
      }
      let fresh: Deno.HttpServer<Deno.NetAddr>;
      try {
        fresh = bind(next, addr.port);
      } catch (e) {
        return err(`unable to listen with the new certificate: ${message(e)}`);
      }
      const old = current;
      current = fresh;
      draining.add(old);
      old.shutdown().finally(() => draining.delete(old));
      return ok(undefined);
    },
    shutdown,
    ref() {
      for (const s of [current, ...draining]) s.ref();
    },
    unref() {
      for (const s of [current, ...draining]) s.unref();
    },
    [Symbol.asyncDispose]: shutdown,
  };
}

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
