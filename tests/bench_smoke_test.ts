/**
 * Keeps the benchmark from rotting: `bench/proxy_bench.ts --smoke` (what `deno task bench --smoke`
 * runs) must start its backends, the bare proxy and sidekick, drive each with wrk, and print a
 * table with every row and a number in every column. Skipped with a warning where wrk is missing.
 * @module
 */

import assert from "node:assert/strict";

const REPO = new URL("..", import.meta.url).pathname;
const WORKLOADS = ["GET 2 B", "GET 1 MiB", "POST 64 KiB"];
const PROXIES = ["direct", "bare", "sidekick"];

function hasWrk(): boolean {
  try {
    new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("bench --smoke: a row per proxy and workload, numbers in every column", async () => {
  if (!hasWrk()) {
    console.warn("wrk not installed (apt-get install wrk): benchmark smoke run skipped");
    return;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", "bench/proxy_bench.ts", "--smoke"],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const context = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
  assert.equal(out.code, 0, context);

  const lines = stdout.split("\n");
  const header = lines.find((l) => l.startsWith("workload"));
  assert.ok(header, context);
  assert.deepEqual(header.trim().split(/\s{2,}/), [
    "workload",
    "proxy",
    "req/s",
    "vs direct",
    "CPU µs/req",
    "peak RSS MiB",
    "p99 ms",
    "errors",
  ]);

  const number = /^\d+(\.\d+)?$/;
  for (const workload of WORKLOADS) {
    for (const proxy of PROXIES) {
      const row = lines.map((l) => l.trim().split(/\s{2,}/))
        .find((cells) => cells[0] === workload && cells[1] === proxy);
      assert.ok(row, `no row for ${proxy} / ${workload}\n${context}`);
      assert.equal(row.length, 8, row.join(" | "));
      const [, , rps, ratio, cpu, rss, p99, errors] = row;
      assert.match(rps, number, row.join(" | "));
      assert.ok(Number(rps) > 0, `${proxy} / ${workload} served nothing`);
      assert.match(ratio, number, row.join(" | "));
      assert.match(p99, number, row.join(" | "));
      assert.equal(errors, "0", `${proxy} / ${workload}: failed requests\n${context}`);
      if (proxy === "direct") {
        assert.equal(ratio, "1.00");
      } else {
        assert.match(cpu, number, row.join(" | "));
        assert.ok(Number(cpu) > 0, `${proxy} / ${workload}: no CPU accounted`);
        assert.match(rss, number, row.join(" | "));
        assert.ok(Number(rss) > 1, `${proxy} / ${workload}: no peak RSS read`);
      }
    }
  }
});
