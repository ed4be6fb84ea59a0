import assert from "node:assert/strict";
import {
  byteLength,
  canonicalHeaderName,
  formatClock,
  formatIBytes,
  formatRfc3339Nano,
  ordinal,
  paint,
  runeLength,
} from "../lib/output/text_format.ts";
import { statusText } from "../lib/shared/http_facts.ts";

Deno.test("formatIBytes writes humanize.IBytes forms", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [1, "1 B"],
    [9, "9 B"],
    [10, "10 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024, "10 KiB"],
    [10.5 * 1024, "10 KiB"], // Go's %.0f rounds exact halves to even
    [11.5 * 1024, "12 KiB"],
    [1024 * 1024 - 1, "1024 KiB"],
    [1024 * 1024, "1.0 MiB"],
    [64 * 1024 * 1024, "64 MiB"],
    [1024 ** 3 * 1.25, "1.3 GiB"],
    [1024 ** 4, "1.0 TiB"],
    [1024 ** 5 * 3, "3.0 PiB"],
    [1024 ** 6 * 2, "2.0 EiB"],
    [-5, "0 B"],
    [NaN, "0 B"],
  ];
  for (const [n, want] of cases) assert.equal(formatIBytes(n), want, `IBytes(${n})`);
});

Deno.test("ordinal writes humanize.Ordinal forms", () => {
  const cases: [number, string][] = [
    [0, "0th"],
    [1, "1st"],
    [2, "2nd"],
    [3, "3rd"],
    [4, "4th"],
    [11, "11th"],
    [12, "12th"],
    [13, "13th"],
    [21, "21st"],
    [22, "22nd"],
    [23, "23rd"],
    [101, "101st"],
    [111, "111th"],
    [112, "112th"],
  ];
  for (const [n, want] of cases) assert.equal(ordinal(n), want);
});

Deno.test("statusText follows Go's wording, empty when unknown", () => {
  assert.equal(statusText(200), "OK");
  assert.equal(statusText(502), "Bad Gateway");
  assert.equal(statusText(413), "Request Entity Too Large");
  assert.equal(statusText(418), "I'm a teapot");
  assert.equal(statusText(299), "");
});

Deno.test("formatClock is UTC HH:MM:SS.mmm, truncated", () => {
  const t = Date.UTC(2024, 4, 1, 3, 6, 25, 805) + 0.9;
  assert.equal(formatClock(t), "03:06:25.805");
});

Deno.test("formatRfc3339Nano trims trailing zeros like Go", () => {
  const base = Date.UTC(2024, 4, 1, 12, 0, 1);
  assert.equal(formatRfc3339Nano(base), "2024-05-01T12:00:01Z");
  assert.equal(formatRfc3339Nano(base + 230), "2024-05-01T12:00:01.23Z");
  assert.equal(formatRfc3339Nano(base + 5.5), "2024-05-01T12:00:01.0055Z");
  assert.equal(formatRfc3339Nano(base + 1.25), "2024-05-01T12:00:01.00125Z");
  assert.equal(formatRfc3339Nano(base + 999.9999), "2024-05-01T12:00:02Z");
});

Deno.test("canonicalHeaderName matches Go's CanonicalMIMEHeaderKey", () => {
  assert.equal(canonicalHeaderName("content-type"), "Content-Type");
  assert.equal(canonicalHeaderName("x-amz-security-token"), "X-Amz-Security-Token");
  assert.equal(canonicalHeaderName("X-REAL-IP"), "X-Real-Ip");
  assert.equal(canonicalHeaderName("etag"), "Etag");
  assert.equal(canonicalHeaderName("bad header"), "bad header");
});

Deno.test("byteLength and runeLength count UTF-8 bytes and code points", () => {
  assert.equal(byteLength("1.5µs"), 6);
  assert.equal(runeLength("1.5µs"), 5);
  assert.equal(byteLength("↑"), 3);
  assert.equal(byteLength("😀"), 4);
  assert.equal(runeLength("😀"), 1);
});

Deno.test("paint wraps in SGR codes only when on", () => {
  assert.equal(paint(false, "x", "\x1b[31m"), "x");
  assert.equal(paint(true, "x", "\x1b[31m"), "\x1b[31mx\x1b[0m");
});

Deno.test("formatClock: the same as the Date-based layout, any millisecond of any day", () => {
  const samples = [0, 999, 1_000, 86_399_999, 86_400_000, 1_700_000_000_123.9, -1];
  for (let i = 0; i < 200; i++) samples.push(Math.random() * 4e12);
  for (const ms of samples) {
    assert.equal(formatClock(ms), new Date(Math.floor(ms)).toISOString().slice(11, 23), String(ms));
  }
});
