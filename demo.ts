/**
 * `deno task demo`: four local backends on 127.0.0.1 and a sidekick in front of them, so a
 * newcomer sees balancing, health checks, failover and retries in one command. Extra arguments go
 * to sidekick (`deno task demo --log --json` for JSON logs and traces), except the demo's own
 * `--port N`: sidekick on port N, the control listener and the backends on the five ports after it
 * (each one that is taken replaced by a free one); `--port 0` takes free ports for all. Without
 * it: sidekick on 8080, the control listener on 9000, backends on 9001–9004, or free ones.
 *
 * Site 1 is backends 1–3, site 2 (the failover site) is backend 4. A control listener takes a
 * backend off the network (`POST /stop/N`) and brings it back (`POST /start/N`).
 *
 * sidekick runs in this process and is listening before the `curl` commands are printed, so they
 * work at once. To show resilience, a small client load (two loops, about 40 requests/s) runs in
 * the background while the demo stops one backend of site 1 every few seconds and starts it again;
 * the client's failed-request count is in the table's status line (or printed with each stop and
 * start when stdout is not a terminal). Ctrl-C stops sidekick, the load and the backends.
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { parseCli } from "./lib/config/cli.ts";
import { createConsole } from "./lib/output/console.ts";
import { ConfigError, createSidekick } from "./lib/control/sidekick.ts";
import { createTableUi, type TableUi } from "./lib/output/ui.ts";

const HOST = "127.0.0.1";
/** The path of the background load: its trace lines are left out, they would drown the rest. */
const LOAD_PATH = "/demo-load";
/** How often the demo stops a backend of site 1, and for how long. */
const FLAP_EVERY_MS = 10_000;
const FLAP_DOWN_MS = 4_000;

interface DemoBackend {
  name: string;
  port: number;
  server?: Deno.HttpServer<Deno.NetAddr>;
  /** Who stopped it: the demo restarts only the backends it stopped itself. */
  stoppedBy?: "demo" | "you";
}

function serveBackend(b: DemoBackend): void {
  b.server = Deno.serve({ hostname: HOST, port: b.port, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/minio/health/ready") return new Response(null, { status: 200 });
    return new Response(`hello from ${b.name} (${req.method} ${path})\n`);
  });
  b.port = b.server.addr.port;
  b.stoppedBy = undefined;
}

async function stopBackend(b: DemoBackend, by: "demo" | "you"): Promise<void> {
  const server = b.server;
  if (!server) return;
  b.server = undefined;
  b.stoppedBy = by;
  await server.shutdown();
}

function listenFree(preferred: number): number {
  try {
    const l = Deno.listen({ hostname: HOST, port: preferred });
    l.close();
    return preferred;
  } catch {
    const l = Deno.listen({ hostname: HOST, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    return port;
  }
}

/**
 * The demo's own `--port N` / `--port=N` taken out of the arguments: the base port, or undefined
 * when absent; a bad value ends the demo with a one-line error.
 */
function takePort(args: string[]): { base?: number; rest: string[] } {
  const rest: string[] = [];
  let base: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^--?port(?:=(.*))?$/.exec(args[i]);
    if (!m) {
      rest.push(args[i]);
      continue;
    }
    const value = m[1] ?? args[++i];
    base = /^\d{1,5}$/.test(value ?? "") ? Number(value) : NaN;
    if (!(base <= 65_530)) {
      console.error(
        `demo: --port: invalid value ${JSON.stringify(value ?? "")}; ` +
          "expected a port number in 0..65530 (0: free ports for everything)",
      );
      Deno.exit(2);
    }
  }
  return { base, rest };
}
const { base, rest: sidekickArgs } = takePort(Deno.args);
/** The demo's port `offset` places after the base (0: sidekick, 1: control, 2–5: backends). */
const demoPort = (offset: number, fallback: number) =>
  base === undefined ? listenFree(fallback) : base === 0 ? 0 : listenFree(base + offset);

const backends: DemoBackend[] = [1, 2, 3, 4].map((i) => ({
  name: `backend-${i}`,
  port: demoPort(1 + i, 9000 + i),
}));
for (const b of backends) serveBackend(b);

// One control listener on 127.0.0.1:9000 (or a free port): /stop/N and /start/N.
const control = Deno.serve(
  { hostname: HOST, port: demoPort(1, 9000), onListen: () => {} },
  async (req) => {
    const m = /^\/(stop|start)\/([1-4])$/.exec(new URL(req.url).pathname);
    if (!m) return new Response("use /stop/N or /start/N with N in 1..4\n", { status: 404 });
    const b = backends[Number(m[2]) - 1];
    if (m[1] === "stop" && b.server) {
      await stopBackend(b, "you");
      return new Response(`${b.name} stopped (port ${b.port})\n`);
    }
    if (m[1] === "start" && !b.server) serveBackend(b);
    return new Response(`${b.name} running (port ${b.port})\n`);
  },
);

// sidekick, built from the command line as main.ts builds it, but in this process so that the
// demo decides when the live table takes the screen and what its status line says.
const site = (bs: DemoBackend[]) => bs.map((b) => `http://${HOST}:${b.port}`).join(",");
const outcome = parseCli(
  [
    "--address",
    `${HOST}:${base === undefined ? listenFree(8080) : base}`,
    "--health-path",
    "/minio/health/ready",
    "--health-duration",
    "1s",
    ...sidekickArgs,
    site(backends.slice(0, 3)),
    site(backends.slice(3)),
  ],
  denoJson.version,
  "deno task demo",
);
if (outcome.kind !== "run") {
  const text = outcome.kind === "error" ? `sidekick: ${outcome.message}` : outcome.text;
  (outcome.kind === "version" || (outcome.kind === "help" && outcome.exitCode === 0)
    ? console.log
    : console.error)(text);
  Deno.exit(outcome.kind === "error" ? 2 : outcome.kind === "help" ? outcome.exitCode : 0);
}
const config = outcome.config;
const output = createConsole(config, Deno.stdout.isTerminal());
let sidekickStatus = "";
const sidekick = createSidekick(config, {
  onTransition: output.transition,
  onRecord: (r) => {
    if (!r.path.startsWith(LOAD_PATH)) output.record(r);
  },
  traceLines: output.consoleMode
    ? {
      style: output.traceStyle,
      write: (lines) => output.lines(lines.filter((l) => !l.includes(LOAD_PATH))),
    }
    : undefined,
  onInfo: (text) => {
    sidekickStatus = `sidekick: ${text}`;
    output.info(text);
  },
  onError: (text) => {
    sidekickStatus = `sidekick: <ERROR> ${text}`;
    output.error(text);
  },
  traceLinesDropped: output.dropped,
});
try {
  await sidekick.start();
} catch (e) {
  const why = e instanceof Error ? e.message : String(e);
  console.error(`sidekick: ${e instanceof ConfigError ? "" : "unable to listen: "}${why}`);
  Deno.exit(e instanceof ConfigError ? 2 : 1);
}
const url = sidekick.url;
const workers = sidekick.workers > 1 ? ` with ${sidekick.workers} worker isolates` : "";
sidekickStatus = `sidekick: listening on '${HOST}:${sidekick.addr.port}'${workers}`;
if (output.consoleMode) output.info(sidekickStatus.slice("sidekick: ".length));
// The first health round marks the backends UP: only then do the commands below answer 200.
await sidekick.ready();

const c = control.addr.port;
const [flapEvery, flapDown] = [FLAP_EVERY_MS / 1000, FLAP_DOWN_MS / 1000];
console.log(`
sidekick demo: 4 backends, sidekick on ${url}
  site 1: ${backends.slice(0, 3).map((b) => `${b.name}=:${b.port}`).join("  ")}
  site 2 (failover): ${backends[3].name}=:${backends[3].port}

sidekick is serving now. Try, in another terminal:
  curl ${url}/hello            # spread over backends 1-3
  curl -X POST http://${HOST}:${c}/stop/1              # take backend-1 off the network
  for i in 1 2 3 4 5 6; do curl -s ${url}/; done
  curl -X POST http://${HOST}:${c}/stop/2 http://${HOST}:${c}/stop/3   # site 1 gone: failover to site 2
  curl -X POST http://${HOST}:${c}/start/1             # fail back once backend-1 is healthy
  curl ${url}/.prometheus/metrics

Meanwhile a small client load runs and the demo stops one backend of site 1 every ${flapEvery} s for
${flapDown} s. sidekick retries a request that fails to connect on another backend, so the client
should see no failures: ${output.consoleMode ? "see the demo: lines" : "see the status line"}.
Press Ctrl-C to stop.
`);

// The background load: two loops of GETs, a little pause between requests.
const load = { requests: 0, failed: 0 };
const stopLoad = new AbortController();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function loadLoop(): Promise<void> {
  for (let i = 0; !stopLoad.signal.aborted; i++) {
    load.requests++;
    try {
      const res = await fetch(`${url}${LOAD_PATH}/${i}`, {
        signal: AbortSignal.any([stopLoad.signal, AbortSignal.timeout(5_000)]),
      });
      await res.body?.cancel();
      if (res.status !== 200) load.failed++;
    } catch {
      if (stopLoad.signal.aborted) load.requests--;
      else load.failed++;
    }
    await pause(50);
  }
}
const loops = [loadLoop(), loadLoop()];

// The flapping backend: the next running one of site 1, and only while two of them run (so the
// demo alone never sends traffic to the failover site).
let flapped: DemoBackend | undefined;
let nextFlapAt = 0;
let nextFlapIndex = 0;
let flapTimer: ReturnType<typeof setTimeout> | undefined;
const loadText = () => `demo client: ${load.requests} requests, ${load.failed} failed`;
const say = (text: string) => output.consoleMode && console.log(`demo: ${text} (${loadText()})`);
function flapLater(): void {
  nextFlapAt = Date.now() + FLAP_EVERY_MS;
  flapTimer = setTimeout(flap, FLAP_EVERY_MS);
}
function flap(): void {
  const site1 = backends.slice(0, 3);
  const b = site1.filter((b) => b.server).length >= 2
    ? [0, 1, 2].map((n) => site1[(nextFlapIndex + n) % 3]).find((b) => b.server)
    : undefined;
  if (!b) return flapLater();
  nextFlapIndex = backends.indexOf(b) + 1;
  flapped = b;
  stopBackend(b, "demo");
  say(`stopped ${b.name}`);
  flapTimer = setTimeout(() => {
    flapped = undefined;
    if (!b.server && b.stoppedBy === "demo") serveBackend(b);
    say(`started ${b.name} again`);
    flapLater();
  }, FLAP_DOWN_MS);
}
flapLater();

function demoStatus(): string {
  const flapText = flapped
    ? `${flapped.name} stopped by the demo`
    : `next backend stop in ${Math.max(0, Math.ceil((nextFlapAt - Date.now()) / 1000))}s`;
  // The table pads each line of its status to the screen width except inner ones: clear here.
  return `${sidekickStatus}\x1b[K\n${loadText()} | ${flapText}`;
}

let table: TableUi | undefined;
let statusTimer: ReturnType<typeof setInterval> | undefined;
function startTable(): void {
  if (output.consoleMode || table) return;
  table = createTableUi({ source: sidekick, sink: Deno.stdout, colors: !Deno.noColor });
  table.status(demoStatus());
  statusTimer = setInterval(() => table?.status(demoStatus()), 250);
}

let stopping = false;
async function stopAll(): Promise<never> {
  if (stopping) Deno.exit(1); // a second Ctrl-C: leave now (the table restores the screen)
  stopping = true;
  clearTimeout(flapTimer);
  clearInterval(statusTimer);
  stopLoad.abort();
  await Promise.all(loops);
  await sidekick.stop(2_000);
  await table?.stop();
  await output.stop();
  if (output.consoleMode) console.log(`demo: stopped (${loadText()})`);
  await control.shutdown();
  for (const b of backends) await b.server?.shutdown();
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", stopAll);
if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stopAll);

if (!output.consoleMode && Deno.stdin.isTerminal()) {
  // The live table takes over the screen: let the newcomer read (or copy) the commands first.
  await Deno.stdout.write(
    new TextEncoder().encode("Press Enter to show sidekick's live table (Ctrl-C quits)... "),
  );
  await Deno.stdin.read(new Uint8Array(1024));
}
startTable();
