// Linear access (impl/memory/linear.ts): a write that crosses into a faulting page writes nothing
// (every page is translated before any byte is written) but keeps the A/D bits of the first
// page's walk, as the SDM's order of events gives.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { RDX, kernel, read64, type Memory } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("linear writes across a page boundary", () => {
  it("a write crossing into a faulting page writes nothing but keeps the first page's A/D bits", () => {
    // PT 0x4000: 0x600000 → frame 0x700 R/W (A, D clear), 0x601000 not present.
    // mov rax, 0x600ffc; mov qword [rax], rdx
    const s = k([0x48, 0xc7, 0xc0, 0xfc, 0x0f, 0x60, 0x00, 0x48, 0x89, 0x10, 0xf4], (m) => m.write64(0x4000n, 0x700003n), {}, { [RDX]: -1n & 0xffffffffffffffffn });
    const out = runAll(s, 5);
    expect(out.state.cr2).toBe(0x601000n);
    expect(read64(out.state, 0x700ff8n)).toBe(0n);
    expect(read64(out.state, 0x4000n)).toBe(0x700063n);
  });
});
