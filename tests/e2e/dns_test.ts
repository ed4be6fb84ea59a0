/**
 * DNS end to end: hostname endpoints through the DNS cache, `--rr-dns-mode` (one backend per
 * address, IPv6 bracketed, re-resolved on every `--dns-ttl` refresh and on reload without
 * dropping traffic, TLS verified against the original hostname), start-up failure → exit 2.
 * In-process tests use a fake resolver; the child-process test uses the system's.
 */
import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { makeConfig } from "../../lib/config/config.ts";
import { ConfigError, createSidekick, type Sidekick } from "../../lib/control/sidekick.ts";
import { startBackend, type TestBackend, waitFor } from "../helpers/backends.ts";
import { testCerts } from "../helpers/certs.ts";
import { runSidekick, startSidekick } from "../helpers/sidekick_process.ts";
import { startHttpsBackend } from "../helpers/tls_backends.ts";

/** Backends on 127.0.0.1 and ::1 with the same port (as one DNS name with two addresses). */
async function dualStackBackends(): Promise<{ v4: TestBackend; v6: TestBackend; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const v4 = await startBackend("v4", { healthPath: "/health" });
    try {
      const v6 = await startBackend("v6", {
        healthPath: "/health",
        hostname: "::1",
        port: v4.port,
      });
      return { v4, v6, port: v4.port };
    } catch {
      await v4.close(); // port taken on ::1: try another
    }
  }
  throw new Error("no port free on both 127.0.0.1 and ::1");
}

/** A resolver answering from a table tests change; errors for names not in it. */
function tableResolver(table: Record<string, string[] | undefined>) {
  let calls = 0;
  const resolver = (host: string) => {
    calls++;
    const a = table[host];
    return a ? Promise.resolve([...a]) : Promise.reject(new Error(`no such host ${host}`));
  };
  return { resolver, table, calls: () => calls };
}

function endpoints(sk: Sidekick): string[] {
  return sk.pool.backends.map((b) => b.endpoint);
}

async function get(sk: Sidekick, path = "/", host?: string): Promise<Response> {
  if (!host) return await fetch(sk.url + path);
  // Deno's fetch drops a Host header unless the client allows it.
  using client = Deno.createHttpClient({ allowHost: true });
  const res = await fetch(sk.url + path, { headers: { host }, client });
  return new Response(await res.arrayBuffer(), res);
}

Deno.test("rr-dns: one backend per address, IPv6 bracketed, traffic reaches both, Host kept", async () => {
  const { v4, v6, port } = await dualStackBackends();
  const dns = tableResolver({ "svc.test": ["127.0.0.1", "::1"] });
  const info: string[] = [];
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [`http://svc.test:${port}`],
      rrDnsMode: true,
      healthPath: "/health",
      readHealthPath: "/health",
      hostBalance: "random",
    }),
    { resolver: dns.resolver, onInfo: (t) => info.push(t) },
  );
  try {
    await sk.start();
    await sk.ready();
    assert.deepEqual(info, [`RR DNS mode enabled, using http://svc.test:${port} as hostname`]);
    assert.deepEqual(endpoints(sk), [`http://127.0.0.1:${port}`, `http://[::1]:${port}`]);
    await waitFor(() => sk.pool.backends.every((b) => b.up), "both backends UP");
    for (let i = 0; i < 40; i++) await (await get(sk, "/x", "s3.example:9000")).text();
    assert.ok(
      v4.seen.length > 0 && v6.seen.length > 0,
      `v4 ${v4.seen.length}, v6 ${v6.seen.length}`,
    );
    assert.equal(v6.seen[0].headers.get("host"), "s3.example:9000");
  } finally {
    await sk.stop();
    await v4.close();
    await v6.close();
  }
});

Deno.test("rr-dns: every --dns-ttl refresh adds and removes backends without dropping traffic", async () => {
  const { v4, v6, port } = await dualStackBackends();
  const dns = tableResolver({ "svc.test": ["127.0.0.1"] });
  const info: string[] = [];
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [`http://svc.test:${port}`],
      rrDnsMode: true,
      healthPath: "/health",
      readHealthPath: "/health",
      dnsTtlMs: 50,
    }),
    { resolver: dns.resolver, onInfo: (t) => info.push(t) },
  );
  let running = true;
  const failures: string[] = [];
  let sent = 0;
  try {
    await sk.start();
    await sk.ready();
    assert.deepEqual(endpoints(sk), [`http://127.0.0.1:${port}`]);
    const load = (async () => {
      while (running) {
        const res = await get(sk, "/");
        const body = await res.text();
        sent++;
        if (res.status !== 200) failures.push(`${res.status} ${body.slice(0, 80)}`);
      }
    })();

    dns.table["svc.test"] = ["127.0.0.1", "::1"];
    await waitFor(() => endpoints(sk).length === 2, "the ::1 backend added");
    assert.deepEqual(endpoints(sk), [`http://127.0.0.1:${port}`, `http://[::1]:${port}`]);
    dns.table["svc.test"] = ["::1"];
    await waitFor(() => endpoints(sk).length === 1, "the 127.0.0.1 backend removed");
    assert.deepEqual(endpoints(sk), [`http://[::1]:${port}`]);

    // A failed re-resolution keeps the current backends.
    delete dns.table["svc.test"];
    const before = dns.calls();
    await waitFor(() => dns.calls() >= before + 2, "two failed refreshes");
    assert.deepEqual(endpoints(sk), [`http://[::1]:${port}`]);

    const seen = v6.seen.length;
    await waitFor(() => v6.seen.length > seen, "traffic on ::1");
    running = false;
    await load;
    assert.deepEqual(failures, [], `all ${sent} requests answered 200 through the swaps`);
    assert.ok(info.some((l) => l.startsWith("RR DNS: addresses changed")), info.join("\n"));
  } finally {
    running = false;
    await sk.stop();
    await v4.close();
    await v6.close();
  }
});

Deno.test("rr-dns: reload re-resolves; a failed lookup keeps the sites and later reloads work", async () => {
  const { v4, v6, port } = await dualStackBackends();
  const dns = tableResolver({ "svc.test": ["127.0.0.1"] });
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [`http://svc.test:${port}`],
      rrDnsMode: true,
      healthPath: "/health",
      readHealthPath: "/health",
    }),
    { resolver: dns.resolver, onInfo: () => {} },
  );
  try {
    await sk.start();
    await sk.ready();
    dns.table["svc.test"] = ["::1", "127.0.0.1"];
    await sk.reload();
    assert.deepEqual(endpoints(sk), [`http://[::1]:${port}`, `http://127.0.0.1:${port}`]);
    delete dns.table["svc.test"];
    await assert.rejects(sk.reload(), /svc\.test/);
    assert.equal(endpoints(sk).length, 2, "sites kept");
    dns.table["svc.test"] = ["127.0.0.1"];
    await sk.reload();
    assert.deepEqual(endpoints(sk), [`http://127.0.0.1:${port}`]);
  } finally {
    await sk.stop();
    await v4.close();
    await v6.close();
  }
});

Deno.test("rr-dns: https backends are verified against the original hostname", async () => {
  const certs = await testCerts();
  // The certificate names only other.test; the backend is reached as 127.0.0.1.
  const b = await startHttpsBackend("tls1", {
    cert: certs.read(certs.otherCert),
    key: certs.read(certs.otherKey),
  });
  const dns = tableResolver({ "other.test": ["127.0.0.1"] });
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [`https://other.test:${b.port}`],
      rrDnsMode: true,
      healthPath: "/health",
      readHealthPath: "/health",
      cacert: certs.ca,
    }),
    { resolver: dns.resolver, onInfo: () => {} },
  );
  try {
    await sk.start();
    await sk.ready();
    const [backend] = sk.pool.backends;
    assert.equal(backend.endpoint, `https://127.0.0.1:${b.port}`);
    assert.equal(backend.up, true, backend.lastError);
    const res = await get(sk, "/", "bucket.s3.example");
    assert.equal(await res.text(), "tls1");
    assert.equal(b.seen.at(-1)!.headers.get("host"), "bucket.s3.example");
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("rr-dns: a name that does not resolve at start is a ConfigError naming it", async () => {
  const sk = createSidekick(
    makeConfig({ address: "127.0.0.1:0", sites: ["http://gone.test:9000"], rrDnsMode: true }),
    { resolver: tableResolver({}).resolver, onInfo: () => {} },
  );
  await assert.rejects(
    sk.start(),
    (e) =>
      e instanceof ConfigError &&
      /^--rr-dns-mode: unable to lookup host gone\.test: /.test(e.message),
  );
  await sk.stop();
});

Deno.test("DNS cache: a hostname endpoint connects to the cached address, Host kept", async () => {
  const b = await startBackend("b1", { healthPath: "/health" });
  const dns = tableResolver({ "minio1.test": ["127.0.0.1"] });
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      sites: [`http://minio1.test:${b.port}`],
      healthPath: "/health",
      readHealthPath: "/health",
    }),
    { resolver: dns.resolver },
  );
  try {
    await sk.start();
    await sk.ready();
    assert.deepEqual(endpoints(sk), [`http://minio1.test:${b.port}`], "one backend, not per IP");
    const res = await get(sk, "/obj", "s3.example");
    assert.equal(await res.text(), "b1");
    assert.equal(b.seen.at(-1)!.headers.get("host"), "s3.example");
    assert.equal(dns.calls(), 1, "resolved once, then cached");
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("e2e: --rr-dns-mode http://localhost:PORT → one backend per address of localhost", async () => {
  const { v4, v6, port } = await dualStackBackends();
  // What this machine's resolver says (here /etc/hosts may map localhost to 127.0.0.1 only).
  const addresses = [...new Set((await lookup("localhost", { all: true })).map((a) => a.address))];
  const sk = await startSidekick([
    "--workers",
    "2",
    "--rr-dns-mode",
    "--read-health-path",
    "/health",
    `http://localhost:${port}`,
  ]);
  try {
    await sk.waitForLine(
      new RegExp(`RR DNS mode enabled, using http://localhost:${port} as hostname`),
    );
    await sk.waitHealthy();
    const metrics = await (await fetch(`${sk.url}/.prometheus/metrics`)).text();
    for (const a of addresses) {
      const endpoint = a.includes(":") ? `http://[${a}]:${port}` : `http://${a}:${port}`;
      assert.ok(metrics.includes(`endpoint="${endpoint}"`), `${endpoint} in\n${metrics}`);
    }
    assert.ok(!metrics.includes(`endpoint="http://localhost:${port}"`));
    for (let i = 0; i < 10; i++) await (await fetch(`${sk.url}/`)).text();
    assert.equal(
      v4.seen.length > 0,
      addresses.includes("127.0.0.1"),
      "127.0.0.1 gets traffic iff localhost resolves to it",
    );
    assert.equal(v6.seen.length > 0 || !addresses.includes("::1"), true);
  } finally {
    await sk.stop();
    await v4.close();
    await v6.close();
  }
});

Deno.test("e2e: --rr-dns-mode with a name that does not resolve exits 2 naming it", async () => {
  const out = await runSidekick(["--rr-dns-mode", "http://no-such-host.invalid:9000"]);
  assert.equal(out.code, 2, out.stderr);
  assert.match(out.stderr, /--rr-dns-mode: unable to lookup host no-such-host\.invalid: /);
  assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
});
