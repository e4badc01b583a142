// The loader validates a process's first document with zod's shared parse loop (`jitless`) and
// later ones with the same schema carrying zod's compiled parsers at its sections
// (contract/load.ts); zod's generated per-object parsers are a third way. Every way must give the
// same output for a good document and the same one-line error for a bad one.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { JITLESS, validated, withSectionsCompiled, type ZodMode } from "../../contract/load.ts";
import { StateFileJson, VectorJson } from "../../contract/schema.ts";
import { stateToJson } from "../../contract/state.ts";
import { kernelState } from "../helpers/fixture.ts";

const VECTOR = JSON.parse(readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8")) as unknown;
const STATE_FILE = JSON.parse(JSON.stringify({ format: "ringspec-state/1", ...stateToJson(kernelState()) })) as unknown;

/** zod's default: its generated per-object parsers (the loader never runs it; the third way above). */
const GENERATED: ZodMode = {};

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

function outcome(schema: z.ZodType, value: unknown, mode: ZodMode): unknown {
  try {
    return { data: validated(schema, value, mode) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The compiled parsers of `schema` along `doc`: each one's path and what that parser itself (not
 *  the runtime behind it) makes of the document's value there. */
function compiledParsersAlong(schema: z.ZodType, doc: Json, at: Path = []): { path: Path; parsed: unknown }[] {
  const internals = schema._zod as unknown as {
    def: { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; getter?: () => z.ZodType };
    bag: { validator?: (v: unknown) => unknown };
  };
  const out: { path: Path; parsed: unknown }[] = [];
  const parser = internals.bag.validator;
  if (parser !== undefined) out.push({ path: at, parsed: parser(doc) });
  const def = internals.def;
  if (def.type === "lazy") out.push(...compiledParsersAlong(def.getter!(), doc, at));
  else if (def.innerType !== undefined) out.push(...compiledParsersAlong(def.innerType, doc, at));
  else if (def.type === "array" && Array.isArray(doc)) doc.forEach((item, i) => out.push(...compiledParsersAlong(def.element!, item, [...at, i])));
  else if (def.type === "object" && doc !== null && typeof doc === "object" && !Array.isArray(doc)) {
    for (const [key, child] of Object.entries(def.shape ?? {})) if (key in doc) out.push(...compiledParsersAlong(child, doc[key]!, [...at, key]));
  }
  return out;
}

function at(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, key) => (v as Record<string | number, unknown>)[key], value);
}

describe("zod's ways of running the loader's schemas (contract/load.ts)", () => {
  for (const [name, schema, doc] of [["a vector", VectorJson, VECTOR], ["a state file", StateFileJson, STATE_FILE]] as const) {
    it(`give the same output and the same first error for ${name} with any one field changed, removed or added (fixed seed)`, () => {
      const compiled = withSectionsCompiled<z.ZodType>(schema);
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
          expect(outcome(compiled, input, JITLESS)).toEqual(jitless);
          if ("error" in (jitless as object)) errors++;
        }),
        { seed: 14, numRuns: 300 },
      );
      // Most edits are errors; the comparison covered them, not only good documents.
      expect(errors).toBeGreaterThan(150);
      const runtime = outcome(schema, doc, JITLESS);
      expect(outcome(schema, doc, GENERATED)).toEqual(runtime);
      expect(outcome(compiled, doc, JITLESS)).toEqual(runtime);
      // The compiled parsers themselves accept the good document's sections, with the runtime's
      // output there (not only the runtime behind them).
      const parsers = compiledParsersAlong(compiled, doc as Json);
      const shown = parsers.map((s) => s.path.join("."));
      const prefix = schema === VectorJson ? "initial." : "";
      for (const expected of ["regs", "sregs.cs", "sregs.ldt", "msrs", "memory"]) expect(shown).toContain(prefix + expected);
      if (schema === VectorJson) for (const expected of ["expected.regs", "expected.sregs.cs", "expected.msrs", "expected.memory"]) expect(shown).toContain(expected);
      for (const { path, parsed } of parsers) {
        expect(parsed, path.join(".")).not.toBe(z.INVALID);
        expect(parsed, path.join(".")).toEqual(at((runtime as { data: unknown }).data, path));
      }
    });
  }
});
