/**
 * Console output of the command: info lines, `--log` state changes, and (later) trace lines and
 * the live table. Minimal for now; the observability work replaces the record/table parts.
 * @module
 */

import type { Transition } from "./backend.ts";
import type { Config } from "./config.ts";
import type { ExchangeRecord } from "./record.ts";
import type { Pool } from "./pool.ts";

/** Where the command's human-facing output goes. */
export interface ConsoleOutput {
  /** An info line (`sidekick: <text>`), always printed in console mode. */
  info(text: string): void;
  /** An error line on stderr. */
  error(text: string): void;
  /** Called on every UP/DOWN transition. */
  transition(t: Transition): void;
  /** Called on every finished exchange. */
  record(r: ExchangeRecord): void;
  /** Starts periodic output (the table), if any. */
  start(pool: () => Pool): void;
  /** Stops periodic output and restores the terminal. */
  stop(): void;
}

function hhmmss(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** The console output for a configuration. */
export function createConsole(config: Config, _isTerminal: boolean): ConsoleOutput {
  const write = (line: string) => console.log(line);
  return {
    info: (text) => write(`sidekick: ${text}`),
    error: (text) => console.error(`sidekick: <ERROR> ${text}`),
    transition(t) {
      if (!config.log || config.quiet) return;
      if (config.json) {
        write(JSON.stringify({
          Type: "LOG",
          Endpoint: t.endpoint,
          ...(t.reason ? { Error: t.reason } : {}),
          Status: t.state,
          ...(t.downtimeMs ? { Downtime: Math.round(t.downtimeMs * 1e6) } : {}),
          Timestamp: new Date(t.at).toISOString(),
        }));
      } else if (t.state === "down") {
        write(`LOG  : ${hhmmss(t.at)}  ${t.endpoint} is down: ${t.reason}`);
      } else {
        write(`LOG  : ${hhmmss(t.at)}  ${t.endpoint} is up`);
      }
    },
    record(_r) {},
    start(_pool) {},
    stop() {},
  };
}
