import assert from "node:assert/strict";
import { Backend, type Transition } from "../lib/shared/backend.ts";
import { type Config, makeConfig } from "../lib/config/config.ts";
import { createConsole, LineWriter } from "../lib/output/console.ts";
import { Pool } from "../lib/shared/pool.ts";
import { requestRecord } from "./helpers/records.ts";
import { Stats } from "../lib/shared/stats.ts";
import { waitFor } from "./helpers/backends.ts";

/** A sink that records what was written; `gate` holds writes until released. */
function memorySink() {
  const dec = new TextDecoder();
  let text = "";
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  return {
    get text() {
      return text;
    },

    hold() {
      gate = new Promise((r) => (release = r));
    },
    open() {
      release?.();
      gate = undefined;
    },
    async write(p: Uint8Array) {
      if (gate) await gate;
      text += dec.decode(p);
      return p.length;
    },
    writeSync(p: Uint8Array) {
      text += dec.decode(p);
      return p.length;
    },
  };
}

const record = requestRecord({ path: "/x", start: Date.UTC(2024, 0, 1), latencyMs: 1, ttfbMs: 1 });

const down: Transition = {
  endpoint: "http://127.0.0.1:9001",
  site: 1,
  state: "down",
  reason: "response status 503",
  downtimeMs: 0,
  at: Date.UTC(2024, 0, 1),
};

function cfg(o: Partial<Config> = {}): Config {
  return makeConfig({ sites: ["http://127.0.0.1:9001"], ...o });
}

Deno.test("LineWriter drops and counts droppable lines beyond its bound, never blocks", async () => {
  const sink = memorySink();
  sink.hold();
  const w = new LineWriter(sink, 100);
  assert.ok(w.write("a".repeat(40)));
  assert.ok(w.write("b".repeat(40)));
  assert.ok(!w.write("c".repeat(40)), "third line exceeds the bound");
  assert.ok(w.write("state change", false), "non-droppable lines are always queued");
  assert.equal(w.dropped, 1);
  sink.open();
  await w.flush();
  assert.equal(sink.text, `${"a".repeat(40)}\n${"b".repeat(40)}\nstate change\n`);
  assert.equal(w.pending, 0);
  assert.ok(w.write("d"));
  await w.flush();
  assert.ok(sink.text.endsWith("d\n"));
});

Deno.test("LineWriter: lines that come during a write wait for the next batch window", async () => {
  const dec = new TextDecoder();
  const writes: string[] = [];
  const started = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const firstDone = Promise.withResolvers<void>();
  const w = new LineWriter({
    async write(p: Uint8Array) {
      if (writes.length === 0) {
        started.resolve();
        await gate.promise;
      }
      writes.push(dec.decode(p));
      if (writes.length === 1) firstDone.resolve();
      return p.length;
    },
  });
  w.write("1");
  await started.promise;
  w.write("2");
  w.write("3");
  gate.resolve();
  await firstDone.promise;
  // A write per line or two under steady load would cost a system call per request: the two
  // lines wait for the window (5 ms) rather than leaving at once.
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(writes, ["1\n"]);
  await w.flush();
  assert.deepEqual(writes, ["1\n", "2\n3\n"]);
});

Deno.test("LineWriter.flush is bounded when the sink is stuck", async () => {
  const sink = memorySink();
  sink.hold();
  const w = new LineWriter(sink);
  w.write("stuck");
  const t0 = Date.now();
  await w.flush(50);
  assert.ok(Date.now() - t0 < 1_000);
  sink.open();
  await w.flush();
});

Deno.test("LineWriter stops on a failing sink and counts what it could not write", async () => {
  const w = new LineWriter({ write: () => Promise.reject(new Error("broken pipe")) });
  w.write("one");
  await w.flush();
  assert.equal(w.write("two"), false);
  assert.equal(w.dropped, 2);
});

Deno.test("console mode: not a terminal, or --log, or an explicit --trace", async () => {
  const sink = memorySink();
  assert.equal(createConsole(cfg(), false, { stdout: sink }).consoleMode, true);
  assert.equal(createConsole(cfg({ log: true }), true, { stdout: sink }).consoleMode, true);
  assert.equal(
    createConsole(cfg({ trace: "all", traceExplicit: true }), true, { stdout: sink }).consoleMode,
    true,
  );
  assert.equal(createConsole(cfg({ json: true }), true, { stdout: sink }).consoleMode, false);
  await Promise.resolve();
});

Deno.test("console output: info, --log transitions, traces; --quiet keeps only info", async () => {
  const sink = memorySink();
  const out = createConsole(cfg({ log: true }), false, { stdout: sink });
  out.info("listening on ':8080'");
  out.transition(down);
  out.record(record);
  await out.stop();
  const lines = sink.text.trimEnd().split("\n");
  assert.equal(lines[0], "sidekick: listening on ':8080'");
  assert.ok(lines[1].startsWith("LOG  : 00:00:00.000  http://127.0.0.1:9001 is down"));
  assert.ok(lines[2].startsWith("   LOG: 00:00:00.001 [200 OK]"));
  assert.ok(!sink.text.includes("\x1b["), "no colours off a terminal");

  const quiet = memorySink();
  const q = createConsole(cfg({ log: true, quiet: true }), false, { stdout: quiet });
  q.info("hello");
  q.transition(down);
  q.record(record);
  await q.stop();
  assert.equal(quiet.text, "sidekick: hello\n");
});

Deno.test("without --log, state changes are not printed; traces are (default --trace all)", async () => {
  const sink = memorySink();
  const out = createConsole(cfg({ json: true }), false, { stdout: sink });
  out.transition(down);
  out.record(record);
  await out.stop();
  const lines = sink.text.trimEnd().split("\n");
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).type, "TRACE");
});

Deno.test("colours on a terminal unless NO_COLOR", async () => {
  const sink = memorySink();
  const out = createConsole(cfg({ log: true }), true, { stdout: sink, noColor: false });
  out.transition(down);
  await out.stop();
  assert.ok(sink.text.includes("\x1b["));
  const plain = memorySink();
  const nc = createConsole(cfg({ log: true }), true, { stdout: plain, noColor: true });
  nc.transition(down);
  await nc.stop();
  assert.ok(!plain.text.includes("\x1b["));
});

Deno.test("table mode: --json on a terminal prints no lines, only the table", async () => {
  const sink = memorySink();
  const out = createConsole(cfg({ json: true, log: false }), true, {
    stdout: sink,
    noColor: true,
    tableIntervalMs: 10,
  });
  assert.equal(out.consoleMode, false);
  out.info("listening on '127.0.0.1:1'");
  const backend = new Backend("http://127.0.0.1:9001", 1, "http://127.0.0.1:9001/", () => {});
  out.start({ pool: new Pool([[backend]], "least"), stats: new Stats() });
  out.transition(down);
  out.record(record);
  // A repaint by the table's timer (the first frame is drawn at start): the table ran on after the
  // transition and the record, which printed nothing.
  await waitFor(() => sink.text.split("│ 1st  │").length > 2, "a repaint of the table");
  await out.stop();
  assert.ok(!sink.text.includes('"type"') && !sink.text.includes("is down"));
  assert.ok(sink.text.includes("│ 1st  │ http://127.0.0.1:9001 │ DOWN"));
  assert.ok(sink.text.includes("sidekick: listening on '127.0.0.1:1'"));
});
