/**
 * `deno task soak`: sidekick under a steady mixed load while its backends die and come back.
 *
 *   deno task soak [--seconds 60] [--short] [--gray] [--backends 4] [--clients 8] [--seed 1]
 *                  [--kill-every-ms 2000] [--max-rss-growth-mib 32] [--max-fd-growth 32]
 *                  [--heap-mib 64] [--allow-failures] [--sidekick path/to/main.ts]
 *                  [-- EXTRA SIDEKICK FLAGS]
 *
 * N backends run as child processes of this script (this same file with `--serve-backend`), so
 * they can be SIGKILLed and started again on the same port; sidekick runs as a child process too
 * (`main.ts --quiet`), with every backend in one site. Several client loops in this process send
 * GETs and PUTs with small bodies (idempotent, so sidekick may retry them) and a few POSTs (not
 * idempotent), and check every answer: a backend echoes the method, path and body size it got,
 * so a truncated or misrouted body counts as a failure too. Meanwhile backends are SIGKILLed and
 * restarted on a schedule drawn from `--seed` (the same seed gives the same schedule), never
 * more than half of them down at once.
 *
 * At the end it prints requests by method and outcome, sidekick's request and retry counters as
 * scraped from `/.prometheus/metrics` (`n/a` for a counter it does not export), and sidekick's
 * RSS and open file descriptors after the warm-up and at the end (its V8 heap capped by
 * `--heap-mib`, so that growth means memory held, not garbage). It exits 1 if an idempotent
 * request failed (unless `--allow-failures`) or if RSS or descriptors grew past their limits.
 * `--short` is the same in about 8 s, for the test suite.
 *
 * `--gray` replaces the kills with gray failures: one backend is frozen with SIGSTOP (its health
 * check too, so it goes DOWN only after `--health-timeout`) and resumed with SIGCONT, and another
 * answers 400 ms late for a while (SIGUSR1 toggles that), while sidekick runs with
 * `--response-timeout 1s --eject-after 2 --hedge-after 100ms` (flags after `--` override them).
 * The report's worst client latency is the measure: without those flags it is the freeze itself.
 *
 * Everything listens on 127.0.0.1, the run is bounded by a watchdog, and every child is killed at
 * the end, on failure, and on Ctrl-C.
 * @module
 */

import { parseArgs } from "node:util";
import { freePort } from "./ports.ts";

const HELP =
  `usage: deno task soak [--seconds N] [--short] [--gray] [--backends N] [--clients N] [--seed N]
                      [--kill-every-ms N] [--max-rss-growth-mib N] [--max-fd-growth N]
                      [--heap-mib N] [--allow-failures] [--sidekick path/to/main.ts]
                      [-- EXTRA SIDEKICK FLAGS]`;

const HOST = "127.0.0.1";
const SELF = new URL(import.meta.url).pathname;
const HEALTH_PATH = "/health";
/** How long a restarted backend gets to start and pass a health check before it may die again. */
const RESTART_GRACE_MS = 1_500;
/** How late a slowed backend answers (`--gray`), ms. */
const SLOW_MS = 400;
/** The flags `--gray` runs sidekick with (flags after `--` come later and win). */
const GRAY_FLAGS = ["--response-timeout", "1s", "--eject-after", "2", "--hedge-after", "100ms"];
/** The bound on one client request: a hung request must not hold the end of the run. */
const REQUEST_TIMEOUT_MS = 10_000;

const { values, positionals } = parseArgs({
  options: {
    seconds: { type: "string" },
    short: { type: "boolean", default: false },
    gray: { type: "boolean", default: false },
    backends: { type: "string", default: "4" },
    clients: { type: "string", default: "8" },
    seed: { type: "string", default: "1" },
    "kill-every-ms": { type: "string" },
    "max-rss-growth-mib": { type: "string", default: "32" },
    "max-fd-growth": { type: "string", default: "32" },
    "heap-mib": { type: "string", default: "64" },
    "allow-failures": { type: "boolean", default: false },
    sidekick: { type: "string" },
    "serve-backend": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: true,
});

function positiveInt(flag: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`soak: --${flag} must be a whole number >= ${min}, not ${JSON.stringify(v)}`);
    console.error(HELP);
    Deno.exit(2);
  }
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Backend mode: one backend process.

/**
 * A backend answers its health path with 200 and anything else with `METHOD PATH BYTES NAME`,
 * BYTES being the size of the body it received: the client checks all three.
 */
function serveBackend(port: number): void {
  const name = `:${port}`;
  // SIGUSR1 toggles a gray failure: every answer but the health check's comes 400 ms late.
  let slow = false;
  Deno.addSignalListener("SIGUSR1", () => (slow = !slow));
  Deno.serve({ hostname: HOST, port, onListen: () => console.log("listening") }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === HEALTH_PATH) return new Response(null, { status: 200 });
    const bytes = req.body ? (await req.arrayBuffer()).byteLength : 0;
    if (slow) await sleep(SLOW_MS);
    return new Response(`${req.method} ${path} ${bytes} ${name}\n`);
  });
}

// ---------------------------------------------------------------------------------------------
// Child processes

const children = new Set<Deno.ChildProcess>();

function killAll(): void {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/** Keeps the last lines of a child's output, for the error message if it misbehaves. */
function tail(stream: ReadableStream<Uint8Array>, keep: string[], onLine?: (l: string) => void) {
  return (async () => {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          keep.push(line);
          if (keep.length > 40) keep.shift();
          onLine?.(line);
        }
      }
    } catch { /* the child was killed */ }
  })();
}

interface Child {
  process: Deno.ChildProcess;
  output: string[];
  /** Resolves to the first line matching, or undefined if the child exits or time runs out. */
  line: Promise<string | undefined>;
}

function spawn(args: string[], wanted: RegExp, timeoutMs: number): Child {
  const process = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(process);
  process.status.then(() => children.delete(process));
  const output: string[] = [];
  let found: (l: string | undefined) => void;
  const line = new Promise<string | undefined>((r) => (found = r));
  const timer = setTimeout(() => found(undefined), timeoutMs);
  tail(process.stdout, output, (l) => wanted.test(l) && found(l));
  tail(process.stderr, output);
  process.status.then(() => found(undefined));
  line.then(() => clearTimeout(timer));
  return { process, output, line };
}

interface Backend {
  port: number;
  child?: Deno.ChildProcess;
}

/** Starts (or restarts) a backend on its port; false if it did not come up. */
async function startBackend(b: Backend): Promise<boolean> {
  const c = spawn(
    ["run", "--allow-net", SELF, "--serve-backend", String(b.port)],
    /^listening/,
    10_000,
  );
  if (await c.line) {
    b.child = c.process;
    return true;
  }
  try {
    c.process.kill("SIGKILL");
  } catch { /* already gone */ }
  console.error(`soak: backend :${b.port} did not start: ${c.output.join("\n")}`);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Randomness and the kill schedule

/** mulberry32: a small seeded generator, so that a seed names one run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ChaosEvent {
  atMs: number;
  kind: "kill" | "restart";
  backend: number;
}

/**
 * The whole schedule is drawn up front from the seed, not from what the processes happen to do,
 * so that a seed always gives the same kills. A backend counts as down from its kill until its
 * restart plus a grace period; at most half of them (at least one) are down at once.
 */
function chaosSchedule(
  rnd: () => number,
  backends: number,
  durationMs: number,
  killEveryMs: number,
): ChaosEvent[] {
  const maxDown = Math.max(1, Math.floor(backends / 2));
  const busyUntil = new Array<number>(backends).fill(0);
  const events: ChaosEvent[] = [];
  for (let t = killEveryMs * (0.5 + rnd()); t < durationMs; t += killEveryMs * (0.5 + rnd())) {
    const downMs = 200 + rnd() * killEveryMs;
    const alive = busyUntil.flatMap((until, i) => (until <= t ? [i] : []));
    if (backends - alive.length >= maxDown) continue;
    const i = alive[Math.floor(rnd() * alive.length)];
    events.push({ atMs: t, kind: "kill", backend: i });
    events.push({ atMs: t + downMs, kind: "restart", backend: i });
    busyUntil[i] = t + downMs + RESTART_GRACE_MS;
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

// ---------------------------------------------------------------------------------------------
// Client load

const METHODS = [
  { method: "GET", idempotent: true, weight: 0.6 },
  { method: "PUT", idempotent: true, weight: 0.3 },
  { method: "POST", idempotent: false, weight: 0.1 },
] as const;

interface MethodCount {
  requests: number;
  ok: number;
  /** Failed requests by reason (`502`, `reset`, `mismatch`…). */
  failed: Map<string, number>;
}

function failureReason(e: unknown): string {
  if (e instanceof DOMException && e.name === "TimeoutError") return "timeout";
  const text = e instanceof Error ? `${e.message} ${e.cause ?? ""}` : String(e);
  if (/reset/i.test(text)) return "reset";
  if (/closed before message completed|connection closed/i.test(text)) return "closed";
  if (/refused/i.test(text)) return "refused";
  if (/body/i.test(text)) return "body";
  return "error";
}

/** One client: requests back to back until `stopped()`. */
async function client(
  base: string,
  rnd: () => number,
  counts: Map<string, MethodCount>,
  stopped: () => boolean,
  worst: { ms: number; what: string },
): Promise<void> {
  const payload = new Uint8Array(4096).fill(0x61);
  while (!stopped()) {
    const r = rnd();
    const m = r < METHODS[0].weight
      ? METHODS[0]
      : r < METHODS[0].weight + METHODS[1].weight
      ? METHODS[1]
      : METHODS[2];
    const path = `/obj/${Math.floor(rnd() * 100)}`;
    const size = m.method === "GET" ? 0 : 64 + Math.floor(rnd() * (payload.length - 64));
    const count = counts.get(m.method)!;
    count.requests++;
    let reason: string | undefined;
    const t0 = performance.now();
    try {
      const res = await fetch(base + path, {
        method: m.method,
        body: size > 0 ? payload.slice(0, size) : undefined,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      if (res.status !== 200) reason = String(res.status);
      else if (!text.startsWith(`${m.method} ${path} ${size} `)) reason = "mismatch";
    } catch (e) {
      reason = failureReason(e);
    }
    const ms = performance.now() - t0;
    if (ms > worst.ms) Object.assign(worst, { ms, what: `${m.method} ${reason ?? "200"}` });
    if (reason === undefined) count.ok++;
    else count.failed.set(reason, (count.failed.get(reason) ?? 0) + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Process measurements

interface Sample {
  rssKiB: number;
  fds: number;
}

/** The process and its descendants (sidekick starts none today; a future one would count). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of Deno.readDirSync(`/proc/${pids[i]}/task`)) {
        const kids = Deno.readTextFileSync(`/proc/${pids[i]}/task/${task.name}/children`);
        for (const k of kids.split(/\s+/)) if (k) pids.push(Number(k));
      }
    } catch { /* gone */ }
  }
  return pids;
}

/** VmRSS and open descriptors summed over the tree; undefined once the process is gone. */
function sample(pid: number): Sample | undefined {
  let rssKiB = 0;
  let fds = 0;
  for (const p of processTree(pid)) {
    try {
      const status = Deno.readTextFileSync(`/proc/${p}/status`);
      rssKiB += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      fds += [...Deno.readDirSync(`/proc/${p}/fd`)].length;
    } catch {
      if (p === pid) return undefined; // a descendant may come and go between two reads
    }
  }
  return { rssKiB, fds };
}

/** Sums every sample of each counter family in a Prometheus exposition. */
function metricSums(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    sums.set(m[1], (sums.get(m[1]) ?? 0) + Number(m[3]));
  }
  return sums;
}

async function scrape(base: string): Promise<Map<string, number>> {
  try {
    const res = await fetch(`${base}/.prometheus/metrics`, { signal: AbortSignal.timeout(5_000) });
    return metricSums(await res.text());
  } catch {
    return new Map();
  }
}

// ---------------------------------------------------------------------------------------------
// The run

function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((cell, c) => String(cell).padEnd(widths[c])).join("  ").trimEnd())
    .join("\n");
}

/**
 * V8 grows its heap lazily while there is room: uncapped, sidekick's RSS climbs by 100 MiB or so
 * in a minute of load with nothing leaked, and levels off later than a short run lasts. With the
 * old generation capped and the young one kept small, garbage must be collected as it goes, so
 * RSS stays within a few MiB and growth means memory really held (a leak of JS objects ends in an
 * out-of-memory crash, which fails the run too). `--heap-mib 0` runs V8 with its defaults.
 */
function v8Flags(heapMiB: number): string[] {
  return heapMiB > 0 ? [`--v8-flags=--max-old-space-size=${heapMiB},--max-semi-space-size=4`] : [];
}

interface Options {
  seconds: number;
  backends: number;
  clients: number;
  seed: number;
  killEveryMs: number;
  maxRssGrowthMiB: number;
  maxFdGrowth: number;
  heapMiB: number;
  allowFailures: boolean;
  /** Gray failures (SIGSTOP, a slow backend) instead of kills. */
  gray: boolean;
  /** sidekick's entry point: this checkout's, or another build to compare. */
  main: string;
}

function options(): Options {
  const short = values.short;
  return {
    seconds: positiveInt("seconds", values.seconds ?? (short ? "8" : "60")),
    backends: positiveInt("backends", values.backends, 2),
    clients: positiveInt("clients", values.clients),
    seed: positiveInt("seed", values.seed, 0),
    killEveryMs: positiveInt("kill-every-ms", values["kill-every-ms"] ?? (short ? "1000" : "2000")),
    maxRssGrowthMiB: positiveInt("max-rss-growth-mib", values["max-rss-growth-mib"], 0),
    maxFdGrowth: positiveInt("max-fd-growth", values["max-fd-growth"], 0),
    heapMiB: positiveInt("heap-mib", values["heap-mib"], 0),
    allowFailures: values["allow-failures"],
    gray: values.gray,
    main: values.sidekick ?? new URL("../main.ts", import.meta.url).pathname,
  };
}

async function soak(o: Options): Promise<number> {
  const { seed, killEveryMs, maxRssGrowthMiB, maxFdGrowth } = o;
  const nBackends = o.backends;
  const nClients = o.clients;
  const durationMs = o.seconds * 1000;
  const warmupMs = Math.min(5_000, durationMs / 4);

  const rnd = seeded(seed);
  const schedule = o.gray ? [] : chaosSchedule(rnd, nBackends, durationMs, killEveryMs);
  const backends: Backend[] = Array.from({ length: nBackends }, () => ({ port: freePort() }));
  const started = await Promise.all(backends.map(startBackend));
  if (started.includes(false)) return 1;

  const site = backends.map((b) => `http://${HOST}:${b.port}`).join(",");
  const sidekick = spawn(
    [
      "run",
      "-A",
      ...v8Flags(o.heapMiB),
      o.main,
      "--quiet",
      "--address",
      `${HOST}:0`,
      "--health-path",
      HEALTH_PATH,
      "--health-duration",
      "1s",
      ...(o.gray ? GRAY_FLAGS : []),
      ...positionals,
      site,
    ],
    /listening on '/,
    30_000,
  );
  const listening = await sidekick.line;
  if (!listening) {
    console.error(`soak: sidekick did not start:\n${sidekick.output.join("\n")}`);
    return 1;
  }
  const base = `http://${HOST}:${/:(\d+)'/.exec(listening)![1]}`;
  const pid = sidekick.process.pid;
  const deadline = Date.now() + 10_000;
  while ((await scrape(base)).get("sidekick_backend_up") !== nBackends) {
    if (Date.now() > deadline) {
      console.error(`soak: sidekick never saw all ${nBackends} backends UP`);
      return 1;
    }
    await sleep(50);
  }

  const counts = new Map(
    METHODS.map((m) => [m.method, { requests: 0, ok: 0, failed: new Map() } as MethodCount]),
  );
  let stopping = false;
  const t0 = Date.now();
  const worst = { ms: 0, what: "" };
  const clients = Array.from(
    { length: nClients },
    (_, i) => client(base, seeded(seed * 1000 + i + 1), counts, () => stopping, worst),
  );
  // --gray: backend 0 frozen from 20 % of the run for up to 15 s, backend 1 slow from 50 to 90 %.
  const stopMs = Math.min(15_000, durationMs * 0.3);
  const grayText = `backend :${backends[0].port} frozen (SIGSTOP) for ${stopMs / 1000} s, ` +
    `backend :${backends[1].port} ${SLOW_MS} ms slower for ${(durationMs * 0.4) / 1000} s`;
  const gray = !o.gray ? Promise.resolve() : (async () => {
    const signal = (b: Backend, sig: Deno.Signal) => {
      try {
        b.child?.kill(sig);
      } catch { /* gone */ }
    };
    const at = async (ms: number) => {
      const wait = t0 + ms - Date.now();
      if (wait > 0) await sleep(wait);
    };
    await at(durationMs * 0.2);
    signal(backends[0], "SIGSTOP");
    await at(durationMs * 0.2 + stopMs);
    signal(backends[0], "SIGCONT");
    await at(durationMs * 0.5);
    signal(backends[1], "SIGUSR1");
    await at(durationMs * 0.9);
    signal(backends[1], "SIGUSR1");
  })();

  let kills = 0;
  let restarts = 0;
  const restarting: Promise<unknown>[] = [];
  const chaos = (async () => {
    for (const e of schedule) {
      if (e.atMs >= durationMs) return; // a restart due after the end: everything dies anyway
      const wait = t0 + e.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      if (stopping) return;
      const b = backends[e.backend];
      if (e.kind === "kill" && b.child) {
        b.child.kill("SIGKILL");
        b.child = undefined;
        kills++;
      } else if (e.kind === "restart" && !b.child) {
        restarting.push(startBackend(b).then((ok) => ok && restarts++));
      }
    }
  })();

  let peak: Sample = { rssKiB: 0, fds: 0 };
  const timeline: number[] = []; // RSS at each tenth of the run: a leak climbs, a warm-up levels
  let first: Sample | undefined;
  while (Date.now() - t0 < durationMs) {
    await sleep(Math.min(500, durationMs - (Date.now() - t0)));
    const s = sample(pid);
    if (!s) {
      console.error(`soak: sidekick exited:\n${sidekick.output.join("\n")}`);
      return 1;
    }
    peak = { rssKiB: Math.max(peak.rssKiB, s.rssKiB), fds: Math.max(peak.fds, s.fds) };
    if (!first && Date.now() - t0 >= warmupMs) first = s;
    while (timeline.length < Math.floor((Date.now() - t0) / (durationMs / 10))) {
      timeline.push(s.rssKiB);
    }
  }
  stopping = true;
  await Promise.all([chaos, gray, ...clients]);
  await Promise.all(restarting);
  const last = sample(pid);
  const metrics = await scrape(base);
  if (!first || !last) {
    console.error(`soak: sidekick exited:\n${sidekick.output.join("\n")}`);
    return 1;
  }

  // The report.
  const elapsed = (Date.now() - t0) / 1000;
  console.log(
    `\nsoak: ${elapsed.toFixed(1)} s, ${nBackends} backends, ${nClients} clients, seed ${seed}: ` +
      (o.gray ? `gray: ${grayText}\n` : `${kills} kills (SIGKILL), ${restarts} restarts\n`),
  );
  const rows: (string | number)[][] = [[
    "method",
    "idempotent",
    "requests",
    "ok",
    "failed",
    "why",
  ]];
  const failedBy = { idempotent: 0, other: 0 };
  let total = 0;
  for (const m of METHODS) {
    const c = counts.get(m.method)!;
    const failed = c.requests - c.ok;
    failedBy[m.idempotent ? "idempotent" : "other"] += failed;
    total += c.requests;
    const why = [...c.failed].map(([k, v]) => `${k}×${v}`).join(" ") || "-";
    rows.push([m.method, m.idempotent ? "yes" : "no", c.requests, c.ok, failed, why]);
  }
  const allFailed = failedBy.idempotent + failedBy.other;
  rows.push(["all", "-", total, total - allFailed, allFailed, "-"]);
  console.log(table(rows));
  console.log(`(${(total / elapsed).toFixed(0)} requests/s)`);
  console.log(`worst client latency: ${worst.ms.toFixed(0)} ms (${worst.what})\n`);

  const counter = (name: string) => metrics.has(name) ? metrics.get(name)! : "n/a";
  console.log(table([
    ["sidekick counter", "value"],
    ["sidekick_requests_total", counter("sidekick_requests_total")],
    ["sidekick_errors_total", counter("sidekick_errors_total")],
    ["sidekick_retries_total", counter("sidekick_retries_total")],
    ["sidekick_retry_budget_exhausted_total", counter("sidekick_retry_budget_exhausted_total")],
    ["sidekick_backend_ejections_total", counter("sidekick_backend_ejections_total")],
    ["sidekick_hedges_total", counter("sidekick_hedges_total")],
  ]));
  console.log();

  const mib = (kib: number) => (kib / 1024).toFixed(1);
  const rssGrowth = (last.rssKiB - first.rssKiB) / 1024;
  const fdGrowth = last.fds - first.fds;
  console.log(table([
    ["sidekick process", "after warm-up", "end", "peak", "growth", "limit"],
    [
      "RSS MiB",
      mib(first.rssKiB),
      mib(last.rssKiB),
      mib(peak.rssKiB),
      (rssGrowth >= 0 ? "+" : "") + rssGrowth.toFixed(1),
      maxRssGrowthMiB,
    ],
    ["open fds", first.fds, last.fds, peak.fds, (fdGrowth >= 0 ? "+" : "") + fdGrowth, maxFdGrowth],
  ]));
  console.log(`RSS MiB at each tenth of the run: ${timeline.map(mib).join(" ")}\n`);

  const problems: string[] = [];
  if (failedBy.idempotent > 0) {
    const text = `${failedBy.idempotent} idempotent requests failed`;
    if (o.allowFailures) console.log(`soak: ${text} (allowed by --allow-failures)`);
    else problems.push(text);
  }
  if (failedBy.other > 0) console.log(`soak: ${failedBy.other} POSTs failed (not retryable)`);
  if (rssGrowth > maxRssGrowthMiB) {
    problems.push(`RSS grew by ${rssGrowth.toFixed(1)} MiB (limit ${maxRssGrowthMiB})`);
  }
  if (fdGrowth > maxFdGrowth) problems.push(`open fds grew by ${fdGrowth} (limit ${maxFdGrowth})`);
  for (const p of problems) console.log(`soak: FAIL: ${p}`);
  if (problems.length === 0) console.log("soak: PASS");
  return problems.length === 0 ? 0 : 1;
}

if (values.help) {
  console.log(HELP);
} else if (values["serve-backend"] !== undefined) {
  serveBackend(positiveInt("serve-backend", values["serve-backend"]));
} else {
  // Ctrl-C or a stray hang must not leave backends or sidekick behind.
  const onSignal = () => {
    killAll();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const o = options();
  const watchdog = setTimeout(() => {
    console.error("soak: FAIL: the run overran its time bound");
    killAll();
    Deno.exit(3);
  }, (o.seconds + 60) * 1000);
  let code = 1;
  try {
    code = await soak(o);
  } finally {
    clearTimeout(watchdog);
    killAll();
  }
  Deno.exit(code);
}
