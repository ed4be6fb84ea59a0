/**
 * The sidekick command: a high-performance sidecar HTTP load balancer.
 *
 * ```sh
 * deno run -A jsr:@sidekick/main --health-path=/minio/health/ready http://minio{1...4}:9000
 * ```
 *
 * Wiring only: parse argv, build the sidekick, start it, handle signals, pick exit codes.
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { parseCli } from "./lib/config/cli.ts";
import { createConsole } from "./lib/output/console.ts";
import { ConfigError, createSidekick } from "./lib/control/sidekick.ts";

/** The version printed by `--version`: deno.json's, which the release sets from the tag. */
export const VERSION: string = denoJson.version;

/** Runs the command with these arguments; resolves to the process exit status. */
export async function run(args: string[]): Promise<number> {
  const outcome = parseCli(args, VERSION, "sidekick");
  switch (outcome.kind) {
    case "help":
      (outcome.exitCode === 0 ? console.log : console.error)(outcome.text);
      return outcome.exitCode;
    case "version":
      console.log(outcome.text);
      return 0;
    case "error":
      console.error(`sidekick: ${outcome.message}`);
      return 2;
  }
  const config = outcome.config;
  const output = createConsole(config, Deno.stdout.isTerminal());
  let sidekick;
  try {
    sidekick = createSidekick(config, {
      onTransition: output.transition,
      onRecord: output.record,
      traceLines: output.consoleMode
        ? { style: output.traceStyle, write: output.lines }
        : undefined,
      onInfo: output.info,
      onError: output.error,
      traceLinesDropped: output.dropped,
    });
    if (config.insecure) {
      console.error(
        "sidekick: WARNING: --insecure: certificates of https backends are NOT verified",
      );
    }
    await sidekick.start();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`sidekick: ${e.message}`);
      return 2;
    }
    if (sidekick) {
      // Configuration was accepted: what failed is binding the listener (address in use, not an
      // address of this machine, a name that does not resolve, a privileged port…).
      const why = e instanceof Error ? e.message : String(e);
      console.error(`sidekick: unable to listen on '${config.address}': ${why}`);
      return 1;
    }
    throw e;
  }
  // With port 0 the kernel picks one: say which, so scripts (and tests) can find it.
  const shown = config.address.endsWith(":0")
    ? config.address.slice(0, -1) + sidekick.addr.port
    : config.address;
  const workers = sidekick.workers > 1 ? ` with ${sidekick.workers} worker isolates` : "";
  output.info(`listening on '${shown}'${workers}`);
  output.start(sidekick);

  let stopping = false;
  const onStop = (name: string) => {
    if (stopping) {
      output.info(`caught second signal '${name}', exiting now`);
      output.stop().finally(() => Deno.exit(1));
      return;
    }
    stopping = true;
    output.info(`caught signal '${name}', draining in-flight requests`);
    sidekick.stop().then(() => output.stop());
  };
  Deno.addSignalListener("SIGINT", () => onStop("interrupt"));
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", () => onStop("terminated"));
    Deno.addSignalListener("SIGHUP", () => {
      output.info("caught signal 'hangup', reloading sites");
      sidekick.reload().catch((e) => output.error(`reload failed: ${e.message}`));
    });
  }
  await sidekick.finished;
  await output.stop(); // restores the terminal, flushes buffered lines
  return 0;
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
