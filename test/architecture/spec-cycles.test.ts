// spec/ reads in one direction. No module imports one that imports it back, directly or not (a
// cycle has no reading order, and at load time one of its modules sees the others half-initialised);
// and its folders form layers: no folder imports a folder that imports it back (machine/, rules/ →
// decode/, paging/ → transaction/ → segmentation/ → instructions/, transitions/ → the tables → step/).
// Type-only imports count: they are dependencies for the reader too.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SPEC = resolve(dirname(fileURLToPath(import.meta.url)), "../../spec");

type Graph = ReadonlyMap<string, readonly string[]>;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : name.endsWith(".ts") ? [p] : [];
  });
}

/** Relative module specifiers of imports and re-exports (static and dynamic). */
function relativeImports(text: string): string[] {
  const patterns = [
    /\bimport\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?["'](\.[^"']*)["']/g,
    /\bexport\s+(?:type\s+)?[^'";]*?\s+from\s+["'](\.[^"']*)["']/g,
    /\bimport\s*\(\s*["'](\.[^"']*)["']\s*\)/g,
  ];
  return patterns.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!));
}

/** spec/'s modules (paths relative to spec/) and the spec/ modules each one imports. */
function moduleGraph(): Graph {
  const graph = new Map<string, string[]>();
  for (const file of files(SPEC)) {
    const targets = relativeImports(readFileSync(file, "utf8"))
      .map((s) => resolve(dirname(file), s))
      .filter((target) => target.startsWith(SPEC + "/"))
      .map((target) => relative(SPEC, target).split("\\").join("/"));
    graph.set(relative(SPEC, file).split("\\").join("/"), targets);
  }
  return graph;
}

/** The folder a module belongs to ("step/"), or the module itself for a file directly in spec/. */
const layerOf = (module: string): string => (module.includes("/") ? `${module.split("/")[0]!}/` : module);

function folderGraph(modules: Graph): Graph {
  const graph = new Map<string, Set<string>>();
  for (const [from, targets] of modules) {
    const edges = graph.get(layerOf(from)) ?? new Set<string>();
    for (const to of targets) if (layerOf(to) !== layerOf(from)) edges.add(layerOf(to));
    graph.set(layerOf(from), edges);
  }
  return new Map([...graph].map(([k, v]) => [k, [...v]]));
}

/** Every cycle a depth-first walk meets, each as the path that closes it (a → b → a). */
export function cycles(graph: Graph): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): void => {
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

const show = (found: string[][]): string[] => found.map((c) => c.join(" → "));

describe("spec/ has no import cycles", () => {
  const modules = moduleGraph();

  it("no module imports one that imports it back", () => {
    expect(modules.size).toBeGreaterThan(50);
    expect(show(cycles(modules))).toEqual([]);
  });

  it("the folders form layers: no folder imports a folder that imports it back", () => {
    const folders = folderGraph(modules);
    expect([...folders.keys()]).toEqual(expect.arrayContaining(["step/", "transitions/", "transaction/", "machine/"]));
    expect(show(cycles(folders))).toEqual([]);
  });

  it("the walk finds direct, indirect and self cycles", () => {
    const graph: Graph = new Map([
      ["a", ["b"]], ["b", ["c"]], ["c", ["a", "d"]], ["d", []], ["e", ["e"]], ["f", ["d"]],
    ]);
    expect(show(cycles(graph))).toEqual(["a → b → c → a", "e → e"]);
    expect(cycles(new Map([["x", ["y"]], ["y", []]]))).toEqual([]);
  });
});
