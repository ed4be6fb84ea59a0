/**
 * The fleet monitoring kit in `deploy/`: the Prometheus rules (`promtool check rules`, and their
 * unit tests with `promtool test rules`), the Grafana dashboard (its structure, and every PromQL
 * expression accepted by promtool), that every metric and label they use is one a running sidekick
 * exports (so renaming a metric fails here until the rules and the dashboard follow), and that the
 * Kubernetes PrometheusRule is what `tools/prometheus_rule.ts` generates from the rules file.
 *
 * The tests that need promtool are ignored, with the reason in their names, where promtool is
 * missing (see `helpers/tools.ts`); everything else always runs.
 */

import assert from "node:assert/strict";
import { startBackend } from "./helpers/backends.ts";
import { startSidekick } from "./helpers/sidekick_process.ts";
import { promtool } from "./helpers/promtool.ts";
import { needing } from "./helpers/tools.ts";
import { PROMETHEUS_RULE_PATH, prometheusRule, RULES_PATH } from "../tools/prometheus_rule.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DASHBOARD_PATH = "deploy/grafana/sidekick.json";
const RULE_TESTS_DIR = "deploy/prometheus/tests";

const read = (path: string) => Deno.readTextFile(ROOT + path);

// ---------------------------------------------------------------------------------------------
// promtool

/** Runs promtool in the repository root (tests that call it are ignored where it is missing). */
async function runPromtool(args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command("promtool", {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: output.code, out: dec.decode(output.stdout) + dec.decode(output.stderr) };
}

// ---------------------------------------------------------------------------------------------
// The rules file, read with a parser for the subset of YAML it is written in (no dependency).
// promtool reads it properly; the rule count it reports is compared with what is found here.

interface Rule {
  kind: "record" | "alert";
  name: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const indentOf = (line: string) => line.length - line.trimStart().length;
const blank = (line: string) => line.trim() === "";

/**
 * The scalar value of a `key: rest` line at `indent`, and the index of the next line: a block
 * scalar (`|`, `|-`, `>`, `>-`) taken from the more-indented lines below it, or a plain or quoted
 * inline value.
 */
function scalar(lines: string[], i: number, indent: number, rest: string): [string, number] {
  const style = /^([|>])[-+]?\s*$/.exec(rest);
  if (!style) {
    if (rest.startsWith('"')) return [JSON.parse(rest), i + 1];
    if (rest.startsWith("'")) return [rest.slice(1, -1).replaceAll("''", "'"), i + 1];
    return [rest.trim(), i + 1];
  }
  const body: string[] = [];
  let j = i + 1;
  while (j < lines.length && (blank(lines[j]) || indentOf(lines[j]) > indent)) {
    body.push(lines[j++]);
  }
  while (body.length > 0 && blank(body[body.length - 1])) body.pop();
  const strip = Math.min(...body.filter((l) => !blank(l)).map(indentOf));
  const text = body.map((l) => l.slice(strip));
  return [style[1] === "|" ? text.join("\n") : text.join(" ").replace(/ {2,}/g, " "), j];
}

/** `key: value` lines indented deeper than `indent`, from line `i`. */
function mapping(lines: string[], i: number, indent: number): [Record<string, string>, number] {
  const out: Record<string, string> = {};
  while (i < lines.length && (blank(lines[i]) || indentOf(lines[i]) > indent)) {
    if (blank(lines[i]) || lines[i].trim().startsWith("#")) {
      i++;
      continue;
    }
    const kv = /^(\s*)([\w.-]+):\s*(.*)$/.exec(lines[i]);
    if (!kv) throw new Error(`cannot read line ${i + 1}: ${lines[i]}`);
    [out[kv[2]], i] = scalar(lines, i, kv[1].length, kv[3]);
  }
  return [out, i];
}

function parseRules(text: string): Rule[] {
  const lines = text.split("\n");
  const rules: Rule[] = [];
  let i = 0;
  while (i < lines.length) {
    const item = /^(\s*)- (record|alert): (\S+)\s*$/.exec(lines[i]);
    if (!item) {
      i++;
      continue;
    }
    const keyIndent = item[1].length + 2;
    const rule: Rule = {
      kind: item[2] as Rule["kind"],
      name: item[3],
      expr: "",
      labels: {},
      annotations: {},
    };
    rules.push(rule);
    i++;
    while (i < lines.length && (blank(lines[i]) || indentOf(lines[i]) >= keyIndent)) {
      if (blank(lines[i]) || lines[i].trim().startsWith("#")) {
        i++;
        continue;
      }
      const kv = /^(\s*)(\w+):\s*(.*)$/.exec(lines[i]);
      if (!kv || kv[1].length !== keyIndent) {
        throw new Error(`cannot read line ${i + 1} of rule ${rule.name}: ${lines[i]}`);
      }
      const [, , key, rest] = kv;
      if (key === "labels" || key === "annotations") {
        [rule[key], i] = mapping(lines, i + 1, keyIndent);
      } else {
        let value;
        [value, i] = scalar(lines, i, keyIndent, rest);
        if (key === "expr") rule.expr = value;
      }
    }
    // A rule's item also swallows the comments that introduce the next one: harmless here.
  }
  return rules;
}

// ---------------------------------------------------------------------------------------------
// PromQL: the metric and label names an expression uses, by plain text processing.

const PROMQL_KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "inf",
  "nan",
]);

function promqlNames(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  // String literals hold label values and regexes, never names.
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{([^}]*)\}/g, (_, matchers: string) => {
    for (const m of matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return " ";
  });
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, list) => {
    for (const l of (list as string).split(",")) if (l.trim()) labels.add(l.trim());
    return " ";
  });
  for (const m of s.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(\s*\()?/g)) {
    if (m[2] !== undefined) continue; // a function or an aggregation
    if (PROMQL_KEYWORDS.has(m[1].toLowerCase())) continue;
    metrics.add(m[1]);
  }
  return { metrics, labels };
}

Deno.test("promqlNames finds metrics and labels, and leaves out functions, keywords, strings", () => {
  const { metrics, labels } = promqlNames(
    'sum by (job, site) (rate(a_total{endpoint=~"x{1}y", result="failure"}[5m] offset 1m))\n' +
      "/ on (job) group_left (site) (b:c:rate5m > bool 1e-3) and histogram_quantile(0.99, d_bucket)",
  );
  assert.deepEqual([...metrics].sort(), ["a_total", "b:c:rate5m", "d_bucket"]);
  assert.deepEqual([...labels].sort(), ["endpoint", "job", "result", "site"]);
});

// ---------------------------------------------------------------------------------------------
// The dashboard

interface Target {
  expr: string;
  refId: string;
  format?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { uid?: string };
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await read(DASHBOARD_PATH));
}

/** Every panel, those inside collapsed rows included. */
function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

const variableQuery = (v: Variable) => (typeof v.query === "string" ? v.query : v.query.query);

/**
 * `expr` with Grafana's variables replaced by plausible values, so that promtool can parse it:
 * the dashboard's query variables by a regex matching anything, the interval ones by a duration.
 * An unknown variable is an error (promtool would reject it anyway, less clearly).
 */
function substituteVariables(expr: string, d: Dashboard): string {
  const known = new Set(d.templating.list.map((v) => v.name));
  const intervals = new Set(["__rate_interval", "__interval", "__range"]);
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (_, a, b, c) => {
    const name = a ?? b ?? c;
    if (intervals.has(name)) return "5m";
    if (known.has(name)) return ".+";
    throw new Error(`unknown dashboard variable $${name} in: ${expr}`);
  });
}

/** Every PromQL expression of the dashboard, variables substituted, with where it comes from. */
function dashboardExpressions(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) {
      out.push({
        where: `panel ${p.id} "${p.title}" ${t.refId}`,
        expr: substituteVariables(t.expr, d),
      });
    }
  }
  for (const v of d.templating.list.filter((v) => v.type === "query")) {
    // label_values(SELECTOR, LABEL): the selector is PromQL, the label must be exported.
    const m = /^label_values\((.*),\s*(\w+)\)$/s.exec(variableQuery(v).trim());
    assert.ok(m, `variable ${v.name}: expected label_values(selector, label)`);
    out.push({
      where: `variable ${v.name}`,
      expr: `group by (${m[2]}) (${substituteVariables(m[1], d)})`,
    });
  }
  return out;
}

Deno.test("dashboard: a Prometheus datasource variable, job/instance/site/endpoint variables, every panel on ${datasource}", async () => {
  const d = await dashboard();
  assert.equal(d.uid, "sidekick-fleet");
  const vars = new Map(d.templating.list.map((v) => [v.name, v]));
  const ds = vars.get("datasource");
  assert.ok(ds, "a datasource variable");
  assert.equal(ds.type, "datasource");
  assert.equal(ds.query, "prometheus");
  for (const name of ["job", "instance", "site", "endpoint"]) {
    const v = vars.get(name);
    assert.ok(v, `a ${name} variable`);
    assert.equal(v.type, "query");
    assert.equal(v.datasource?.uid, "${datasource}");
  }
  const panels = allPanels(d).filter((p) => p.type !== "row");
  for (const p of panels) {
    assert.equal(p.datasource?.uid, "${datasource}", `panel "${p.title}" datasource`);
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has queries`);
    for (const t of p.targets!) {
      assert.equal(t.datasource?.uid ?? "${datasource}", "${datasource}", `panel "${p.title}"`);
      assert.ok(t.expr.trim(), `panel "${p.title}" ${t.refId} has an expression`);
    }
  }
  const types = new Set(panels.map((p) => p.type));
  assert.ok(types.has("state-timeline"), "a state-timeline panel (backend UP/DOWN)");
  const heatmap = panels.find((p) => p.type === "heatmap");
  assert.ok(heatmap, "a heatmap panel (latency)");
  assert.equal(heatmap.targets![0].format, "heatmap");
});

Deno.test("dashboard: unique panel ids, panels inside the 24-column grid and not overlapping", async () => {
  const panels = allPanels(await dashboard());
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const cells = new Map<string, string>();
  for (const p of panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, `panel "${p.title}" grid`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        const other = cells.get(`${i},${j}`);
        assert.equal(other, undefined, `"${p.title}" overlaps "${other}"`);
        cells.set(`${i},${j}`, p.title);
      }
    }
  }
});

Deno.test("dashboard: graphs traffic, errors, latency, backend state, in-flight, health checks, retries, ejections, hedges, broken bodies, bytes, trace drops, CPU, memory", async () => {
  const used = new Set<string>();
  for (const { expr } of dashboardExpressions(await dashboard())) {
    for (const m of promqlNames(expr).metrics) used.add(m);
  }
  for (
    const m of [
      "job_site_endpoint:sidekick_requests:rate5m",
      "job_site:sidekick_requests:rate5m",
      "job_site_endpoint:sidekick_errors:rate5m",
      "job_site:sidekick_errors:rate5m",
      "sidekick_requests_total",
      "sidekick_errors_total",
      "sidekick_request_duration_seconds_bucket",
      "sidekick_backend_up",
      "sidekick_requests_in_flight",
      "sidekick_health_checks_total",
      "sidekick_retries_total",
      "sidekick_retry_budget_exhausted_total",
      "sidekick_backend_ejections_total",
      "sidekick_backend_ejected",
      "sidekick_hedges_total",
      "sidekick_responses_aborted_total",
      "sidekick_rx_bytes_total",
      "sidekick_tx_bytes_total",
      "sidekick_trace_lines_dropped_total",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
    ]
  ) {
    assert.ok(used.has(m), `the dashboard uses ${m}`);
  }
});

Deno.test({
  ...needing(
    "dashboard: promtool accepts every PromQL expression (variables substituted)",
    promtool,
  ),
  fn: async () => {
    const exprs = dashboardExpressions(await dashboard());
    // A rules file with one recording rule per expression: `promtool check rules` parses them all.
    const rules = "groups:\n  - name: dashboard\n    rules:\n" +
      exprs.map(({ expr }, i) =>
        `      - record: dashboard_expr_${i}\n        expr: ${JSON.stringify(expr)}\n`
      )
        .join("");
    const file = await Deno.makeTempFile({ suffix: ".yml" });
    try {
      await Deno.writeTextFile(file, rules);
      const r = await runPromtool(["check", "rules", file]);
      assert.equal(
        r.code,
        0,
        `promtool check rules on the dashboard's expressions:\n${r.out}\n` +
          exprs.map(({ where, expr }, i) => `dashboard_expr_${i}: ${where}: ${expr}`).join("\n"),
      );
      assert.match(r.out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      await Deno.remove(file);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// The rules

Deno.test({
  ...needing("rules: promtool check rules is clean and finds every rule this test reads", promtool),
  fn: async () => {
    const rules = parseRules(await read(RULES_PATH));
    const r = await runPromtool(["check", "rules", RULES_PATH]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${rules.length} rules found`), r.out);
    assert.doesNotMatch(r.out, /WARNING|warn/i);
  },
});

Deno.test({
  ...needing(
    "rules: promtool test rules passes every unit test in deploy/prometheus/tests",
    promtool,
  ),
  fn: async () => {
    const files: string[] = [];
    for await (const e of Deno.readDir(ROOT + RULE_TESTS_DIR)) {
      if (e.isFile && e.name.endsWith(".yml")) files.push(`${RULE_TESTS_DIR}/${e.name}`);
    }
    assert.ok(files.length > 0);
    const r = await runPromtool(["test", "rules", ...files.sort()]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.match(/SUCCESS/g)?.length, files.length, r.out);
  },
});

Deno.test("rules: each alert has a severity, a summary, a description, a runbook, and a threshold label that matches its expression", async () => {
  const alerts = parseRules(await read(RULES_PATH)).filter((r) => r.kind === "alert");
  assert.ok(alerts.length >= 9, "the alerts are read");
  for (const a of alerts) {
    assert.ok(["warning", "critical"].includes(a.labels.severity), `${a.name}: severity`);
    for (const k of ["summary", "description", "runbook"]) {
      assert.ok((a.annotations[k] ?? "").length > 10, `${a.name}: annotation ${k}`);
    }
    assert.match(
      a.annotations.runbook,
      /\b(first|First)\b/,
      `${a.name}: the runbook says what to check first`,
    );
    // An operator tunes the number in the expression; the label says which number that is.
    const numbers = [...a.expr.matchAll(/>\s*(\d+(?:\.\d+)?)(?![\d.])/g)].map((m) => m[1]);
    if (a.labels.threshold !== undefined) {
      assert.ok(
        numbers.includes(a.labels.threshold),
        `${a.name}: threshold ${a.labels.threshold} is not in: ${a.expr}`,
      );
    }
  }
});

Deno.test("rules: every alert has a unit test where it fires and one where it must not", async () => {
  const alerts = parseRules(await read(RULES_PATH)).filter((r) => r.kind === "alert");
  let tests = "";
  for await (const e of Deno.readDir(ROOT + RULE_TESTS_DIR)) {
    if (e.isFile && e.name.endsWith(".yml")) tests += await read(`${RULE_TESTS_DIR}/${e.name}`);
  }
  for (const a of alerts) {
    assert.match(
      tests,
      new RegExp(`alertname: ${a.name}\\n\\s*exp_alerts:\\s*\\n\\s*- exp_labels:`),
      `${a.name} fires in a test`,
    );
    assert.match(
      tests,
      new RegExp(`alertname: ${a.name}\\n\\s*exp_alerts: \\[\\]`),
      `${a.name} stays silent in a test`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Drift: the names used are the names exported.

/** Sample names and label names of a text exposition. */
function exported(text: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s/.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    metrics.add(m[1]);
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]);
  }
  return { metrics, labels };
}

Deno.test("every metric and label the rules and the dashboard use is one a running sidekick exports", async () => {
  const backend = await startBackend("b1");
  const sk = await startSidekick([
    "--health-path",
    "/health",
    "--health-duration",
    "100ms",
    "--quiet",
    backend.url,
  ]);
  let text: string;
  try {
    await sk.waitHealthy();
    const res = await fetch(`${sk.url}/object`);
    assert.equal(await res.text(), "b1");
    const m = await fetch(`${sk.url}/.prometheus/metrics`);
    assert.equal(m.status, 200);
    text = await m.text();
  } finally {
    await sk.stop();
    await backend.close();
  }
  const have = exported(text);
  // Prometheus adds these to every series it scrapes.
  for (const l of ["job", "instance"]) have.labels.add(l);
  // The recorded series, which the rules and the dashboard may use as well.
  const rules = parseRules(await read(RULES_PATH));
  const recorded = new Set(rules.filter((r) => r.kind === "record").map((r) => r.name));
  // Labels the recording rules keep are the exported ones; they add none of their own.

  const uses = [
    ...rules.map((r) => ({ where: `rule ${r.name}`, expr: r.expr })),
    ...dashboardExpressions(await dashboard()).map((e) => ({
      ...e,
      where: `dashboard ${e.where}`,
    })),
  ];
  const missing: string[] = [];
  for (const { where, expr } of uses) {
    const { metrics, labels } = promqlNames(expr);
    for (const m of metrics) {
      const known = m.includes(":") ? recorded.has(m) : have.metrics.has(m);
      if (!known) {
        missing.push(`${where}: metric ${m}${m.includes(":") ? " (no such recording rule)" : ""}`);
      }
    }
    for (const l of labels) if (!have.labels.has(l)) missing.push(`${where}: label ${l}`);
  }
  assert.deepEqual(
    missing,
    [],
    `names sidekick does not export (exported: ${[...have.metrics].join(", ")})`,
  );
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

Deno.test("the committed PrometheusRule is what tools/prometheus_rule.ts generates from the rules file", async () => {
  const rules = await read(RULES_PATH);
  const generated = prometheusRule(rules);
  assert.equal(
    await read(PROMETHEUS_RULE_PATH),
    generated,
    `${PROMETHEUS_RULE_PATH} is stale: run deno run --allow-read --allow-write tools/prometheus_rule.ts`,
  );
  // Its spec, indented back, is the rules file from `groups:` on.
  const spec = generated.slice(generated.indexOf("\nspec:\n") + "\nspec:\n".length);
  const unindented = spec.split("\n").map((l) => l.replace(/^ {2}/, "")).join("\n");
  assert.equal(unindented, rules.slice(rules.search(/^groups:/m)));
  assert.throws(() => prometheusRule("# no groups\n"), /groups/);
});

Deno.test("the PodMonitor scrapes the sidecar's named port at /.prometheus/metrics and keeps sidekick's endpoint label", async () => {
  const pod = await read("deploy/kubernetes/pod-sidecar.yaml");
  const monitor = await read("deploy/kubernetes/sidekick-podmonitor.yaml");
  assert.match(monitor, /^apiVersion: monitoring\.coreos\.com\/v1\nkind: PodMonitor$/m);
  const port = /^\s*- port: (\S+)$/m.exec(monitor)?.[1];
  assert.ok(port);
  // The sidecar's container port of that name is the one sidekick listens on.
  const sidecarPorts = pod.slice(pod.indexOf("- name: sidekick"), pod.indexOf("startupProbe:"));
  assert.match(sidecarPorts, new RegExp(`- name: ${port}\\n\\s*containerPort: 8080`));
  assert.match(sidecarPorts, /--address=:8080/);
  assert.match(monitor, /^\s*path: \/\.prometheus\/metrics$/m);
  assert.match(monitor, /- action: labeldrop\n\s*regex: endpoint$/m);
});
