/**
 * `deno task demo` serves before it speaks: the `curl` commands it prints answer the moment they
 * are printed, and Ctrl-C stops sidekick and every backend with it. Run without a terminal, as a
 * script or CI would, so the demo prints lines instead of its live table.
 * @module
 */

import assert from "node:assert/strict";

const REPO = new URL("..", import.meta.url).pathname;

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch (e) {
    return e instanceof Deno.errors.ConnectionRefused;
  }
}

/** `deno task demo`'s permissions. */
const DEMO = ["run", "--allow-net", "--allow-read", "--allow-env", "--allow-sys", "--allow-ffi"];

/** Runs the demo with `args`; the curl URL it prints answers at once, SIGINT stops it all. */
async function demoServes(args: string[]): Promise<URL> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...DEMO, "demo.ts", ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string | undefined> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    lines.push(line);
    return line;
  };

  let url: string | undefined;
  let backendPort: number | undefined;
  for (let line = await nextLine(); line !== undefined && !url; line = await nextLine()) {
    backendPort ??= Number(/backend-1=:(\d+)/.exec(line)?.[1]) || undefined;
    url = /curl (http:\/\/127\.0\.0\.1:\d+\/hello)/.exec(line)?.[1];
  }
  if (!url) assert.fail(`no curl line\n${lines.join("\n")}\n${await stderr}`);
  assert.ok(backendPort, lines.join("\n"));

  // No waiting of any kind: the line above is the promise that this works now.
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^hello from backend-[123] \(GET \/hello\)/);

  child.kill("SIGINT");
  while (await nextLine() !== undefined) { /* drain until the demo exits */ }
  const status = await child.status;
  assert.equal(status.code, 0, `${lines.join("\n")}\n${await stderr}`); // exited: no wait
  assert.ok(lines.some((l) => /^demo: stopped \(demo client: \d+ requests, \d+ failed\)$/.test(l)));
  assert.ok(await refused(Number(new URL(url).port)), "sidekick still listening");
  assert.ok(await refused(backendPort), "backend-1 still listening");
  return new URL(url);
}

Deno.test("demo: the printed curl URL answers 200 at once; SIGINT stops everything", async () => {
  await demoServes([]);
});

Deno.test("demo --port 0: every listener on a free port the kernel picks", async () => {
  const url = await demoServes(["--port", "0"]);
  assert.notEqual(url.port, "8080");
});

Deno.test("demo --port: a bad value is one line and exit status 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...DEMO, "demo.ts", "--port", "http"],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(
    new TextDecoder().decode(out.stderr),
    'demo: --port: invalid value "http"; expected a port number in 0..65530 ' +
      "(0: free ports for everything)\n",
  );
});
