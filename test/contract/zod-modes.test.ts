// The loader validates a process's documents with zod's shared parse loop (`jitless`), the vector
// schema compiled ahead by zod, or zod's generated per-object parsers, by how many it has loaded
// (contract/load.ts): every way must give the same output for a good document and the same
// one-line error for a bad one.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { compiledVectorJson, GENERATED, JITLESS, validated } from "../../contract/load.ts";
import { StateFileJson, VectorJson } from "../../contract/schema.ts";
import { stateToJson } from "../../contract/state.ts";
import { kernelState } from "../helpers/fixture.ts";

const VECTOR = JSON.parse(readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8")) as unknown;
const STATE_FILE = JSON.parse(JSON.stringify({ format: "ringspec-state/1", ...stateToJson(kernelState()) })) as unknown;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = readonly (string | number)[];

/** Every path in `value` (the root included). */
function pathsOf(value: Json, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...at, i])));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...at, k]));
  return out;
}

/** A copy of `doc` with the value at `path` replaced (`undefined`: deleted), or with `extra` added
 *  under a new key when that value is an object. */
function edited(doc: Json, path: Path, replacement: Json | undefined, addKey: boolean): Json {
  const copy = structuredClone(doc);
  if (path.length === 0) return replacement ?? null;
  let parent = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  const target = parent[last];
  if (addKey && target !== null && typeof target === "object" && !Array.isArray(target)) (target as Record<string, Json>)["surplus"] = replacement ?? 0;
  else if (replacement === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = replacement;
  return copy;
}

function outcome(schema: typeof VectorJson | typeof StateFileJson, value: unknown, mode: typeof JITLESS): unknown {
  try {
    return { data: validated(schema, value, mode) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe("zod's ways of running the loader's schemas (contract/load.ts)", () => {
  for (const [name, schema, doc] of [["a vector", VectorJson, VECTOR], ["a state file", StateFileJson, STATE_FILE]] as const) {
    it(`give the same output and the same first error for ${name} with any one field changed, removed or added (fixed seed)`, () => {
      const paths = pathsOf(doc as Json);
      const replacement = fc.oneof(
        fc.constant(undefined),
        fc.constantFrom<Json>(0, 1, -1, 0.5, 2 ** 53, "", "0x", "0x1", "0x" + "f".repeat(17), "zz", true, null, [], {}),
        fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
      );
      let errors = 0;
      fc.assert(
        fc.property(fc.constantFrom(...paths), replacement, fc.boolean(), (path, value, addKey) => {
          const input = edited(doc as Json, path, value, addKey);
          const jitless = outcome(schema, input, JITLESS);
          expect(outcome(schema, input, GENERATED)).toEqual(jitless);
          if (schema === VectorJson) expect(outcome(compiledVectorJson(), input, JITLESS)).toEqual(jitless);
          if ("error" in (jitless as object)) errors++;
        }),
        { seed: 14, numRuns: 300 },
      );
      // Most edits are errors; the comparison covered them, not only good documents.
      expect(errors).toBeGreaterThan(150);
      expect(outcome(schema, doc, GENERATED)).toEqual(outcome(schema, doc, JITLESS));
      if (schema === VectorJson) {
        expect(outcome(compiledVectorJson(), doc, JITLESS)).toEqual(outcome(schema, doc, JITLESS));
        // The compiled parser itself accepts a good vector (not only the runtime behind it).
        const parser = (compiledVectorJson() as unknown as { _zod: { bag: { validator: (v: unknown) => unknown } } })._zod.bag.validator;
        expect(parser(doc)).not.toBe(z.INVALID);
        expect(parser(doc)).toEqual(validated(VectorJson, doc, JITLESS));
      }
    });
  }
});
