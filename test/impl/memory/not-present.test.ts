// The not-present page cache (impl/memory/not-present.ts) is invisible: a page the #PF handler maps
// (after the cache has recorded it not present, in a hot loop) is read by the next access.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Program, Reg, gate, icedAbs as abs, icedMem as mem } from "../../../guest/index.ts";
import { RBX, baseMemory, handler, layoutState } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("not-present cache", () => {
  it("a page made present by the #PF handler is read by the next access", () => {
    const m = baseMemory();
    m.write64(0x50000n, 0x1234n);
    const [lo, hi] = gate(0x14000n);
    m.write64(0x9000n + 16n * 14n, lo);
    m.write64(0x9008n + 16n * 14n, hi);
    const load = () => I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, abs(0x600000n));
    const one = new Program(0n);
    one.add(load());
    const len = one.encode().length;
    const u = new Program(0x200000n);
    const loop = u.here();
    u.add(load());
    u.add(I.createReg(Code.Inc_rm64, Reg.R12));
    u.add(I.createBranch(Code.Jmp_rel8_64, loop));
    m.write(0x200000n, u.encode());
    // The 8th #PF maps 0x600000 → frame 0x50 (user, writable, present); the handler skips the load.
    handler(m, 0x14000n, 8, [I.createMemI32(Code.Mov_rm64_imm32, abs(0x4000n), 0x50007)], [],
      [I.createMemI32(Code.Add_rm64_imm8, mem(Reg.RSP, 8n), len), I.createRegI32(Code.Add_rm64_imm8, Reg.RSP, 8)]);
    const out = runAll(layoutState(m, { user: true }), 400);
    expect(out.state.gpr[RBX]).toBe(8n);
    expect(out.state.gpr[0]).toBe(0x1234n);
    expect(out.state.gpr[12]! > 20n).toBe(true);
  });
});
