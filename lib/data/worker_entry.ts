/**
 * The entry module of a data-plane worker isolate (`--workers N`, N > 1): it waits for its
 * {@linkcode WorkerInit}, builds its pool over the shared cells, starts a data plane on the
 * shared port and reports back to the control plane. Trace lines are formatted here, where the
 * record is, and sent in batches to the control plane's single writer, so lines never tear.
 * @module
 */

/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

import { type DataPlane, startDataPlane } from "./data_plane.ts";
import { DnsCache } from "../upstream/dns.ts";
import { type GenerationPlan, poolOf } from "../shared/generation.ts";
import type { Pool } from "../shared/pool.ts";
import type { ExchangeRecord } from "../shared/exchange_record.ts";
import { Stats } from "../shared/stats.ts";
import { formatRecord, traceFilter } from "../output/trace.ts";
import type { FromWorker, ToWorker, WorkerInit } from "./worker_protocol.ts";

/** Lines are sent when this many are waiting, or after {@linkcode LINE_FLUSH_MS}. */
const LINE_BATCH = 256;
/** How long a trace line may wait for its batch, ms. */
const LINE_FLUSH_MS = 5;

const post = (m: FromWorker) => self.postMessage(m);

function start(init: WorkerInit): void {
  const stats = new Stats({ memory: init.stats, stripe: init.stripe });
  const build = (plan: GenerationPlan): Pool => {
    stats.adopt(new Map(plan.slots));
    const id = plan.id;
    return poolOf(plan, stats, {
      hostBalance: init.hostBalance,
      slowStartMs: init.slowStartMs,
      // Only a passive ejection makes a transition here; the control plane logs it.
      onTransition: (t) => {
        const planned = plan.sites[t.site - 1]?.find((x) => x.endpoint === t.endpoint);
        if (t.state === "down" && planned) {
          const stateIndex = planned.stateIndex;
          post({ t: "ejected", generation: id, stateIndex, reason: t.reason, at: t.at });
        }
      },
    });
  };
  let pool = build(init.generation);

  let lines: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    post({ t: "lines", lines });
    lines = [];
  };
  const print = init.trace ? traceFilter(init.trace.filter) : undefined;
  const style = init.trace?.style;
  const onRecord = (r: ExchangeRecord) => {
    stats.observe(r);
    if (!print?.(r)) return;
    lines.push(formatRecord(r, style!));
    if (lines.length >= LINE_BATCH) flush();
    else timer ??= setTimeout(flush, LINE_FLUSH_MS);
  };

  let nextId = 0;
  const scrapes = new Map<number, (m: Extract<ToWorker, { t: "metrics" }>) => void>();
  const metrics = (req: Request): Promise<Response> => {
    const id = nextId++;
    return new Promise((resolve) => {
      scrapes.set(id, (m) => {
        scrapes.delete(id);
        resolve(new Response(m.body, { status: m.status, headers: m.headers }));
      });
      post({ t: "metrics", id, acceptEncoding: req.headers.get("accept-encoding") ?? "" });
    });
  };

  const dns = new DnsCache({ ttlMs: init.dnsTtlMs });
  dns.start();
  let plane: DataPlane | undefined;
  self.onmessage = async (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.t) {
      case "generation":
        pool = build(m.plan);
        plane?.addServerNames(new Map(m.plan.serverNames));
        break;
      case "certificate": {
        const swapped = plane?.swapCertificate(m.pair);
        if (swapped && !swapped.ok) post({ t: "error", text: swapped.error });
        break;
      }
      case "metrics":
        scrapes.get(m.id)?.(m);
        break;
      case "stop":
        await plane?.stop(m.drainTimeoutMs);
        dns.stop();
        flush();
        post({ t: "stopped" });
        break;
    }
  };
  startDataPlane(init, { shared: true, dns }, {
    pool: () => pool,
    onRecord,
    onEject: () => {}, // reported through onTransition above
    metrics,
    onError: (text) => post({ t: "error", text }),
  }).then((p) => {
    plane = p;
    plane.addServerNames(new Map(init.generation.serverNames));
    const { hostname, port } = p.addr;
    post({ t: "listening", hostname, port, noDelayError: p.noDelayError });
  }, (e) => {
    dns.stop();
    post({
      t: "failed",
      name: e instanceof Error ? e.name : "Error",
      message: e instanceof Error ? e.message : String(e),
    });
  });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  if (e.data.t === "init") start(e.data);
};
