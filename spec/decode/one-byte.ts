// The one-byte opcode map (SDM Vol. 2D Table A-2), restricted to the modelled subset. Every other
// byte is either #UD where the CPU raises #UD, or `unsupported`.
import type { Fault } from "../fault.ts";
import type { Mnemonic, Operand, OperandSize } from "./instruction.ts";
import { isStop, type DecodeContext, type Result } from "./context.ts";
import { memoryOperand, moffsOperand, readModRM, regOperand, rmOperand, stringOperand } from "./modrm.ts";

/** Opcode rows 00–3F and groups 80–83 /n: the eight ALU operations, in encoding order. */
const ALU_OPERATIONS: readonly Mnemonic[] = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
/** Group 2 (C0 C1 D0–D3) /n; /6 is SAL, the same operation as SHL. */
const SHIFT_OPERATIONS: readonly Mnemonic[] = ["rol", "ror", "rcl", "rcr", "shl", "shr", "shl", "sar"];
/** Group 3 (F6 F7) /n; /1 is an undocumented alias of TEST /0 that Intel and AMD CPUs execute. */
const GROUP3_OPERATIONS: readonly Mnemonic[] = ["test", "test", "not", "neg", "mul", "imul", "div", "idiv"];

export function decodeOneByte(ctx: DecodeContext, op: number): Result {
  if (op < 0x40 && (op & 7) < 6) return aluForm(ctx, ALU_OPERATIONS[op >> 3] ?? "add", op & 7);
  // 40–4F reach here only outside 64-bit mode (in 64-bit mode they are REX prefixes).
  if (op >= 0x40 && op <= 0x4f) {
    const size = ctx.operandSize();
    return ctx.decoded(op < 0x48 ? "inc" : "dec", size, [ctx.gpr(op & 7, size)]);
  }
  if (op >= 0x50 && op <= 0x5f) {
    const size = ctx.stackOperandSize();
    return ctx.decoded(op < 0x58 ? "push" : "pop", size, [ctx.gpr((op & 7) | ctx.rexB, size)]);
  }
  if (op >= 0x70 && op <= 0x7f) return branch(ctx, "jcc", 1, op & 0xf);
  if (op >= 0x90 && op <= 0x97) return xchgWithAccumulator(ctx, op);
  if (op >= 0xb0 && op <= 0xb7) return withImm(ctx, "mov", 1, ctx.gpr((op & 7) | ctx.rexB, 1), ctx.signedImm(1, 1));
  if (op >= 0xb8 && op <= 0xbf) {
    // B8+r: the immediate is as wide as the operand (imm64 with REX.W: MOVABS).
    const size = ctx.operandSize();
    return withImm(ctx, "mov", size, ctx.gpr((op & 7) | ctx.rexB, size), ctx.signedImm(size, size));
  }

  switch (op) {
    // Invalid in 64-bit mode (Table A-2 "i64"); valid but not modelled in compatibility mode.
    case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
      return invalid64(ctx, "PUSH/POP ES/CS/SS/DS");
    case 0x27: case 0x2f: case 0x37: case 0x3f: return invalid64(ctx, "DAA/DAS/AAA/AAS");
    case 0x60: case 0x61: return invalid64(ctx, "PUSHA/POPA");
    case 0x9a: return invalid64(ctx, "far CALL ptr16:32");
    case 0xd4: case 0xd5: return invalid64(ctx, "AAM/AAD");
    case 0xd6: return invalid64(ctx, "SALC");
    case 0xea: return invalid64(ctx, "far JMP ptr16:32");
    case 0xce: return ctx.mode64 ? ctx.ud("DECODE-INVALID-64") : ctx.decoded("into", ctx.operandSize(), []);

    case 0x62: return ctx.unsupported(ctx.mode64 ? "EVEX prefix" : "BOUND/EVEX");
    case 0x63: return ctx.mode64 ? movsxd(ctx) : ctx.unsupported("ARPL");
    case 0xc4: case 0xc5: return ctx.unsupported(ctx.mode64 ? "VEX prefix" : "LES/LDS/VEX");

    case 0x68: {
      const size = ctx.stackOperandSize();
      return withImm(ctx, "push", size, undefined, ctx.signedImm(ctx.immediateSize(size), size));
    }
    case 0x6a: {
      const size = ctx.stackOperandSize();
      return withImm(ctx, "push", size, undefined, ctx.signedImm(1, size));
    }
    case 0x69: case 0x6b: return imulImmediate(ctx, op === 0x6b);

    case 0x80: case 0x81: case 0x83: return group1(ctx, op);
    case 0x82: return ctx.mode64 ? ctx.ud("DECODE-INVALID-64") : group1(ctx, op);

    case 0x84: return modrmForm(ctx, "test", 1, "rm,reg");
    case 0x85: return modrmForm(ctx, "test", ctx.operandSize(), "rm,reg");
    case 0x86: return modrmForm(ctx, "xchg", 1, "rm,reg");
    case 0x87: return modrmForm(ctx, "xchg", ctx.operandSize(), "rm,reg");
    case 0x88: return modrmForm(ctx, "mov", 1, "rm,reg");
    case 0x89: return modrmForm(ctx, "mov", ctx.operandSize(), "rm,reg");
    case 0x8a: return modrmForm(ctx, "mov", 1, "reg,rm");
    case 0x8b: return modrmForm(ctx, "mov", ctx.operandSize(), "reg,rm");
    case 0x8c: return movFromSreg(ctx);
    case 0x8d: return lea(ctx);
    case 0x8e: return movToSreg(ctx);
    case 0x8f: return popRm(ctx);

    case 0x98: return ctx.decoded("cbw", ctx.operandSize(), []);
    case 0x99: return ctx.decoded("cwd", ctx.operandSize(), []);
    case 0x9c: return ctx.decoded("pushf", ctx.stackOperandSize(), []);
    case 0x9d: return ctx.decoded("popf", ctx.stackOperandSize(), []);

    case 0xa0: case 0xa1: case 0xa2: case 0xa3: return movMoffs(ctx, op);
    case 0xa4: case 0xa5: return stringInstruction(ctx, "movs", op, ["destination", "source"]);
    case 0xa6: case 0xa7: return stringInstruction(ctx, "cmps", op, ["source", "destination"]);
    case 0xaa: case 0xab: return stringInstruction(ctx, "stos", op, ["destination"]);
    case 0xac: case 0xad: return stringInstruction(ctx, "lods", op, ["source"]);
    case 0xae: case 0xaf: return stringInstruction(ctx, "scas", op, ["destination"]);
    case 0xa8: return withImm(ctx, "test", 1, ctx.gpr(0, 1), ctx.signedImm(1, 1));
    case 0xa9: {
      const size = ctx.operandSize();
      return withImm(ctx, "test", size, ctx.gpr(0, size), ctx.signedImm(ctx.immediateSize(size), size));
    }

    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: return group2(ctx, op);
    case 0xc2: return withImm(ctx, "ret", ctx.branchOperandSize(), undefined, ctx.unsignedImm(2));
    case 0xc3: return ctx.decoded("ret", ctx.branchOperandSize(), []);
    case 0xc6: case 0xc7: return group11(ctx, op);
    case 0xc8: return ctx.unsupported("ENTER");
    case 0xc9: return ctx.decoded("leave", ctx.stackOperandSize(), []);
    case 0xca: return withImm(ctx, "retf", farOperandSize(ctx), undefined, ctx.unsignedImm(2));
    case 0xcb: return ctx.decoded("retf", farOperandSize(ctx), []);
    case 0xcc: return ctx.decoded("int3", ctx.operandSize(), []);
    case 0xcd: return withImm(ctx, "int", ctx.operandSize(), undefined, ctx.unsignedImm(1));
    // IRET / IRETD / IRETQ (digest §9): the operand size is the size of each popped slot.
    case 0xcf: return ctx.decoded("iret", farOperandSize(ctx), []);

    case 0xe0: case 0xe1: case 0xe2: case 0xe3: return loop(ctx, op);
    case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xec: case 0xed: case 0xee: case 0xef: return inOut(ctx, op);
    case 0xe8: return branch(ctx, "call", ctx.branchOperandSize() === 2 ? 2 : 4);
    case 0xe9: return branch(ctx, "jmp", ctx.branchOperandSize() === 2 ? 2 : 4);
    case 0xeb: return branch(ctx, "jmp", 1);

    case 0xf1: return ctx.decoded("int1", ctx.operandSize(), []);
    case 0xf4: return ctx.decoded("hlt", ctx.operandSize(), []);
    case 0xf5: return ctx.decoded("cmc", ctx.operandSize(), []);
    case 0xf6: case 0xf7: return group3(ctx, op);
    case 0xf8: return ctx.decoded("clc", ctx.operandSize(), []);
    case 0xf9: return ctx.decoded("stc", ctx.operandSize(), []);
    case 0xfa: return ctx.decoded("cli", ctx.operandSize(), []);
    case 0xfb: return ctx.decoded("sti", ctx.operandSize(), []);
    case 0xfc: return ctx.decoded("cld", ctx.operandSize(), []);
    case 0xfd: return ctx.decoded("std", ctx.operandSize(), []);
    case 0xfe: return group4(ctx);
    case 0xff: return group5(ctx);
    default: return ctx.unsupported(`opcode ${op.toString(16).padStart(2, "0")}`);
  }
}

function invalid64(ctx: DecodeContext, what: string): Result {
  return ctx.mode64 ? ctx.ud("DECODE-INVALID-64") : ctx.unsupported(what);
}

/** Assembles `mnemonic first?, imm` once the immediate has been read (or has faulted). */
function withImm(ctx: DecodeContext, mnemonic: Mnemonic, size: OperandSize, first: Operand | undefined, imm: Operand | Fault): Result {
  if (isStop(imm)) return imm;
  return ctx.decoded(mnemonic, size, first === undefined ? [imm] : [first, imm]);
}

/** 00–3D: Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / rAX,Iz. */
function aluForm(ctx: DecodeContext, mnemonic: Mnemonic, form: number): Result {
  switch (form) {
    case 0: return modrmForm(ctx, mnemonic, 1, "rm,reg");
    case 1: return modrmForm(ctx, mnemonic, ctx.operandSize(), "rm,reg");
    case 2: return modrmForm(ctx, mnemonic, 1, "reg,rm");
    case 3: return modrmForm(ctx, mnemonic, ctx.operandSize(), "reg,rm");
    case 4: return withImm(ctx, mnemonic, 1, ctx.gpr(0, 1), ctx.signedImm(1, 1));
    default: {
      const size = ctx.operandSize();
      return withImm(ctx, mnemonic, size, ctx.gpr(0, size), ctx.signedImm(ctx.immediateSize(size), size));
    }
  }
}

/** A two-operand ModRM instruction, both operands `size` bytes. */
export function modrmForm(ctx: DecodeContext, mnemonic: Mnemonic, size: OperandSize, order: "rm,reg" | "reg,rm"): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const rm = rmOperand(ctx, m, size);
  if (isStop(rm)) return rm;
  const reg = regOperand(ctx, m, size);
  return ctx.decoded(mnemonic, size, order === "rm,reg" ? [rm, reg] : [reg, rm]);
}

/** 80 Eb,Ib / 81 Ev,Iz / 82 Eb,Ib (not in 64-bit mode) / 83 Ev,Ib (sign-extended). */
function group1(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = op === 0x81 || op === 0x83 ? ctx.operandSize() : 1;
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  const immBytes = op === 0x81 ? ctx.immediateSize(size) : 1;
  return withImm(ctx, ALU_OPERATIONS[m.reg] ?? "add", size, dst, ctx.signedImm(immBytes, size));
}

/** C0/C1 by imm8, D0/D1 by 1 (an explicit immediate 1), D2/D3 by CL. */
function group2(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = (op & 1) === 0 ? 1 : ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  const mnemonic = SHIFT_OPERATIONS[m.reg] ?? "rol";
  if (op <= 0xc1) return withImm(ctx, mnemonic, size, dst, ctx.unsignedImm(1));
  const count: Operand = op <= 0xd1 ? { kind: "imm", value: 1n, size: 1 } : ctx.gpr(1, 1);
  return ctx.decoded(mnemonic, size, [dst, count]);
}

/** F6/F7: TEST with an immediate, or one-operand NOT NEG MUL IMUL DIV IDIV. */
function group3(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = op === 0xf6 ? 1 : ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  const mnemonic = GROUP3_OPERATIONS[m.reg] ?? "test";
  if (m.reg >= 2) return ctx.decoded(mnemonic, size, [dst]);
  return withImm(ctx, mnemonic, size, dst, ctx.signedImm(op === 0xf6 ? 1 : ctx.immediateSize(size), size));
}

/** FE: INC/DEC Eb; /2–/7 are reserved. */
function group4(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const dst = rmOperand(ctx, m, 1);
  if (isStop(dst)) return dst;
  if (m.reg > 1) return ctx.ud("DECODE-RESERVED");
  return ctx.decoded(m.reg === 0 ? "inc" : "dec", 1, [dst]);
}

/** FF: INC DEC CALL CALLF JMP JMPF PUSH; /7 is reserved. */
function group5(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  switch (m.reg) {
    case 0: case 1: {
      const size = ctx.operandSize();
      const dst = rmOperand(ctx, m, size);
      if (isStop(dst)) return dst;
      return ctx.decoded(m.reg === 0 ? "inc" : "dec", size, [dst]);
    }
    case 2: case 4: {
      const size = ctx.branchOperandSize();
      const target = rmOperand(ctx, m, size);
      if (isStop(target)) return target;
      return ctx.decoded(m.reg === 2 ? "call" : "jmp", size, [target]);
    }
    case 3:
      return m.mod === 3 ? ctx.ud("DECODE-MEMORY-ONLY") : ctx.unsupported("far CALL m16:xx");
    case 5: {
      if (m.mod === 3) return ctx.ud("DECODE-MEMORY-ONLY");
      // m16:16, m16:32 or (REX.W) m16:64: the offset, then the selector.
      const size = farOperandSize(ctx);
      const target = memoryOperand(ctx, m, size + 2);
      if (isStop(target)) return target;
      return ctx.decoded("jmp_far", size, [target]);
    }
    case 6: {
      const size = ctx.stackOperandSize();
      const src = rmOperand(ctx, m, size);
      if (isStop(src)) return src;
      return ctx.decoded("push", size, [src]);
    }
    default: {
      const dst = rmOperand(ctx, m, ctx.operandSize());
      return isStop(dst) ? dst : ctx.ud("DECODE-RESERVED");
    }
  }
}

/** C6 /0 Eb,Ib and C7 /0 Ev,Iz (imm32 sign-extended with REX.W); C6/C7 F8 are XABORT/XBEGIN. */
function group11(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = op === 0xc6 ? 1 : ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.mod === 3 && m.reg === 7 && m.rm === 0) return ctx.unsupported(op === 0xc6 ? "XABORT" : "XBEGIN");
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  const imm = ctx.signedImm(op === 0xc6 ? 1 : ctx.immediateSize(size), size);
  if (isStop(imm)) return imm;
  if (m.reg !== 0) return ctx.ud("DECODE-RESERVED");
  return ctx.decoded("mov", size, [dst, imm]);
}

/** 8F /0: POP Ev. 8F with reg ≠ 0 is AMD's XOP prefix (reserved on Intel): not modelled. */
function popRm(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.reg !== 0) return ctx.unsupported("XOP prefix / 8F /1–/7");
  const size = ctx.stackOperandSize();
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  return ctx.decoded("pop", size, [dst]);
}

/** 90+r: XCHG r, rAX — except 90 itself (no REX.B), which is NOP, or PAUSE with F3. */
function xchgWithAccumulator(ctx: DecodeContext, op: number): Result {
  const reg = (op & 7) | ctx.rexB;
  const size = ctx.operandSize();
  if (reg === 0) return ctx.decoded(ctx.p.rep === "rep" ? "pause" : "nop", size, []);
  // F3 41 90: decoders disagree (PAUSE or XCHG r8d, eax); the model does not guess.
  if (op === 0x90 && ctx.p.rep === "rep") return ctx.unsupported("F3 REX.B 90 (PAUSE or XCHG)");
  return ctx.decoded("xchg", size, [ctx.gpr(reg, size), ctx.gpr(0, size)]);
}

/** 69 Gv,Ev,Iz / 6B Gv,Ev,Ib: IMUL with an immediate, sign-extended to the operand size. */
function imulImmediate(ctx: DecodeContext, imm8: boolean): Result {
  const size = ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const src = rmOperand(ctx, m, size);
  if (isStop(src)) return src;
  const imm = ctx.signedImm(imm8 ? 1 : ctx.immediateSize(size), size);
  if (isStop(imm)) return imm;
  return ctx.decoded("imul", size, [regOperand(ctx, m, size), src, imm]);
}

/** 63 /r (64-bit mode): MOVSXD Gv, Ed — with 66 or without REX.W it is a plain 16/32-bit move. */
function movsxd(ctx: DecodeContext): Result {
  const size = ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const src = rmOperand(ctx, m, size === 2 ? 2 : 4);
  if (isStop(src)) return src;
  return ctx.decoded("movsxd", size, [regOperand(ctx, m, size), src]);
}

/** 8D: LEA computes an address and never accesses memory (operand size 0); a register form is #UD. */
function lea(ctx: DecodeContext): Result {
  const size = ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.mod === 3) return ctx.ud("DECODE-MEMORY-ONLY");
  const src = memoryOperand(ctx, m, 0);
  if (isStop(src)) return src;
  return ctx.decoded("lea", size, [regOperand(ctx, m, size), src]);
}

/** 8C: MOV r/m, Sreg. A register destination takes the operand size (zero-extended selector);
 *  a memory destination is always a 16-bit store. REX.R does not extend the Sreg field. */
function movFromSreg(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const size: OperandSize = m.mod === 3 ? ctx.operandSize() : 2;
  const dst = rmOperand(ctx, m, size, 2);
  if (isStop(dst)) return dst;
  const sreg = SREG_BY_ENCODING[m.reg];
  if (sreg === undefined) return ctx.ud("DECODE-SREG");
  return ctx.decoded("mov_from_sreg", size, [dst, { kind: "sreg", sreg }]);
}

/** 8E: MOV Sreg, r/m16 (only the low 16 bits of a register source are read). Loading CS is #UD. */
function movToSreg(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const src = rmOperand(ctx, m, 2);
  if (isStop(src)) return src;
  const sreg = SREG_BY_ENCODING[m.reg];
  if (sreg === undefined) return ctx.ud("DECODE-SREG");
  // Loading CS is the transition's rule (segment-load.ts), known here already from the encoding.
  if (sreg === "cs") return ctx.ud("SEG-08");
  return ctx.decoded("mov_to_sreg", 2, [{ kind: "sreg", sreg }, src]);
}

const SREG_BY_ENCODING = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

/** A0 AL,Ob / A1 rAX,Ov / A2 Ob,AL / A3 Ov,rAX. */
function movMoffs(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = (op & 1) === 0 ? 1 : ctx.operandSize();
  const mem = moffsOperand(ctx, size);
  if (isStop(mem)) return mem;
  const acc = ctx.gpr(0, size);
  return ctx.decoded("mov", size, op <= 0xa1 ? [acc, mem] : [mem, acc]);
}

/** E4–E7 with an imm8 port, EC–EF with DX. The data size is 1, 2 or 4: REX.W gives 4 (it
 *  still overrides 66). */
function inOut(ctx: DecodeContext, op: number): Result {
  const size: OperandSize = (op & 1) === 0 ? 1 : ctx.operandSize() === 2 ? 2 : 4;
  let port: Operand = { kind: "port", port: "dx" };
  if (op < 0xe8) {
    const imm = ctx.r.u8();
    if (isStop(imm)) return imm;
    port = { kind: "port", port: imm };
  }
  const acc = ctx.gpr(0, size);
  const isIn = (op & 2) === 0;
  return ctx.decoded(isIn ? "in" : "out", size, isIn ? [acc, port] : [port, acc]);
}

/** A4–AF: MOVS CMPS STOS LODS SCAS. Even opcodes move bytes, odd ones the operand size (66: 2,
 *  REX.W: 8). The operands are the implicit DS:[RSI] / ES:[RDI] in Intel order; F3/F2 (`rep`)
 *  repeat them (instructions/string.ts). */
function stringInstruction(ctx: DecodeContext, mnemonic: Mnemonic, op: number, operands: readonly ("source" | "destination")[]): Result {
  const size: OperandSize = (op & 1) === 0 ? 1 : ctx.operandSize();
  const decoded: Operand[] = [];
  for (const which of operands) {
    const m = stringOperand(ctx, which, size);
    if (isStop(m)) return m;
    decoded.push(m);
  }
  return ctx.decoded(mnemonic, size, decoded);
}

/** E0 LOOPNE, E1 LOOPE, E2 LOOP, E3 JRCXZ (JECXZ with 67), rel8. The count register is RCX or
 *  ECX by the address size; CX (16-bit addressing in compatibility mode) is not modelled. */
function loop(ctx: DecodeContext, op: number): Result {
  if (ctx.addressSize === 2) return ctx.unsupported("LOOP/JCXZ with a 16-bit address size");
  const mnemonic = (["loopne", "loope", "loop", "jrcxz"] as const)[op - 0xe0] ?? "loop";
  return branch(ctx, mnemonic, 1);
}

/** Relative JMP/CALL/Jcc: displacement of `bytes` bytes. */
export function branch(ctx: DecodeContext, mnemonic: Mnemonic, bytes: 1 | 2 | 4, condition?: number): Result {
  const rel = ctx.rel(bytes);
  if (isStop(rel)) return rel;
  return ctx.decoded(mnemonic, ctx.branchOperandSize(), [rel], condition);
}

/** RETF, IRET and JMP far: 32-bit by default, 16 with 66, 64 with REX.W (no 64-bit default). */
function farOperandSize(ctx: DecodeContext): 2 | 4 | 8 {
  return ctx.operandSize();
}
