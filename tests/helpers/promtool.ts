/**
 * `promtool check metrics` over a metrics exposition (Debian/Ubuntu package `prometheus`, which
 * `.ci/run` and the GitHub workflow install). Where promtool is missing the check is an ignored
 * test step whose name says why (the exposition format is also unit-tested), never a silent pass.
 * @module
 */

import { needing, probeTool } from "./tools.ts";

/** promtool, probed once per test module that imports this. */
export const promtool = await probeTool("promtool", ["--version"], "apt-get install prometheus");

/** Asserts that `promtool check metrics` accepts `text`; throws if promtool cannot run. */
export async function assertPromtoolClean(text: string): Promise<void> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(
      `promtool check metrics failed:\n${dec.decode(out.stdout)}${dec.decode(out.stderr)}`,
    );
  }
}

/**
 * Runs `promtool check metrics` on `text` as a step of test `t`; the step is ignored, with the
 * reason in its name, where promtool is unavailable.
 */
export async function promtoolCheckStep(t: Deno.TestContext, text: string): Promise<void> {
  await t.step({
    ...needing("promtool check metrics accepts the exposition", promtool),
    fn: () => assertPromtoolClean(text),
  });
}
