import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { runSidekick } from "../helpers/sidekick_process.ts";

Deno.test("--help prints the help on stdout, exit 0", async () => {
  const r = await runSidekick(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /USAGE:/);
  assert.match(r.stdout, /--health-path/);
});

Deno.test("--version prints 'sidekick version <deno.json version>'", async () => {
  const r = await runSidekick(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), `sidekick version ${denoJson.version}`);
});

Deno.test("no SITE: help on stderr, exit 1", async () => {
  const r = await runSidekick([]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /USAGE:/);
  assert.equal(r.stdout, "");
});

for (
  const [args, pattern] of [
    [["--bogus", "http://127.0.0.1:9000"], /--bogus/],
    [["--health-duration", "0", "http://127.0.0.1:9000"], /--health-duration/],
    [["--health-port", "70000", "http://127.0.0.1:9000"], /--health-port/],
    [["--host-balance", "roundrobin", "http://127.0.0.1:9000"], /--host-balance/],
    [["--dns-ttl", "-1s", "http://127.0.0.1:9000"], /--dns-ttl/],
    [["--address", "nonsense", "http://127.0.0.1:9000"], /--address/],
    [["minio1:9000"], /minio1:9000/],
    [["http://h{1...x}:9000"], /h\{1\.\.\.x\}/],
    [["http://a:9000,https://b:9000"], /scheme/],
    [["http://127.0.0.1:9000", "--address"], /--address/],
    [["--trace", "foo", "http://127.0.0.1:9000"], /--trace: .*\[all,application,minio\]/],
    // A CA file is checked at start even when no backend is https.
    [["--cacert", "/nonexist/ca.pem", "http://127.0.0.1:9000"], /--cacert: .*\/nonexist/],
    [[
      "--client-cert",
      "/nonexist/c.pem",
      "--client-key",
      "/nonexist/k.pem",
      "http://127.0.0.1:9000",
    ], /--client-cert: .*\/nonexist/],
    // The SITE is not taken as the value, and no help text follows.
    [["--auto-tls-host", "http://127.0.0.1:9000"], /--auto-tls-host: missing value .*SITE/],
  ] as [string[], RegExp][]
) {
  Deno.test(`bad input ${JSON.stringify(args)}: one line on stderr, exit 2`, async () => {
    const r = await runSidekick(args);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^sidekick: /);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/, "no stack trace");
  });
}

for (const address of ["10.9.9.9:18080", "nosuchhost.invalid:80"]) {
  Deno.test(`an address sidekick cannot listen on (${address}): one line, exit 1`, async () => {
    const r = await runSidekick(["--address", address, "http://127.0.0.1:9"]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^sidekick: unable to listen on '${address}': `));
  });
}

Deno.test("an address already in use: one line, exit 1", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const address = `127.0.0.1:${(taken.addr as Deno.NetAddr).port}`;
    const r = await runSidekick(["--address", address, "http://127.0.0.1:9"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.trim(), /^sidekick: unable to listen on '127\.0\.0\.1:\d+': .*in use/i);
  } finally {
    taken.close();
  }
});
