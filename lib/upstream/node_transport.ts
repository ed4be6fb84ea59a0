/**
 * The second upstream path: `https` requests through Node's `https` module (as Deno provides
 * it), behind the same `fetch(url, init) → Response` contract as the fetch path. It exists
 * because `fetch` cannot do two things sidekick needs:
 *
 * - skip certificate verification at run time (`--insecure`): `fetch` only obeys the
 *   `--unsafely-ignore-certificate-errors` flag of the process, which a compiled binary cannot
 *   take at run time; `node:https` takes `rejectUnauthorized: false` per agent;
 * - connect to one chosen address while verifying (and sending SNI for) another name: rr-dns
 *   backends (`https://10.0.0.7:9000` verified as `minio.example`) and hostname endpoints pinned
 *   to the DNS cache. `Deno.createHttpClient`'s `proxy: { transport: "tcp" }` pins the address,
 *   but (checked on 2.9.6) it does not speak TLS over it (an `https` URL goes out as plain HTTP),
 *   and for `http` it sends absolute-form targets (`GET http://name/… HTTP/1.1`), from which Go
 *   servers take the Host, so sidekick does not use it at all.
 *
 * Semantics kept equal to the fetch path: request and response bodies stream with back-pressure
 * (no buffering), a fixed `Content-Length` is kept, otherwise chunked; `Host` is whatever the
 * caller set (else the URL's); no transparent decompression (sidekick always asks for
 * `identity` anyway); `redirect: "manual"` returns 3xx as is and `"follow"` follows up to 20;
 * `signal` aborts with `signal.reason`, also mid-body; transport failures reject with
 * `TypeError("fetch failed", { cause })` whose cause text `fetch_errors.ts` classifies; a request
 * without a streamed body is retried once when a reused keep-alive connection turns out dead.
 * @module
 */

import { Buffer } from "node:buffer";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import tls from "node:tls";
import { NULL_BODY_STATUS } from "../shared/http_facts.ts";

/** TLS and pooling settings of the Node path. */
export interface NodeHttpsOptions {
  /** Extra CA certificates (PEM), added to the default roots as `fetch`'s `caCerts` are. */
  caCerts?: string[];
  /** Client certificate chain (PEM) for mTLS. */
  cert?: string;
  /** Client private key (PEM) for mTLS. */
  key?: string;
  /** `false` for `--insecure`: the backend's certificate is not verified at all. */
  rejectUnauthorized: boolean;
  /** Idle pooled connections are closed after this many ms. */
  idleTimeoutMs: number;
  /** Resolves hostnames (the DNS cache); default: the system resolver. */
  lookup?: (hostname: string) => Promise<string[]>;
}

/** Where one request goes besides its URL. */
export interface NodeRoute {
  /** Name for SNI and certificate verification, when it is not the URL's host (rr-dns). */
  servername?: string;
}

/**
 * Where `redirect: "follow"` goes next from a 3xx response, as `fetch` would do it: undefined
 * when the response is not followed (manual mode, no `Location`), an Error when it must fail
 * (`redirect: "error"`, more than 20 hops). `init.body` of the result is `null` when the method
 * became GET, else the caller's body (which must be replayable).
 */
export function nextHop(
  url: string,
  status: number,
  location: string | null,
  init: RequestInit,
  redirects: number,
): { url: string; init: RequestInit } | Error | undefined {
  const mode = init.redirect ?? "follow";
  if (!REDIRECT_STATUS.has(status) || location === null || mode === "manual") return undefined;
  if (mode === "error") return new Error("redirect mode is set to error");
  if (redirects >= MAX_REDIRECTS) return new Error("too many redirects");
  const next = new URL(location, url);
  const method = init.method ?? "GET";
  const toGet = status === 303 ? method !== "HEAD" : (status <= 302 && method === "POST");
  const headers = new Headers(init.headers ?? undefined);
  if (next.host !== new URL(url).host) headers.delete("host");
  if (toGet) {
    for (const h of ["content-length", "content-type", "content-encoding", "content-language"]) {
      headers.delete(h);
    }
  }
  return {
    url: next.href,
    init: { ...init, method: toGet ? "GET" : method, headers, body: toGet ? null : init.body },
  };
}

/** The Node `https` path; `refetch` handles redirects to other URLs (any scheme). */
export interface NodeHttpsFetch {
  /** One exchange, as `fetch` would do it (`redirects`: hops already followed). */
  fetch(url: string, init: RequestInit, route?: NodeRoute, redirects?: number): Promise<Response>;
  /** Destroys pooled connections. */
  close(): void;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
/** Error codes of a dead reused keep-alive connection (the request never reached a server). */
const STALE_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);
/** Methods `fetch` upper-cases (others keep their case). */
const NORMALISED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
const BODY_HIGH_WATER_MARK = 64 * 1024;

/** A Node error's text with its code, as `classifyFetchError` matches it. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && !e.message.includes(code)
    ? `${code}: ${e.message}`
    : e.message;
}

/** `fetch`'s shape of a transport failure: `TypeError("fetch failed", { cause })`. */
function fetchFailed(url: string, e: unknown): TypeError {
  const cause = new Error(`error sending request for url (${url}): ${describe(e)}`);
  (cause as Error & { code?: unknown }).code = (e as { code?: unknown })?.code;
  return new TypeError("fetch failed", { cause });
}

/** A body that can be sent again (bytes), or a stream that cannot. */
type PreparedBody =
  | { kind: "none" }
  | { kind: "bytes"; bytes: Uint8Array<ArrayBuffer> }
  | { kind: "stream"; stream: ReadableStream<Uint8Array> };

async function prepareBody(init: RequestInit, headers: Headers): Promise<PreparedBody> {
  const body = init.body;
  if (body === null || body === undefined) return { kind: "none" };
  if (body instanceof ReadableStream) return { kind: "stream", stream: body };
  // Any other BodyInit: let the platform serialise it exactly as fetch would.
  const probe = new Request("http://body.invalid/", { method: "POST", body });
  const type = probe.headers.get("content-type");
  if (type !== null && !headers.has("content-type")) headers.set("content-type", type);
  const bytes = new Uint8Array(await probe.arrayBuffer());
  headers.set("content-length", String(bytes.byteLength));
  return { kind: "bytes", bytes };
}

/** Node's header object from a `Headers` (values of repeated headers already joined). */
function nodeHeaders(headers: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else out[name] = Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** The `fetch`-like function over Node's `https`. */
export function createNodeHttpsFetch(
  options: NodeHttpsOptions,
  refetch: (url: string, init: RequestInit, redirects: number) => Promise<Response>,
): NodeHttpsFetch {
  const secure: tls.ConnectionOptions = {
    rejectUnauthorized: options.rejectUnauthorized,
    ca: options.caCerts?.length ? [...tls.rootCertificates, ...options.caCerts] : undefined,
    cert: options.cert,
    key: options.key,
  };
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: Infinity,
    maxFreeSockets: 1024,
    timeout: options.idleTimeoutMs,
    scheduling: "lifo",
    ...secure,
  });
  const resolve = options.lookup;
  // Node's lookup contract, fed from the DNS cache: every address in resolver order, so Node
  // tries them in turn and the first reachable one wins.
  const lookup = resolve
    ? (
      hostname: string,
      opts: unknown,
      callback: (
        err: Error | null,
        address: string | { address: string; family: number }[],
        family?: number,
      ) => void,
    ) => {
      const all = typeof opts === "object" && opts !== null && (opts as { all?: boolean }).all;
      resolve(hostname).then((addresses) => {
        const list = addresses.map((address) => ({
          address,
          family: address.includes(":") ? 6 : 4,
        }));
        if (all) callback(null, list);
        else callback(null, list[0].address, list[0].family);
      }, (e) => {
        const err = new Error(e instanceof Error ? e.message : String(e));
        (err as Error & { code: string }).code = "ENOTFOUND";
        callback(err, "");
      });
    }
    : undefined;

  async function run(
    url: string,
    init: RequestInit,
    route: NodeRoute,
    redirects: number,
  ): Promise<Response> {
    const u = new URL(url);
    if (u.protocol !== "https:") return refetch(url, init, redirects);
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    let method = init.method ?? "GET";
    if (NORMALISED_METHODS.has(method.toUpperCase())) method = method.toUpperCase();
    const headers = new Headers(init.headers ?? undefined);
    if ((method === "GET" || method === "HEAD") && init.body != null) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    const body = await prepareBody(init, headers);
    if (!headers.has("host")) headers.set("host", u.host);
    if (!headers.has("accept")) headers.set("accept", "*/*");
    if (!headers.has("accept-language")) headers.set("accept-language", "*");
    if (!headers.has("user-agent")) headers.set("user-agent", `Deno/${Deno.version.deno}`);
    const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    const isIp = host.includes(":") || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
    const request: https.RequestOptions = {
      agent,
      host,
      port: u.port ? Number(u.port) : 443,
      path: u.pathname + u.search,
      method,
      headers: nodeHeaders(headers),
      // Always explicit: otherwise Node derives it from the Host header, i.e. the client's.
      servername: route.servername ?? (isIp ? "" : host),
      lookup: isIp ? undefined : lookup as https.RequestOptions["lookup"],
    };

    let res: IncomingMessage;
    let req: ReturnType<typeof https.request>;
    for (let attempt = 0;; attempt++) {
      try {
        [req, res] = await exchange(url, request, body, signal);
        break;
      } catch (e) {
        const stale = (e as { stale?: boolean }).stale === true;
        if (stale && attempt === 0 && body.kind !== "stream" && !signal?.aborted) continue;
        const cause = (e as { cause?: unknown }).cause;
        if ((cause as { code?: unknown })?.code === GENERIC_VERIFY_FAILURE) {
          const precise = await diagnose(request, secure);
          if (precise) throw fetchFailed(url, precise);
        }
        throw (e as { failure?: unknown }).failure ?? e;
      }
    }

    const status = res.statusCode ?? 0;
    const hop = REDIRECT_STATUS.has(status) && body.kind !== "stream"
      ? nextHop(url, status, res.headers.location ?? null, { ...init, method }, redirects)
      : undefined;
    if (hop) {
      res.destroy();
      req.destroy();
      if (hop instanceof Error) throw fetchFailed(url, hop);
      if (body.kind === "bytes" && hop.init.body !== null) hop.init.body = body.bytes;
      const next = new URL(hop.url);
      return next.protocol === "https:" && next.host === u.host
        ? run(hop.url, hop.init, route, redirects + 1)
        : refetch(hop.url, hop.init, redirects + 1);
    }
    if (status < 200 || status > 599) {
      res.destroy();
      req.destroy();
      throw fetchFailed(url, new Error(`invalid HTTP status ${status} from backend`));
    }
    return toResponse(url, method, req, res, signal);
  }

  return {
    fetch: (url, init, route = {}, redirects = 0) => run(url, init, route, redirects),
    close: () => agent.destroy(),
  };
}

/** Deno's node:tls reports expired and self-signed certificates alike with this code. */
const GENERIC_VERIFY_FAILURE = "UNABLE_TO_VERIFY_LEAF_SIGNATURE";
const DIAGNOSE_TIMEOUT_MS = 5_000;

/**
 * After a generic verification failure, one more handshake (verification off, nothing written,
 * closed at once) reads the certificate to say what is wrong with it: expired, not yet valid,
 * or self-signed. Undefined when it cannot tell more.
 */
function diagnose(
  request: https.RequestOptions,
  secure: tls.ConnectionOptions,
): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (e: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(e);
    };
    const socket = tls.connect({
      ...secure,
      host: request.host ?? undefined,
      port: Number(request.port),
      servername: request.servername || undefined,
      lookup: request.lookup,
      rejectUnauthorized: false,
    }, () => {
      const cert = socket.getPeerCertificate();
      const now = Date.now();
      const coded = (code: string, message: string) => Object.assign(new Error(message), { code });
      if (!cert || !cert.valid_to) return finish(undefined);
      if (Date.parse(cert.valid_to) < now) {
        return finish(
          coded("CERT_HAS_EXPIRED", `certificate has expired (not after ${cert.valid_to})`),
        );
      }
      if (Date.parse(cert.valid_from) > now) {
        return finish(
          coded(
            "CERT_NOT_YET_VALID",
            `certificate is not yet valid (not before ${cert.valid_from})`,
          ),
        );
      }
      const self = JSON.stringify(cert.subject) === JSON.stringify(cert.issuer);
      if (self) return finish(coded("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"));
      finish(undefined);
    });
    socket.on("error", () => finish(undefined));
    const timer = setTimeout(() => finish(undefined), DIAGNOSE_TIMEOUT_MS);
  });
}

/**
 * Sends one request and resolves with the response head. Rejects with the `fetch`-shaped
 * failure in `failure`, plus `stale` when a reused connection died before any response.
 */
function exchange(
  url: string,
  options: https.RequestOptions,
  body: PreparedBody,
  signal: AbortSignal | undefined,
): Promise<[ReturnType<typeof https.request>, IncomingMessage]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = https.request(options);
    const fail = (e: unknown, isAbort = false) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      req.destroy();
      if (isAbort) return reject(e);
      const code = (e as { code?: unknown })?.code;
      const stale = req.reusedSocket && typeof code === "string" && STALE_CODES.has(code) ||
        req.reusedSocket && /socket hang up/i.test(describe(e));
      const error = { failure: e instanceof TypeError ? e : fetchFailed(url, e), stale, cause: e };
      reject(error);
    };
    const onAbort = () => fail(signal!.reason, true);
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (e: Error) => fail(e));
    req.on("response", (res: IncomingMessage) => {
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      resolve([req, res]);
    });
    if (body.kind === "none") req.end();
    else if (body.kind === "bytes") req.end(Buffer.from(body.bytes));
    else pump(body.stream, req);
  });
}

/** Copies a request body stream into the Node request with back-pressure. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  req: ReturnType<typeof https.request>,
): Promise<void> {
  const reader = stream.getReader();
  let writing = true;
  // The exchange failed or the backend answered and closed early: stop reading the client.
  req.once("close", () => {
    if (writing) reader.cancel().catch(() => {});
  });
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (req.destroyed) throw new Error("request closed");
      if (!req.write(value)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            req.off("drain", done);
            req.off("close", done);
            resolve();
          };
          req.on("drain", done);
          req.on("close", done);
        });
      }
    }
    writing = false;
    if (!req.destroyed) req.end();
  } catch (e) {
    writing = false;
    if (!req.destroyed) {
      req.destroy(new Error(`error from user's Body stream: ${describe(e)}`));
    }
    reader.cancel(e).catch(() => {});
  } finally {
    reader.releaseLock();
  }
}

/** The Node response as a `Response` whose body streams with back-pressure. */
function toResponse(
  url: string,
  method: string,
  req: ReturnType<typeof https.request>,
  res: IncomingMessage,
  signal: AbortSignal | undefined,
): Response {
  const status = res.statusCode!;
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // A header value fetch would refuse: dropped, as fetch drops nothing but throws instead.
    }
  }
  let statusText = res.statusMessage ?? "";
  if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) statusText = "";
  if (method === "HEAD" || NULL_BODY_STATUS.has(status)) {
    res.resume();
    return new Response(null, { status, statusText, headers });
  }
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let finished = false;
  const finish = () => {
    finished = true;
    signal?.removeEventListener("abort", onAbort);
  };
  const onAbort = () => {
    if (finished) return;
    finish();
    controller.error(signal!.reason);
    res.destroy();
    req.destroy();
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      res.on("data", (chunk: Buffer) => {
        if (finished) return;
        c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((c.desiredSize ?? 1) <= 0) res.pause();
      });
      res.on("end", () => {
        if (finished) return;
        finish();
        c.close();
      });
      const broken = (e?: unknown) => {
        if (finished) return;
        finish();
        const reason = e ?? new Error("connection closed before message completed");
        c.error(fetchFailed(url, reason));
        req.destroy();
      };
      res.on("error", broken);
      res.on("close", () => {
        if (!res.complete) broken();
      });
    },
    pull() {
      res.resume();
    },
    cancel() {
      finish();
      res.destroy();
      req.destroy();
    },
  }, { highWaterMark: BODY_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength });
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return new Response(body, { status, statusText, headers });
}
