/**
 * The project's proxy benchmark: the same four backends on loopback reached directly, through a
 * bare Deno proxy (bench/bare_proxy.ts, the runtime's floor), through sidekick in several
 * configurations, through the Go sidekick it re-implements (when its binary is at hand), and
 * through nginx, HAProxy and Caddy when they are installed. Three workloads (a 2-byte GET, a 1 MiB
 * GET, a 64 KiB POST) plus a small GET over TLS, then the keep-alive latency of one connection over
 * TLS and plain TCP for bodies of 600 B, 2 KB, 20 KB and 256 KiB.
 *
 *   deno task bench [--seconds 5] [--rounds 3] [--only sidekick,bare] [--smoke]
 *                   [--go-sidekick PATH] [--latency-only] [--json FILE]
 *
 * Throughput columns: requests/s (wrk -t2 -c64), CPU µs per request of the proxy's whole process
 * tree (all threads, /proc utime+stime), each with its ratio to the floor (the bare proxy with as
 * many cores, measured in the same round; the ratio is taken per round, then the median), the
 * proxy's peak RSS during the cell, wrk's p99 latency and the count of failed requests. Rounds are
 * interleaved (every row once, then every row again, the order rotated each round) and every figure
 * is the median over rounds with its spread `[min–max]`: these machines are shared and noisy, so
 * the per-round ratios mean more than the absolute numbers, and one round means little.
 *
 * Latency: curl sends N sequential GETs on one connection (HTTP/1.1 or HTTP/2; h2load for h2c over
 * plain TCP) and the median of requests 2..N (the first pays the handshake) is the figure of a
 * round. `--latency-only` runs just that check (quick, for the TLS stall). `--json FILE` also
 * writes every round's raw figures there, to compare runs later.
 *
 * The Go sidekick rows run the binary named by `--go-sidekick`; without it, or when the file is
 * missing, they are skipped and the output says why. `go-sidekick` has GOMAXPROCS=2 (against
 * `sidekick-w2` and `caddy-p2`), `go-sidekick-p1` and `go-sidekick-tls` GOMAXPROCS=1.
 *
 * `--smoke` is a wiring check of a few seconds: one round, 1 s cells, only rows that need nothing
 * but deno, wrk (and the Go binary when present), against a Deno backend, latency over plain TCP
 * only. Every child is killed at the end, even on failure, and the temporary directory removed.
 * @module
 */

import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../tools/compile.ts";
import { fourPorts, freePort } from "./ports.ts";

const ROW_NAMES = [
  "direct",
  "bare",
  "bare-w2",
  "sidekick",
  "sidekick-trace",
  "sidekick-w2",
  "go-sidekick-p1",
  "go-sidekick",
  "nginx",
  "haproxy",
  "caddy-p1",
  "caddy-p2",
  "sidekick-tls",
  "bare-tls",
  "go-sidekick-tls",
  "sidekick-w2-tls",
];

const HELP = `usage: deno task bench [--seconds N] [--rounds N] [--connections N] [--warmup N]
                       [--only ROW[,ROW...]] [--smoke] [--sidekick path/to/main.ts]
                       [--sidekick-flags="DENO FLAGS"] [--go-sidekick PATH]
                       [--latency-requests N] [--latency-only] [--json FILE]
rows: ${ROW_NAMES.join(", ")}
(direct always runs: it is the baseline; the floors bare and bare-w2 run whenever a row needs them)`;

const REPO = new URL("..", import.meta.url).pathname;
/** Where the Go sidekick binary is looked for when `--go-sidekick` is not given. */
const DEFAULT_GO_SIDEKICK = `${REPO}../shared/anchors/go-sidekick/sidekick`;

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
    "go-sidekick": { type: "string" },
    "latency-requests": { type: "string" },
    "latency-only": { type: "boolean", default: false },
    json: { type: "string" },
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
/** Requests per keep-alive latency measurement; the first (with the handshake) is not counted. */
const LATENCY_REQUESTS = positiveInt(
  "latency-requests",
  values["latency-requests"] ?? (SMOKE ? "5" : "20"),
);
if (LATENCY_REQUESTS < 2) {
  console.error("--latency-requests must be at least 2 (the first request is not counted)");
  Deno.exit(2);
}
/** Only the keep-alive latency check: no wrk cells, no warm-up. */
const LATENCY_ONLY = values["latency-only"];
const ONLY = values.only?.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
/** sidekick's entry point: this checkout's, or another build to compare (`--sidekick PATH`). */
const SIDEKICK_MAIN = values.sidekick ? await Deno.realPath(values.sidekick) : `${REPO}main.ts`;
/**
 * Runtime flags of the sidekick rows: the ones baked into the binary (V8's heap sizing among them),
 * so the table measures what ships; `--sidekick-flags` replaces them to compare others.
 */
const SIDEKICK_FLAGS = values["sidekick-flags"] !== undefined
  ? values["sidekick-flags"].split(/\s+/).filter(Boolean)
  : RUNTIME_FLAGS.map((f) => f.flag);
/** The Go sidekick binary, and why its rows cannot run when it is not usable. */
const GO_SIDEKICK = values["go-sidekick"] ?? DEFAULT_GO_SIDEKICK;
const GO_MISSING = goMissing(GO_SIDEKICK);
/** Rows a smoke run measures: they need only deno and wrk (and the Go binary when present). */
const SMOKE_ROWS = ["direct", "bare", "sidekick", "go-sidekick-p1"];

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${flag} must be a positive integer, not ${JSON.stringify(v)}\n${HELP}`);
    Deno.exit(2);
  }
  return n;
}

function goMissing(path: string): string | null {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) return `${path} is not a file`;
    if (st.mode !== null && (st.mode & 0o111) === 0) return `${path} is not executable`;
    return null;
  } catch {
    return `no Go sidekick binary at ${path} (--go-sidekick PATH names one)`;
  }
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
const TLS_SMALL: Workload = { ...SMALL, label: "TLS GET 2 B" };

/** Response bodies of the keep-alive latency check: static files with a Content-Length. */
const LATENCY_BODIES = [
  { label: "600 B", path: "/600.bin", bytes: 600 },
  { label: "2 KB", path: "/2k.bin", bytes: 2000 },
  { label: "20 KB", path: "/20k.bin", bytes: 20000 },
  { label: "256 KiB", path: "/256k.bin", bytes: 256 * 1024 },
];
/** The latency table's lines: a proxy's plain-TCP row next to its TLS row. */
const LATENCY_PAIRS = [
  { proxy: "direct", plain: "direct", tls: "" },
  { proxy: "sidekick", plain: "sidekick", tls: "sidekick-tls" },
  { proxy: "sidekick-w2", plain: "sidekick-w2", tls: "sidekick-w2-tls" },
  { proxy: "go-sidekick", plain: "go-sidekick-p1", tls: "go-sidekick-tls" },
  { proxy: "bare", plain: "bare", tls: "bare-tls" },
];
type LatencyKind = "TCP h1" | "TCP h2c" | "TLS h1" | "TLS h2";
const LATENCY_KINDS: LatencyKind[] = ["TCP h1", "TCP h2c", "TLS h1", "TLS h2"];

interface Row {
  name: string;
  tls: boolean;
  needs: string[];
  /** Why the row cannot run here (beyond a missing command), or null. */
  missing?: string | null;
  /** The row its ratios are taken against, measured in the same round. */
  floor?: string;
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

/** The SITE grammar both sidekicks share: `http://127.0.0.1:{a...b}` expands to the four ports. */
function sidekickSite(env: BenchEnv): string {
  const p = env.backendPorts;
  return `http://127.0.0.1:{${p[0]}...${p[p.length - 1]}}`;
}

function sidekickRow(name: string, flags: string[], floor: string, tls = false): Row {
  return {
    name,
    tls,
    floor,
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

/**
 * The Go sidekick: `-q` (else a trace line per request), the same health path as ours (its
 * backends are DOWN until their first check passes, which the readiness loop waits for).
 */
function goRow(name: string, procs: number, floor: string, tls = false): Row {
  return {
    name,
    tls,
    floor,
    needs: tls ? ["openssl"] : [],
    missing: GO_MISSING,
    start(env) {
      const port = freePort();
      const args = ["-q", "--address", `127.0.0.1:${port}`, "--health-path", "/small"];
      if (tls) args.push("--cert", env.cert, "--key", env.key);
      const child = new Child(name, GO_SIDEKICK, [...args, sidekickSite(env)], {
        GOMAXPROCS: String(procs),
      });
      return Promise.resolve({ port, child });
    },
  };
}

function bareRow(name: string, workers: number, floor: string, tls = false): Row {
  return {
    name,
    tls,
    floor,
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

function caddyRow(procs: number, floor: string): Row {
  return {
    name: `caddy-p${procs}`,
    tls: false,
    floor,
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
  bareRow("bare", 1, "bare"),
  bareRow("bare-w2", 2, "bare-w2"),
  sidekickRow("sidekick", ["--workers", "1", "--quiet"], "bare"),
  // Default output: one trace line per request, written to a non-terminal stdout (/dev/null).
  sidekickRow("sidekick-trace", ["--workers", "1"], "bare"),
  sidekickRow("sidekick-w2", ["--workers", "2", "--quiet"], "bare-w2"),
  goRow("go-sidekick-p1", 1, "bare"),
  goRow("go-sidekick", 2, "bare-w2"),
  {
    name: "nginx",
    tls: false,
    floor: "bare",
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
    floor: "bare",
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
  caddyRow(1, "bare"),
  caddyRow(2, "bare-w2"),
  // The TLS floor is the bare proxy over TLS, with TCP_NODELAY on its listener as sidekick has.
  sidekickRow("sidekick-tls", ["--workers", "1", "--quiet"], "bare-tls", true),
  bareRow("bare-tls", 1, "bare-tls", true),
  goRow("go-sidekick-tls", 1, "bare-tls", true),
  // Two workers, each with its own listening socket: each must get TCP_NODELAY. No floor of its
  // own (the bare proxy's TLS row is one isolate).
  sidekickRow("sidekick-w2-tls", ["--workers", "2", "--quiet"], "", true),
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

/**
 * LATENCY_REQUESTS sequential GETs of `url` on one connection with curl: the median of the
 * per-request times in ms, leaving out the first (it pays the TCP and TLS handshakes), or why
 * there is no figure (a failed request, a second connection, another protocol than asked for).
 */
async function keepAliveMs(url: string, h2: boolean, bytes: number): Promise<number | string> {
  const args = ["-sk", h2 ? "--http2" : "--http1.1", "--max-time", "60"];
  args.push("-w", "%{time_total} %{num_connects} %{http_version} %{http_code} %{size_download}\\n");
  for (let i = 0; i < LATENCY_REQUESTS; i++) args.push("-o", "/dev/null", url);
  const out = await new Deno.Command("curl", {
    args,
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean);
  const parsed = lines.map((l) => l.split(" "));
  if (!out.success || parsed.length !== LATENCY_REQUESTS) return "failed";
  if (parsed.some((f) => f[3] !== "200" || Number(f[4]) !== bytes)) return "bad answer";
  const want = h2 ? "2" : "1.1";
  if (parsed.some((f) => f[2] !== want)) return h2 ? "no h2" : `HTTP/${parsed[0][2]}`;
  const connects = parsed.reduce((a, f) => a + Number(f[1]), 0);
  if (connects !== 1) return `${connects} conns`;
  return median(parsed.slice(1).map((f) => Number(f[0]) * 1000));
}

/**
 * The same over plain TCP with HTTP/2 (prior knowledge, h2c), with h2load: curl 7.88 fails its
 * second request on an h2c connection to `Deno.serve` ("Error in the HTTP2 framing layer").
 */
async function h2cKeepAliveMs(url: string, dir: string): Promise<number | string> {
  const log = `${dir}/h2load.log`;
  await Deno.remove(log).catch(() => {});
  const n = String(LATENCY_REQUESTS);
  const out = await new Deno.Command("h2load", {
    args: ["-n", n, "-c", "1", "-m", "1", `--log-file=${log}`, url],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (/No protocol negotiated|not supported/i.test(text)) return "no h2";
  const done = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(text);
  if (!out.success || done?.[1] !== n) return /\b0 succeeded/.test(text) ? "no h2" : "failed";
  // One line per request: start time (µs), status, duration (µs), in the order they finished.
  const lines = (await Deno.readTextFile(log).catch(() => "")).trim().split("\n");
  const rows = lines.map((l) => l.split("\t").map(Number)).sort((a, b) => a[0] - b[0]);
  if (rows.length !== LATENCY_REQUESTS || rows.some((r) => r[1] !== 200)) return "bad answer";
  return median(rows.slice(1).map((r) => r[2] / 1000));
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

/** The static files the backends serve: the 1 MiB workload and the latency bodies. */
function staticFiles(): { name: string; bytes: number }[] {
  return [
    { name: "1m.bin", bytes: 1024 * 1024 },
    ...LATENCY_BODIES.map((b) => ({ name: b.path.slice(1), bytes: b.bytes })),
  ];
}

async function writeStaticFiles(www: string): Promise<void> {
  for (const f of staticFiles()) {
    const data = new Uint8Array(f.bytes);
    for (let o = 0; o < data.length; o += 65536) {
      crypto.getRandomValues(data.subarray(o, Math.min(o + 65536, data.length)));
    }
    await Deno.writeFile(`${www}/${f.name}`, data, { mode: 0o644 });
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
const files = new Map();
for (const name of ${JSON.stringify(staticFiles().map((f) => f.name))}) {
  files.set("/" + name, Deno.readFileSync(${JSON.stringify(`${dir}/www/`)} + name));
}
for (const port of ${JSON.stringify(ports)}) {
  Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/post") { await req.arrayBuffer(); return new Response("ok"); }
    const file = files.get(path);
    return new Response(file ?? "ok");
  });
}`;
  return new Child("deno backends", Deno.execPath(), ["eval", code]);
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function nums(xs: readonly unknown[]): number[] {
  return xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
}

/** `median [min–max]` of the rounds' values, or the one value, or `-`. */
function spread(xs: number[], digits: number): string {
  if (!xs.length) return "-";
  const m = median(xs).toFixed(digits);
  if (xs.length < 2) return m;
  return `${m} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]`;
}

/** Per-round ratios a[i] / b[i] of the rounds both cells measured. */
function ratios(
  a: (Cell | undefined)[] | undefined,
  b: (Cell | undefined)[] | undefined,
  pick: (c: Cell) => number | null,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a?.length ?? 0, b?.length ?? 0); i++) {
    const x = a![i] ? pick(a![i]!) : null;
    const y = b![i] ? pick(b![i]!) : null;
    if (x !== null && y) out.push(x / y);
  }
  return out;
}

function printTable(header: string[], body: string[][], rightFrom: number): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i])).join("  ")
      .trimEnd();
  console.log(line(header));
  for (const r of body) console.log(line(r));
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/**
 * The paired figures the performance targets are stated in: each the ratio of two cells of the
 * same round, median over rounds. These, not one run's ratio, are the fair comparison.
 */
const PAIRED: {
  what: string;
  a: string;
  b: string;
  w: string;
  cpu: boolean;
  target: string;
}[] = [
  {
    what: "GET 2 B CPU/req: sidekick --quiet ÷ bare",
    a: "sidekick",
    b: "bare",
    w: SMALL.label,
    cpu: true,
    target: "≤ 1.15",
  },
  {
    what: "GET 2 B CPU/req: sidekick (traces on) ÷ bare",
    a: "sidekick-trace",
    b: "bare",
    w: SMALL.label,
    cpu: true,
    target: "≤ 1.30",
  },
  {
    what: "POST 64 KiB CPU/req: sidekick ÷ bare",
    a: "sidekick",
    b: "bare",
    w: "POST 64 KiB",
    cpu: true,
    target: "≤ 1.15",
  },
  {
    what: "GET 1 MiB req/s: sidekick ÷ bare",
    a: "sidekick",
    b: "bare",
    w: "GET 1 MiB",
    cpu: false,
    target: "≥ 0.95",
  },
  {
    what: "GET 2 B req/s: sidekick-w2 ÷ go-sidekick (GOMAXPROCS=2)",
    a: "sidekick-w2",
    b: "go-sidekick",
    w: SMALL.label,
    cpu: false,
    target: "≥ 1.00",
  },
  {
    what: "GET 2 B req/s: sidekick-w2 ÷ caddy-p2",
    a: "sidekick-w2",
    b: "caddy-p2",
    w: SMALL.label,
    cpu: false,
    target: "≥ 1.00",
  },
  {
    what: "GET 2 B req/s: sidekick-w2 ÷ sidekick",
    a: "sidekick-w2",
    b: "sidekick",
    w: SMALL.label,
    cpu: false,
    target: "",
  },
  {
    what: "TLS GET 2 B CPU/req: sidekick-tls ÷ bare-tls",
    a: "sidekick-tls",
    b: "bare-tls",
    w: TLS_SMALL.label,
    cpu: true,
    target: "",
  },
  ...WORKLOADS.flatMap((w) => [
    {
      what: `${w.label} CPU/req: sidekick ÷ go-sidekick-p1`,
      a: "sidekick",
      b: "go-sidekick-p1",
      w: w.label,
      cpu: true,
      target: "",
    },
    {
      what: `${w.label} req/s: sidekick ÷ go-sidekick-p1`,
      a: "sidekick",
      b: "go-sidekick-p1",
      w: w.label,
      cpu: false,
      target: "",
    },
  ]),
];

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

// The floors of the chosen rows run too: every ratio is taken against one measured in its round.
const chosen = new Set(
  ROWS.filter((r) => !ONLY || ONLY.includes(r.name)).flatMap((r) => [r.name, r.floor || r.name]),
);
const wanted = (name: string) =>
  name === "direct" || ((!SMOKE || SMOKE_ROWS.includes(name)) && chosen.has(name));
/** Rows that could not run here, with the reason: printed with the results. */
const skipped: string[] = [];
let rows = ROWS.filter((r) => wanted(r.name)).filter((r) => {
  const missing = r.needs.filter((c) => !has(c));
  const why = missing.length ? `${missing.join(", ")} not installed` : r.missing ?? null;
  if (why) {
    skipped.push(`${r.name}: ${why}`);
    note(`${r.name}: ${why}, row skipped`);
  }
  return !why;
});

const useNginx = !SMOKE && has("nginx");
const failed: string[] = [];
/** Cells by row and workload (`name\nlabel`), one per round, at the round's index. */
const results = new Map<string, (Cell | undefined)[]>();
/** Keep-alive latency by row, body and kind (`name\nbody\nkind`), one per round. */
const latency = new Map<string, (number | string)[]>();
const started = new Map<string, { url: string; pid: number | null }>();
const t0 = performance.now();
const load0 = loadAverage();
const hasCurl = has("curl");
if (!hasCurl) {
  skipped.push("keep-alive latency: curl not installed");
  note("curl not installed: no keep-alive latency check");
}
const hasH2load = has("h2load");
if (hasCurl && !hasH2load) {
  skipped.push(
    "keep-alive latency over h2c: h2load not installed (apt-get install nghttp2-client)",
  );
  note("h2load not installed: no h2c latency");
}

const cells = (r: Row) => LATENCY_ONLY ? [] : r.tls ? [TLS_SMALL] : WORKLOADS;

try {
  dir = await Deno.makeTempDir({ prefix: "sidekick-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers run as another user
  await Deno.mkdir(`${dir}/www`);
  await Deno.chmod(`${dir}/www`, 0o755);
  await writeStaticFiles(`${dir}/www`);
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
      // Ready means a proxied request succeeds (both sidekicks answer 502 until a check passes).
      let ok = false;
      for (let i = 0; i < 300 && !ok; i++) {
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
  // A moment for the other backends of each proxy to pass their first check.
  await sleep(500);

  if (WARMUP > 0 && !LATENCY_ONLY) {
    note(`warm-up: ${WARMUP} s per cell`);
    for (const r of rows) {
      for (const w of cells(r)) {
        await wrk(started.get(r.name)!.url + w.path, WARMUP, w.post ? postScript : null, 8);
      }
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    note(`round ${round + 1}/${ROUNDS}`);
    // Each round starts one row further on, so that no row always follows the same one.
    const k = round % rows.length;
    const order = [...rows.slice(k), ...rows.slice(0, k)];
    for (const w of [...WORKLOADS, TLS_SMALL]) {
      for (const r of order) {
        if (!cells(r).includes(w)) continue;
        const s = started.get(r.name)!;
        const cell = await measure(s.url, w, s.pid, postScript);
        const key = `${r.name}\n${w.label}`;
        const list = results.get(key) ?? [];
        list[round] = cell;
        results.set(key, list);
      }
    }
    if (!hasCurl) continue;
    for (const body of LATENCY_BODIES) {
      for (const pair of LATENCY_PAIRS) {
        for (const kind of LATENCY_KINDS) {
          const s = started.get(kind.startsWith("TCP") ? pair.plain : pair.tls);
          if (!s || (kind === "TCP h2c" && !hasH2load)) continue;
          const key = `${pair.proxy}\n${body.label}\n${kind}`;
          const ms = kind === "TCP h2c"
            ? await h2cKeepAliveMs(s.url + body.path, dir)
            : await keepAliveMs(s.url + body.path, kind === "TLS h2", body.bytes);
          latency.set(key, [...(latency.get(key) ?? []), ms]);
        }
      }
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
const load = `load average ${load0} before, ${loadAverage()} after`;
const took = `${((performance.now() - t0) / 1000).toFixed(0)} s`;
if (LATENCY_ONLY) {
  console.log(
    `sidekick keep-alive latency: ${ROUNDS} round(s); ${navigator.hardwareConcurrency} CPUs; ` +
      `backends: ${backendKind}; deno ${Deno.version.deno}; ${load}; ${took}`,
  );
} else {
  console.log(
    `sidekick proxy benchmark${SMOKE ? " (smoke)" : ""}: wrk -t2 -c${CONNECTIONS}, ` +
      `${SECONDS} s cells, ${ROUNDS} interleaved round(s); ${navigator.hardwareConcurrency} CPUs ` +
      `shared by wrk, proxy and backends; backends: ${backendKind}; deno ${Deno.version.deno}; ` +
      `${load}; ${took}`,
  );
  console.log(
    `figures: median over rounds [min–max]; ×floor: the ratio to the floor row of the same ` +
      `round (bare; bare-w2 for two-core rows; bare-tls for TLS), median over rounds\n`,
  );
}
const header = [
  "workload",
  "proxy",
  "req/s",
  "req/s ×floor",
  "CPU µs/req",
  "CPU ×floor",
  "peak RSS MiB",
  "p99 ms",
  "errors",
];
const body: string[][] = [];
for (const w of [...WORKLOADS, TLS_SMALL]) {
  for (const r of rows) {
    const cs = results.get(`${r.name}\n${w.label}`);
    if (!cs) continue;
    const floor = r.floor ? results.get(`${r.floor}\n${w.label}`) : undefined;
    const rss = nums(cs.map((c) => c?.rssMiB));
    body.push([
      w.label,
      r.name,
      spread(nums(cs.map((c) => c?.rps)), 0),
      floor ? spread(ratios(cs, floor, (c) => c.rps), 2) : "-",
      spread(nums(cs.map((c) => c?.cpuUsPerReq)), 1),
      floor ? spread(ratios(cs, floor, (c) => c.cpuUsPerReq), 2) : "-",
      rss.length ? Math.max(...rss).toFixed(1) : "-",
      spread(nums(cs.map((c) => c?.p99ms)), 2),
      String(cs.reduce((a, c) => a + (c?.errors ?? 0), 0)),
    ]);
  }
}
if (body.length) printTable(header, body, 2);

const paired = PAIRED.flatMap((p) => {
  const a = results.get(`${p.a}\n${p.w}`);
  const b = results.get(`${p.b}\n${p.w}`);
  if (!a || !b) return [];
  const rs = ratios(a, b, (c) => p.cpu ? c.cpuUsPerReq : c.rps);
  return [[p.what, p.target || "-", spread(rs, 2), rs.map((x) => x.toFixed(2)).join(" ")]];
});
if (paired.length) {
  console.log(
    "\nPaired ratios (the fair figures): each round's ratio, median over rounds [min–max]",
  );
  printTable(["measure", "target", "median [min–max]", "rounds"], paired, 2);
}

if (latency.size) {
  console.log(
    `\nKeep-alive latency, ms per request: median of requests 2–${LATENCY_REQUESTS} on one ` +
      `connection (curl; h2c: h2load), median over rounds [min–max]`,
  );
  const show = (xs: (number | string)[] | undefined) => {
    if (!xs) return "-";
    const why = xs.find((x) => typeof x === "string");
    return why !== undefined ? String(why) : spread(nums(xs), 2);
  };
  const lines: string[][] = [];
  for (const b of LATENCY_BODIES) {
    for (const p of LATENCY_PAIRS) {
      const cells = LATENCY_KINDS.map((k) => show(latency.get(`${p.proxy}\n${b.label}\n${k}`)));
      if (cells.some((c) => c !== "-")) lines.push([b.label, p.proxy, ...cells]);
    }
  }
  printTable(["body", "proxy", ...LATENCY_KINDS], lines, 2);
}
console.log(
  "\nCPU: the proxy's process tree, all threads (utime+stime) per request; direct: the backend " +
    "is not charged. Floors: bare for one-core rows, bare-w2 for -w2, -p2 and go-sidekick " +
    "(GOMAXPROCS=2), bare-tls for TLS rows (it sets TCP_NODELAY as sidekick does). nginx and haproxy " +
    "run one worker/thread; caddy-pN and go-sidekick-pN have GOMAXPROCS=N; -w2 rows run two " +
    "isolates; go-sidekick-tls GOMAXPROCS=1. Latency: TCP from the plain row (direct is the " +
    "backend itself; sidekick, sidekick-w2, go-sidekick-p1, bare), TLS from the -tls row.",
);
for (const s of skipped) console.log(`skipped: ${s}`);
if (values.json) {
  const raw = {
    deno: Deno.version.deno,
    seconds: SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    latencyRequests: LATENCY_REQUESTS,
    loadAverage: { before: load0, after: loadAverage() },
    floors: Object.fromEntries(rows.map((r) => [r.name, r.floor || null])),
    // Keys "row | workload" and "proxy | body | kind"; a round's value is null where not measured.
    cells: Object.fromEntries([...results].map(([k, v]) => [k.replaceAll("\n", " | "), v])),
    latencyMs: Object.fromEntries([...latency].map(([k, v]) => [k.replaceAll("\n", " | "), v])),
    skipped,
    failed,
  };
  await Deno.writeTextFile(values.json, JSON.stringify(raw, null, 1) + "\n");
}
if (failed.length) {
  for (const f of failed) console.error(`bench: FAILED: ${f}`);
  Deno.exit(1);
}
