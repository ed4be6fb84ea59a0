/**
 * Runs `main.ts` as a child process, exactly as a user would, and gives tests its URL, its
 * output lines, and ways to signal and stop it.
 * @module
 */

import { waitFor } from "./backends.ts";

/** A sidekick child process. */
export interface SidekickProcess {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Lines printed on stdout so far. */
  readonly stdout: string[];
  /** Lines printed on stderr so far. */
  readonly stderr: string[];
  /** Waits for a stdout line matching `re`. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits until `/v1/health` answers 200. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Sends a signal. */
  kill(signal?: Deno.Signal): void;
  /** Sends SIGTERM (if still running) and waits for the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** Waits for the process to exit by itself. */
  exited(): Promise<Deno.CommandStatus>;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The `deno run` arguments used to start sidekick (same permissions as `deno task start`). */
export const RUN_ARGS = [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--allow-ffi",
  MAIN,
];

function collect(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  return (async () => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        into.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    if (buf) into.push(buf);
  })();
}

/** Runs sidekick to completion with these arguments (for flag and exit-code tests). */
export async function runSidekick(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_ARGS, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Starts sidekick listening on 127.0.0.1 with a kernel-chosen port, plus `args` (flags and
 * SITEs), and waits for its "listening on" line. `runArgs` replaces {@linkcode RUN_ARGS} (to run
 * with fewer permissions).
 */
export async function startSidekick(
  args: string[],
  runArgs: readonly string[] = RUN_ARGS,
): Promise<SidekickProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...runArgs, "--address", "127.0.0.1:0", ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const done = Promise.all([collect(child.stdout, stdout), collect(child.stderr, stderr)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await done;
    return s;
  });
  const waitForLine = async (re: RegExp, timeoutMs = 10_000) => {
    let found: string | undefined;
    await waitFor(
      () => {
        found = stdout.find((l) => re.test(l));
        if (!found && exited) throw new Error(`sidekick exited: ${stderr.join("\n")}`);
        return found !== undefined;
      },
      `a line matching ${re}`,
      timeoutMs,
    );
    return found!;
  };
  const line = await waitForLine(/listening on '/);
  const port = Number(/:(\d+)'/.exec(line)![1]);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    stdout,
    stderr,
    waitForLine,
    waitHealthy: (timeoutMs = 10_000) =>
      waitFor(
        async () => {
          const res = await fetch(`${url}/v1/health`);
          await res.body?.cancel();
          return res.status === 200;
        },
        "sidekick healthy",
        timeoutMs,
      ),
    kill: (signal: Deno.Signal = "SIGTERM") => {
      if (!exited) child.kill(signal);
    },
    stop: () => {
      if (!exited) child.kill("SIGTERM");
      return status;
    },
    exited: () => status,
  };
}
