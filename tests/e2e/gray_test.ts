/**
 * Gray failures with real processes: a backend whose health check passes while its data path
 * hangs, stalls mid-body or is slow. `--response-timeout` bounds the wait for headers (retry
 * elsewhere when safe, else 504), `--eject-after` takes such a backend out of picking,
 * `--hedge-after` races a slow GET against another backend, `--host-balance ewma` steers traffic
 * away from a slow one. Each with one worker and with `--workers 2`.
 */

import assert from "node:assert/strict";
import { startBackend, startBackends, type TestBackend, waitFor } from "../helpers/backends.ts";
import { runSidekick, type SidekickProcess, startSidekick } from "../helpers/sidekick_process.ts";
import { scrapeSum } from "../helpers/metrics_text.ts";

const FLAGS = ["--health-path", "/health", "--health-duration", "200ms", "--quiet"];

function metric(sk: SidekickProcess, prefix: string): Promise<number> {
  return scrapeSum(sk.url, prefix);
}

async function allUp(sk: SidekickProcess, n: number): Promise<void> {
  await waitFor(async () => (await metric(sk, "sidekick_backend_up{")) === n, `${n} backends UP`);
}

/**
 * sidekick with the common flags, `--workers workers` and `args` (flags, then the SITEs), once
 * `up` backends are UP; stopped again if they never are.
 */
async function sidekickOver(workers: string, args: string[], up: number): Promise<SidekickProcess> {
  const sk = await startSidekick([...FLAGS, "--workers", workers, ...args]);
  try {
    await allUp(sk, up);
  } catch (e) {
    await sk.stop();
    throw e;
  }
  return sk;
}

/** Sends `n` GETs, `concurrency` at a time; returns each one's status and latency, ms. */
async function load(
  url: string,
  n: number,
  concurrency: number,
  client: Deno.HttpClient,
): Promise<{ status: number; ms: number; body: string }[]> {
  const out: { status: number; ms: number; body: string }[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      const res = await fetch(`${url}/obj${i}`, { client, signal: AbortSignal.timeout(30_000) });
      const body = await res.text();
      out.push({ status: res.status, ms: performance.now() - t0, body });
    }
  }));
  return out;
}

async function closeAll(sk: SidekickProcess | undefined, backends: TestBackend[]) {
  await sk?.stop();
  for (const b of backends) await b.close();
}

for (const workers of ["1", "2"]) {
  Deno.test(`--workers ${workers}: one of three backends hangs while its health passes: GETs answered by the others within the response timeout`, async () => {
    const backends = await startBackends(3);
    backends[0].hang = true;
    let sk: SidekickProcess | undefined;
    try {
      sk = await sidekickOver(workers, [
        "--response-timeout",
        "1s",
        "--eject-after",
        "0",
        backends.map((b) => b.url).join(","),
      ], 3);
      using client = Deno.createHttpClient({});
      const results = await load(sk.url, 12, 3, client);
      assert.deepEqual(results.filter((r) => r.status !== 200), [], "no failed GET");
      const worst = Math.max(...results.map((r) => r.ms));
      assert.ok(worst < 5_000, `slowest GET ${worst} ms`);
      assert.ok(backends[0].seen.length >= 1, "the hung backend was tried");
      await waitFor(
        async () =>
          (await metric(
            sk!,
            `sidekick_retries_total{endpoint="${backends[0].url}",reason="timeout"`,
          )) >= 1,
        "retries counted as 'timeout'",
      );
    } finally {
      await closeAll(sk, backends);
    }
  });

  Deno.test(`--workers ${workers}: a POST to a hung backend gets a 504 document once; no other backend sees it`, async () => {
    const hung = await startBackend("hung");
    const failover = await startBackend("failover");
    hung.hang = true;
    let sk: SidekickProcess | undefined;
    try {
      sk = await sidekickOver(workers, ["--response-timeout", "500ms", hung.url, failover.url], 2);
      const t0 = performance.now();
      const res = await fetch(`${sk.url}/bucket/upload?uploads`, {
        method: "POST",
        body: "x".repeat(1000),
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      assert.equal(res.status, 504);
      assert.equal(res.headers.get("content-type"), "application/xml");
      assert.match(text, /<Code>GatewayTimeout<\/Code>/);
      assert.match(text, /<Resource>\/bucket\/upload<\/Resource>/);
      assert.ok(ms < 5_000, `${ms} ms`);
      assert.equal(hung.seen.length, 1, "delivered once");
      assert.equal(hung.seen[0].bodyBytes, 1000);
      assert.equal(failover.seen.length, 0, "never sent elsewhere");
    } finally {
      await closeAll(sk, [hung, failover]);
    }
  });

  Deno.test(`--workers ${workers}: a backend that stalls mid-body: the response started is never retried or sent twice; the client that gives up frees the backend`, async () => {
    const [stalling, other] = await startBackends(2);
    stalling.stallMidBody = true;
    let sk: SidekickProcess | undefined;
    try {
      // `other` is a failover site: the request goes to the stalling backend.
      sk = await sidekickOver(workers, ["--response-timeout", "500ms", stalling.url, other.url], 2);
      const controller = new AbortController();
      const res = await fetch(`${sk.url}/object`, { signal: controller.signal });
      assert.equal(res.status, 200, "headers came in time: no timeout");
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.equal(new TextDecoder().decode(first.value), "b1 first chunk");
      // Well past the response timeout the body is still open: it is not the headers' bound.
      const more = await Promise.race([
        reader.read().then(() => "data"),
        new Promise((r) => setTimeout(() => r("stalled"), 1_500)),
      ]);
      assert.equal(more, "stalled");
      controller.abort();
      await reader.cancel().catch(() => {});
      await waitFor(() => stalling.inflight === 0, "the stalled exchange cancelled upstream");
      assert.equal(other.seen.length, 0, "never retried elsewhere");
      assert.equal(stalling.seen.length, 1);
    } finally {
      await closeAll(sk, [stalling, other]);
    }
  });
}

for (const workers of ["1", "2"]) {
  Deno.test(`--workers ${workers}: one of three backends hung, --response-timeout 1s --eject-after 2: no failed GET, none slower than 3 s, and once ejected none reach it`, async () => {
    const backends = await startBackends(3);
    const hung = backends[0];
    hung.hang = true;
    let sk: SidekickProcess | undefined;
    try {
      sk = await sidekickOver(workers, [
        "--response-timeout",
        "1s",
        "--eject-after",
        "2",
        backends.map((b) => b.url).join(","),
      ], 3);
      using client = Deno.createHttpClient({});
      const before = await load(sk.url, 60, 4, client);
      const line = await sk.waitForLine(/ejected for 30s/);
      assert.match(line, new RegExp(`${hung.url} ejected for 30s after 2 consecutive failures`));
      const reached = hung.seen.length;
      const after = await load(sk.url, 60, 4, client);
      const all = [...before, ...after];
      const worst = Math.max(...all.map((r) => r.ms));
      console.log(
        `  workers ${workers}: ${all.length} GETs, ${all.filter((r) => r.status !== 200).length} ` +
          `failed, slowest ${worst.toFixed(0)} ms; the hung backend got ${reached} before ` +
          `ejection, ${hung.seen.length - reached} after`,
      );
      assert.deepEqual(all.filter((r) => r.status !== 200), [], "no failed GET");
      assert.ok(worst < 3_000, `slowest GET ${worst} ms`);
      assert.equal(hung.seen.length, reached, "none reach it once ejected");
      assert.equal(hung.healthChecks > 0, true, "its health check still passes");
      assert.equal(await metric(sk, `sidekick_backend_ejections_total{endpoint="${hung.url}"`), 1);
      assert.equal(await metric(sk, `sidekick_backend_ejected{endpoint="${hung.url}"`), 1);
      assert.equal(await metric(sk, "sidekick_backend_up{"), 3, "ejected is not DOWN");
      assert.equal(sk.stdout.filter((l) => / ejected for /.test(l)).length, 1, "logged once");
    } finally {
      await closeAll(sk, backends);
    }
  });
}

/** Total requests the backends received (health checks excluded). */
function received(backends: TestBackend[]): number {
  return backends.reduce((n, b) => n + b.seen.length, 0);
}

for (const workers of ["1", "2"]) {
  Deno.test(`--workers ${workers}: one backend 400 ms slower: --hedge-after 50ms cuts the GETs that wait for it to a third or less, at most 1.5× the backend requests`, async () => {
    const backends = await startBackends(3);
    backends[0].delayMs = 400;
    const run = async (hedge: string[]) => {
      const sk = await startSidekick([
        ...FLAGS,
        "--workers",
        workers,
        "--host-balance",
        "random",
        ...hedge,
        backends.map((b) => b.url).join(","),
      ]);
      try {
        await allUp(sk, 3);
        for (const b of backends) b.seen.length = 0;
        using client = Deno.createHttpClient({});
        // 60 GETs: the retry budget (20 % of the requests + 10 per 10 s) allows 22 hedges, enough
        // for the third of them that goes to the slow backend (at 90, 28 hedges cover it only
        // on average: see the README on the cap).
        const results = await load(sk.url, 60, 3, client);
        assert.deepEqual(results.filter((r) => r.status !== 200), [], "no failed GET");
        const waited = results.filter((r) => r.ms >= 400).length;
        const hedges = await metric(sk, "sidekick_hedges_total{");
        // The GETs sent to the slow backend first: the ones that would wait for it unhedged.
        const toSlow = backends[0].seen.length;
        return { waited, toSlow, sent: received(backends), hedges, n: results.length };
      } finally {
        await sk.stop();
      }
    };
    try {
      const off = await run([]);
      const on = await run(["--hedge-after", "50ms"]);
      console.log(
        `  workers ${workers}: without hedging ${off.waited} of ${off.n} GETs waited ≥ 400 ms ` +
          `(${off.sent} backend requests); with --hedge-after 50ms ${on.waited} of the ` +
          `${on.toSlow} sent to the slow backend (${on.sent} backend requests, ${on.hedges} hedges)`,
      );
      assert.ok(off.waited >= 8, `the slow backend was picked: ${off.waited}`);
      // Compared within the hedged run: random balancing sends each run a different share to the
      // slow backend, and the hedges the retry budget allows (20 % + 1/s) are a fixed number.
      assert.ok(on.toSlow >= 8, `the slow backend was picked: ${on.toSlow}`);
      assert.ok(on.waited <= on.toSlow / 3, `${on.waited} of ${on.toSlow} waited`);
      assert.ok(on.sent <= on.n * 1.5, `${on.sent} backend requests for ${on.n} GETs`);
      assert.ok(on.hedges >= 1);
    } finally {
      for (const b of backends) await b.close();
    }
  });

  Deno.test(`--workers ${workers}: every backend slow: hedges stay within the retry budget`, async () => {
    const backends = await startBackends(3);
    for (const b of backends) b.delayMs = 150;
    let sk: SidekickProcess | undefined;
    try {
      sk = await sidekickOver(workers, [
        "--hedge-after",
        "20ms",
        backends.map((b) => b.url).join(","),
      ], 3);
      for (const b of backends) b.seen.length = 0;
      using client = Deno.createHttpClient({});
      const results = await load(sk.url, 150, 6, client);
      assert.deepEqual(results.filter((r) => r.status !== 200), [], "no failed GET");
      const sent = received(backends);
      // 20 % of the requests plus a floor of one a second over the 10 s window.
      assert.ok(sent <= 150 * 1.2 + 10, `${sent} backend requests for 150 GETs`);
      assert.ok(sent > 150, "some hedges were sent");
      assert.ok(await metric(sk, "sidekick_hedges_total{") >= 1);
    } finally {
      await closeAll(sk, backends);
    }
  });
}

for (const workers of ["1", "2"]) {
  Deno.test(`--workers ${workers}: --host-balance ewma gives a backend 150 ms slower at most 15 % of the traffic`, async () => {
    const backends = await startBackends(3);
    const slow = backends[0];
    slow.delayMs = 150;
    const run = async (policy: string) => {
      const sk = await startSidekick([
        ...FLAGS,
        "--workers",
        workers,
        "--host-balance",
        policy,
        backends.map((b) => b.url).join(","),
      ]);
      try {
        await allUp(sk, 3);
        for (const b of backends) b.seen.length = 0;
        using client = Deno.createHttpClient({});
        // One at a time: `least` then sees every backend idle and spreads evenly, so the
        // difference is the latency estimate's alone.
        const results = await load(sk.url, 90, 1, client);
        assert.deepEqual(results.filter((r) => r.status !== 200), [], "no failed GET");
        return slow.seen.length / received(backends);
      } finally {
        await sk.stop();
      }
    };
    try {
      const least = await run("least");
      const ewma = await run("ewma");
      console.log(
        `  workers ${workers}: share of the backend 150 ms slower: least ${
          (least * 100).toFixed(1)
        } %, ewma ${(ewma * 100).toFixed(1)} %`,
      );
      assert.ok(ewma <= 0.15, `ewma share ${ewma}`);
    } finally {
      for (const b of backends) await b.close();
    }
  });
}

Deno.test("bad values of the gray-failure flags: one line naming the flag, exit status 2", async () => {
  for (
    const [args, flag] of [
      [["--response-timeout", "soon"], "--response-timeout"],
      [["--eject-after", "-3"], "--eject-after"],
      [["--hedge-after", "2s", "--response-timeout", "1s"], "--hedge-after"],
      [["--host-balance", "fastest"], "--host-balance"],
    ] as const
  ) {
    const out = await runSidekick([...args, "http://127.0.0.1:9"]);
    assert.equal(out.code, 2, out.stderr);
    const lines = out.stderr.trim().split("\n");
    assert.equal(lines.length, 1, out.stderr);
    assert.match(lines[0], new RegExp(`^sidekick: ${flag}: `));
  }
});
