/**
 * `promtool check metrics` over a metrics exposition (Debian/Ubuntu package `prometheus`).
 * @module
 */

/** Runs `promtool check metrics` over `text`; returns its exit code and output. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new Error(
      `promtool is needed by this test (Debian/Ubuntu: apt-get install prometheus): ${e}`,
    );
  }
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}
