/**
 * The live terminal table (the Go sidekick's table, without its crashes): one row per backend of every site
 * (sites of any size), columns SITE, HOST, STATUS, CALLS, FAILURES, Rx, Tx, TOTAL DOWNTIME,
 * LAST DOWNTIME, MIN LATENCY, MAX LATENCY, box-drawing borders, redrawn every 500 ms.
 *
 * {@linkcode tableRows} and {@linkcode renderTable} are pure. {@linkcode createTableUi} draws: it
 * switches to the terminal's alternate screen and hides the cursor, repaints in place, skips a
 * frame while the terminal is still busy with the previous one (never queueing), and on stop (or
 * process exit) restores the screen and cursor and prints the last table once.
 *
 * @example
 * ```ts
 * import { renderTable } from "./ui.ts";
 * console.log(renderTable([["1st", "http://127.0.0.1:9000", "UP", "0", "0", "0 B", "0 B",
 *   "0s", "0s", "0s", "0s"]], false).join("\n"));
 * ```
 * @module
 */

import { formatDurationRounded } from "../config/duration.ts";
import { ANSI, formatIBytes, ordinal, paint, runeLength } from "./text_format.ts";
import type { Pool } from "../shared/pool.ts";
import type { Stats } from "../shared/stats.ts";

/** The column titles, in order. */
export const TABLE_COLUMNS: readonly string[] = [
  "SITE",
  "HOST",
  "STATUS",
  "CALLS",
  "FAILURES",
  "Rx",
  "Tx",
  "TOTAL DOWNTIME",
  "LAST DOWNTIME",
  "MIN LATENCY",
  "MAX LATENCY",
];

/** What the table shows: the current pool and the per-endpoint counters. */
export interface TableSource {
  /** The current pool (swapped on reload). */
  readonly pool: Pool;
  /** The per-endpoint counters. */
  readonly stats: Stats;
}

/**
 * The data rows, one per backend, site by site: SITE as an ordinal, HOST, `UP`/`DOWN`, proxied
 * calls and failures, IEC byte totals, downtimes (running downtime included for a DOWN backend)
 * and latency extremes, durations rounded to the microsecond (`0s` until the first call).
 */
export function tableRows(source: TableSource, now: number = Date.now()): string[][] {
  const rows: string[][] = [];
  source.pool.sites.forEach((site, i) => {
    for (const b of site) {
      const s = source.stats.get(b.endpoint);
      rows.push([
        ordinal(i + 1),
        b.endpoint,
        b.up ? "UP" : "DOWN",
        String(s?.requests ?? 0),
        String(s?.errors ?? 0),
        formatIBytes(s?.rxBytes ?? 0),
        formatIBytes(s?.txBytes ?? 0),
        formatDurationRounded(b.totalDowntimeMs(now)),
        formatDurationRounded(b.lastDowntimeMs(now)),
        formatDurationRounded(s?.minLatencyMs ?? 0),
        formatDurationRounded(s?.maxLatencyMs ?? 0),
      ]);
    }
  });
  return rows;
}

/**
 * The table as lines (no trailing newline): `┌─…─┬─…─┐`, the header row, the data rows
 * `│ cell │ cell │`, `└─…─┴─…─┘`; cells left-aligned and padded to the widest of their column
 * (counted in code points). With `colors`, the header is bold green and STATUS green or red.
 */
export function renderTable(rows: readonly (readonly string[])[], colors: boolean): string[] {
  const widths = TABLE_COLUMNS.map((title, c) =>
    Math.max(runeLength(title), ...rows.map((r) => runeLength(r[c] ?? "")))
  );
  const rule = (left: string, mid: string, right: string) =>
    left + widths.map((w) => "─".repeat(w + 2)).join(mid) + right;
  const line = (cells: readonly string[], style: (text: string, c: number) => string) =>
    "│" +
    widths.map((w, c) => {
      const text = cells[c] ?? "";
      return " " + style(text, c) + " ".repeat(w - runeLength(text)) + " ";
    }).join("│") +
    "│";
  const out = [rule("┌", "┬", "┐")];
  out.push(line(TABLE_COLUMNS, (t) => paint(colors, t, ANSI.bold, ANSI.green)));
  const statusColumn = TABLE_COLUMNS.indexOf("STATUS");
  for (const r of rows) {
    out.push(
      line(
        r,
        (t, c) =>
          c === statusColumn ? paint(colors, t, ANSI.bold, t === "UP" ? ANSI.green : ANSI.red) : t,
      ),
    );
  }
  out.push(rule("└", "┴", "┘"));
  return out;
}

/** Where the table is drawn (a terminal: `Deno.stdout`). */
export interface TerminalSink {
  /** Writes some bytes, resolving to how many were written. */
  write(p: Uint8Array): Promise<number>;
  /** Writes some bytes now, blocking (used only to restore the terminal at exit). */
  writeSync(p: Uint8Array): number;
}

/** Settings of the live table. */
export interface TableUiOptions {
  /** What to show. */
  source: TableSource;
  /** The terminal. */
  sink: TerminalSink;
  /** ANSI colours in the cells. */
  colors: boolean;
  /** Redraw period, ms (default 500). */
  intervalMs?: number;
}

/** A running live table. */
export interface TableUi {
  /** Sets the status line shown under the table (the latest info or error message). */
  status(text: string): void;
  /** Stops redrawing, restores the terminal, and prints the last table once. */
  stop(): Promise<void>;
}

const ESC = "\x1b[";
/** Enter the alternate screen, hide the cursor, clear. */
const ENTER = `${ESC}?1049h${ESC}?25l${ESC}H${ESC}2J`;
/** Show the cursor, leave the alternate screen. */
const LEAVE = `${ESC}?25h${ESC}?1049l`;

function writeAllSync(sink: TerminalSink, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += sink.writeSync(bytes.subarray(off));
}

async function writeAll(sink: TerminalSink, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await sink.write(bytes.subarray(off));
}

/** Starts drawing the table now and every `intervalMs` until stopped. */
export function createTableUi(options: TableUiOptions): TableUi {
  const { source, sink, colors } = options;
  const encoder = new TextEncoder();
  let statusLine = "";
  let pending: Promise<void> | undefined;
  let stopped = false;

  const frame = () => {
    const lines = renderTable(tableRows(source), colors);
    if (statusLine) lines.push(statusLine);
    return `${ESC}H` + lines.map((l) => l + `${ESC}K`).join("\n") + `\n${ESC}J`;
  };
  const draw = () => {
    if (stopped || pending) return; // the terminal has not taken the last frame yet: skip
    pending = writeAll(sink, encoder.encode(frame()))
      .catch(() => {})
      .finally(() => (pending = undefined));
  };
  const restore = () => {
    try {
      writeAllSync(sink, encoder.encode(LEAVE));
    } catch { /* terminal gone */ }
  };
  const onUnload = () => {
    if (!stopped) restore();
  };

  writeAllSync(sink, encoder.encode(ENTER));
  globalThis.addEventListener("unload", onUnload);
  draw();
  const timer = setInterval(draw, options.intervalMs ?? 500);

  return {
    status(text) {
      statusLine = text;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      globalThis.removeEventListener("unload", onUnload);
      // Let the frame being written finish (bounded: a stuck terminal must not hold the exit).
      let timer2: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([pending, new Promise((r) => (timer2 = setTimeout(r, 1000)))]);
      clearTimeout(timer2);
      restore();
      const last = renderTable(tableRows(source), colors);
      if (statusLine) last.push(statusLine);
      try {
        writeAllSync(sink, encoder.encode(last.join("\n") + "\n"));
      } catch { /* terminal gone */ }
    },
  };
}
