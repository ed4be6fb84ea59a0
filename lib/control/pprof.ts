/**
 * `--pprof ADDR` (V8 profiles, where the Go sidekick serves Go's pprof): a separate plain-HTTP
 * listener serving V8 profiles of this process through `node:inspector`:
 *
 * - `GET /.pprof/profile?seconds=N` (default 30, at most 3600): a CPU profile sampled for N
 *   seconds, as `.cpuprofile` JSON (Chrome DevTools → Performance → Load profile, or
 *   VS Code, or speedscope). One at a time: a second concurrent request gets 409.
 * - `GET /.pprof/heap`: a heap snapshot, streamed as `.heapsnapshot` JSON (Chrome DevTools →
 *   Memory → Load). Taking it pauses the process for a moment.
 * - `GET /.pprof/`: a short index.
 *
 * Needs the `sys` permission for `inspector` (`--allow-sys`); no TLS, no authentication: bind it
 * to loopback.
 *
 * @example
 * ```ts
 * import { startPprof } from "./pprof.ts";
 * const pprof = await startPprof({ hostname: "127.0.0.1", port: 0 });
 * console.log(`${pprof.url}/.pprof/profile?seconds=5`);
 * await pprof.stop();
 * ```
 * @module
 */

import { Session } from "node:inspector/promises";
import { type ListenAddress, reachableHostPort } from "../config/address.ts";

/** Upper bound of `seconds` for a CPU profile. */
export const MAX_PROFILE_SECONDS = 3600;

/** A running profiling listener. */
export interface PprofServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** `http://host:port`. */
  readonly url: string;
  /** Closes the listener (a profile in progress is cut short). */
  stop(): Promise<void>;
}

/** Whether this process may open an inspector session (never prompts). */
export function inspectorAllowed(): boolean {
  try {
    // "inspector" is missing from Deno's descriptor types but is what `Session.connect` checks.
    const descriptor = { name: "sys", kind: "inspector" } as unknown as Deno.PermissionDescriptor;
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

const INDEX = `sidekick profiling (V8)

/.pprof/profile?seconds=N   CPU profile over N seconds (default 30), .cpuprofile JSON:
                            open in Chrome DevTools (Performance > Load profile) or speedscope
/.pprof/heap                heap snapshot, .heapsnapshot JSON:
                            open in Chrome DevTools (Memory > Load)`;

/** The request handler of the profiling listener; `signal` aborts a profile in progress. */
export function createPprofHandler(signal?: AbortSignal): (req: Request) => Promise<Response> {
  let profiling = false;

  const cpuProfile = async (req: Request, seconds: number): Promise<Response> => {
    if (profiling) return text(409, "a CPU profile is already being taken; try again later");
    profiling = true;
    const session = new Session();
    try {
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.start");
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          req.signal.removeEventListener("abort", done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, seconds * 1000);
        req.signal.addEventListener("abort", done);
        signal?.addEventListener("abort", done);
      });
      const { profile } = await session.post("Profiler.stop");
      await session.post("Profiler.disable");
      return new Response(JSON.stringify(profile), {
        headers: {
          "content-type": "application/json",
          "content-disposition": `attachment; filename="sidekick-${stamp()}.cpuprofile"`,
        },
      });
    } catch (e) {
      return text(500, `could not take a CPU profile: ${e instanceof Error ? e.message : e}`);
    } finally {
      profiling = false;
      try {
        session.disconnect();
      } catch { /* already closed */ }
    }
  };

  const heapSnapshot = (): Response => {
    const session = new Session();
    try {
      session.connect();
    } catch (e) {
      return text(500, `could not take a heap snapshot: ${e instanceof Error ? e.message : e}`);
    }
    const encoder = new TextEncoder();
    const close = () => {
      try {
        session.disconnect();
      } catch { /* already closed */ }
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        session.on("HeapProfiler.addHeapSnapshotChunk", (m) => {
          controller.enqueue(encoder.encode(m.params.chunk));
        });
        session.post("HeapProfiler.takeHeapSnapshot", { reportProgress: false }).then(
          () => {
            close();
            controller.close();
          },
          (e) => {
            close();
            controller.error(e);
          },
        );
      },
      cancel: close,
    });
    return new Response(body, {
      headers: {
        "content-type": "application/json",
        "content-disposition": `attachment; filename="sidekick-${stamp()}.heapsnapshot"`,
      },
    });
  };

  return (req) => {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/.pprof":
      case "/.pprof/":
        return Promise.resolve(text(200, INDEX));
      case "/.pprof/profile": {
        const raw = url.searchParams.get("seconds") ?? "30";
        const seconds = Number(raw);
        if (!/^\d+$/.test(raw) || seconds < 1 || seconds > MAX_PROFILE_SECONDS) {
          return Promise.resolve(
            text(400, `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}`),
          );
        }
        return cpuProfile(req, seconds);
      }
      case "/.pprof/heap":
        return Promise.resolve(heapSnapshot());
      default:
        return Promise.resolve(text(404, "not found; see /.pprof/"));
    }
  };
}

/** Binds the profiling listener (plain HTTP); rejects if the address cannot be bound. */
export function startPprof(address: ListenAddress): Promise<PprofServer> {
  const abort = new AbortController();
  const handler = createPprofHandler(abort.signal);
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: address.hostname,
        port: address.port,
        signal: abort.signal,
        onListen: (a) => {
          resolve({
            addr: a,
            url: `http://${reachableHostPort(a)}`,
            stop: async () => {
              abort.abort();
              await server.finished;
            },
          });
        },
        onError: (e) => text(500, `internal error: ${e instanceof Error ? e.message : e}`),
      }, handler);
    } catch (e) {
      reject(e);
    }
  });
}
