/**
 * SITE arguments → backend endpoint URLs, and the health-check URL of one endpoint
 * .
 *
 * A SITE is one positional argument: a comma-separated list of pools, each pool an endpoint URL
 * that may carry `{N...M}` ranges (`http://172.17.0.{2...5}:9000`). Ranges are expanded only when
 * every pool of the SITE has one; the expansion order, padding and hex rules are those of MinIO's
 * `ellipses` package. Every endpoint is then validated.
 *
 * Where this module deliberately differs from the Go sidekick:
 * - hostnames may contain `_` (docker-compose service names such as `minio_1`);
 * - IPv6 literals are accepted in brackets (`http://[::1]:9000`) and re-bracketed when the
 *   health port replaces the port;
 * - every error is one formatted line naming the offending SITE or endpoint;
 * - userinfo (`http://user:pass@host`) is **rejected**: Go ignored it for proxying, but the
 *   endpoint string is the backend's display name and metric label, so a password would end up in
 *   the table, the logs and `/.prometheus/metrics`;
 * - query strings and fragments in an endpoint are rejected (Go ignored them when proxying and
 *   glued the health path after the query);
 * - ports must be 1..65535 (an explicit `:0` or an empty `:` is an error), IPv4 hosts must be
 *   plain dotted quads (WHATWG would silently read `0x7f.1` as 127.0.0.1), and whitespace,
 *   control characters, backslashes and braces left over from a range are rejected;
 * - no SITE may expand to more than {@linkcode MAX_ENDPOINTS} endpoints, so bad input can never
 *   hang the process or exhaust its memory.
 *
 * Everything here is pure: no I/O, no global mutable state.
 * @module
 */
import { err, ok, type Result } from "../shared/result.ts";

/** The most endpoints one pool, one SITE or all SITE arguments together may expand to. */
export const MAX_ENDPOINTS = 10_000;

const RANGE_FORMAT = "ellipsis range must be {N...M} with N <= M (decimal or lower-case hex)";
const TOO_MANY = `expands to more than ${MAX_ENDPOINTS} endpoints`;
const MAX_UINT64 = (1n << 64n) - 1n;
const ACCEPTED_FORM = "use http://host[:port][/path] or https://host[:port][/path]";

/** Quotes a user string on one line (like Go's `%q`). */
function q(s: string): string {
  return JSON.stringify(s);
}

/** Go's `ellipses.HasEllipses`: contains `...`, or contains both `{` and `}`. */
function hasEllipses(s: string): boolean {
  return s.includes("...") || (s.includes("{") && s.includes("}"));
}

/** Parses one side of a range: decimal first, then lower-case hex. */
function parseBound(s: string): { value: bigint; hex: boolean } | undefined {
  let parsed: { value: bigint; hex: boolean } | undefined;
  if (/^[0-9]+$/.test(s)) parsed = { value: BigInt(s), hex: false };
  else if (/^[0-9a-f]+$/.test(s)) parsed = { value: BigInt("0x" + s), hex: true };
  return parsed !== undefined && parsed.value <= MAX_UINT64 ? parsed : undefined;
}

/** One parsed `{START...END}` token. */
interface Range {
  start: bigint;
  /** END - START + 1, at most {@linkcode MAX_ENDPOINTS}. */
  count: number;
  radix: 10 | 16;
  /** Zero-padding width (0: none). */
  width: number;
}

/** Parses one `{START...END}` token (body without braces); the error is a bare reason. */
function parseRange(body: string): Result<Range> {
  const [startText, endText] = body.split("...");
  const start = parseBound(startText);
  const end = parseBound(endText);
  if (start === undefined || end === undefined) return err(RANGE_FORMAT);
  if (start.value > end.value) {
    return err(
      `ellipsis range {${body}} runs backwards (${start.value} > ${end.value}): ` +
        "write {N...M} with N <= M",
    );
  }
  const count = end.value - start.value + 1n;
  if (count > BigInt(MAX_ENDPOINTS)) return err(TOO_MANY);
  const padded = (startText.startsWith("0") && startText.length > 1) || endText.startsWith("0");
  return ok({
    start: start.value,
    count: Number(count),
    radix: start.hex || end.hex ? 16 : 10,
    width: padded ? endText.length : 0,
  });
}

/** The printed values of a range. */
function rangeValues(r: Range): string[] {
  const values: string[] = [];
  for (let k = 0; k < r.count; k++) {
    values.push((r.start + BigInt(k)).toString(r.radix).padStart(r.width, "0"));
  }
  return values;
}

/**
 * Splits a pool into literal segments and range tokens and expands it. Errors are bare reasons
 * (the callers say which SITE or pool they belong to). The size of the expansion is checked
 * before anything is materialised.
 */
function expandPool(pool: string): Result<string[]> {
  const literals: string[] = [];
  const parsed: Range[] = [];
  let from = 0;
  let i = 0;
  while (i < pool.length) {
    const c = pool[i];
    if (c === "}") return err(RANGE_FORMAT);
    if (c !== "{") {
      i++;
      continue;
    }
    const close = pool.indexOf("}", i + 1);
    if (close < 0) return err(RANGE_FORMAT);
    const body = pool.slice(i + 1, close);
    if (!/^[0-9a-z]*\.\.\.[0-9a-z]*$/.test(body)) return err(RANGE_FORMAT);
    const range = parseRange(body);
    if (!range.ok) return range;
    literals.push(pool.slice(from, i));
    parsed.push(range.value);
    i = from = close + 1;
  }
  literals.push(pool.slice(from));
  // `a...b` without braces, or a stray `...` next to a valid range.
  if (parsed.length === 0 || literals.some((l) => l.includes("..."))) return err(RANGE_FORMAT);

  let total = 1;
  for (const r of parsed) {
    total *= r.count;
    if (total > MAX_ENDPOINTS) return err(TOO_MANY);
  }
  const ranges = parsed.map(rangeValues);
  // Mixed-radix counter, left-most range varying fastest.
  const out: string[] = [];
  for (let n = 0; n < total; n++) {
    let rest = n;
    let s = literals[0];
    for (let k = 0; k < ranges.length; k++) {
      const r = ranges[k];
      s += r[rest % r.length] + literals[k + 1];
      rest = Math.floor(rest / r.length);
    }
    out.push(s);
  }
  return ok(out);
}

/**
 * Expands the `{N...M}` ranges of one pool string, left-most range varying fastest.
 *
 * N and M are decimal, or lower-case hex when either side is not decimal (output is then hex).
 * Values are zero-padded to the length of M when N has a leading zero and more than one digit, or
 * M has a leading zero. A string without `...` and without a `{`/`}` pair is returned unchanged.
 * Malformed ranges (upper case, `{1,2}`, `a...b`, stray braces, N > M) and expansions beyond
 * {@linkcode MAX_ENDPOINTS} are errors.
 *
 * @example
 * ```ts
 * expandEllipses("http://h{1...2}:900{1...2}");
 * // ok(["http://h1:9001", "http://h2:9001", "http://h1:9002", "http://h2:9002"])
 * ```
 */
export function expandEllipses(pool: string): Result<string[]> {
  if (!hasEllipses(pool)) return ok([pool]);
  const expanded = expandPool(pool);
  return expanded.ok ? expanded : err(`invalid range in ${q(pool)}: ${expanded.error}`);
}

/** One validated endpoint. */
interface Endpoint {
  /** As written, minus one trailing `/`. */
  endpoint: string;
  /** Lower-cased: `http` or `https`. */
  scheme: string;
  /** The WHATWG parse of `endpoint`. */
  url: URL;
  /** The endpoint's path, minus one trailing `/` (may be empty). */
  path: string;
}

/** Strict dotted-quad IPv4: four decimal octets 0..255 without leading zeros. */
function isIPv4(host: string): boolean {
  const parts = host.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** Why a (non-bracketed) hostname is invalid, or undefined when it is fine. */
function hostnameProblem(host: string, quoted: string): string | undefined {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  const labels = name.split(".");
  const last = labels[labels.length - 1];
  // WHATWG reads any host whose last label is numeric as IPv4 (`0x7f.1` is 127.0.0.1): be strict.
  if (/^([0-9]+|0[xX][0-9a-fA-F]*)$/.test(last)) {
    return host === name && isIPv4(host)
      ? undefined
      : `invalid IPv4 address in ${quoted}: use four decimal numbers 0..255 such as 10.0.0.1`;
  }
  if (name.length > 253) return `hostname longer than 253 characters in ${quoted}`;
  for (const label of labels) {
    if (label.length > 63) return `hostname label longer than 63 characters in ${quoted}`;
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label)) {
      return `invalid hostname in ${quoted}: labels are letters, digits, "-" and "_" ` +
        `separated by "." (or use an IPv4 address, or an IPv6 address in brackets)`;
    }
  }
  return undefined;
}

/** The error for a malformed bracketed IPv6 host. */
function ipv6Problem(quoted: string, host: string): string {
  const zone = host.includes("%") ? " (zone identifiers such as %eth0 are not supported)" : "";
  return `invalid IPv6 address in ${quoted}${zone}: expected http://[address]:port, ` +
    "e.g. http://[::1]:9000";
}

/** Validates one endpoint string as written in a SITE (with the fixes above). */
function checkEndpoint(raw: string): Result<Endpoint> {
  const quoted = q(raw);
  if (raw === "") return err(`empty endpoint: ${ACCEPTED_FORM}`);
  // Control characters are rejected on purpose: they would corrupt log lines and metric labels.
  // deno-lint-ignore no-control-regex
  const bad = /[\s\x00-\x1f\x7f\\{}]/.exec(raw);
  if (bad) {
    const what = /\s/.test(bad[0]) ? "whitespace" : `character ${q(bad[0])}`;
    return err(`unexpected ${what} in ${quoted}: ${ACCEPTED_FORM}`);
  }
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw);
  if (!schemeMatch) return err(`missing scheme in ${quoted}: use http:// or https://`);
  const scheme = schemeMatch[1].toLowerCase();
  if (scheme !== "http" && scheme !== "https") {
    return err(`unexpected scheme in ${quoted}: use http:// or https://`);
  }
  const afterScheme = raw.slice(schemeMatch[0].length);
  if (!afterScheme.startsWith("//")) return err(`invalid endpoint ${quoted}: ${ACCEPTED_FORM}`);
  const rest = afterScheme.slice(2);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? "" : rest.slice(authorityEnd);
  if (authority === "") return err(`missing host in ${quoted}`);
  if (authority.includes("@")) {
    return err(
      `credentials are not supported in ${quoted}: remove "user:password@" ` +
        "(the endpoint is shown in logs and metrics)",
    );
  }
  if (/[?#]/.test(tail)) {
    return err(`query strings and fragments are not supported in ${quoted}: ${ACCEPTED_FORM}`);
  }

  let host: string;
  let port: string | undefined;
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    const after = close < 0 ? "" : authority.slice(close + 1);
    host = authority.slice(0, close + 1);
    port = after === "" ? undefined : after.slice(1);
    if (
      close < 0 || (after !== "" && !after.startsWith(":")) ||
      !/^\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]$/.test(host)
    ) {
      return err(ipv6Problem(quoted, host));
    }
  } else {
    const colon = authority.indexOf(":");
    if (colon >= 0 && authority.indexOf(":", colon + 1) >= 0) {
      return err(
        `invalid host in ${quoted}: write IPv6 addresses in brackets, e.g. http://[::1]:9000`,
      );
    }
    host = colon < 0 ? authority : authority.slice(0, colon);
    port = colon < 0 ? undefined : authority.slice(colon + 1);
    if (host === "") return err(`missing host in ${quoted}`);
    const problem = hostnameProblem(host, quoted);
    if (problem !== undefined) return err(problem);
  }
  if (port !== undefined && !(/^[0-9]{1,5}$/.test(port) && +port >= 1 && +port <= 65535)) {
    return err(`invalid port in ${quoted}: must be a number 1..65535`);
  }

  const endpoint = raw.endsWith("/") ? raw.slice(0, -1) : raw;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return err(
      host.startsWith("[")
        ? ipv6Problem(quoted, host)
        : `invalid endpoint ${quoted}: ${ACCEPTED_FORM}`,
    );
  }
  // Belt and braces: our reading of the host must be the WHATWG one.
  if (!host.startsWith("[") && url.hostname !== host.toLowerCase()) {
    return err(`invalid host in ${quoted}: ${ACCEPTED_FORM}`);
  }
  const path = tail.endsWith("/") ? tail.slice(0, -1) : tail;
  return ok({ endpoint, scheme, url, path });
}

/**
 * One SITE argument → its endpoint URLs, in order.
 *
 * The SITE is split on every `,` (no trimming; an empty element is an error). Ranges are expanded
 * with {@linkcode expandEllipses} only when every pool has one; a SITE that mixes pools with and
 * without ranges is an error. Each endpoint must be `http://` or `https://` (all of one SITE
 * alike) with a host (DNS name, underscores allowed; dotted IPv4; or bracketed IPv6) and an
 * optional port 1..65535 and path. Userinfo, query strings and fragments are rejected. The
 * endpoints are returned as written minus one trailing `/`; duplicates are kept.
 *
 * @example
 * ```ts
 * parseSite("http://172.17.0.{2...3}:9000,http://172.17.0.{6...7}:9000/");
 * // ok(["http://172.17.0.2:9000", "http://172.17.0.3:9000",
 * //     "http://172.17.0.6:9000", "http://172.17.0.7:9000"])
 * ```
 */
export function parseSite(site: string): Result<string[]> {
  if (site === "") return err(`empty SITE: give endpoints such as http://127.0.0.1:9000`);
  const pools = site.split(",");
  if (pools.includes("")) {
    return err(`empty endpoint in SITE ${q(site)}: remove the extra ","`);
  }

  let raws: string[];
  if (pools.every(hasEllipses)) {
    raws = [];
    for (const pool of pools) {
      const expanded = expandPool(pool);
      if (!expanded.ok) return err(`invalid SITE ${q(site)}: ${expanded.error}`);
      raws.push(...expanded.value);
      if (raws.length > MAX_ENDPOINTS) return err(`invalid SITE ${q(site)}: ${TOO_MANY}`);
    }
  } else {
    const literal = pools.find(hasEllipses);
    if (literal !== undefined) {
      return err(
        `invalid SITE ${q(site)}: ${q(literal)} has a {N...M} range but other endpoints do not; ` +
          "ranges are expanded only when every endpoint of the SITE has one",
      );
    }
    raws = pools;
  }

  const endpoints: string[] = [];
  let first: { raw: string; scheme: string } | undefined;
  for (const raw of raws) {
    const checked = checkEndpoint(raw);
    if (!checked.ok) {
      return err(site.includes(raw) ? checked.error : `${checked.error} (from SITE ${q(site)})`);
    }
    if (first === undefined) first = { raw, scheme: checked.value.scheme };
    else if (checked.value.scheme !== first.scheme) {
      return err(
        `all endpoints of one SITE must use the same scheme: ${q(raw)} differs from ${
          q(first.raw)
        }`,
      );
    }
    endpoints.push(checked.value.endpoint);
  }
  return ok(endpoints);
}

/**
 * All SITE arguments → the endpoints of each site, in argument order (site 1 first).
 *
 * The first invalid SITE's error is returned unchanged (it names the SITE or the endpoint).
 * Different sites may use different schemes. All sites together may not exceed
 * {@linkcode MAX_ENDPOINTS} endpoints. No SITE at all gives `ok([])` (the caller prints help).
 */
export function parseSites(sites: string[]): Result<string[][]> {
  const out: string[][] = [];
  let total = 0;
  for (const site of sites) {
    const parsed = parseSite(site);
    if (!parsed.ok) return parsed;
    total += parsed.value.length;
    if (total > MAX_ENDPOINTS) return err(`the SITE arguments together ${TOO_MANY}`);
    out.push(parsed.value);
  }
  return ok(out);
}

/** Go's `path.Clean` for a rooted path, keeping a trailing `/` as the Go sidekick does. */
function cleanPath(p: string): string {
  const segments: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") segments.pop();
    else segments.push(seg);
  }
  const cleaned = "/" + segments.join("/");
  return p.endsWith("/") && !cleaned.endsWith("/") ? cleaned + "/" : cleaned;
}

/**
 * The URL of a backend's health check: the endpoint (one trailing `/` trimmed) plus
 * `path`, with the path cleaned like Go's `path.Clean` (`//a/../b` → `/b`, a trailing `/` kept),
 * default ports stripped (`http://h:80/x` → `http://h/x`), and the port replaced by `healthPort`
 * unless it is 0 (IPv6 hosts stay bracketed). `path` may carry a query (`/health?x=1`); a missing
 * leading `/` is added, as `--health-path` does. An empty path gives `<endpoint>/`. The endpoint
 * is validated as in {@linkcode parseSite}; `healthPort` must be an integer 0..65535.
 *
 * @example
 * ```ts
 * healthUrl("http://minio1:9000", "/minio/health/ready", 4242);
 * // ok("http://minio1:4242/minio/health/ready")
 * ```
 */
export function healthUrl(endpoint: string, path: string, healthPort: number): Result<string> {
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) {
    return err(
      `invalid health check port ${healthPort}: must be 0 (the endpoint's own port) or 1..65535`,
    );
  }
  const checked = checkEndpoint(endpoint);
  if (!checked.ok) return checked;
  let pathname = path;
  let search = "";
  const queryAt = pathname.indexOf("?");
  if (queryAt >= 0) {
    search = pathname.slice(queryAt);
    pathname = pathname.slice(0, queryAt);
  }
  if (pathname.includes("#")) {
    return err(`invalid health check path ${q(path)}: "#" is not allowed`);
  }
  if (pathname !== "" && !pathname.startsWith("/")) pathname = "/" + pathname;
  const url = checked.value.url;
  url.pathname = cleanPath(checked.value.path + pathname);
  url.search = search;
  if (healthPort !== 0) url.port = String(healthPort);
  return ok(url.href);
}
