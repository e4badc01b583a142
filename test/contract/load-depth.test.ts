// parseDocument decides the JSON depth cap after validating (contract/load.ts, json-bytes.ts
// parseJsonBytesDeferringDepth): a document zod accepts is walked only where zod does not look,
// a refused one whole. The outcome must be what reading the JSON with every cap first, then
// validating, gives: the same loaded document, or the same one-line error.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, parseDocument, parseJsonDocument, parseStateFile, parseVector } from "../../contract/load.ts";
import { stateToJson } from "../../contract/state.ts";
import { MAX_JSON_DEPTH } from "../../contract/limits.ts";
import { kernelState } from "../helpers/fixture.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = readonly (string | number)[];

const VECTOR = JSON.parse(readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8")) as Json;
const STATE_FILE = JSON.parse(JSON.stringify({ format: "ringspec-state/1", ...stateToJson(kernelState()) })) as Json;

/** The loader as it was: every JSON cap decided while reading, then the document validated. */
function readThenValidate(text: string) {
  const value = parseJsonDocument(text);
  const format = typeof value === "object" && value !== null ? (value as { format?: unknown }).format : undefined;
  if (format === "ringspec-vector/1") return { kind: "vector", ...parseVector(value) };
  if (format === "ringspec-state/1") return { kind: "state", ...parseStateFile(value) };
  throw new FormatError(`format: expected "ringspec-vector/1" or "ringspec-state/1"`);
}

function outcome(load: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: load() };
  } catch (e) {
    if (e instanceof FormatError) return { error: e.message };
    throw e;
  }
}

/** Every container's path in `value` (the root included). */
function containersOf(value: Json, at: Path = []): Path[] {
  if (value === null || typeof value !== "object") return [];
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...containersOf(v, [...at, i])));
  else for (const [k, v] of Object.entries(value)) out.push(...containersOf(v, [...at, k]));
  return out;
}

/** `levels` arrays, one inside the other, around 1. */
const nested = (levels: number): Json => (levels === 0 ? 1 : [nested(levels - 1)]);

/** `doc` with `value` put into the container at `path`: under a new key of an object, in place of
 *  an existing key or item, or appended to an array. */
function withValueAt(doc: Json, path: Path, value: Json, mode: "add" | "replace"): Json {
  const copy = structuredClone(doc);
  let container = copy as Record<string | number, Json>;
  for (const key of path) container = container[key] as Record<string | number, Json>;
  const keys = Object.keys(container);
  if (Array.isArray(container)) {
    if (mode === "add" || container.length === 0) container.push(value);
    else container[0] = value;
  } else if (mode === "add" || keys.length === 0) container["surplus"] = value;
  else container[keys[0]!] = value;
  return copy;
}

describe("the JSON depth cap, decided after validating", () => {
  it("gives what reading with every cap first gives: a value nested anywhere, of any depth around the cap (fixed seed)", () => {
    for (const doc of [VECTOR, STATE_FILE]) {
      const places = containersOf(doc);
      fc.assert(
        fc.property(fc.constantFrom(...places), fc.integer({ min: 0, max: MAX_JSON_DEPTH + 2 }), fc.constantFrom("add" as const, "replace" as const), (path, levels, mode) => {
          const text = JSON.stringify(withValueAt(doc, path, nested(levels), mode));
          expect(outcome(() => parseDocument(text))).toEqual(outcome(() => readThenValidate(text)));
        }),
        { seed: 1407, numRuns: 300 },
      );
    }
  });

  it("refuses a vector whose provenance (an object whose unknown keys zod passes over) holds a value nested too deep", () => {
    const doc = structuredClone(VECTOR) as { provenance: Record<string, Json> };
    doc.provenance["extra"] = nested(MAX_JSON_DEPTH);
    expect(() => parseDocument(JSON.stringify(doc))).toThrow(/^provenance\.extra(\[0\])+: nested more than 64 levels deep$/);
    doc.provenance["extra"] = nested(MAX_JSON_DEPTH - 3); // provenance is level 2, the extra level 3
    expect(parseDocument(JSON.stringify(doc)).kind).toBe("vector");
  });

  it("refuses a document nested too deep for its depth first, whatever else is wrong with it", () => {
    expect(() => parseDocument(JSON.stringify(nested(MAX_JSON_DEPTH + 1)))).toThrow(/: nested more than 64 levels deep$/);
    const doc = structuredClone(VECTOR) as { initial: { regs: Record<string, Json> } };
    doc.initial.regs["rax"] = nested(MAX_JSON_DEPTH);
    expect(() => parseDocument(JSON.stringify(doc))).toThrow(/^initial\.regs\.rax(\[0\])+: nested more than 64 levels deep$/);
    doc.initial.regs["rax"] = nested(3);
    expect(() => parseDocument(JSON.stringify(doc))).toThrow(/^initial\.regs\.rax: /);
  });
});
