// Every conformance vector, on every engine configuration (no caches, interpreted, compiled),
// and step() agreeing with run().
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parseDocument, type LoadedFile } from "../../contract/load.ts";
import { runVector } from "./vector-runner.ts";
import { CONFIGS, runOn, stateDifferences, stepOn } from "./helpers.ts";

const DIR = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));
const FILES = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

/** Each vector file loaded once for the four tests (engines copy what they load). */
const docs = new Map<string, LoadedFile>();
function load(f: string): LoadedFile {
  let doc = docs.get(f);
  if (doc === undefined) docs.set(f, (doc = parseDocument(readFileSync(DIR + f, "utf8"))));
  return doc;
}

describe("conformance vectors on ImplEngine", () => {
  it("finds the 70 vectors", () => {
    expect(FILES.length).toBe(70);
  });
  for (const config of CONFIGS) {
    it(`all vectors match their expected exit and fields (${config.name})`, () => {
      const failures: string[] = [];
      for (const f of FILES) {
        const r = runVector(load(f), DIR + f, config.opts);
        if (r.mismatches.length > 0) failures.push(`${r.name}: ${r.mismatches.join("; ")}`);
      }
      expect(failures).toEqual([]);
    });
  }
  it("step() by step reaches the same final state as run() on every vector", () => {
    const differ: string[] = [];
    for (const f of FILES) {
      const doc = load(f);
      if (doc.kind !== "vector") continue;
      const max = doc.vector.limits.max_steps;
      const run = runOn(doc.state, max, {}, doc.profile);
      const stepped = stepOn(doc.state, max, {}, doc.profile);
      if (stateDifferences(run.state, stepped.state).length > 0 || run.stop.reason !== stepped.stop.reason) differ.push(doc.vector.name);
    }
    expect(differ).toEqual([]);
  });
});
