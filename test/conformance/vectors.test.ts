// Every project vector (conformance/vectors, copied from the shared recordings with their
// provenance) passes on every engine. No vector is expected to fail.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDocument, type LoadedVector } from "../../contract/load.ts";
import { checkVector, ENGINES } from "../../conformance/vector-check.ts";

const DIR = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

function load(file: string): LoadedVector {
  const doc = parseDocument(readFileSync(DIR + file, "utf8"));
  if (doc.kind !== "vector") throw new Error(`${file}: not a vector`);
  return doc;
}

describe.each(Object.keys(ENGINES))("vectors on the %s engine", (engineName) => {
  it("the project has all 70 recorded vectors", () => {
    expect(files).toHaveLength(70);
  });

  it.each(files)("%s", (file) => {
    const result = checkVector(load(file), ENGINES[engineName]!, { timeoutMs: 30_000 });
    const why = result.detail ?? result.mismatches.map((m) => `${m.field}: expected ${m.expected}, got ${m.got}`).join("; ");
    expect(result.passed, `${file} on ${engineName}: ${why}`).toBe(true);
  });
});
