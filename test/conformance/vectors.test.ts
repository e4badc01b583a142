// Every project vector (conformance/vectors, copied from the shared recordings with their
// provenance) passes on every engine. No vector is expected to fail.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDocument, type LoadedVector } from "../../contract/load.ts";
import { checkVector } from "../../conformance/vector-check.ts";
import { ENGINE_NAMES, engineEntry } from "../../engines/registry.ts";

const DIR = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

/** Each vector file loaded once for every engine's run of it (engines copy what they load). */
const loaded = new Map<string, LoadedVector>();
function load(file: string): LoadedVector {
  let vector = loaded.get(file);
  if (vector !== undefined) return vector;
  const doc = parseDocument(readFileSync(DIR + file, "utf8"));
  if (doc.kind !== "vector") throw new Error(`${file}: not a vector`);
  loaded.set(file, (vector = doc));
  return vector;
}

describe.each(ENGINE_NAMES)("vectors on the %s engine", (engineName) => {
  it("the project has all 70 recorded vectors", () => {
    expect(files).toHaveLength(70);
  });

  it.each(files)("%s", async (file) => {
    // The path `ringspec vectors check --engine NAME` takes: the registry's AsyncEngine.
    const engine = await engineEntry(engineName)!.open();
    const result = await checkVector(load(file), engine, { timeoutMs: 30_000 });
    await engine.close();
    const why = result.detail ?? result.mismatches.map((m) => `${m.field}: expected ${String(m.expected)}, got ${String(m.got)}`).join("; ");
    expect(result.passed, `${file} on ${engineName}: ${why} (replay: npx ringspec vectors check conformance/vectors/${file} --engine ${engineName})`).toBe(true);
    expect(result.notCompared).toEqual([]);
  });
});
