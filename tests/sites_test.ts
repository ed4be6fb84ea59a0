/**
 * Tests of `lib/config/sites.ts`: every example of the Go sidekick's SITE grammar (SITE splitting, ellipsis
 * expansion, endpoint validation) and health URL (its own test cases), the error cases, and our fixes
 * (underscores in hostnames, bracketed IPv6).
 * @module
 */
import assert from "node:assert/strict";
import {
  expandEllipses,
  healthUrl,
  MAX_ENDPOINTS,
  parseSite,
  parseSites,
} from "../lib/config/sites.ts";
import type { Result } from "../lib/shared/result.ts";

/** The value of an ok result, failing the test with the error otherwise. */
function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got error: ${r.error}`);
  return r.value;
}

/** The error of a failed result, failing the test otherwise; checks it is one line. */
function error<T>(r: Result<T>): string {
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  assert.ok(!r.error.includes("\n"), `error is not one line: ${r.error}`);
  return r.error;
}

const RANGE_FORMAT = "ellipsis range must be {N...M} with N <= M (decimal or lower-case hex)";

// ---------------------------------------------------------------------------------------------
// ellipsis expansion

Deno.test("expandEllipses: string without ellipses is returned unchanged", () => {
  assert.deepEqual(value(expandEllipses("http://127.0.0.1:9000")), ["http://127.0.0.1:9000"]);
  // A lone brace is not "ellipses" (needs both braces or `...`): left for validation to reject.
  assert.deepEqual(value(expandEllipses("http://h{1")), ["http://h{1"]);
});

Deno.test("expandEllipses: decimal range", () => {
  assert.deepEqual(value(expandEllipses("http://172.17.0.{2...5}")), [
    "http://172.17.0.2",
    "http://172.17.0.3",
    "http://172.17.0.4",
    "http://172.17.0.5",
  ]);
  assert.deepEqual(value(expandEllipses("{8...10}")), ["8", "9", "10"]);
});

Deno.test("expandEllipses: {3...3} yields one value (no minimum range size)", () => {
  assert.deepEqual(value(expandEllipses("http://h{3...3}")), ["http://h3"]);
});

Deno.test("expandEllipses: hex fallback, lower-case hex output", () => {
  assert.deepEqual(value(expandEllipses("{a...f}")), ["a", "b", "c", "d", "e", "f"]);
  // START decimal, END hex → output hex.
  assert.deepEqual(value(expandEllipses("{1...a}")), [
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "a",
  ]);
  // "10" parses as decimal 10 but "1f" needs hex: values 10..31 printed in hex (as Go does).
  const v = value(expandEllipses("{10...1f}"));
  assert.deepEqual(v.length, 22);
  assert.deepEqual(v.slice(0, 2), ["a", "b"]);
  assert.deepEqual(v.at(-1), "1f");
});

Deno.test("expandEllipses: zero padding rules", () => {
  assert.deepEqual(value(expandEllipses("{01...10}")), [
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "10",
  ]);
  assert.deepEqual(value(expandEllipses("{1...010}")), [
    "001",
    "002",
    "003",
    "004",
    "005",
    "006",
    "007",
    "008",
    "009",
    "010",
  ]);
  assert.deepEqual(value(expandEllipses("{0...3}")), ["0", "1", "2", "3"]);
  // Padding applies, but width = len("3") = 1: no visible padding.
  assert.deepEqual(value(expandEllipses("{00...3}")), ["0", "1", "2", "3"]);
  // Hex padding.
  assert.deepEqual(value(expandEllipses("{00...0f}")).slice(9, 12), ["09", "0a", "0b"]);
});

Deno.test("expandEllipses: several tokens, left-most varies fastest", () => {
  assert.deepEqual(value(expandEllipses("http://h{1...2}:900{1...2}")), [
    "http://h1:9001",
    "http://h2:9001",
    "http://h1:9002",
    "http://h2:9002",
  ]);
  assert.deepEqual(value(expandEllipses("{1...2}{a...b}{7...8}")), [
    "1a7",
    "2a7",
    "1b7",
    "2b7",
    "1a8",
    "2a8",
    "1b8",
    "2b8",
  ]);
});

Deno.test("expandEllipses: START > END is an error naming the range", () => {
  const e = error(expandEllipses("http://h{5...1}"));
  assert.match(e, /^invalid range in "http:\/\/h\{5\.\.\.1\}": /);
  assert.match(e, /\{5\.\.\.1\}.*5 > 1/);
  // Values are reported in decimal, as Go does.
  assert.match(error(expandEllipses("{f...a}")), /15 > 10/);
});

Deno.test("expandEllipses: malformed ranges are errors", () => {
  for (
    const bad of [
      "http://h{A...D}", // upper case
      "http://h{1,2}", // not a range
      "http://a...b", // no braces
      "http://h{1...x}", // neither decimal nor hex
      "http://h{...}", // empty sides
      "http://h{1...}",
      "http://h{...3}",
      "http://h{1..4}", // two dots
      "http://h{1....4}",
      "http://h{1...2...3}",
      "http://h{{1...2}}", // stray braces around a range
      "http://{h{1...2}",
      "http://h{1...2}}",
      "http://h}{1...2}",
      "http://h{1...2}{",
      "http://h{1...2}.a...b", // stray `...` next to a valid range
      "http://h{ 1...2}",
      "http://h{0...1ffffffffffffffff}", // beyond uint64
    ]
  ) {
    assert.deepEqual(
      error(expandEllipses(bad)),
      `invalid range in ${JSON.stringify(bad)}: ${RANGE_FORMAT}`,
      bad,
    );
  }
});

Deno.test("expandEllipses: absurd expansions are refused quickly", () => {
  const tooMany = `expands to more than ${MAX_ENDPOINTS} endpoints`;
  assert.match(error(expandEllipses("http://h{0...99999}")), new RegExp(tooMany));
  assert.match(error(expandEllipses("http://h{0...ffffffffffffffff}")), new RegExp(tooMany));
  assert.match(error(expandEllipses("http://h{1...100}-{1...101}")), new RegExp(tooMany));
  assert.match(error(expandEllipses("{1...10}".repeat(40))), new RegExp(tooMany));
  // Exactly at the limit is fine.
  assert.deepEqual(value(expandEllipses("http://h{1...100}-{1...100}")).length, MAX_ENDPOINTS);
});

// ---------------------------------------------------------------------------------------------
// splitting, per-site rules

Deno.test("parseSite: one endpoint", () => {
  assert.deepEqual(value(parseSite("http://127.0.0.1:9001")), ["http://127.0.0.1:9001"]);
});

Deno.test("parseSite: pools are split on ',' and expanded in order (help text example)", () => {
  assert.deepEqual(value(parseSite("http://172.17.0.{2...5},http://172.17.0.{6...9}")), [
    "http://172.17.0.2",
    "http://172.17.0.3",
    "http://172.17.0.4",
    "http://172.17.0.5",
    "http://172.17.0.6",
    "http://172.17.0.7",
    "http://172.17.0.8",
    "http://172.17.0.9",
  ]);
});

Deno.test("parseSite: systemd example expands to 8 endpoints with port", () => {
  const v = value(parseSite("http://172.17.0.{11...18}:9000"));
  assert.deepEqual(v.length, 8);
  assert.deepEqual(v[0], "http://172.17.0.11:9000");
  assert.deepEqual(v[7], "http://172.17.0.18:9000");
});

Deno.test("parseSite: plain comma-separated endpoints", () => {
  assert.deepEqual(value(parseSite("http://a:9000,http://b:9000/")), [
    "http://a:9000",
    "http://b:9000",
  ]);
});

Deno.test("parseSite: ellipsis error names the SITE", () => {
  assert.deepEqual(
    error(parseSite("http://h{1...x}:9000")),
    `invalid SITE "http://h{1...x}:9000": ${RANGE_FORMAT}`,
  );
  assert.match(error(parseSite("http://a{1...2},http://b{3...1}")), /^invalid SITE .*3 > 1/);
  assert.deepEqual(
    error(parseSite("http://h{A...D}")),
    `invalid SITE "http://h{A...D}": ${RANGE_FORMAT}`,
  );
  assert.deepEqual(
    error(parseSite("http://a...b")),
    `invalid SITE "http://a...b": ${RANGE_FORMAT}`,
  );
});

Deno.test("parseSite: ranges expand only when every pool has one", () => {
  const e = error(parseSite("http://h{1...4},http://x"));
  assert.match(e, /^invalid SITE "http:\/\/h\{1\.\.\.4\},http:\/\/x": "http:\/\/h\{1\.\.\.4\}"/);
  assert.match(e, /every endpoint of the SITE/);
  assert.match(error(parseSite("http://x,http://h{1...4}")), /every endpoint of the SITE/);
});

Deno.test("parseSite: left-over braces are rejected clearly", () => {
  assert.match(error(parseSite("http://h{1")), /^unexpected character "\{" in "http:\/\/h\{1"/);
  assert.match(error(parseSite("http://h}1")), /^unexpected character "\}" in "http:\/\/h\}1"/);
});

Deno.test("parseSite: empty elements are errors", () => {
  assert.deepEqual(
    error(parseSite("http://a:9000,")),
    `empty endpoint in SITE "http://a:9000,": remove the extra ","`,
  );
  assert.match(error(parseSite(",http://a:9000")), /^empty endpoint in SITE/);
  assert.match(error(parseSite("http://a,,http://b")), /^empty endpoint in SITE/);
  // Even when the other pools have ranges.
  assert.match(error(parseSite("http://a{1...2},")), /^empty endpoint in SITE/);
  assert.match(error(parseSite("")), /^empty SITE/);
});

Deno.test("parseSite: a SITE may not exceed the endpoint cap", () => {
  const half = "http://h{1...5000}";
  assert.deepEqual(value(parseSite(`${half},${half}`)).length, MAX_ENDPOINTS);
  assert.match(error(parseSite(`${half},${half},http://x{1...1}`)), /more than 10000 endpoints/);
});

// ---------------------------------------------------------------------------------------------
// endpoint validation

Deno.test("parseSite: one trailing slash is removed, the path is kept", () => {
  assert.deepEqual(value(parseSite("http://h:9000/")), ["http://h:9000"]);
  assert.deepEqual(value(parseSite("http://h:9000//")), ["http://h:9000/"]);
  assert.deepEqual(value(parseSite("http://h:9000/api/")), ["http://h:9000/api"]);
  assert.deepEqual(value(parseSite("http://h:9000/api")), ["http://h:9000/api"]);
});

Deno.test("parseSite: the endpoint is kept as written", () => {
  assert.deepEqual(value(parseSite("HTTP://MinIO1:9000")), ["HTTP://MinIO1:9000"]);
  assert.deepEqual(value(parseSite("https://minio.example.com")), ["https://minio.example.com"]);
});

Deno.test("parseSite: duplicate endpoints are kept", () => {
  assert.deepEqual(value(parseSite("http://a:9000,http://a:9000")), [
    "http://a:9000",
    "http://a:9000",
  ]);
});

Deno.test("parseSite: endpoints without scheme are rejected", () => {
  // Go: `127.0.0.1:9000` fails URL parsing; `minio1:9000` parses with scheme "minio1".
  assert.deepEqual(
    error(parseSite("127.0.0.1:9000")),
    `missing scheme in "127.0.0.1:9000": use http:// or https://`,
  );
  assert.deepEqual(
    error(parseSite("minio1:9000")),
    `unexpected scheme in "minio1:9000": use http:// or https://`,
  );
  assert.match(error(parseSite("//host:9000")), /^missing scheme in "\/\/host:9000"/);
  assert.match(error(parseSite("bad")), /^missing scheme in "bad"/);
  assert.match(error(parseSite("ftp://h:21")), /^unexpected scheme in "ftp:\/\/h:21"/);
  assert.match(error(parseSite("http:h:9000")), /^invalid endpoint "http:h:9000"/);
  assert.match(error(parseSite("http:/h:9000")), /^invalid endpoint "http:\/h:9000"/);
});

Deno.test("parseSite: empty host is rejected", () => {
  assert.deepEqual(error(parseSite("http://")), `missing host in "http://"`);
  assert.deepEqual(error(parseSite("https://")), `missing host in "https://"`);
  assert.deepEqual(error(parseSite("http:///x")), `missing host in "http:///x"`);
  assert.deepEqual(error(parseSite("http://:9000")), `missing host in "http://:9000"`);
});

Deno.test("parseSite: all endpoints of a SITE share the first one's scheme", () => {
  assert.deepEqual(
    error(parseSite("http://a,https://b")),
    `all endpoints of one SITE must use the same scheme: "https://b" differs from "http://a"`,
  );
  assert.match(error(parseSite("https://a{1...2},http://b{1...2}")), /same scheme/);
  // Scheme case does not matter.
  assert.deepEqual(value(parseSite("HTTP://a,http://b")), ["HTTP://a", "http://b"]);
});

Deno.test("parseSites: different sites may use different schemes", () => {
  assert.deepEqual(value(parseSites(["http://a:9000", "https://b:9000"])), [
    ["http://a:9000"],
    ["https://b:9000"],
  ]);
});

Deno.test("parseSite: ports", () => {
  assert.deepEqual(value(parseSite("http://h:65535")), ["http://h:65535"]);
  assert.deepEqual(value(parseSite("http://h:1")), ["http://h:1"]);
  for (const bad of ["http://h:65536", "http://h:99999", "http://h:0", "http://h:", "http://h:x"]) {
    assert.deepEqual(
      error(parseSite(bad)),
      `invalid port in ${JSON.stringify(bad)}: must be a number 1..65535`,
    );
  }
});

Deno.test("parseSite: errors in expanded endpoints name the SITE too", () => {
  assert.deepEqual(
    error(parseSite("http://h{1...3}:99999")),
    `invalid port in "http://h1:99999": must be a number 1..65535 (from SITE "http://h{1...3}:99999")`,
  );
});

Deno.test("parseSite: hostname length limits", () => {
  const label63 = "a".repeat(63);
  assert.deepEqual(value(parseSite(`http://${label63}:9000`)), [`http://${label63}:9000`]);
  assert.match(
    error(parseSite(`http://${"a".repeat(64)}:9000`)),
    /^hostname label longer than 63 characters in "http:\/\/a{64}:9000"$/,
  );
  // 4 × 63 + 3 dots = 255 > 253; 3 × 63 + 61 + 3 = 253 is fine.
  const long = [label63, label63, label63, label63].join(".");
  assert.match(error(parseSite(`http://${long}`)), /^hostname longer than 253 characters/);
  const max = [label63, label63, label63, "b".repeat(61)].join(".");
  assert.deepEqual(max.length, 253);
  assert.deepEqual(value(parseSite(`http://${max}`)), [`http://${max}`]);
});

Deno.test("parseSite: invalid hostnames", () => {
  for (
    const bad of [
      "http://-a",
      "http://a-",
      "http://a..b",
      "http://.a",
      "http://a.b%41",
      "http://münchen.de",
      "http://a...b,http://c", // literal `...` when not every pool has a range
    ]
  ) {
    assert.match(error(parseSite(bad)), /^invalid hostname in |every endpoint of the SITE/, bad);
  }
  assert.match(error(parseSite("http://h 1")), /^unexpected whitespace in "http:\/\/h 1"/);
  // Go never trims: a space after a comma is an error.
  assert.match(error(parseSite("http://a, http://b")), /^unexpected whitespace in " http:\/\/b"/);
  assert.match(error(parseSite("http://a\\b")), /^unexpected character "\\\\"/);
});

Deno.test("parseSite: fix: underscores in hostnames are accepted (docker-compose names)", () => {
  assert.deepEqual(value(parseSite("http://minio_1:9000")), ["http://minio_1:9000"]);
  assert.deepEqual(value(parseSite("http://minio_{1...2}:9000")), [
    "http://minio_1:9000",
    "http://minio_2:9000",
  ]);
  assert.deepEqual(value(parseSite("http://_srv.my_stack_minio:9000")), [
    "http://_srv.my_stack_minio:9000",
  ]);
});

Deno.test("parseSite: IPv4 addresses are strict dotted quads", () => {
  assert.deepEqual(value(parseSite("http://10.0.0.255:9000")), ["http://10.0.0.255:9000"]);
  for (
    const bad of [
      "http://256.0.0.1",
      "http://1.2.3",
      "http://010.0.0.1",
      "http://0x7f.1",
      "http://a.1",
    ]
  ) {
    assert.match(error(parseSite(bad)), /^invalid IPv4 address in /, bad);
  }
});

Deno.test("parseSite: fix: IPv6 literals in brackets are accepted", () => {
  assert.deepEqual(value(parseSite("http://[::1]:9000")), ["http://[::1]:9000"]);
  assert.deepEqual(value(parseSite("https://[2001:db8::7]")), ["https://[2001:db8::7]"]);
  assert.deepEqual(value(parseSite("http://[::ffff:10.0.0.1]:9000/")), [
    "http://[::ffff:10.0.0.1]:9000",
  ]);
  // Go's rr-dns mode produced unbracketed `http://::1:9000`; such input is refused clearly.
  assert.deepEqual(
    error(parseSite("http://::1:9000")),
    `invalid host in "http://::1:9000": write IPv6 addresses in brackets, e.g. http://[::1]:9000`,
  );
  for (const bad of ["http://[::1", "http://[::1]x", "http://[1.2.3.4]", "http://[::1::2]:9000"]) {
    assert.match(error(parseSite(bad)), /^invalid IPv6 address in /, bad);
  }
  assert.match(error(parseSite("http://[fe80::1%25eth0]:9000")), /zone identifiers/);
});

Deno.test("parseSite: userinfo, query strings and fragments are rejected", () => {
  assert.match(error(parseSite("http://user:pass@h:9000")), /^credentials are not supported in /);
  assert.match(error(parseSite("http://h:9000/?x=1")), /^query strings and fragments are not/);
  assert.match(error(parseSite("http://h:9000#frag")), /^query strings and fragments are not/);
});

// ---------------------------------------------------------------------------------------------
// parseSites

Deno.test("parseSites: endpoints per site, in argument order", () => {
  assert.deepEqual(
    value(parseSites([
      "http://site1-minio{1...2}:9000",
      "http://site2-minio{1...2}:9000,http://site2-minio{3...4}:9000",
    ])),
    [
      ["http://site1-minio1:9000", "http://site1-minio2:9000"],
      [
        "http://site2-minio1:9000",
        "http://site2-minio2:9000",
        "http://site2-minio3:9000",
        "http://site2-minio4:9000",
      ],
    ],
  );
  assert.deepEqual(value(parseSites([])), []);
});

Deno.test("parseSites: the first error wins", () => {
  assert.deepEqual(
    error(parseSites(["http://ok:9000", "minio1:9000", "http://"])),
    `unexpected scheme in "minio1:9000": use http:// or https://`,
  );
});

Deno.test("parseSites: total endpoint cap across sites", () => {
  const big = "http://h{1...5000}";
  assert.deepEqual(value(parseSites([big, big])).flat().length, MAX_ENDPOINTS);
  assert.match(error(parseSites([big, big, "http://x"])), /together expands to more than 10000/);
});

// ---------------------------------------------------------------------------------------------
// health URL (the Go sidekick's test cases, by their names)

Deno.test("healthUrl, Go case PortSetToZero", () => {
  assert.deepEqual(
    value(healthUrl("http://minio1:9000", "/minio/health/ready", 0)),
    "http://minio1:9000/minio/health/ready",
  );
});

Deno.test("healthUrl, Go case PortSetToNonZeroValue", () => {
  assert.deepEqual(
    value(healthUrl("http://minio1:9000", "/minio/health/ready", 4242)),
    "http://minio1:4242/minio/health/ready",
  );
});

Deno.test("healthUrl, Go case PortSetToUpperLimit", () => {
  assert.deepEqual(
    value(healthUrl("http://minio1:9000", "/minio/health/ready", 65535)),
    "http://minio1:65535/minio/health/ready",
  );
});

Deno.test("healthUrl, Go case BadEndpoint", () => {
  assert.match(error(healthUrl("bad", "", 0)), /^missing scheme in "bad"/);
});

Deno.test("healthUrl, Go case PortNumberBelowLowerLimit", () => {
  assert.deepEqual(
    error(healthUrl("http://minio1:9000", "/minio/health/ready", -1)),
    `invalid health check port -1: must be 0 (the endpoint's own port) or 1..65535`,
  );
});

Deno.test("healthUrl, Go case PortNumberAboveUpperLimit", () => {
  assert.match(
    error(healthUrl("http://minio1:9000", "/minio/health/ready", 65536)),
    /^invalid health check port 65536: /,
  );
  assert.match(error(healthUrl("http://minio1:9000", "/", 1.5)), /^invalid health check port 1.5/);
});

Deno.test("healthUrl: path is cleaned like Go's path.Clean, trailing slash kept", () => {
  assert.deepEqual(value(healthUrl("http://h:9000", "//a/../b", 0)), "http://h:9000/b");
  assert.deepEqual(value(healthUrl("http://h:9000", "/a/./b/", 0)), "http://h:9000/a/b/");
  assert.deepEqual(value(healthUrl("http://h:9000", "/../../x", 0)), "http://h:9000/x");
  assert.deepEqual(value(healthUrl("http://h:9000", "/a/..", 0)), "http://h:9000/");
  assert.deepEqual(value(healthUrl("http://h:9000", "/", 0)), "http://h:9000/");
  assert.deepEqual(value(healthUrl("http://h:9000", "", 0)), "http://h:9000/");
});

Deno.test("healthUrl: default ports are stripped", () => {
  assert.deepEqual(value(healthUrl("http://h:80", "/x", 0)), "http://h/x");
  assert.deepEqual(value(healthUrl("https://h:443", "/x", 0)), "https://h/x");
  assert.deepEqual(value(healthUrl("https://h:80", "/x", 0)), "https://h:80/x");
  // Also when the health port is the default one.
  assert.deepEqual(value(healthUrl("http://h:9000", "/x", 80)), "http://h/x");
});

Deno.test("healthUrl: the endpoint's path is kept, one trailing slash trimmed", () => {
  assert.deepEqual(
    value(healthUrl("http://h:9000/api/", "/minio/health/live", 0)),
    "http://h:9000/api/minio/health/live",
  );
  assert.deepEqual(value(healthUrl("http://h:9000/api", "/../x", 0)), "http://h:9000/x");
});

Deno.test("healthUrl: health path query is kept, missing leading slash added", () => {
  assert.deepEqual(value(healthUrl("http://h:9000", "/x?a=b", 0)), "http://h:9000/x?a=b");
  assert.deepEqual(value(healthUrl("http://h:9000", "x", 0)), "http://h:9000/x");
  assert.match(error(healthUrl("http://h:9000", "/x#y", 0)), /^invalid health check path "\/x#y"/);
});

Deno.test("healthUrl: IPv6 stays bracketed when the port is replaced", () => {
  assert.deepEqual(value(healthUrl("http://[::1]:9000", "/x", 0)), "http://[::1]:9000/x");
  assert.deepEqual(value(healthUrl("http://[::1]:9000", "/x", 4242)), "http://[::1]:4242/x");
  assert.deepEqual(value(healthUrl("http://[::1]", "/x", 4242)), "http://[::1]:4242/x");
});

Deno.test("healthUrl: fix: underscore hostnames are accepted", () => {
  assert.deepEqual(
    value(healthUrl("http://minio_1:9000", "/minio/health/ready", 0)),
    "http://minio_1:9000/minio/health/ready",
  );
});

Deno.test("healthUrl: invalid endpoints are rejected", () => {
  assert.match(error(healthUrl("http://", "/x", 0)), /^missing host/);
  assert.match(error(healthUrl("//h:9000", "/x", 0)), /^missing scheme/);
  assert.match(error(healthUrl("http://h:70000", "/x", 0)), /^invalid port/);
  assert.match(error(healthUrl(`http://${"a".repeat(64)}`, "/x", 0)), /^hostname label longer/);
});

Deno.test("every endpoint of parseSite has a health URL", () => {
  for (const e of value(parseSite("http://h{1...3}:9000,http://h{4...6}:9000"))) {
    assert.deepEqual(value(healthUrl(e, "/minio/health/live", 0)), `${e}/minio/health/live`);
  }
});

Deno.test("expandEllipses: ranges near the top of uint64 are exact", () => {
  assert.deepEqual(value(expandEllipses("{18446744073709551614...18446744073709551615}")), [
    "18446744073709551614",
    "18446744073709551615",
  ]);
  assert.deepEqual(value(expandEllipses("{fffffffffffffffe...ffffffffffffffff}")), [
    "fffffffffffffffe",
    "ffffffffffffffff",
  ]);
});

Deno.test("expandEllipses: many large ranges are refused before being materialised", () => {
  const start = performance.now();
  assert.match(error(expandEllipses("{1...10000}".repeat(2000))), /more than 10000 endpoints/);
  assert.ok(performance.now() - start < 1000);
});
