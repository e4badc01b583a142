// patchMachine is `{ ...m, ...patch }` with the Machine's one shape: register fields and the
// memory alike, the input left as it was.
import { describe, expect, it } from "vitest";
import { patchMachine } from "../../../spec/machine/machine.ts";
import { PhysicalMemory } from "../../../spec/machine/physical-memory.ts";
import { kernelMachine } from "../../helpers/fixture.ts";

describe("patchMachine", () => {
  it("takes memory with register fields, as a spread would, and leaves its input alone", () => {
    const m = kernelMachine();
    const other = PhysicalMemory.empty();
    const patched = patchMachine(m, { memory: other, rip: m.rip + 2n });
    expect(patched.memory).toBe(other);
    expect(patched.rip).toBe(m.rip + 2n);
    expect(patched.cr3).toBe(m.cr3);
    expect(m.memory).not.toBe(other);
    expect(patchMachine(m, { memory: other }).rip).toBe(m.rip);
  });
});
