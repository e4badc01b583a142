// The IRET return cache (impl/tables/iret-cache.ts) is invisible: the user SS or CS descriptor
// changed by the kernel between IRETs of a hot INT/IRET loop is checked again by the next IRET.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, icedAbs as abs } from "../../../guest/index.ts";
import { RBX, baseMemory, gdtByte, handler, intLoop, layoutState, read64 } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("IRET return cache", () => {
  it("the user SS descriptor made not present between IRETs raises #SS(selector)", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x8025n), gdtByte(0x25) & 0x7f)]);
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0c1n); // the #SS handler
    expect(read64(out.state, ((0x20000n - 40n) & ~15n) - 48n)).toBe(0x20n); // error code
  });

  it("the user CS descriptor given DPL 0 between IRETs raises #GP(selector)", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x802dn), gdtByte(0x2d) & ~0x60)]);
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0d1n); // the #GP handler
    expect(read64(out.state, ((0x20000n - 40n) & ~15n) - 48n)).toBe(0x28n);
  });
});
