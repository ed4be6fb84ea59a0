/**
 * TLS test backends: `Deno.serve({ cert, key })` for https backends, and a `node:https` server
 * that requires a client certificate (Deno.serve cannot ask for one) for mTLS.
 * @module
 */

import https from "node:https";
import type { TLSSocket } from "node:tls";
import { digestStream, patternStream } from "./backends.ts";

/** What an https test backend saw of one request. */
export interface SeenTls {
  method: string;
  path: string;
  headers: Headers;
  bodyBytes: number;
  bodySha256: string;
}

/** A running https test backend. */
export interface HttpsBackend {
  /** Its name (the body of plain requests). */
  readonly name: string;
  /** The port. */
  readonly port: number;
  /** `https://<host>:<port>` with the host it was asked for in URLs (default `localhost`). */
  readonly url: string;
  /** Status of `/health`. */
  healthStatus: number;
  /** Health checks received. */
  healthChecks: number;
  /** Requests received (health checks excluded). */
  readonly seen: SeenTls[];
  /** Lets `/gate` responses send their second chunk. */
  openGate(): void;
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * An https backend on `hostname` (default 127.0.0.1). Paths: `/health`; `/echo` (JSON of
 * method, path, headers, body size and SHA-256); `/big?size=N` (N pattern bytes, with
 * `Content-Length`); `/chunks?n=N` (N 1 KiB chunks, 20 ms apart, no length); `/gate` (`first`,
 * then `second` once `openGate()` was called); `/redirect` (302 to `/echo`); else the name.
 */
export function startHttpsBackend(
  name: string,
  options: { cert: string; key: string; hostname?: string; port?: number; urlHost?: string },
): Promise<HttpsBackend> {
  const hostname = options.hostname ?? "127.0.0.1";
  const controller = new AbortController();
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  return new Promise((resolve) => {
    const backend: HttpsBackend = {
      name,
      port: 0,
      url: "",
      healthStatus: 200,
      healthChecks: 0,
      seen: [],
      openGate,
      close: async () => {
        controller.abort();
        await server.finished;
      },
    };
    const server = Deno.serve({
      hostname,
      port: options.port ?? 0,
      cert: options.cert,
      key: options.key,
      signal: controller.signal,
      onListen: ({ port }) => {
        Object.assign(backend, { port, url: `https://${options.urlHost ?? "localhost"}:${port}` });
        resolve(backend);
      },
    }, async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/health") {
        backend.healthChecks++;
        return new Response(null, { status: backend.healthStatus });
      }
      const body = await digestStream(req.body).catch(() => ({ bytes: -1, sha256: "" }));
      const seen = {
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
        bodyBytes: body.bytes,
        bodySha256: body.sha256,
      };
      backend.seen.push(seen);
      switch (url.pathname) {
        case "/echo":
          return Response.json({ name, ...seen, headers: Object.fromEntries(req.headers) });
        case "/big": {
          const size = Number(url.searchParams.get("size") ?? "0");
          return new Response(patternStream(size), {
            headers: { "content-length": String(size) },
          });
        }
        case "/chunks": {
          let left = Number(url.searchParams.get("n") ?? "5");
          return new Response(
            new ReadableStream<Uint8Array>({
              async pull(c) {
                if (left-- <= 0) return c.close();
                await new Promise((r) => setTimeout(r, 20));
                c.enqueue(new Uint8Array(1024).fill(97));
              },
            }),
          );
        }
        case "/gate": {
          const enc = new TextEncoder();
          return new Response(
            new ReadableStream<Uint8Array>({
              async start(c) {
                c.enqueue(enc.encode("first"));
                await gate;
                c.enqueue(enc.encode("second"));
                c.close();
              },
            }),
          );
        }
        case "/redirect":
          return new Response(null, { status: 302, headers: { location: "/echo" } });
        default:
          return new Response(name, {
            headers: [["x-backend", name], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
          });
      }
    });
  });
}

/** A running backend that requires a client certificate signed by `ca`. */
export interface MtlsBackend {
  /** The port (on 127.0.0.1). */
  readonly port: number;
  /** `https://localhost:<port>`. */
  readonly url: string;
  /** Subject CNs of the client certificates of the requests it answered. */
  readonly clients: string[];
  /** Stops it. */
  close(): Promise<void>;
}

/** An mTLS backend (`node:https`, `requestCert` + `rejectUnauthorized`): answers `<name> <CN>`. */
export function startMtlsBackend(
  name: string,
  options: { cert: string; key: string; ca: string },
): Promise<MtlsBackend> {
  const clients: string[] = [];
  const server = https.createServer({
    cert: options.cert,
    key: options.key,
    ca: options.ca,
    requestCert: true,
    rejectUnauthorized: true,
  }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const cn = String(peer?.subject?.CN ?? "");
    clients.push(cn);
    req.resume();
    res.end(`${name} ${cn}`);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        url: `https://localhost:${port}`,
        clients,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}
