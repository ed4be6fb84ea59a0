/**
 * End-to-end observability: sidekick's stdout (`--log`, traces, filters, `--quiet`), the metrics
 * endpoint checked by promtool, counters across a reload, the live table under a pseudo-terminal,
 * and the pprof listener.
 */

import assert from "node:assert/strict";
import { makeConfig } from "../../lib/config/config.ts";
import { createSidekick } from "../../lib/control/sidekick.ts";
import {
  closedPort,
  startBackend,
  startBackends,
  type TestBackend,
  waitFor,
} from "../helpers/backends.ts";
import {
  RUN_ARGS,
  runSidekick,
  type SidekickProcess,
  startSidekick,
} from "../helpers/sidekick_process.ts";
import { promtoolCheckStep } from "../helpers/promtool.ts";

const FAST = ["--health-path", "/health", "--health-duration", "100ms"];

async function closeAll(backends: TestBackend[]): Promise<void> {
  await Promise.all(backends.map((b) => b.close()));
}

async function get(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  await res.body?.cancel();
  return res;
}

/** Lines of `sk`'s stdout that parse as JSON objects. */
function jsonLines(sk: SidekickProcess): Record<string, unknown>[] {
  return sk.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

async function metrics(url: string): Promise<string> {
  const res = await fetch(`${url}/.prometheus/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return await res.text();
}

/** The value of one sample, or undefined. */
function sampleValue(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("--log --json prints UP and DOWN lines in the JSON form; the text form too", async () => {
  const [b1, b2] = await startBackends(2);
  const json = await startSidekick([
    "--log",
    "--json",
    "--trace",
    "",
    ...FAST,
    `${b1.url},${b2.url}`,
  ]);
  const text = await startSidekick(["--log", "--trace", "", ...FAST, b1.url]);
  try {
    await waitFor(
      () => jsonLines(json).filter((l) => l.Status === "up").length === 2,
      "two up lines",
    );
    for (const l of jsonLines(json)) {
      assert.deepEqual(Object.keys(l), ["Type", "Endpoint", "Status", "Downtime", "Timestamp"]);
      assert.equal(l.Type, "LOG");
      assert.ok(typeof l.Downtime === "number" && l.Downtime > 0, "startup counts as downtime");
      assert.match(String(l.Timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    await text.waitForLine(/is up Downtime duration: /);

    b1.healthStatus = 503;
    await waitFor(() => jsonLines(json).some((l) => l.Status === "down"), "a down line");
    const down = jsonLines(json).find((l) => l.Status === "down")!;
    assert.deepEqual(down, {
      Type: "LOG",
      Endpoint: b1.url,
      Error: "response status 503",
      Status: "down",
      Timestamp: down.Timestamp,
    });
    const downText = await text.waitForLine(/ is down: /);
    assert.match(
      downText,
      new RegExp(`^LOG  : \\d\\d:\\d\\d:\\d\\d\\.\\d{3}  ${b1.url} is down: response status 503$`),
    );

    b1.healthStatus = 200;
    await waitFor(
      () => jsonLines(json).filter((l) => l.Status === "up" && l.Endpoint === b1.url).length === 2,
      "back up",
    );
    assert.ok(json.stdout.every((l) => l.startsWith("{") || l.startsWith("sidekick: ")));
  } finally {
    await Promise.all([json.stop(), text.stop()]);
    await closeAll([b1, b2]);
  }
});

Deno.test("traces: one line per exchange; --trace application, --errors, --status-code, --quiet", async () => {
  const b = await startBackend("b1");
  const all = await startSidekick(["--json", ...FAST, b.url]); // not a TTY: console mode, trace all
  const app = await startSidekick(["--json", "--trace", "application", ...FAST, b.url]);
  const errors = await startSidekick(["--errors", ...FAST, b.url]);
  const codes = await startSidekick([
    "--status-code",
    "404",
    "--status-code",
    "201",
    ...FAST,
    b.url,
  ]);
  const quiet = await startSidekick(["--log", "--quiet", ...FAST, b.url]);
  const sidekicks = [all, app, errors, codes, quiet];
  try {
    await Promise.all(sidekicks.map((s) => s.waitHealthy()));
    for (const s of sidekicks) {
      assert.equal((await get(`${s.url}/hello?x=1`)).status, 200);
      assert.equal((await get(`${s.url}/status?code=404`)).status, 404);
    }
    // Every sidekick counted both requests before its stop flushes the output.
    for (const s of sidekicks) {
      await waitFor(async () => {
        const text = await metrics(s.url);
        return sampleValue(text, `sidekick_requests_total{endpoint="${b.url}"}`) === 2;
      }, "two requests counted");
    }
    await Promise.all(sidekicks.map((s) => s.stop()));

    const allTraces = jsonLines(all);
    const requests = allTraces.filter((l) => l.path !== "/health");
    assert.equal(requests.length, 2);
    assert.ok(allTraces.some((l) => l.path === "/health"), "health checks traced with --trace all");
    const hello = requests.find((l) => l.path === "/hello")!;
    assert.deepEqual(Object.keys(hello), [
      "type",
      "host",
      "time",
      "client",
      "callStats",
      "statusCode",
      "statusMsg",
      "method",
      "path",
      "query",
    ]);
    assert.equal(hello.type, "TRACE");
    assert.equal(hello.host, b.url);
    assert.equal(hello.query, "x=1");
    assert.equal(hello.client, "127.0.0.1");
    assert.equal(hello.statusMsg, "OK");
    const stats = hello.callStats as Record<string, number>;
    assert.ok(stats.rx > 0 && stats.tx > 0 && stats.latency > 0);

    const appTraces = jsonLines(app);
    assert.deepEqual(appTraces.map((l) => l.path).sort(), ["/hello", "/status"]);

    const errorLines = errors.stdout.filter((l) => l.startsWith("   LOG: "));
    assert.equal(errorLines.length, 1, errorLines.join("\n"));
    assert.match(
      errorLines[0],
      new RegExp(
        `^   LOG: \\d\\d:\\d\\d:\\d\\d\\.\\d{3} \\[404 Not Found\\]  ${b.url} GET ` +
          `/status\\?code=404 127\\.0\\.0\\.1 +\\d[^ ]*s +↑ \\d+ B ↓ \\d+ B$`,
      ),
    );

    const codeLines = codes.stdout.filter((l) => l.startsWith("   LOG: "));
    assert.equal(codeLines.length, 1);
    assert.ok(codeLines[0].includes("[404 Not Found]"));

    assert.ok(
      quiet.stdout.every((l) => l.startsWith("sidekick: ")),
      `--quiet prints no log or trace line:\n${quiet.stdout.join("\n")}`,
    );
  } finally {
    await Promise.all(sidekicks.map((s) => s.stop()));
    await b.close();
  }
});

Deno.test("uploads keep Content-Length with --debug --json tracing; rx counts the body", async () => {
  const b = await startBackend("b1");
  const sk = await startSidekick(["--json", "--debug", "--trace", "application", ...FAST, b.url]);
  try {
    await sk.waitHealthy();
    const body = new Uint8Array(100_000).fill(7);
    const res = await fetch(`${sk.url}/echo`, {
      method: "PUT",
      body,
      headers: { authorization: "Bearer s3cr3t", "x-amz-security-token": "t0ken" },
    });
    const echo = await res.json();
    assert.equal(echo.headers["content-length"], "100000");
    assert.equal(echo.headers["transfer-encoding"], undefined);
    assert.equal(echo.bodyBytes, 100_000);
    await waitFor(() => jsonLines(sk).length === 1, "the debug record");
    const rec = jsonLines(sk)[0] as {
      type: string;
      request: { headers: Record<string, string[]> };
      stats: { rx: number };
    };
    assert.equal(rec.type, "DEBUG");
    assert.ok(rec.stats.rx >= 100_000, `rx ${rec.stats.rx}`);
    assert.deepEqual(rec.request.headers["Content-Length"], ["100000"]);
    assert.deepEqual(rec.request.headers["Authorization"], ["Bearer *REDACTED*"]);
    assert.deepEqual(rec.request.headers["X-Amz-Security-Token"], ["*REDACTED*"]);
    assert.ok(!sk.stdout.join("\n").includes("s3cr3t") && !sk.stdout.join("\n").includes("t0ken"));
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("metrics count proxied requests of every site, health checks apart; promtool-clean", async (t) => {
  const [b1, b2] = await startBackends(2);
  const sk = await startSidekick(["--trace", "", ...FAST, b1.url, b2.url]);
  const up = (text: string, b: TestBackend, site: number) =>
    sampleValue(text, `sidekick_backend_up{endpoint="${b.url}",site="${site}"}`);
  try {
    await waitFor(async () => up(await metrics(sk.url), b1, 1) === 1, "site 1 up");
    for (let i = 0; i < 5; i++) assert.equal((await get(`${sk.url}/a`)).status, 200);
    b1.healthStatus = 503;
    await waitFor(async () => up(await metrics(sk.url), b1, 1) === 0, "site 1 down");
    await waitFor(async () => up(await metrics(sk.url), b2, 2) === 1, "site 2 up");
    for (let i = 0; i < 3; i++) assert.equal((await get(`${sk.url}/status?code=500`)).status, 500);

    // An exchange is counted once its response has been delivered, which may be just after the
    // client has read it: wait for the last one rather than race it.
    let text = "";
    await waitFor(async () => {
      text = await metrics(sk.url);
      return sampleValue(text, `sidekick_requests_total{endpoint="${b2.url}"}`) === 3;
    }, "the last exchange counted");
    const v = (series: string) => sampleValue(text, series);
    assert.equal(v(`sidekick_requests_total{endpoint="${b1.url}"}`), 5);
    assert.equal(v(`sidekick_requests_total{endpoint="${b2.url}"}`), 3);
    assert.equal(v(`sidekick_errors_total{endpoint="${b1.url}"}`), 0);
    assert.equal(v(`sidekick_errors_total{endpoint="${b2.url}"}`), 3);
    assert.ok(v(`sidekick_rx_bytes_total{endpoint="${b1.url}"}`)! > 0);
    assert.ok(v(`sidekick_tx_bytes_total{endpoint="${b2.url}"}`)! > 0);
    assert.equal(v(`sidekick_request_duration_seconds_count{endpoint="${b1.url}"}`), 5);
    assert.equal(v(`sidekick_requests_in_flight{endpoint="${b1.url}"}`), 0);
    const failures = v(`sidekick_health_checks_total{endpoint="${b1.url}",result="failure"}`)!;
    assert.ok(failures >= 1);
    assert.ok(v(`sidekick_health_error_counts{endpoint="${b1.url}"}`)! >= 1);
    assert.ok(v(`sidekick_health_checks_total{endpoint="${b2.url}",result="success"}`)! >= 1);
    assert.equal(v("sidekick_trace_lines_dropped_total"), 0);
    for (const name of ["process_resident_memory_bytes", "process_cpu_seconds_total"]) {
      assert.ok(v(name)! > 0, name);
    }
    assert.ok(v("process_start_time_seconds")! > 1e9);
    await promtoolCheckStep(t, text);
  } finally {
    await sk.stop();
    await closeAll([b1, b2]);
  }
});

Deno.test("counters survive a reload for endpoints that still exist", async () => {
  const [b1, b2] = await startBackends(2);
  const sk = createSidekick(
    makeConfig({
      address: "127.0.0.1:0",
      healthPath: "/health",
      healthDurationMs: 100,
      sites: [`${b1.url},${b2.url}`],
    }),
    { publicIp: "127.0.0.1" },
  );
  await sk.start();
  try {
    await sk.ready();
    for (let i = 0; i < 4; i++) assert.equal((await get(`${sk.url}/x`)).status, 200);
    const before = (await metrics(sk.url)).split("\n").filter((l) =>
      l.startsWith("sidekick_requests_total")
    );
    const pool = sk.pool;
    await sk.reload();
    assert.notEqual(sk.pool, pool, "a new generation of backends");
    const after = (await metrics(sk.url)).split("\n").filter((l) =>
      l.startsWith("sidekick_requests_total")
    );
    assert.deepEqual(after, before);
    const total = [b1, b2].reduce((n, b) => n + (sk.stats.get(b.url)?.requests ?? 0), 0);
    assert.equal(total, 4);
  } finally {
    await sk.stop();
    await closeAll([b1, b2]);
  }
});

/** Quotes one argument for `sh -c`. */
function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Runs sidekick under a pseudo-terminal (`script`), collecting everything it draws. */
function startInPty(args: string[], options: { noColor: boolean }) {
  const env = options.noColor ? ["NO_COLOR=1"] : ["-u", "NO_COLOR"];
  // The shell prints its PID, then becomes sidekick (exec): cleanup can reach sidekick itself,
  // which outlives a killed `script` (the hang-up it then gets means "reload" to sidekick).
  const command = "echo PID:$$; exec env " +
    [...env, Deno.execPath(), ...RUN_ARGS, "--address", "127.0.0.1:0"]
      .concat(args).map(shellQuote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfc", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { TERM: "xterm" },
  }).spawn();
  const writer = child.stdin.getWriter();
  let output = "";
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) output += chunk;
  })();
  const errors = new Response(child.stderr).text();
  return {
    get output() {
      return output;
    },
    /** Presses Ctrl-C in the terminal and waits for the exit. */
    async interrupt() {
      await writer.write(new Uint8Array([3]));
      const status = await child.status;
      await reading;
      await writer.close().catch(() => {});
      await errors;
      return status;
    },
    /** Kills sidekick and `script` if they still run (after a failed assertion). */
    kill() {
      const pid = Number(/PID:(\d+)/.exec(output)?.[1]);
      for (
        const kill of [() => pid > 0 && Deno.kill(pid, "SIGKILL"), () => child.kill("SIGKILL")]
      ) {
        try {
          kill();
        } catch { /* already gone */ }
      }
    },
  };
}

Deno.test("the live table under a pseudo-terminal: one row per backend, sites of different sizes", async () => {
  const [b1, b2, b3] = await startBackends(3);
  const colored = startInPty([...FAST, `${b1.url},${b2.url}`, b3.url], { noColor: false });
  const plain = startInPty(["--json", ...FAST, `${b1.url},${b2.url}`, b3.url], { noColor: true });
  try {
    const row = (site: string, b: TestBackend) =>
      new RegExp(`│ ${site} +│ ${b.url.replaceAll(".", "\\.")} +│ (\\x1b\\[[0-9;]*m)*UP`);
    for (const pty of [colored, plain]) {
      await waitFor(
        () =>
          row("1st", b1).test(pty.output) && row("1st", b2).test(pty.output) &&
          row("2nd", b3).test(pty.output),
        "a row per backend, all UP",
      );
    }
    assert.ok(colored.output.includes("\x1b[?1049h"), "alternate screen");
    assert.ok(colored.output.includes("\x1b[1m\x1b[32mSITE\x1b[0m"), "bold green header");
    assert.ok(!plain.output.includes("\x1b[1m"), "NO_COLOR: no colours");

    // --json on a terminal: the table only, no JSON trace line interleaved.
    const port = Number(/listening on '127\.0\.0\.1:(\d+)'/.exec(plain.output)?.[1]);
    assert.ok(port > 0, "the status line shows the address");
    assert.equal((await get(`http://127.0.0.1:${port}/hello`)).status, 200);
    await waitFor(
      () => /│ 1st +│ http:\/\/127\.0\.0\.1:\d+ +│ UP +│ 1 +│ 0 +│ \d+ B/.test(plain.output),
      "CALLS 1 in the table",
    );
    assert.ok(!plain.output.includes('"type"') && !plain.output.includes('{"'));

    for (const pty of [colored, plain]) {
      const status = await pty.interrupt();
      assert.equal(status.code, 0);
      assert.ok(pty.output.includes("\x1b[?25h\x1b[?1049l"), "terminal restored");
      const tail = pty.output.slice(pty.output.lastIndexOf("\x1b[?1049l"));
      assert.ok(tail.includes("┌") && tail.includes("caught signal 'interrupt'"), "last table");
    }
  } finally {
    colored.kill();
    plain.kill();
    await closeAll([b1, b2, b3]);
  }
});

Deno.test("--pprof serves a V8 CPU profile and a heap snapshot on its own listener", async () => {
  const b = await startBackend("b1");
  const sk = await startSidekick(["--pprof", "127.0.0.1:0", ...FAST, b.url]);
  try {
    const line = await sk.waitForLine(/profiling \(--pprof\) on '/);
    const base = /'(http:\/\/[^']+)\/\.pprof\/'/.exec(line)![1];
    assert.notEqual(base, sk.url);

    const index = await fetch(`${base}/.pprof/`);
    assert.match(await index.text(), /\/\.pprof\/profile\?seconds=N/);
    assert.equal((await get(`${base}/.pprof/profile?seconds=0`)).status, 400);

    const profile = await fetch(`${base}/.pprof/profile?seconds=1`);
    assert.equal(profile.status, 200);
    assert.match(profile.headers.get("content-disposition")!, /\.cpuprofile"$/);
    const cpu = await profile.json();
    assert.ok(Array.isArray(cpu.nodes) && cpu.nodes.length > 0);
    assert.ok(Array.isArray(cpu.samples) && cpu.endTime > cpu.startTime);

    const heap = await fetch(`${base}/.pprof/heap`);
    assert.equal(heap.status, 200);
    assert.match(heap.headers.get("content-disposition")!, /\.heapsnapshot"$/);
    const snapshot = await heap.json();
    assert.ok(snapshot.snapshot?.meta && Array.isArray(snapshot.nodes));

    // A pprof address that cannot be bound, or no permission for the inspector: a clear error.
    const busy = await runSidekick(["--pprof", `127.0.0.1:${b.port}`, b.url]);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /--pprof: unable to listen on '127\.0\.0\.1:\d+'/);
    const denied = await new Deno.Command(Deno.execPath(), {
      args: [...RUN_ARGS.filter((a) => a !== "--allow-sys"), "--pprof", "127.0.0.1:0", b.url],
      stdin: "null",
    }).output();
    assert.equal(denied.code, 2);
    assert.match(new TextDecoder().decode(denied.stderr), /--pprof needs .*--allow-sys/);
  } finally {
    await sk.stop();
    await b.close();
  }
});

Deno.test("a stdout nobody reads never stalls the proxy: trace lines are dropped and counted", async () => {
  const b = await startBackend("b1");
  const port = closedPort();
  const url = `http://127.0.0.1:${port}`;
  // stdout is a pipe this test never reads: it fills up after 64 KiB.
  const child = new Deno.Command(Deno.execPath(), {
    args: [...RUN_ARGS, "--address", `127.0.0.1:${port}`, "--debug", ...FAST, b.url],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  try {
    await waitFor(async () => {
      try {
        return (await get(`${url}/v1/health`)).status === 200;
      } catch {
        return false;
      }
    }, "sidekick healthy");
    // ~1.5 KiB of --debug text per request: 2000 requests overflow the pipe and the 1 MiB buffer.
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) assert.equal((await get(`${url}/x`)).status, 200);
    const elapsed = performance.now() - t0;
    const text = await metrics(url);
    assert.equal(sampleValue(text, `sidekick_requests_total{endpoint="${b.url}"}`), 2000);
    assert.ok(sampleValue(text, "sidekick_trace_lines_dropped_total")! > 0, "drops counted");
    assert.ok(elapsed < 30_000, `${elapsed} ms`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    await b.close();
  }
});
