/**
 * `deno task demo`: starts four local backends on 127.0.0.1 and a sidekick in front of them, so a
 * newcomer sees balancing, health checks and failover in one command. Extra arguments go to
 * sidekick (`deno task demo --log --json` for JSON logs and traces).
 *
 * Site 1 is backends 1–3, site 2 (the failover site) is backend 4. Each backend has control paths:
 * `POST /demo/stop` takes it off the network, `POST /demo/start` brings it back.
 * @module
 */

const HOST = "127.0.0.1";

interface DemoBackend {
  name: string;
  port: number;
  server?: Deno.HttpServer<Deno.NetAddr>;
}

function serveBackend(b: DemoBackend): void {
  b.server = Deno.serve({ hostname: HOST, port: b.port, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/minio/health/ready") return new Response(null, { status: 200 });
    return new Response(`hello from ${b.name} (${req.method} ${path})\n`);
  });
  b.port = b.server.addr.port;
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

const backends: DemoBackend[] = [1, 2, 3, 4].map((i) => ({
  name: `backend-${i}`,
  port: listenFree(9000 + i),
}));
for (const b of backends) serveBackend(b);

// One control listener on 127.0.0.1:9000 (or a free port): /stop/N and /start/N.
const control = Deno.serve(
  { hostname: HOST, port: listenFree(9000), onListen: () => {} },
  async (req) => {
    const m = /^\/(stop|start)\/([1-4])$/.exec(new URL(req.url).pathname);
    if (!m) return new Response("use /stop/N or /start/N with N in 1..4\n", { status: 404 });
    const b = backends[Number(m[2]) - 1];
    if (m[1] === "stop" && b.server) {
      await b.server.shutdown();
      b.server = undefined;
      return new Response(`${b.name} stopped (port ${b.port})\n`);
    }
    if (m[1] === "start" && !b.server) serveBackend(b);
    return new Response(`${b.name} running (port ${b.port})\n`);
  },
);

const sidekickPort = listenFree(8080);
const site = (bs: DemoBackend[]) => bs.map((b) => `http://${HOST}:${b.port}`).join(",");
const args = [
  "--address",
  `${HOST}:${sidekickPort}`,
  "--health-path",
  "/minio/health/ready",
  "--health-duration",
  "1s",
  ...Deno.args,
  site(backends.slice(0, 3)),
  site(backends.slice(3)),
];
const c = control.addr.port;
console.log(`
sidekick demo: 4 backends, sidekick on http://${HOST}:${sidekickPort}
  site 1: ${backends.slice(0, 3).map((b) => `${b.name}=:${b.port}`).join("  ")}
  site 2 (failover): ${backends[3].name}=:${backends[3].port}

Try, in another terminal:
  curl http://${HOST}:${sidekickPort}/hello            # spread over backends 1-3
  curl -X POST http://${HOST}:${c}/stop/1              # take backend-1 off the network
  for i in 1 2 3 4 5 6; do curl -s http://${HOST}:${sidekickPort}/; done
  curl -X POST http://${HOST}:${c}/stop/2 http://${HOST}:${c}/stop/3   # site 1 gone: failover to site 2
  curl -X POST http://${HOST}:${c}/start/1             # fail back once backend-1 is healthy
  curl http://${HOST}:${sidekickPort}/.prometheus/metrics
Press Ctrl-C to stop.
`);
if (Deno.stdin.isTerminal() && Deno.stdout.isTerminal() && !Deno.args.includes("--log")) {
  // The live table takes over the screen: let the newcomer read (or copy) the commands first.
  await Deno.stdout.write(
    new TextEncoder().encode("Press Enter to start sidekick's live table (Ctrl-C quits it)... "),
  );
  await Deno.stdin.read(new Uint8Array(1024));
}

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    new URL("./main.ts", import.meta.url).href,
    ...args,
  ],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
// Ctrl-C already reaches sidekick (same process group): just outlive it. SIGTERM is forwarded.
Deno.addSignalListener("SIGINT", () => {});
if (Deno.build.os !== "windows") {
  Deno.addSignalListener("SIGTERM", () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  });
}
const status = await child.status;
await control.shutdown();
for (const b of backends) await b.server?.shutdown();
Deno.exit(status.code);
