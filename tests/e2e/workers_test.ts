/**
 * `--workers 2`: two data-plane isolates on one port behave as one sidekick — exact counters,
 * one health checker, a passive ejection seen by every worker, whole trace lines, reloads and
 * drains without a failed request.
 */

import assert from "node:assert/strict";
import { startBackend, startBackends, waitFor } from "../helpers/backends.ts";
import { RUN_ARGS, runSidekick, startSidekick } from "../helpers/sidekick_process.ts";
import { scrapeSum, sumSamples } from "../helpers/metrics_text.ts";
import { needing, probeTool } from "../helpers/tools.ts";

/** A client that opens a new connection per request, so the kernel spreads them over workers. */
function freshConnections(): Deno.HttpClient {
  return Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
}

async function get(url: string, client: Deno.HttpClient): Promise<number> {
  const res = await fetch(url, { client });
  await res.body?.cancel();
  return res.status;
}

Deno.test("--workers 2: every request counted exactly once; one health check per backend per round", async () => {
  const backends = await startBackends(2);
  const sk = await startSidekick([
    "--workers",
    "2",
    "--quiet",
    "--health-path",
    "/health",
    "--health-duration",
    "1h",
    backends.map((b) => b.url).join(","), // one site of two
  ]);
  using client = freshConnections();
  try {
    await sk.waitForLine(/2 worker isolates/);
    await waitFor(() => backends.every((b) => b.healthChecks > 0), "the first health round");
    await sk.waitHealthy();
    assert.deepEqual(
      backends.map((b) => b.healthChecks),
      [1, 1],
      "one checker, not one per worker",
    );
    const statuses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => get(`${sk.url}/n${i}`, client)),
    );
    assert.ok(statuses.every((s) => s === 200));
    const seen = backends.reduce((n, b) => n + b.seen.length, 0);
    assert.equal(seen, 200);
    // An exchange is counted once its response is delivered, a moment after the client read it.
    await waitFor(
      async () => (await scrapeSum(sk.url, "sidekick_requests_total{", client)) >= 200,
      "the last exchanges counted",
    );
    // Any worker may answer the scrape; each must give the totals of all.
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${sk.url}/.prometheus/metrics`, { client });
      const text = await res.text();
      assert.equal(sumSamples(text, "sidekick_requests_total{"), 200);
      assert.equal(sumSamples(text, "sidekick_request_duration_seconds_count{"), 200);
      assert.equal(sumSamples(text, "sidekick_requests_in_flight{"), 0);
      assert.equal(sumSamples(text, 'sidekick_health_checks_total{endpoint="'), 2);
    }
  } finally {
    await sk.stop();
    for (const b of backends) await b.close();
  }
});

Deno.test("--workers 2: a backend ejected by one worker is avoided by all, reported once", async () => {
  const [alive, dying] = await startBackends(2);
  const sk = await startSidekick([
    "--workers",
    "2",
    "--log",
    "--trace",
    "",
    "--health-path",
    "/health",
    "--health-duration",
    "1h", // only a passive ejection can take it out during the test
    `${alive.url},${dying.url}`, // one site of two
  ]);
  using client = freshConnections();
  try {
    await waitFor(async () => {
      const res = await fetch(`${sk.url}/.prometheus/metrics`, { client });
      return sumSamples(await res.text(), "sidekick_backend_up{") === 2;
    }, "both backends UP");
    await dying.close();
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push(await get(`${sk.url}/x${i}`, client));
    // The first request that picked it failed (and was retried on the other backend) and
    // marked it DOWN in shared memory; no other worker picked it after that.
    assert.deepEqual(statuses.filter((s) => s !== 200), [], "retried: no failed request");
    const text = await (await fetch(`${sk.url}/.prometheus/metrics`, { client })).text();
    assert.equal(sumSamples(text, `sidekick_retries_total{endpoint="${dying.url}"`), 1);
    await sk.waitForLine(/is down/);
    assert.equal(sk.stdout.filter((l) => l.includes(`${dying.url} is down`)).length, 1);
  } finally {
    await sk.stop();
    await alive.close();
  }
});

Deno.test("--workers 2 --json: whole trace lines, one per request", async () => {
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--workers",
    "2",
    "--json",
    "--trace",
    "application",
    "--health-path",
    "/health",
    backend.url,
  ]);
  using client = freshConnections();
  try {
    await sk.waitHealthy();
    const n = 300;
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) => get(`${sk.url}/line/${i}`, client)),
    );
    assert.ok(statuses.every((s) => s === 200));
    const traced = () => sk.stdout.filter((l) => l.includes('"/line/')).length;
    await waitFor(() => traced() === n, `${n} trace lines`);
    const paths = new Set<string>();
    for (const line of sk.stdout.filter((l) => l.startsWith("{"))) {
      const record = JSON.parse(line); // a torn or interleaved line would not parse
      if (String(record.path).startsWith("/line/")) paths.add(record.path);
    }
    assert.equal(paths.size, n, "every request's line, none twice");
  } finally {
    await sk.stop();
    await backend.close();
  }
});

Deno.test("--workers 2: SIGHUP under load swaps every worker without a failed request", async () => {
  const backends = await startBackends(2);
  const sk = await startSidekick([
    "--workers",
    "2",
    "--quiet",
    "--health-path",
    "/health",
    backends.map((b) => b.url).join(","), // one site of two
  ]);
  using client = freshConnections();
  try {
    await sk.waitHealthy();
    const statuses: number[] = [];
    let stop = false;
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop) statuses.push(await get(`${sk.url}/load`, client));
    });
    for (let i = 1; i <= 3; i++) {
      await waitFor(() => statuses.length >= i * 100, `${i * 100} requests`);
      sk.kill("SIGHUP");
      await sk.waitForLine(new RegExp(`reloading sites`));
    }
    const before = backends.reduce((n, b) => n + b.healthChecks, 0);
    // Each reload checks every backend once before it swaps; wait for the three rounds.
    await waitFor(() => backends.every((b) => b.healthChecks >= 4), "the reloads' health rounds");
    await waitFor(() => statuses.length >= 400, "load after the reloads");
    stop = true;
    await Promise.all(loops);
    assert.ok(before >= 2);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], "no failed request");
  } finally {
    await sk.stop();
    for (const b of backends) await b.close();
  }
});

Deno.test("--workers 2: SIGTERM drains the requests in flight on every worker, then exits 0", async () => {
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--workers",
    "2",
    "--quiet",
    "--health-path",
    "/health",
    backend.url,
  ]);
  using client = freshConnections();
  try {
    await sk.waitHealthy();
    const slow = Array.from({ length: 6 }, async (_, i) => {
      const res = await fetch(`${sk.url}/slow?ms=700&i=${i}`, { client });
      return { status: res.status, body: await res.text() };
    });
    await waitFor(() => backend.inflight === 6, "six slow requests in flight");
    sk.kill("SIGTERM");
    for (const r of await Promise.all(slow)) assert.deepEqual(r, { status: 200, body: "b1 slow" });
    assert.equal((await sk.exited()).code, 0);
  } finally {
    await sk.stop();
    await backend.close();
  }
});

Deno.test("--workers: bad values are one line naming the flag, exit 2", async () => {
  for (const value of ["0", "-1", "1.5", "many"]) {
    const out = await runSidekick(["--workers", value, "http://127.0.0.1:9000"]);
    assert.equal(out.code, 2, value);
    assert.match(out.stderr, /^sidekick: --workers: .*1\.\.64\n$/, value);
  }
});

const taskset = await probeTool("taskset", ["-c", "0", "true"], "apt-get install util-linux");

Deno.test({
  ...needing("the default worker count follows the CPUs this process may use (affinity)", taskset),
  fn: async () => {
    const backend = await startBackend("b1");
    const child = new Deno.Command("taskset", {
      args: ["-c", "0", Deno.execPath(), ...RUN_ARGS, "--address", "127.0.0.1:0", backend.url],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("listening on")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      reader.releaseLock();
      assert.match(
        text,
        /listening on '127\.0\.0\.1:\d+'\n/,
        "one CPU: one isolate, no worker count",
      );
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await backend.close();
    }
  },
});
