// Nothing in spec/ mutates its input: stepping a machine leaves that machine (registers, segment
// caches, run-time state and every memory byte) exactly as it was.
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { step } from "../../spec/index.ts";
import type { Machine } from "../../spec/machine/machine.ts";
import { AMD, INTEL } from "../../contract/profile.ts";
import { kernelMachine, userMachine, vectorMachine, vectorPath, withCode } from "../helpers/fixture.ts";

/** Every field but memory as JSON, plus an FNV-1a hash of every backed page (cheap enough to
 *  take before and after each step). */
function snapshot(m: Machine): string {
  const { memory, ...rest } = m;
  let hash = 0x811c9dc5;
  for (const [pageNumber, bytes] of memory.pages()) {
    hash = Math.imul(hash ^ pageNumber, 0x01000193);
    for (const word of new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)) hash = Math.imul(hash ^ word, 0x01000193);
  }
  return JSON.stringify(rest, (_k, v: unknown) => (typeof v === "bigint" ? v.toString(16) : v)) + hash.toString(16);
}

/** Steps up to `n` times, checking after each step that the step's input is unchanged. */
function checkSteps(start: Machine, n: number, profile = INTEL): void {
  let m = start;
  for (let i = 0; i < n; i++) {
    const before = snapshot(m);
    const result = step(m, { profile });
    expect(snapshot(m)).toBe(before);
    if (result.event.kind === "unsupported" || result.event.kind === "shutdown") return;
    m = result.state;
  }
}

describe("purity", () => {
  const vectors = readdirSync(vectorPath("").replace(/\.json$/, "")).filter((f) => f.endsWith(".json"));

  it("stepping any vector's initial state never changes that state (intel and amd)", () => {
    for (const file of vectors) {
      const m = vectorMachine(file);
      checkSteps(m, 40, INTEL);
      checkSteps(m, 40, AMD);
    }
  });

  it("stepping random code at CPL 0 and CPL 3 never changes the input state", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (user, code) => {
        checkSteps(withCode(user ? userMachine() : kernelMachine(), code), 4);
      }),
      { seed: 20261122, numRuns: 300 },
    );
  });
});
