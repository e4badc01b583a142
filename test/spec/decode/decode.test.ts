// Directed decoder tests: bytes → mnemonic, length, operand size and operands, per instruction
// family; the example encodings of digest §26; every #UD the decoder raises; the 15-byte limit;
// fetch faults; compatibility mode.
import { describe, expect, it } from "vitest";
import { decode } from "../../../spec/decode/decode.ts";
import type { Instruction, MemOperand, Operand, OperandSize } from "../../../spec/decode/instruction.ts";
import { fault, type Fault } from "../../../spec/fault.ts";
import { ruleById } from "../../../spec/rule-catalogue.ts";

// ---- helpers ------------------------------------------------------------------------------------

const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RDI = 7, R8 = 8, R12 = 12, R13 = 13;

function bytesOf(hex: string): number[] {
  return hex.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16));
}

/** Decodes `hex`; reading past it is a test bug. Records the highest byte index fetched. */
function run(hex: string, mode64 = true) {
  const bytes = bytesOf(hex);
  let maxRead = -1;
  const result = decode((i) => {
    maxRead = Math.max(maxRead, i);
    const b = bytes[i];
    if (b === undefined) throw new Error(`decoder read byte ${i} past "${hex}"`);
    return b;
  }, mode64);
  return { result, maxRead, bytes };
}

/** Expects an instruction that uses every byte of `hex`. */
function insn(hex: string, mode64 = true): Instruction {
  const { result, bytes } = run(hex, mode64);
  if (result.kind !== "instruction") throw new Error(`${hex}: expected an instruction, got ${JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? `${v}` : v))}`);
  expect(result.length, hex).toBe(bytes.length);
  expect([...result.bytes], hex).toEqual(bytes);
  return result;
}

function expectUd(hex: string, rule: string, mode64 = true): void {
  const { result } = run(hex, mode64);
  expect(result, hex).toEqual(fault(rule, 6));
}

function expectUnsupported(hex: string, mode64 = true): void {
  const { result } = run(hex, mode64);
  expect(result.kind, hex).toBe("unsupported");
}

const reg = (n: number, size: OperandSize, high8 = false): Operand => ({ kind: "reg", reg: n, size, high8 });
const imm = (value: bigint, size: OperandSize): Operand => ({ kind: "imm", value, size });
const rel = (disp: bigint): Operand => ({ kind: "rel", disp });
function mem(size: number, fields: Partial<MemOperand> = {}): MemOperand {
  const base = fields.base ?? null;
  const segment = fields.segment ?? (base === RSP || base === RBP ? "ss" : "ds");
  return {
    kind: "mem", size, segment, stackSegment: segment === "ss", base, index: null, scale: 1, disp: 0n,
    ripRelative: false, addressSize: 8, ...fields,
  };
}

function expectDecodes(hex: string, mnemonic: string, operandSize: OperandSize, operands: Operand[], mode64 = true): Instruction {
  const i = insn(hex, mode64);
  expect({ mnemonic: i.mnemonic, operandSize: i.operandSize, operands: i.operands }, hex).toEqual({ mnemonic, operandSize, operands });
  return i;
}

// ---- digest §26 example encodings -----------------------------------------------------------------

describe("digest §26: the teaching-kernel subset and its example encodings", () => {
  it("privilege transitions and system state", () => {
    expectDecodes("0F 05", "syscall", 4, []);
    expect(insn("48 0F 07")).toMatchObject({ mnemonic: "sysret", rexW: true, operandSize: 8 });
    expect(insn("0F 07")).toMatchObject({ mnemonic: "sysret", rexW: false, operandSize: 4 });
    expectDecodes("0F 01 F8", "swapgs", 4, []);
    expectDecodes("48 CF", "iret", 8, []);
    expectDecodes("CF", "iret", 4, []);
    expectDecodes("66 CF", "iret", 2, []);
    expectDecodes("CD 80", "int", 4, [imm(0x80n, 1)]);
    expectDecodes("CC", "int3", 4, []);
    expectDecodes("F1", "int1", 4, []);
    expectDecodes("FA", "cli", 4, []);
    expectDecodes("FB", "sti", 4, []);
    expectDecodes("F4", "hlt", 4, []);
    expect(insn("F3 90")).toMatchObject({ mnemonic: "pause", rep: "rep", operands: [] });
    expectDecodes("0F 32", "rdmsr", 4, []);
    expectDecodes("0F 30", "wrmsr", 4, []);
    expectDecodes("0F 20 D0", "mov_from_cr", 8, [reg(RAX, 8), { kind: "cr", cr: 2 }]);
    expectDecodes("0F 20 D8", "mov_from_cr", 8, [reg(RAX, 8), { kind: "cr", cr: 3 }]);
    expectDecodes("0F 22 D8", "mov_to_cr", 8, [{ kind: "cr", cr: 3 }, reg(RAX, 8)]);
    expectDecodes("0F 22 C0", "mov_to_cr", 8, [{ kind: "cr", cr: 0 }, reg(RAX, 8)]);
    expectDecodes("0F 22 E0", "mov_to_cr", 8, [{ kind: "cr", cr: 4 }, reg(RAX, 8)]);
    expectDecodes("44 0F 22 C0", "mov_to_cr", 8, [{ kind: "cr", cr: 8 }, reg(RAX, 8)]);
    expectDecodes("0F 01 10", "lgdt", 8, [mem(10, { base: RAX })]);
    expectDecodes("0F 01 18", "lidt", 8, [mem(10, { base: RAX })]);
    expectDecodes("0F 00 D8", "ltr", 2, [reg(RAX, 2)]);
    expectDecodes("0F 01 CB", "stac", 4, []);
    expectDecodes("0F 01 CA", "clac", 4, []);
    expectDecodes("0F 01 38", "invlpg", 4, [mem(0, { base: RAX })]);
    expectDecodes("48 CB", "retf", 8, []);
    expectDecodes("8E D0", "mov_to_sreg", 2, [{ kind: "sreg", sreg: "ss" }, reg(RAX, 2)]);
    expectDecodes("8E D8", "mov_to_sreg", 2, [{ kind: "sreg", sreg: "ds" }, reg(RAX, 2)]);
    expectDecodes("8C D0", "mov_from_sreg", 4, [reg(RAX, 4), { kind: "sreg", sreg: "ss" }]);
    expectDecodes("0F A0", "push_sreg", 8, [{ kind: "sreg", sreg: "fs" }]);
    expectDecodes("0F A1", "pop_sreg", 8, [{ kind: "sreg", sreg: "fs" }]);
    expectDecodes("0F A8", "push_sreg", 8, [{ kind: "sreg", sreg: "gs" }]);
    expectDecodes("0F A9", "pop_sreg", 8, [{ kind: "sreg", sreg: "gs" }]);
    expectDecodes("9C", "pushf", 8, []);
    expectDecodes("9D", "popf", 8, []);
    expectDecodes("FC", "cld", 4, []);
  });

  it("data movement, stack and addressing", () => {
    // mov %rsp,%gs:16 and mov %gs:8,%rsp: SIB 25h = disp32, no base, no index.
    expectDecodes("65 48 89 24 25 10 00 00 00", "mov", 8, [mem(8, { segment: "gs", disp: 16n }), reg(RSP, 8)]);
    expectDecodes("65 48 8B 24 25 08 00 00 00", "mov", 8, [reg(RSP, 8), mem(8, { segment: "gs", disp: 8n })]);
    expectDecodes("89 C8", "mov", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("8B 07", "mov", 4, [reg(RAX, 4), mem(4, { base: RDI })]);
    expectDecodes("48 C7 C0 FF FF FF FF", "mov", 8, [reg(RAX, 8), imm(0xffff_ffff_ffff_ffffn, 8)]);
    expectDecodes("B8 78 56 34 12", "mov", 4, [reg(RAX, 4), imm(0x12345678n, 4)]);
    expectDecodes("48 B8 88 77 66 55 44 33 22 11", "mov", 8, [reg(RAX, 8), imm(0x1122334455667788n, 8)]);
    expectDecodes("0F B6 C1", "movzx", 4, [reg(RAX, 4), reg(RCX, 1)]);
    expectDecodes("0F B7 C1", "movzx", 4, [reg(RAX, 4), reg(RCX, 2)]);
    // lea 0x1000(%rdi),%rsp
    expectDecodes("48 8D A7 00 10 00 00", "lea", 8, [reg(RSP, 8), mem(0, { base: RDI, disp: 0x1000n })]);
    expectDecodes("50", "push", 8, [reg(RAX, 8)]);
    expectDecodes("5F", "pop", 8, [reg(RDI, 8)]);
    expectDecodes("41 50", "push", 8, [reg(R8, 8)]);
    expectDecodes("6A FF", "push", 8, [imm(0xffff_ffff_ffff_ffffn, 8)]);
    expectDecodes("68 00 00 00 80", "push", 8, [imm(0xffff_ffff_8000_0000n, 8)]);
    // pushq %gs:(0x1000)
    expectDecodes("65 FF 34 25 00 10 00 00", "push", 8, [mem(8, { segment: "gs", disp: 0x1000n })]);
    expectDecodes("8F 00", "pop", 8, [mem(8, { base: RAX })]);
    expectDecodes("86 07", "xchg", 1, [mem(1, { base: RDI }), reg(RAX, 1)]);
  });

  it("control flow", () => {
    expectDecodes("E8 FB FF FF FF", "call", 8, [rel(-5n)]);
    expectDecodes("FF D0", "call", 8, [reg(RAX, 8)]);
    expectDecodes("C3", "ret", 8, []);
    expectDecodes("C2 08 00", "ret", 8, [imm(8n, 2)]);
    expectDecodes("EB FE", "jmp", 8, [rel(-2n)]);
    expectDecodes("E9 00 01 00 00", "jmp", 8, [rel(0x100n)]);
    expectDecodes("FF E3", "jmp", 8, [reg(RBX, 8)]);
    for (let cc = 0; cc < 16; cc++) {
      const short = insn(`${(0x70 + cc).toString(16)} 10`);
      expect(short).toMatchObject({ mnemonic: "jcc", condition: cc, operands: [rel(0x10n)], operandSize: 8 });
      const near = insn(`0F ${(0x80 + cc).toString(16)} F0 FF FF FF`);
      expect(near).toMatchObject({ mnemonic: "jcc", condition: cc, operands: [rel(-0x10n)], operandSize: 8 });
    }
  });

  it("integer ALU", () => {
    expectDecodes("48 01 D8", "add", 8, [reg(RAX, 8), reg(RBX, 8)]);
    expectDecodes("03 03", "add", 4, [reg(RAX, 4), mem(4, { base: RBX })]);
    expectDecodes("05 01 00 00 00", "add", 4, [reg(RAX, 4), imm(1n, 4)]);
    expectDecodes("48 05 FF FF FF FF", "add", 8, [reg(RAX, 8), imm(0xffff_ffff_ffff_ffffn, 8)]);
    expectDecodes("48 81 C4 00 01 00 00", "add", 8, [reg(RSP, 8), imm(0x100n, 8)]);
    expectDecodes("48 83 EC 08", "sub", 8, [reg(RSP, 8), imm(8n, 8)]);
    expectDecodes("83 C0 FF", "add", 4, [reg(RAX, 4), imm(0xffff_ffffn, 4)]);
    expectDecodes("09 C8", "or", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("21 C8", "and", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("31 C0", "xor", 4, [reg(RAX, 4), reg(RAX, 4)]);
    expectDecodes("48 39 C8", "cmp", 8, [reg(RAX, 8), reg(RCX, 8)]);
    expectDecodes("3D 00 10 00 00", "cmp", 4, [reg(RAX, 4), imm(0x1000n, 4)]);
    expectDecodes("85 C0", "test", 4, [reg(RAX, 4), reg(RAX, 4)]);
    expectDecodes("A8 03", "test", 1, [reg(RAX, 1), imm(3n, 1)]);
    // testb $3,24(%rsp)
    expectDecodes("F6 44 24 18 03", "test", 1, [mem(1, { base: RSP, disp: 24n }), imm(3n, 1)]);
    expectDecodes("F7 C1 00 00 00 80", "test", 4, [reg(RCX, 4), imm(0x8000_0000n, 4)]);
    expectDecodes("FF C0", "inc", 4, [reg(RAX, 4)]);
    expectDecodes("FF C8", "dec", 4, [reg(RAX, 4)]);
    expectDecodes("FE 00", "inc", 1, [mem(1, { base: RAX })]);
    expectDecodes("FE 08", "dec", 1, [mem(1, { base: RAX })]);
    expectDecodes("48 F7 D8", "neg", 8, [reg(RAX, 8)]);
    expectDecodes("48 F7 D0", "not", 8, [reg(RAX, 8)]);
    expectDecodes("48 C1 E0 04", "shl", 8, [reg(RAX, 8), imm(4n, 1)]);
    expectDecodes("48 C1 E8 04", "shr", 8, [reg(RAX, 8), imm(4n, 1)]);
    expectDecodes("48 C1 F8 3F", "sar", 8, [reg(RAX, 8), imm(63n, 1)]);
    expectDecodes("D1 E0", "shl", 4, [reg(RAX, 4), imm(1n, 1)]);
    expectDecodes("D3 E8", "shr", 4, [reg(RAX, 4), reg(RCX, 1)]);
    expectDecodes("48 19 C0", "sbb", 8, [reg(RAX, 8), reg(RAX, 8)]);
    expectDecodes("48 1B C0", "sbb", 8, [reg(RAX, 8), reg(RAX, 8)]);
    expectDecodes("90", "nop", 4, []);
  });
});

// ---- prefixes, ModRM, SIB ---------------------------------------------------------------------

describe("ModRM, SIB and displacements", () => {
  it("RIP-relative in 64-bit mode, EIP-relative with 67, absolute disp32 in compatibility mode", () => {
    expectDecodes("8B 05 10 00 00 00", "mov", 4, [reg(RAX, 4), mem(4, { ripRelative: true, disp: 16n })]);
    // REX.B does not turn mod=00 rm=101 into [r13].
    expectDecodes("41 8B 05 F0 FF FF FF", "mov", 4, [reg(RAX, 4), mem(4, { ripRelative: true, disp: -16n })]);
    expectDecodes("67 8B 05 10 00 00 00", "mov", 4, [reg(RAX, 4), mem(4, { ripRelative: true, disp: 16n, addressSize: 4 })]);
    expectDecodes("8B 05 10 00 00 00", "mov", 4, [reg(RAX, 4), mem(4, { disp: 16n, addressSize: 4 })], false);
  });

  it("SIB: no base (base 101, mod 00), no index (100), REX.X/REX.B extensions, scale", () => {
    expectDecodes("8B 04 25 00 10 00 00", "mov", 4, [reg(RAX, 4), mem(4, { disp: 0x1000n })]);
    expectDecodes("8B 04 8D 00 10 00 00", "mov", 4, [reg(RAX, 4), mem(4, { index: RCX, scale: 4, disp: 0x1000n })]);
    // SIB base 101 with mod 01 is RBP + disp8; with REX.B it is R13 + disp8.
    expectDecodes("8B 44 25 08", "mov", 4, [reg(RAX, 4), mem(4, { base: RBP, disp: 8n })]);
    expectDecodes("41 8B 44 25 08", "mov", 4, [reg(RAX, 4), mem(4, { base: R13, disp: 8n })]);
    // Index 100 is "none" — unless REX.X makes it R12.
    expectDecodes("8B 04 20", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX })]);
    expectDecodes("42 8B 04 20", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, index: R12 })]);
    expectDecodes("43 8B 04 C4", "mov", 4, [reg(RAX, 4), mem(4, { base: R12, index: R8, scale: 8 })]);
    expectDecodes("8B 40 80", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, disp: -128n })]);
    expectDecodes("8B 80 00 00 00 80", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, disp: -0x8000_0000n })]);
    expectDecodes("67 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, addressSize: 4 })]);
  });

  it("default segment: SS for an RSP or RBP base only (R12/R13 default to DS)", () => {
    expectDecodes("8B 04 24", "mov", 4, [reg(RAX, 4), mem(4, { base: RSP, segment: "ss" })]);
    expectDecodes("8B 45 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RBP, segment: "ss" })]);
    expectDecodes("41 8B 04 24", "mov", 4, [reg(RAX, 4), mem(4, { base: R12, segment: "ds" })]);
    expectDecodes("41 8B 45 00", "mov", 4, [reg(RAX, 4), mem(4, { base: R13, segment: "ds" })]);
    // An RBP/RSP index does not select SS (RSP cannot be an index; RBP can).
    expectDecodes("8B 04 28", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, index: RBP, segment: "ds" })]);
  });

  it("segment overrides: FS/GS apply; ES/CS/SS/DS are ignored in 64-bit mode and apply in compatibility mode", () => {
    expectDecodes("64 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, segment: "fs" })]);
    expectDecodes("65 8B 04 24", "mov", 4, [reg(RAX, 4), mem(4, { base: RSP, segment: "gs", stackSegment: false })]);
    expectDecodes("36 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, segment: "ds" })]);
    expectDecodes("3E 8B 04 24", "mov", 4, [reg(RAX, 4), mem(4, { base: RSP, segment: "ss" })]);
    expectDecodes("26 2E 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, segment: "ds" })]);
    // A null prefix after FS does not cancel it; of FS and GS the last one counts.
    expectDecodes("64 26 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, segment: "fs" })]);
    expectDecodes("64 65 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: RAX, segment: "gs" })]);
    const compat = { addressSize: 4 as const };
    expectDecodes("36 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { ...compat, base: RAX, segment: "ss", stackSegment: true })], false);
    expectDecodes("3E 8B 45 00", "mov", 4, [reg(RAX, 4), mem(4, { ...compat, base: RBP, segment: "ds", stackSegment: false })], false);
    expectDecodes("26 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { ...compat, base: RAX, segment: "es" })], false);
  });

  it("MOV moffs: a 64-bit absolute address (32-bit with 67), no ModRM", () => {
    expectDecodes("A1 88 77 66 55 44 33 22 11", "mov", 4, [reg(RAX, 4), mem(4, { disp: 0x1122334455667788n })]);
    expectDecodes("48 A3 00 00 00 00 00 00 00 80", "mov", 8, [mem(8, { disp: -0x8000_0000_0000_0000n }), reg(RAX, 8)]);
    expectDecodes("65 A0 10 00 00 00 00 00 00 00", "mov", 1, [reg(RAX, 1), mem(1, { disp: 16n, segment: "gs" })]);
    expectDecodes("A2 10 00 00 00 00 00 00 00", "mov", 1, [mem(1, { disp: 16n }), reg(RAX, 1)]);
    expectDecodes("67 A1 44 33 22 11", "mov", 4, [reg(RAX, 4), mem(4, { disp: 0x11223344n, addressSize: 4 })]);
    expectDecodes("A1 44 33 22 11", "mov", 4, [reg(RAX, 4), mem(4, { disp: 0x11223344n, addressSize: 4 })], false);
  });
});

describe("prefixes and operand size", () => {
  it("66 selects 16 bits, REX.W 64 bits, and REX.W wins over 66", () => {
    expectDecodes("66 89 C8", "mov", 2, [reg(RAX, 2), reg(RCX, 2)]);
    expectDecodes("48 89 C8", "mov", 8, [reg(RAX, 8), reg(RCX, 8)]);
    expectDecodes("66 48 89 C8", "mov", 8, [reg(RAX, 8), reg(RCX, 8)]);
    expectDecodes("66 B8 34 12", "mov", 2, [reg(RAX, 2), imm(0x1234n, 2)]);
    expectDecodes("66 81 C0 FF FF", "add", 2, [reg(RAX, 2), imm(0xffffn, 2)]);
    expectDecodes("66 83 C0 FF", "add", 2, [reg(RAX, 2), imm(0xffffn, 2)]);
  });

  it("a REX prefix not immediately before the opcode is ignored; of two REX the last counts", () => {
    expectDecodes("48 66 89 C8", "mov", 2, [reg(RAX, 2), reg(RCX, 2)]);
    expectDecodes("41 64 50", "push", 8, [reg(RAX, 8)]);
    expectDecodes("48 41 8B 00", "mov", 4, [reg(RAX, 4), mem(4, { base: R8 })]);
    expectDecodes("66 41 50", "push", 2, [reg(R8, 2)]);
  });

  it("byte registers 4–7 are AH CH DH BH without REX and SPL BPL SIL DIL with any REX", () => {
    expectDecodes("88 E0", "mov", 1, [reg(RAX, 1), reg(4, 1, true)]);
    expectDecodes("40 88 E0", "mov", 1, [reg(RAX, 1), reg(4, 1)]);
    expectDecodes("B7 01", "mov", 1, [reg(7, 1, true), imm(1n, 1)]);
    expectDecodes("40 B7 01", "mov", 1, [reg(7, 1), imm(1n, 1)]);
    expectDecodes("0F B6 C7", "movzx", 4, [reg(RAX, 4), reg(7, 1, true)]);
    expectDecodes("40 0F B6 C7", "movzx", 4, [reg(RAX, 4), reg(7, 1)]);
  });

  it("stack operations default to 64 bits in 64-bit mode; 66 makes them 16-bit", () => {
    expectDecodes("66 50", "push", 2, [reg(RAX, 2)]);
    expectDecodes("66 6A FF", "push", 2, [imm(0xffffn, 2)]);
    expectDecodes("66 68 34 12", "push", 2, [imm(0x1234n, 2)]);
    expectDecodes("66 9C", "pushf", 2, []);
    expectDecodes("66 0F A8", "push_sreg", 2, [{ kind: "sreg", sreg: "gs" }]);
    expectDecodes("48 0F A0", "push_sreg", 8, [{ kind: "sreg", sreg: "fs" }]);
    expectDecodes("66 FF 30", "push", 2, [mem(2, { base: RAX })]);
    expectDecodes("66 8F 00", "pop", 2, [mem(2, { base: RAX })]);
  });

  it("near branches are 64-bit in 64-bit mode; Intel ignores 66 on them (rel32 stays rel32)", () => {
    expectDecodes("66 E8 00 00 00 00", "call", 8, [rel(0n)]);
    expectDecodes("66 E9 00 00 00 00", "jmp", 8, [rel(0n)]);
    expectDecodes("66 0F 84 00 00 00 00", "jcc", 8, [rel(0n)]);
    expectDecodes("66 C3", "ret", 8, []);
    expectDecodes("66 FF D0", "call", 8, [reg(RAX, 8)]);
    expectDecodes("66 FF 20", "jmp", 8, [mem(8, { base: RAX })]);
  });

  it("F2/F3: the last one is recorded as repne/rep", () => {
    expect(insn("F3 F2 01 C0").rep).toBe("repne");
    expect(insn("F2 F3 01 C0").rep).toBe("rep");
    expect(insn("01 C0").rep).toBe(null);
  });
});

// ---- families -----------------------------------------------------------------------------------

describe("instruction families", () => {
  it("ALU rows 00–3D and groups 80/81/83 /0–/7 in encoding order", () => {
    const ops = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
    ops.forEach((mnemonic, n) => {
      const row = (n << 3).toString(16).padStart(2, "0");
      expectDecodes(`${row} C8`, mnemonic, 1, [reg(RAX, 1), reg(RCX, 1)]);
      expectDecodes(`${((n << 3) + 2).toString(16).padStart(2, "0")} C8`, mnemonic, 1, [reg(RCX, 1), reg(RAX, 1)]);
      expectDecodes(`${((n << 3) + 4).toString(16).padStart(2, "0")} 7F`, mnemonic, 1, [reg(RAX, 1), imm(0x7fn, 1)]);
      expectDecodes(`80 ${(0xc0 | (n << 3)).toString(16)} 80`, mnemonic, 1, [reg(RAX, 1), imm(0x80n, 1)]);
      expectDecodes(`81 ${(0xc1 | (n << 3)).toString(16)} 00 00 00 80`, mnemonic, 4, [reg(RCX, 4), imm(0x8000_0000n, 4)]);
      expectDecodes(`48 83 ${(0xc1 | (n << 3)).toString(16)} 80`, mnemonic, 8, [reg(RCX, 8), imm(0xffff_ffff_ffff_ff80n, 8)]);
    });
  });

  it("82 is an alias of 80 in compatibility mode and #UD in 64-bit mode", () => {
    expectDecodes("82 C0 01", "add", 1, [reg(RAX, 1), imm(1n, 1)], false);
    expectUd("82 C0 01", "DECODE-INVALID-64");
  });

  it("TEST F6/F7 /1 is an alias of /0; NOT NEG MUL IMUL DIV IDIV take one operand", () => {
    expectDecodes("F6 C8 01", "test", 1, [reg(RAX, 1), imm(1n, 1)]);
    expectDecodes("66 F7 C8 01 80", "test", 2, [reg(RAX, 2), imm(0x8001n, 2)]);
    const ops = ["not", "neg", "mul", "imul", "div", "idiv"];
    ops.forEach((mnemonic, n) => {
      expectDecodes(`F6 ${(0xd3 + (n << 3)).toString(16)}`, mnemonic, 1, [reg(RBX, 1)]);
      expectDecodes(`48 F7 ${(0x13 + (n << 3)).toString(16)}`, mnemonic, 8, [mem(8, { base: RBX })]);
    });
  });

  it("IMUL: 0F AF, 69 (imm32) and 6B (imm8), immediates sign-extended", () => {
    expectDecodes("0F AF C1", "imul", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("48 69 C1 00 00 00 80", "imul", 8, [reg(RAX, 8), reg(RCX, 8), imm(0xffff_ffff_8000_0000n, 8)]);
    expectDecodes("6B C1 FE", "imul", 4, [reg(RAX, 4), reg(RCX, 4), imm(0xffff_fffen, 4)]);
  });

  it("shifts and rotates: /0–/7 with /6 as SHL (SAL); by 1, by CL, by imm8", () => {
    const ops = ["rol", "ror", "rcl", "rcr", "shl", "shr", "shl", "sar"];
    ops.forEach((mnemonic, n) => {
      const modrm = (0xc0 | (n << 3)).toString(16);
      expectDecodes(`C0 ${modrm} 03`, mnemonic, 1, [reg(RAX, 1), imm(3n, 1)]);
      expectDecodes(`48 C1 ${modrm} 03`, mnemonic, 8, [reg(RAX, 8), imm(3n, 1)]);
      expectDecodes(`D0 ${modrm}`, mnemonic, 1, [reg(RAX, 1), imm(1n, 1)]);
      expectDecodes(`D1 ${modrm}`, mnemonic, 4, [reg(RAX, 4), imm(1n, 1)]);
      expectDecodes(`D2 ${modrm}`, mnemonic, 1, [reg(RAX, 1), reg(RCX, 1)]);
      expectDecodes(`66 D3 ${modrm}`, mnemonic, 2, [reg(RAX, 2), reg(RCX, 1)]);
    });
  });

  it("BT BTS BTR BTC: register and imm8 forms; 0F BA /0–/3 are #UD", () => {
    expectDecodes("0F A3 C8", "bt", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("48 0F AB 08", "bts", 8, [mem(8, { base: RAX }), reg(RCX, 8)]);
    expectDecodes("0F B3 C8", "btr", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("0F BB C8", "btc", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("0F BA E0 05", "bt", 4, [reg(RAX, 4), imm(5n, 1)]);
    expectDecodes("0F BA E8 05", "bts", 4, [reg(RAX, 4), imm(5n, 1)]);
    expectDecodes("0F BA F0 05", "btr", 4, [reg(RAX, 4), imm(5n, 1)]);
    expectDecodes("0F BA 38 FF", "btc", 4, [mem(4, { base: RAX }), imm(0xffn, 1)]);
    for (const modrm of ["C0", "C8", "D0", "D8"]) expectUd(`0F BA ${modrm} 01`, "DECODE-RESERVED");
  });

  it("MOV forms 88–8B, C6/C7, B0–BF", () => {
    expectDecodes("88 08", "mov", 1, [mem(1, { base: RAX }), reg(RCX, 1)]);
    expectDecodes("8A 08", "mov", 1, [reg(RCX, 1), mem(1, { base: RAX })]);
    expectDecodes("C6 00 FF", "mov", 1, [mem(1, { base: RAX }), imm(0xffn, 1)]);
    expectDecodes("66 C7 00 34 12", "mov", 2, [mem(2, { base: RAX }), imm(0x1234n, 2)]);
    expectDecodes("48 C7 00 00 00 00 80", "mov", 8, [mem(8, { base: RAX }), imm(0xffff_ffff_8000_0000n, 8)]);
    expectDecodes("41 B0 01", "mov", 1, [reg(R8, 1), imm(1n, 1)]);
    expectDecodes("49 BC 01 00 00 00 00 00 00 00", "mov", 8, [reg(R12, 8), imm(1n, 8)]);
    for (const modrm of ["08", "C8", "10", "F9"]) expectUd(`C7 ${modrm} 00 00 00 00`, "DECODE-RESERVED");
    expectUd("C6 C8 00", "DECODE-RESERVED");
    expectUnsupported("C6 F8 01"); // XABORT
    expectUnsupported("C7 F8 00 00 00 00"); // XBEGIN
  });

  it("MOVZX, MOVSX, MOVSXD, CBW, CWD", () => {
    expectDecodes("48 0F B6 00", "movzx", 8, [reg(RAX, 8), mem(1, { base: RAX })]);
    expectDecodes("66 0F B7 C1", "movzx", 2, [reg(RAX, 2), reg(RCX, 2)]);
    expectDecodes("48 0F BE C1", "movsx", 8, [reg(RAX, 8), reg(RCX, 1)]);
    expectDecodes("0F BF 00", "movsx", 4, [reg(RAX, 4), mem(2, { base: RAX })]);
    expectDecodes("48 63 C1", "movsxd", 8, [reg(RAX, 8), reg(RCX, 4)]);
    expectDecodes("63 C1", "movsxd", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("66 63 C1", "movsxd", 2, [reg(RAX, 2), reg(RCX, 2)]);
    expectDecodes("66 98", "cbw", 2, []);
    expectDecodes("98", "cbw", 4, []);
    expectDecodes("48 98", "cbw", 8, []);
    expectDecodes("66 99", "cwd", 2, []);
    expectDecodes("99", "cwd", 4, []);
    expectDecodes("48 99", "cwd", 8, []);
  });

  it("DECODE-MEMORY-ONLY: LEA: no memory access (size 0); the register form is #UD", () => {
    expectDecodes("48 8D 04 8D 00 00 00 00", "lea", 8, [reg(RAX, 8), mem(0, { index: RCX, scale: 4 })]);
    expectDecodes("8D 05 00 01 00 00", "lea", 4, [reg(RAX, 4), mem(0, { ripRelative: true, disp: 0x100n })]);
    expectUd("8D C0", "DECODE-MEMORY-ONLY");
    expectUd("48 8D C8", "DECODE-MEMORY-ONLY");
  });

  it("XCHG, NOP and PAUSE", () => {
    expectDecodes("48 87 08", "xchg", 8, [mem(8, { base: RAX }), reg(RCX, 8)]);
    expectDecodes("91", "xchg", 4, [reg(RCX, 4), reg(RAX, 4)]);
    expectDecodes("48 97", "xchg", 8, [reg(RDI, 8), reg(RAX, 8)]);
    // 41 90 is XCHG r8d, eax — not a NOP (it zero-extends both).
    expectDecodes("41 90", "xchg", 4, [reg(R8, 4), reg(RAX, 4)]);
    expectDecodes("48 90", "nop", 8, []);
    expectDecodes("66 90", "nop", 2, []);
    expectDecodes("F3 48 90", "pause", 8, []);
    expectDecodes("0F 1F 00", "nop", 4, [mem(4, { base: RAX })]);
    expectDecodes("66 0F 1F 44 00 00", "nop", 2, [mem(2, { base: RAX, index: RAX, disp: 0n })]);
    expectUnsupported("F3 41 90"); // PAUSE or XCHG r8d, eax: decoders disagree
    expectUnsupported("0F 1F 08"); // reserved NOP /1
  });

  it("PUSH and POP registers, memory, immediates and FS/GS", () => {
    expectDecodes("41 5C", "pop", 8, [reg(R12, 8)]);
    expectDecodes("FF 74 24 08", "push", 8, [mem(8, { base: RSP, disp: 8n })]);
    expectDecodes("8F 44 24 08", "pop", 8, [mem(8, { base: RSP, disp: 8n })]);
    expectDecodes("6A 7F", "push", 8, [imm(0x7fn, 8)]);
    expectUnsupported("8F C8"); // 8F /1: XOP on AMD
  });

  it("DECODE-SREG: MOV to/from segment registers: memory forms are 16-bit; Sreg 6–7 are #UD, and MOV to CS (SEG-08)", () => {
    expectDecodes("8C 18", "mov_from_sreg", 2, [mem(2, { base: RAX }), { kind: "sreg", sreg: "ds" }]);
    expectDecodes("48 8C E0", "mov_from_sreg", 8, [reg(RAX, 8), { kind: "sreg", sreg: "fs" }]);
    expectDecodes("66 8C E8", "mov_from_sreg", 2, [reg(RAX, 2), { kind: "sreg", sreg: "gs" }]);
    expectDecodes("8C C8", "mov_from_sreg", 4, [reg(RAX, 4), { kind: "sreg", sreg: "cs" }]);
    expectDecodes("8E 00", "mov_to_sreg", 2, [{ kind: "sreg", sreg: "es" }, mem(2, { base: RAX })]);
    expectDecodes("48 8E E0", "mov_to_sreg", 2, [{ kind: "sreg", sreg: "fs" }, reg(RAX, 2)]);
    // REX.R does not extend the Sreg field.
    expectDecodes("44 8E D8", "mov_to_sreg", 2, [{ kind: "sreg", sreg: "ds" }, reg(RAX, 2)]);
    expectUd("8E C8", "SEG-08");
    expectUd("8E 08", "SEG-08");
    expectUd("8E F0", "DECODE-SREG");
    expectUd("8E F8", "DECODE-SREG");
    expectUd("8C F0", "DECODE-SREG");
    expectUd("8C 38", "DECODE-SREG");
  });

  it("DECODE-CR: MOV CR: mod ignored (no SIB/disp), always 64-bit, CR1 CR5–7 CR9–15 are #UD", () => {
    expectDecodes("0F 20 00", "mov_from_cr", 8, [reg(RAX, 8), { kind: "cr", cr: 0 }]);
    expectDecodes("0F 20 44", "mov_from_cr", 8, [reg(RSP, 8), { kind: "cr", cr: 0 }]);
    expectDecodes("66 0F 22 DF", "mov_to_cr", 8, [{ kind: "cr", cr: 3 }, reg(RDI, 8)]);
    expectDecodes("41 0F 22 D8", "mov_to_cr", 8, [{ kind: "cr", cr: 3 }, reg(R8, 8)]);
    expectDecodes("44 0F 20 C0", "mov_from_cr", 8, [reg(RAX, 8), { kind: "cr", cr: 8 }]);
    for (const modrm of ["C8", "E8", "F0", "F8"]) {
      expectUd(`0F 20 ${modrm}`, "DECODE-CR");
      expectUd(`0F 22 ${modrm}`, "DECODE-CR");
    }
    for (const modrm of ["C8", "D0", "D8", "E0", "F8"]) expectUd(`44 0F 22 ${modrm}`, "DECODE-CR");
    expectDecodes("0F 22 D8", "mov_to_cr", 4, [{ kind: "cr", cr: 3 }, reg(RAX, 4)], false);
  });

  it("DECODE-MEMORY-ONLY: JMP far through memory: m16:32, m16:64 with REX.W, m16:16 with 66; register forms #UD", () => {
    expectDecodes("FF 28", "jmp_far", 4, [mem(6, { base: RAX })]);
    expectDecodes("48 FF 28", "jmp_far", 8, [mem(10, { base: RAX })]);
    expectDecodes("66 FF 28", "jmp_far", 2, [mem(4, { base: RAX })]);
    expectUd("FF E8", "DECODE-MEMORY-ONLY");
    expectUd("FF D8", "DECODE-MEMORY-ONLY");
    expectUnsupported("FF 18"); // far CALL
  });

  it("RET and RETF with an imm16 release count", () => {
    expectDecodes("CA 10 00", "retf", 4, [imm(16n, 2)]);
    expectDecodes("48 CA 10 00", "retf", 8, [imm(16n, 2)]);
    expectDecodes("66 CB", "retf", 2, []);
    expectDecodes("C2 FF FF", "ret", 8, [imm(0xffffn, 2)]);
  });

  it("IN and OUT: imm8 or DX port, data size 1, 2 or 4", () => {
    expectDecodes("E4 60", "in", 1, [reg(RAX, 1), { kind: "port", port: 0x60 }]);
    expectDecodes("E5 60", "in", 4, [reg(RAX, 4), { kind: "port", port: 0x60 }]);
    expectDecodes("66 E5 60", "in", 2, [reg(RAX, 2), { kind: "port", port: 0x60 }]);
    expectDecodes("48 E5 60", "in", 4, [reg(RAX, 4), { kind: "port", port: 0x60 }]);
    expectDecodes("E6 80", "out", 1, [{ kind: "port", port: 0x80 }, reg(RAX, 1)]);
    expectDecodes("E7 80", "out", 4, [{ kind: "port", port: 0x80 }, reg(RAX, 4)]);
    expectDecodes("EC", "in", 1, [reg(RAX, 1), { kind: "port", port: "dx" }]);
    expectDecodes("ED", "in", 4, [reg(RAX, 4), { kind: "port", port: "dx" }]);
    expectDecodes("EE", "out", 1, [{ kind: "port", port: "dx" }, reg(RAX, 1)]);
    expectDecodes("66 EF", "out", 2, [{ kind: "port", port: "dx" }, reg(RAX, 2)]);
  });

  it("flag instructions and other one-byte system instructions", () => {
    expectDecodes("F8", "clc", 4, []);
    expectDecodes("F9", "stc", 4, []);
    expectDecodes("F5", "cmc", 4, []);
    expectDecodes("FD", "std", 4, []);
  });

  it("0F system instructions", () => {
    expectDecodes("0F 06", "clts", 4, []);
    expectDecodes("0F 08", "invd", 4, []);
    expectDecodes("0F 09", "wbinvd", 4, []);
    expectDecodes("0F 31", "rdtsc", 4, []);
    expect(insn("0F 35")).toMatchObject({ mnemonic: "sysexit", rexW: false, operandSize: 4 });
    expect(insn("48 0F 35")).toMatchObject({ mnemonic: "sysexit", rexW: true, operandSize: 8 });
    // UD2 decodes; its semantics raise #UD.
    expectDecodes("0F 0B", "ud2", 4, []);
    expectDecodes("F3 0F 09", "wbnoinvd", 4, []);
    expectDecodes("F2 0F 09", "wbinvd", 4, []);
    expectDecodes("0F 33", "rdpmc", 4, []);
    expectDecodes("0F 34", "sysenter", 4, []);
    expectDecodes("48 0F 34", "sysenter", 8, []);
    expect(insn("66 0F 35")).toMatchObject({ mnemonic: "sysexit", operandSize: 4 });
  });

  it("DECODE-FEATURE: encodings of features the modelled CPU lacks are #UD once fetched", () => {
    expectUd("0F 37", "DECODE-FEATURE"); // GETSEC
    expectUd("0F 78 C0", "DECODE-FEATURE"); // VMREAD
    expectUd("0F 79 00", "DECODE-FEATURE"); // VMWRITE
    expectUd("66 0F 38 80 00", "DECODE-FEATURE"); // INVEPT
    expectUd("66 0F 38 81 00", "DECODE-FEATURE"); // INVVPID
    expectUd("0F C7 18", "DECODE-FEATURE"); // XRSTORS
    expectUd("0F C7 28", "DECODE-FEATURE"); // XSAVES
    expectUd("0F C7 30", "DECODE-FEATURE"); // VMPTRLD
    expectUd("66 0F C7 30", "DECODE-FEATURE"); // VMCLEAR
    expectUd("F3 0F C7 30", "DECODE-FEATURE"); // VMXON
    expectUd("0F C7 38", "DECODE-FEATURE"); // VMPTRST
    expectUd("F3 0F AE E0", "DECODE-FEATURE"); // PTWRITE
    expectUd("F3 0F AE F8", "DECODE-RESERVED");
    expectUd("F2 0F 00 F0", "DECODE-FEATURE"); // LKGS (64-bit mode only)
    expectUd("F2 0F 00 F0", "DECODE-RESERVED", false);
    expectUd("F3 0F 01 28", "DECODE-FEATURE"); // RSTORSSP
    expectUd("0F 01 28", "DECODE-RESERVED");
    // A #UD decided by ModRM waits for the whole instruction (its displacement here).
    expectUd("0F C7 98 00 10 00 00", "DECODE-FEATURE");
    expectUnsupported("0F C7 F0"); // RDRAND: present on hardware, not modelled
    expectUnsupported("66 0F 78 C0 00 00"); // EXTRQ
  });

  it("LGDT LIDT SGDT SIDT: 10-byte operand in 64-bit mode, 6 in compatibility mode", () => {
    expectDecodes("0F 01 00", "sgdt", 8, [mem(10, { base: RAX })]);
    expectDecodes("0F 01 08", "sidt", 8, [mem(10, { base: RAX })]);
    expectDecodes("66 0F 01 10", "lgdt", 8, [mem(10, { base: RAX })]);
    expectDecodes("0F 01 15 00 10 00 00", "lgdt", 8, [mem(10, { ripRelative: true, disp: 0x1000n })]);
    expectDecodes("0F 01 18", "lidt", 4, [mem(6, { base: RAX, addressSize: 4 })], false);
  });

  it("0F 01 register forms: SMSW, LMSW, SWAPGS, RDTSCP whatever 66/F2/F3; CLAC, STAC, XGETBV, XSETBV only unprefixed; the rest #UD (DECODE-RESERVED, DECODE-FEATURE)", () => {
    expectDecodes("41 0F 01 F8", "swapgs", 4, []);
    expectDecodes("F3 0F 01 F8", "swapgs", 4, []);
    expectUd("0F 01 F8", "DECODE-MODE", false);
    expectDecodes("0F 01 F9", "rdtscp", 4, []);
    expectDecodes("66 0F 01 F9", "rdtscp", 2, []);
    expectDecodes("0F 01 CA", "clac", 4, []);
    expectDecodes("0F 01 D0", "xgetbv", 4, []);
    expectDecodes("0F 01 D1", "xsetbv", 4, []);
    expectDecodes("0F 01 E0", "smsw", 4, [reg(RAX, 4)]);
    expectDecodes("66 0F 01 E1", "smsw", 2, [reg(RCX, 2)]);
    expectDecodes("49 0F 01 E4", "smsw", 8, [reg(R12, 8)]);
    expectDecodes("F3 0F 01 F2", "lmsw", 2, [reg(RDX, 2)]);
    expectUd("0F 01 D2", "DECODE-RESERVED");
    expectUd("0F 01 D3", "DECODE-RESERVED");
    expectUd("66 0F 01 CA", "DECODE-RESERVED"); // NP: CLAC with 66
    expectUd("66 0F 01 D0", "DECODE-RESERVED"); // NP: XGETBV with 66
    expectUd("F3 0F 01 CA", "DECODE-FEATURE"); // ERETU (FRED)
    expectUd("F3 0F 01 CA", "DECODE-RESERVED", false);
    expectUd("0F 01 D8", "DECODE-FEATURE"); // VMRUN (SVM)
    expectUd("0F 01 C1", "DECODE-FEATURE"); // VMCALL (VMX)
    expectUd("0F 01 C8", "DECODE-FEATURE"); // MONITOR
    expectUd("0F 01 EE", "DECODE-FEATURE"); // RDPKRU
    expectUd("0F 01 E9", "DECODE-RESERVED");
  });

  it("0F 01 memory forms: SMSW m16 and LMSW m16; /5 reserved", () => {
    expectDecodes("0F 01 20", "smsw", 4, [mem(2, { base: RAX })]);
    expectDecodes("48 0F 01 23", "smsw", 8, [mem(2, { base: RBX })]);
    expectDecodes("0F 01 31", "lmsw", 2, [mem(2, { base: RCX })]);
    expectUd("0F 01 68 08", "DECODE-RESERVED");
  });

  it("0F 00: SLDT STR (r/m16, a register at the operand size), LLDT LTR VERR VERW (r/m16); /6 /7 #UD", () => {
    expectDecodes("0F 00 18", "ltr", 2, [mem(2, { base: RAX })]);
    expectDecodes("41 0F 00 DC", "ltr", 2, [reg(R12, 2)]);
    expectDecodes("0F 00 C0", "sldt", 4, [reg(RAX, 4)]);
    expectDecodes("66 0F 00 C8", "str", 2, [reg(RAX, 2)]);
    expectDecodes("48 0F 00 CB", "str", 8, [reg(RBX, 8)]);
    expectDecodes("0F 00 03", "sldt", 4, [mem(2, { base: RBX })]);
    expectDecodes("0F 00 D0", "lldt", 2, [reg(RAX, 2)]);
    expectDecodes("0F 00 20", "verr", 2, [mem(2, { base: RAX })]);
    expectDecodes("0F 00 E9", "verw", 2, [reg(RCX, 2)]);
    expectUd("0F 00 30", "DECODE-RESERVED");
    expectUd("0F 00 F8", "DECODE-RESERVED");
    expectUd("66 0F 00 F0", "DECODE-RESERVED");
  });

  it("DECODE-DR: MOV DR: mod ignored, 64-bit in 64-bit mode, 32-bit in compatibility mode; REX.R is #UD", () => {
    expectDecodes("0F 21 C0", "mov_from_dr", 8, [reg(RAX, 8), { kind: "dr", dr: 0 }]);
    expectDecodes("0F 21 3B", "mov_from_dr", 8, [reg(RBX, 8), { kind: "dr", dr: 7 }]);
    expectDecodes("66 41 0F 23 F4", "mov_to_dr", 8, [{ kind: "dr", dr: 6 }, reg(R12, 8)]);
    expectDecodes("0F 23 E1", "mov_to_dr", 4, [{ kind: "dr", dr: 4 }, reg(RCX, 4)], false);
    expectUd("44 0F 21 C0", "DECODE-DR");
    expectUd("44 0F 23 C0", "DECODE-DR");
  });

  it("FSGSBASE (F3 0F AE /0–/3, register forms): 64-bit mode only, REX.W for 64 bits", () => {
    expectDecodes("F3 0F AE C0", "rdfsbase", 4, [reg(RAX, 4)]);
    expectDecodes("F3 48 0F AE C9", "rdgsbase", 8, [reg(RCX, 8)]);
    expectDecodes("F3 49 0F AE D4", "wrfsbase", 8, [reg(R12, 8)]);
    expectDecodes("66 F3 0F AE DB", "wrgsbase", 4, [reg(RBX, 4)]);
    expectUd("F3 0F AE C0", "DECODE-MODE", false);
    expectUnsupported("F3 0F AE 00");
    expectUnsupported("0F AE 00"); // FXSAVE
  });

  it("INVPCID (66 0F 38 82): a 64-bit register (32-bit in compatibility mode) and m128; register form #UD", () => {
    expectDecodes("66 0F 38 82 08", "invpcid", 8, [reg(RCX, 8), mem(16, { base: RAX })]);
    expectDecodes("66 0F 38 82 0B", "invpcid", 4, [reg(RCX, 4), mem(16, { base: RBX, addressSize: 4 })], false);
    expectUd("66 0F 38 82 C8", "DECODE-MEMORY-ONLY");
    expectUd("0F 38 82 08", "DECODE-RESERVED");
    expectUnsupported("66 0F 38 00 C0"); // PSHUFB
  });
});

// ---- #UD, unsupported, length, fetch faults ------------------------------------------------------

describe("invalid encodings", () => {
  it("DECODE-INVALID-64: opcodes invalid in 64-bit mode raise #UD; in compatibility mode they are valid (unsupported or INTO)", () => {
    for (const op of ["06", "07", "0E", "16", "17", "1E", "1F", "27", "2F", "37", "3F", "60", "61", "9A", "CE", "D4", "D5", "D6", "EA"]) {
      expectUd(op, "DECODE-INVALID-64");
      if (op !== "CE") expectUnsupported(op, false);
    }
    expectDecodes("CE", "into", 4, [], false);
  });

  it("VEX, EVEX and XOP are valid AVX encodings: unsupported, not #UD", () => {
    expectUnsupported("C5 F8 77");
    expectUnsupported("C4 E2 79 18 00");
    expectUnsupported("62 F1 7C 48 10 00");
    expectUnsupported("C4 00", false); // LES
  });

  it("DECODE-MODE: SWAPGS is #UD outside 64-bit mode", () => {
    expectUd("0F 01 F8", "DECODE-MODE", false);
  });

  it("DECODE-RESERVED: reserved group extensions: FE /2–/7 and FF /7 (after the whole ModRM/SIB/disp is fetched)", () => {
    for (const n of [2, 3, 4, 5, 6, 7]) expectUd(`FE ${(0xc0 | (n << 3)).toString(16)}`, "DECODE-RESERVED");
    expectUd("FF F8", "DECODE-RESERVED");
    const { result, maxRead } = run("FE 90 00 10 00 00");
    expect(result).toEqual(fault("DECODE-RESERVED", 6));
    expect(maxRead).toBe(5);
  });

  it("DECODE-LOCK: allowed on lockable instructions with a memory destination, #UD otherwise", () => {
    expect(insn("F0 01 00")).toMatchObject({ mnemonic: "add", lock: true });
    expect(insn("F0 48 0F BA 28 01")).toMatchObject({ mnemonic: "bts", lock: true });
    expect(insn("F0 87 00")).toMatchObject({ mnemonic: "xchg", lock: true });
    expect(insn("F0 FE 00")).toMatchObject({ mnemonic: "inc", lock: true });
    expect(insn("F0 F7 18")).toMatchObject({ mnemonic: "neg", lock: true });
    expect(insn("F0 F6 10")).toMatchObject({ mnemonic: "not", lock: true });
    expect(insn("F0 0F B3 08")).toMatchObject({ mnemonic: "btr", lock: true });
    expect(insn("F0 83 08 01")).toMatchObject({ mnemonic: "or", lock: true });
    expect(insn("F0 0F B1 17")).toMatchObject({ mnemonic: "cmpxchg", lock: true });
    expect(insn("F0 4C 0F C1 2D F1 8B 00 00")).toMatchObject({ mnemonic: "xadd", lock: true, operandSize: 8 });
    expect(insn("F0 0F C7 0E")).toMatchObject({ mnemonic: "cmpxchg8b", lock: true });
    expect(insn("F0 48 0F C7 0E")).toMatchObject({ mnemonic: "cmpxchg16b", lock: true });
    for (const hex of [
      // Lockable ones with a register destination; string instructions, SETcc, CMOVcc, BSF.
      "F0 0F B1 C2", "F0 0F C1 C2", "F0 A4", "F0 F3 AB", "F0 0F 94 00", "F0 0F 44 00", "F0 0F BC 00",
    ]) expectUd(hex, "DECODE-LOCK");
    for (const hex of [
      "F0 01 C0", "F0 03 00", "F0 39 00", "F0 85 00", "F0 87 C0", "F0 90", "F0 91", "F0 88 00", "F0 8B 00",
      "F0 0F BA 20 01", "F0 0F A3 00", "F0 F7 00 00 00 00 00", "F0 FF C0", "F0 FF 10", "F0 8D 00",
      "F0 0F 05", "F0 0F 07", "F0 0F 01 F8", "F0 CF", "F0 0F 32", "F0 0F 01 CB",
      // AMD's LOCK MOV CR0 = MOV CR8: #UD on Intel.
      "F0 0F 22 C0", "F0 0F 20 C0",
    ]) expectUd(hex, "DECODE-LOCK");
  });
});

describe("issue 11's kernel subset: strings, SETcc/CMOVcc, atomics, bit scans, LOOP, LEAVE, CPUID, hints", () => {
  const RSI = 6, RDI = 7;
  const source = (size: number, fields: Partial<MemOperand> = {}) => mem(size, { base: RSI, segment: "ds", ...fields });
  const destination = (size: number, fields: Partial<MemOperand> = {}) => mem(size, { base: RDI, segment: "es", ...fields });

  it("MOVS/STOS/LODS/CMPS/SCAS: element size by opcode and prefixes; implicit DS:[RSI] / ES:[RDI]; REP/REPNE kept; FS/GS override the source only", () => {
    expect(expectDecodes("F3 A4", "movs", 1, [destination(1), source(1)])).toMatchObject({ rep: "rep" });
    expect(expectDecodes("F3 48 A5", "movs", 8, [destination(8), source(8)])).toMatchObject({ rep: "rep" });
    expect(expectDecodes("66 A5", "movs", 2, [destination(2), source(2)])).toMatchObject({ rep: null });
    expect(expectDecodes("F3 AA", "stos", 1, [destination(1)])).toMatchObject({ rep: "rep" });
    expectDecodes("48 AB", "stos", 8, [destination(8)]);
    expectDecodes("AC", "lods", 1, [source(1)]);
    expectDecodes("64 AD", "lods", 4, [source(4, { segment: "fs" })]);
    expect(expectDecodes("F3 A6", "cmps", 1, [source(1), destination(1)])).toMatchObject({ rep: "rep" });
    expect(expectDecodes("F2 AE", "scas", 1, [destination(1)])).toMatchObject({ rep: "repne" });
    // 67: ESI/EDI and ECX; 64 overrides MOVS's source, never ES:[RDI].
    expectDecodes("67 65 A4", "movs", 1, [destination(1, { addressSize: 4 }), source(1, { addressSize: 4, segment: "gs" })]);
    // Compatibility mode: the last segment override wins, SS makes the source a stack reference.
    expectDecodes("36 A4", "movs", 1, [destination(1, { addressSize: 4 }), source(1, { addressSize: 4, segment: "ss", stackSegment: true })], false);
    expectUnsupported("67 A4", false); // 16-bit addressing
  });

  it("SETcc Eb (ModRM.reg ignored), CMOVcc Gv,Ev with the condition in tttn", () => {
    expect(expectDecodes("0F 94 C0", "setcc", 1, [reg(RAX, 1)])).toMatchObject({ condition: 4 });
    expect(expectDecodes("40 0F 95 C6", "setcc", 1, [reg(RSI, 1)])).toMatchObject({ condition: 5 });
    expect(expectDecodes("0F 96 FA", "setcc", 1, [reg(RDX, 1)])).toMatchObject({ condition: 6 }); // reg field 7
    expect(expectDecodes("48 0F 47 D0", "cmovcc", 8, [reg(RDX, 8), reg(RAX, 8)])).toMatchObject({ condition: 7 });
    expectDecodes("66 0F 4C 03", "cmovcc", 2, [reg(RAX, 2), mem(2, { base: 3 })]);
  });

  it("CMPXCHG, XADD (byte and full forms), CMPXCHG8B/16B (memory only: the register form is #UD), BSWAP", () => {
    expectDecodes("0F B0 0F", "cmpxchg", 1, [mem(1, { base: RDI }), reg(RCX, 1)]);
    expectDecodes("0F B1 17", "cmpxchg", 4, [mem(4, { base: RDI }), reg(RDX, 4)]);
    expectDecodes("48 0F C1 D8", "xadd", 8, [reg(RAX, 8), reg(3, 8)]);
    expectDecodes("0F C7 0E", "cmpxchg8b", 4, [mem(8, { base: RSI })]);
    expectDecodes("48 0F C7 0E", "cmpxchg16b", 8, [mem(16, { base: RSI })]);
    expectUd("0F C7 C8", "DECODE-MEMORY-ONLY");
    expectDecodes("0F C9", "bswap", 4, [reg(RCX, 4)]);
    expectDecodes("49 0F C8", "bswap", 8, [reg(8, 8)]);
    expectDecodes("66 0F CB", "bswap", 2, [reg(3, 2)]);
  });

  it("BSF/BSR, and F3 0F BC/BD as BSF/BSR (no BMI1/LZCNT)", () => {
    expectDecodes("0F BC C1", "bsf", 4, [reg(RAX, 4), reg(RCX, 4)]);
    expectDecodes("F3 48 0F BC C1", "bsf", 8, [reg(RAX, 8), reg(RCX, 8)]);
    expectDecodes("F3 0F BD 00", "bsr", 4, [reg(RAX, 4), mem(4, { base: RAX })]);
  });

  it("LOOP/LOOPE/LOOPNE/JRCXZ (rel8; the address size picks the count register), LEAVE (stack operand size), CPUID", () => {
    expect(expectDecodes("E2 FE", "loop", 8, [rel(-2n)])).toMatchObject({ addressSize: 8 });
    expectDecodes("E1 00", "loope", 8, [rel(0n)]);
    expectDecodes("E0 10", "loopne", 8, [rel(16n)]);
    expect(expectDecodes("67 E3 05", "jrcxz", 8, [rel(5n)])).toMatchObject({ addressSize: 4 });
    expectDecodes("C9", "leave", 8, []);
    expectDecodes("66 C9", "leave", 2, []);
    expectDecodes("C9", "leave", 4, [], false);
    expectDecodes("0F A2", "cpuid", 4, []);
  });

  it("LFENCE/MFENCE/SFENCE (any rm), PREFETCHh m8 (/0–/3), ENDBR64/32; other encodings nearby are not modelled", () => {
    expectDecodes("0F AE E8", "lfence", 4, []);
    expectDecodes("0F AE F0", "mfence", 4, []);
    expectDecodes("0F AE F7", "mfence", 4, []);
    expectDecodes("0F AE F8", "sfence", 4, []);
    expectDecodes("0F 18 08", "prefetch", 4, [mem(1, { base: RAX })]);
    expectDecodes("F3 0F 1E FA", "endbr", 4, []);
    expectDecodes("F3 0F 1E FB", "endbr", 4, []);
    expectUnsupported("F2 0F AE E8"); // a prefixed register form
    expectUnsupported("66 0F AE F0"); // TPAUSE
    expectUnsupported("0F 18 20"); // reserved NOP
    expectUnsupported("0F 1E FA"); // without F3: a reserved NOP
  });
});

describe("instruction length and fetching", () => {
  it("DECODE-LENGTH: 15 bytes decode; a 16th byte is #GP(0) and is never fetched", () => {
    const fifteen = `${"66 ".repeat(14)}90`;
    expect(insn(fifteen).length).toBe(15);
    const { result, maxRead } = run(`${"66 ".repeat(15)}90`);
    expect(result).toEqual({ kind: "fault", vector: 13, errorCode: 0, address: undefined, rule: "DECODE-LENGTH" });
    expect(maxRead).toBe(14);
  });

  it("DECODE-LENGTH: the limit counts displacement and immediate bytes too", () => {
    // 6 prefixes + REX.W + B8 + imm64 = 16 bytes.
    const { result } = run(`${"2E ".repeat(6)}48 B8 01 02 03 04 05 06 07 08`);
    expect(result).toMatchObject({ vector: 13, errorCode: 0, rule: "DECODE-LENGTH" });
    expect(insn(`${"2E ".repeat(5)}48 B8 01 02 03 04 05 06 07 08`).length).toBe(15);
    const { result: longModrm } = run(`${"3E ".repeat(5)}C7 84 88 00 00 00 00 00 00 00 00`);
    expect(longModrm).toMatchObject({ vector: 13, rule: "DECODE-LENGTH" });
  });

  it("a fetch fault is returned unchanged, and only bytes the instruction needs are fetched", () => {
    const pf: Fault = fault("PF-01", 14, 0x10, 0x1000n);
    const fetched: number[] = [];
    const fetchFrom = (bytes: number[]) => (i: number) => {
      fetched.push(i);
      return bytes[i] ?? pf;
    };
    expect(decode(fetchFrom([0x48, 0x8b, 0x80, 0x00]), true)).toBe(pf);
    fetched.length = 0;
    expect(decode(fetchFrom([0xeb, 0xfe]), true)).toMatchObject({ kind: "instruction", length: 2 });
    expect(fetched).toEqual([0, 1]);
    fetched.length = 0;
    expect(decode(fetchFrom([0x0f, 0x05]), true)).toMatchObject({ mnemonic: "syscall" });
    expect(fetched).toEqual([0, 1]);
    expect(decode(fetchFrom([]), true)).toBe(pf);
    expect(decode(fetchFrom([0x66]), true)).toBe(pf);
  });

  it("unsupported bytes are named: the bytes fetched up to the opcode", () => {
    const popcnt = run("F3 0F B8 C0").result;
    expect(popcnt).toMatchObject({ kind: "unsupported", bytes: Uint8Array.of(0xf3, 0x0f, 0xb8) });
    expect(popcnt.kind === "unsupported" && popcnt.reason).toContain("0f b8");
    expect(run("F3 6C").result).toMatchObject({ kind: "unsupported", bytes: Uint8Array.of(0xf3, 0x6c) }); // REP INSB
    expectUnsupported("D9 E8"); // x87
    expectUnsupported("0F 0F 00 00"); // 3DNow!
    expectUnsupported("C8 10 00 00"); // ENTER
    expectUnsupported("0F C7 F0"); // RDRAND
    expectUnsupported("0F AE 38"); // CLFLUSH
    expectUnsupported("0F A4 C0 01"); // SHLD
  });
});

describe("compatibility mode (32-bit code segment)", () => {
  it("runs the transition subset: jmp ., SYSCALL, SYSRET, INT n, IRET, HLT, INTO", () => {
    expectDecodes("EB FE", "jmp", 4, [rel(-2n)], false);
    expectDecodes("0F 05", "syscall", 4, [], false);
    expectDecodes("0F 07", "sysret", 4, [], false);
    expectDecodes("CD 80", "int", 4, [imm(0x80n, 1)], false);
    expectDecodes("CF", "iret", 4, [], false);
    expectDecodes("66 CF", "iret", 2, [], false);
    expectDecodes("F4", "hlt", 4, [], false);
    expectDecodes("CE", "into", 4, [], false);
  });

  it("40–4F are INC/DEC; no REX; defaults are 32-bit", () => {
    expectDecodes("40", "inc", 4, [reg(RAX, 4)], false);
    expectDecodes("4F", "dec", 4, [reg(RDI, 4)], false);
    expectDecodes("66 41", "inc", 2, [reg(RCX, 2)], false);
    expectDecodes("50", "push", 4, [reg(RAX, 4)], false);
    expectDecodes("6A FF", "push", 4, [imm(0xffff_ffffn, 4)], false);
    expectDecodes("9C", "pushf", 4, [], false);
    expectDecodes("0F A0", "push_sreg", 4, [{ kind: "sreg", sreg: "fs" }], false);
    expectDecodes("C3", "ret", 4, [], false);
    expectDecodes("FF E0", "jmp", 4, [reg(RAX, 4)], false);
    expectDecodes("88 E0", "mov", 1, [reg(RAX, 1), reg(4, 1, true)], false);
    expectDecodes("0F 20 C0", "mov_from_cr", 4, [reg(RAX, 4), { kind: "cr", cr: 0 }], false);
    expectDecodes("8B 04 24", "mov", 4, [reg(RAX, 4), mem(4, { base: RSP, addressSize: 4 })], false);
  });

  it("66 makes near branches 16-bit (rel16)", () => {
    expectDecodes("66 E9 FC FF", "jmp", 2, [rel(-4n)], false);
    expectDecodes("66 E8 00 01", "call", 2, [rel(0x100n)], false);
    expectDecodes("66 0F 85 00 00", "jcc", 2, [rel(0n)], false);
    expectDecodes("66 C3", "ret", 2, [], false);
  });

  it("16-bit addressing (67) is not modelled; without a memory operand 67 is harmless", () => {
    expectUnsupported("67 8B 00", false);
    expectUnsupported("67 A1 00 10", false);
    expectDecodes("67 90", "nop", 4, [], false);
  });

  it("ARPL (63), LES/LDS (C4/C5), PUSH ES etc. are valid there: unsupported", () => {
    for (const hex of ["63 C0", "C4 00", "C5 00", "06", "1F", "27", "60", "9A 00 00 00 00 00 00", "D6"]) expectUnsupported(hex, false);
  });
});

describe("rules", () => {
  it("every DECODE rule the decoder raises is registered", () => {
    for (const id of ["DECODE-LENGTH", "DECODE-INVALID-64", "DECODE-RESERVED", "DECODE-MEMORY-ONLY", "DECODE-LOCK", "DECODE-CR", "DECODE-SREG", "DECODE-MODE"]) {
      expect(ruleById(id)?.description, id).toBeTruthy();
    }
  });
});
