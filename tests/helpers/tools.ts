/**
 * External tools some tests need (promtool, minisign, taskset). A test that needs a missing tool
 * is declared `ignore`d with the reason in its name, so the run reports it as ignored instead of
 * passing it silently.
 * @module
 */

/** An external command, probed once. */
export interface Tool {
  /** The command's name. */
  readonly command: string;
  /** It ran and exited 0 when probed. */
  readonly available: boolean;
  /** Why it is unavailable (empty when it is available). */
  readonly reason: string;
}

/**
 * Probes `command args` (which must exit 0 where the tool works); `install` says how to get it
 * (for example `apt-get install prometheus`).
 */
export async function probeTool(command: string, args: string[], install: string): Promise<Tool> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
    if (out.success) return { command, available: true, reason: "" };
    return {
      command,
      available: false,
      reason: `'${[command, ...args].join(" ")}' exits ${out.code}`,
    };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return { command, available: false, reason: `${command} not installed (${install})` };
  }
}

/**
 * The `name` and `ignore` of a test (or step) that needs `tools`: ignored, with the reasons
 * appended to its name, when any of them is unavailable.
 */
export function needing(name: string, ...tools: Tool[]): { name: string; ignore: boolean } {
  const missing = tools.filter((t) => !t.available).map((t) => t.reason);
  if (missing.length === 0) return { name, ignore: false };
  return { name: `${name} [ignored: ${missing.join("; ")}]`, ignore: true };
}
