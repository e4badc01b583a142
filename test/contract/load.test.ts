// The loader's output (contract/load.ts): what a loaded vector keeps.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../contract/load.ts";

describe("a loaded vector", () => {
  it("keeps its document without the initial section (the state is that section, converted), and the rest as validated", () => {
    const text = readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8");
    const doc = parseDocument(text);
    if (doc.kind !== "vector") throw new Error("expected a vector");
    expect("initial" in doc.vector).toBe(false);
    const { initial, ...rest } = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(doc.vector).sort()).toEqual(Object.keys(rest).sort());
    expect(doc.vector.expected).toEqual(rest["expected"]);
    expect(doc.state.memory.size).toBeGreaterThan(0);
    expect(initial).toBeDefined();
  });
});
