import assert from "node:assert/strict";
import { type CliOutcome, helpText, parseCli } from "../lib/config/cli.ts";
import { type Config, DEFAULTS, makeConfig } from "../lib/config/config.ts";

const SITE = "http://minio{1...4}:9000";

/** Parses, expecting a run; returns the config. */
function run(...argv: string[]): Config {
  const outcome = parseCli(argv, "1.2.3");
  assert.equal(outcome.kind, "run", `${JSON.stringify(argv)} → ${JSON.stringify(outcome)}`);
  return (outcome as Extract<CliOutcome, { kind: "run" }>).config;
}

/** Parses, expecting an error; checks it is one line; returns the message. */
function fail(...argv: string[]): string {
  const outcome = parseCli(argv, "1.2.3");
  assert.equal(outcome.kind, "error", `${JSON.stringify(argv)} → ${JSON.stringify(outcome)}`);
  const message = (outcome as Extract<CliOutcome, { kind: "error" }>).message;
  assert.ok(!message.includes("\n"), `one line: ${message}`);
  assert.ok(!/\bat .*\.ts:\d+/.test(message), `no stack trace: ${message}`);
  return message;
}

/** The four spellings of a flag name: --long, -long, and the alias with one and two dashes. */
function spellings(long: string, alias?: string): string[] {
  const names = [`--${long}`, `-${long}`];
  if (alias) names.push(`-${alias}`, `--${alias}`);
  return names;
}

Deno.test("defaults: a lone SITE gives DEFAULTS", () => {
  assert.deepEqual(run(SITE), makeConfig({ sites: [SITE], workers: 0 }));
  const c = run(SITE);
  assert.equal(c.address, ":8080");
  assert.equal(c.healthPath, "/");
  assert.equal(c.readHealthPath, "/");
  assert.equal(c.healthPort, 0);
  assert.equal(c.healthDurationMs, 5000);
  assert.equal(c.healthTimeoutMs, 10_000);
  assert.equal(c.dnsTtlMs, 600_000);
  assert.equal(c.trace, "all");
  assert.equal(c.traceExplicit, false);
  assert.equal(c.hostBalance, "least");
  assert.equal(c.tlsMax, "1.3");
  assert.deepEqual(c.statusCodes, []);
  for (
    const key of [
      "insecure",
      "rrDnsMode",
      "healthOptimistic",
      "log",
      "quiet",
      "json",
      "debug",
      "errors",
      "verifyBodies",
    ] as const
  ) {
    assert.equal(c[key], false, key);
  }
  for (
    const key of [
      "autoTlsHost",
      "cacert",
      "clientCert",
      "clientKey",
      "cert",
      "key",
      "keyPassword",
      "pprof",
    ] as const
  ) {
    assert.equal(c[key], "", key);
  }
});

Deno.test("string flags: long name, alias, one or two dashes, '=' or a separate value", () => {
  const cases: [string, string | undefined, keyof Config, string][] = [
    ["address", "a", "address", ":9000"],
    ["health-path", "p", "healthPath", "/minio/health/live"],
    ["read-health-path", "r", "readHealthPath", "/minio/health/cluster/read"],
    ["auto-tls-host", undefined, "autoTlsHost", "example.com,10.0.0.1"],
    ["trace", "t", "trace", "minio"],
    ["cacert", undefined, "cacert", "ca.pem"],
    ["pprof", undefined, "pprof", ":1337"],
    ["key-password", undefined, "keyPassword", "s3cret"],
  ];
  for (const [long, alias, key, value] of cases) {
    // --key-password only makes sense with a server key.
    const tls = long === "key-password" ? ["--cert", "c.pem", "--key", "k.pem"] : [];
    for (const flag of spellings(long, alias)) {
      assert.equal(run(flag, value, ...tls, SITE)[key], value, `${flag} ${value}`);
      assert.equal(run(`${flag}=${value}`, ...tls, SITE)[key], value, `${flag}=${value}`);
    }
  }
  // The pairs need both halves.
  for (
    const [a, b, ka, kb] of [["cert", "key", "cert", "key"], [
      "client-cert",
      "client-key",
      "clientCert",
      "clientKey",
    ]] as const
  ) {
    for (const fa of spellings(a)) {
      for (const fb of spellings(b)) {
        const c = run(fa, "x.pem", `${fb}=y.pem`, SITE);
        assert.equal(c[ka], "x.pem");
        assert.equal(c[kb], "y.pem");
      }
    }
  }
});

Deno.test("a value flag takes the next token verbatim, even one that looks like a flag", () => {
  const tls = ["--cert", "c.pem", "--key", "k.pem"];
  assert.equal(run("--key-password", "-secret", ...tls, SITE).keyPassword, "-secret");
  assert.equal(run("--key-password", "--log", ...tls, SITE).log, false);
  assert.equal(run("-a", "--", SITE).address, "--");
  assert.equal(run("--address=", SITE).address, "");
  assert.equal(run("--address=a=b", SITE).address, "a=b");
});

Deno.test("boolean flags: long name, alias, one or two dashes, =true/=false and Go's words", () => {
  const cases: [string, string | undefined, keyof Config][] = [
    ["insecure", "i", "insecure"],
    ["rr-dns-mode", undefined, "rrDnsMode"],
    ["health-optimistic", undefined, "healthOptimistic"],
    ["log", "l", "log"],
    ["quiet", "q", "quiet"],
    ["json", undefined, "json"],
    ["debug", undefined, "debug"],
    ["errors", "e", "errors"],
    ["verify-bodies", undefined, "verifyBodies"],
  ];
  for (const [long, alias, key] of cases) {
    for (const flag of spellings(long, alias)) {
      assert.equal(run(flag, SITE)[key], true, flag);
      for (const word of ["1", "t", "T", "TRUE", "true", "True"]) {
        assert.equal(run(`${flag}=${word}`, SITE)[key], true, `${flag}=${word}`);
      }
      for (const word of ["0", "f", "F", "FALSE", "false", "False"]) {
        assert.equal(run(flag, `${flag}=${word}`, SITE)[key], false, `${flag}=${word}`);
      }
    }
    const message = fail(`--${long}=yes`, SITE);
    assert.match(message, new RegExp(`^--${long}: invalid value "yes"; expected true or false`));
  }
});

Deno.test("a boolean flag does not take the next token as its value", () => {
  const c = run("--log", "false", SITE);
  assert.equal(c.log, true);
  assert.deepEqual(c.sites, ["false", SITE]);
});

Deno.test("--health-port: Go integer syntax and the 0..65535 range", () => {
  const good: [string, number][] = [
    ["0", 0],
    ["9000", 9000],
    ["65535", 65535],
    ["0x10", 16],
    ["0X1f", 31],
    ["0o17", 15],
    ["017", 15],
    ["0b101", 5],
    ["1_000", 1000],
    ["0x_1F", 31],
    ["+80", 80],
    ["-0", 0],
  ];
  for (const [text, port] of good) {
    assert.equal(run("--health-port", text, SITE).healthPort, port, text);
    assert.equal(run(`-health-port=${text}`, SITE).healthPort, port, text);
  }
  for (const text of ["abc", "08", "1__000", "_1", "1_", "0x", "1.5", "", " 80", "80 ", "9e3"]) {
    const message = fail("--health-port", text, SITE);
    assert.match(
      message,
      /^--health-port: invalid value .*; expected a port number in 0\.\.65535$/,
    );
  }
  for (const text of ["65536", "-1", "0x10000", "99999999999999999999"]) {
    assert.match(fail("--health-port", text, SITE), /^--health-port: .* out of range.*0\.\.65535/);
  }
});

Deno.test("durations: Go syntax or a bare number of seconds, all three flags", () => {
  const cases: [string, string | undefined, keyof Config][] = [
    ["health-duration", "d", "healthDurationMs"],
    ["health-timeout", undefined, "healthTimeoutMs"],
    ["dns-ttl", undefined, "dnsTtlMs"],
  ];
  for (const [long, alias, key] of cases) {
    for (const flag of spellings(long, alias)) {
      assert.equal(run(flag, "300ms", SITE)[key], 300);
      assert.equal(run(`${flag}=1m30s`, SITE)[key], 90_000);
      assert.equal(run(flag, "5", SITE)[key], 5000);
      assert.equal(run(flag, "0.5", SITE)[key], 500);
      assert.equal(run(flag, "2h", SITE)[key], 7_200_000);
      assert.equal(run(flag, "500us", SITE)[key], 0.5);
    }
    assert.match(fail(`--${long}`, "5x", SITE), new RegExp(`^--${long}: invalid duration "5x"`));
    assert.match(fail(`--${long}`, "1d", SITE), /unknown unit "d"/);
    assert.match(fail(`--${long}=`, SITE), new RegExp(`^--${long}: invalid duration ""`));
    for (const bad of ["0", "0s", "-5s", "-1", "0.0000000001"]) {
      const message = fail(`--${long}`, bad, SITE);
      assert.match(message, new RegExp(`^--${long}: must be greater than zero`), bad);
    }
  }
});

Deno.test("--status-code accumulates, 100..599, one code per flag", () => {
  assert.deepEqual(run("--status-code", "500", SITE).statusCodes, [500]);
  assert.deepEqual(
    run("--status-code", "500", "-status-code=502", SITE, "--status-code", "404").statusCodes,
    [500, 502, 404],
  );
  assert.deepEqual(run("--status-code=100", "--status-code=599", SITE).statusCodes, [100, 599]);
  const comma = fail("--status-code", "500,502", SITE);
  assert.match(comma, /^--status-code: invalid value "500,502"/);
  assert.match(comma, /repeat the flag/);
  assert.match(comma, /--status-code 500 --status-code 502/);
  for (const bad of ["99", "600", "abc", "", "5xx", "0x1F4"]) {
    const message = fail("--status-code", bad, SITE);
    assert.match(message, /^--status-code: invalid value .*100\.\.599/, bad);
  }
  assert.match(fail("--status-code"), /^--status-code: missing value/);
});

Deno.test("--host-balance: least, random, empty means least", () => {
  assert.equal(run("--host-balance", "least", SITE).hostBalance, "least");
  assert.equal(run("--host-balance=random", SITE).hostBalance, "random");
  assert.equal(run("--host-balance=random", "--host-balance=", SITE).hostBalance, "least");
  const message = fail("--host-balance", "roundrobin", SITE);
  assert.match(message, /^--host-balance: invalid value "roundrobin"/);
  assert.match(message, /'least', 'random'/);
  assert.match(fail("--host-balance", "Random", SITE), /^--host-balance:/);
});

Deno.test("--host-balance ewma", () => {
  assert.equal(run("--host-balance", "ewma", SITE).hostBalance, "ewma");
  assert.match(fail("--host-balance", "p2c", SITE), /'least', 'random', 'ewma'/);
});

Deno.test("--response-timeout, --eject-after, --hedge-after: defaults, values, one-line errors", () => {
  const d = run(SITE);
  assert.equal(d.responseTimeoutMs, 60_000);
  assert.equal(d.ejectAfter, 5);
  assert.equal(d.hedgeAfterMs, 0);
  const c = run("--response-timeout", "1s", "--eject-after", "2", "--hedge-after=50ms", SITE);
  assert.equal(c.responseTimeoutMs, 1_000);
  assert.equal(c.ejectAfter, 2);
  assert.equal(c.hedgeAfterMs, 50);
  assert.equal(run("--response-timeout", "0", "--eject-after", "0", SITE).responseTimeoutMs, 0);
  assert.equal(run("--response-timeout", "0", "--hedge-after", "10s", SITE).hedgeAfterMs, 10_000);
  assert.match(fail("--response-timeout", "soon", SITE), /^--response-timeout: /);
  assert.match(fail("--response-timeout", "-1s", SITE), /^--response-timeout: /);
  assert.match(fail("--eject-after", "-1", SITE), /^--eject-after: .*0\.\.1000/);
  assert.match(fail("--eject-after", "two", SITE), /^--eject-after: invalid value "two"/);
  assert.match(fail("--hedge-after", "x", SITE), /^--hedge-after: /);
  assert.match(
    fail("--hedge-after", "2s", "--response-timeout", "1s", SITE),
    /^--hedge-after: must be shorter than --response-timeout \(1s\)/,
  );
  assert.match(
    fail("--hedge-after", "50ms", "--retries", "0", SITE),
    /^--hedge-after: hedges spend the retry budget/,
  );
});

Deno.test("--tls-max: 1.3 only; 1.2 is explained", () => {
  assert.equal(run("--tls-max", "1.3", SITE).tlsMax, "1.3");
  assert.equal(run("-tls-max=1.3", SITE).tlsMax, "1.3");
  const twelve = fail("--tls-max", "1.2", SITE);
  assert.match(twelve, /^--tls-max: 1\.2 is not supported/);
  assert.match(twelve, /Deno TLS stack cannot cap/);
  for (const bad of ["1.1", "1.0", "", "tls1.3"]) {
    const message = fail(`--tls-max=${bad}`, SITE);
    assert.match(message, /^--tls-max: invalid value/, bad);
    assert.match(message, /only accepted value is 1\.3/, bad);
  }
});

Deno.test("--cert/--key and --client-cert/--client-key must come in pairs; --no-http2 needs HTTPS", () => {
  assert.match(fail("--cert", "public.crt", SITE), /^--cert: given without --key/);
  assert.match(fail("--key", "private.key", SITE), /^--key: given without --cert/);
  assert.match(fail("--client-cert", "c.pem", SITE), /^--client-cert: given without --client-key/);
  assert.match(fail("--client-key", "k.pem", SITE), /^--client-key: given without --client-cert/);
  assert.match(fail("--key-password", "x", SITE), /^--key-password: given without --key/);
  assert.match(fail("--cert", "public.crt", "--key=", SITE), /^--cert: given without --key/);
  assert.match(
    fail("--no-http2", SITE),
    /^--no-http2: given without --cert\/--key or --auto-tls-host/,
  );
  assert.equal(run("--no-http2", "--auto-tls-host", "localhost", SITE).noHttp2, true);
  assert.equal(run("--no-http2=false", SITE).noHttp2, false);
  const c = run("--cert", "public.crt", "--key", "private.key", SITE);
  assert.equal(c.cert, "public.crt");
  assert.equal(c.key, "private.key");
});

Deno.test("health paths: empty → /, leading / added, read path defaults to the health path", () => {
  assert.equal(run("--health-path=", SITE).healthPath, "/");
  const c = run("-p", "minio/health/cluster", SITE);
  assert.equal(c.healthPath, "/minio/health/cluster");
  assert.equal(c.readHealthPath, "/minio/health/cluster");
  const d = run("-p", "/minio/health/cluster", "-r", "minio/health/cluster/read", SITE);
  assert.equal(d.healthPath, "/minio/health/cluster");
  assert.equal(d.readHealthPath, "/minio/health/cluster/read");
  const e = run("-p", "/minio/health/live", "--read-health-path=", SITE);
  assert.equal(e.readHealthPath, "/minio/health/live");
  assert.equal(run("-r", "/read", SITE).healthPath, "/");
  assert.equal(run("-r", "/read", SITE).readHealthPath, "/read");
});

Deno.test("--trace: value kept, traceExplicit only when given", () => {
  assert.equal(run(SITE).traceExplicit, false);
  assert.equal(run("--log", SITE).traceExplicit, false);
  for (const flag of spellings("trace", "t")) {
    const c = run(flag, "application", SITE);
    assert.equal(c.trace, "application");
    assert.equal(c.traceExplicit, true);
  }
  const off = run("--trace=", SITE);
  assert.equal(off.trace, "");
  assert.equal(off.traceExplicit, true);
  assert.equal(run("-t", "all", SITE).traceExplicit, true);
});

Deno.test("flags may follow SITEs; SITEs keep their order; -- ends the flags", () => {
  const c = run("site1", "--log", "site2", "-a", ":9000", "site3", "-q");
  assert.deepEqual(c.sites, ["site1", "site2", "site3"]);
  assert.equal(c.log, true);
  assert.equal(c.quiet, true);
  assert.equal(c.address, ":9000");
  const d = run("--log", "--", "--quiet", "-a", "site");
  assert.deepEqual(d.sites, ["--quiet", "-a", "site"]);
  assert.equal(d.quiet, false);
  assert.equal(d.address, ":8080");
  assert.deepEqual(run("-", "--", "--").sites, ["-", "--"]);
  // Commas and ellipses are not this module's business.
  assert.deepEqual(run("http://a{1...4},http://b{1...4}").sites, [
    "http://a{1...4},http://b{1...4}",
  ]);
});

Deno.test("a repeated scalar flag: the last occurrence wins, whatever its spelling", () => {
  assert.equal(run("-a", ":1", "--address", ":2", SITE, "-a=:3").address, ":3");
  assert.equal(run("-d", "1s", "--health-duration=2s", SITE).healthDurationMs, 2000);
  assert.equal(run("--log", "--log=false", SITE).log, false);
  assert.equal(run("--health-port", "1", "--health-port", "2", SITE).healthPort, 2);
});

Deno.test("unknown flags and missing values are errors naming the flag", () => {
  assert.equal(fail("--foo", SITE), "unknown flag --foo; see 'sidekick --help'");
  assert.equal(fail("-foo=1", SITE), "unknown flag -foo; see 'sidekick --help'");
  assert.equal(fail(SITE, "--foo"), "unknown flag --foo; see 'sidekick --help'");
  assert.match(fail("-il", SITE), /^unknown flag -il;/); // no grouped short flags
  assert.match(fail("---log", SITE), /^unknown flag ---log;/);
  assert.match(fail("--=x", SITE), /^unknown flag --;/);
  assert.match(fail("-5", SITE), /^unknown flag -5;/);
  for (const name of ["__proto__", "toString", "constructor", "hasOwnProperty"]) {
    assert.match(fail(`--${name}=1`, SITE), new RegExp(`^unknown flag --${name};`));
  }
  const named = parseCli(["--foo", SITE], "1.2.3", "./sidekick");
  assert.deepEqual(named, {
    kind: "error",
    message: "unknown flag --foo; see './sidekick --help'",
  });
  for (
    const flag of ["--address", "-a", "--health-path", "--health-duration", "--cert", "--trace"]
  ) {
    assert.match(fail(SITE, flag), /^--[a-z-]+: missing value; expected /, flag);
  }
  assert.match(fail(SITE, "-d"), /^--health-duration: missing value; expected a duration/);
  // The first error wins.
  assert.match(fail("--foo", "--health-port", "x", SITE), /^unknown flag --foo/);
});

Deno.test("--trace takes all, application, minio or empty; anything else is an error", () => {
  for (const value of ["all", "application", "minio", ""]) {
    const o = parseCli(["--trace", value, SITE], "1.2.3");
    assert.equal(o.kind === "run" && o.config.trace, value, value);
  }
  for (const value of ["foo", "ALL", "all,minio"]) {
    assert.equal(
      fail("--trace", value, SITE),
      `--trace: invalid value ${
        JSON.stringify(value)
      }; accepted values are [all,application,minio] ("" for no trace lines)`,
    );
  }
  assert.match(fail(`-t=foo`, SITE), /^--trace: invalid value "foo"/);
});

Deno.test("a text flag whose value was left out does not swallow the SITE", () => {
  assert.equal(
    fail("--auto-tls-host", SITE),
    `--auto-tls-host: missing value (${
      JSON.stringify(SITE)
    } is a SITE); expected comma-separated host names or IP addresses`,
  );
  assert.match(fail("--cacert", "https://a:9000"), /^--cacert: missing value \("https:/);
  assert.match(fail("--health-path", SITE), /^--health-path: missing value \(/);
  // A password may be anything.
  assert.equal(
    parseCli(["--key-password", "x://y", "--cert", "c", "--key", "k", SITE], "1").kind,
    "run",
  );
  const ok = parseCli(["--auto-tls-host", "minio.local,10.0.0.1", SITE], "1.2.3");
  assert.equal(ok.kind === "run" && ok.config.autoTlsHost, "minio.local,10.0.0.1");
});

Deno.test("help and version: precedence, exit codes, no SITE needed", () => {
  for (const flag of spellings("help", "h")) {
    const o = parseCli([flag], "1.2.3");
    assert.deepEqual(o, { kind: "help", text: helpText("sidekick"), exitCode: 0 }, flag);
  }
  for (const flag of spellings("version", "v")) {
    assert.deepEqual(parseCli([flag], "1.2.3"), {
      kind: "version",
      text: "sidekick version 1.2.3",
    }, flag);
  }
  assert.equal(parseCli(["-v", "-h"], "1").kind, "help");
  assert.equal(parseCli(["-h", "-v"], "1").kind, "help");
  assert.equal(parseCli([SITE, "--version"], "1").kind, "version");
  assert.equal(parseCli(["--help", "--foo", "--health-port=x"], "1").kind, "help");
  assert.equal(parseCli(["--version", "--foo"], "1").kind, "version");
  assert.equal(parseCli(["--help=false", "-v"], "1").kind, "version");
  // After --, --help is a SITE.
  assert.equal(parseCli(["--", "--help"], "1").kind, "run");
  // As a value, --help is a value.
  assert.equal(run("--address", "--help", SITE).address, "--help");
});

Deno.test("no SITE: the help with exit code 1", () => {
  assert.deepEqual(parseCli([], "1"), { kind: "help", text: helpText("sidekick"), exitCode: 1 });
  assert.deepEqual(parseCli(["--log"], "1", "/usr/bin/sidekick"), {
    kind: "help",
    text: helpText("/usr/bin/sidekick"),
    exitCode: 1,
  });
  assert.equal(parseCli(["--help=false"], "1").kind, "help");
  // A bad flag is reported before the missing SITE.
  assert.equal(parseCli(["--foo"], "1").kind, "error");
});

Deno.test("help text: sections, flags, defaults, aligned columns, examples", () => {
  const text = helpText("./sidekick");
  assert.ok(!text.endsWith("\n"));
  const lines = text.split("\n");
  for (
    const section of [
      "NAME:",
      "USAGE:",
      "FLAGS:",
      "SITE:",
      "ENDPOINTS (answered by sidekick itself, never proxied):",
      "SIGNALS:",
      "EXAMPLES:",
    ]
  ) {
    assert.ok(lines.includes(section), section);
  }
  for (const endpoint of ["/v1/health", "/.prometheus/metrics", "/v1/certificates"]) {
    assert.match(text, new RegExp(`^  ${endpoint.replaceAll(".", "\\.")} +\\S`, "m"), endpoint);
  }
  for (const signal of ["SIGHUP", "SIGTERM, SIGINT"]) {
    assert.match(text, new RegExp(`^  ${signal} +\\S`, "m"), signal);
  }
  assert.ok(lines.includes("  ./sidekick - High-Performance sidecar load-balancer"));
  assert.ok(lines.includes("  ./sidekick [FLAGS] SITE1 [SITE2..]"));
  const flagLines = lines.slice(lines.indexOf("FLAGS:") + 1, lines.indexOf("SITE:") - 1);
  assert.equal(flagLines.length, 39); // 37 visible flags + help + version
  const columns = flagLines.map((line) => {
    const m = /^ {2}(.+?) {2,}(\S.*)$/.exec(line);
    assert.ok(m, line);
    return { names: m[1], start: line.length - m[2].length };
  });
  const longest = Math.max(...columns.map((c) => c.names.length));
  for (const { names, start } of columns) {
    assert.equal(start, 2 + longest + 2, `${names}: two spaces after the longest flag column`);
  }
  const expectations: [string, RegExp][] = [
    ["--address value, -a value", /\(default: ":8080"\)$/],
    ["--health-path value, -p value", /health check path$/],
    ["--read-health-path value, -r value", /failover site/],
    ["--health-port value", /\(default: 0\)$/],
    ["--health-duration value, -d value", /Go duration.*seconds.*\(default: 5s\)$/],
    ["--health-timeout value", /\(default: 10s\)$/],
    ["--insecure, -i", /TLS/],
    ["--rr-dns-mode", /round-robin/],
    ["--health-optimistic", /down/],
    ["--auto-tls-host value", /auto TLS/],
    ["--log, -l", /logging/],
    ["--trace value, -t value", /\[all,application,minio\] \(default: "all"\)$/],
    ["--quiet, -q", /console/],
    ["--json", /json/],
    ["--debug", /verbose/],
    ["--cacert value", /CA/],
    ["--client-cert value", /client certificate/],
    ["--client-key value", /client private key/],
    ["--cert value", /server certificate/],
    ["--key value", /server private key file/],
    ["--key-password value", /password/],
    ["--no-http2", /HTTP\/1\.1 only/],
    ["--pprof :1337", /profiling/],
    ["--dns-ttl value", /\(default: 10m0s\)$/],
    ["--errors, -e", /error/],
    ["--status-code value", /status code/],
    ["--host-balance value", /'least', 'random', 'ewma' \(default: "least"\)$/],
    ["--retries N", /another backend.*\(default: 2\)$/],
    ["--retry-buffer SIZE", /bodies.*\(default: 1MiB\)$/],
    ["--health-rise N", /passing.*\(default: 1\)$/],
    ["--health-fall N", /failed.*\(default: 1\)$/],
    ["--slow-start value", /ramp.*\(default: 0s\)$/],
    ["--response-timeout value", /response headers.*504.*\(default: 1m0s\)$/],
    ["--eject-after N", /consecutive failures.*\(default: 5\)$/],
    ["--hedge-after value", /GET or HEAD.*\(default: 0s\)$/],
    ["--verify-bodies", /breaks off.*natively/],
    ["--workers N", /isolates.*\(default: the CPUs available, at most 4\)$/],
    ["--help, -h", /show help/],
    ["--version, -v", /version/],
  ];
  expectations.forEach(([names, usage], i) => {
    assert.ok(flagLines[i].startsWith(`  ${names}  `), `${names} at line ${i}: ${flagLines[i]}`);
    assert.match(flagLines[i], usage, names);
  });
  assert.ok(!text.includes("tls-max"), "--tls-max is hidden");
  const examples = lines.slice(lines.indexOf("EXAMPLES:") + 1).join("\n");
  for (let n = 1; n <= 7; n++) assert.match(examples, new RegExp(`^  ${n}\\. `, "m"));
  assert.match(
    examples,
    /\$ \.\/sidekick --health-path \/minio\/health\/cluster http:\/\/minio\{1\.\.\.4\}:9000/,
  );
  assert.match(examples, /--address :8000/);
  assert.match(examples, /--insecure https:\/\//);
  assert.match(examples, /site2-minio\{1\.\.\.4\}:9000,http:\/\/site2-minio\{5\.\.\.8\}:9000/);
  assert.match(examples, /--read-health-path=\/minio\/health\/cluster\/read/);
  assert.match(examples, /--cert public\.crt --key private\.key/);
  assert.match(examples, /--host-balance=random/);
});

Deno.test("no shared state: results are fresh objects and DEFAULTS stay untouched", () => {
  const before = structuredClone(DEFAULTS);
  const a = run("--status-code", "500", SITE);
  a.statusCodes.push(1);
  a.sites.push("x");
  a.address = "mutated";
  const b = run("--status-code", "502", SITE);
  assert.deepEqual(b.statusCodes, [502]);
  assert.deepEqual(b.sites, [SITE]);
  assert.equal(b.address, ":8080");
  assert.deepEqual({ ...DEFAULTS }, before);
});

Deno.test("--workers: a whole number in 1..64; default 0 means the available CPUs", () => {
  assert.equal(run(SITE).workers, 0);
  assert.equal(run("--workers", "1", SITE).workers, 1);
  assert.equal(run("--workers=4", SITE).workers, 4);
  assert.equal(run("-workers", "64", SITE).workers, 64);
  for (const text of ["0", "-1", "65"]) {
    assert.match(fail("--workers", text, SITE), /^--workers: .* out of range; expected .*1\.\.64$/);
  }
  for (const text of ["1.5", "two", "", "2x"]) {
    assert.match(
      fail("--workers", text, SITE),
      /^--workers: invalid value .*; expected .*1\.\.64$/,
    );
  }
  assert.match(fail("--workers", SITE), /^--workers: invalid value/);
});

Deno.test("resilience flags: --retries, --retry-buffer, --health-rise/--health-fall, --slow-start", () => {
  const d = run(SITE);
  assert.deepEqual(
    [d.retries, d.retryBufferBytes, d.healthRise, d.healthFall, d.slowStartMs],
    [2, 1 << 20, 1, 1, 0],
  );
  assert.equal(run("--retries", "0", SITE).retries, 0);
  assert.equal(run("--retries=10", SITE).retries, 10);
  assert.match(fail("--retries", "11", SITE), /^--retries: .* out of range; .*0\.\.10$/);
  assert.match(fail("--retries", "-1", SITE), /^--retries: .* out of range/);
  assert.match(fail("--retries", "x", SITE), /^--retries: invalid value "x"/);
  const sizes: [string, number][] = [
    ["0", 0],
    ["65536", 65536],
    ["64KiB", 65536],
    ["64k", 65536],
    ["1MiB", 1 << 20],
    ["1mb", 1_000_000],
    ["1.5MiB", 1.5 * (1 << 20)],
    ["2 MiB", 2 << 20],
    ["1GiB", 1 << 30],
  ];
  for (const [text, bytes] of sizes) {
    assert.equal(run("--retry-buffer", text, SITE).retryBufferBytes, bytes, text);
  }
  for (const text of ["", "-1", "1TiB", "2GiB", "lots", "1.MiB", "0x10"]) {
    assert.match(
      fail("--retry-buffer", text, SITE),
      /^--retry-buffer: invalid value .*; expected a size such as 1MiB/,
      text,
    );
  }
  assert.equal(run("--health-rise", "3", "--health-fall", "2", SITE).healthRise, 3);
  assert.equal(run("--health-fall", "2", SITE).healthFall, 2);
  for (const flag of ["--health-rise", "--health-fall"]) {
    assert.match(fail(flag, "0", SITE), /out of range; expected .*1\.\.100$/, flag);
  }
  assert.equal(run("--slow-start", "30s", SITE).slowStartMs, 30_000);
  assert.equal(run("--slow-start", "0", SITE).slowStartMs, 0);
  assert.match(fail("--slow-start", "-5s", SITE), /^--slow-start: /);
  assert.match(fail("--health-duration", "0", SITE), /must be greater than zero/);
});
