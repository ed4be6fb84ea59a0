/**
 * The command line: flag table, parsing, validation, help and version text → a typed
 * {@linkcode Config}. Pure: the caller passes argv (and argv0) and decides what to print and which
 * exit status to use from the returned {@linkcode CliOutcome}.
 *
 * The interface is the Go sidekick's: the same long names, aliases and
 * defaults, one or two dashes for any name (`-address`, `--address`, `-a`, `--a`), values as
 * `--flag=value` or `--flag value`. Unlike Go, flags may also follow the SITE arguments (`--` ends
 * the flags), durations also accept a bare number of seconds, and every bad flag or value is a
 * one-line error naming the flag.
 *
 * @example
 * ```ts
 * import { parseCli } from "./cli.ts";
 * const outcome = parseCli(["-a", ":9000", "http://minio{1...4}:9000"], "0.1.0");
 * if (outcome.kind === "run") console.log(outcome.config.address); // ":9000"
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { type Config, DEFAULTS, type HostBalance } from "./config.ts";
import { formatDuration, parseDuration } from "./duration.ts";

/** What the command line asks for; the caller prints and exits accordingly. */
export type CliOutcome =
  /** Start a sidekick with this configuration. */
  | { kind: "run"; config: Config }
  /** Print the help: to stdout with status 0 for `--help`, to stderr with status 1 when no SITE. */
  | { kind: "help"; text: string; exitCode: 0 | 1 }
  /** Print `sidekick version <version>` to stdout, exit 0. */
  | { kind: "version"; text: string }
  /** Print this one-line message to stderr, exit 2. */
  | { kind: "error"; message: string };

/** How a flag's value is read. */
type FlagKind = "string" | "bool" | "int" | "duration" | "status" | "size";

/** Where a flag's value goes: a {@linkcode Config} field, or `--help`/`--version` themselves. */
type FlagTarget = keyof Config | "help" | "version";

/**
 * One row of the flag table. The row is the flag: its parsing (by `kind`, then `parse`), its
 * checks and where its value goes (`key`) are all here, so a new flag is one row plus its
 * {@linkcode Config} field.
 */
interface FlagSpec {
  /** Long name, without dashes. */
  readonly name: string;
  /** Short alias, without dashes. */
  readonly alias?: string;
  readonly kind: FlagKind;
  /** Where the value is stored (a `status` flag appends to its list). */
  readonly key: FlagTarget;
  /**
   * Checks (and may normalise) a `string` flag's value: the value to store, or an error message
   * without the flag's name (it is prefixed).
   */
  readonly parse?: (value: string) => { value: string } | { error: string };
  /** Help text (the default is appended from {@linkcode FlagSpec.defaultText}). */
  readonly usage: string;
  /** Shown as `(default: …)` in the help. */
  readonly defaultText?: string;
  /** Placeholder after the flag name in the help (`value` unless given). */
  readonly placeholder?: string;
  /** What a valid value looks like, for error messages. */
  readonly expects?: string;
  /** Not shown in the help. */
  readonly hidden?: boolean;
  /** Smallest accepted value of an `int` flag. */
  readonly min?: number;
  /** Largest accepted value of an `int` flag. */
  readonly max?: number;
  /** A `duration` flag that accepts zero (off). */
  readonly zeroOk?: boolean;
}

/** The values of `--host-balance`. */
const HOST_BALANCES: readonly string[] = ["least", "random", "ewma"] satisfies HostBalance[];

const DURATION_EXPECTS = "a duration such as 500ms, 5s or 1m30s, or a number of seconds";
const PATH_EXPECTS = "a path such as /minio/health/live";
const FILE_EXPECTS = "a file path";

/** The values `--trace` accepts (`""`: no trace lines). */
const TRACE_VALUES: readonly string[] = ["all", "application", "minio", ""];

/** Every flag, in help order (the Go declaration order), then `--help` and `--version`. */
const FLAGS: readonly FlagSpec[] = [
  {
    name: "address",
    key: "address",
    alias: "a",
    kind: "string",
    usage: "listening address for sidekick",
    defaultText: JSON.stringify(DEFAULTS.address),
    expects: "a listen address such as :8080, 127.0.0.1:8080 or [::1]:8080",
  },
  {
    name: "health-path",
    key: "healthPath",
    alias: "p",
    kind: "string",
    usage: "health check path",
    expects: PATH_EXPECTS,
  },
  {
    name: "read-health-path",
    key: "readHealthPath",
    alias: "r",
    kind: "string",
    usage: "health check path for read access - valid only for failover site",
    expects: PATH_EXPECTS,
  },
  {
    name: "health-port",
    key: "healthPort",
    kind: "int",
    usage: "health check port, 0 for the port of each endpoint",
    defaultText: String(DEFAULTS.healthPort),
    expects: "a port number in 0..65535",
    min: 0,
    max: 65535,
  },
  {
    name: "health-duration",
    key: "healthDurationMs",
    alias: "d",
    kind: "duration",
    expects: DURATION_EXPECTS,
    usage: "health check interval: a Go duration (500ms, 5s, 1m30s) or a number of seconds",
    defaultText: formatDuration(DEFAULTS.healthDurationMs),
  },
  {
    name: "health-timeout",
    key: "healthTimeoutMs",
    kind: "duration",
    expects: DURATION_EXPECTS,
    usage: "health check timeout: a Go duration or a number of seconds",
    defaultText: formatDuration(DEFAULTS.healthTimeoutMs),
  },
  {
    name: "insecure",
    key: "insecure",
    alias: "i",
    kind: "bool",
    usage: "disable TLS certificate verification",
  },
  { name: "rr-dns-mode", key: "rrDnsMode", kind: "bool", usage: "enable round-robin DNS mode" },
  {
    name: "health-optimistic",
    key: "healthOptimistic",
    kind: "bool",
    usage: "only perform health requests when nodes are down",
  },
  {
    name: "auto-tls-host",
    key: "autoTlsHost",
    kind: "string",
    usage: "enable auto TLS mode for the specified host",
    expects: "comma-separated host names or IP addresses",
  },
  { name: "log", key: "log", alias: "l", kind: "bool", usage: "enable logging" },
  {
    name: "trace",
    key: "trace",
    alias: "t",
    kind: "string",
    usage: "enable request tracing - valid values are [all,application,minio]",
    defaultText: JSON.stringify(DEFAULTS.trace),
    expects: "all, application or minio",
    parse: (value) =>
      TRACE_VALUES.includes(value) ? { value } : {
        error: `invalid value ${JSON.stringify(value)}; accepted values are ` +
          `[all,application,minio] ("" for no trace lines)`,
      },
  },
  { name: "quiet", key: "quiet", alias: "q", kind: "bool", usage: "disable console messages" },
  {
    name: "json",
    key: "json",
    kind: "bool",
    usage: "output sidekick logs and trace in json format",
  },
  { name: "debug", key: "debug", kind: "bool", usage: "output verbose trace" },
  {
    name: "cacert",
    key: "cacert",
    kind: "string",
    usage: "CA certificate to verify peer against",
    expects: FILE_EXPECTS,
  },
  {
    name: "client-cert",
    key: "clientCert",
    kind: "string",
    usage: "client certificate file",
    expects: FILE_EXPECTS,
  },
  {
    name: "client-key",
    key: "clientKey",
    kind: "string",
    usage: "client private key file",
    expects: FILE_EXPECTS,
  },
  {
    name: "cert",
    key: "cert",
    kind: "string",
    usage: "server certificate file",
    expects: FILE_EXPECTS,
  },
  {
    name: "key",
    key: "key",
    kind: "string",
    usage: "server private key file",
    expects: FILE_EXPECTS,
  },
  {
    name: "key-password",
    key: "keyPassword",
    kind: "string",
    usage: "server private key password",
    expects: "a password",
  },
  {
    name: "no-http2",
    key: "noHttp2",
    kind: "bool",
    usage: "serve HTTPS over HTTP/1.1 only (no HTTP/2 by ALPN)",
  },
  {
    name: "pprof",
    key: "pprof",
    kind: "string",
    usage: "start and listen for profiling on the specified address (e.g. :1337)",
    placeholder: ":1337",
    expects: "a listen address such as :1337",
  },
  {
    name: "dns-ttl",
    key: "dnsTtlMs",
    kind: "duration",
    expects: DURATION_EXPECTS,
    usage: "choose custom DNS TTL value for DNS refreshes for load balanced endpoints",
    defaultText: formatDuration(DEFAULTS.dnsTtlMs),
  },
  {
    name: "errors",
    key: "errors",
    alias: "e",
    kind: "bool",
    usage: "filter out any non-error responses",
  },
  {
    name: "status-code",
    key: "statusCodes",
    kind: "status",
    usage: "filter by given status code (repeat the flag for several codes)",
    expects: "an HTTP status code in 100..599",
  },
  {
    name: "host-balance",
    key: "hostBalance",
    kind: "string",
    usage:
      "specify the algorithm to select backend host when load balancing, supported values are 'least', 'random', 'ewma'",
    defaultText: JSON.stringify(DEFAULTS.hostBalance),
    expects: "'least', 'random' or 'ewma'",
    parse: (value) =>
      value === "" || HOST_BALANCES.includes(value) ? { value: value || DEFAULTS.hostBalance } : {
        error: `invalid value ${JSON.stringify(value)}; ` +
          `accepted values are ${HOST_BALANCES.map((b) => `'${b}'`).join(", ")}`,
      },
  },
  {
    name: "retries",
    key: "retries",
    kind: "int",
    usage: "retry a failed request on another backend this many times at most, when safe " +
      "(0: never)",
    defaultText: String(DEFAULTS.retries),
    placeholder: "N",
    expects: "a whole number of retries in 0..10",
    min: 0,
    max: 10,
  },
  {
    name: "retry-buffer",
    key: "retryBufferBytes",
    kind: "size",
    usage: "keep request bodies up to this size so that they can be retried (0: retry only " +
      "requests without a body)",
    defaultText: "1MiB",
    placeholder: "SIZE",
    expects: "a size such as 1MiB, 512KiB or 65536 (bytes), at most 1GiB",
  },
  {
    name: "health-rise",
    key: "healthRise",
    kind: "int",
    usage: "consecutive passing health checks before a DOWN backend takes traffic again",
    defaultText: String(DEFAULTS.healthRise),
    placeholder: "N",
    expects: "a whole number of checks in 1..100",
    min: 1,
    max: 100,
  },
  {
    name: "health-fall",
    key: "healthFall",
    kind: "int",
    usage: "consecutive failed health checks before an UP backend is taken out",
    defaultText: String(DEFAULTS.healthFall),
    placeholder: "N",
    expects: "a whole number of checks in 1..100",
    min: 1,
    max: 100,
  },
  {
    name: "slow-start",
    key: "slowStartMs",
    kind: "duration",
    zeroOk: true,
    expects: DURATION_EXPECTS,
    usage: "ramp a recovered backend's share of new requests up over this long (0s: off)",
    defaultText: formatDuration(DEFAULTS.slowStartMs),
  },
  {
    name: "response-timeout",
    key: "responseTimeoutMs",
    kind: "duration",
    zeroOk: true,
    expects: DURATION_EXPECTS,
    usage: "longest wait for a backend's response headers once the request is sent; then retry " +
      "elsewhere when safe, else 504 (0s: no bound)",
    defaultText: formatDuration(DEFAULTS.responseTimeoutMs),
  },
  {
    name: "eject-after",
    key: "ejectAfter",
    kind: "int",
    usage: "consecutive failures (timeouts, resets, refused connections) that take a backend " +
      "out of picking for a while, even while its health check passes (0: never)",
    defaultText: String(DEFAULTS.ejectAfter),
    placeholder: "N",
    expects: "a whole number of failures in 0..1000",
    min: 0,
    max: 1000,
  },
  {
    name: "hedge-after",
    key: "hedgeAfterMs",
    kind: "duration",
    zeroOk: true,
    expects: DURATION_EXPECTS,
    usage: "send a GET or HEAD without response headers after this long to another backend too; " +
      "the first answer wins (0s: off)",
    defaultText: formatDuration(DEFAULTS.hedgeAfterMs),
  },
  {
    name: "verify-bodies",
    key: "verifyBodies",
    kind: "bool",
    usage: "count every response body byte as it passes and see a body the backend breaks off " +
      "(costs CPU on large bodies; without it, bodies with a declared length pass through " +
      "natively and count that length)",
  },
  {
    name: "workers",
    key: "workers",
    kind: "int",
    usage: "worker isolates serving requests, about one core each (1 on macOS and Windows)",
    defaultText: "the CPUs available, at most 4",
    placeholder: "N",
    expects: "a whole number of workers in 1..64",
    min: 1,
    max: 64,
  },
  {
    name: "tls-max",
    key: "tlsMax",
    kind: "string",
    usage: "maximum TLS version",
    defaultText: JSON.stringify(DEFAULTS.tlsMax),
    expects: "1.3",
    hidden: true,
    parse: (value) =>
      value === "1.3" ? { value } : {
        error: value === "1.2"
          ? "1.2 is not supported: the Deno TLS stack cannot cap the TLS version; " +
            "the only accepted value is 1.3 (the default)"
          : `invalid value ${JSON.stringify(value)}; the only accepted value is 1.3 ` +
            "(1.2 cannot be enforced by the Deno TLS stack)",
      },
  },
  { name: "help", key: "help", alias: "h", kind: "bool", usage: "show help" },
  { name: "version", key: "version", alias: "v", kind: "bool", usage: "print the version" },
];

/** Long name or alias → flag. */
const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(
  FLAGS.flatMap((f) => f.alias ? [[f.name, f], [f.alias, f]] : [[f.name, f]]),
);

/** Placeholder the normaliser puts in place of a token naming no known flag. */
const UNKNOWN = "\u0000unknown";

/** The option table handed to `parseArgs` (value flags as strings, the rest booleans). */
const PARSE_OPTIONS = Object.fromEntries(
  FLAGS.map((f) => [f.name, { type: f.kind === "bool" ? "boolean" : "string" }] as const),
);

const TRUE_WORDS = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/**
 * Rewrites every flag token to its long two-dash form (`-a=:9000` → `--address=:9000`) so that
 * `parseArgs` sees one spelling per flag; the value token after a value flag, and everything after
 * `--`, is left untouched. Keeps one token per input token, so token indices map back to argv.
 */
function normalise(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      out.push(token);
      continue;
    }
    const { name, value } = splitFlag(token);
    const flag = BY_NAME.get(name);
    if (flag === undefined) {
      out.push(`--${UNKNOWN}`);
      continue;
    }
    out.push(value === undefined ? `--${flag.name}` : `--${flag.name}=${value}`);
    if (flag.kind !== "bool" && value === undefined && i + 1 < argv.length) {
      out.push(argv[++i]); // the value, verbatim, even if it looks like a flag
    }
  }
  return out;
}

/** `--name=value` / `-name` → name without dashes and the inline value, if any. */
function splitFlag(token: string): { name: string; value?: string } {
  const body = token.startsWith("--") ? token.slice(2) : token.slice(1);
  const eq = body.indexOf("=");
  return eq < 0 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

/** Everything collected from the flags before the final checks. */
interface Draft {
  config: Config;
  given: Set<string>;
  help: boolean;
  version: boolean;
}

/**
 * Parses the command line (without the program name) into what to do.
 *
 * `--help` wins over `--version`, and both win over any error and over a missing SITE. Errors are
 * one line and name the flag. `version` is this program's version (from deno.json); `argv0` is the
 * program name to show in the help text and in error hints.
 */
export function parseCli(argv: string[], version: string, argv0 = "sidekick"): CliOutcome {
  const args = normalise(argv);
  const { tokens } = parseArgs({
    args,
    options: PARSE_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const draft: Draft = {
    config: { ...DEFAULTS, statusCodes: [], sites: [] },
    given: new Set(),
    help: false,
    version: false,
  };
  let error: string | undefined;
  for (const token of tokens) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") {
      draft.config.sites.push(token.value);
      continue;
    }
    const flag = BY_NAME.get(token.name);
    const problem = flag === undefined
      ? `unknown flag ${argv[token.index].split("=")[0]}; see '${argv0} --help'`
      : applyFlag(draft, flag, token.value);
    error ??= problem;
  }
  if (draft.help) return { kind: "help", text: helpText(argv0), exitCode: 0 };
  if (draft.version) return { kind: "version", text: `sidekick version ${version}` };
  error ??= crossCheck(draft);
  if (error !== undefined) return { kind: "error", message: error };
  if (draft.config.sites.length === 0) return { kind: "help", text: helpText(argv0), exitCode: 1 };
  return { kind: "run", config: finish(draft) };
}

/** Reads one flag occurrence into the draft; returns an error message or undefined. */
function applyFlag(draft: Draft, flag: FlagSpec, value: string | undefined): string | undefined {
  const parsed = parseValue(flag, value);
  if ("error" in parsed) return `--${flag.name}: ${parsed.error}`;
  draft.given.add(flag.name);
  const key = flag.key;
  if (key === "help" || key === "version") draft[key] = parsed.value as boolean;
  else if (flag.kind === "status") draft.config.statusCodes.push(parsed.value as number);
  else (draft.config as unknown as Record<string, unknown>)[key] = parsed.value;
  return undefined;
}

/** A flag's value as its kind (and its `parse`) reads it, or an error without the flag's name. */
function parseValue(
  flag: FlagSpec,
  value: string | undefined,
): { value: string | number | boolean } | { error: string } {
  if (flag.kind === "bool") {
    if (value === undefined || TRUE_WORDS.has(value)) return { value: true };
    if (FALSE_WORDS.has(value)) return { value: false };
    return { error: `invalid value ${JSON.stringify(value)}; expected true or false` };
  }
  if (value === undefined) return { error: `missing value; expected ${flag.expects ?? "a value"}` };
  const invalid = { error: `invalid value ${JSON.stringify(value)}; expected ${flag.expects}` };
  switch (flag.kind) {
    case "int": {
      const n = parseGoInt(value);
      if (n === undefined) return invalid;
      if (n < (flag.min ?? -Infinity) || n > (flag.max ?? Infinity)) {
        return { error: `${value} is out of range; expected ${flag.expects}` };
      }
      return { value: n };
    }
    case "duration": {
      const parsed = parseDuration(value);
      if (!parsed.ok) return { error: parsed.error };
      if (parsed.value < 0 || (parsed.value === 0 && !flag.zeroOk)) {
        return { error: `must be greater than zero, got ${JSON.stringify(value)}` };
      }
      return { value: parsed.value };
    }
    case "size": {
      const bytes = parseSize(value);
      return bytes === undefined || bytes > MAX_RETRY_BUFFER ? invalid : { value: bytes };
    }
    case "status": {
      if (value.includes(",")) {
        const [first, second] = value.split(",").map((s) => s.trim());
        return {
          error: `invalid value ${JSON.stringify(value)}; give one code per flag and ` +
            `repeat the flag (--status-code ${first} --status-code ${second || "…"})`,
        };
      }
      const code = /^[+-]?\d+$/.test(value) ? Number(value) : NaN;
      if (!Number.isInteger(code) || code < 100 || code > 599) {
        return {
          error: `invalid value ${JSON.stringify(value)}; expected an HTTP status code ` +
            `in 100..599 (repeat the flag for several codes)`,
        };
      }
      return { value: code };
    }
    case "string":
      // No text flag takes a URL: one here is a SITE the flag swallowed, its own value left out.
      if (flag.name !== "key-password" && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
        return {
          error: `missing value (${JSON.stringify(value)} is a SITE); expected ${
            flag.expects ?? "a value"
          }`,
        };
      }
      return flag.parse ? flag.parse(value) : { value };
  }
}

/** Checks that need the whole command line: flags that only make sense in pairs. */
function crossCheck(draft: Draft): string | undefined {
  const c = draft.config;
  if (c.cert !== "" && c.key === "") {
    return "--cert: given without --key; TLS termination needs both --cert and --key";
  }
  if (c.key !== "" && c.cert === "") {
    return "--key: given without --cert; TLS termination needs both --cert and --key";
  }
  if (c.clientCert !== "" && c.clientKey === "") {
    return "--client-cert: given without --client-key; mTLS towards backends needs both";
  }
  if (c.clientKey !== "" && c.clientCert === "") {
    return "--client-key: given without --client-cert; mTLS towards backends needs both";
  }
  if (c.hedgeAfterMs > 0 && c.retries === 0) {
    return "--hedge-after: hedges spend the retry budget; it needs --retries of 1 or more";
  }
  if (c.hedgeAfterMs > 0 && c.responseTimeoutMs > 0 && c.hedgeAfterMs >= c.responseTimeoutMs) {
    return "--hedge-after: must be shorter than --response-timeout " +
      `(${formatDuration(c.responseTimeoutMs)}), or the attempt is abandoned before it is hedged`;
  }
  if (c.noHttp2 && c.cert === "" && c.autoTlsHost === "") {
    return "--no-http2: given without --cert/--key or --auto-tls-host; it applies to the HTTPS " +
      "listener";
  }
  if (c.keyPassword !== "" && c.key === "") {
    return "--key-password: given without --key; it decrypts the server key of --cert/--key";
  }
  return undefined;
}

/** Final touches: normalised health paths, whether `--trace` was given. */
function finish(draft: Draft): Config {
  const config = draft.config;
  config.traceExplicit = draft.given.has("trace");
  config.healthPath = normaliseHealthPath(config.healthPath);
  config.readHealthPath = !draft.given.has("read-health-path") || config.readHealthPath === ""
    ? config.healthPath
    : normaliseHealthPath(config.readHealthPath);
  return config;
}

/** Empty → `/`; a missing leading `/` is added. */
function normaliseHealthPath(path: string): string {
  return path.startsWith("/") ? path : `/${path}`;
}

/** The largest `--retry-buffer`: a body held for a retry lives in memory. */
const MAX_RETRY_BUFFER = 1 << 30;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * A byte size: a whole or decimal number with an optional unit — `B`, IEC `KiB`/`MiB`/`GiB`
 * (and `K`/`M`/`G`, also powers of 1024), or SI `kB`/`MB`/`GB` (powers of 1000); case-insensitive.
 * Undefined when malformed.
 */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

/**
 * Parses an integer the way Go's `strconv.ParseInt(s, 0, 64)` does: optional sign, `0x`/`0o`/`0b`
 * prefixes, a leading `0` meaning octal, `_` between digits. Undefined when the syntax is wrong.
 */
function parseGoInt(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith("+") || s.startsWith("-")) {
    sign = s[0] === "-" ? -1 : 1;
    s = s.slice(1);
  }
  if (s === "" || !underscoreOk(s)) return undefined;
  let base = 10;
  const prefix = s.slice(0, 2).toLowerCase();
  if (s.length >= 3 && (prefix === "0x" || prefix === "0o" || prefix === "0b")) {
    base = prefix === "0x" ? 16 : prefix === "0o" ? 8 : 2;
    s = s.slice(2);
  } else if (s.startsWith("0")) {
    base = 8;
    s = s.slice(1);
  }
  let value = 0;
  for (const ch of s) {
    if (ch === "_") continue;
    const digit = parseInt(ch, 36);
    if (Number.isNaN(digit) || digit >= base) return undefined;
    value = value * base + digit;
  }
  return value === 0 ? 0 : sign * value;
}

/** Go's rule: underscores only between digits, or between a base prefix and a digit. */
function underscoreOk(text: string): boolean {
  let saw = "^";
  let i = 0;
  let hex = false;
  const prefix = text.slice(0, 2).toLowerCase();
  if (prefix === "0x" || prefix === "0o" || prefix === "0b") {
    i = 2;
    saw = "0";
    hex = prefix === "0x";
  }
  for (; i < text.length; i++) {
    const ch = text[i];
    if ((ch >= "0" && ch <= "9") || (hex && /^[a-fA-F]$/.test(ch))) {
      saw = "0";
      continue;
    }
    if (ch === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/**
 * The help text, in the shape of the Go sidekick's (NAME / USAGE / FLAGS / SITE / EXAMPLES, with
 * ENDPOINTS and SIGNALS added before the examples), with
 * `argv0` as the program name, without a trailing newline. Columns are aligned with two spaces;
 * `--tls-max` is not listed.
 */
export function helpText(argv0: string): string {
  const rows = FLAGS.filter((f) => !f.hidden).map((f) => {
    const placeholder = f.kind === "bool" ? "" : ` ${f.placeholder ?? "value"}`;
    const names = `--${f.name}${placeholder}` + (f.alias ? `, -${f.alias}${placeholder}` : "");
    const usage = f.defaultText === undefined ? f.usage : `${f.usage} (default: ${f.defaultText})`;
    return [names, usage] as const;
  });
  const width = Math.max(...rows.map(([names]) => names.length)) + 2;
  const flagLines = rows.map(([names, usage]) => `  ${names.padEnd(width)}${usage}`);
  const examples: [string, string][] = [
    [
      "Load balance across 4 MinIO servers (http://minio1:9000 to http://minio4:9000)",
      `${argv0} --health-path /minio/health/cluster http://minio{1...4}:9000`,
    ],
    [
      "The same, listening on port 8000",
      `${argv0} --health-path /minio/health/cluster --address :8000 http://minio{1...4}:9000`,
    ],
    [
      "Load balance across 4 MinIO servers over HTTPS, without verifying their certificates",
      `${argv0} --health-path /minio/health/cluster --insecure https://minio{1...4}:9000`,
    ],
    [
      "Two sites of two pools of 4 servers each; site2 takes the traffic when site1 is down",
      `${argv0} --health-path /minio/health/cluster \\\n` +
      `         http://site1-minio{1...4}:9000,http://site1-minio{5...8}:9000 \\\n` +
      `         http://site2-minio{1...4}:9000,http://site2-minio{5...8}:9000`,
    ],
    [
      "The same, but after failover site2 serves reads as soon as it has read quorum",
      `${argv0} --health-path /minio/health/cluster ` +
      `--read-health-path=/minio/health/cluster/read \\\n` +
      `         http://site1-minio{1...4}:9000,http://site1-minio{5...8}:9000 \\\n` +
      `         http://site2-minio{1...4}:9000,http://site2-minio{5...8}:9000`,
    ],
    [
      "Sidekick as a TLS terminator in front of plain-HTTP servers",
      `${argv0} --cert public.crt --key private.key --health-path /minio/health/cluster ` +
      `http://minio{1...4}:9000`,
    ],
    [
      "Pick a random UP server for each request instead of the least busy one",
      `${argv0} --health-path /minio/health/cluster --host-balance=random http://minio{1...4}:9000`,
    ],
  ];
  const exampleLines = examples.flatMap(([title, command], i) => [
    ...(i === 0 ? [] : [""]),
    `  ${i + 1}. ${title}`,
    `     $ ${command}`,
  ]);
  return [
    "NAME:",
    `  ${argv0} - High-Performance sidecar load-balancer`,
    "",
    "USAGE:",
    `  ${argv0} [FLAGS] SITE1 [SITE2..]`,
    "  (flags may also follow the SITEs; -- ends the flags)",
    "",
    "FLAGS:",
    ...flagLines,
    "",
    "SITE:",
    "  Each SITE is a comma separated list of pools of that site: " +
    "http://172.17.0.{2...5},http://172.17.0.{6...9}.",
    "  If all servers in SITE1 are down, then the traffic is routed to the next site - SITE2.",
    "",
    "ENDPOINTS (answered by sidekick itself, never proxied):",
    "  /v1/health            200 while some site has an UP backend, else 502",
    "  /.prometheus/metrics  Prometheus metrics, text format (see README for the series)",
    "  /v1/certificates      GET: the certificate generated for --auto-tls-host (PEM), else 404",
    "",
    "SIGNALS:",
    "  SIGHUP                re-resolve the SITEs; they take traffic after their first health check",
    "  SIGTERM, SIGINT       stop accepting, drain in-flight requests (up to 30s), exit 0;",
    "                        a second signal exits at once (status 1)",
    "",
    "EXAMPLES:",
    ...exampleLines,
  ].join("\n");
}
