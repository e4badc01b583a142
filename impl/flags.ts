// Lazy arithmetic flags. Flag-setting instructions record the operation, its operand size, its
// DEST and SRC operands and its result in Machine.lazyOp/lazySize/lazyDest*/lazySrc*/lazyResult*
// (and lazyCarry); CF PF AF ZF SF OF are computed only when read. When `lazyOp` is LAZY_NONE the
// arithmetic bits of Machine.flags are authoritative.
//
// Undefined-flag choices (SDM leaves them open; both engines must agree — listed for
// docs/model-choices.md): logic ops AF = 0; MUL/IMUL SF ZF PF from the low half of the result,
// AF = 0; DIV/IDIV and BT* leave the undefined flags unchanged; shifts by more than 1: OF as for a
// count of 1 (SHL: MSB(result) XOR CF; SHR: bit (n−1) XOR bit (n−2) of the result; SAR: 0), AF = 0;
// rotates by more than 1: OF as for a count of 1.
import type { Machine } from "./machine.ts";
import * as constsModule from "./consts.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  AF, ARITH, CF, OF, PF, SF, ZF,
} = constsModule;

export const LAZY_NONE = 0, LAZY_ADD = 1, LAZY_ADC = 2, LAZY_SUB = 3, LAZY_SBB = 4, LAZY_LOGIC = 5,
  LAZY_INC = 6, LAZY_DEC = 7;

/** PF bit for each low-byte value (set when the number of 1 bits is even). */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i;
  let n = 0;
  while (b !== 0) {
    n += b & 1;
    b >>= 1;
  }
  PARITY[i] = n % 2 === 0 ? PF : 0;
}

/** Unsigned a < b on 64-bit halves. */
function ult64(ah: number, al: number, bh: number, bl: number): boolean {
  return ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0);
}

/** The six arithmetic flag bits as they stand. */
export function arithFlags(m: Machine): number {
  const op = m.lazyOp;
  if (op === LAZY_NONE) return m.flags & ARITH;
  const sz = m.lazySize;
  const rl = m.lazyResultLo, al = m.lazyDestLo, bl = m.lazySrcLo;
  let out = PARITY[rl & 0xff]!;
  let cf = false;
  let of = false;
  let af = ((al ^ bl ^ rl) & 0x10) !== 0;
  if (sz === 8) {
    const rh = m.lazyResultHi, ah = m.lazyDestHi, bh = m.lazySrcHi;
    if ((rl | rh) === 0) out |= ZF;
    if (rh < 0) out |= SF;
    switch (op) {
      case LAZY_ADD:
        cf = ult64(rh, rl, ah, al);
        of = ((ah ^ rh) & (bh ^ rh)) < 0;
        break;
      case LAZY_ADC:
        cf = m.lazyCarry !== 0 ? !ult64(ah, al, rh, rl) : ult64(rh, rl, ah, al);
        of = ((ah ^ rh) & (bh ^ rh)) < 0;
        break;
      case LAZY_SUB:
        cf = ult64(ah, al, bh, bl);
        of = ((ah ^ bh) & (ah ^ rh)) < 0;
        break;
      case LAZY_SBB:
        cf = m.lazyCarry !== 0 ? !ult64(bh, bl, ah, al) : ult64(ah, al, bh, bl);
        of = ((ah ^ bh) & (ah ^ rh)) < 0;
        break;
      case LAZY_LOGIC:
        af = false;
        break;
      case LAZY_INC:
        cf = m.lazyCarry !== 0;
        of = ((ah ^ rh) & (bh ^ rh)) < 0;
        break;
      case LAZY_DEC:
        cf = m.lazyCarry !== 0;
        of = ((ah ^ bh) & (ah ^ rh)) < 0;
        break;
    }
  } else {
    const shift = 32 - 8 * sz;
    // Values are kept masked to the operand size; shift the sign bit to bit 31.
    if (((rl << shift) | 0) === 0) out |= ZF;
    if ((rl << shift) < 0) out |= SF;
    const a = (al << shift) >>> 0, b = (bl << shift) >>> 0, r = (rl << shift) >>> 0;
    switch (op) {
      case LAZY_ADD:
        cf = r < a;
        of = ((a ^ r) & (b ^ r)) < 0;
        break;
      case LAZY_ADC:
        cf = m.lazyCarry !== 0 ? r <= a : r < a;
        of = ((a ^ r) & (b ^ r)) < 0;
        break;
      case LAZY_SUB:
        cf = a < b;
        of = ((a ^ b) & (a ^ r)) < 0;
        break;
      case LAZY_SBB:
        cf = m.lazyCarry !== 0 ? a <= b : a < b;
        of = ((a ^ b) & (a ^ r)) < 0;
        break;
      case LAZY_LOGIC:
        af = false;
        break;
      case LAZY_INC:
        cf = m.lazyCarry !== 0;
        of = ((a ^ r) & (b ^ r)) < 0;
        break;
      case LAZY_DEC:
        cf = m.lazyCarry !== 0;
        of = ((a ^ b) & (a ^ r)) < 0;
        break;
    }
  }
  if (cf) out |= CF;
  if (of) out |= OF;
  if (af) out |= AF;
  return out;
}

/** Full RFLAGS (low 32 bits; bits 63:22 are always 0). */
export function getFlags(m: Machine): number {
  return (m.flags & ~ARITH) | arithFlags(m);
}

/** Writes the arithmetic flags into Machine.flags and drops the lazy record. */
export function materialize(m: Machine): void {
  if (m.lazyOp !== LAZY_NONE) {
    m.flags = (m.flags & ~ARITH) | arithFlags(m);
    m.lazyOp = LAZY_NONE;
  }
}

/** Replaces RFLAGS (callers have already applied privilege rules); bit 1 forced. */
export function setFlags(m: Machine, value: number): void {
  m.flags = value | 2;
  m.lazyOp = LAZY_NONE;
}

/** Current CF as 0/1. */
export function carry(m: Machine): number {
  return (arithFlags(m) & CF) !== 0 ? 1 : 0;
}

/** Condition code tttn (SDM Vol. 1 Appendix B): 0 O, 1 NO, 2 B, 3 AE, 4 E, 5 NE, 6 BE, 7 A, 8 S,
 *  9 NS, 10 P, 11 NP, 12 L, 13 GE, 14 LE, 15 G. */
export function condition(m: Machine, cc: number): boolean {
  const f = arithFlags(m);
  let r: boolean;
  switch (cc >> 1) {
    case 0:
      r = (f & OF) !== 0;
      break;
    case 1:
      r = (f & CF) !== 0;
      break;
    case 2:
      r = (f & ZF) !== 0;
      break;
    case 3:
      r = (f & (CF | ZF)) !== 0;
      break;
    case 4:
      r = (f & SF) !== 0;
      break;
    case 5:
      r = (f & PF) !== 0;
      break;
    case 6:
      r = ((f & SF) !== 0) !== ((f & OF) !== 0);
      break;
    default:
      r = (f & ZF) !== 0 || ((f & SF) !== 0) !== ((f & OF) !== 0);
  }
  return (cc & 1) !== 0 ? !r : r;
}

/** Records a flag-setting operation (size in bytes; values masked to the size for sizes < 8). */
export function setLazy(m: Machine, op: number, sz: number, rl: number, rh: number, al: number, ah: number,
  bl: number, bh: number): void {
  m.lazyOp = op;
  m.lazySize = sz;
  m.lazyResultLo = rl;
  m.lazyResultHi = rh;
  m.lazyDestLo = al;
  m.lazyDestHi = ah;
  m.lazySrcLo = bl;
  m.lazySrcHi = bh;
}
