// The gate cache (impl/tables/gate-cache.ts) is invisible: an IDT gate rewritten or made not
// present, a new RSP0 in the TSS, or LIDT to another table between deliveries is used by the next
// delivery — from interpreted code and from INT n delivered inside compiled blocks.
import { describe, expect, it } from "vitest";
import { Code, Instruction as I, Program, Reg, gate, icedAbs as abs } from "../../../guest/index.ts";
import {
  HLT, RBX, RCX, asm, baseMemory, handler, intLoop, kernel, layoutState, read64, type Memory,
} from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("IDT, TSS and IDTR rewrites between deliveries", () => {
  // Handler at 0x13000: inc rbx; iretq. Handler at 0x13100: add rbx, 0x10; iretq.
  const handlers = (m: Memory) => {
    m.write(0x13000n, [0x48, 0xff, 0xc3, 0x48, 0xcf]);
    m.write(0x13100n, [0x48, 0x83, 0xc3, 0x10, 0x48, 0xcf]);
    const [lo, hi] = gate(0x13000n);
    m.write64(0x9400n, lo); // vector 0x40
    m.write64(0x9408n, hi);
  };

  it("a rewritten gate target is used by the next INT", () => {
    const [lo] = gate(0x13100n);
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createRegU32(Code.Mov_r32_imm32, Reg.EAX, Number(lo & 0xffffffffn)));
      p.add(I.createMemReg(Code.Mov_rm32_r32, abs(0x9400n), Reg.EAX));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, handlers), 200);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(2n + 0x20n);
  });

  it("a gate made not present between deliveries raises #NP", () => {
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMemI32(Code.Mov_rm8_imm8, abs(0x9405n), 0x0e)); // P = 0
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, handlers), 200);
    expect(out.state.gpr[RBX]).toBe(2n);
    expect(out.state.rip).toBe(0xb0b1n); // #NP handler
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x202n); // 0x40·8 + 2, EXT = 0
  });

  it("a new RSP0 in the TSS is used by the next ring-3 → ring-0 delivery", () => {
    // User code: int 0x40 (DPL 3 gate) twice; kernel handler writes RSP0 ← 0x1e000 then IRETs.
    const setup = (m: Memory) => {
      const [lo, hi] = gate(0x13200n, { dpl: 3 });
      m.write64(0x9400n, lo);
      m.write64(0x9408n, hi);
      m.write(0x13200n, [
        0x48, 0x89, 0xe0, //                               mov rax, rsp
        0x48, 0x89, 0x04, 0xdd, 0x00, 0x01, 0x03, 0x00, // mov [0x30100 + rbx·8], rax
        0x48, 0xff, 0xc3, //                               inc rbx
        0x48, 0xc7, 0x04, 0x25, 0x04, 0xa0, 0x00, 0x00, 0x00, 0xe0, 0x01, 0x00, // mov qword [0xa004], 0x1e000
        0x48, 0xcf,
      ]);
      m.write(0x200000n, [0xcd, 0x40, 0xcd, 0x40, 0xeb, 0xfe]);
    };
    const m = baseMemory();
    setup(m);
    const out = runAll(layoutState(m, { user: true }), 60);
    expect(out.state.gpr[RBX]).toBe(2n);
    expect(read64(out.state, 0x30100n)).toBe(0x20000n - 40n);
    expect(read64(out.state, 0x30108n)).toBe(0x1e000n - 40n);
  });

  it("LIDT to a second table is used by the next delivery", () => {
    // Second IDT at 0x3a000 with vector 0x40 → 0x13100.
    const setup = (m: Memory) => {
      handlers(m);
      const [lo, hi] = gate(0x13100n);
      m.write64(0x3a400n, lo);
      m.write64(0x3a408n, hi);
      m.write(0x3b000n, [0xff, 0x0f, ...[0x00, 0xa0, 0x03, 0, 0, 0, 0, 0]]);
    };
    const code = asm(0x10000n, (p) => {
      p.add(I.createU32(Code.Int_imm8, 0x40));
      p.add(I.createMem(Code.Lidt_m1664, abs(0x3b000n)));
      p.add(I.createU32(Code.Int_imm8, 0x40));
      HLT(p);
    });
    const out = runAll(kernel(code, setup), 100);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(0x11n);
    expect(out.state.idtr.base).toBe(0x3a000n);
  });
});


describe("INT n delivered from compiled blocks", () => {
  it("a gate target rewritten by the handler is used by the next delivery", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x9401n), 0x33)]); // → 0x13300
    const b = new Program(0x13300n);
    b.add(I.createReg(Code.Inc_rm64, Reg.RCX));
    b.add(I.create(Code.Iretq));
    m.write(0x13300n, b.encode());
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.gpr[RCX]! > 10n).toBe(true);
  });

  it("a gate made not present raises #NP(vector·8 + 2) at the next INT", () => {
    const m = baseMemory();
    intLoop(m);
    handler(m, 0x13200n, 5, [I.createMemI32(Code.Mov_rm8_imm8, abs(0x9405n), 0x6e)]); // P = 0
    const out = runAll(layoutState(m, { user: true }), 300);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[RBX]).toBe(5n);
    expect(out.state.rip).toBe(0xb0b1n); // the #NP handler
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x202n);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x200000n); // at the INT
  });
});
