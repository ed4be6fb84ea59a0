/**
 * sidekick with its stdout redirected to a file, as under systemd or `> sidekick.log`: every
 * request's trace line reaches the file, in later batches too, and a stop does not wait for the
 * writer's flush deadline.
 * @module
 */

import assert from "node:assert/strict";
import { startBackend, waitFor } from "../helpers/backends.ts";
import { RUN_ARGS } from "../helpers/sidekick_process.ts";

Deno.test("stdout to a file: every trace line written, batch after batch; the stop is prompt", async () => {
  const backend = await startBackend("one");
  const log = await Deno.makeTempFile({ suffix: ".log" });
  const args = [...RUN_ARGS, "--address", "127.0.0.1:0", "--health-path", "/health", backend.url]
    .map((a) => `'${a}'`).join(" ");
  const child = new Deno.Command("sh", {
    args: ["-c", `exec '${Deno.execPath()}' ${args} > '${log}'`],
    stderr: "null",
  }).spawn();
  const lines = () => Deno.readTextFileSync(log).split("\n").filter(Boolean);
  try {
    let url = "";
    await waitFor(() => {
      const m = lines().join("\n").match(/listening on '(127\.0\.0\.1:\d+)'/);
      if (m) url = `http://${m[1]}`;
      return m !== null;
    }, "the listening line in the file");
    await waitFor(async () => {
      const r = await fetch(`${url}/warm`).catch(() => null);
      await r?.body?.cancel();
      return r?.status === 200;
    }, "the backend UP");
    // Three requests, each in a batch of its own: each line must reach the file.
    for (const path of ["/a", "/b", "/c"]) {
      await (await fetch(url + path)).body?.cancel();
      await waitFor(() => lines().some((l) => l.includes(` ${path} `)), `the trace of ${path}`);
    }
    const t0 = Date.now();
    child.kill("SIGINT");
    assert.equal((await child.status).code, 0);
    assert.ok(Date.now() - t0 < 1_500, `stopped in ${Date.now() - t0} ms`);
    assert.ok(lines().some((l) => l.includes("caught signal")), lines().join("\n"));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await backend.close();
    await Deno.remove(log);
  }
});
