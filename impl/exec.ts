// Interpreter for the general-purpose instructions (data movement, ALU, shifts, multiply/divide,
// bit tests, near control flow, flag instructions). Each handler runs with RIP already set to the
// next instruction; it either completes (ST_OK) or raises a fault before changing any state
// (ST_FAULT; the caller puts RIP back). Memory destinations of read-modify-write instructions are
// translated once with write intent (so #PF reports W = 1 and no A bit is set if it faults).
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as insnModule from "./insn.ts";
import * as constsModule from "./consts.ts";
import { readSegmented, toLinear, writeSegmented } from "./memory/segmented.ts";
import { commitWrite, prepareWrite, readPrepared } from "./memory/linear.ts";
import { translate } from "./memory/translate.ts";
import {
  LAZY_ADC, LAZY_ADD, LAZY_DEC, LAZY_INC, LAZY_LOGIC, LAZY_SBB, LAZY_SUB, PARITY, arithFlags, carry, condition,
  materialize, setLazy,
} from "./flags.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  ALU_ADC, ALU_ADD, ALU_AND, ALU_CMP, ALU_OR, ALU_SBB, ALU_SUB, BASE_RIP, REG_AH,
} = insnModule;
const {
  CF, CS, ATTR, A_DB, DE, DF, GP, LIMIT, OF, RIP_HI, RIP_LO, RSP, RBP, SEG_STRIDE, SS, ST_FAULT, ST_OK, ARITH,
  SS_VEC, RAX, RDX, PF, ZF, SF, AF, PAGE_BYTES, PAGE_OFFSET_MASK,
} = constsModule;

// ============================================================================================
// Registers
// ============================================================================================

/** Reads register n at `size` bytes; for size 8 the high half is left in m.valueHi. */
export function getReg(m: Machine, n: number, size: number): number {
  const r = m.regs;
  switch (size) {
    case 8:
      m.valueHi = r[2 * n + 1]!;
      return r[2 * n]!;
    case 4:
      return r[2 * n]!;
    case 2:
      return r[2 * n]! & 0xffff;
    default:
      return n >= REG_AH ? (r[2 * (n - REG_AH)]! >> 8) & 0xff : r[2 * n]! & 0xff;
  }
}

/** Writes register n at `size` bytes (32-bit writes zero the high half; 8/16-bit writes merge). */
export function setReg(m: Machine, n: number, size: number, lo: number, hi: number): void {
  const r = m.regs;
  switch (size) {
    case 8:
      r[2 * n] = lo;
      r[2 * n + 1] = hi;
      return;
    case 4:
      r[2 * n] = lo;
      r[2 * n + 1] = 0;
      return;
    case 2:
      r[2 * n] = (r[2 * n]! & ~0xffff) | (lo & 0xffff);
      return;
    default:
      if (n >= REG_AH) {
        const k = 2 * (n - REG_AH);
        r[k] = (r[k]! & ~0xff00) | ((lo & 0xff) << 8);
      } else r[2 * n] = (r[2 * n]! & ~0xff) | (lo & 0xff);
  }
}

/** Mask of an operand size below 8 (values are kept masked). */
export function maskOf(size: number): number {
  return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
}

// ============================================================================================
// Effective addresses
// ============================================================================================

/** Offset (before segmentation) of the memory operand into m.eaLo/m.eaHi... kept on the module
 *  to avoid allocation. */
export let eaLo = 0;
export let eaHi = 0;

export function effectiveAddress(m: Machine, i: Insn): void {
  const r = m.regs;
  let lo = i.dispLo;
  let hi = i.dispHi;
  const base = i.base;
  if (base >= 0) {
    let blo: number, bhi: number;
    if (base === BASE_RIP) {
      blo = i.nextLo;
      bhi = i.nextHi;
    } else {
      blo = r[2 * base]!;
      bhi = r[2 * base + 1]!;
    }
    const s = (lo + blo) | 0;
    hi = (hi + bhi + ((s >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
    lo = s;
  }
  if (i.index >= 0) {
    let xlo = r[2 * i.index]!;
    let xhi = r[2 * i.index + 1]!;
    const sc = i.scale;
    if (sc !== 0) {
      xhi = (xhi << sc) | (xlo >>> (32 - sc));
      xlo = xlo << sc;
    }
    if (i.addressSize === 2) {
      // 16-bit addressing has no scale; index is SI/DI.
    }
    const s = (lo + xlo) | 0;
    hi = (hi + xhi + ((s >>> 0) < (lo >>> 0) ? 1 : 0)) | 0;
    lo = s;
  }
  if (i.addressSize === 4) hi = 0;
  else if (i.addressSize === 2) {
    lo &= 0xffff;
    hi = 0;
  }
  eaLo = lo;
  eaHi = hi;
}

// ============================================================================================
// Operand access
// ============================================================================================

/** Reads the r/m operand (register or memory). High half in m.valueHi for size 8. */
export function readRM(m: Machine, i: Insn, size: number): number {
  if (i.mod === 3) return getReg(m, i.rm, size);
  effectiveAddress(m, i);
  return readSegmented(m, i.seg, eaLo, eaHi, size, m.readClass);
}

/** Writes the r/m operand (plain write; not for read-modify-write). */
export function writeRM(m: Machine, i: Insn, size: number, lo: number, hi: number): boolean {
  if (i.mod === 3) {
    setReg(m, i.rm, size, lo, hi);
    return true;
  }
  effectiveAddress(m, i);
  return writeSegmented(m, i.seg, eaLo, eaHi, size, lo, hi, m.writeClass);
}

/** Prepares a read-modify-write of the memory operand (write intent) and returns its value. */
export function rmwRead(m: Machine, i: Insn, size: number): number {
  effectiveAddress(m, i);
  if (!toLinear(m, i.seg, eaLo, eaHi, size, true)) return 0;
  if (!prepareWrite(m, m.linearLo, m.linearHi, size, m.writeClass)) return 0;
  return readPrepared(m);
}

// ============================================================================================
// Stack
// ============================================================================================

/** Stack-pointer width: 8 in 64-bit mode, else 4 or 2 by SS.B. */
function stackWidth(m: Machine): number {
  return m.mode64 ? 8 : (m.segments[SS * SEG_STRIDE + ATTR]! & A_DB) !== 0 ? 4 : 2;
}

export let spLo = 0;
export let spHi = 0;

/** RSP + delta at the stack width into spLo/spHi. */
export function stackOffset(m: Machine, delta: number): void {
  const lo0 = m.regs[2 * RSP]!;
  const w = stackWidth(m);
  const lo = (lo0 + delta) | 0;
  if (w === 8) {
    const hi0 = m.regs[2 * RSP + 1]!;
    const carry = delta >= 0 ? ((lo >>> 0) < (lo0 >>> 0) ? 1 : 0) : ((lo >>> 0) > (lo0 >>> 0) ? -1 : 0);
    spLo = lo;
    spHi = (hi0 + carry) | 0;
  } else {
    spLo = w === 4 ? lo : lo & 0xffff;
    spHi = 0;
  }
}

/** Commits a new stack pointer computed by stackOffset. */
export function setStackPointer(m: Machine, lo: number, hi: number): void {
  const w = stackWidth(m);
  if (w === 8) {
    m.regs[2 * RSP] = lo;
    m.regs[2 * RSP + 1] = hi;
  } else if (w === 4) {
    m.regs[2 * RSP] = lo;
    m.regs[2 * RSP + 1] = 0;
  } else m.regs[2 * RSP] = (m.regs[2 * RSP]! & ~0xffff) | (lo & 0xffff);
}

/** Pushes `size` bytes; false on a fault (nothing changed). */
export function push(m: Machine, size: number, lo: number, hi: number): boolean {
  stackOffset(m, -size);
  const nlo = spLo, nhi = spHi;
  if (!writeSegmented(m, SS, nlo, nhi, size, lo, hi, m.writeClass)) return false;
  setStackPointer(m, nlo, nhi);
  return true;
}

/** Reads `size` bytes at RSP + offset (no RSP change); high half in m.valueHi. */
export function peek(m: Machine, offset: number, size: number): number {
  stackOffset(m, offset);
  return readSegmented(m, SS, spLo, spHi, size, m.readClass);
}

/** Slots read by readStackSlots: slot k at stackSlots[2k] (low) and [2k + 1] (high). */
export const stackSlots = new Int32Array(16);

/**
 * Reads `count` slots of `size` bytes at RSP (slot k at RSP + k·size) into stackSlots, stopping
 * at the first fault (m.faultVector). Same accesses and fault order as `count` peeks; when the whole
 * range is in one page (64-bit mode, no #AC checks) the page is translated once.
 */
export function readStackSlots(m: Machine, count: number, size: number): boolean {
  const lo = m.regs[2 * RSP]!, hi = m.regs[2 * RSP + 1]!;
  const bytes = count * size;
  if (m.mode64 && !m.alignmentCheck && (lo & PAGE_OFFSET_MASK) + bytes <= PAGE_BYTES && hi >> 15 === hi >> 31) {
    const base = translate(m, lo, hi, m.readClass);
    if (base < 0) return false;
    const o = base + (lo & PAGE_OFFSET_MASK);
    for (let k = 0; k < count; k++) {
      const a = o + k * size;
      if (size === 8) {
        stackSlots[2 * k] = m.poolView.getInt32(a, true);
        stackSlots[2 * k + 1] = m.poolView.getInt32(a + 4, true);
      } else {
        stackSlots[2 * k] = size === 4 ? m.poolView.getInt32(a, true) : m.poolView.getUint16(a, true);
        stackSlots[2 * k + 1] = 0;
      }
    }
    return true;
  }
  for (let k = 0; k < count; k++) {
    stackSlots[2 * k] = peek(m, k * size, size);
    if (m.faultVector >= 0) return false;
    stackSlots[2 * k + 1] = size === 8 ? m.valueHi : 0;
  }
  return true;
}

/** Adds to the stack pointer. */
export function adjustStack(m: Machine, delta: number): void {
  stackOffset(m, delta);
  setStackPointer(m, spLo, spHi);
}

// ============================================================================================
// Branch targets
// ============================================================================================

/** Checks a near-branch target (64-bit: canonical; compatibility mode: within CS.limit) and jumps.
 *  #GP(0) at the branch otherwise. */
export function jumpTo(m: Machine, lo: number, hi: number): boolean {
  if (m.mode64) {
    if (hi >> 15 !== hi >> 31) {
      m.raise(GP, 0);
      return false;
    }
  } else if (lo >>> 0 > m.segments[CS * SEG_STRIDE + LIMIT]! >>> 0) {
    m.raise(GP, 0);
    return false;
  }
  m.regs[RIP_LO] = lo;
  m.regs[RIP_HI] = hi;
  return true;
}

// ============================================================================================
// ALU
// ============================================================================================

/** High half of the last alu() result. */
export let aluResultHi = 0;

/** Computes a two-operand ALU operation (ADD..CMP) at `size` and records the flags. Operands for
 *  sizes below 8 are masked; the result is masked. Returns the low half (high in aluResultHi). */
export function alu(m: Machine, sub: number, size: number, al: number, ah: number, bl: number, bh: number): number {
  if (size !== 8) {
    const mask = maskOf(size);
    al &= mask;
    bl &= mask;
    ah = 0;
    bh = 0;
    let r: number;
    switch (sub) {
      case ALU_ADD:
        r = (al + bl) & mask;
        setLazy(m, LAZY_ADD, size, r, 0, al, 0, bl, 0);
        break;
      case ALU_ADC: {
        const c = carry(m);
        r = (al + bl + c) & mask;
        setLazy(m, LAZY_ADC, size, r, 0, al, 0, bl, 0);
        m.lazyCarry = c;
        break;
      }
      case ALU_SBB: {
        const c = carry(m);
        r = (al - bl - c) & mask;
        setLazy(m, LAZY_SBB, size, r, 0, al, 0, bl, 0);
        m.lazyCarry = c;
        break;
      }
      case ALU_SUB: case ALU_CMP:
        r = (al - bl) & mask;
        setLazy(m, LAZY_SUB, size, r, 0, al, 0, bl, 0);
        break;
      case ALU_AND:
        r = al & bl;
        setLazy(m, LAZY_LOGIC, size, r, 0, 0, 0, 0, 0);
        break;
      case ALU_OR:
        r = al | bl;
        setLazy(m, LAZY_LOGIC, size, r, 0, 0, 0, 0, 0);
        break;
      default:
        r = (al ^ bl) & mask;
        setLazy(m, LAZY_LOGIC, size, r, 0, 0, 0, 0, 0);
    }
    aluResultHi = 0;
    return r;
  }
  let rl: number, rh: number;
  switch (sub) {
    case ALU_ADD:
      rl = (al + bl) | 0;
      rh = (ah + bh + ((rl >>> 0) < (al >>> 0) ? 1 : 0)) | 0;
      setLazy(m, LAZY_ADD, 8, rl, rh, al, ah, bl, bh);
      break;
    case ALU_ADC: {
      const c = carry(m);
      rl = (al + bl + c) | 0;
      const cy = c !== 0 ? ((rl >>> 0) <= (al >>> 0) ? 1 : 0) : ((rl >>> 0) < (al >>> 0) ? 1 : 0);
      rh = (ah + bh + cy) | 0;
      setLazy(m, LAZY_ADC, 8, rl, rh, al, ah, bl, bh);
      m.lazyCarry = c;
      break;
    }
    case ALU_SBB: {
      const c = carry(m);
      rl = (al - bl - c) | 0;
      const bw = c !== 0 ? ((al >>> 0) <= (bl >>> 0) ? 1 : 0) : ((al >>> 0) < (bl >>> 0) ? 1 : 0);
      rh = (ah - bh - bw) | 0;
      setLazy(m, LAZY_SBB, 8, rl, rh, al, ah, bl, bh);
      m.lazyCarry = c;
      break;
    }
    case ALU_SUB: case ALU_CMP:
      rl = (al - bl) | 0;
      rh = (ah - bh - ((al >>> 0) < (bl >>> 0) ? 1 : 0)) | 0;
      setLazy(m, LAZY_SUB, 8, rl, rh, al, ah, bl, bh);
      break;
    case ALU_AND:
      rl = al & bl;
      rh = ah & bh;
      setLazy(m, LAZY_LOGIC, 8, rl, rh, 0, 0, 0, 0);
      break;
    case ALU_OR:
      rl = al | bl;
      rh = ah | bh;
      setLazy(m, LAZY_LOGIC, 8, rl, rh, 0, 0, 0, 0);
      break;
    default:
      rl = al ^ bl;
      rh = ah ^ bh;
      setLazy(m, LAZY_LOGIC, 8, rl, rh, 0, 0, 0, 0);
  }
  aluResultHi = rh;
  return rl;
}

/** Two-operand ALU with destination r/m and source (lo, hi). */
function aluToRM(m: Machine, i: Insn, bl: number, bh: number): number {
  const size = i.operandSize;
  if (i.mod === 3) {
    const al = getReg(m, i.rm, size);
    const ah = m.valueHi;
    const r = alu(m, i.sub, size, al, ah, bl, bh);
    if (i.sub !== ALU_CMP) setReg(m, i.rm, size, r, aluResultHi);
    return ST_OK;
  }
  if (i.sub === ALU_CMP) {
    const al = readRM(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
    alu(m, ALU_CMP, size, al, m.valueHi, bl, bh);
    return ST_OK;
  }
  const al = rmwRead(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const r = alu(m, i.sub, size, al, m.valueHi, bl, bh);
  commitWrite(m, r, aluResultHi);
  return ST_OK;
}

export function execAluRmR(m: Machine, i: Insn): number {
  const bl = getReg(m, i.reg, i.operandSize);
  return aluToRM(m, i, bl, m.valueHi);
}

export function execAluRmI(m: Machine, i: Insn): number {
  return aluToRM(m, i, i.immLo, i.immHi);
}

export function execAluRRm(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const bl = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const bh = m.valueHi;
  const al = getReg(m, i.reg, size);
  const r = alu(m, i.sub, size, al, m.valueHi, bl, bh);
  if (i.sub !== ALU_CMP) setReg(m, i.reg, size, r, aluResultHi);
  return ST_OK;
}

function testFlags(m: Machine, size: number, al: number, ah: number, bl: number, bh: number): void {
  if (size === 8) setLazy(m, LAZY_LOGIC, 8, al & bl, ah & bh, 0, 0, 0, 0);
  else setLazy(m, LAZY_LOGIC, size, al & bl & maskOf(size), 0, 0, 0, 0, 0);
}

export function execTestRmR(m: Machine, i: Insn): number {
  const a = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  const ah = m.valueHi;
  const b = getReg(m, i.reg, i.operandSize);
  testFlags(m, i.operandSize, a, ah, b, m.valueHi);
  return ST_OK;
}

export function execTestRmI(m: Machine, i: Insn): number {
  const a = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  testFlags(m, i.operandSize, a, m.valueHi, i.immLo, i.immHi);
  return ST_OK;
}

export function execIncDec(m: Machine, i: Insn, dec: boolean): number {
  const size = i.operandSize;
  let al: number, ah: number;
  const mem = i.mod !== 3;
  if (mem) {
    al = rmwRead(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
    ah = m.valueHi;
  } else {
    al = getReg(m, i.rm, size);
    ah = m.valueHi;
  }
  const c = carry(m);
  let rl: number, rh: number;
  if (size === 8) {
    if (dec) {
      rl = (al - 1) | 0;
      rh = al === 0 ? (ah - 1) | 0 : ah;
    } else {
      rl = (al + 1) | 0;
      rh = rl === 0 ? (ah + 1) | 0 : ah;
    }
    setLazy(m, dec ? LAZY_DEC : LAZY_INC, 8, rl, rh, al, ah, 1, 0);
  } else {
    const mask = maskOf(size);
    al &= mask;
    rl = (dec ? al - 1 : al + 1) & mask;
    rh = 0;
    setLazy(m, dec ? LAZY_DEC : LAZY_INC, size, rl, 0, al, 0, 1, 0);
  }
  m.lazyCarry = c;
  if (mem) commitWrite(m, rl, rh);
  else setReg(m, i.rm, size, rl, rh);
  return ST_OK;
}

export function execNegNot(m: Machine, i: Insn, neg: boolean): number {
  const size = i.operandSize;
  const mem = i.mod !== 3;
  let al: number, ah: number;
  if (mem) {
    al = rmwRead(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
    ah = m.valueHi;
  } else {
    al = getReg(m, i.rm, size);
    ah = m.valueHi;
  }
  let rl: number, rh: number;
  if (neg) {
    rl = alu(m, ALU_SUB, size, 0, 0, al, ah);
    rh = aluResultHi;
  } else if (size === 8) {
    rl = ~al;
    rh = ~ah;
  } else {
    rl = ~al & maskOf(size);
    rh = 0;
  }
  if (mem) commitWrite(m, rl, rh);
  else setReg(m, i.rm, size, rl, rh);
  return ST_OK;
}

// ============================================================================================
// Moves
// ============================================================================================

export function execMovRmR(m: Machine, i: Insn): number {
  const lo = getReg(m, i.reg, i.operandSize);
  if (!writeRM(m, i, i.operandSize, lo, m.valueHi)) return ST_FAULT;
  return ST_OK;
}

export function execMovRRm(m: Machine, i: Insn): number {
  const lo = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  setReg(m, i.reg, i.operandSize, lo, m.valueHi);
  return ST_OK;
}

export function execMovRmI(m: Machine, i: Insn): number {
  if (!writeRM(m, i, i.operandSize, i.immLo, i.immHi)) return ST_FAULT;
  return ST_OK;
}

export function execMovRI(m: Machine, i: Insn): number {
  setReg(m, i.reg, i.operandSize, i.immLo, i.immHi);
  return ST_OK;
}

export function execMovzxsx(m: Machine, i: Insn, signed: boolean): number {
  let v = readRM(m, i, i.sourceSize);
  if (m.faultVector >= 0) return ST_FAULT;
  if (signed) v = i.sourceSize === 1 ? (v << 24) >> 24 : i.sourceSize === 2 ? (v << 16) >> 16 : v;
  setReg(m, i.reg, i.operandSize, v, v >> 31);
  return ST_OK;
}

export function execLea(m: Machine, i: Insn): number {
  effectiveAddress(m, i);
  setReg(m, i.reg, i.operandSize, eaLo, eaHi);
  return ST_OK;
}

export function execXchg(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const bl = getReg(m, i.reg, size);
  const bh = m.valueHi;
  if (i.mod === 3) {
    const al = getReg(m, i.rm, size);
    const ah = m.valueHi;
    setReg(m, i.rm, size, bl, bh);
    setReg(m, i.reg, size, al, ah);
    return ST_OK;
  }
  const al = rmwRead(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const ah = m.valueHi;
  commitWrite(m, bl, bh);
  setReg(m, i.reg, size, al, ah);
  return ST_OK;
}

export function execCbw(m: Machine, i: Insn): number {
  const a = m.regs[2 * RAX]!;
  if (i.operandSize === 2) setReg(m, RAX, 2, (a << 24) >> 24, 0);
  else if (i.operandSize === 4) setReg(m, RAX, 4, (a << 16) >> 16, 0);
  else setReg(m, RAX, 8, a, a >> 31);
  return ST_OK;
}

export function execCwd(m: Machine, i: Insn): number {
  const r = m.regs;
  if (i.operandSize === 2) setReg(m, RDX, 2, (r[2 * RAX]! << 16) >> 31, 0);
  else if (i.operandSize === 4) setReg(m, RDX, 4, r[2 * RAX]! >> 31, 0);
  else {
    const s = r[2 * RAX + 1]! >> 31;
    setReg(m, RDX, 8, s, s);
  }
  return ST_OK;
}

// ============================================================================================
// Stack instructions
// ============================================================================================

export function execPushR(m: Machine, i: Insn): number {
  const lo = getReg(m, i.reg, i.operandSize);
  return push(m, i.operandSize, lo, m.valueHi) ? ST_OK : ST_FAULT;
}

export function execPushI(m: Machine, i: Insn): number {
  return push(m, i.operandSize, i.immLo, i.immHi) ? ST_OK : ST_FAULT;
}

export function execPushRm(m: Machine, i: Insn): number {
  const lo = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  return push(m, i.operandSize, lo, m.valueHi) ? ST_OK : ST_FAULT;
}

export function execPopR(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const lo = peek(m, 0, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = m.valueHi;
  adjustStack(m, size);
  setReg(m, i.reg, size, lo, hi);
  return ST_OK;
}

export function execPopRm(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const lo = peek(m, 0, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = m.valueHi;
  if (i.mod === 3) {
    adjustStack(m, size);
    setReg(m, i.rm, size, lo, hi);
    return ST_OK;
  }
  // The address is computed with RSP already incremented (SDM "POP").
  const oldLo = m.regs[2 * RSP]!, oldHi = m.regs[2 * RSP + 1]!;
  adjustStack(m, size);
  effectiveAddress(m, i);
  if (!writeSegmented(m, i.seg, eaLo, eaHi, size, lo, hi, m.writeClass)) {
    m.regs[2 * RSP] = oldLo;
    m.regs[2 * RSP + 1] = oldHi;
    return ST_FAULT;
  }
  return ST_OK;
}

/** LEAVE: RSP ← RBP (at the stack width), then pop RBP (BP with 66); a faulting pop changes
 *  nothing. */
export function execLeave(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const r = m.regs;
  const oldLo = r[2 * RSP]!, oldHi = r[2 * RSP + 1]!;
  setStackPointer(m, r[2 * RBP]!, r[2 * RBP + 1]!);
  const lo = peek(m, 0, size);
  if (m.faultVector >= 0) {
    r[2 * RSP] = oldLo;
    r[2 * RSP + 1] = oldHi;
    return ST_FAULT;
  }
  const hi = m.valueHi;
  adjustStack(m, size);
  setReg(m, RBP, size, lo, hi);
  return ST_OK;
}

// ============================================================================================
// Shifts and rotates
// ============================================================================================

/** High half of the last shl64/shr64/sar64 result (they return the low half). */
let shiftResultHi = 0;

function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    shiftResultHi = hi;
    return lo;
  }
  if (n < 32) {
    shiftResultHi = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  shiftResultHi = n === 32 ? lo : lo << (n - 32);
  return 0;
}

function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    shiftResultHi = hi;
    return lo;
  }
  if (n < 32) {
    shiftResultHi = hi >>> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  shiftResultHi = 0;
  return n === 32 ? hi : hi >>> (n - 32);
}

function sar64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    shiftResultHi = hi;
    return lo;
  }
  if (n < 32) {
    shiftResultHi = hi >> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  shiftResultHi = hi >> 31;
  return n === 32 ? hi : hi >> (n - 32);
}

/** Bit `n` of a 64-bit value (or of a value of `size` bytes). */
function bit64(lo: number, hi: number, n: number): number {
  return n < 32 ? (lo >>> n) & 1 : (hi >>> (n - 32)) & 1;
}

export function execShift(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const bits = size * 8;
  let count = i.operandForm === 0 ? i.immLo : i.operandForm === 1 ? 1 : m.regs[2 * 1]! & 0xff;
  count &= size === 8 ? 63 : 31;
  const mem = i.mod !== 3;
  let al: number, ah: number;
  if (mem) {
    al = rmwRead(m, i, size);
    if (m.faultVector >= 0) return ST_FAULT;
    ah = m.valueHi;
  } else {
    al = getReg(m, i.rm, size);
    ah = m.valueHi;
  }
  if (size !== 8) {
    al &= maskOf(size);
    ah = 0;
  }
  const op = i.sub;
  if (count === 0) {
    // No flags change, but the destination is still written (a 32-bit register is
    // zero-extended; memory is written back): docs/model-choices.md "Undefined flags".
    if (mem) commitWrite(m, al, ah);
    else setReg(m, i.rm, size, al, ah);
    return ST_OK;
  }
  let rl = 0, rh = 0;
  let cf = 0, of = 0;
  const msb = bits - 1;
  const flagsBefore = arithFlags(m);
  let rotate = false;
  switch (op) {
    case 0: case 1: case 2: case 3: {
      // Rotates: ROL, ROR, RCL, RCR.
      rotate = true;
      const n = op >= 2 ? (size === 1 ? count % 9 : size === 2 ? count % 17 : count) : count % bits;
      const cin = (flagsBefore & CF) !== 0 ? 1 : 0;
      rl = al;
      rh = ah;
      cf = cin;
      if (op === 0 || op === 1) {
        if (n === 0) {
          // Count is a multiple of the width: value unchanged, CF/OF still defined by the result.
          cf = op === 0 ? bit64(al, ah, 0) : bit64(al, ah, msb);
        } else if (op === 0) {
          rl = rolN(al, ah, n, bits);
          rh = shiftResultHi;
          cf = bit64(rl, rh, 0);
        } else {
          rl = rolN(al, ah, bits - n, bits);
          rh = shiftResultHi;
          cf = bit64(rl, rh, msb);
        }
        of = op === 0 ? bit64(rl, rh, msb) ^ cf : bit64(rl, rh, msb) ^ bit64(rl, rh, msb - 1);
      } else {
        // Through carry: rotate one bit at a time (count ≤ 64).
        for (let k = 0; k < n; k++) {
          if (op === 2) {
            const out = bit64(rl, rh, msb);
            rl = shl64(rl, rh, 1) | cf;
            rh = shiftResultHi;
            cf = out;
          } else {
            const out = rl & 1;
            rl = shr64(rl, rh, 1);
            rh = shiftResultHi;
            if (cf) {
              if (msb >= 32) rh |= 1 << (msb - 32);
              else rl |= 1 << msb;
            }
            cf = out;
          }
          if (size !== 8) {
            rl &= maskOf(size);
            rh = 0;
          }
        }
        of = op === 2 ? bit64(rl, rh, msb) ^ cf : bit64(rl, rh, msb) ^ bit64(rl, rh, msb - 1);
      }
      break;
    }
    case 4: case 6: // SHL/SAL
      cf = count <= bits ? bit64(al, ah, bits - count) : 0;
      rl = shl64(al, ah, count);
      rh = shiftResultHi;
      if (size !== 8) {
        rl &= maskOf(size);
        rh = 0;
      }
      of = bit64(rl, rh, msb) ^ cf;
      break;
    case 5: // SHR
      cf = bit64(al, ah, count - 1);
      rl = shr64(al, ah, count);
      rh = shiftResultHi;
      of = bit64(rl, rh, msb) ^ bit64(rl, rh, msb - 1);
      break;
    default: {
      // SAR: sign-extend the narrow value first.
      let sl = al, sh = ah;
      if (size === 4) sh = al >> 31;
      else if (size !== 8) {
        sl = (al << (32 - bits)) >> (32 - bits);
        sh = sl >> 31;
      }
      cf = bit64(sl, sh, Math.min(count - 1, 63));
      rl = sar64(sl, sh, count);
      rh = shiftResultHi;
      if (size !== 8) {
        rl &= maskOf(size);
        rh = 0;
      }
      of = 0;
    }
  }
  if (size !== 8) {
    rl &= maskOf(size);
    rh = 0;
  }
  let f: number;
  if (rotate) f = flagsBefore & ~(CF | OF);
  else {
    f = PARITY[rl & 0xff]!;
    if (size === 8 ? (rl | rh) === 0 : rl === 0) f |= ZF;
    if (bit64(rl, rh, msb)) f |= SF;
  }
  if (cf) f |= CF;
  if (of) f |= OF;
  if (mem) commitWrite(m, rl, rh);
  else setReg(m, i.rm, size, rl, rh);
  m.flags = (m.flags & ~ARITH) | f;
  m.lazyOp = 0;
  return ST_OK;
}

/** Rotate left by n (0 < n < bits) within a `bits`-wide value. */
function rolN(lo: number, hi: number, n: number, bits: number): number {
  if (bits === 64) {
    const al = shl64(lo, hi, n);
    const ah = shiftResultHi;
    const bl = shr64(lo, hi, 64 - n);
    const bh = shiftResultHi;
    shiftResultHi = ah | bh;
    return al | bl;
  }
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const v = lo & mask;
  shiftResultHi = 0;
  return ((v << n) | (v >>> (bits - n))) & mask;
}

// ============================================================================================
// Multiply and divide
// ============================================================================================

const product = new Int32Array(4);

/** Unsigned 64×64 → 128 into product[0..3] (little-endian 32-bit words). */
function umul64(al: number, ah: number, bl: number, bh: number): void {
  const a = [al & 0xffff, al >>> 16, ah & 0xffff, ah >>> 16];
  const b = [bl & 0xffff, bl >>> 16, bh & 0xffff, bh >>> 16];
  const out = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let x = 0; x < 4; x++) {
    let c = 0;
    for (let y = 0; y < 4; y++) {
      const t = a[x]! * b[y]! + out[x + y]! + c;
      out[x + y] = t & 0xffff;
      c = Math.floor(t / 65536);
    }
    out[x + 4] = c;
  }
  for (let k = 0; k < 4; k++) product[k] = out[2 * k]! | (out[2 * k + 1]! << 16);
}

function mulFlags(m: Machine, overflow: boolean, lowL: number, lowH: number, size: number): void {
  materialize(m);
  let f = PARITY[lowL & 0xff]!;
  const zero = size === 8 ? (lowL | lowH) === 0 : (lowL & maskOf(size)) === 0;
  if (zero) f |= ZF;
  const sign = size === 8 ? lowH < 0 : ((lowL >>> (size * 8 - 1)) & 1) === 1;
  if (sign) f |= SF;
  if (overflow) f |= CF | OF;
  m.flags = (m.flags & ~ARITH) | f;
}

/** MUL / IMUL with one operand: rDX:rAX ← rAX × r/m. */
export function execMul1(m: Machine, i: Insn, signed: boolean): number {
  const size = i.operandSize;
  let bl = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  let bh = m.valueHi;
  let al = getReg(m, RAX, size);
  let ah = m.valueHi;
  if (size === 8) {
    umul64(al, ah, bl, bh);
    let p2 = product[2]!, p3 = product[3]!;
    if (signed) {
      // Signed high half = unsigned high − (a<0 ? b : 0) − (b<0 ? a : 0).
      if (ah < 0) {
        const s = (p2 - bl) | 0;
        p3 = (p3 - bh - ((p2 >>> 0) < (bl >>> 0) ? 1 : 0)) | 0;
        p2 = s;
      }
      if (bh < 0) {
        const s = (p2 - al) | 0;
        p3 = (p3 - ah - ((p2 >>> 0) < (al >>> 0) ? 1 : 0)) | 0;
        p2 = s;
      }
    }
    const lo0 = product[0]!, lo1 = product[1]!;
    const overflow = signed ? !(p2 === lo1 >> 31 && p3 === lo1 >> 31) : (p2 | p3) !== 0;
    setReg(m, RAX, 8, lo0, lo1);
    setReg(m, RDX, 8, p2, p3);
    mulFlags(m, overflow, lo0, lo1, 8);
    return ST_OK;
  }
  const bits = size * 8;
  if (signed) {
    al = (al << (32 - bits)) >> (32 - bits);
    bl = (bl << (32 - bits)) >> (32 - bits);
  }
  ah = signed ? al >> 31 : 0;
  bh = signed ? bl >> 31 : 0;
  umul64(al, ah, bl, bh);
  const plo = product[0]!, phi = product[1]!;
  if (size === 1) {
    const v = plo & 0xffff;
    setReg(m, RAX, 2, v, 0);
    const overflow = signed ? ((v << 16) >> 16) !== ((v << 24) >> 24) : (v >>> 8) !== 0;
    mulFlags(m, overflow, v & 0xff, 0, 1);
  } else if (size === 2) {
    setReg(m, RAX, 2, plo & 0xffff, 0);
    setReg(m, RDX, 2, plo >>> 16, 0);
    const overflow = signed ? ((plo << 16) >> 16) !== plo : (plo >>> 16) !== 0;
    mulFlags(m, overflow, plo & 0xffff, 0, 2);
  } else {
    setReg(m, RAX, 4, plo, 0);
    setReg(m, RDX, 4, phi, 0);
    const overflow = signed ? phi !== plo >> 31 : phi !== 0;
    mulFlags(m, overflow, plo, 0, 4);
  }
  return ST_OK;
}

/** IMUL r, r/m and IMUL r, r/m, imm: truncated signed product. */
export function execImul(m: Machine, i: Insn, three: boolean): number {
  const size = i.operandSize;
  let bl = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  let bh = m.valueHi;
  let al: number, ah: number;
  if (three) {
    al = i.immLo;
    ah = i.immHi;
  } else {
    al = getReg(m, i.reg, size);
    ah = m.valueHi;
  }
  if (size !== 8) {
    const bits = size * 8;
    al = (al << (32 - bits)) >> (32 - bits);
    bl = (bl << (32 - bits)) >> (32 - bits);
    ah = al >> 31;
    bh = bl >> 31;
  }
  umul64(al, ah, bl, bh);
  let lo = product[0]!, hi = product[1]!;
  let overflow: boolean;
  if (size === 8) {
    let p2 = product[2]!, p3 = product[3]!;
    if (ah < 0) {
      const s = (p2 - bl) | 0;
      p3 = (p3 - bh - ((p2 >>> 0) < (bl >>> 0) ? 1 : 0)) | 0;
      p2 = s;
    }
    if (bh < 0) {
      const s = (p2 - al) | 0;
      p3 = (p3 - ah - ((p2 >>> 0) < (al >>> 0) ? 1 : 0)) | 0;
      p2 = s;
    }
    overflow = !(p2 === hi >> 31 && p3 === hi >> 31);
  } else if (size === 4) {
    overflow = hi !== lo >> 31;
    hi = 0;
  } else {
    const bits = size * 8;
    const t = (lo << (32 - bits)) >> (32 - bits);
    overflow = t !== lo;
    lo &= maskOf(size);
    hi = 0;
  }
  setReg(m, i.reg, size, lo, hi);
  mulFlags(m, overflow, lo, hi, size);
  return ST_OK;
}

/** DIV / IDIV: #DE on a zero divisor or a quotient that does not fit. Flags unchanged. */
export function execDiv(m: Machine, i: Insn, signed: boolean): number {
  const size = i.operandSize;
  const bl = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const bh = m.valueHi;
  const bits = BigInt(size * 8);
  const mask = (1n << bits) - 1n;
  const r = m.regs;
  const u64 = (lo: number, hi: number) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  let divisor = size === 8 ? u64(bl, bh) : BigInt((bl & maskOf(size)) >>> 0);
  let dividend: bigint;
  if (size === 1) dividend = BigInt(r[2 * RAX]! & 0xffff);
  else if (size === 2) dividend = (BigInt(r[2 * RDX]! & 0xffff) << 16n) | BigInt(r[2 * RAX]! & 0xffff);
  else if (size === 4) dividend = (BigInt(r[2 * RDX]! >>> 0) << 32n) | BigInt(r[2 * RAX]! >>> 0);
  else dividend = (u64(r[2 * RDX]!, r[2 * RDX + 1]!) << 64n) | u64(r[2 * RAX]!, r[2 * RAX + 1]!);
  if (divisor === 0n) {
    m.raise(DE, -1);
    return ST_FAULT;
  }
  let q: bigint, rem: bigint;
  if (signed) {
    divisor = BigInt.asIntN(Number(bits), divisor);
    dividend = BigInt.asIntN(Number(bits) * 2, dividend);
    q = dividend / divisor;
    rem = dividend % divisor;
    const max = (1n << (bits - 1n)) - 1n;
    if (q > max || q < -max - 1n) {
      m.raise(DE, -1);
      return ST_FAULT;
    }
  } else {
    q = dividend / divisor;
    rem = dividend % divisor;
    if (q > mask) {
      m.raise(DE, -1);
      return ST_FAULT;
    }
  }
  q &= mask;
  rem &= mask;
  const lo = (v: bigint) => Number(v & 0xffffffffn) | 0;
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn) | 0;
  if (size === 1) setReg(m, RAX, 2, Number(q) | (Number(rem) << 8), 0);
  else {
    setReg(m, RAX, size, lo(q), hi(q));
    setReg(m, RDX, size, lo(rem), hi(rem));
  }
  return ST_OK;
}

// ============================================================================================
// Bit tests
// ============================================================================================

export function execBt(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const bits = size * 8;
  const op = i.sub; // 0 BT, 1 BTS, 2 BTR, 3 BTC
  let bitIndex: number;
  let offLo = 0, offHi = 0; // byte displacement of the addressed operand (register bit offset on memory)
  if (i.operandForm === 1) bitIndex = i.immLo & (bits - 1);
  else {
    const vlo = getReg(m, i.reg, size);
    const vhi = m.valueHi;
    if (i.mod === 3) bitIndex = vlo & (bits - 1);
    else {
      // Signed bit offset: operand address += (offset >> log2(bits)) * size.
      let sl = vlo, sh = vhi;
      if (size === 2) {
        sl = (vlo << 16) >> 16;
        sh = sl >> 31;
      } else if (size === 4) sh = vlo >> 31;
      bitIndex = sl & (bits - 1);
      const shift = size === 2 ? 4 : size === 4 ? 5 : 6;
      // (sh:sl) >> shift (arithmetic), then × size (<< log2(size))
      let ql = (sl >>> shift) | (sh << (32 - shift));
      let qh = sh >> shift;
      const ls = size === 2 ? 1 : size === 4 ? 2 : 3;
      qh = (qh << ls) | (ql >>> (32 - ls));
      ql = ql << ls;
      offLo = ql;
      offHi = qh;
    }
  }
  let al: number, ah: number;
  const mem = i.mod !== 3;
  if (mem) {
    effectiveAddress(m, i);
    let lo = (eaLo + offLo) | 0;
    let hi = (eaHi + offHi + ((lo >>> 0) < (eaLo >>> 0) ? 1 : 0)) | 0;
    if (i.addressSize === 4) hi = 0;
    else if (i.addressSize === 2) {
      lo &= 0xffff;
      hi = 0;
    }
    if (op === 0) {
      al = readSegmented(m, i.seg, lo, hi, size, m.readClass);
      if (m.faultVector >= 0) return ST_FAULT;
      ah = m.valueHi;
    } else {
      if (!toLinear(m, i.seg, lo, hi, size, true)) return ST_FAULT;
      if (!prepareWrite(m, m.linearLo, m.linearHi, size, m.writeClass)) return ST_FAULT;
      al = readPrepared(m);
      ah = m.valueHi;
    }
  } else {
    al = getReg(m, i.rm, size);
    ah = m.valueHi;
  }
  const b = bit64(al, ah, bitIndex);
  materialize(m);
  m.flags = b ? m.flags | CF : m.flags & ~CF;
  if (op === 0) return ST_OK;
  let rl = al, rh = ah;
  const maskLo = bitIndex < 32 ? 1 << bitIndex : 0;
  const maskHi = bitIndex >= 32 ? 1 << (bitIndex - 32) : 0;
  if (op === 1) {
    rl |= maskLo;
    rh |= maskHi;
  } else if (op === 2) {
    rl &= ~maskLo;
    rh &= ~maskHi;
  } else {
    rl ^= maskLo;
    rh ^= maskHi;
  }
  if (mem) commitWrite(m, rl, rh);
  else setReg(m, i.rm, size, rl, rh);
  return ST_OK;
}

// ============================================================================================
// Near control flow
// ============================================================================================

export function execJmp(m: Machine, i: Insn): number {
  return jumpTo(m, i.targetLo, i.targetHi) ? ST_OK : ST_FAULT;
}

export function execJcc(m: Machine, i: Insn): number {
  if (!condition(m, i.sub)) return ST_OK;
  return jumpTo(m, i.targetLo, i.targetHi) ? ST_OK : ST_FAULT;
}

/** Target checks first, then the push (SDM "CALL": #GP before any stack write). */
function callTo(m: Machine, i: Insn, lo: number, hi: number): number {
  const size = i.operandSize;
  const oldLo = m.regs[RIP_LO]!, oldHi = m.regs[RIP_HI]!;
  if (!jumpTo(m, lo, hi)) return ST_FAULT;
  stackOffset(m, -size);
  const nlo = spLo, nhi = spHi;
  if (!writeSegmented(m, SS, nlo, nhi, size, i.nextLo, i.nextHi, m.writeClass)) {
    m.regs[RIP_LO] = oldLo;
    m.regs[RIP_HI] = oldHi;
    return ST_FAULT;
  }
  setStackPointer(m, nlo, nhi);
  return ST_OK;
}

export function execCall(m: Machine, i: Insn): number {
  return callTo(m, i, i.targetLo, i.targetHi);
}

export function execCallRm(m: Machine, i: Insn): number {
  let lo = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  let hi = i.operandSize === 8 ? m.valueHi : 0;
  if (i.operandSize === 2) lo &= 0xffff;
  return callTo(m, i, lo, hi);
}

export function execJmpRm(m: Machine, i: Insn): number {
  let lo = readRM(m, i, i.operandSize);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = i.operandSize === 8 ? m.valueHi : 0;
  if (i.operandSize === 2) lo &= 0xffff;
  return jumpTo(m, lo, hi) ? ST_OK : ST_FAULT;
}

export function execRet(m: Machine, i: Insn): number {
  const size = i.operandSize;
  let lo = peek(m, 0, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = size === 8 ? m.valueHi : 0;
  if (size === 2) lo &= 0xffff;
  if (!jumpTo(m, lo, hi)) return ST_FAULT;
  adjustStack(m, size + i.immLo);
  return ST_OK;
}

// ============================================================================================
// Flag instructions
// ============================================================================================

export function execFlagOp(m: Machine, which: "clc" | "stc" | "cmc" | "cld" | "std"): number {
  materialize(m);
  switch (which) {
    case "clc":
      m.flags &= ~CF;
      break;
    case "stc":
      m.flags |= CF;
      break;
    case "cmc":
      m.flags ^= CF;
      break;
    case "cld":
      m.flags &= ~DF;
      break;
    default:
      m.flags |= DF;
  }
  return ST_OK;
}

export { SS_VEC, PF, AF, OF };
