/**
 * Small pure formatters shared by the trace lines, the table and the metrics: IEC byte sizes as
 * `go-humanize`'s `IBytes` writes them, English ordinals (`1st`, `22nd`), Go-style clock and RFC 3339 timestamps, Go's canonical header names, and ANSI colours.
 *
 * @example
 * ```ts
 * import { formatIBytes, ordinal } from "./text_format.ts";
 * formatIBytes(1536); // "1.5 KiB"
 * ordinal(22); // "22nd"
 * ```
 * @module
 */

const IEC_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/**
 * A byte count in IEC units, exactly as `humanize.IBytes`: below 10 `"N B"`; otherwise the value
 * in the largest fitting unit rounded to one decimal, printed with one decimal below 10 and none
 * above (`9 B`, `512 B`, `1.0 KiB`, `1.5 KiB`, `10 KiB`, `1.0 MiB`). Negative or non-finite
 * counts print as `0 B`.
 */
export function formatIBytes(bytes: number): string {
  if (!(bytes > 0) || !Number.isFinite(bytes)) return "0 B";
  const n = Math.floor(bytes);
  if (n < 10) return `${n} B`;
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1024)), IEC_UNITS.length - 1);
  const val = Math.floor((n / 1024 ** e) * 10 + 0.5) / 10;
  return val < 10 ? `${val.toFixed(1)} ${IEC_UNITS[e]}` : `${roundHalfEven(val)} ${IEC_UNITS[e]}`;
}

/** Rounds to an integer the way Go's `%.0f` does (exact halves to even). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** An English ordinal as `humanize.Ordinal`: `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`, `112th`. */
export function ordinal(n: number): string {
  const mod100 = n % 100;
  let suffix = "th";
  switch (n % 10) {
    case 1:
      if (mod100 !== 11) suffix = "st";
      break;
    case 2:
      if (mod100 !== 12) suffix = "nd";
      break;
    case 3:
      if (mod100 !== 13) suffix = "rd";
      break;
  }
  return `${n}${suffix}`;
}

/**
 * Splits fractional ms since the epoch into whole ms and the nanoseconds below them, rounded to
 * the microsecond (a double holding today's epoch ms is not precise to the nanosecond).
 */
function splitMs(ms: number): [number, number] {
  let whole = Math.floor(ms);
  let us = Math.round((ms - whole) * 1e3);
  if (us >= 1e3) {
    whole += 1;
    us -= 1e3;
  }
  return [whole, us * 1e3];
}

/** UTC wall-clock time as Go's `15:04:05.000` layout (milliseconds truncated): `03:06:25.805`. */
export function formatClock(ms: number): string {
  // Arithmetic rather than a Date per trace line: UTC has no leap seconds in epoch ms.
  const t = ((Math.floor(ms) % 86_400_000) + 86_400_000) % 86_400_000;
  const two = (n: number) => (n < 10 ? "0" : "") + n;
  const milli = t % 1000;
  return `${two(Math.floor(t / 3_600_000))}:${two(Math.floor(t / 60_000) % 60)}:${
    two(Math.floor(t / 1000) % 60)
  }.${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}`;
}

/**
 * A UTC timestamp in Go's `time.RFC3339Nano` layout: fraction digits with trailing zeros trimmed,
 * no fraction at all on a whole second (`2024-05-01T12:00:01.2345Z`, `2024-05-01T12:00:01Z`).
 * The input is fractional ms since the epoch, kept to the microsecond.
 */
export function formatRfc3339Nano(ms: number): string {
  const [whole, subNs] = splitMs(ms);
  const iso = new Date(whole).toISOString(); // 2024-05-01T12:00:01.234Z
  const fraction = (String(whole - Math.floor(whole / 1000) * 1000).padStart(3, "0") +
    String(subNs).padStart(6, "0")).replace(/0+$/, "");
  return iso.slice(0, 19) + (fraction ? `.${fraction}` : "") + "Z";
}

/**
 * A header name in Go's canonical form (`content-type` → `Content-Type`, `x-amz-date` →
 * `X-Amz-Date`), as the Go sidekick prints them. Names with characters outside the token set are
 * returned unchanged, as Go does.
 */
export function canonicalHeaderName(name: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return name;
  let out = "";
  let upper = true;
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch.toLowerCase();
    upper = ch === "-";
  }
  return out;
}

/** ANSI SGR codes used by the console and the table. */
export const ANSI = {
  reset: "\x1b[0m",
  bold: "\x1b[1m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  blue: "\x1b[34m",
  magenta: "\x1b[35m",
  cyan: "\x1b[36m",
  white: "\x1b[37m",
} as const;

/** Wraps `text` in the given SGR codes when `on`, else returns it unchanged. */
export function paint(on: boolean, text: string, ...codes: string[]): string {
  return on && codes.length > 0 ? codes.join("") + text + ANSI.reset : text;
}

/** The number of bytes of `text` in UTF-8 (Go's `len` of a string). */
export function byteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** The number of code points of `text` (Go's rune count), used to pad table cells. */
export function runeLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}
