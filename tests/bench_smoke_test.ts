/**
 * Keeps the benchmark from rotting: `bench/proxy_bench.ts --smoke` (what `deno task bench --smoke`
 * runs) must start its backends, the bare proxy, sidekick and (when its binary is there) the Go
 * sidekick, drive each with wrk, and print a table with every row and a number in every column,
 * the paired ratios and the keep-alive latency over plain TCP. Where wrk is missing the test is
 * ignored, and says why.
 * @module
 */

import assert from "node:assert/strict";

const REPO = new URL("..", import.meta.url).pathname;
const WORKLOADS = ["GET 2 B", "GET 1 MiB", "POST 64 KiB"];
const PROXIES = ["direct", "bare", "sidekick"];

function found(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const missingWrk = found("wrk") ? null : "wrk is not installed (apt-get install wrk)";
if (missingWrk) console.warn(`bench smoke test ignored: ${missingWrk}`);

/** The first number of a cell: `123.4` or `123.4 [100.0–130.0]`. */
function lead(cell: string): number {
  const m = /^(\d+(?:\.\d+)?)(?: \[\d+(?:\.\d+)?–\d+(?:\.\d+)?\])?$/.exec(cell);
  assert.ok(m, `not a figure: ${JSON.stringify(cell)}`);
  return Number(m[1]);
}

Deno.test({
  name: `bench --smoke: a row per proxy and workload, numbers in every column${
    missingWrk ? ` (ignored: ${missingWrk})` : ""
  }`,
  ignore: missingWrk !== null,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-net", "bench/proxy_bench.ts", "--smoke"],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const context = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
    assert.equal(out.code, 0, context);

    const lines = stdout.split("\n");
    const table = lines.map((l) => l.trim().split(/\s{2,}/));
    const header = table.find((cells) => cells[0] === "workload");
    assert.deepEqual(header, [
      "workload",
      "proxy",
      "req/s",
      "req/s ×floor",
      "CPU µs/req",
      "CPU ×floor",
      "peak RSS MiB",
      "p99 ms",
      "errors",
    ], context);

    // The Go sidekick runs when its binary is there; otherwise the output says why not.
    const goSkipped = lines.some((l) => l.startsWith("skipped: go-sidekick-p1: "));
    const proxies = goSkipped ? PROXIES : [...PROXIES, "go-sidekick-p1"];
    for (const workload of WORKLOADS) {
      for (const proxy of proxies) {
        const row = table.find((cells) => cells[0] === workload && cells[1] === proxy);
        assert.ok(row, `no row for ${proxy} / ${workload}\n${context}`);
        const text = row.join(" | ");
        assert.equal(row.length, 9, text);
        const [, , rps, rpsRatio, cpu, cpuRatio, rss, p99, errors] = row;
        assert.ok(lead(rps) > 0, `${proxy} / ${workload} served nothing`);
        lead(p99);
        assert.equal(errors, "0", `${proxy} / ${workload}: failed requests\n${context}`);
        if (proxy === "direct") {
          assert.deepEqual([rpsRatio, cpu, cpuRatio, rss], ["-", "-", "-", "-"], text);
        } else {
          assert.ok(lead(cpu) > 0, `${proxy} / ${workload}: no CPU accounted\n${text}`);
          assert.ok(lead(rss) > 1, `${proxy} / ${workload}: no peak RSS read\n${text}`);
          assert.ok(lead(rpsRatio) > 0 && lead(cpuRatio) > 0, text);
          if (proxy === "bare") assert.deepEqual([rpsRatio, cpuRatio], ["1.00", "1.00"], text);
        }
      }
    }

    const paired = table.find((cells) => cells[0] === "GET 2 B CPU/req: sidekick --quiet ÷ bare");
    assert.ok(paired, `no paired ratio of sidekick to the floor\n${context}`);
    assert.ok(lead(paired[2]) > 0, paired.join(" | "));

    if (found("curl")) {
      for (const proxy of ["sidekick", "bare"]) {
        const row = table.find((cells) => cells[0] === "2 KB" && cells[1] === proxy);
        assert.ok(row, `no keep-alive latency row for ${proxy}\n${context}`);
        assert.ok(lead(row[2]) > 0, row.join(" | "));
      }
    }
  },
});
