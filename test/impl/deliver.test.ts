// Event delivery (impl/deliver.ts): nested faults become #DF, and the delivery frame — translated
// once when it lies in one page — straddles a page correctly when a new RSP0 puts it there.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Reg, gate, icedAbs as abs, icedMem as mem } from "../../guest/index.ts";
import { RBX, baseMemory, handler, intLoop, layoutState, read64, runAll } from "./helpers.ts";

describe("delivery", () => {
  it("DF-03: #PF while delivering #PF becomes #DF; CR2 holds the latest address", () => {
    // User read of 0x600000 (not present); RSP0 → 0x600000 too, #DF on IST1.
    const m = baseMemory();
    m.write(0x200000n, [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00]);
    m.write64(0xa004n, 0x601000n);
    const [lo, hi] = gate(0xb080n, { ist: 1 });
    m.write64(0x9080n, lo);
    m.write64(0x9088n, hi);
    const out = runAll(layoutState(m, { user: true }), 5);
    expect(out.state.rip).toBe(0xb081n);
    expect(out.state.cr2).toBe(0x600ff8n);
    expect(read64(out.state, 0x21000n - 48n)).toBe(0n); // #DF error code
  });

  it("a new RSP0 is used by the next delivery, also when the frame then straddles a page", () => {
    const m = baseMemory();
    intLoop(m);
    // Records RSP at each delivery in 0x30100 + 8·n; the 6th rewrites RSP0 to 0x20018 (the frame
    // then runs from 0x20008 down across the page boundary at 0x20000).
    handler(m, 0x13200n, 6, [I.createMemI32(Code.Mov_rm64_imm32, abs(0xa004n), 0x20018)],
      [I.createMemReg(Code.Mov_rm64_r64, mem(Reg.None, 0x30100n, Reg.None, Reg.RBX, 8), Reg.RSP)]);
    const out = runAll(layoutState(m, { user: true }), 400);
    expect(out.state.gpr[RBX]! > 20n).toBe(true);
    expect(read64(out.state, 0x30100n + 8n * 5n)).toBe(0x20000n - 40n);
    expect(read64(out.state, 0x30100n + 8n * 6n)).toBe(0x20010n - 40n);
    expect(read64(out.state, 0x30100n + 8n * 12n)).toBe(0x20010n - 40n);
  });
});
