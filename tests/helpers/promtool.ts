/**
 * `promtool check metrics` over a metrics exposition (Debian/Ubuntu package `prometheus`, which
 * `.ci/run` and the GitHub workflow install). Where promtool is missing, the check is skipped with
 * a warning rather than failing the whole test (the exposition format is also unit-tested).
 * @module
 */

/** Asserts that `promtool check metrics` accepts `text`; skipped (with a warning) without it. */
export async function assertPromtoolClean(text: string): Promise<void> {
  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.warn("promtool not installed (apt-get install prometheus): exposition not checked");
    return;
  }
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
