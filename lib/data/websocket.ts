/**
 * WebSocket proxying end to end (a 101 answer never marks a backend down, as it did in the Go sidekick). The backend
 * connection is opened first, with the client's headers and subprotocols; only when it is open is
 * the client upgraded, with the protocol the backend chose. Messages are then relayed both ways,
 * and a close on either side closes the other.
 * @module
 */

import type { Backend } from "../shared/backend.ts";
import { badGateway } from "./error_document.ts";
import { upstreamRequestHeaders } from "./headers.ts";
import type { Target } from "./proxy.ts";

/** Headers the WebSocket handshake owns; the client library sets its own. */
const HANDSHAKE = [
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "sec-websocket-accept",
];

/** What the WebSocket relay needs. */
export interface WebSocketContext {
  /** The client used for upstream connections (keeps the client's Host). */
  client?: Deno.HttpClient;
  /** This machine's non-loopback IP (for `X-Forwarded-For` of loopback clients). */
  publicIp: string;
  /** How long to wait for the backend's handshake, ms. */
  connectTimeoutMs?: number;
}

/** A close code that may be sent in a close frame (1005/1006/1015 may not). */
function sendableCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

function backendUrl(backend: Backend, target: Target): string {
  const origin = backend.origin.replace(/^http/, "ws");
  return origin + target.path + (target.rawQuery ? "?" + target.rawQuery : "");
}

/** Relays one WebSocket session between the client and `backend`. */
export async function proxyWebSocket(
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  backend: Backend,
  target: Target,
  ctx: WebSocketContext,
): Promise<Response> {
  // Everything about the request must be read before upgrading: its headers are gone after.
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  // Hop-by-hop headers (Connection, Upgrade…) are already gone: the WebSocket client adds its own.
  const headers = upstreamRequestHeaders(req.headers, {
    host: target.host,
    remoteIp: info.remoteAddr.hostname,
    publicIp: ctx.publicIp,
  });
  for (const h of HANDSHAKE) headers.delete(h);
  headers.delete("accept-encoding");

  backend.begin();
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      backend.end();
    }
  };

  let upstream: WebSocket;
  try {
    upstream = await openUpstream(backendUrl(backend, target), protocols, headers, ctx);
  } catch (e) {
    end();
    const message = e instanceof Error ? e.message : String(e);
    return badGateway(`websocket handshake with backend failed: ${message}`, target.path);
  }

  const { socket, response } = Deno.upgradeWebSocket(req, {
    protocol: upstream.protocol || undefined,
    idleTimeout: 0,
  });
  const pending: (string | ArrayBuffer | Blob)[] = [];
  upstream.binaryType = "arraybuffer";
  socket.binaryType = "arraybuffer";
  upstream.onmessage = (e) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(e.data);
    else pending.push(e.data);
  };
  socket.onopen = () => {
    for (const m of pending.splice(0)) socket.send(m);
  };
  socket.onmessage = (e) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
  };
  const closeBoth = (code: number, reason: string) => {
    for (const ws of [socket, upstream]) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close(sendableCode(code), reason);
        } catch { /* already closing */ }
      }
    }
    end();
  };
  socket.onclose = (e) => closeBoth(e.code, e.reason);
  upstream.onclose = (e) => closeBoth(e.code, e.reason);
  socket.onerror = () => closeBoth(1000, "");
  upstream.onerror = () => closeBoth(1000, "");
  return response;
}

function openUpstream(
  url: string,
  protocols: string[],
  headers: Headers,
  ctx: WebSocketContext,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // `headers` and `client` are Deno's non-standard WebSocket options.
    const ws = new WebSocket(
      url,
      { protocols, headers, client: ctx.client } as unknown as string[],
    );
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error("timeout"));
    }, ctx.connectTimeoutMs ?? 10_000);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onerror = null;
      resolve(ws);
    };
    ws.onerror = (e) => {
      clearTimeout(timer);
      reject(new Error((e as ErrorEvent).message || "connection failed"));
    };
  });
}
