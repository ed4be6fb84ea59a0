/**
 * TLS test backends: `startBackend` with a certificate for https backends, and a `node:https`
 * server that requires a client certificate (Deno.serve cannot ask for one) for mTLS.
 * @module
 */

import https from "node:https";
import type { TLSSocket } from "node:tls";
import { startBackend, type TestBackend } from "./backends.ts";

/**
 * An https backend: {@linkcode startBackend} serving `cert`/`key` on `hostname` (default
 * 127.0.0.1), its `url` naming `urlHost` (default `localhost`), `/redirect` pointing at `/echo`,
 * and plain answers carrying `x-backend: <name>` and two set-cookies (`a=1`, `b=2`).
 */
export function startHttpsBackend(
  name: string,
  options: { cert: string; key: string; hostname?: string; port?: number; urlHost?: string },
): Promise<TestBackend> {
  return startBackend(name, {
    ...options,
    urlHost: options.urlHost ?? "localhost",
    redirectTo: "/echo",
    headers: [["x-backend", name], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
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
