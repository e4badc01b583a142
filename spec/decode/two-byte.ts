// The two-byte opcode map, 0F xx (SDM Vol. 2D Table A-3), restricted to the modelled subset.
// Mandatory prefixes (66/F2/F3) select other instructions only where noted; elsewhere in this subset
// they are ignored, as on hardware.
import type { Mnemonic, OperandSize, SregName } from "./instruction.ts";
import { isStop, type DecodeContext, type Result } from "./context.ts";
import { memoryOperand, readModRM, regOperand, rmOperand } from "./modrm.ts";
import { branch, modrmForm } from "./one-byte.ts";
import { getsec, group15, group6, group7, group9, movDr, threeByte38, vmreadVmwrite } from "./system-groups.ts";

/** Control registers that exist (digest MOVCR-02); the others are #UD. */
const VALID_CR: ReadonlySet<number> = new Set([0, 2, 3, 4, 8]);
/** 0F BA /4–/7. */
const BIT_TEST: readonly Mnemonic[] = ["bt", "bts", "btr", "btc"];

export function decodeTwoByte(ctx: DecodeContext): Result {
  const op = ctx.r.u8();
  if (isStop(op)) return op;
  if (op >= 0x80 && op <= 0x8f) return branch(ctx, "jcc", ctx.branchOperandSize() === 2 ? 2 : 4, op & 0xf);
  if (op >= 0x40 && op <= 0x4f) return conditional(ctx, "cmovcc", op & 0xf);
  if (op >= 0x90 && op <= 0x9f) return conditional(ctx, "setcc", op & 0xf);
  if (op >= 0xc8 && op <= 0xcf) return bswap(ctx, op);
  const size = ctx.operandSize();
  switch (op) {
    case 0x00: return group6(ctx);
    case 0x01: return group7(ctx);
    case 0x05: return ctx.decoded("syscall", size, []);
    case 0x06: return ctx.decoded("clts", size, []);
    // SYSRET and SYSEXIT: REX.W selects the return to 64-bit mode (rexW, operand size 8).
    case 0x07: return ctx.decoded("sysret", ctx.rexW ? 8 : 4, []);
    case 0x08: return ctx.decoded("invd", size, []);
    // F3 0F 09 is WBNOINVD.
    case 0x09: return ctx.decoded(ctx.p.rep === "rep" ? "wbnoinvd" : "wbinvd", size, []);
    // UD2 decodes; its semantics raise #UD (so traces show the instruction).
    case 0x0b: return ctx.decoded("ud2", size, []);
    case 0x18: return prefetch(ctx);
    case 0x1e: return endbr(ctx);
    case 0x1f: return reservedNop(ctx);
    case 0x20: case 0x22: return movCr(ctx, op === 0x22);
    case 0x21: case 0x23: return movDr(ctx, op === 0x23);
    case 0x30: return ctx.decoded("wrmsr", size, []);
    case 0x31: return ctx.decoded("rdtsc", size, []);
    case 0x32: return ctx.decoded("rdmsr", size, []);
    case 0x33: return ctx.decoded("rdpmc", size, []);
    case 0x34: return ctx.decoded("sysenter", size, []);
    case 0x35: return ctx.decoded("sysexit", ctx.rexW ? 8 : 4, []);
    case 0x37: return getsec(ctx);
    case 0x38: return threeByte38(ctx);
    case 0x78: case 0x79: return vmreadVmwrite(ctx);
    case 0xa2: return ctx.decoded("cpuid", size, []);
    case 0xa0: return stackSreg(ctx, "push_sreg", "fs");
    case 0xa1: return stackSreg(ctx, "pop_sreg", "fs");
    case 0xa8: return stackSreg(ctx, "push_sreg", "gs");
    case 0xa9: return stackSreg(ctx, "pop_sreg", "gs");
    case 0xa3: return modrmForm(ctx, "bt", size, "rm,reg");
    case 0xab: return modrmForm(ctx, "bts", size, "rm,reg");
    case 0xb3: return modrmForm(ctx, "btr", size, "rm,reg");
    case 0xbb: return modrmForm(ctx, "btc", size, "rm,reg");
    case 0xae: return group15(ctx);
    case 0xaf: return modrmForm(ctx, "imul", size, "reg,rm");
    case 0xb0: return modrmForm(ctx, "cmpxchg", 1, "rm,reg");
    case 0xb1: return modrmForm(ctx, "cmpxchg", size, "rm,reg");
    case 0xc0: return modrmForm(ctx, "xadd", 1, "rm,reg");
    case 0xc1: return modrmForm(ctx, "xadd", size, "rm,reg");
    case 0xc7: return group9(ctx);
    // F3 0F BC / F3 0F BD are TZCNT / LZCNT on CPUs with BMI1 / LZCNT; the modelled CPU has
    // neither (CPUID), and there they execute as BSF / BSR (SDM TZCNT, LZCNT).
    case 0xbc: return modrmForm(ctx, "bsf", size, "reg,rm");
    case 0xbd: return modrmForm(ctx, "bsr", size, "reg,rm");
    case 0xb6: return extend(ctx, "movzx", 1);
    case 0xb7: return extend(ctx, "movzx", 2);
    case 0xba: return group8(ctx);
    case 0xbe: return extend(ctx, "movsx", 1);
    case 0xbf: return extend(ctx, "movsx", 2);
    default: return ctx.unsupported(`opcode 0f ${op.toString(16).padStart(2, "0")}`);
  }
}

/** 0F 1F /0: the multi-byte NOP. Its r/m operand is never accessed. /1–/7 are reserved NOPs. */
function reservedNop(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.reg !== 0) return ctx.unsupported("reserved NOP 0F 1F /1–/7");
  const size = ctx.operandSize();
  const operand = rmOperand(ctx, m, size);
  if (isStop(operand)) return operand;
  return ctx.decoded("nop", size, [operand]);
}

/** 0F 20 / 0F 22 (digest MOVCR-02): ModRM.mod is ignored — always the register form, no SIB or
 *  displacement; the GPR is 64-bit in 64-bit mode whatever 66/REX.W say. */
function movCr(ctx: DecodeContext, toCr: boolean): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const cr = m.reg | ctx.rexR;
  if (!VALID_CR.has(cr)) return ctx.ud("DECODE-CR");
  const size: OperandSize = ctx.mode64 ? 8 : 4;
  const gpr = ctx.gpr(m.rm | ctx.rexB, size);
  const crOperand = { kind: "cr", cr } as const;
  return toCr ? ctx.decoded("mov_to_cr", size, [crOperand, gpr]) : ctx.decoded("mov_from_cr", size, [gpr, crOperand]);
}

/** 0F A0/A1/A8/A9: PUSH/POP FS/GS at the stack operand size. */
function stackSreg(ctx: DecodeContext, mnemonic: "push_sreg" | "pop_sreg", sreg: SregName): Result {
  return ctx.decoded(mnemonic, ctx.stackOperandSize(), [{ kind: "sreg", sreg }]);
}

/** MOVZX/MOVSX Gv, Eb/Ew. */
function extend(ctx: DecodeContext, mnemonic: "movzx" | "movsx", from: 1 | 2): Result {
  const size = ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const src = rmOperand(ctx, m, from);
  if (isStop(src)) return src;
  return ctx.decoded(mnemonic, size, [regOperand(ctx, m, size), src]);
}

/** 0F 40–4F CMOVcc Gv, Ev (tttn in the low nibble); 0F 90–9F SETcc Eb (ModRM.reg is ignored). */
function conditional(ctx: DecodeContext, mnemonic: "cmovcc" | "setcc", condition: number): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (mnemonic === "setcc") {
    const dst = rmOperand(ctx, m, 1);
    if (isStop(dst)) return dst;
    return ctx.decoded("setcc", 1, [dst], condition);
  }
  const size = ctx.operandSize();
  const src = rmOperand(ctx, m, size);
  if (isStop(src)) return src;
  return ctx.decoded("cmovcc", size, [regOperand(ctx, m, size), src], condition);
}

/** 0F C8+r: BSWAP r32 (REX.W r64; 66: r16, whose result the SDM leaves undefined). */
function bswap(ctx: DecodeContext, op: number): Result {
  const size = ctx.operandSize();
  return ctx.decoded("bswap", size, [ctx.gpr((op & 7) | ctx.rexB, size)]);
}

/** 0F 18 /0–/3 with a memory operand: PREFETCHNTA/T0/T1/T2, hints that never access memory or
 *  fault. The other 0F 18 encodings are reserved-NOP hints, not modelled. */
function prefetch(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  if (m.mod === 3 || m.reg > 3) return ctx.unsupported("reserved NOP 0F 18");
  const target = memoryOperand(ctx, m, 1);
  if (isStop(target)) return target;
  return ctx.decoded("prefetch", ctx.operandSize(), [target]);
}

/** F3 0F 1E FA / FB: ENDBR64 / ENDBR32, NOPs while CET is not enabled (CR4.CET is outside the
 *  model). The rest of 0F 1E is reserved-NOP space (RDSSP, ...), not modelled. */
function endbr(ctx: DecodeContext): Result {
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const byte = 0xc0 | (m.reg << 3) | m.rm;
  if (ctx.p.rep === "rep" && !ctx.p.operandSizeOverride && (byte === 0xfa || byte === 0xfb)) return ctx.decoded("endbr", ctx.operandSize(), []);
  return ctx.unsupported("reserved NOP 0F 1E");
}

/** 0F BA /4–/7: BT BTS BTR BTC Ev, Ib; /0–/3 are reserved. */
function group8(ctx: DecodeContext): Result {
  const size = ctx.operandSize();
  const m = readModRM(ctx);
  if (isStop(m)) return m;
  const dst = rmOperand(ctx, m, size);
  if (isStop(dst)) return dst;
  const imm = ctx.unsignedImm(1);
  if (isStop(imm)) return imm;
  const mnemonic = BIT_TEST[m.reg - 4];
  if (mnemonic === undefined) return ctx.ud("DECODE-RESERVED");
  return ctx.decoded(mnemonic, size, [dst, imm]);
}
