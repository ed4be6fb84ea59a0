/**
 * The layout rules of `lib/`: a folder imports only the folders below it (ARCHITECTURE.md lists
 * them), `shared/` imports nothing outside itself, and no module imports itself back through a
 * cycle.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../lib/", import.meta.url));

/** Folder → the folders it may import from (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  control: ["data", "output", "upstream", "tls", "config", "shared"],
  data: ["output", "upstream", "tls", "config", "shared"],
  output: ["config", "shared"],
  upstream: ["tls", "shared"],
  tls: ["shared"],
  config: ["shared"],
  shared: [],
};

/** Every module of lib/ (path relative to lib/) → the lib/ modules it imports. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) walk(path);
      else if (e.name.endsWith(".ts")) {
        // Code only: doc comments hold examples with import lines of their own.
        const code = Deno.readTextFileSync(path).replace(/\/\*[\s\S]*?\*\//g, "");
        const deps = new Set<string>();
        const re = /(?:from|import)\s*"(\.{1,2}\/[^"]+\.ts)"|new URL\("(\.{1,2}\/[^"]+\.ts)"/g;
        for (const m of code.matchAll(re)) {
          deps.add(relative(LIB, normalize(join(dirname(path), m[1] ?? m[2]))));
        }
        graph.set(relative(LIB, path), deps);
      }
    }
  };
  walk(LIB);
  return graph;
}

const folderOf = (module: string) => module.includes("/") ? module.split("/")[0] : ".";

Deno.test("lib/: every module sits in a folder of a plane, and imports only folders below it", () => {
  const graph = importGraph();
  const wrong: string[] = [];
  for (const [module, deps] of graph) {
    const folder = folderOf(module);
    if (module === "mod.ts") continue; // the library entry re-exports from every folder
    assert.ok(folder in ALLOWED, `${module} is in no known folder`);
    for (const dep of deps) {
      const to = folderOf(dep);
      assert.ok(graph.has(dep), `${module} imports ${dep}, which does not exist`);
      if (to !== folder && !ALLOWED[folder].includes(to)) wrong.push(`${module} → ${dep}`);
    }
  }
  assert.deepEqual(wrong, [], "imports against the folder order");
});

Deno.test("lib/: no import cycle", () => {
  const graph = importGraph();
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (module: string, path: string[]) => {
    state.set(module, "open");
    for (const dep of graph.get(module) ?? []) {
      if (state.get(dep) === "open") cycles.push([...path, module, dep].join(" → "));
      else if (!state.has(dep)) visit(dep, [...path, module]);
    }
    state.set(module, "done");
  };
  for (const module of graph.keys()) if (!state.has(module)) visit(module, []);
  assert.deepEqual(cycles, []);
});
