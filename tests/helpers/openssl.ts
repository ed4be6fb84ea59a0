/**
 * What the certificate helpers share: running `openssl` in a directory, and a temporary directory
 * removed when the test process exits.
 * @module
 */

/** Runs `openssl <args>` in `dir`; throws with openssl's stderr when it fails. */
export async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A new temporary directory that is removed when the process exits. */
export async function tempDirRemovedAtExit(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  });
  return dir;
}
