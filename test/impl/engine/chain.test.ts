// Block chaining (impl/engine/chain.ts) is invisible: a successor link is followed only while a
// full fetch would find the same block, so code reached through a remapped page is the new page's.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Program, Reg, icedAbs as abs } from "../../../guest/index.ts";
import { RBX, RCX, asm, kernel, type Memory } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("block chaining", () => {
  it("a jump into a page remapped between iterations runs the newly mapped code", () => {
    // loop (0x10000): PTE of 0x600000 ← frame 0x700 or 0x701 by RCX's low bit; jmp 0x600000.
    // Frame 0x700: add rbx, 1; frame 0x701: add rbx, 0x10 — then dec ecx; jnz loop; hlt.
    const code = asm(0x10000n, (p) => {
      p.add(I.createRegReg(Code.Mov_r64_rm64, Reg.RAX, Reg.RCX));
      p.add(I.createRegI32(Code.And_rm64_imm8, Reg.RAX, 1));
      p.add(I.createRegI32(Code.Shl_rm64_imm8, Reg.RAX, 12));
      p.add(I.createRegI32(Code.Add_rm64_imm32, Reg.RAX, 0x700003));
      p.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x4000n), Reg.RAX));
      p.add(I.createBranch(Code.Jmp_rel32_64, 0x600000n));
    });
    const routine = (add: number): Uint8Array => {
      const p = new Program(0x600000n);
      p.add(I.createRegI32(Code.Add_rm64_imm8, Reg.RBX, add));
      p.add(I.createReg(Code.Dec_rm32, Reg.ECX));
      p.add(I.createBranch(Code.Jne_rel32_64, 0x10000n));
      p.add(I.create(Code.Hlt));
      return p.encode();
    };
    const setup = (m: Memory) => {
      m.write(0x700000n, routine(1));
      m.write(0x701000n, routine(0x10));
    };
    const out = runAll(kernel(code, setup, { [RCX]: 12n }), 1000);
    expect(out.stop.reason).toBe("hlt");
    // RCX 12..1: even → frame 0x700 (+1), odd → frame 0x701 (+0x10).
    expect(out.state.gpr[RBX]).toBe(6n * 1n + 6n * 0x10n);
  });
});
