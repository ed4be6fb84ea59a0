import assert from "node:assert/strict";

const MODULE = new URL("../lib/output/stdout_kind.ts", import.meta.url).href;
const PROBE = `import { stdoutNeverWaits } from "${MODULE}";
console.error(stdoutNeverWaits() ? "sync" : "async");`;

/** What `stdoutNeverWaits` says in a child whose stdout is `redirect` (a shell redirection). */
async function kindWith(redirect: string, permissions: string[]): Promise<string> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(script, PROBE);
  try {
    const deno = JSON.stringify(Deno.execPath());
    const cmd = `${deno} run ${permissions.join(" ")} ${script} ${redirect}`;
    const out = await new Deno.Command("sh", { args: ["-c", cmd], stderr: "piped" }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stderr).trim();
  } finally {
    await Deno.remove(script);
  }
}

Deno.test({
  name: "stdoutNeverWaits: a file or /dev/null yes; a pipe, or no --allow-ffi, no",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const file = await Deno.makeTempFile();
    try {
      const all = ["--allow-read", "--allow-ffi"];
      assert.equal(await kindWith(`> ${file}`, all), "sync");
      assert.equal(await kindWith("> /dev/null", all), "sync");
      assert.equal(await kindWith("| cat", all), "async");
      assert.equal(await kindWith("> /dev/null", ["--allow-read"]), "async");
    } finally {
      await Deno.remove(file);
    }
  },
});
