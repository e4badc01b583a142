// FLAGCTL-01, NOP-01, UD2-01, BT-01.
import { describe, expect, it } from "vitest";
import { RAX, RBX, RFLAGS } from "../../../spec/machine/registers.ts";
import { kernelMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, mem, reg, run } from "./build.ts";

const DATA = 0x30000n;
const { CF, DF, ZF, OF, SF, AF, PF } = RFLAGS;
const at = (flags: bigint) => ({ ...kernelMachine(), rflags: 2n | flags });

describe("FLAGCTL-01: CLD/STD/CLC/STC/CMC", () => {
  it("each writes its one flag", () => {
    expect(run(at(DF | CF), insn("cld", [], { length: 1 })).rflags).toBe(2n | CF);
    expect(run(at(CF), insn("std", [], { length: 1 })).rflags).toBe(2n | CF | DF);
    expect(run(at(CF | ZF), insn("clc", [], { length: 1 })).rflags).toBe(2n | ZF);
    expect(run(at(ZF), insn("stc", [], { length: 1 })).rflags).toBe(2n | ZF | CF);
    expect(run(at(CF), insn("cmc", [], { length: 1 })).rflags).toBe(2n);
    expect(run(at(0n), insn("cmc", [], { length: 1 })).rflags).toBe(2n | CF);
  });
});

describe("NOP-01 / UD2-01", () => {
  it("NOP and PAUSE only advance RIP; NOP r/m does not touch its (unmapped) operand", () => {
    const m0 = at(CF);
    expect(run(m0, insn("nop", [], { length: 1 }))).toEqual({ ...m0, rip: m0.rip + 1n });
    expect(run(m0, insn("pause", [], { length: 2 })).rip).toBe(m0.rip + 2n);
    expect(exec(m0, insn("nop", [mem({ size: 4, disp: 0x600000n })], { length: 8 })).fault).toBeUndefined();
  });
  it("UD2 raises #UD (vector 6, no error code) at the UD2", () => {
    const r = exec(kernelMachine(), insn("ud2", [], { length: 2 }));
    expect(r.fault).toMatchObject({ vector: 6, errorCode: undefined, rule: "UD2-01" });
    expect(r.m.rip).toBe(kernelMachine().rip);
  });
});

describe("BT-01: BT/BTS/BTR/BTC", () => {
  it("BT reg, imm: CF ← bit (imm mod width); ZF and the undefined flags unchanged", () => {
    const m0 = { ...withRegs(kernelMachine(), { rax: 1n << 35n }), rflags: 2n | ZF | OF | SF | AF | PF };
    expect(run(m0, insn("bt", [reg(RAX), imm(35n, 1)])).rflags).toBe(2n | CF | ZF | OF | SF | AF | PF);
    expect(run(m0, insn("bt", [reg(RAX), imm(35n + 64n, 1)])).rflags & CF).toBe(CF);
    expect(run(m0, insn("bt", [reg(RAX, 4), imm(35n, 1)])).rflags & CF).toBe(0n); // 35 mod 32 = 3
  });
  it("BTS/BTR/BTC on a register write the bit and report its old value", () => {
    const m0 = { ...withRegs(kernelMachine(), { rax: 0b1010n, rbx: 1n }), rflags: 2n };
    const s = run(m0, insn("bts", [reg(RAX), imm(0n, 1)]));
    expect([s.gpr[RAX], s.rflags & CF]).toEqual([0b1011n, 0n]);
    const r = run(m0, insn("btr", [reg(RAX), reg(RBX)]));
    expect([r.gpr[RAX], r.rflags & CF]).toEqual([0b1000n, CF]);
    const c = run(m0, insn("btc", [reg(RAX, 2), imm(3n, 1)]));
    expect([c.gpr[RAX], c.rflags & CF]).toEqual([0b0010n, CF]);
  });
  it("a register offset into memory is a signed bit-string index (bit 40 of a dword string, bit −1)", () => {
    const m0 = withBytes({ ...kernelMachine(), rflags: 2n }, DATA, [0, 0, 0, 0, 0, 1, 0, 0]);
    const hit = run(withRegs(m0, { rbx: 40n }), insn("bt", [mem({ size: 4, disp: DATA }), reg(RBX, 4)]));
    expect(hit.rflags & CF).toBe(CF);
    const set = run(withRegs(m0, { rbx: 0xffff_ffffn }), insn("bts", [mem({ size: 4, disp: DATA + 4n }), reg(RBX, 4)]));
    expect(set.memory.read(DATA, 4)).toBe(0x8000_0000n);
    expect(set.rflags & CF).toBe(0n);
  });
  it("BTS on a not-present page reports W=1; BT reports W=0", () => {
    const target = mem({ size: 8, disp: 0x600000n });
    expect(exec(kernelMachine(), insn("bts", [target, imm(1n, 1)])).fault?.errorCode).toBe(0b010);
    expect(exec(kernelMachine(), insn("bt", [target, imm(1n, 1)])).fault?.errorCode).toBe(0b000);
  });
});
