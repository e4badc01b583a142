// The descriptor cache (impl/tables/descriptor-cache.ts) is invisible: a GDT descriptor rewritten
// between two uses — a delivery's target code segment, a data-segment load — is read again.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Reg, gate, icedAbs as abs } from "../../../guest/index.ts";
import { HLT, RBX, asm, gdtByte, kernel, read64, type Memory } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("GDT rewrites between uses", () => {
  // Handler at 0x13000: inc rbx; iretq. Handler at 0x13100: add rbx, 0x10; iretq.
  const handlers = (m: Memory) => {
    m.write(0x13000n, [0x48, 0xff, 0xc3, 0x48, 0xcf]);
    m.write(0x13100n, [0x48, 0x83, 0xc3, 0x10, 0x48, 0xcf]);
    const [lo, hi] = gate(0x13000n);
    m.write64(0x9400n, lo); // vector 0x40
    m.write64(0x9408n, hi);
  };

  it("a code descriptor made not present between deliveries raises #NP(selector)", () => {
    // The gate uses selector 0x40 (a copy of the kernel CS at GDT index 8).
    const setup = (m: Memory) => {
      handlers(m);
      const [lo, hi] = gate(0x13000n, { selector: 0x40 });
      m.write64(0x9400n, lo);
      m.write64(0x9408n, hi);
      m.write64(0x8040n, 0x00af9b000000ffffn);
    };
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMemI32(Code.Mov_rm8_imm8, abs(0x8045n), 0x1b)); // type 0xb, S, P = 0
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const s = kernel(code, setup);
    const out = runAll({ ...s, gdtr: { base: 0x8000n, limit: 0x4f } }, 200);
    expect(out.state.gpr[RBX]).toBe(1n);
    expect(out.state.rip).toBe(0xb0b1n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x40n);
  });

  it("a data descriptor made not present between two loads of DS raises #NP(selector)", () => {
    // mov eax, 0x10; mov ds, ax (fills the cache); clear P of GDT entry 2; mov ds, ax → #NP(0x10).
    const code = asm(0x10000n, (p) => {
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, 0x10));
      p.add(I.createRegReg(Code.Mov_Sreg_r32m16, Reg.DS, Reg.EAX));
      p.add(I.createReg(Code.Inc_rm64, Reg.RBX));
      p.add(I.createMemI32(Code.Mov_rm8_imm8, abs(0x8015n), gdtByte(0x15) & 0x7f)); // P = 0
      p.add(I.createRegReg(Code.Mov_Sreg_r32m16, Reg.DS, Reg.EAX));
      p.add(I.createReg(Code.Inc_rm64, Reg.RBX));
      HLT(p);
    });
    const out = runAll(kernel(code), 100);
    expect(out.state.gpr[RBX]).toBe(1n);
    expect(out.state.rip).toBe(0xb0b1n); // the #NP handler
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x10n);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x10012n); // at the second MOV DS
  });
});
