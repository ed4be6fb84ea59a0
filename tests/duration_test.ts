import assert from "node:assert/strict";
import {
  formatDuration,
  formatDurationRounded,
  parseDuration,
  roundDuration,
} from "../lib/config/duration.ts";

const NS = 1n;
const US = 1_000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;
const M = 60n * S;
const H = 60n * M;

/** Milliseconds of a whole number of nanoseconds, without losing precision on large values. */
function msOf(ns: bigint): number {
  if (ns >= -(2n ** 53n) && ns <= 2n ** 53n) return Number(ns) / 1e6;
  return Number(ns / MS) + Number(ns % MS) / 1e6;
}

function parsed(text: string): number {
  const r = parseDuration(text);
  assert.ok(r.ok, `${text}: ${r.ok ? "" : r.error}`);
  return r.value;
}

function parseError(text: string): string {
  const r = parseDuration(text);
  assert.ok(!r.ok, `${JSON.stringify(text)} should not parse`);
  return r.error;
}

// The cases of Go's time.TestParseDuration (src/time/time_test.go).
const GO_PARSE_CASES: [string, bigint][] = [
  ["0", 0n],
  ["5s", 5n * S],
  ["30s", 30n * S],
  ["1478s", 1478n * S],
  ["-5s", -5n * S],
  ["+5s", 5n * S],
  ["-0", 0n],
  ["+0", 0n],
  ["5.0s", 5n * S],
  ["5.6s", 5n * S + 600n * MS],
  ["5.s", 5n * S],
  [".5s", 500n * MS],
  ["1.0s", S],
  ["1.00s", S],
  ["1.004s", S + 4n * MS],
  ["1.0040s", S + 4n * MS],
  ["100.00100s", 100n * S + MS],
  ["10ns", 10n * NS],
  ["11us", 11n * US],
  ["12µs", 12n * US], // U+00B5
  ["12μs", 12n * US], // U+03BC
  ["13ms", 13n * MS],
  ["14s", 14n * S],
  ["15m", 15n * M],
  ["16h", 16n * H],
  ["3h30m", 3n * H + 30n * M],
  ["10.5s4m", 4n * M + 10n * S + 500n * MS],
  ["-2m3.4s", -(2n * M + 3n * S + 400n * MS)],
  ["1h2m3s4ms5us6ns", H + 2n * M + 3n * S + 4n * MS + 5n * US + 6n * NS],
  ["39h9m14.425s", 39n * H + 9n * M + 14n * S + 425n * MS],
  ["52763797000ns", 52763797000n * NS],
  ["0.3333333333333333333h", 20n * M],
  ["9007199254740993ns", (1n << 53n) + 1n],
  ["9223372036854775807ns", (1n << 63n) - 1n],
  ["9223372036854775.807us", (1n << 63n) - 1n],
  ["9223372036s854ms775us807ns", (1n << 63n) - 1n],
  ["-9223372036854775808ns", -(1n << 63n)],
  ["-9223372036854775.808us", -(1n << 63n)],
  ["0.100000000000000000000h", 6n * M],
  ["0.830103483285477580700h", 49n * M + 48n * S + 372539827n * NS],
];

Deno.test("parseDuration: Go's ParseDuration cases", () => {
  for (const [text, ns] of GO_PARSE_CASES) {
    assert.equal(parsed(text), msOf(ns), text);
  }
});

Deno.test("parseDuration: the brief's examples, in milliseconds", () => {
  assert.equal(parsed("300ms"), 300);
  assert.equal(parsed("5s"), 5000);
  assert.equal(parsed("1m30s"), 90_000);
  assert.equal(parsed("2h"), 7_200_000);
  assert.equal(parsed("1.5s"), 1500);
  assert.equal(parsed("500us"), 0.5);
  assert.equal(parsed("500µs"), 0.5);
  assert.equal(parsed("10ns"), 0.00001);
  assert.equal(parsed("-5s"), -5000);
  assert.equal(parsed("0"), 0);
});

Deno.test("parseDuration: a bare number means seconds", () => {
  assert.equal(parsed("5"), 5000);
  assert.equal(parsed("0.5"), 500);
  assert.equal(parsed(".25"), 250);
  assert.equal(parsed("5."), 5000);
  assert.equal(parsed("-2"), -2000);
  assert.equal(parsed("+3"), 3000);
  assert.equal(parsed("600"), 600_000);
  assert.equal(parsed("0.000001"), 0.001);
});

Deno.test("parseDuration: rejects what Go rejects (except bare numbers)", () => {
  for (
    const text of [
      "",
      "-",
      "+",
      "s",
      ".",
      "-.",
      ".s",
      "+.s",
      "1d",
      "5x",
      "1.5.s",
      "5s5",
      " 5s",
      "5s ",
      "5 s",
      "1h-5m",
      "1e3s",
      "five",
      "0x10s",
      "9223372036854775808ns",
      "9223372036854775.808us",
      "-9223372036854775809ns",
      "100000000000h",
    ]
  ) {
    parseError(text);
  }
});

Deno.test("parseDuration: errors are one line, quote the text and say what is accepted", () => {
  const e = parseError("5x");
  assert.match(e, /^invalid duration "5x": unknown unit "x"/);
  assert.match(e, /ms, s, m or h/);
  assert.match(e, /bare number of seconds/);
  assert.ok(!e.includes("\n"));
  assert.match(parseError(""), /^invalid duration "": empty/);
  assert.match(parseError("1.5.s"), /missing unit/);
  assert.match(parseError("1d"), /unknown unit "d"/);
  assert.match(parseError("9223372036854775808ns"), /out of range/);
});

// The cases of Go's time.TestDurationString.
const GO_STRING_CASES: [string, bigint][] = [
  ["0s", 0n],
  ["1ns", NS],
  ["1.1µs", 1100n * NS],
  ["2.2ms", 2200n * US],
  ["3.3s", 3300n * MS],
  ["4m5s", 4n * M + 5n * S],
  ["4m5.001s", 4n * M + 5001n * MS],
  ["5h6m7.001s", 5n * H + 6n * M + 7001n * MS],
  ["8m0.000000001s", 8n * M + NS],
];

Deno.test("formatDuration: Go's Duration.String cases", () => {
  for (const [text, ns] of GO_STRING_CASES) {
    assert.equal(formatDuration(msOf(ns)), text, text);
    if (ns !== 0n) assert.equal(formatDuration(-msOf(ns)), `-${text}`, `-${text}`);
  }
});

Deno.test("formatDuration: the forms sidekick prints", () => {
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(600_000), "10m0s");
  assert.equal(formatDuration(5000), "5s");
  assert.equal(formatDuration(10_000), "10s");
  assert.equal(formatDuration(1.406), "1.406ms");
  assert.equal(formatDuration(0.25), "250µs");
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(-0), "0s");
  assert.equal(formatDuration(3_600_000), "1h0m0s");
  assert.equal(formatDuration(5555.012345), "5.555012345s");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(0.00001), "10ns");
  assert.equal(formatDuration(999.999999), "999.999999ms");
  assert.equal(formatDuration(1000), "1s");
  assert.equal(formatDuration(59_999), "59.999s");
  assert.equal(formatDuration(60_000), "1m0s");
  assert.equal(formatDuration(86_400_000), "24h0m0s");
  assert.equal(formatDuration(1_000_000_000_000), "277777h46m40s");
});

Deno.test("formatDuration: sub-nanosecond input rounds to whole nanoseconds; odd inputs", () => {
  assert.equal(formatDuration(0.0000004), "0s");
  assert.equal(formatDuration(0.0000006), "1ns");
  assert.equal(formatDuration(NaN), "0s");
  assert.equal(formatDuration(Infinity), "2562047h47m16.854775807s");
  assert.equal(formatDuration(-Infinity), "-2562047h47m16.854775808s");
});

Deno.test("formatDuration round-trips parseDuration", () => {
  for (
    const text of ["1m30s", "10m0s", "5s", "1.406ms", "250µs", "1h0m0s", "5.555012345s", "7ns"]
  ) {
    assert.equal(formatDuration(parsed(text)), text);
  }
});

Deno.test("roundDuration / formatDurationRounded: Go's Duration.Round to µs", () => {
  assert.equal(formatDurationRounded(1.4064), "1.406ms");
  assert.equal(formatDurationRounded(1.4065), "1.407ms"); // halfway rounds away from zero
  assert.equal(formatDurationRounded(-1.4065), "-1.407ms");
  assert.equal(formatDurationRounded(-1.4064), "-1.406ms");
  assert.equal(formatDurationRounded(0.2504), "250µs");
  assert.equal(formatDurationRounded(0.0004), "0s");
  assert.equal(formatDurationRounded(0.0005), "1µs");
  assert.equal(formatDurationRounded(5555.012345), "5.555012s");
  assert.equal(formatDurationRounded(1500), "1.5s");
  assert.equal(formatDurationRounded(0), "0s");
  assert.equal(roundDuration(1.4065, 0.001), 1.407);
  assert.equal(roundDuration(1234.5, 1000), 1000);
  assert.equal(roundDuration(1500, 1000), 2000);
  assert.equal(roundDuration(-1500, 1000), -2000);
  assert.equal(formatDurationRounded(90_499, 1000), "1m30s");
  assert.equal(formatDurationRounded(5555.012345, 1), "5.555s");
  // A non-positive unit leaves the value as it is (Go's Round too).
  assert.equal(roundDuration(1.4065, 0), 1.4065);
  assert.equal(roundDuration(1.4065, -1), 1.4065);
});

Deno.test("formatDurationRounded: the sub-second fast path agrees with the general one", () => {
  // The general path, forced by a unit that is the same µs spelled differently.
  const general = (ms: number) => formatDurationRounded(ms, 0.0010000000000000002);
  const samples = [0, 0.0004, 0.0005, 0.0015, 0.999, 0.9995, 1, 1.0005, 1.4064, 2, 12.5, 999.9994];
  for (let i = 0; i < 20_000; i++) samples.push(Math.random() * (i % 2 ? 1000 : 2));
  for (const ms of [...samples, 999.9995, 999.99999]) {
    assert.equal(formatDurationRounded(ms), general(ms), `${ms} ms`);
  }
});
