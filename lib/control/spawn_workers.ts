/**
 * The control plane's side of the data-plane workers: spawns N worker isolates running
 * `data/worker_entry.ts` on one port, and turns their messages into calls (trace lines to the writer,
 * passive ejections to the log, scrapes to the metrics handler). The port is probed free first,
 * because listeners that share it with `SO_REUSEPORT` would otherwise silently share it with
 * another process too.
 * @module
 */

import { ok } from "../shared/result.ts";
import type { FromWorker, ToWorker, WorkerInit } from "../data/worker_protocol.ts";
import type { PlaneHandle } from "./plane_handle.ts";

/** What the workers report to. */
export interface WorkerHooks {
  /** A batch of whole trace lines. */
  lines(lines: string[]): void;
  /** A worker marked a backend DOWN. */
  ejected(generation: number, stateIndex: number, reason: string, at: number): void;
  /** Answers a scrape a worker received. */
  metrics(req: Request): Response | Promise<Response>;
  /** Error lines. */
  onError(text: string): void;
}

/** The module every data-plane worker runs. */
export const WORKER_MODULE: URL = new URL("../data/worker_entry.ts", import.meta.url);

/**
 * Starts `count` workers on `init`'s address (port 0: one the kernel picks, probed here);
 * resolves when all listen, rejects (terminating them all) with the first bind error.
 */
export async function startWorkerPlanes(
  count: number,
  init: Omit<WorkerInit, "t" | "stripe">,
  hooks: WorkerHooks,
): Promise<PlaneHandle[]> {
  const probe = Deno.listen({ hostname: init.hostname, port: init.port, transport: "tcp" });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const started = Array.from({ length: count }, (_, i) => spawn(i + 1, { ...init, port }, hooks));
  const outcomes = await Promise.allSettled(started.map((s) => s.listening));
  const failure = outcomes.find((o) => o.status === "rejected");
  if (failure) {
    for (const s of started) s.worker.terminate();
    throw (failure as PromiseRejectedResult).reason;
  }
  return started.map((s) => s.handle);
}

function spawn(
  stripe: number,
  init: Omit<WorkerInit, "t" | "stripe">,
  hooks: WorkerHooks,
): { worker: Worker; listening: Promise<void>; handle: PlaneHandle } {
  const worker = new Worker(WORKER_MODULE.href, {
    type: "module",
    name: `sidekick-data-${stripe}`,
  });
  const send = (m: ToWorker) => worker.postMessage(m);
  let addr: Deno.NetAddr = { transport: "tcp", hostname: init.hostname, port: init.port };
  let noDelayError: string | undefined;
  let onListening!: () => void;
  let onFailed!: (e: Error) => void;
  const listening = new Promise<void>((resolve, reject) => {
    onListening = resolve;
    onFailed = reject;
  });
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const ended = () => {
    worker.terminate();
    resolveFinished();
  };
  worker.onmessage = async (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    switch (m.t) {
      case "listening":
        addr = { transport: "tcp", hostname: m.hostname, port: m.port };
        noDelayError = m.noDelayError;
        onListening();
        break;
      case "failed": {
        const error = new Error(m.message);
        error.name = m.name;
        onFailed(error);
        break;
      }
      case "lines":
        hooks.lines(m.lines);
        break;
      case "ejected":
        hooks.ejected(m.generation, m.stateIndex, m.reason, m.at);
        break;
      case "metrics": {
        const res = await hooks.metrics(
          new Request("http://sidekick/.prometheus/metrics", {
            headers: { "accept-encoding": m.acceptEncoding },
          }),
        );
        const body = new Uint8Array(await res.arrayBuffer());
        send({ t: "metrics", id: m.id, status: res.status, headers: [...res.headers], body });
        break;
      }
      case "error":
        hooks.onError(m.text);
        break;
      case "stopped":
        ended();
        break;
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    hooks.onError(`data-plane worker ${stripe} failed: ${e.message}`);
    onFailed(new Error(e.message));
    ended();
  };
  send({ t: "init", stripe, ...init });
  const handle: PlaneHandle = {
    get addr() {
      return addr;
    },
    get noDelayError() {
      return noDelayError;
    },
    finished,
    swapCertificate(pair) {
      send({ t: "certificate", pair });
      return ok(undefined);
    },
    generation: (plan) => send({ t: "generation", plan }),
    stop(drainTimeoutMs) {
      send({ t: "stop", drainTimeoutMs });
      return finished;
    },
  };
  return { worker, listening, handle };
}
