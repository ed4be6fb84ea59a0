/**
 * Keeps `deno task bench:pair` (bench/pair.ts) from rotting: one short window of small GETs and
 * one of 64 KiB POSTs must print a CPU figure per proxy and the median line. Ignored, with the
 * reason in its name, where wrk or taskset is missing or the machine has one CPU.
 * @module
 */

import assert from "node:assert/strict";
import { needing, probeTool, type Tool } from "./helpers/tools.ts";

const REPO = new URL("..", import.meta.url).pathname;
/** A tool found on the PATH (wrk has no option that exits 0). */
async function onPath(command: string, install: string): Promise<Tool> {
  const found = await probeTool("sh", ["-c", `command -v ${command}`], install);
  return found.available
    ? { command, available: true, reason: "" }
    : { command, available: false, reason: `${command} not installed (${install})` };
}

const wrk = await onPath("wrk", "apt-get install wrk");
const taskset = await onPath("taskset", "apt-get install util-linux");
const cpus: Tool = navigator.hardwareConcurrency >= 2
  ? { command: "cpus", available: true, reason: "" }
  : { command: "cpus", available: false, reason: "one CPU only" };

Deno.test({
  ...needing(
    "bench:pair: a figure per proxy and a median, GET, POST with the duties row and S3 headers, PUT",
    wrk,
    taskset,
    cpus,
  ),
  async fn() {
    for (const extra of [[], ["--post", "--duties", "--s3-headers"], ["--put"]]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "bench/pair.ts", "--seconds", "1", "--windows", "1", ...extra],
        cwd: REPO,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const context = `${extra}: ${stdout}\n${new TextDecoder().decode(out.stderr)}`;
      assert.equal(out.code, 0, context);
      const duties = extra.includes("--duties");
      const load = extra.includes("--put")
        ? "PUT 64 KiB /put"
        : extra.includes("--post")
        ? "POST 64 KiB /post"
        : "GET /small";
      assert.ok(stdout.includes(`, ${load}, 1 windows`), context);
      const row = duties ? " {2}bare\\+duties \\d+ \\(\\d+\\.\\d\\d\\)" : "";
      assert.match(
        stdout,
        new RegExp(
          `^window 1 {2}bare \\d+ \\(1\\.00\\)${row} {2}sidekick \\d+ \\(\\d+\\.\\d\\d\\)$`,
          "m",
        ),
        context,
      );
      const median = duties
        ? " {2}bare\\+duties \\d+\\.\\d\\d \\[\\d+\\.\\d\\d–\\d+\\.\\d\\d\\]"
        : "";
      assert.match(
        stdout,
        new RegExp(
          `^median ×bare${median} {2}sidekick \\d+\\.\\d\\d \\[\\d+\\.\\d\\d–\\d+\\.\\d\\d\\]$`,
          "m",
        ),
        context,
      );
      if (duties) {
        assert.match(
          stdout,
          /^median ×bare\+duties {2}sidekick \d+\.\d\d \[\d+\.\d\d–\d+\.\d\d\]$/m,
          context,
        );
      }
    }
  },
});
