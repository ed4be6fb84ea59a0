/** `--slow-start`: a backend that comes back UP gets a share of new requests that ramps up. */

import assert from "node:assert/strict";
import { startBackends, waitFor } from "../helpers/backends.ts";
import { startSidekick } from "../helpers/sidekick_process.ts";

Deno.test("--slow-start: right after recovery a backend's share is well below fair; after the window it is fair", async () => {
  const [a, b] = await startBackends(2);
  const window = 3_000;
  const sk = await startSidekick([
    "--health-path",
    "/health",
    "--health-duration",
    "100ms",
    "--slow-start",
    `${window}ms`,
    "--log",
    "--trace",
    "",
    `${a.url},${b.url}`,
  ]);
  const shareOfB = async (n: number) => {
    let fromB = 0;
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${sk.url}/s${i}`);
      if ((await res.text()) === b.name) fromB++;
    }
    return fromB / n;
  };
  try {
    await waitFor(() => sk.stdout.filter((l) => / is up/.test(l)).length === 2, "both UP");
    b.healthStatus = 503;
    await sk.waitForLine(new RegExp(`${b.url} is down`));
    b.healthStatus = 200;
    await waitFor(
      () => sk.stdout.filter((l) => l.includes(`${b.url} is up`)).length === 2,
      "recovery",
    );
    const upAt = Date.now();
    const early = await shareOfB(60);
    const earlyEnd = Date.now();
    assert.ok(earlyEnd - upAt < window / 2, "measured in the first half of the window");
    assert.ok(early < 0.25, `share right after recovery: ${early}`);
    await waitFor(() => Date.now() > upAt + window, "the end of the window");
    const later = await shareOfB(200);
    assert.ok(later > 0.35 && later < 0.65, `share after the window: ${later}`);
  } finally {
    await sk.stop();
    await a.close();
    await b.close();
  }
});
