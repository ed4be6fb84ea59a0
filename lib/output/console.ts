/**
 * The command's human-facing output. Console mode — when `--log`
 * or an explicit `--trace` is given, or stdout is not a terminal — prints `sidekick: …` info
 * lines, `--log` state changes and trace lines (text or `--json`, short or `--debug`), all
 * silenced by `--quiet` except the info lines. Otherwise the live table of `ui.ts` runs, and
 * nothing else is written to stdout (so `--json` on a terminal never interleaves with it): info
 * and error messages appear in its status line.
 *
 * Lines go through a {@linkcode LineWriter}: writes are asynchronous and bounded, so a slow
 * stdout never blocks the proxy; trace lines that do not fit are dropped and counted.
 *
 * @example
 * ```ts
 * import { createConsole } from "./console.ts";
 * import { makeConfig } from "../config/config.ts";
 * const out = createConsole(makeConfig({ sites: ["http://127.0.0.1:9000"], log: true }), false);
 * out.info("listening on ':8080'");
 * await out.stop();
 * ```
 * @module
 */

import type { Transition } from "../shared/backend.ts";
import type { Config } from "../config/config.ts";
import type { ExchangeRecord } from "../shared/exchange_record.ts";
import { formatRecord, formatTransition, traceFilter, type TraceStyle } from "./trace.ts";
import { createTableUi, type TableSource, type TableUi, type TerminalSink } from "./ui.ts";

/** Where the command's human-facing output goes. */
export interface ConsoleOutput {
  /** Whether lines are printed (console mode) rather than the live table. */
  readonly consoleMode: boolean;
  /** An info line (`sidekick: <text>`); in table mode, the table's status line. */
  info(text: string): void;
  /** An error line on stderr (`sidekick: <ERROR> <text>`); in table mode, the status line. */
  error(text: string): void;
  /** Called on every UP/DOWN transition. */
  transition(t: Transition): void;
  /** Called on every finished exchange. */
  record(r: ExchangeRecord): void;
  /** How trace lines look (worker isolates format their own with it). */
  readonly traceStyle: TraceStyle;
  /** Trace lines formatted elsewhere (worker isolates), already filtered; droppable. */
  lines(lines: readonly string[]): void;
  /** Starts the live table in table mode (no-op in console mode). */
  start(source: TableSource): void;
  /** Stops the table (restoring the terminal) and flushes pending lines (bounded wait). */
  stop(): Promise<void>;
  /** Trace lines dropped so far because stdout could not keep up. */
  dropped(): number;
}

/** A byte sink such as `Deno.stdout`. */
export interface ByteSink {
  /** Writes some bytes, resolving to how many were written. */
  write(p: Uint8Array): Promise<number>;
}

/** The default bound of a {@linkcode LineWriter}: 1 MiB of pending text. */
export const DEFAULT_BUFFER_BYTES = 1 << 20;

/** How long a line may wait for others to share its write, ms. */
const BATCH_MS = 5;

/** Pending text that is written at once, without waiting for more. */
const BATCH_BYTES = 64 * 1024;

/**
 * A bounded, asynchronous line writer. {@linkcode LineWriter.write} never waits: it queues the
 * line and a single pump writes queued lines in batches. When the queue already holds
 * `limitBytes`, droppable lines are discarded and counted; lines written with `droppable = false`
 * (info lines, state changes: rare) are always queued. A sink that fails (closed pipe) stops the
 * writer; later lines are counted as dropped.
 */
export class LineWriter {
  readonly #sink: ByteSink;
  readonly #limit: number;
  readonly #encoder = new TextEncoder();
  #queue: string[] = [];
  #queued = 0;
  #dropped = 0;
  #broken = false;
  #pump: Promise<void> | undefined;
  /** A batch is being written (#pump holds its promise when the sink is asynchronous). */
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** A writer over `sink` holding at most `limitBytes` (UTF-16 units, roughly bytes) pending. */
  constructor(sink: ByteSink, limitBytes: number = DEFAULT_BUFFER_BYTES) {
    this.#sink = sink;
    this.#limit = limitBytes;
  }

  /** Lines dropped so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Text waiting to be written, in UTF-16 units. */
  get pending(): number {
    return this.#queued;
  }

  /** Queues `line` plus a newline; returns false if it was dropped. */
  write(line: string, droppable = true): boolean {
    const size = line.length + 1;
    if (this.#broken || (droppable && this.#queued + size > this.#limit)) {
      this.#dropped++;
      return false;
    }
    this.#queue.push(line);
    this.#queued += size;
    if (this.#running) return true;
    // Lines that arrive within a few ms leave in one write: a write per line would cost the
    // proxy a system call (and a thread hop) per request.
    if (this.#queued >= BATCH_BYTES) this.#startPump();
    else this.#timer ??= setTimeout(() => this.#startPump(), BATCH_MS);
    return true;
  }

  #startPump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running) return;
    const pump = this.#run();
    // A pump that never awaited (a sink that threw at once) has finished before #run returns,
    // its `finally` already run: keep only a pump still running, or flush() would wait out its
    // whole deadline on a pump that is done.
    if (this.#running) this.#pump = pump;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        const batchSize = this.#queued; // everything queued is in this batch
        this.#queue = [];
        const bytes = this.#encoder.encode(batch.join("\n") + "\n");
        try {
          let off = 0;
          while (off < bytes.length) off += await this.#sink.write(bytes.subarray(off));
        } catch {
          this.#broken = true;
          this.#dropped += batch.length + this.#queue.length;
          this.#queue = [];
        }
        this.#queued -= batchSize;
        if (this.#broken) this.#queued = 0;
        // What came in while this batch was written waits for the next window too, unless it
        // fills a batch: looping at once would write a line or two per write under steady load.
        if (this.#queued < BATCH_BYTES) break;
      }
    } finally {
      this.#running = false;
      this.#pump = undefined;
      if (this.#queue.length > 0 && !this.#broken) {
        this.#timer ??= setTimeout(() => this.#startPump(), BATCH_MS);
      }
    }
  }

  /** Resolves once everything queued is written, or after `timeoutMs`, whichever is first. */
  async flush(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.#pump || this.#timer !== undefined) && Date.now() < deadline) {
      if (this.#timer !== undefined) this.#startPump();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#pump,
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
  }
}

/** Where the console writes, and knobs for tests. */
export interface ConsoleOptions {
  /** Standard output (default `Deno.stdout`). */
  stdout?: ByteSink & Partial<TerminalSink>;
  /** Error lines (default `console.error`). */
  stderr?: (line: string) => void;
  /** Disable colours even on a terminal (default `Deno.noColor`, i.e. `NO_COLOR`). */
  noColor?: boolean;
  /** Pending-text bound of the line writer (default 1 MiB). */
  bufferBytes?: number;
  /** The table's redraw period, ms (default 500). */
  tableIntervalMs?: number;
}

/**
 * The console output for a configuration: console mode iff `--log`, an explicit `--trace`, or
 * `isTerminal` false; colours iff `isTerminal` and not `NO_COLOR`.
 */
export function createConsole(
  config: Config,
  isTerminal: boolean,
  options: ConsoleOptions = {},
): ConsoleOutput {
  const stdout = options.stdout ?? Deno.stdout;
  const stderr = options.stderr ?? ((line: string) => console.error(line));
  const colors = isTerminal && !(options.noColor ?? Deno.noColor);
  const consoleMode = config.log || config.traceExplicit || !isTerminal;
  const writer = new LineWriter(stdout, options.bufferBytes);
  const style: TraceStyle = { json: config.json, debug: config.debug, colors };
  const printRecord = consoleMode ? traceFilter(config) : undefined;
  const printTransitions = consoleMode && config.log && !config.quiet;
  let table: TableUi | undefined;
  let lastStatus = "";

  return {
    consoleMode,
    info(text) {
      if (consoleMode) writer.write(`sidekick: ${text}`, false);
      else {
        lastStatus = `sidekick: ${text}`;
        table?.status(lastStatus);
      }
    },
    error(text) {
      if (consoleMode) stderr(`sidekick: <ERROR> ${text}`);
      else {
        lastStatus = `sidekick: <ERROR> ${text}`;
        table?.status(lastStatus);
      }
    },
    transition(t) {
      if (printTransitions) writer.write(formatTransition(t, style), false);
    },
    record(r) {
      if (printRecord?.(r)) writer.write(formatRecord(r, style));
    },
    traceStyle: style,
    lines(lines) {
      if (!consoleMode) return;
      for (const line of lines) writer.write(line);
    },
    start(source) {
      if (consoleMode || table) return;
      const sink = stdout.writeSync ? stdout as TerminalSink : Deno.stdout;
      table = createTableUi({ source, sink, colors, intervalMs: options.tableIntervalMs });
      if (lastStatus) table.status(lastStatus);
    },
    async stop() {
      await table?.stop();
      table = undefined;
      await writer.flush();
    },
    dropped: () => writer.dropped,
  };
}
