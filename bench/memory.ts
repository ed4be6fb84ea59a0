/**
 * Peak memory against CPU per request, for runtime flags and environment that could be baked into
 * the binary. Every variant is one way of starting a proxy (extra `deno run` flags, environment,
 * sidekick options); each round starts every variant afresh, in a rotated order, loads it with
 * wrk and reports, as medians over the rounds: idle RSS, peak RSS (VmHWM over the process's whole
 * life, load included), requests/s, CPU µs per request (the process's utime+stime over the
 * measured window) and wrk's p99. Ratios are to the first variant, overall and paired by round, so
 * a shared, noisy machine still compares like with like.
 *
 *   deno run -A bench/memory.ts [--rounds 3] [--seconds 4] [--warmup 1] [--workers 1]
 *     [--connections 64] [--workload small|1m|post|put] [--sidekick path/to/main.ts] [--bare]
 *     [--probe] [--gc-trace] [--variant 'NAME=FLAG;FLAG;ENV=VALUE' ...]
 *
 * A variant's text after `=` is a `;`-separated list: items like `MALLOC_ARENA_MAX=2` (a name,
 * then `=`) are environment variables, the rest deno flags (`--v8-flags=--max-semi-space-size=4`);
 * a NAME starting with `bare` runs bench/bare_proxy.ts instead of sidekick. Without `--variant`, a
 * built-in list runs: no V8 flags, the ones baked into the binary (tools/compile.ts), and two
 * other young-generation sizes. `--bare` adds bench/bare_proxy.ts with no flags as a row.
 * `--probe` runs sidekick (main isolate only) under bench/memory_probe.ts, which prints the V8
 * heap spaces at their largest; use it with `--workers 1`. `--gc-trace` adds V8's
 * `--trace-gc-nvp` and reports, per request, the scavenger's copied bytes (its work, which does not
 * depend on how busy the machine is), scavenges and main-thread GC pauses.
 *
 * Backends are four nginx servers on loopback (`/small` answers `ok`, `/1m.bin` is 1 MiB). Every
 * child is killed at the end, and on SIGINT or SIGTERM.
 * @module
 */

import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../tools/compile.ts";
import { fourPorts, freePort } from "./ports.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "4" },
    warmup: { type: "string", default: "1" },
    workers: { type: "string", default: "1" },
    connections: { type: "string", default: "64" },
    workload: { type: "string", default: "small" },
    sidekick: { type: "string" },
    variant: { type: "string", multiple: true },
    bare: { type: "boolean", default: false },
    probe: { type: "boolean", default: false },
    "gc-trace": { type: "boolean", default: false },
  },
});

const REPO = new URL("..", import.meta.url).pathname;
const SIDEKICK = values.sidekick ? await Deno.realPath(values.sidekick) : `${REPO}main.ts`;
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const CONNECTIONS = Number(values.connections);
/**
 * `small`: GET of 2 bytes; `1m`: GET of 1 MiB; `post`: POST of 64 KiB answered with 2 bytes; `put`:
 * the same as a PUT (an S3 upload: sidekick keeps its body in memory for a retry).
 */
const WORKLOAD = values.workload;
if (!["small", "1m", "post", "put"].includes(WORKLOAD)) {
  console.error(`--workload is small, 1m, post or put, not ${WORKLOAD}`);
  Deno.exit(2);
}
const PATH = WORKLOAD === "1m" ? "/1m.bin" : "/small";
const WORKERS = values.workers;

interface Variant {
  name: string;
  flags: string[];
  env: Record<string, string>;
  bare?: boolean;
}

/** `NAME=item;item`: items like `MALLOC_ARENA_MAX=2` are environment, the others deno flags. */
function parseVariant(spec: string): Variant {
  const i = spec.indexOf("=");
  const name = i < 0 ? spec : spec.slice(0, i);
  const v: Variant = { name, flags: [], env: {}, bare: name.startsWith("bare") };
  for (const item of (i < 0 ? "" : spec.slice(i + 1)).split(";").filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(item);
    if (m) v.env[m[1]] = m[2];
    else v.flags.push(item);
  }
  return v;
}

/** The V8 flags baked into the binary, as one `--v8-flags=` argument (or none). */
const BAKED_V8 = RUNTIME_FLAGS.map((f) => f.flag).filter((f) => f.startsWith("--v8-flags="));
const CANDIDATES = [
  "none=",
  `baked=${BAKED_V8.join(";")}`,
  "semi4=--v8-flags=--max-semi-space-size=4,--heap-growing-percent=100",
  "semi16=--v8-flags=--max-semi-space-size=16,--heap-growing-percent=100",
];
const variants = (values.variant ?? CANDIDATES).map(parseVariant);
if (values.bare) variants.push({ name: "bare", flags: [], env: {}, bare: true });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = 100;

function status(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(
      Deno.readTextFileSync(`/proc/${pid}/status`),
    );
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

async function stop(p: Deno.ChildProcess): Promise<void> {
  try {
    p.kill("SIGTERM");
  } catch { /* gone */ }
  const done = await Promise.race([p.status.then(() => true), sleep(3000).then(() => false)]);
  if (!done) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
    await p.status;
  }
}

/** wrk's count of requests and its 99th percentile latency in ms. */
async function wrk(
  url: string,
  seconds: number,
  conns: number,
): Promise<{ requests: number; p99: number }> {
  const post = WORKLOAD === "post" || WORKLOAD === "put" ? ["-s", `${dir}/${WORKLOAD}.lua`] : [];
  const out = await new Deno.Command("wrk", {
    args: [
      "-t2",
      `-c${conns}`,
      `-d${seconds}s`,
      "--timeout",
      "5s",
      "--latency",
      ...post,
      url + PATH,
    ],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout((seconds + 20) * 1000),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(text);
  const scale = p99?.[2] === "us" ? 1e-3 : p99?.[2] === "s" ? 1e3 : 1;
  return {
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    p99: p99 ? Number(p99[1]) * scale : NaN,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Sample {
  idle: number;
  peak: number;
  rps: number;
  p99: number;
  cpuUs: number;
  probe?: string;
  /** Largest committed V8 heap and new space, MiB (with `--probe`). */
  heap?: number;
  newSpace?: number;
  /** Per request in the measured window, from `--trace-gc-nvp` (with `--gc-trace`). */
  gc?: GcCost;
}

/** What the garbage collector did per request. */
interface GcCost {
  /** Main-thread pause, µs. */
  pauseUs: number;
  /** Bytes the scavenger copied within the young generation or promoted to the old one. */
  copiedBytes: number;
  /** Scavenges per thousand requests. */
  scavenges: number;
}

/**
 * The variant's deno flags with `--trace-gc-nvp` added to its V8 flags: one `--v8-flags` list,
 * since a second one would replace the first.
 */
function withTraceGc(flags: string[]): string[] {
  const i = flags.findIndex((f) => f.startsWith("--v8-flags="));
  if (i < 0) return [...flags, "--v8-flags=--trace-gc-nvp"];
  return flags.map((f, j) => j === i ? `${f},--trace-gc-nvp` : f);
}

/**
 * Sums `--trace-gc-nvp` records. Copied bytes are the scavenger's work and do not depend on how
 * busy the machine is; pause times stretch when the machine is shared, so read them as a check.
 */
function gcCost(text: string, requests: number): GcCost {
  let pause = 0, copied = 0, scavenges = 0;
  for (const m of text.matchAll(/GC: (\{.*\})/g)) {
    const r = JSON.parse(m[1]);
    pause += Number(r.pause ?? 0);
    if (r.gc === "s") {
      scavenges++;
      copied += Number(r.new_space_survived ?? 0) + Number(r.promoted ?? 0);
    }
  }
  return {
    pauseUs: pause * 1000 / requests,
    copiedBytes: copied / requests,
    scavenges: scavenges * 1000 / requests,
  };
}

const dir = await Deno.makeTempDir({ prefix: "sidekick-mem-" });
await Deno.chmod(dir, 0o755);
const ports = fourPorts();
await Deno.mkdir(`${dir}/www`, { mode: 0o755 });
await Deno.chmod(`${dir}/www`, 0o755);
await Deno.writeFile(`${dir}/www/1m.bin`, new Uint8Array(1 << 20).fill(120), { mode: 0o644 });
for (const method of ["POST", "PUT"]) {
  await Deno.writeTextFile(
    `${dir}/${method.toLowerCase()}.lua`,
    `wrk.method = "${method}"\nwrk.body = string.rep("x", 65536)\n`,
  );
}
// nginx reads a POST's body (to discard it) before the connection takes the next request.
const servers = ports.map((p) =>
  `server { listen 127.0.0.1:${p}; root ${dir}/www; client_body_buffer_size 128k;
    location = /small { return 200 "ok"; }
    location / { } }`
).join("\n");
const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
  .map((k) => `${k}_temp_path ${dir}/${k};`).join(" ");
await Deno.writeTextFile(
  `${dir}/nginx.conf`,
  `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; ${temps}
${servers} }`,
);
const nginx = new Deno.Command("nginx", {
  args: ["-c", `${dir}/nginx.conf`, "-p", dir],
  stdout: "null",
  stderr: "null",
}).spawn();
const results = new Map<string, Sample[]>();
/** Children to kill if this script is interrupted. */
const live = new Set<Deno.ChildProcess>([nginx]);
const onSignal = () => {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }
  Deno.removeSync(dir, { recursive: true });
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

async function one(v: Variant): Promise<Sample> {
  const port = freePort();
  const site = `http://127.0.0.1:{${ports[0]}...${ports[3]}}`;
  const probeOut = `${dir}/probe-${v.name}.txt`;
  const entry = v.bare
    ? [`${REPO}bench/bare_proxy.ts`, "--port", String(port), "--workers", WORKERS]
    : values.probe
    ? [`${REPO}bench/memory_probe.ts`, SIDEKICK]
    : [SIDEKICK];
  const args = v.bare
    ? [...entry, ...ports.map((p) => `http://127.0.0.1:${p}`)]
    : [...entry, "--quiet", "--workers", WORKERS, "--health-path", "/small"]
      .concat(["--address", `127.0.0.1:${port}`, site]);
  const gcLog = `${dir}/gc-${v.name}.txt`;
  const traceGc = values["gc-trace"];
  const flags = traceGc ? withTraceGc(v.flags) : v.flags;
  const command = [Deno.execPath(), "run", "-A", "--unstable-net", ...flags, ...args]
    .map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  // Through sh so that the trace goes straight to a file, with nothing of ours in between.
  const proc = new Deno.Command("sh", {
    args: ["-c", `exec ${command} >${traceGc ? gcLog : "/dev/null"} 2>/dev/null`],
    env: { ...v.env, PROBE_OUT: probeOut },
    cwd: REPO,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  live.add(proc);
  try {
    let ok = false;
    for (let i = 0; i < 300 && !ok; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/small`).catch(() => null);
      await r?.body?.cancel();
      ok = r?.status === 200;
      if (!ok) await sleep(50);
    }
    if (!ok) throw new Error(`${v.name} never answered 200`);
    await sleep(500);
    const idle = status(proc.pid, "VmRSS");
    if (WARMUP > 0) await wrk(`http://127.0.0.1:${port}`, WARMUP, CONNECTIONS);
    const gc0 = traceGc ? (await Deno.stat(gcLog)).size : 0;
    const cpu0 = cpuSeconds(proc.pid);
    const t0 = performance.now();
    const { requests, p99 } = await wrk(`http://127.0.0.1:${port}`, SECONDS, CONNECTIONS);
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(proc.pid) - cpu0;
    const peak = status(proc.pid, "VmHWM");
    const sample: Sample = {
      idle,
      peak,
      rps: requests / elapsed,
      p99,
      cpuUs: requests ? cpu * 1e6 / requests : NaN,
    };
    if (traceGc) {
      const bytes = await Deno.readFile(gcLog);
      if (requests) sample.gc = gcCost(new TextDecoder().decode(bytes.subarray(gc0)), requests);
    }
    if (values.probe && !v.bare) {
      await sleep(300);
      sample.probe = await Deno.readTextFile(probeOut).catch(() => "");
      sample.heap = Number(/heap ([\d.]+)/.exec(sample.probe)?.[1] ?? NaN);
      sample.newSpace = Number(/new ([\d.]+)/.exec(sample.probe)?.[1] ?? NaN);
    }
    return sample;
  } finally {
    await stop(proc);
    live.delete(proc);
  }
}

try {
  for (let i = 0; i < 50; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: ports[3] })).close();
      break;
    } catch {
      await sleep(50);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) {
      const s = await one(v);
      results.set(v.name, [...(results.get(v.name) ?? []), s]);
      console.error(
        `round ${round + 1} ${v.name}: idle ${s.idle.toFixed(1)} peak ${s.peak.toFixed(1)} MiB, ` +
          `${s.rps.toFixed(0)} req/s, ${s.cpuUs.toFixed(1)} µs/req` +
          (s.gc === undefined
            ? ""
            : `, GC: ${s.gc.pauseUs.toFixed(1)} µs, ${
              s.gc.copiedBytes.toFixed(0)
            } B copied per req, ` +
              `${s.gc.scavenges.toFixed(2)} scavenges/1k req`),
      );
      if (s.probe) console.error(`  ${s.probe.trim()}`);
    }
  }
} finally {
  await stop(nginx);
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

console.log(
  `workers ${WORKERS}, wrk -t2 -c${CONNECTIONS} ${SECONDS} s after ${WARMUP} s warm-up, ` +
    `${ROUNDS} rounds, medians; ratios to ${variants[0].name}`,
);
console.log(
  "variant            idle MiB  peak MiB  peak×   req/s  rps×  µs/req  cpu×  cpu× paired  p99 ms" +
    (values.probe ? "  heap MiB  new MiB" : "") +
    (values["gc-trace"] ? "  GC µs/req  copied B/req  scav/1k" : ""),
);
const base = results.get(variants[0].name)!;
const b = {
  peak: median(base.map((s) => s.peak)),
  rps: median(base.map((s) => s.rps)),
  cpu: median(base.map((s) => s.cpuUs)),
};
for (const v of variants) {
  const ss = results.get(v.name)!;
  const peak = median(ss.map((s) => s.peak));
  const rps = median(ss.map((s) => s.rps));
  const cpu = median(ss.map((s) => s.cpuUs));
  console.log(
    [
      v.name.padEnd(17),
      median(ss.map((s) => s.idle)).toFixed(1).padStart(9),
      peak.toFixed(1).padStart(9),
      (peak / b.peak).toFixed(2).padStart(6),
      rps.toFixed(0).padStart(7),
      (rps / b.rps).toFixed(2).padStart(5),
      cpu.toFixed(1).padStart(7),
      (cpu / b.cpu).toFixed(2).padStart(5),
      // The same round's ratio, then the median over rounds: each round's runs are close in time,
      // so a burst of load from elsewhere moves both sides of the ratio.
      median(ss.map((s, i) => s.cpuUs / base[i].cpuUs)).toFixed(2).padStart(12),
      median(ss.map((s) => s.p99)).toFixed(1).padStart(7),
      ...(values.probe
        ? [
          median(ss.map((s) => s.heap ?? NaN)).toFixed(1).padStart(9),
          median(ss.map((s) => s.newSpace ?? NaN)).toFixed(1).padStart(8),
        ]
        : []),
      ...(values["gc-trace"]
        ? [
          median(ss.map((s) => s.gc?.pauseUs ?? NaN)).toFixed(1).padStart(10),
          median(ss.map((s) => s.gc?.copiedBytes ?? NaN)).toFixed(0).padStart(13),
          median(ss.map((s) => s.gc?.scavenges ?? NaN)).toFixed(2).padStart(8),
        ]
        : []),
    ].join(" "),
  );
}
