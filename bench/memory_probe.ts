/**
 * Runs sidekick in this isolate and keeps, in the file named by `PROBE_OUT`, the largest V8 heap
 * figures seen so far (sampled every 100 ms): RSS, the heap's committed size, each space's
 * committed size, external memory. bench/memory.ts starts it with `--probe`, to tell how much of
 * a peak is V8's heap and which space. Only the main isolate is seen: run it with `--workers 1`.
 *
 *   PROBE_OUT=/tmp/probe.txt deno run -A bench/memory_probe.ts path/to/main.ts [sidekick args]
 * @module
 */

import v8 from "node:v8";

const [main, ...args] = Deno.args;
const out = Deno.env.get("PROBE_OUT") ?? "/dev/stderr";
const max = new Map<string, number>();
const mib = (n: number) => n / 1048576;
const keep = (k: string, v: number) => max.set(k, Math.max(max.get(k) ?? 0, v));

const timer = setInterval(() => {
  const m = Deno.memoryUsage();
  keep("rss", mib(m.rss));
  keep("heap", mib(m.heapTotal));
  keep("heapUsed", mib(m.heapUsed));
  keep("external", mib(m.external));
  keep("malloced", mib(v8.getHeapStatistics().malloced_memory));
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0) keep(s.space_name.replace(/_space$/, ""), mib(s.space_size));
  }
  const line = [...max].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
  Deno.writeTextFileSync(out, `max MiB: ${line}\n`);
}, 100);
Deno.unrefTimer(timer);

const { run } = await import(new URL(main, `file://${Deno.cwd()}/`).href);
Deno.exit(await run(args));
