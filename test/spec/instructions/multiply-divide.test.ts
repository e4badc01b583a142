// MUL-01/02, DIV-01..03.
import { describe, expect, it } from "vitest";
import { RAX, RBX, RDX, RFLAGS } from "../../../spec/machine/registers.ts";
import type { GprName } from "../../../contract/schema.ts";
import { kernelMachine, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, reg, run, STATUS } from "./build.ts";
import type { OperandSize } from "../../../spec/decode/instruction.ts";

const { CF, OF, SF, ZF, PF } = RFLAGS;
const M64 = (1n << 64n) - 1n;

function start(regs: Partial<Record<GprName, bigint>>, flags = 0n) {
  return { ...withRegs(kernelMachine(), regs), rflags: 2n | flags };
}

describe("MUL-01: unsigned multiply", () => {
  it("8-bit: AL 0x80 × 2 = AX 0x100; CF = OF = 1; SF/ZF/PF from AL (0)", () => {
    const m = run(start({ rax: 0xdead_0080n, rbx: 2n }), insn("mul", [reg(RBX, 1)]));
    expect(m.gpr[RAX]).toBe(0xdead_0100n);
    expect(m.rflags).toBe(2n | CF | OF | ZF | PF);
  });
  it("32-bit: 0xffffffff² → EDX:EAX, both zero-extended", () => {
    const m = run(start({ rax: 0xffff_ffff_ffff_ffffn, rbx: 0xffff_ffffn, rdx: M64 }), insn("mul", [reg(RBX, 4)]));
    expect(m.gpr[RAX]).toBe(1n);
    expect(m.gpr[RDX]).toBe(0xffff_fffen);
    expect(m.rflags).toBe(2n | CF | OF);
  });
  it("64-bit: 2^63 × 4 → RDX 2, RAX 0", () => {
    const m = run(start({ rax: 1n << 63n, rbx: 4n }), insn("mul", [reg(RBX)]));
    expect([m.gpr[RDX], m.gpr[RAX]]).toEqual([2n, 0n]);
    expect(m.rflags).toBe(2n | CF | OF | ZF | PF);
  });
  it("16-bit product that fits: CF = OF = 0, DX = 0", () => {
    const m = run(start({ rax: 0x100n, rbx: 0x7fn, rdx: 0xffffn }), insn("mul", [reg(RBX, 2)]));
    expect([m.gpr[RDX], m.gpr[RAX]]).toEqual([0n, 0x7f00n]);
    expect(m.rflags).toBe(2n | PF);
  });
});

describe("MUL-02: signed multiply, all forms", () => {
  it("one operand, 8-bit: −128 × −1 = 128 does not fit AL → CF = OF = 1", () => {
    const m = run(start({ rax: 0x80n, rbx: 0xffn }), insn("imul", [reg(RBX, 1)]));
    expect(m.gpr[RAX]).toBe(0x0080n);
    expect(m.rflags).toBe(2n | CF | OF | SF);
  });
  it("one operand, 8-bit: −1 × −1 = 1 fits → CF = OF = 0, AH = 0", () => {
    const m = run(start({ rax: 0xffffn, rbx: 0xffn }), insn("imul", [reg(RBX, 1)]));
    expect(m.gpr[RAX]).toBe(0x0001n);
    expect(m.rflags).toBe(2n);
  });
  it("one operand, 64-bit: −2 × 3 = −6 sign-fills RDX", () => {
    const m = run(start({ rax: M64 - 1n, rbx: 3n }), insn("imul", [reg(RBX)]));
    expect([m.gpr[RDX], m.gpr[RAX]]).toEqual([M64, M64 - 5n]);
    expect(m.rflags).toBe(2n | SF | PF);
  });
  it("two operands, 64-bit: 2^62 × 2 overflows into the sign → CF = OF = 1", () => {
    const m = run(start({ rax: 1n << 62n, rbx: 2n }), insn("imul", [reg(RAX), reg(RBX)]));
    expect(m.gpr[RAX]).toBe(1n << 63n);
    expect(m.rflags).toBe(2n | CF | OF | SF | PF);
  });
  it("three operands, 16-bit: −2 × 3 = −6 into AX, upper RAX kept", () => {
    const m = run(start({ rax: 0x1234_0000_0000_5555n, rbx: 0xfffen }), insn("imul", [reg(RAX, 2), reg(RBX, 2), imm(3n, 2)]));
    expect(m.gpr[RAX]).toBe(0x1234_0000_0000_fffan);
    expect(m.rflags).toBe(2n | SF | PF);
  });
  it("three operands, 32-bit: result zero-extends", () => {
    const m = run(start({ rax: M64, rbx: 0x10000n }), insn("imul", [reg(RAX, 4), reg(RBX, 4), imm(0x10000n, 4)]));
    expect(m.gpr[RAX]).toBe(0n);
    expect(m.rflags).toBe(2n | CF | OF | ZF | PF);
  });
});

function divide(op: "div" | "idiv", size: OperandSize, regs: Partial<Record<GprName, bigint>>) {
  return exec(start(regs, STATUS), insn(op, [reg(RBX, size)]));
}

describe("DIV-01/02: #DE", () => {
  it("DIV-01: divisor 0 → #DE (vector 0, no error code), nothing changed", () => {
    for (const size of [1, 2, 4, 8] as const) {
      const r = divide("div", size, { rax: 5n, rdx: 0n, rbx: 0n });
      expect(r.fault).toMatchObject({ vector: 0, errorCode: undefined, rule: "DIV-01" });
      expect(r.m.gpr[RAX]).toBe(5n);
      expect(r.m.rip).toBe(kernelMachine().rip);
    }
  });
  it("DIV-01: IDIV by 0 → #DE", () => {
    expect(divide("idiv", 4, { rax: 5n, rbx: 0n }).fault?.rule).toBe("DIV-01");
  });
  it("DIV-02: 8-bit DIV AX 0x1234 / 0x12 = 0x102 does not fit AL", () => {
    expect(divide("div", 1, { rax: 0x1234n, rbx: 0x12n }).fault?.rule).toBe("DIV-02");
  });
  it("DIV-02: 64-bit DIV RDX:RAX = 2·2^64 / 2 = 2^64 does not fit", () => {
    expect(divide("div", 8, { rdx: 2n, rax: 0n, rbx: 2n }).fault?.rule).toBe("DIV-02");
  });
  it("DIV-02: IDIV INT_MIN / −1 overflows at every size", () => {
    expect(divide("idiv", 1, { rax: 0xff80n, rbx: 0xffn }).fault?.rule).toBe("DIV-02");
    expect(divide("idiv", 2, { rdx: 0xffffn, rax: 0x8000n, rbx: 0xffffn }).fault?.rule).toBe("DIV-02");
    expect(divide("idiv", 4, { rdx: 0xffff_ffffn, rax: 0x8000_0000n, rbx: 0xffff_ffffn }).fault?.rule).toBe("DIV-02");
    expect(divide("idiv", 8, { rdx: M64, rax: 1n << 63n, rbx: M64 }).fault?.rule).toBe("DIV-02");
  });
  it("DIV-02: 8-bit IDIV −129 / 1 does not fit AL; −128 / 1 does", () => {
    expect(divide("idiv", 1, { rax: 0xff7fn, rbx: 1n }).fault?.rule).toBe("DIV-02");
    expect(divide("idiv", 1, { rax: 0xff80n, rbx: 1n }).m.gpr[RAX]).toBe(0x0080n);
  });
});

describe("DIV-03: results", () => {
  it("8-bit DIV: AL = quotient, AH = remainder; flags unchanged", () => {
    const r = divide("div", 1, { rax: 0x0107n, rbx: 0x10n });
    expect(r.m.gpr[RAX]).toBe(0x0710n);
    expect(r.m.rflags).toBe(2n | STATUS);
  });
  it("8-bit DIV by BH (a high-byte divisor)", () => {
    const m = run(start({ rax: 0x0107n, rbx: 0x1000n }), insn("div", [reg(7, 1, true)]));
    expect(m.gpr[RAX]).toBe(0x0710n);
  });
  it("8-bit DIV by AH always faults: AX ≥ 256·AH, so the quotient never fits AL", () => {
    expect(exec(start({ rax: 0x0209n }), insn("div", [reg(4, 1, true)])).fault?.rule).toBe("DIV-02");
  });
  it("64-bit DIV: 2^64 / 2 = 2^63 remainder 0", () => {
    const r = divide("div", 8, { rdx: 1n, rax: 0n, rbx: 2n });
    expect([r.m.gpr[RAX], r.m.gpr[RDX]]).toEqual([1n << 63n, 0n]);
  });
  it("32-bit DIV zero-extends both results", () => {
    const r = divide("div", 4, { rdx: 0xffff_ffff_0000_0000n, rax: 0xffff_ffff_0000_0007n, rbx: 2n });
    expect([r.m.gpr[RAX], r.m.gpr[RDX]]).toEqual([3n, 1n]);
  });
  it("IDIV truncates toward zero; the remainder has the dividend's sign: −7 / 2 = −3 r −1", () => {
    const r = divide("idiv", 8, { rdx: M64, rax: M64 - 6n, rbx: 2n });
    expect([r.m.gpr[RAX], r.m.gpr[RDX]]).toEqual([M64 - 2n, M64]);
  });
  it("16-bit IDIV −32768 / 1 fits", () => {
    const r = divide("idiv", 2, { rdx: 0xffffn, rax: 0x8000n, rbx: 1n });
    expect([r.m.gpr[RAX], r.m.gpr[RDX]]).toEqual([0x8000n, 0n]);
  });
});
