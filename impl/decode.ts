// x86-64 decoder for the modelled subset (reference digest §26 plus the list), written
// from the SDM opcode maps (Vol. 2 Appendix A). Bytes outside the subset decode to OP_UNSUP naming
// the bytes; architecturally invalid encodings the model lists decode to OP_UD.
import { Insn } from "./insn.ts";
import * as insnModule from "./insn.ts";
import { CS, DS, ES, FS, GS, SS } from "./consts.ts";
import { decodeSystem0F } from "./decode-system.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  OP_UNSUP, OP_UD, OP_GP0, OP_ALU_RM_R, OP_ALU_R_RM, OP_ALU_RM_I, OP_TEST_RM_R, OP_TEST_RM_I,
  OP_MOV_RM_R, OP_MOV_R_RM, OP_MOV_RM_I, OP_MOV_R_I, OP_MOVZX, OP_MOVSX, OP_LEA, OP_XCHG, OP_PUSH_R,
  OP_PUSH_I, OP_PUSH_RM, OP_POP_R, OP_POP_RM, OP_PUSHF, OP_POPF, OP_CBW, OP_CWD, OP_INC, OP_DEC,
  OP_NEG, OP_NOT, OP_SHIFT, OP_MUL, OP_IMUL1, OP_DIV, OP_IDIV, OP_IMUL2, OP_IMUL3, OP_BT, OP_JMP,
  OP_JCC, OP_CALL, OP_CALL_RM, OP_JMP_RM, OP_RET, OP_RETF, OP_JMPF, OP_NOP, OP_CLC, OP_STC, OP_CMC,
  OP_CLD, OP_STD, OP_CLI, OP_STI, OP_HLT, OP_IN, OP_OUT, OP_INT, OP_INT3, OP_INT1, OP_INTO, OP_IRET,
  OP_SYSCALL, OP_SYSRET, OP_RDMSR, OP_WRMSR, OP_MOV_FROM_CR, OP_MOV_TO_CR, OP_MOV_TO_SREG,
  OP_MOV_FROM_SREG, OP_PUSH_SREG, OP_POP_SREG, OP_CLTS, OP_INVD, OP_RDTSC, ALU_CMP, BASE_RIP, REG_AH,
  MODE_64, MODE_16, OP_SETCC, OP_CMOVCC, OP_CMPXCHG, OP_XADD, OP_CMPXCHG_WIDE, OP_MOVS, OP_STOS,
  OP_LODS, OP_CMPS, OP_SCAS, OP_LEAVE, OP_LOOP, OP_JRCXZ, OP_BSF, OP_BSR, OP_BSWAP, OP_CPUID,
} = insnModule;

/** Longest legal instruction (SDM Vol. 2 §2.3.11); a longer one is #GP(0). */
export const MAX_INSN = 15;

const SEG_PREFIX: Record<number, number> = { 0x26: ES, 0x2e: CS, 0x36: SS, 0x3e: DS, 0x64: FS, 0x65: GS };

/** A4/A5 MOVS, A6/A7 CMPS, (A8/A9 TEST), AA/AB STOS, AC/AD LODS, AE/AF SCAS, by (opcode − A4) / 2. */
const STRING_OPS = [OP_MOVS, OP_CMPS, -1, OP_STOS, OP_LODS, OP_SCAS];

class NeedMore {
  static readonly it = new NeedMore();
}

/** Cursor over the bytes available to one decode. */
class Reader {
  p = 0;
  /** Position just after the ModRM byte, or -1 before one is read (names unsupported bytes). */
  afterModrm = -1;
  constructor(readonly buf: Uint8Array, readonly start: number, readonly avail: number) {}
  /** Next byte; throws NeedMore (caught in decode) past the available bytes. */
  u8(): number {
    if (this.p >= this.avail) throw NeedMore.it;
    return this.buf[this.start + this.p++]!;
  }
  s8(): number {
    return (this.u8() << 24) >> 24;
  }
  u16(): number {
    const a = this.u8();
    return a | (this.u8() << 8);
  }
  s32(): number {
    const a = this.u16();
    return a | (this.u16() << 16);
  }
}

/**
 * Decodes one instruction from buf[start .. start+avail). Returns null when more bytes are needed
 * than are available (the caller supplies the bytes of the next page, up to MAX_INSN). `mode` is
 * MODE_64 / MODE_32 / MODE_16; (ripLo, ripHi) is the instruction's linear address.
 */
export function decode(buf: Uint8Array, start: number, avail: number, mode: number, ripLo: number, ripHi: number): Insn | null {
  const r = new Reader(buf, start, Math.min(avail, MAX_INSN));
  const i = new Insn();
  i.mode = mode;
  i.ripLo = ripLo;
  i.ripHi = ripHi;
  try {
    decodeInto(r, i, mode);
  } catch (e) {
    if (e !== NeedMore.it) throw e;
    if (avail >= MAX_INSN) {
      // Needs a 16th byte: the instruction is too long.
      i.op = OP_GP0;
      r.p = MAX_INSN;
      i.len = MAX_INSN;
    } else return null;
  }
  i.len = r.p;
  // Unsupported encodings are named by their prefixes, opcode and ModRM (not SIB, displacement
  // or immediate bytes).
  const named = i.op === OP_UNSUP && r.afterModrm >= 0 ? r.afterModrm : r.p;
  i.bytes = buf.slice(start, start + named);
  // Next instruction pointer and relative-branch targets.
  if (mode === MODE_64) {
    const lo = (ripLo + i.len) | 0;
    i.nextLo = lo;
    i.nextHi = (lo >>> 0) < (ripLo >>> 0) ? (ripHi + 1) | 0 : ripHi;
  } else {
    i.nextLo = (ripLo + i.len) | 0;
    i.nextHi = 0;
  }
  if (i.op === OP_JMP || i.op === OP_JCC || i.op === OP_CALL || i.op === OP_LOOP || i.op === OP_JRCXZ) {
    const rel = i.immLo;
    if (mode === MODE_64) {
      const lo = (i.nextLo + rel) | 0;
      const carry = (lo >>> 0) < (i.nextLo >>> 0) ? 1 : 0;
      i.targetLo = lo;
      i.targetHi = (i.nextHi + (rel >> 31) + carry) | 0;
    } else {
      const t = (i.nextLo + rel) | 0;
      i.targetLo = i.operandSize === 2 ? t & 0xffff : t;
      i.targetHi = 0;
    }
  }
  return i;
}

function unsup(i: Insn, reason: string): void {
  i.op = OP_UNSUP;
  i.reason = reason;
}

function decodeInto(r: Reader, i: Insn, mode: number): void {
  const m64 = mode === MODE_64;
  let opsz16 = false;
  let adsz = false;
  let seg = -1;
  let rex = 0;
  let b: number;
  // ---- prefixes ----
  for (;;) {
    b = r.u8();
    if (b === 0x66) opsz16 = true;
    else if (b === 0x67) adsz = true;
    else if (b === 0xf0) i.lock = true;
    else if (b === 0xf2 || b === 0xf3) i.rep = b;
    else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x64 || b === 0x65) {
      // 64-bit mode ignores the ES/CS/SS/DS overrides.
      if (!m64 || b === 0x64 || b === 0x65) seg = SEG_PREFIX[b]!;
    } else if (m64 && (b & 0xf0) === 0x40) {
      rex = b;
      continue;
    } else break;
    rex = 0; // a legacy prefix after REX cancels it
  }
  const rexW = (rex & 8) !== 0;
  const rexR = (rex & 4) << 1;
  const rexX = (rex & 2) << 2;
  const rexB = (rex & 1) << 3;
  const hasRex = rex !== 0;
  i.rexW = rexW;
  const osz = m64 ? (rexW ? 8 : opsz16 ? 2 : 4) : mode === MODE_16 ? (opsz16 ? 4 : 2) : opsz16 ? 2 : 4;
  const asz = m64 ? (adsz ? 4 : 8) : mode === MODE_16 ? (adsz ? 4 : 2) : adsz ? 2 : 4;
  /** Stack operations: 64 bits in 64-bit mode, 16 with 66h unless REX.W (REX.W wins over 66h, SDM
   *  Vol. 2A §2.2.1.2). */
  const stackSz = m64 ? (opsz16 && !rexW ? 2 : 8) : osz;
  i.operandSize = osz;
  i.addressSize = asz;

  let needs16 = false;
  const byteReg = (n: number): number => (!hasRex && n >= 4 && n < 8 ? REG_AH + n - 4 : n);

  /** ModRM (+SIB, displacement). `size` is the r/m operand size, for byte-register naming. */
  const modrm = (size: number): void => {
    const mb = r.u8();
    r.afterModrm = r.p;
    const mod = mb >> 6;
    const regf = ((mb >> 3) & 7) | rexR;
    const rmf = mb & 7;
    i.mod = mod;
    i.reg = regf;
    if (mod === 3) {
      const rmr = rmf | rexB;
      i.rm = size === 1 ? byteReg(rmr) : rmr;
      return;
    }
    let defSeg = DS;
    if (asz === 2) {
      // 16-bit addressing (compatibility mode with 67): outside the model (docs/model-choices.md).
      needs16 = true;
      const BASES = [3, 3, 5, 5, 6, 7, 5, 3];
      const INDEXES = [6, 7, 6, 7, -1, -1, -1, -1];
      if (mod === 0 && rmf === 6) {
        i.base = -1;
        i.index = -1;
        i.dispLo = r.u16();
      } else {
        i.base = BASES[rmf]!;
        i.index = INDEXES[rmf]!;
        if (rmf === 2 || rmf === 3 || rmf === 6) defSeg = SS;
        if (mod === 1) i.dispLo = r.s8();
        else if (mod === 2) i.dispLo = (r.u16() << 16) >> 16;
      }
      i.dispHi = i.dispLo >> 31;
    } else {
      if (rmf === 4) {
        const sib = r.u8();
        i.scale = sib >> 6;
        const idx = ((sib >> 3) & 7) | rexX;
        i.index = idx === 4 ? -1 : idx;
        const bf = sib & 7;
        if (bf === 5 && mod === 0) {
          i.base = -1;
          i.dispLo = r.s32();
        } else i.base = bf | rexB;
      } else if (rmf === 5 && mod === 0) {
        i.base = m64 ? BASE_RIP : -1;
        i.dispLo = r.s32();
      } else i.base = rmf | rexB;
      if (mod === 1) i.dispLo = r.s8();
      else if (mod === 2) i.dispLo = r.s32();
      i.dispHi = i.dispLo >> 31;
      if (i.base === 4 || i.base === 5) defSeg = SS;
    }
    i.seg = seg >= 0 ? seg : defSeg;
  };
  /** Immediate of `size` bytes (8 means imm32 sign-extended), sign-extended into immLo/immHi. */
  const imm = (size: number): void => {
    if (size === 1) i.immLo = r.s8();
    else if (size === 2) i.immLo = (r.u16() << 16) >> 16;
    else i.immLo = r.s32();
    i.immHi = i.immLo >> 31;
  };
  const regOf = (n: number, size: number): number => (size === 1 ? byteReg(n) : n);

  i.seg = seg >= 0 ? seg : DS;
  const op = b;
  if (op === 0x0f) {
    decode0F(r, i, mode, modrm, imm, osz, stackSz, rexB, rexR, opsz16, regOf);
    finish(i, needs16);
    return;
  }
  // ---- one-byte opcode map ----
  if (op < 0x40 && (op & 7) < 6) {
    i.sub = op >> 3;
    switch (op & 7) {
      case 0: // r/m8, r8
        i.operandSize = 1;
        modrm(1);
        i.reg = byteReg(i.reg);
        i.op = OP_ALU_RM_R;
        break;
      case 1:
        modrm(osz);
        i.op = OP_ALU_RM_R;
        break;
      case 2:
        i.operandSize = 1;
        modrm(1);
        i.reg = byteReg(i.reg);
        i.op = OP_ALU_R_RM;
        break;
      case 3:
        modrm(osz);
        i.op = OP_ALU_R_RM;
        break;
      case 4:
        i.operandSize = 1;
        i.mod = 3;
        i.rm = 0;
        imm(1);
        i.op = OP_ALU_RM_I;
        break;
      default:
        i.mod = 3;
        i.rm = 0;
        imm(osz === 2 ? 2 : 4);
        i.op = OP_ALU_RM_I;
    }
    finish(i, needs16);
    return;
  }
  switch (op) {
    case 0x06: case 0x0e: case 0x16: case 0x1e: case 0x07: case 0x17: case 0x1f:
      // PUSH/POP ES/CS/SS/DS: invalid in 64-bit mode; not modelled in compatibility mode.
      if (m64) i.op = OP_UD;
      else unsup(i, "PUSH/POP ES/CS/SS/DS are not modelled in compatibility mode");
      break;
    case 0x27: case 0x2f: case 0x37: case 0x3f:
      if (m64) i.op = OP_UD;
      else unsup(i, "decimal-adjust instructions are not modelled");
      break;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
      i.op = OP_INC; // compatibility mode only (REX in 64-bit mode)
      i.mod = 3;
      i.rm = op & 7;
      break;
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
      i.op = OP_DEC;
      i.mod = 3;
      i.rm = op & 7;
      break;
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
      i.op = OP_PUSH_R;
      i.reg = (op & 7) | rexB;
      i.operandSize = stackSz;
      break;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
      i.op = OP_POP_R;
      i.reg = (op & 7) | rexB;
      i.operandSize = stackSz;
      break;
    case 0x60: case 0x61: case 0x9a: case 0xd6: case 0xea:
      if (m64) i.op = OP_UD;
      else unsup(i, "PUSHA/POPA, far CALL/JMP ptr16:32 and SALC are not modelled");
      break;
    case 0x63:
      if (!m64) {
        unsup(i, "ARPL is not modelled");
        break;
      }
      modrm(osz);
      i.op = OP_MOVSX;
      i.sourceSize = osz === 2 ? 2 : 4;
      break;
    case 0x68:
      imm(stackSz === 2 ? 2 : 4);
      i.op = OP_PUSH_I;
      i.operandSize = stackSz;
      break;
    case 0x6a:
      imm(1);
      i.op = OP_PUSH_I;
      i.operandSize = stackSz;
      break;
    case 0x69:
      modrm(osz);
      imm(osz === 2 ? 2 : 4);
      i.op = OP_IMUL3;
      break;
    case 0x6b:
      modrm(osz);
      imm(1);
      i.op = OP_IMUL3;
      break;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
      imm(1);
      i.op = OP_JCC;
      i.sub = op & 15;
      i.operandSize = stackSz === 2 && !m64 ? 2 : stackSz;
      break;
    case 0x80: case 0x81: case 0x82: case 0x83: {
      // 82 is an alias of 80 outside 64-bit mode; invalid in 64-bit mode.
      if (op === 0x82 && m64) {
        i.op = OP_UD;
        break;
      }
      const size = op === 0x80 || op === 0x82 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.sub = i.reg & 7;
      imm(op === 0x81 ? (size === 2 ? 2 : 4) : 1);
      i.op = OP_ALU_RM_I;
      break;
    }
    case 0x84: case 0x85: {
      const size = op === 0x84 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.reg = regOf(i.reg, size);
      i.op = OP_TEST_RM_R;
      break;
    }
    case 0x86: case 0x87: {
      const size = op === 0x86 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.reg = regOf(i.reg, size);
      i.op = OP_XCHG;
      break;
    }
    case 0x88: case 0x89: case 0x8a: case 0x8b: {
      const size = (op & 1) === 0 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.reg = regOf(i.reg, size);
      i.op = op < 0x8a ? OP_MOV_RM_R : OP_MOV_R_RM;
      break;
    }
    case 0x8c:
      modrm(osz);
      i.reg &= 7;
      i.op = i.reg > 5 ? OP_UD : OP_MOV_FROM_SREG;
      break;
    case 0x8d:
      modrm(osz);
      i.op = i.mod === 3 ? OP_UD : OP_LEA;
      break;
    case 0x8e:
      modrm(2);
      i.reg &= 7;
      i.op = i.reg === CS || i.reg > 5 ? OP_UD : OP_MOV_TO_SREG;
      i.operandSize = 2;
      break;
    case 0x8f:
      i.operandSize = stackSz;
      modrm(stackSz);
      if ((i.reg & 7) !== 0) unsup(i, "8F with a reg field other than 0 (XOP) is not modelled");
      else i.op = OP_POP_RM;
      break;
    case 0x90:
      if (rexB !== 0 && i.rep === 0xf3) unsup(i, "F3 with REX.B on 90 is not modelled");
      else if (rexB !== 0) {
        i.op = OP_XCHG;
        i.mod = 3;
        i.rm = 8;
        i.reg = 0;
      } else i.op = OP_NOP; // NOP, or PAUSE with F3
      break;
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
      i.op = OP_XCHG;
      i.mod = 3;
      i.rm = (op & 7) | rexB;
      i.reg = 0;
      break;
    case 0x98:
      i.op = OP_CBW;
      break;
    case 0x99:
      i.op = OP_CWD;
      break;
    case 0x9c:
      i.op = OP_PUSHF;
      i.operandSize = stackSz;
      break;
    case 0x9d:
      i.op = OP_POPF;
      i.operandSize = stackSz;
      break;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
      const size = (op & 1) === 0 ? 1 : osz;
      i.operandSize = size;
      i.mod = 0;
      i.base = -1;
      i.index = -1;
      i.reg = 0;
      if (asz === 8) {
        i.dispLo = r.s32();
        i.dispHi = r.s32();
      } else if (asz === 4) {
        i.dispLo = r.s32();
        i.dispHi = 0;
      } else {
        i.dispLo = r.u16();
        i.dispHi = 0;
      }
      i.seg = seg >= 0 ? seg : DS;
      i.op = op < 0xa2 ? OP_MOV_R_RM : OP_MOV_RM_R;
      break;
    }
    case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
      // String instructions: element size 1 or the operand size; DS:[rSI] (overridable) and
      // ES:[rDI]; count rCX at the address size (docs/model-choices.md, "String instructions").
      if (asz === 2) {
        unsup(i, "string instructions with 16-bit addressing (67 prefix in compatibility mode) are not modelled");
        break;
      }
      i.operandSize = (op & 1) === 0 ? 1 : osz;
      i.seg = seg >= 0 ? seg : DS;
      i.op = STRING_OPS[(op - 0xa4) >> 1]!;
      break;
    case 0xa8:
      i.operandSize = 1;
      i.mod = 3;
      i.rm = 0;
      imm(1);
      i.op = OP_TEST_RM_I;
      break;
    case 0xa9:
      i.mod = 3;
      i.rm = 0;
      imm(osz === 2 ? 2 : 4);
      i.op = OP_TEST_RM_I;
      break;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
      i.operandSize = 1;
      i.reg = byteReg((op & 7) | rexB);
      imm(1);
      i.op = OP_MOV_R_I;
      break;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
      i.reg = (op & 7) | rexB;
      if (osz === 8) {
        i.immLo = r.s32();
        i.immHi = r.s32();
      } else imm(osz === 2 ? 2 : 4);
      i.op = OP_MOV_R_I;
      break;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const size = (op & 1) === 0 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.sub = i.reg & 7;
      if (op <= 0xc1) {
        i.immLo = r.u8();
        i.operandForm = 0;
      } else i.operandForm = op <= 0xd1 ? 1 : 2;
      i.op = OP_SHIFT;
      break;
    }
    case 0xc2:
      i.immLo = r.u16();
      i.op = OP_RET;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xc3:
      i.op = OP_RET;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xc6: case 0xc7: {
      const size = op === 0xc6 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      const ext = i.reg & 7;
      // XABORT is C6 F8 / XBEGIN C7 F8: r/m = 0 (AL/EAX; with REX.B R8). A byte register number
      // from modrm() is AH..BH (REG_AH + n) without REX: C6 FC names AH, not XABORT (#UD below).
      if (ext === 7 && i.mod === 3 && (i.rm & 7) === 0 && i.rm < REG_AH) {
        unsup(i, "XBEGIN/XABORT are not modelled");
        break;
      }
      imm(size === 1 ? 1 : size === 2 ? 2 : 4);
      // C6/C7 /1–/7: reserved, #UD once the whole instruction is fetched.
      i.op = ext === 0 ? OP_MOV_RM_I : OP_UD;
      break;
    }
    case 0xc9:
      i.op = OP_LEAVE;
      i.operandSize = stackSz;
      break;
    case 0xca:
      i.immLo = r.u16();
      i.op = OP_RETF;
      break;
    case 0xcb:
      i.op = OP_RETF;
      break;
    case 0xcc:
      i.op = OP_INT3;
      break;
    case 0xcd:
      i.immLo = r.u8();
      i.op = OP_INT;
      break;
    case 0xce:
      i.op = m64 ? OP_UD : OP_INTO;
      break;
    case 0xcf:
      i.op = OP_IRET;
      break;
    case 0xd4: case 0xd5:
      if (m64) {
        i.op = OP_UD;
        break;
      }
      unsup(i, "AAM/AAD are not modelled");
      break;
    case 0xe4: case 0xe5: case 0xe6: case 0xe7:
      i.immLo = r.u8();
      i.operandSize = (op & 1) === 0 ? 1 : osz === 2 ? 2 : 4;
      i.operandForm = 0;
      i.op = op < 0xe6 ? OP_IN : OP_OUT;
      break;
    case 0xec: case 0xed: case 0xee: case 0xef:
      i.operandSize = (op & 1) === 0 ? 1 : osz === 2 ? 2 : 4;
      i.operandForm = 1;
      i.op = op < 0xee ? OP_IN : OP_OUT;
      break;
    case 0xe0: case 0xe1: case 0xe2: case 0xe3:
      // LOOPNE, LOOPE, LOOP, JrCXZ rel8: the count register has the address size.
      imm(1);
      i.op = op === 0xe3 ? OP_JRCXZ : OP_LOOP;
      i.sub = op & 3;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xe8:
      imm(m64 || osz === 4 ? 4 : 2);
      i.op = OP_CALL;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xe9:
      imm(m64 || osz === 4 ? 4 : 2);
      i.op = OP_JMP;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xeb:
      imm(1);
      i.op = OP_JMP;
      i.operandSize = m64 ? 8 : osz;
      break;
    case 0xf1:
      i.op = OP_INT1;
      break;
    case 0xf4:
      i.op = OP_HLT;
      break;
    case 0xf5:
      i.op = OP_CMC;
      break;
    case 0xf6: case 0xf7: {
      const size = op === 0xf6 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      const ext = i.reg & 7;
      i.sub = ext;
      switch (ext) {
        case 0: case 1:
          imm(size === 1 ? 1 : size === 2 ? 2 : 4);
          i.op = OP_TEST_RM_I;
          break;
        case 2:
          i.op = OP_NOT;
          break;
        case 3:
          i.op = OP_NEG;
          break;
        case 4:
          i.op = OP_MUL;
          break;
        case 5:
          i.op = OP_IMUL1;
          break;
        case 6:
          i.op = OP_DIV;
          break;
        default:
          i.op = OP_IDIV;
      }
      break;
    }
    case 0xf8:
      i.op = OP_CLC;
      break;
    case 0xf9:
      i.op = OP_STC;
      break;
    case 0xfa:
      i.op = OP_CLI;
      break;
    case 0xfb:
      i.op = OP_STI;
      break;
    case 0xfc:
      i.op = OP_CLD;
      break;
    case 0xfd:
      i.op = OP_STD;
      break;
    case 0xfe:
      i.operandSize = 1;
      modrm(1);
      if ((i.reg & 7) === 0) i.op = OP_INC;
      else if ((i.reg & 7) === 1) i.op = OP_DEC;
      else i.op = OP_UD; // FE /2–/7 reserved
      break;
    case 0xff: {
      const b2 = r.buf[r.start + r.p];
      const ext = b2 === undefined || r.p >= r.avail ? -1 : (b2 >> 3) & 7;
      if (ext === 2 || ext === 4) {
        const size = m64 ? 8 : osz;
        i.operandSize = size;
        modrm(size);
        i.op = ext === 2 ? OP_CALL_RM : OP_JMP_RM;
      } else if (ext === 6) {
        i.operandSize = stackSz;
        modrm(stackSz);
        i.op = OP_PUSH_RM;
      } else {
        modrm(osz);
        const e = i.reg & 7;
        if (e === 0) i.op = OP_INC;
        else if (e === 1) i.op = OP_DEC;
        else if (e === 5) i.op = i.mod === 3 ? OP_UD : OP_JMPF;
        else if (e === 3) {
          if (i.mod === 3) i.op = OP_UD;
          else unsup(i, "far CALL is not modelled");
        } else i.op = OP_UD; // FF /7 reserved
      }
      break;
    }
    default:
      unsup(i, "opcode outside the modelled subset");
  }
  finish(i, needs16);
}

function finish(i: Insn, needs16: boolean): void {
  if (needs16 && i.op !== OP_UNSUP && i.op !== OP_UD) {
    unsup(i, "16-bit addressing (67 prefix in compatibility mode) is not modelled");
    return;
  }
  finishLock(i);
}

function decode0F(r: Reader, i: Insn, mode: number, modrm: (size: number) => void, imm: (size: number) => void,
  osz: number, stackSz: number, rexB: number, rexR: number, opsz16: boolean, regOf: (n: number, size: number) => number): void {
  const m64 = mode === MODE_64;
  const op = r.u8();
  // System opcodes (0F 00, 0F 01, MOV DR, SYSENTER, FSGSBASE, INVPCID, absent features).
  if (decodeSystem0F(r, i, mode, op, modrm, osz, rexB, rexR, opsz16)) return;
  if (op >= 0x40 && op <= 0x4f) {
    modrm(osz);
    i.op = OP_CMOVCC;
    i.sub = op & 15;
    return;
  }
  if (op >= 0x90 && op <= 0x9f) {
    // SETcc r/m8: ModRM.reg is ignored.
    i.operandSize = 1;
    modrm(1);
    i.op = OP_SETCC;
    i.sub = op & 15;
    return;
  }
  if (op >= 0xc8 && op <= 0xcf) {
    i.op = OP_BSWAP;
    i.mod = 3;
    i.rm = (op & 7) | rexB;
    return;
  }
  // F2/F3 are ignored on the modelled 0F opcodes, except where they select another instruction
  // (WBNOINVD, LKGS, the prefixed 0F 01 register forms: below). Unmodelled 0F opcodes are
  // unsupported with or without them.
  if (op >= 0x80 && op <= 0x8f) {
    imm(m64 || osz === 4 ? 4 : 2);
    i.op = OP_JCC;
    i.sub = op & 15;
    i.operandSize = m64 ? 8 : osz;
    return;
  }
  switch (op) {
    case 0x05:
      i.op = OP_SYSCALL;
      return;
    case 0x06:
      i.op = OP_CLTS;
      return;
    case 0x07:
      i.op = OP_SYSRET;
      return;
    case 0x08:
      i.op = OP_INVD;
      return;
    case 0x0b:
      i.op = OP_UD;
      return;
    case 0x18:
      // PREFETCHh m8 (/0–/3): a hint; no access, never a fault.
      modrm(osz);
      if (i.mod !== 3 && (i.reg & 7) <= 3) i.op = OP_NOP;
      else unsup(i, "0F 18 register forms and /4–/7 (hint NOPs) are not modelled");
      return;
    case 0x1e:
      // ENDBR64 / ENDBR32 (F3 0F 1E FA / FB): NOPs while CET is off (always, in the model).
      modrm(osz);
      if (i.rep === 0xf3 && i.mod === 3 && (i.reg & 7) === 7 && ((i.rm & 7) === 2 || (i.rm & 7) === 3)) i.op = OP_NOP;
      else unsup(i, "0F 1E forms other than ENDBR64/ENDBR32 (hint NOPs, RDSSP) are not modelled");
      return;
    case 0x1f:
      modrm(osz);
      if ((i.reg & 7) === 0) i.op = OP_NOP;
      else unsup(i, "0F 1F with a reg field other than 0 is not modelled");
      return;
    case 0x20: case 0x22: {
      const mb = r.u8();
      i.mod = 3;
      i.reg = ((mb >> 3) & 7) | rexR;
      i.rm = (mb & 7) | rexB;
      i.operandSize = m64 ? 8 : 4;
      const cr = i.reg;
      if (cr !== 0 && cr !== 2 && cr !== 3 && cr !== 4 && cr !== 8) i.op = OP_UD;
      else i.op = op === 0x20 ? OP_MOV_FROM_CR : OP_MOV_TO_CR;
      return;
    }
    case 0x30:
      i.op = OP_WRMSR;
      return;
    case 0x31:
      i.op = OP_RDTSC;
      return;
    case 0x32:
      i.op = OP_RDMSR;
      return;
    case 0xa0: case 0xa8:
      i.op = OP_PUSH_SREG;
      i.reg = op === 0xa0 ? FS : GS;
      i.operandSize = stackSz;
      return;
    case 0xa1: case 0xa9:
      i.op = OP_POP_SREG;
      i.reg = op === 0xa1 ? FS : GS;
      i.operandSize = stackSz;
      return;
    case 0xa2:
      i.op = OP_CPUID;
      return;
    case 0xae:
      // LFENCE / MFENCE / SFENCE (NP 0F AE /5 /6 /7, register forms): no effect with one CPU.
      modrm(osz);
      if (i.mod === 3 && (i.reg & 7) >= 5 && !opsz16 && i.rep === 0) i.op = OP_NOP;
      else unsup(i, "0F AE forms other than LFENCE/MFENCE/SFENCE (FXSAVE, LDMXCSR, CLFLUSH, ...) are not modelled");
      return;
    case 0xb0: case 0xb1: case 0xc0: case 0xc1: {
      const size = (op & 1) === 0 ? 1 : osz;
      i.operandSize = size;
      modrm(size);
      i.reg = regOf(i.reg, size);
      i.op = op < 0xc0 ? OP_CMPXCHG : OP_XADD;
      return;
    }
    case 0xc7:
      modrm(osz);
      if ((i.reg & 7) !== 1) {
        unsup(i, "0F C7 forms other than CMPXCHG8B/16B (RDRAND, RDSEED, VMPTRLD, ...) are not modelled");
        return;
      }
      if (i.mod === 3) {
        i.op = OP_UD; // CMPXCHG8B/16B need a memory operand
        return;
      }
      i.op = OP_CMPXCHG_WIDE;
      i.operandSize = i.rexW ? 16 : 8;
      return;
    case 0xbc: case 0xbd:
      // F3 0F BC/BD (TZCNT/LZCNT) execute as BSF/BSR: the modelled CPU has neither BMI1 nor LZCNT.
      modrm(osz);
      i.op = op === 0xbc ? OP_BSF : OP_BSR;
      return;
    case 0xa3: case 0xab: case 0xb3: case 0xbb:
      modrm(osz);
      i.op = OP_BT;
      i.sub = op === 0xa3 ? 0 : op === 0xab ? 1 : op === 0xb3 ? 2 : 3;
      i.operandForm = 0;
      return;
    case 0xba:
      modrm(osz);
      i.immLo = r.u8();
      if ((i.reg & 7) < 4) {
        i.op = OP_UD; // 0F BA /0–/3 reserved
        return;
      }
      i.sub = (i.reg & 7) - 4;
      i.operandForm = 1;
      i.op = OP_BT;
      return;
    case 0xaf:
      modrm(osz);
      i.op = OP_IMUL2;
      return;
    case 0xb6: case 0xb7: case 0xbe: case 0xbf: {
      const ssz = (op & 1) === 0 ? 1 : 2;
      modrm(ssz);
      // The destination register is never a high-byte register.
      i.sourceSize = ssz;
      i.op = op <= 0xb7 ? OP_MOVZX : OP_MOVSX;
      return;
    }
    default:
      unsup(i, "0F opcode outside the modelled subset");
  }
}

/** LOCK is legal only on a read-modify-write instruction with a memory destination (SDM Vol. 2
 *  "LOCK"); anything else (register destination, other instructions) is #UD. */
function finishLock(i: Insn): void {
  if (!i.lock || i.op === OP_UNSUP) return;
  let ok = false;
  switch (i.op) {
    case OP_ALU_RM_R: case OP_ALU_RM_I:
      ok = i.sub !== ALU_CMP;
      break;
    case OP_INC: case OP_DEC: case OP_NEG: case OP_NOT: case OP_XCHG: case OP_CMPXCHG: case OP_XADD:
    case OP_CMPXCHG_WIDE:
      ok = true;
      break;
    case OP_BT:
      ok = i.sub !== 0;
      break;
  }
  if (!ok || i.mod === 3 || i.mod === -1) i.op = OP_UD;
}
