/**
 * Go-style durations in and out.
 *
 * {@linkcode parseDuration} reads Go's `time.ParseDuration` syntax (`300ms`, `1m30s`, `-1.5h`,
 * `500µs`) and, unlike Go, also a bare number meaning seconds (`5`, `0.5`), as the help text of
 * the Go sidekick promises. {@linkcode formatDuration} writes Go's `time.Duration.String()` form
 * (`1m30s`, `10m0s`, `1.406ms`, `250µs`, `0s`). All values are milliseconds as plain numbers,
 * fractional below one millisecond; internally the arithmetic is done in whole nanoseconds, like a
 * Go `time.Duration`.
 *
 * @example
 * ```ts
 * import { formatDuration, parseDuration } from "./duration.ts";
 * const r = parseDuration("1m30s"); // { ok: true, value: 90000 }
 * if (r.ok) console.log(formatDuration(r.value)); // "1m30s"
 * ```
 * @module
 */

import { err, ok, type Result } from "../shared/result.ts";

const NS_PER_US = 1_000n;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const NS_PER_MIN = 60n * NS_PER_S;
const NS_PER_H = 60n * NS_PER_MIN;
/** The largest Go `time.Duration`, in nanoseconds (2^63 - 1). */
const MAX_NS = (1n << 63n) - 1n;

/** Unit suffix → nanoseconds, as in Go's `time` package (both micro signs are accepted). */
const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", NS_PER_US],
  ["\u00b5s", NS_PER_US], // µ MICRO SIGN
  ["\u03bcs", NS_PER_US], // μ GREEK SMALL LETTER MU
  ["ms", NS_PER_MS],
  ["s", NS_PER_S],
  ["m", NS_PER_MIN],
  ["h", NS_PER_H],
]);

const UNIT_HINT =
  "use ns, us, µs, ms, s, m or h (e.g. 500ms, 5s, 1m30s) or a bare number of seconds";

/** A bare decimal number (meaning seconds): `5`, `-5`, `0.5`, `.5`, `5.`. */
const BARE_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

/**
 * Parses a duration into milliseconds (possibly fractional, nanosecond resolution).
 *
 * Accepts Go syntax — an optional sign then one or more `<number><unit>` parts, units `ns`, `us`,
 * `µs`, `ms`, `s`, `m`, `h` (`300ms`, `1m30s`, `1.5s`, `-5s`, `0`) — and a bare number meaning
 * seconds (`5` → 5000, `0.5` → 500). Fractions below a nanosecond are truncated, as in Go.
 * Anything else gives a one-line error naming the text.
 */
export function parseDuration(text: string): Result<number> {
  const source = BARE_NUMBER.test(text) ? `${text}s` : text;
  const ns = parseGoDuration(source);
  if (typeof ns === "string") return err(`invalid duration ${JSON.stringify(text)}: ${ns}`);
  return ok(nsToMs(ns));
}

/** Go's `time.ParseDuration` over BigInt nanoseconds; a string is the reason for a failure. */
function parseGoDuration(text: string): bigint | string {
  let s = text;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return `empty; ${UNIT_HINT}`;
  let total = 0n;
  while (s !== "") {
    const part = /^(\d*)(?:\.(\d*))?/.exec(s);
    const whole = part?.[1] ?? "";
    const fraction = part?.[2];
    if (whole === "" && (fraction === undefined || fraction === "")) {
      return `expected a number at ${JSON.stringify(s)}; ${UNIT_HINT}`;
    }
    s = s.slice(part?.[0].length ?? 0);
    const unitText = /^[^0-9.]*/.exec(s)?.[0] ?? "";
    if (unitText === "") return `missing unit; ${UNIT_HINT}`;
    const unit = UNITS.get(unitText);
    if (unit === undefined) return `unknown unit ${JSON.stringify(unitText)}; ${UNIT_HINT}`;
    s = s.slice(unitText.length);
    let value = BigInt(whole === "" ? "0" : whole) * unit;
    if (fraction) value += fractionNs(fraction, unit);
    total += value;
    if (total > MAX_NS + (negative ? 1n : 0n)) return "out of range (at most 2562047h47m16s)";
  }
  return negative ? -total : total;
}

/**
 * The nanoseconds of `0.<digits>` units, computed as Go does (float64, digits beyond int64
 * precision dropped, truncated), so that e.g. `0.3333333333333333333h` is exactly 20m as in Go.
 */
function fractionNs(digits: string, unit: bigint): bigint {
  let f = 0n;
  let scale = 1;
  for (const ch of digits) {
    if (f > MAX_NS / 10n) break;
    f = f * 10n + BigInt(ch);
    scale *= 10;
  }
  return BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
}

/**
 * Formats milliseconds the way Go's `time.Duration.String()` does: `0s`, `10ns`, `250µs`,
 * `1.406ms`, `5s`, `1m30s`, `10m0s`, `1h0m0s`, `5.555012345s`, `-5s`.
 *
 * The input is first rounded to whole nanoseconds. `NaN` gives `0s`; infinities saturate at the
 * largest Go duration.
 */
export function formatDuration(ms: number): string {
  return formatNs(msToNs(ms));
}

/**
 * Rounds `ms` to the nearest multiple of `unitMs` (halfway values away from zero), like Go's
 * `time.Duration.Round`. A `unitMs` of zero or less (or below one nanosecond) returns `ms`
 * unchanged, rounded to whole nanoseconds.
 */
export function roundDuration(ms: number, unitMs: number): number {
  return nsToMs(roundNs(msToNs(ms), msToNs(unitMs)));
}

/**
 * {@linkcode formatDuration} of {@linkcode roundDuration}: Go's `d.Round(unit).String()`. The unit
 * defaults to one microsecond, as used by the trace lines and the table (`1.406ms`, `250µs`).
 */
export function formatDurationRounded(ms: number, unitMs = 0.001): string {
  if (unitMs === 0.001 && ms >= 0 && ms < 1000) return formatSubsecondMicros(ms);
  return formatNs(roundNs(msToNs(ms), msToNs(unitMs)));
}

/**
 * The same as the general path for 0 ≤ `ms` < 1 s rounded to µs — every trace line's latency —
 * in plain numbers: whole nanoseconds stay exact in a double there, and the general path's BigInt
 * arithmetic was a measurable share of a trace line's cost.
 */
function formatSubsecondMicros(ms: number): string {
  const whole = Math.trunc(ms);
  const ns = whole * 1e6 + Math.round((ms - whole) * 1e6);
  const r = ns % 1000;
  const us = (r + r < 1000 ? ns - r : ns + 1000 - r) / 1000;
  if (us === 0) return "0s";
  if (us < 1000) return `${us}µs`;
  if (us >= 1e6) return "1s";
  const frac = us % 1000;
  if (frac === 0) return `${(us - frac) / 1000}ms`;
  // The fraction's digits without trailing zeros (.5, .05, .12, .005), without a RegExp per line.
  const digits = frac % 100 === 0
    ? String(frac / 100)
    : frac % 10 === 0
    ? (frac < 100 ? "0" : "") + frac / 10
    : (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac;
  return `${(us - frac) / 1000}.${digits}ms`;
}

/** Milliseconds → whole nanoseconds (NaN → 0, saturating at the Go duration range). */
function msToNs(ms: number): bigint {
  if (Number.isNaN(ms)) return 0n;
  if (ms >= 9.223372036854776e12) return MAX_NS;
  if (ms <= -9.223372036854776e12) return -MAX_NS - 1n;
  const whole = Math.trunc(ms);
  // Split so that large values keep their precision: whole ms exactly, the fraction rounded.
  return BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
}

/** Whole nanoseconds → milliseconds (one correctly rounded division while exact in a double). */
function nsToMs(ns: bigint): number {
  const safe = ns <= BigInt(Number.MAX_SAFE_INTEGER) && ns >= BigInt(Number.MIN_SAFE_INTEGER);
  return safe ? Number(ns) / 1e6 : Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;
}

/** Go's `Duration.Round` over BigInt nanoseconds. */
function roundNs(ns: bigint, unit: bigint): bigint {
  if (unit <= 0n) return ns;
  let r = ns % unit;
  if (ns < 0n) {
    r = -r;
    return r + r < unit ? ns + r : ns - unit + r;
  }
  return r + r < unit ? ns - r : ns + unit - r;
}

/** Go's `Duration.String` over BigInt nanoseconds. */
function formatNs(ns: bigint): string {
  if (ns === 0n) return "0s";
  const negative = ns < 0n;
  const u = negative ? -ns : ns;
  let text: string;
  if (u < NS_PER_US) text = `${u}ns`;
  else if (u < NS_PER_MS) text = `${decimal(u, 3)}µs`;
  else if (u < NS_PER_S) text = `${decimal(u, 6)}ms`;
  else {
    const seconds = `${decimal(u % NS_PER_MIN, 9)}s`;
    const minutes = (u / NS_PER_MIN) % 60n;
    const hours = u / NS_PER_H;
    if (hours > 0n) text = `${hours}h${minutes}m${seconds}`;
    else if (minutes > 0n) text = `${minutes}m${seconds}`;
    else text = seconds;
  }
  return negative ? `-${text}` : text;
}

/** `value / 10^digits` as a decimal with trailing zeros (and a bare point) trimmed. */
function decimal(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const fraction = (value % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return fraction === "" ? `${value / scale}` : `${value / scale}.${fraction}`;
}
