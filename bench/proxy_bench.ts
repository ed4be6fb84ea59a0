/**
 * The project's proxy benchmark: the same four backends on loopback reached directly, through a
 * bare Deno proxy (bench/bare_proxy.ts, the runtime's floor), through sidekick in several
 * configurations, and through nginx, HAProxy and Caddy when they are installed. One table, three
 * workloads (a 2-byte GET, a 1 MiB GET, a 64 KiB POST) plus a small GET over TLS, and a latency
 * check of ten sequential requests on one TLS keep-alive connection.
 *
 *   deno task bench [--seconds 5] [--rounds 3] [--only sidekick,bare] [--smoke]
 *
 * Columns: requests/s (wrk -t2 -c64), the ratio to the direct run, CPU µs per request of the
 * proxy's whole process tree (all threads, /proc utime+stime), the proxy's peak RSS during the
 * cell, wrk's p99 latency and the count of failed requests. Rounds are interleaved (every row
 * once, then every row again) and the medians reported: these machines are shared and noisy, so
 * the ratios mean more than the absolute numbers.
 *
 * `--smoke` is a wiring check of a few seconds: one round, 1 s cells, only rows that need nothing
 * but deno and wrk, against a Deno backend. Every child is killed at the end, even on failure,
 * and the temporary directory removed.
 * @module
 */

import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../tools/compile.ts";
import { fourPorts, freePort } from "./ports.ts";

const HELP = `usage: deno task bench [--seconds N] [--rounds N] [--connections N] [--warmup N]
                       [--only ROW[,ROW...]] [--smoke] [--sidekick path/to/main.ts]
                       [--sidekick-flags="DENO FLAGS"]
rows: ${
  [
    "direct",
    "bare",
    "bare-w2",
    "sidekick",
    "sidekick-trace",
    "sidekick-w2",
    "nginx",
    "haproxy",
    "caddy-p1",
    "caddy-p2",
    "sidekick-tls",
    "bare-tls",
  ].join(", ")
} (direct always runs: it is the baseline)`;

const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    connections: { type: "string", default: "64" },
    warmup: { type: "string" },
    only: { type: "string", multiple: true },
    smoke: { type: "boolean", default: false },
    sidekick: { type: "string" },
    "sidekick-flags": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const SMOKE = values.smoke;
const SECONDS = positiveInt("seconds", values.seconds ?? (SMOKE ? "1" : "5"));
const ROUNDS = positiveInt("rounds", values.rounds ?? (SMOKE ? "1" : "3"));
const CONNECTIONS = positiveInt("connections", values.connections);
const WARMUP = values.warmup === "0" || (SMOKE && !values.warmup)
  ? 0
  : positiveInt("warmup", values.warmup ?? "1");
const ONLY = values.only?.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
const REPO = new URL("..", import.meta.url).pathname;
/** sidekick's entry point: this checkout's, or another build to compare (`--sidekick PATH`). */
const SIDEKICK_MAIN = values.sidekick ? await Deno.realPath(values.sidekick) : `${REPO}main.ts`;
/**
 * Runtime flags of the sidekick rows: the ones baked into the binary (V8's heap sizing among them),
 * so the table measures what ships; `--sidekick-flags` replaces them to compare others.
 */
const SIDEKICK_FLAGS = values["sidekick-flags"] !== undefined
  ? values["sidekick-flags"].split(/\s+/).filter(Boolean)
  : RUNTIME_FLAGS.map((f) => f.flag);
/** Rows a smoke run measures: they need only deno and wrk. */
const SMOKE_ROWS = ["direct", "bare", "sidekick"];

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${flag} must be a positive integer, not ${JSON.stringify(v)}\n${HELP}`);
    Deno.exit(2);
  }
  return n;
}

function has(cmd: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

function note(msg: string): void {
  console.error(`bench: ${msg}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Ports and processes

async function waitPort(port: number, child: Child): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (child.exited) throw new Error(`${child.name} exited: ${child.tail()}`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(25);
    }
  }
  throw new Error(`${child.name}: nothing listening on ${port} after 10 s: ${child.tail()}`);
}

/** A spawned server whose stderr is drained (a full pipe would stall it) and kept for errors. */
class Child {
  readonly proc: Deno.ChildProcess;
  exited = false;
  #err = "";

  constructor(readonly name: string, cmd: string, args: string[], env?: Record<string, string>) {
    const proc = new Deno.Command(cmd, {
      args,
      env,
      cwd: REPO,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.proc = proc;
    proc.status.then(() => this.exited = true);
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) {
        this.#err = (this.#err + dec.decode(chunk, { stream: true })).slice(-2000);
      }
    })().catch(() => {});
  }

  /** The end of what the child wrote on stderr, for error messages. */
  tail(): string {
    return this.#err.trim().split("\n").slice(-5).join(" | ") || "(no output)";
  }

  /** SIGTERM, a grace period, then SIGKILL for every process of the tree still alive. */
  async stop(): Promise<void> {
    const pids = processTree(this.proc.pid);
    if (!this.exited) {
      try {
        this.proc.kill("SIGTERM");
      } catch { /* already gone */ }
      await Promise.race([this.proc.status, sleep(2000)]);
    }
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    await Promise.race([this.proc.status, sleep(1000)]);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc accounting of a process tree

const CLK_TCK = (() => {
  try {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).outputSync();
    return Number(new TextDecoder().decode(out.stdout).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
function statFields(pid: number): string[] | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** `root` and all its live descendants. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const f = statFields(Number(e.name));
      if (!f) continue;
      const ppid = Number(f[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e.name)]);
    }
  } catch {
    return [root];
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/**
 * CPU seconds of the tree: utime+stime of each process (all its threads), plus cutime+cstime so
 * that a child reaped during the window keeps counting.
 */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / CLK_TCK;
}

/** Resets the peak RSS so that the next reading covers one cell only (needs ownership or root). */
function resetPeakRss(pids: number[]): void {
  for (const pid of pids) {
    try {
      Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch { /* the peak then covers the whole run so far */ }
  }
}

function peakRssMiB(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
      if (m) kb += Number(m[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

// ---------------------------------------------------------------------------------------------
// Workloads, rows and the load generator

interface Workload {
  label: string;
  path: string;
  post: boolean;
}
const SMALL: Workload = { label: "GET 2 B", path: "/small", post: false };
const WORKLOADS: Workload[] = [
  SMALL,
  { label: "GET 1 MiB", path: "/1m.bin", post: false },
  { label: "POST 64 KiB", path: "/post", post: true },
];
const TLS_LABEL = "TLS GET 2 B";

interface Row {
  name: string;
  tls: boolean;
  needs: string[];
  /** Starts the proxy; returns its port. `direct` starts nothing. */
  start?: (env: BenchEnv) => Promise<{ port: number; child: Child }>;
}

interface BenchEnv {
  dir: string;
  backendPorts: number[];
  cert: string;
  key: string;
  ca: string;
}

interface Cell {
  rps: number;
  requests: number;
  cpuUsPerReq: number | null;
  rssMiB: number | null;
  p99ms: number | null;
  errors: number;
}

function backendUrls(env: BenchEnv): string[] {
  return env.backendPorts.map((p) => `http://127.0.0.1:${p}`);
}

/** sidekick's own SITE grammar: `http://127.0.0.1:{a...b}` expands to the four ports. */
function sidekickSite(env: BenchEnv): string {
  const p = env.backendPorts;
  return `http://127.0.0.1:{${p[0]}...${p[p.length - 1]}}`;
}

function sidekickRow(name: string, flags: string[], tls = false): Row {
  return {
    name,
    tls,
    needs: tls ? ["openssl"] : [],
    start(env) {
      const port = freePort();
      const args = ["run", "-A", "--unstable-net", ...SIDEKICK_FLAGS, SIDEKICK_MAIN];
      args.push("--address", `127.0.0.1:${port}`, "--health-path", "/small", ...flags);
      if (tls) args.push("--cert", env.cert, "--key", env.key);
      const child = new Child(name, Deno.execPath(), [...args, sidekickSite(env)]);
      return Promise.resolve({ port, child });
    },
  };
}

function bareRow(name: string, workers: number, tls = false): Row {
  return {
    name,
    tls,
    needs: tls ? ["openssl"] : [],
    start(env) {
      const port = freePort();
      const args = ["run", "-A", "--unstable-net", `${REPO}bench/bare_proxy.ts`];
      args.push("--port", String(port), "--workers", String(workers));
      if (tls) args.push("--cert", env.cert, "--key", env.key);
      const child = new Child(name, Deno.execPath(), [...args, ...backendUrls(env)]);
      return Promise.resolve({ port, child });
    },
  };
}

function caddyRow(procs: number): Row {
  return {
    name: `caddy-p${procs}`,
    tls: false,
    needs: ["caddy"],
    async start(env) {
      const port = freePort();
      const upstreams = env.backendPorts.map((p) => `127.0.0.1:${p}`).join(" ");
      const file = `${env.dir}/Caddyfile-${procs}`;
      await Deno.writeTextFile(
        file,
        `{
\tadmin off
\tauto_https off
}
http://127.0.0.1:${port} {
\treverse_proxy ${upstreams} {
\t\tlb_policy least_conn
\t}
}
`,
      );
      const home = `${env.dir}/caddy-home-${procs}`;
      const child = new Child(`caddy-p${procs}`, "caddy", ["run", "--config", file], {
        GOMAXPROCS: String(procs),
        HOME: home,
        XDG_DATA_HOME: `${home}/data`,
        XDG_CONFIG_HOME: `${home}/config`,
      });
      return { port, child };
    },
  };
}

const ROWS: Row[] = [
  { name: "direct", tls: false, needs: [] },
  bareRow("bare", 1),
  bareRow("bare-w2", 2),
  sidekickRow("sidekick", ["--workers", "1", "--quiet"]),
  // Default output: one trace line per request, written to a non-terminal stdout (/dev/null).
  sidekickRow("sidekick-trace", ["--workers", "1"]),
  sidekickRow("sidekick-w2", ["--workers", "2", "--quiet"]),
  {
    name: "nginx",
    tls: false,
    needs: ["nginx"],
    async start(env) {
      const port = freePort();
      const servers = env.backendPorts.map((p) => `server 127.0.0.1:${p};`).join(" ");
      await Deno.writeTextFile(
        `${env.dir}/lb.conf`,
        `
worker_processes 1; daemon off; pid ${env.dir}/lb.pid; error_log ${env.dir}/lb.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; ${tempPaths(env.dir, "lb")}
  upstream be { least_conn; ${servers} keepalive 64; }
  server { listen 127.0.0.1:${port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; proxy_buffer_size 64k;
      proxy_buffers 8 64k; proxy_busy_buffers_size 128k;
      client_body_buffer_size 64k; } } }`,
      );
      return {
        port,
        child: new Child("nginx", "nginx", ["-c", `${env.dir}/lb.conf`, "-p", env.dir]),
      };
    },
  },
  {
    name: "haproxy",
    tls: false,
    needs: ["haproxy"],
    async start(env) {
      const port = freePort();
      const servers = env.backendPorts.map((p, i) =>
        `  server s${i} 127.0.0.1:${p} check inter 5s`
      );
      await Deno.writeTextFile(
        `${env.dir}/haproxy.cfg`,
        `global
  maxconn 4096
  nbthread 1
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
  option httpchk GET /small
${servers.join("\n")}
`,
      );
      return { port, child: new Child("haproxy", "haproxy", ["-f", `${env.dir}/haproxy.cfg`]) };
    },
  },
  caddyRow(1),
  caddyRow(2),
  sidekickRow("sidekick-tls", ["--workers", "1", "--quiet"], true),
  bareRow("bare-tls", 1, true),
];

/** nginx's temporary files in our directory, away from the packaged paths. */
function tempPaths(dir: string, tag: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((k) => `${k}_temp_path ${dir}/${tag}-${k};`).join(" ");
}

/** wrk's duration ("850.00us", "8.31ms", "1.20s", "1.00m") in milliseconds. */
function wrkDurationMs(s: string): number | null {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s);
  if (!m) return null;
  const scale: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  return Number(m[1]) * scale[m[2]];
}

function parseWrk(out: string): Omit<Cell, "cpuUsPerReq" | "rssMiB"> {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, requests, p99ms: p99 ? wrkDurationMs(p99) : null, errors };
}

async function wrk(url: string, seconds: number, post: string | null, conns = CONNECTIONS) {
  const args = ["-t2", `-c${conns}`, `-d${seconds}s`, "--timeout", "5s", "--latency"];
  if (post) args.push("-s", post);
  const out = await new Deno.Command("wrk", {
    args: [...args, url],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((seconds + 20) * 1000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !/Requests\/sec/.test(text)) {
    throw new Error(`wrk ${url} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** One measured cell: wrk for SECONDS, the proxy's CPU and RSS sampled around it. */
async function measure(url: string, w: Workload, pid: number | null, post: string): Promise<Cell> {
  const pids = pid === null ? [] : processTree(pid);
  resetPeakRss(pids);
  const cpu0 = cpuSeconds(pids);
  const out = parseWrk(await wrk(url + w.path, SECONDS, w.post ? post : null));
  const cpu1 = cpuSeconds(pids);
  return {
    ...out,
    cpuUsPerReq: pid === null || !out.requests ? null : (cpu1 - cpu0) * 1e6 / out.requests,
    rssMiB: pid === null ? null : peakRssMiB(processTree(pid)),
  };
}

/** Ten sequential small GETs on one connection with curl: total ms, or why not. */
async function tlsLatency(url: string, http: "--http1.1" | "--http2"): Promise<number | string> {
  const args = ["-sk", http, "--max-time", "20"];
  args.push("-w", "%{time_total} %{num_connects} %{http_version}\\n");
  for (let i = 0; i < 10; i++) args.push("-o", "/dev/null", url + SMALL.path);
  const out = await new Deno.Command("curl", {
    args,
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean);
  if (!out.success || lines.length !== 10) return "failed";
  const parsed = lines.map((l) => l.split(" "));
  const connects = parsed.reduce((a, f) => a + Number(f[1]), 0);
  const want = http === "--http2" ? "2" : "1.1";
  if (parsed.some((f) => f[2] !== want)) return `not HTTP/${want}`;
  if (connects !== 1) return `${connects} connections`;
  return parsed.reduce((a, f) => a + Number(f[0]) * 1000, 0);
}

// ---------------------------------------------------------------------------------------------
// Backends and certificates

/**
 * A throw-away CA and a server certificate for 127.0.0.1 it signs (cert.pem, key.pem, ca.pem in
 * `dir`). Not one self-signed certificate: rustls refuses a CA certificate as a server's, which
 * the readiness check's fetch would hit.
 */
async function makeCerts(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n" +
      "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  const steps = [
    ["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=sidekick bench CA"],
    ["-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.pem`],
    ["req", "-new", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", `${dir}/key.pem`],
    ["-out", `${dir}/leaf.csr`],
    ["x509", "-req", "-in", `${dir}/leaf.csr`, "-CA", `${dir}/ca.pem`, "-CAkey", `${dir}/ca.key`],
    ["-CAcreateserial", "-days", "2", "-extfile", `${dir}/leaf.ext`, "-out", `${dir}/cert.pem`],
  ];
  for (let i = 0; i < steps.length; i += 2) {
    const out = await new Deno.Command("openssl", {
      args: [...steps[i], ...steps[i + 1]],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`openssl ${steps[i][0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
}

async function startBackends(dir: string, ports: number[], useNginx: boolean): Promise<Child> {
  if (useNginx) {
    const echo = "/usr/lib/nginx/modules/ngx_http_echo_module.so";
    const hasEcho = await Deno.stat(echo).then(() => true, () => false);
    // echo_read_request_body reads the whole body before answering; without the module, nginx's
    // `return` still reads the body (to discard it) before the connection takes the next request.
    const post = hasEcho ? `echo_read_request_body; echo -n "ok";` : `return 200 "ok";`;
    const servers = ports.map((p) => `
  server { listen 127.0.0.1:${p}; root ${dir}/www;
    location = /small { return 200 "ok"; }
    location = /post { ${post} }
    location / { } }`).join("");
    await Deno.writeTextFile(
      `${dir}/backend.conf`,
      `${hasEcho ? `load_module ${echo};` : ""}
worker_processes 1; daemon off; pid ${dir}/backend.pid; error_log ${dir}/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; sendfile on; client_body_buffer_size 128k;
  client_max_body_size 2m; ${tempPaths(dir, "backend")}${servers} }`,
    );
    if (!hasEcho) note("nginx echo module missing: the POST backend discards bodies with `return`");
    return new Child("nginx backends", "nginx", ["-c", `${dir}/backend.conf`, "-p", dir]);
  }
  const code = `
const big = Deno.readFileSync(${JSON.stringify(`${dir}/www/1m.bin`)});
for (const port of ${JSON.stringify(ports)}) {
  Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/post") { await req.arrayBuffer(); return new Response("ok"); }
    if (path === "/1m.bin") return new Response(big);
    return new Response("ok");
  });
}`;
  return new Child("deno backends", Deno.execPath(), ["eval", code]);
}

// ---------------------------------------------------------------------------------------------
// Output

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function medianOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
}

function fixed(x: number | null, digits: number): string {
  return x === null || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

function printTable(header: string[], body: string[][], rightFrom: number): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ");
  console.log(line(header));
  for (const r of body) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------
// Main

const children: Child[] = [];
let dir = "";
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.all(children.map((c) => c.stop()));
  if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}
const onSignal = () => {
  note("interrupted: stopping every child");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

if (!has("wrk")) {
  const msg = "wrk is not installed (apt-get install wrk): nothing measured";
  if (SMOKE) {
    console.log(`skipped: ${msg}`);
    Deno.exit(0);
  }
  console.error(msg);
  Deno.exit(1);
}

const unknown = (ONLY ?? []).filter((n) => !ROWS.some((r) => r.name === n));
if (unknown.length) {
  console.error(`unknown row(s) ${unknown.join(", ")}\n${HELP}`);
  Deno.exit(2);
}

const wanted = (name: string) =>
  name === "direct" || ((!SMOKE || SMOKE_ROWS.includes(name)) && (!ONLY || ONLY.includes(name)));
let rows = ROWS.filter((r) => wanted(r.name)).filter((r) => {
  const missing = r.needs.filter((c) => !has(c));
  if (missing.length) note(`${r.name}: ${missing.join(", ")} not installed, row skipped`);
  return missing.length === 0;
});

const useNginx = !SMOKE && has("nginx");
const failed: string[] = [];
const results = new Map<string, Cell[]>(); // key: row name + workload label
const latency = new Map<string, { h1: (number | string)[]; h2: (number | string)[] }>();
const started = new Map<string, { url: string; pid: number | null }>();
const t0 = performance.now();
const hasCurl = has("curl");
if (!hasCurl && rows.some((r) => r.tls)) note("curl not installed: no TLS latency check");

try {
  dir = await Deno.makeTempDir({ prefix: "sidekick-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers run as another user
  await Deno.mkdir(`${dir}/www`);
  await Deno.chmod(`${dir}/www`, 0o755);
  const big = new Uint8Array(1024 * 1024);
  for (let o = 0; o < big.length; o += 65536) crypto.getRandomValues(big.subarray(o, o + 65536));
  await Deno.writeFile(`${dir}/www/1m.bin`, big, { mode: 0o644 });
  const postScript = `${dir}/post.lua`;
  await Deno.writeTextFile(
    postScript,
    `wrk.method = "POST"\nwrk.body = string.rep("x", 65536)\n` +
      `wrk.headers["Content-Type"] = "application/octet-stream"\n`,
  );

  const env: BenchEnv = {
    dir,
    backendPorts: fourPorts(),
    cert: `${dir}/cert.pem`,
    key: `${dir}/key.pem`,
    ca: `${dir}/ca.pem`,
  };
  if (rows.some((r) => r.tls)) {
    await makeCerts(dir);
  }

  const backends = await startBackends(dir, env.backendPorts, useNginx);
  children.push(backends);
  for (const p of env.backendPorts) await waitPort(p, backends);

  const client = rows.some((r) => r.tls)
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(env.ca)] })
    : undefined;
  for (const row of rows) {
    if (!row.start) {
      started.set(row.name, { url: `http://127.0.0.1:${env.backendPorts[0]}`, pid: null });
      continue;
    }
    const { port, child } = await row.start(env);
    children.push(child);
    const url = `${row.tls ? "https" : "http"}://127.0.0.1:${port}`;
    try {
      await waitPort(port, child);
      // Ready means a proxied request succeeds (sidekick answers 502 until a check passes).
      let ok = false;
      for (let i = 0; i < 200 && !ok; i++) {
        const r = await fetch(url + SMALL.path, { client }).catch(() => null);
        await r?.body?.cancel();
        ok = r?.status === 200;
        if (!ok) await sleep(50);
      }
      if (!ok) throw new Error(`${row.name}: ${url}${SMALL.path} never answered 200`);
      started.set(row.name, { url, pid: child.proc.pid });
    } catch (e) {
      failed.push(`${row.name} did not start: ${(e as Error).message}; ${child.tail()}`);
      await child.stop();
    }
  }
  client?.close();
  rows = rows.filter((r) => started.has(r.name));
  // A moment for sidekick's other backends to pass their first check.
  await sleep(300);

  const cells = (r: Row) => r.tls ? [{ ...SMALL, label: TLS_LABEL }] : WORKLOADS;
  if (WARMUP > 0) {
    note(`warm-up: ${WARMUP} s per cell`);
    for (const r of rows) {
      for (const w of cells(r)) {
        await wrk(started.get(r.name)!.url + w.path, WARMUP, w.post ? postScript : null, 8);
      }
    }
  }
  for (let round = 1; round <= ROUNDS; round++) {
    note(`round ${round}/${ROUNDS}`);
    for (const w of [...WORKLOADS, { ...SMALL, label: TLS_LABEL }]) {
      for (const r of rows) {
        if (!cells(r).some((c) => c.label === w.label)) continue;
        const s = started.get(r.name)!;
        const cell = await measure(s.url, w, s.pid, postScript);
        const key = `${r.name}\n${w.label}`;
        results.set(key, [...(results.get(key) ?? []), cell]);
      }
    }
    for (const r of rows.filter((r) => r.tls && hasCurl)) {
      const l = latency.get(r.name) ?? { h1: [], h2: [] };
      l.h1.push(await tlsLatency(started.get(r.name)!.url, "--http1.1"));
      l.h2.push(await tlsLatency(started.get(r.name)!.url, "--http2"));
      latency.set(r.name, l);
    }
  }
  for (const [name, s] of started) {
    const c = children.find((c) => c.proc.pid === s.pid);
    if (c?.exited) failed.push(`${name} exited during the run: ${c.tail()}`);
  }
} catch (e) {
  failed.push((e as Error).message);
} finally {
  await cleanup();
}

const backendKind = useNginx ? "nginx (one worker, four ports)" : "one Deno process on four ports";
console.log(
  `sidekick proxy benchmark${
    SMOKE ? " (smoke)" : ""
  }: wrk -t2 -c${CONNECTIONS}, ${SECONDS} s cells, ` +
    `${ROUNDS} interleaved round(s), medians; ${navigator.hardwareConcurrency} CPUs shared by ` +
    `wrk, proxy and backends; backends: ${backendKind}; deno ${Deno.version.deno}; ` +
    `${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
const header = [
  "workload",
  "proxy",
  "req/s",
  "vs direct",
  "CPU µs/req",
  "peak RSS MiB",
  "p99 ms",
  "errors",
];
const body: string[][] = [];
for (const w of [...WORKLOADS.map((w) => w.label), TLS_LABEL]) {
  const base = results.get(`direct\n${w === TLS_LABEL ? SMALL.label : w}`);
  const baseRps = base ? median(base.map((c) => c.rps)) : 0;
  for (const r of rows) {
    const cs = results.get(`${r.name}\n${w}`);
    if (!cs) continue;
    const rps = median(cs.map((c) => c.rps));
    const rss = cs.map((c) => c.rssMiB).filter((x): x is number => x !== null);
    body.push([
      w,
      r.name,
      rps.toFixed(0),
      baseRps ? (rps / baseRps).toFixed(2) : "-",
      fixed(medianOrNull(cs.map((c) => c.cpuUsPerReq)), 1),
      rss.length ? Math.max(...rss).toFixed(1) : "-",
      fixed(medianOrNull(cs.map((c) => c.p99ms)), 2),
      String(cs.reduce((a, c) => a + c.errors, 0)),
    ]);
  }
}
printTable(header, body, 2);
if (latency.size) {
  console.log(
    "\nTLS keep-alive latency: 10 sequential GET 2 B on one connection (curl, handshake " +
      "included), total ms, median",
  );
  const show = (xs: (number | string)[]) => {
    const nums = xs.filter((x): x is number => typeof x === "number");
    return nums.length === xs.length
      ? median(nums).toFixed(1)
      : String(xs.find((x) => typeof x === "string"));
  };
  printTable(
    ["proxy", "HTTP/1.1", "HTTP/2"],
    [...latency].map(([name, l]) => [name, show(l.h1), show(l.h2)]),
    1,
  );
}
console.log(
  "\nCPU: the proxy's process tree, all threads (utime+stime) per request; direct: the backend " +
    "is not charged. TLS rows' ratio is to the plain direct GET 2 B. nginx and haproxy run one " +
    "worker/thread; caddy-pN has GOMAXPROCS=N; -w2 rows run two isolates.",
);
if (failed.length) {
  for (const f of failed) console.error(`bench: FAILED: ${f}`);
  Deno.exit(1);
}
