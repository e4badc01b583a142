// ALU-03/04/07 and read-modify-write memory destinations.
import { describe, expect, it } from "vitest";
import { RAX, RBX, RFLAGS } from "../../../spec/machine/registers.ts";
import { kernelMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, mem, reg, run } from "./build.ts";

const DATA = 0x30000n;

describe("ALU-04: AND/OR/XOR/TEST", () => {
  it("AND clears CF and OF, clears the undefined AF, sets SF/ZF/PF from the result", () => {
    const m0 = { ...withRegs(kernelMachine(), { rax: 0xf0n, rbx: 0x80n }), rflags: 2n | RFLAGS.CF | RFLAGS.OF | RFLAGS.AF };
    const m = run(m0, insn("and", [reg(RAX, 1), reg(RBX, 1)]));
    expect(m.gpr[RAX]).toBe(0x80n);
    expect(m.rflags).toBe(2n | RFLAGS.SF);
  });

  it("XOR EAX,EAX zeroes all of RAX and sets ZF and PF", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0xffff_ffff_ffff_ffffn }), rflags: 2n | RFLAGS.CF }, insn("xor", [reg(RAX, 4), reg(RAX, 4)]));
    expect(m.gpr[RAX]).toBe(0n);
    expect(m.rflags).toBe(2n | RFLAGS.ZF | RFLAGS.PF);
  });

  it("OR with an 8-bit high register (AH) writes bits 15:8 only", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0x1234n }), rflags: 2n }, insn("or", [reg(4, 1, true), imm(0x41n, 1)]));
    expect(m.gpr[RAX]).toBe(0x5334n);
    expect(m.rflags).toBe(2n | RFLAGS.PF); // 0x53 has four 1 bits
  });

  it("TEST writes only flags (testb $3, 24(%rsp) as in entry code)", () => {
    const m0 = withBytes({ ...withRegs(kernelMachine(), { rsp: 0x1ff00n }), rflags: 2n }, 0x1ff18n, [0x2b]);
    const m = run(m0, insn("test", [mem({ size: 1, base: 4, disp: 0x18n }), imm(3n, 1)]));
    expect(m.rflags).toBe(2n | RFLAGS.PF); // 0x2b & 3 = 3: not zero, even parity
    expect(m.memory.read(0x1ff18n, 1)).toBe(0x2bn);
  });

  it("ALU-03: CMP sets flags like SUB and writes nothing", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 1n, rbx: 2n }), rflags: 2n }, insn("cmp", [reg(RAX), reg(RBX)]));
    expect(m.gpr[RAX]).toBe(1n);
    expect(m.rflags).toBe(2n | RFLAGS.CF | RFLAGS.SF | RFLAGS.AF | RFLAGS.PF);
  });

  it("ALU-07: NOT inverts and changes no flag", () => {
    const m = run({ ...withRegs(kernelMachine(), { rax: 0x0f0fn }), rflags: 2n | RFLAGS.ZF }, insn("not", [reg(RAX, 2)]));
    expect(m.gpr[RAX]).toBe(0xf0f0n);
    expect(m.rflags).toBe(2n | RFLAGS.ZF);
  });
});

describe("read-modify-write memory destinations", () => {
  it("ADD [mem], imm updates memory in place", () => {
    const m0 = withBytes({ ...kernelMachine(), rflags: 2n }, DATA, [0xff, 0xff, 0, 0]);
    const m = run(m0, insn("add", [mem({ size: 4, disp: DATA }), imm(1n, 4)]));
    expect(m.memory.read(DATA, 4)).toBe(0x10000n);
    expect(m.rflags).toBe(2n | RFLAGS.AF | RFLAGS.PF);
  });

  it("a not-present destination page faults #PF with W=1 (RMW translates as a write), P=0, CR2 = address", () => {
    const r = exec(kernelMachine(), insn("add", [mem({ size: 8, disp: 0x600000n }), imm(1n, 8)]));
    expect(r.fault?.vector).toBe(14);
    expect(r.fault?.errorCode).toBe(0b010);
    expect(r.fault?.address).toBe(0x600000n);
  });

  it("INC, NOT, NEG, SHL and XCHG on a not-present page also report W=1", () => {
    const target = mem({ size: 4, disp: 0x600010n });
    for (const i of [insn("inc", [target]), insn("not", [target]), insn("neg", [target]), insn("shl", [target, imm(1n, 1)]), insn("xchg", [target, reg(RBX, 4)])]) {
      const r = exec(kernelMachine(), i);
      expect(r.fault?.errorCode, i.mnemonic).toBe(0b010);
    }
  });

  it("CMP and TEST on a not-present page read (W=0)", () => {
    for (const m of ["cmp", "test"] as const) {
      const r = exec(kernelMachine(), insn(m, [mem({ size: 4, disp: 0x600010n }), imm(1n, 4)]));
      expect(r.fault?.errorCode, m).toBe(0b000);
    }
  });

  it("a page-straddling RMW whose second page is not present writes nothing and changes no flag", () => {
    const m0 = withBytes({ ...kernelMachine(), rflags: 2n | RFLAGS.CF }, 0x5ffffen, [0x11, 0x22]);
    const r = exec(m0, insn("add", [mem({ size: 4, disp: 0x5ffffen }), imm(1n, 4)]));
    expect(r.fault?.vector).toBe(14);
    expect(r.fault?.address).toBe(0x600000n);
    expect(r.m.memory.read(0x5ffffen, 2)).toBe(0x2211n);
    expect(r.m.rflags).toBe(2n | RFLAGS.CF);
    expect(r.m.rip).toBe(m0.rip);
  });
});
