// MOV-01..05: MOV forms, MOVZX/MOVSX/MOVSXD, LEA, XCHG, CBW/CWD families.
import { describe, expect, it } from "vitest";
import { RAX, RBX, RCX, RDX, RFLAGS, RSI } from "../../../spec/machine/registers.ts";
import { kernelMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { exec, imm, insn, mem, reg, run } from "./build.ts";

const M64 = (1n << 64n) - 1n;
const DATA = 0x30000n;
const base = () => ({ ...withRegs(kernelMachine(), { rax: M64, rbx: M64 }), rflags: 2n | RFLAGS.CF });

describe("MOV-01: MOV", () => {
  it("32-bit register write zero-extends; 16- and 8-bit writes merge; flags untouched", () => {
    const m0 = withRegs(base(), { rcx: 0x1122_3344_5566_7788n });
    expect(run(m0, insn("mov", [reg(RAX, 4), reg(RCX, 4)])).gpr[RAX]).toBe(0x5566_7788n);
    expect(run(m0, insn("mov", [reg(RAX, 2), reg(RCX, 2)])).gpr[RAX]).toBe(0xffff_ffff_ffff_7788n);
    expect(run(m0, insn("mov", [reg(RAX, 1), reg(RCX, 1)])).gpr[RAX]).toBe(0xffff_ffff_ffff_ff88n);
    expect(run(m0, insn("mov", [reg(4, 1, true), reg(RCX, 1)])).gpr[RAX]).toBe(0xffff_ffff_ffff_88ffn);
    expect(run(m0, insn("mov", [reg(RAX), reg(RCX)])).rflags).toBe(2n | RFLAGS.CF);
  });
  it("MOVABS imm64 and MOV r/m64, imm32 (already sign-extended by the decoder)", () => {
    expect(run(base(), insn("mov", [reg(RAX), imm(0x8000_0000_0000_0001n, 8)])).gpr[RAX]).toBe(0x8000_0000_0000_0001n);
    const m = run(base(), insn("mov", [mem({ size: 8, disp: DATA }), imm(0xffff_ffff_ffff_fff0n, 8)]));
    expect(m.memory.read(DATA, 8)).toBe(0xffff_ffff_ffff_fff0n);
  });
  it("moffs form (A1/A3: absolute address, no base) loads and stores", () => {
    const m0 = withBytes(base(), DATA, [0x78, 0x56, 0x34, 0x12]);
    expect(run(m0, insn("mov", [reg(RAX, 4), mem({ size: 4, disp: DATA })])).gpr[RAX]).toBe(0x1234_5678n);
    const stored = run(withRegs(m0, { rax: 0xabn }), insn("mov", [mem({ size: 1, disp: DATA + 8n }), reg(RAX, 1)]));
    expect(stored.memory.read(DATA + 8n, 1)).toBe(0xabn);
  });
  it("GS-relative store uses GS.base (mov %rsp,%gs:16)", () => {
    const m0 = { ...withRegs(base(), { rsp: 0x1f000n }), gs: { ...kernelMachine().gs, base: DATA } };
    const m = run(m0, insn("mov", [mem({ size: 8, disp: 16n, segment: "gs" }), reg(4)]));
    expect(m.memory.read(DATA + 16n, 8)).toBe(0x1f000n);
  });
  it("RIP-relative load is relative to the next instruction", () => {
    const m0 = withBytes(base(), 0x10000n + 7n + 0x100n, [0x42]);
    const m = run(m0, insn("mov", [reg(RAX, 1), mem({ size: 1, disp: 0x100n, ripRelative: true })], { length: 7 }));
    expect(m.gpr[RAX]! & 0xffn).toBe(0x42n);
  });
  it("a store to a not-present page faults #PF W=1 and writes nothing", () => {
    const r = exec(base(), insn("mov", [mem({ size: 8, disp: 0x600000n }), reg(RAX)]));
    expect(r.fault).toMatchObject({ vector: 14, errorCode: 0b010, address: 0x600000n });
  });
});

describe("MOV-02: MOVZX / MOVSX / MOVSXD", () => {
  it("MOVZX r32, r/m8 and r64, r/m16", () => {
    const m0 = withRegs(base(), { rcx: 0x8182n });
    expect(run(m0, insn("movzx", [reg(RAX, 4), reg(RCX, 1)])).gpr[RAX]).toBe(0x82n);
    expect(run(m0, insn("movzx", [reg(RAX), reg(RCX, 2)])).gpr[RAX]).toBe(0x8182n);
    expect(run(m0, insn("movzx", [reg(RAX, 2), reg(RCX, 1)])).gpr[RAX]).toBe(0xffff_ffff_ffff_0082n);
  });
  it("MOVSX sign-extends to 16, 32 and 64 bits; MOVSXD r64, r/m32", () => {
    const m0 = withRegs(base(), { rcx: 0x8000_8080n, rax: 0n });
    expect(run(m0, insn("movsx", [reg(RAX, 2), reg(RCX, 1)])).gpr[RAX]).toBe(0xff80n);
    expect(run(m0, insn("movsx", [reg(RAX, 4), reg(RCX, 2)])).gpr[RAX]).toBe(0xffff_8080n);
    expect(run(m0, insn("movsx", [reg(RAX), reg(RCX, 1)])).gpr[RAX]).toBe(0xffff_ffff_ffff_ff80n);
    expect(run(m0, insn("movsxd", [reg(RAX), reg(RCX, 4)])).gpr[RAX]).toBe(0xffff_ffff_8000_8080n);
    expect(run(m0, insn("movsxd", [reg(RAX), mem({ size: 4, disp: DATA })])).gpr[RAX]).toBe(0n);
  });
});

describe("MOV-03: LEA", () => {
  it("computes base + index·scale + disp without touching memory (even at an unmapped address)", () => {
    const m0 = withRegs(base(), { rsi: 0x600000n, rcx: 3n });
    const m = run(m0, insn("lea", [reg(RAX), mem({ size: 0, base: RSI, index: RCX, scale: 8, disp: -8n })]));
    expect(m.gpr[RAX]).toBe(0x600010n);
  });
  it("truncates to a 32- or 16-bit operand size; a non-canonical address is fine", () => {
    const m0 = withRegs(base(), { rsi: 0x8000_0000_1234_5678n });
    expect(run(m0, insn("lea", [reg(RAX, 4), mem({ size: 0, base: RSI, disp: 1n })])).gpr[RAX]).toBe(0x1234_5679n);
    expect(run(m0, insn("lea", [reg(RAX, 2), mem({ size: 0, base: RSI })])).gpr[RAX]).toBe(0xffff_ffff_ffff_5678n);
    expect(run(m0, insn("lea", [reg(RAX), mem({ size: 0, base: RSI })])).gpr[RAX]).toBe(0x8000_0000_1234_5678n);
  });
  it("ignores the segment base (LEA is an offset, not a linear address)", () => {
    const m0 = { ...withRegs(base(), { rsi: 0x10n }), gs: { ...kernelMachine().gs, base: 0x5000n } };
    expect(run(m0, insn("lea", [reg(RAX), mem({ size: 0, base: RSI, segment: "gs" })])).gpr[RAX]).toBe(0x10n);
  });
});

describe("MOV-04: XCHG", () => {
  it("swaps registers; XCHG EAX, EAX (87 C0) still zero-extends", () => {
    const m0 = withRegs(base(), { rax: 1n, rbx: 2n });
    const m = run(m0, insn("xchg", [reg(RAX), reg(RBX)]));
    expect([m.gpr[RAX], m.gpr[RBX]]).toEqual([2n, 1n]);
    expect(run(base(), insn("xchg", [reg(RAX, 4), reg(RAX, 4)])).gpr[RAX]).toBe(0xffff_ffffn);
  });
  it("swaps a byte with memory (the spinlock idiom)", () => {
    const m0 = withBytes(withRegs(base(), { rax: 1n }), DATA, [0]);
    const m = run(m0, insn("xchg", [mem({ size: 1, disp: DATA }), reg(RAX, 1)]));
    expect(m.memory.read(DATA, 1)).toBe(1n);
    expect(m.gpr[RAX]! & 0xffn).toBe(0n);
  });
  it("with a not-present page: #PF W=1, the register is unchanged", () => {
    const r = exec(withRegs(base(), { rax: 1n }), insn("xchg", [reg(RAX), mem({ size: 8, disp: 0x600000n })]));
    expect(r.fault?.errorCode).toBe(0b010);
    expect(r.m.gpr[RAX]).toBe(1n);
  });
});

describe("MOV-05: CBW/CWDE/CDQE, CWD/CDQ/CQO", () => {
  it("CBW, CWDE, CDQE by operand size", () => {
    const m0 = withRegs(base(), { rax: 0xffff_ffff_8000_8080n });
    expect(run(m0, insn("cbw", [], { operandSize: 2 })).gpr[RAX]).toBe(0xffff_ffff_8000_ff80n);
    expect(run(m0, insn("cbw", [], { operandSize: 4 })).gpr[RAX]).toBe(0xffff_8080n);
    expect(run(m0, insn("cbw", [], { operandSize: 8 })).gpr[RAX]).toBe(0xffff_ffff_8000_8080n);
    expect(run(withRegs(m0, { rax: 0x7fff_ffffn }), insn("cbw", [], { operandSize: 8 })).gpr[RAX]).toBe(0x7fff_ffffn);
  });
  it("CWD, CDQ, CQO by operand size", () => {
    const m0 = withRegs(base(), { rax: 0x8000_0000_8000_8000n, rdx: 0x1234_5678_1234_5678n });
    expect(run(m0, insn("cwd", [], { operandSize: 2 })).gpr[RDX]).toBe(0x1234_5678_1234_ffffn);
    expect(run(m0, insn("cwd", [], { operandSize: 4 })).gpr[RDX]).toBe(0xffff_ffffn);
    expect(run(m0, insn("cwd", [], { operandSize: 8 })).gpr[RDX]).toBe(M64);
    expect(run(withRegs(m0, { rax: 1n }), insn("cwd", [], { operandSize: 8 })).gpr[RDX]).toBe(0n);
  });
});
