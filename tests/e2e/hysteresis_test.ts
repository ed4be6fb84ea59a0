/**
 * End-to-end health hysteresis: `--health-fall 2` keeps a backend UP through one failed check and
 * takes it out on the second; `--health-rise 3` gives a recovered backend traffic only after three
 * passing checks in a row, while start-up still needs one. Observed through the backends' own
 * check counts, the `--log` lines and the metrics, whose UP flags and check counters are read in
 * one go in the control plane (so one scrape is a consistent view of the checker's decisions).
 */

import assert from "node:assert/strict";
import { startBackends, type TestBackend, waitFor } from "../helpers/backends.ts";
import { type SidekickProcess, startSidekick } from "../helpers/sidekick_process.ts";

const ARGS = [
  "--health-path",
  "/health",
  "--health-duration",
  "100ms",
  "--health-timeout",
  "2s",
  "--health-rise",
  "3",
  "--health-fall",
  "2",
  "--log",
];

/** What one scrape says about one endpoint. */
interface Scrape {
  up: number;
  successes: number;
  failures: number;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function metricValue(text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${escape(labels)}\\} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no ${name}{${labels}} in the metrics`);
  return Number(m[1]);
}

async function scrape(sk: SidekickProcess, b: TestBackend): Promise<Scrape> {
  const res = await fetch(`${sk.url}/.prometheus/metrics`);
  const text = await res.text();
  const e = `endpoint="${b.url}"`;
  return {
    up: metricValue(text, "sidekick_backend_up", `${e},site="1"`),
    successes: metricValue(text, "sidekick_health_checks_total", `${e},result="success"`),
    failures: metricValue(text, "sidekick_health_checks_total", `${e},result="failure"`),
  };
}

async function get(url: string): Promise<string> {
  const res = await fetch(url);
  return await res.text();
}

Deno.test("--health-fall 2 and --health-rise 3: out on the second failure, back on the third pass", async () => {
  const backends = await startBackends(2);
  const [b1] = backends;
  const sk = await startSidekick([...ARGS, backends.map((b) => b.url).join(",")]);
  const upLine = new RegExp(`${escape(b1.url)} is up`);
  const downLine = new RegExp(`${escape(b1.url)} is down: response status 503`);
  const count = (re: RegExp) => sk.stdout.filter((l) => re.test(l)).length;
  try {
    // Start-up: a new backend comes UP on its first passing check, rise or not.
    await sk.waitForLine(upLine);
    assert.ok(b1.healthChecks < 3, `UP after ${b1.healthChecks} check(s), not three`);
    await sk.waitHealthy();

    // Fall: the first failed check leaves b1 UP, the second takes it out.
    const f0 = (await scrape(sk, b1)).failures;
    const c0 = b1.healthChecks;
    b1.healthStatus = 503; // every check received from now on fails
    let sawOneFailureUp = false;
    await waitFor(async () => {
      const s = await scrape(sk, b1);
      if (s.failures - f0 === 1) {
        assert.equal(s.up, 1, "one failed check must not take the backend out");
        sawOneFailureUp = true;
      }
      if (s.up === 0) {
        assert.ok(s.failures - f0 >= 2, `DOWN after ${s.failures - f0} failed check(s)`);
        return true;
      }
      return false;
    }, "b1 DOWN after two failed checks");
    assert.ok(sawOneFailureUp, "a scrape saw b1 UP after its first failed check");
    await sk.waitForLine(downLine);
    assert.ok(b1.healthChecks - c0 >= 2, "the DOWN line follows the second failed check");
    assert.equal(count(downLine), 1);

    // Rise: b1 takes traffic again only after three passing checks in a row.
    const p0 = (await scrape(sk, b1)).successes;
    const c1 = b1.healthChecks;
    b1.healthStatus = 200; // every check received from now on passes
    const seenPasses = new Set<number>();
    await waitFor(
      async () => {
        const s = await scrape(sk, b1);
        const passes = s.successes - p0;
        if (s.up === 1) assert.ok(passes >= 3, `UP again after ${passes} passing check(s)`);
        else if (passes > 0) {
          assert.ok(passes < 3, `still DOWN after ${passes} passing checks`);
          seenPasses.add(passes);
        }
        const from = await get(sk.url + "/");
        if (from === "b1") {
          const received = b1.healthChecks - c1;
          assert.ok(received >= 3, `traffic after only ${received} passing check(s)`);
          return true;
        }
        return false;
      },
      "b1 serving again",
      15_000,
    );
    assert.ok(seenPasses.size > 0, "a scrape saw b1 still DOWN after one or two passing checks");
    // The start-up line also reads "is up Downtime …" (the backend was DOWN from its creation to
    // its first check), so wait for the second line rather than for the first that matches.
    await waitFor(() => count(upLine) >= 2, "the UP line of the recovery");
    assert.equal(count(upLine), 2, "one UP line at start-up, one on recovery");
    assert.equal(count(downLine), 1, "the failed checks while DOWN log nothing");
  } finally {
    await sk.stop();
    await Promise.all(backends.map((b) => b.close().catch(() => {})));
  }
});
