/**
 * A side-by-side CPU comparison for the per-request cost of the proxies themselves, steadier than
 * taking turns: every proxy runs at once, all pinned to the same CPU, each loaded by its own wrk
 * (pinned to the other CPUs) for the same window, and the CPU each spent per request is compared
 * within the window. On a shared machine the cost of the same code drifts by 30 % over tens of
 * seconds; proxies measured in the same window on the same core drift together, so their ratio
 * holds still (two copies of the same build agree within a few percent).
 *
 *   deno task bench:pair [--seconds 3] [--windows 6] [--path /small] [--post] [--put] [--traces]
 *                        [--s3-headers] [--duties] [--sidekick NAME=path/to/main.ts ...]
 *                        [--flags "--retries 0"]
 *
 * Rows: `bare` (bench/bare_proxy.ts, the floor and the reference of every ratio), `sidekick`
 * (this checkout, `--workers 1 --quiet`, the runtime flags the binary bakes; `--traces`: the
 * default output instead, a trace line per request to stdout, here `/dev/null`) and one row per
 * `--sidekick NAME=PATH` — another checkout to compare with, e.g. a `git worktree` of main
 * before a change. Backends: four ports of one Deno server on the other CPUs (their CPU is not
 * counted), answering `/small` with 2 bytes, `/1m` with 1 MiB, and `/post` (what `--post` sends:
 * 64 KiB, as `deno task bench` does) with a chunked `ok` once the body is read, and `/put` (what
 * `--put` sends: a 64 KiB PUT, an S3 upload, whose body sidekick keeps for a retry) as MinIO
 * answers an upload, 200 with an empty body of declared length. Needs Linux, wrk
 * and taskset, and at least two CPUs. `--duties` adds a row `bare+duties`: the bare proxy doing
 * what sidekick must do per request beyond it (forwarding headers, a cancellable fetch, the
 * completion of the response; see bench/bare_proxy.ts), so that sidekick's ratio to it is the
 * cost of sidekick's own code. `--s3-headers` adds to every request the eight headers an
 * S3 SDK sends (wrk alone sends only `Host`).
 *
 * Output: each window's CPU µs per request and ratio to `bare`, then the median ratio over the
 * windows with its [min–max] (with `--duties`, also each sidekick row's ratio to `bare+duties`).
 * Use it to decide whether a change to the hot path pays; the full table (throughput, memory,
 * other proxies) is `deno task bench`.
 * @module
 */

import { parseArgs } from "node:util";
import { RUNTIME_FLAGS } from "../tools/compile.ts";
import { fourPorts, freePort } from "./ports.ts";

const REPO = new URL("..", import.meta.url).pathname;

/** One proxy under comparison. */
interface Row {
  name: string;
  port: number;
  child: Deno.ChildProcess;
}

/** Serves the backends: `/small` is 2 bytes, `/1m` 1 MiB, `/post` a chunked `ok`, else 404. */
function serveBackends(ports: number[]): void {
  const mib = new Uint8Array(1 << 20);
  const ok = new TextEncoder().encode("ok");
  for (const port of ports) {
    Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/small") return new Response("ok");
      if (path === "/1m") return new Response(mib);
      if (path === "/put") {
        await req.bytes();
        // What MinIO answers an upload with: 200 and an empty body of declared length 0.
        return new Response(null);
      }
      if (path === "/post") {
        await req.bytes();
        // A stream body: sent chunked, as nginx's echo module answers in `deno task bench`.
        return new Response(ReadableStream.from([ok]));
      }
      return new Response("not found\n", { status: 404 });
    });
  }
}

/** CPU ticks (utime + stime, all threads) of `pid` so far. */
function cpuTicks(pid: number): number {
  let ticks = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks;
}

/** Requests wrk completed against `url` in `seconds` (pinned to `cpus`; `script`: wrk's -s). */
async function wrk(
  url: string,
  seconds: number,
  connections: number,
  cpus: string,
  script?: string,
) {
  const s = script ? ["-s", script] : [];
  const out = await new Deno.Command("taskset", {
    args: ["-c", cpus, "wrk", "-t1", `-c${connections}`, `-d${seconds}s`, ...s, url],
    stdout: "piped",
    stderr: "null",
  }).output();
  const m = new TextDecoder().decode(out.stdout).match(/(\d+) requests in/);
  return m ? Number(m[1]) : 0;
}

async function waitServing(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

/**
 * What an S3 SDK sends besides `Host` with each request (`--s3-headers`): eight headers, where
 * wrk alone sends none, since the per-request cost of header handling grows with their count.
 */
const S3_HEADERS: readonly (readonly [string, string])[] = [
  ["User-Agent", "aws-sdk-js/3.700.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#22.11.0 api/s3#3.700.0"],
  ["x-amz-user-agent", "aws-sdk-js/3.700.0"],
  ["amz-sdk-invocation-id", "6c3e8b2a-4f1d-4e57-9a3b-2d8f0c1e7a95"],
  ["amz-sdk-request", "attempt=1; max=3"],
  ["x-amz-date", "20261203T120000Z"],
  ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
  [
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=minioadmin/20261203/us-east-1/s3/aws4_request, " +
    "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;host;x-amz-content-sha256;x-amz-date, " +
    "Signature=3f1b6e0c9d2a4b8e7f6a5c4d3e2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
  ],
  ["Accept", "*/*"],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "3" },
      windows: { type: "string", default: "6" },
      path: { type: "string" },
      post: { type: "boolean", default: false },
      put: { type: "boolean", default: false },
      traces: { type: "boolean", default: false },
      "s3-headers": { type: "boolean", default: false },
      duties: { type: "boolean", default: false },
      sidekick: { type: "string", multiple: true, default: [] },
      flags: { type: "string", default: "" },
    },
  });
  const seconds = Number(values.seconds);
  const windows = Number(values.windows);
  if (!(seconds > 0) || !Number.isInteger(windows) || windows < 1) {
    console.error("--seconds must be positive and --windows a positive integer");
    return 2;
  }
  const cpus = navigator.hardwareConcurrency;
  if (Deno.build.os !== "linux" || cpus < 2) {
    console.error("bench:pair needs Linux and at least two CPUs");
    return 2;
  }
  const proxyCpu = String(cpus - 1);
  const method = values.put ? "PUT" : values.post ? "POST" : "GET";
  const path = values.path ?? (values.put ? "/put" : values.post ? "/post" : "/small");
  let lua = "";
  if (method !== "GET") {
    lua += `wrk.method = "${method}"\nwrk.body = string.rep("x", 65536)\n` +
      `wrk.headers["Content-Type"] = "application/octet-stream"\n`;
  }
  if (values["s3-headers"]) {
    for (const [name, value] of S3_HEADERS) lua += `wrk.headers["${name}"] = "${value}"\n`;
  }
  let script: string | undefined;
  if (lua) {
    script = await Deno.makeTempFile({ prefix: "pair-", suffix: ".lua" });
    await Deno.writeTextFile(script, lua);
  }
  const loadCpus = cpus === 2 ? "0" : `0-${cpus - 2}`;

  const ports = fourPorts();
  const backends = new Deno.Command("taskset", {
    args: [
      "-c",
      loadCpus,
      Deno.execPath(),
      "run",
      "-A",
      import.meta.filename!,
      "--serve",
      ...ports.map(String),
    ],
    stdout: "null",
  }).spawn();
  const rows: Row[] = [];
  try {
    await waitServing(`http://127.0.0.1:${ports[0]}/small`);
    const site = `http://127.0.0.1:{${ports[0]}...${ports[3]}}`;
    const start = (name: string, args: string[]) => {
      const port = freePort();
      const full = args.map((a) => a.replaceAll("PORT", String(port)));
      const child = new Deno.Command("taskset", {
        args: ["-c", proxyCpu, Deno.execPath(), ...full],
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      rows.push({ name, port, child });
    };
    const bare = (...extra: string[]) => [
      "run",
      "-A",
      `${REPO}bench/bare_proxy.ts`,
      ...extra,
      "--port",
      "PORT",
      ...ports.map((p) => `http://127.0.0.1:${p}`),
    ];
    start("bare", bare());
    if (values.duties) start("bare+duties", bare("--duties"));
    const sidekicks = [`sidekick=${REPO}main.ts`, ...values.sidekick];
    for (const spec of sidekicks) {
      const at = spec.indexOf("=");
      if (at < 1) {
        console.error(`--sidekick NAME=PATH, not ${JSON.stringify(spec)}`);
        return 2;
      }
      start(spec.slice(0, at), [
        "run",
        "-A",
        ...RUNTIME_FLAGS.map((f) => f.flag),
        spec.slice(at + 1),
        "--address",
        "127.0.0.1:PORT",
        "--health-path",
        "/small",
        "--workers",
        "1",
        ...(values.traces ? [] : ["--quiet"]),
        ...values.flags.split(/\s+/).filter(Boolean),
        site,
      ]);
    }
    await Promise.all(rows.map((r) => waitServing(`http://127.0.0.1:${r.port}/small`)));
    const connections = Math.max(8, Math.floor(64 / rows.length));
    const url = (r: Row) => `http://127.0.0.1:${r.port}${path}`;
    await Promise.all(rows.map((r) => wrk(url(r), 2, connections, loadCpus, script))); // warm-up

    console.log(
      `bench:pair: ${rows.length} proxies on CPU ${proxyCpu}, wrk -t1 -c${connections} each on ` +
        `CPU ${loadCpus}, ${
          method === "GET" ? "GET" : `${method} 64 KiB`
        } ${path}, ${windows} windows of ${seconds} s; CPU µs per ` +
        `request (×bare in the same window)`,
    );
    const ratios = rows.map(() => [] as number[]);
    // With --duties, each row's ratio to the duties floor too: the cost of its own code.
    const floor = rows.findIndex((r) => r.name === "bare+duties");
    const overFloor = rows.map(() => [] as number[]);
    for (let w = 1; w <= windows; w++) {
      const before = rows.map((r) => cpuTicks(r.child.pid));
      const done = await Promise.all(
        rows.map((r) => wrk(url(r), seconds, connections, loadCpus, script)),
      );
      // Ticks are 10 ms: µs per request = ticks × 10,000 / requests.
      const us = rows.map((r, i) => (cpuTicks(r.child.pid) - before[i]) * 10_000 / done[i]);
      us.forEach((u, i) => ratios[i].push(u / us[0]));
      if (floor >= 0) us.forEach((u, i) => overFloor[i].push(u / us[floor]));
      console.log(
        `window ${w}  ` +
          rows.map((r, i) => `${r.name} ${us[i].toFixed(0)} (${(us[i] / us[0]).toFixed(2)})`)
            .join("  "),
      );
    }
    const summary = (xs: number[]) =>
      `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}]`;
    console.log(
      "median ×bare  " + rows.slice(1).map((r, i) => `${r.name} ${summary(ratios[i + 1])}`)
        .join("  "),
    );
    if (floor >= 0) {
      console.log(
        "median ×bare+duties  " + rows.map((r, i) => ({ r, i })).filter(({ i }) => i > floor)
          .map(({ r, i }) => `${r.name} ${summary(overFloor[i])}`).join("  "),
      );
    }
    return 0;
  } finally {
    for (const r of rows) {
      try {
        r.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    backends.kill("SIGKILL");
    await Promise.all([...rows.map((r) => r.child.status), backends.status]);
    if (script) await Deno.remove(script).catch(() => {});
  }
}

if (import.meta.main) {
  const serve = Deno.args.indexOf("--serve");
  if (serve >= 0) serveBackends(Deno.args.slice(serve + 1).map(Number));
  else Deno.exit(await main());
}
