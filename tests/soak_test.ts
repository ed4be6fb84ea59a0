/**
 * Keeps the soak run from rotting: `bench/soak.ts --short` (what `deno task soak --short` runs)
 * must start its backends and sidekick, load them while backends are killed and restarted, print
 * its report with every row, and exit 0.
 * @module
 */

import assert from "node:assert/strict";

const REPO = new URL("..", import.meta.url).pathname;

Deno.test("soak --short: a report row per method and measure, exit status 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    // Without --allow-failures: any failed idempotent request (or RSS/fd growth) fails the run.
    args: ["run", "-A", "bench/soak.ts", "--short"],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const context = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
  assert.equal(out.code, 0, context);

  const rows = stdout.split("\n").map((l) => l.trim().split(/\s{2,}/));
  const row = (first: string) => rows.find((cells) => cells[0] === first);
  const summary = /(\d+) kills \(SIGKILL\), (\d+) restarts/.exec(stdout);
  assert.ok(summary, context);
  assert.ok(Number(summary[1]) > 0, `no backend was killed\n${context}`);
  assert.ok(Number(summary[2]) > 0, `no backend was restarted\n${context}`);

  assert.deepEqual(row("method"), ["method", "idempotent", "requests", "ok", "failed", "why"]);
  for (const method of ["GET", "PUT", "POST", "all"]) {
    const cells = row(method);
    assert.ok(cells, `no row for ${method}\n${context}`);
    const [, , requests, ok, failed] = cells;
    assert.ok(Number(requests) > 0, `no ${method} request was sent\n${context}`);
    assert.equal(Number(ok) + Number(failed), Number(requests), cells.join(" | "));
  }
  for (const counter of ["sidekick_requests_total", "sidekick_errors_total"]) {
    assert.match(row(counter)?.[1] ?? "", /^\d+$/, `${counter}\n${context}`);
  }
  // Retry counters are exported once retries exist; until then the report says n/a.
  for (const counter of ["sidekick_retries_total", "sidekick_retry_budget_exhausted_total"]) {
    assert.match(row(counter)?.[1] ?? "", /^(\d+|n\/a)$/, `${counter}\n${context}`);
  }
  assert.deepEqual(row("sidekick process"), [
    "sidekick process",
    "after warm-up",
    "end",
    "peak",
    "growth",
    "limit",
  ]);
  for (const measure of ["RSS MiB", "open fds"]) {
    const cells = row(measure);
    assert.ok(cells, `no row for ${measure}\n${context}`);
    assert.equal(cells.length, 6, cells.join(" | "));
    assert.ok(Number(cells[1]) > 0, `${measure} not read\n${context}`);
  }
  assert.match(stdout, /^soak: PASS$/m, context);
});

Deno.test("soak --short --gray: a frozen and a slow backend, the worst client latency reported, exit status 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/soak.ts", "--short", "--gray"],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const context = `${stdout}\n${new TextDecoder().decode(out.stderr)}`;
  assert.equal(out.code, 0, context);
  assert.match(
    stdout,
    /gray: backend :\d+ frozen \(SIGSTOP\) for [\d.]+ s, backend :\d+ 400 ms slower/,
  );
  const worst = /worst client latency: (\d+) ms/.exec(stdout);
  assert.ok(worst, context);
  // The frozen backend holds no request past --response-timeout 1s plus a retry elsewhere.
  assert.ok(Number(worst[1]) < 5_000, context);
  assert.match(stdout, /^soak: PASS$/m, context);
});
