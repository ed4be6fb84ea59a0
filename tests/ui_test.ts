import assert from "node:assert/strict";
import { Backend } from "../lib/shared/backend.ts";
import { Pool } from "../lib/shared/pool.ts";
import type { ExchangeRecord } from "../lib/shared/exchange_record.ts";
import { waitFor } from "./helpers/backends.ts";
import { requestRecord } from "./helpers/records.ts";
import { Stats } from "../lib/shared/stats.ts";
import { createTableUi, renderTable, TABLE_COLUMNS, tableRows } from "../lib/output/ui.ts";

const noop = () => {};

/** Resolves once a `setInterval` of `ms` started now has fired `n` times. */
function intervalTicks(ms: number, n: number): Promise<void> {
  return new Promise((resolve) => {
    let ticks = 0;
    const id = setInterval(() => {
      if (++ticks < n) return;
      clearInterval(id);
      resolve();
    }, ms);
  });
}

function poolOf(sizes: number[], created: number): Pool {
  let port = 9000;
  return new Pool(
    sizes.map((n, i) =>
      Array.from({ length: n }, () => {
        const e = `http://127.0.0.1:${++port}`;
        return new Backend(e, i + 1, `${e}/health`, noop, created);
      })
    ),
    "least",
  );
}

function request(endpoint: string, latencyMs: number, status = 200): ExchangeRecord {
  return requestRecord({
    endpoint,
    status,
    latencyMs,
    requestHeaders: new Headers({ host: "h", "content-length": "2048" }),
    responseHeaders: new Headers(),
    requestBodyBytes: 2048,
    responseBodyBytes: 100,
  });
}

Deno.test("renderTable: box drawing, padding to the widest cell, no colours when off", () => {
  const lines = renderTable([[
    "1st",
    "http://a:1",
    "UP",
    "12",
    "0",
    "1.0 KiB",
    "10 B",
    "0s",
    "0s",
    "1.5ms",
    "250µs",
  ]], false);
  assert.equal(lines.length, 4);
  assert.ok(lines[0].startsWith("┌─") && lines[0].endsWith("─┐") && lines[0].includes("─┬─"));
  assert.ok(lines[3].startsWith("└─") && lines[3].endsWith("─┘") && lines[3].includes("─┴─"));
  assert.equal(
    lines[1],
    "│ SITE │ HOST       │ STATUS │ CALLS │ FAILURES │ Rx      │ Tx   │ TOTAL DOWNTIME │ " +
      "LAST DOWNTIME │ MIN LATENCY │ MAX LATENCY │",
  );
  assert.equal(
    lines[2],
    "│ 1st  │ http://a:1 │ UP     │ 12    │ 0        │ 1.0 KiB │ 10 B │ 0s             │ " +
      "0s            │ 1.5ms       │ 250µs       │",
  );
  // Every line has the same width in code points.
  const widths = lines.map((l) => [...l].length);
  assert.ok(widths.every((w) => w === widths[0]), String(widths));
  assert.ok(!lines.join("").includes("\x1b["));
});

Deno.test("renderTable colours the header and STATUS when asked", () => {
  const lines = renderTable(
    [["1st", "h", "DOWN", "0", "0", "0 B", "0 B", "0s", "0s", "0s", "0s"]],
    true,
  );
  assert.ok(lines[1].includes("\x1b[1m\x1b[32mSITE\x1b[0m"));
  assert.ok(lines[2].includes("\x1b[1m\x1b[31mDOWN\x1b[0m"));
});

Deno.test("tableRows: one row per backend for sites of different sizes, in site order", () => {
  const created = Date.now() - 2_000;
  const pool = poolOf([1, 3, 2], created);
  const stats = new Stats();
  const first = pool.sites[1][2];
  stats.observe(request(first.endpoint, 1.5));
  stats.observe(request(first.endpoint, 0.25, 502));
  pool.sites[0][0].markUp(created + 1_000);
  const now = created + 2_000;
  const rows = tableRows({ pool, stats }, now);
  assert.equal(rows.length, 6);
  assert.deepEqual(rows.map((r) => r[0]), ["1st", "2nd", "2nd", "2nd", "3rd", "3rd"]);
  assert.deepEqual(rows[0].slice(2), ["UP", "0", "0", "0 B", "0 B", "1s", "1s", "0s", "0s"]);
  // A DOWN backend: running downtime in both columns.
  assert.deepEqual(rows[1].slice(2, 3).concat(rows[1].slice(7, 9)), ["DOWN", "2s", "2s"]);
  assert.equal(rows[3][1], first.endpoint);
  assert.deepEqual(rows[3].slice(3, 7), ["2", "1", "4.0 KiB", "223 B"]);
  assert.deepEqual(rows[3].slice(9), ["250µs", "1.5ms"]);
  assert.equal(renderTable(rows, false).length, 6 + 3);
  assert.equal(TABLE_COLUMNS.length, rows[0].length);
});

Deno.test("createTableUi: alternate screen, repaint in place, restore and a last table on stop", async () => {
  const pool = poolOf([2, 1], Date.now());
  const chunks: string[] = [];
  const dec = new TextDecoder();
  const sink = {
    write: (p: Uint8Array) => {
      chunks.push(dec.decode(p));
      return Promise.resolve(p.length);
    },
    writeSync: (p: Uint8Array) => {
      chunks.push(dec.decode(p));
      return p.length;
    },
  };
  const ui = createTableUi({
    source: { pool, stats: new Stats() },
    sink,
    colors: false,
    intervalMs: 20,
  });
  ui.status("sidekick: listening on '127.0.0.1:8080'");
  await waitFor(() => chunks.filter((c) => c.startsWith("\x1b[H")).length >= 3, "three frames");
  await ui.stop();
  assert.ok(chunks[0].includes("\x1b[?1049h") && chunks[0].includes("\x1b[?25l"));
  const frames = chunks.filter((c) => c.startsWith("\x1b[H"));
  assert.ok(frames.length >= 3, `${frames.length} frames`);
  const last = frames.at(-1)!;
  assert.equal(last.split("\n").filter((l) => l.startsWith("│ ")).length, 1 + 3);
  assert.ok(last.includes("listening on '127.0.0.1:8080'"));
  const tail = chunks.slice(-2);
  assert.ok(tail[0].includes("\x1b[?25h\x1b[?1049l"), JSON.stringify(tail[0]));
  assert.ok(tail[1].startsWith("┌") && tail[1].includes("│ 2nd "));
  const after = chunks.length;
  // Timers fire in deadline order: once an interval of the table's period, started after stop,
  // has ticked three times, a redraw timer that stop failed to clear would have fired too.
  await intervalTicks(20, 3);
  assert.equal(chunks.length, after, "no frame after stop");
});
