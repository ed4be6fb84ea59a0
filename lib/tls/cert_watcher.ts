/**
 * Watches the `--cert`/`--key` files and hands every changed, valid pair to the listener, so a
 * renewed certificate is served without a restart.
 * @module
 */

import { readError } from "../shared/read_error.ts";
import type { Result } from "../shared/result.ts";
import { type KeyPairSource, type LoadedPair, parseKeyPair } from "./key_pair.ts";

const q = JSON.stringify;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
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
