/**
 * Side-by-side proxy benchmark on loopback: the same backend reached directly, through sidekick,
 * and (when installed) through HAProxy and nginx as reference load balancers. Prints one table
 * with requests/s, throughput and latency, and each proxy's ratio to the direct run — ratios,
 * because these machines are shared and noisy. Every load run is bounded in time.
 *
 *   deno run -A bench/proxy_bench.ts [--seconds 5] [--connections 32]
 *
 * Needs `wrk` (apt-get install wrk); nginx (nginx-light) serves the backend files when present,
 * else a Deno backend process does; haproxy and nginx rows appear when they are installed.
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "32" },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const SIZES: [string, number][] = [["1 KiB", 1024], ["1 MiB", 1024 * 1024]];

function has(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`nothing listening on ${port}`);
}

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, stdout: "null", stderr: "piped", stdin: "null" }).spawn();
}

const dir = await Deno.makeTempDir({ prefix: "sidekick-bench-" });
await Deno.chmod(dir, 0o755); // nginx workers run as another user
for (const [, size] of SIZES) {
  const f = await Deno.open(`${dir}/${size}.bin`, { write: true, create: true, truncate: true });
  for (let o = 0; o < size; o += 65536) {
    await f.write(crypto.getRandomValues(new Uint8Array(Math.min(65536, size - o))));
  }
  f.close();
}
await Deno.writeTextFile(`${dir}/health`, "ok");

const children: Deno.ChildProcess[] = [];
const backendPort = freePort();
if (has("nginx")) {
  await Deno.writeTextFile(
    `${dir}/backend.conf`,
    `
worker_processes 1; daemon off; pid ${dir}/backend.pid; error_log ${dir}/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:${backendPort}; root ${dir}; location / { } } }`,
  );
  children.push(spawn("nginx", ["-c", `${dir}/backend.conf`, "-p", dir]));
} else {
  const code = `Deno.serve({hostname:"127.0.0.1",port:${backendPort},onListen(){}},async(r)=>{
    const p=new URL(r.url).pathname; if(p==="/health") return new Response("ok");
    return new Response(await Deno.readFile("${dir}"+p));});`;
  children.push(spawn(Deno.execPath(), ["eval", code]));
}
await waitPort(backendPort);
const backend = `127.0.0.1:${backendPort}`;

interface Target {
  name: string;
  port: number;
}
const targets: Target[] = [{ name: "direct", port: backendPort }];

const skPort = freePort();
children.push(spawn(Deno.execPath(), [
  "run",
  "-A",
  new URL("../main.ts", import.meta.url).pathname,
  "--address",
  `127.0.0.1:${skPort}`,
  "--health-path",
  "/health",
  "--trace",
  "",
  `http://${backend}`,
]));
targets.push({ name: "sidekick", port: skPort });

if (has("haproxy")) {
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/haproxy.cfg`,
    `
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  balance leastconn
  option httpchk GET /health
  server s1 ${backend} check inter 5s
`,
  );
  children.push(spawn("haproxy", ["-f", `${dir}/haproxy.cfg`]));
  targets.push({ name: "haproxy", port });
}
if (has("nginx")) {
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/lb.conf`,
    `
worker_processes 1; daemon off; pid ${dir}/lb.pid; error_log ${dir}/lb.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server ${backend}; keepalive 64; }
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; } } }`,
  );
  children.push(spawn("nginx", ["-c", `${dir}/lb.conf`, "-p", dir]));
  targets.push({ name: "nginx", port });
}
for (const t of targets) await waitPort(t.port);
// sidekick answers only once its backend is UP.
for (let i = 0; i < 200; i++) {
  const r = await fetch(`http://127.0.0.1:${skPort}/v1/health`).catch(() => null);
  await r?.body?.cancel();
  if (r?.status === 200) break;
  await new Promise((r) => setTimeout(r, 25));
}

interface Row {
  target: string;
  size: string;
  rps: number;
  mibps: number;
  p50: string;
  p99: string;
  errors: number;
}

function parseWrk(
  out: string,
): { rps: number; mibps: number; p50: string; p99: string; errors: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const tr = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out);
  const unit: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 };
  const mibps = tr ? Number(tr[1]) * (unit[tr[2]] ?? 0) : 0;
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "?";
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "?";
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, mibps, p50, p99, errors };
}

const rows: Row[] = [];
try {
  if (!has("wrk")) throw new Error("wrk is not installed: apt-get install wrk");
  for (const [label, size] of SIZES) {
    // Interleave targets per size so drift on a shared machine hits them all alike.
    for (const t of targets) {
      const out = new TextDecoder().decode(
        (await new Deno.Command("wrk", {
          args: [
            "-t2",
            `-c${CONNECTIONS}`,
            `-d${SECONDS}s`,
            "--latency",
            `http://127.0.0.1:${t.port}/${size}.bin`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output()).stdout,
      );
      rows.push({ target: t.name, size: label, ...parseWrk(out) });
    }
  }
} finally {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

const header = ["size", "target", "req/s", "MiB/s", "p50", "p99", "errors", "vs direct"];
const table = rows.map((r) => {
  const direct = rows.find((d) => d.size === r.size && d.target === "direct")!;
  return [
    r.size,
    r.target,
    r.rps.toFixed(0),
    r.mibps.toFixed(1),
    r.p50,
    r.p99,
    String(r.errors),
    direct.rps ? (r.rps / direct.rps).toFixed(2) : "-",
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(
  `wrk -t2 -c${CONNECTIONS} -d${SECONDS}s on ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores (load generator, proxies and backend share them)`,
);
console.log(line(header));
for (const row of table) console.log(line(row));
