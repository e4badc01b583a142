// Arithmetic status flags (SDM Vol. 1 §3.4.3.1 and Appendix A "EFLAGS Cross-Reference"): how CF, PF,
// AF, ZF, SF and OF follow from an operation's operands and result, at each operand size.
//
// Operands and results are `size`-byte unsigned values (0 ≤ v < 2^(8·size)), as the transaction
// reads them, so a sign is a comparison with the sign bit and a carry a comparison with the mask:
// no BigInt is built for them. Every flag record lists its fields in RFLAGS bit order (cf, pf, af,
// zf, sf, of), so records of all six flags share one object shape.
import type { OperandSize } from "../decode/instruction.ts";
import { RFLAGS, split64, splitHigh, splitLow } from "../machine/registers.ts";

/** The six status flags as booleans; a field left out is not written (the instruction does not
 *  affect it, or the model leaves an undefined flag unchanged — see undefined-flags.ts). */
export interface StatusFlags {
  readonly cf: boolean;
  readonly pf: boolean;
  readonly af: boolean;
  readonly zf: boolean;
  readonly sf: boolean;
  readonly of: boolean;
}

export const STATUS_MASK = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;

// The status flags lie in RFLAGS[11:0]: composed as a number, converted once.
const CF = Number(RFLAGS.CF), PF = Number(RFLAGS.PF), AF = Number(RFLAGS.AF);
const ZF = Number(RFLAGS.ZF), SF = Number(RFLAGS.SF), OF = Number(RFLAGS.OF);
const ALL_STATUS = CF | PF | AF | ZF | SF | OF;
const NOT_STATUS = ~STATUS_MASK;

/** RFLAGS with the given status flags written and every other bit kept. */
export function withStatus(rflags: bigint, flags: Partial<StatusFlags>): bigint {
  let written = 0, set = 0;
  if (flags.cf !== undefined) { written |= CF; if (flags.cf) set |= CF; }
  if (flags.pf !== undefined) { written |= PF; if (flags.pf) set |= PF; }
  if (flags.af !== undefined) { written |= AF; if (flags.af) set |= AF; }
  if (flags.zf !== undefined) { written |= ZF; if (flags.zf) set |= ZF; }
  if (flags.sf !== undefined) { written |= SF; if (flags.sf) set |= SF; }
  if (flags.of !== undefined) { written |= OF; if (flags.of) set |= OF; }
  // In 32-bit Numbers when RFLAGS fits (every RFLAGS the model makes: its defined bits end at
  // bit 21): split without a BigInt-to-Number conversion, one BigInt made, for the result.
  split64(rflags);
  if (rflags >= 0n && splitHigh() === 0) return BigInt(((splitLow() & ~written) | set) >>> 0);
  const kept = written === ALL_STATUS ? NOT_STATUS : ~BigInt(written);
  return (rflags & kept) | BigInt(set);
}

export function flag(rflags: bigint, bit: bigint): boolean {
  return (rflags & bit) !== 0n;
}

export function bits(size: OperandSize): bigint {
  return BigInt(8 * size);
}

/** The sign bit (most significant bit) of a `size`-byte value. */
export function signBit(size: OperandSize): bigint {
  switch (size) {
    case 1: return 0x80n;
    case 2: return 0x8000n;
    case 4: return 0x8000_0000n;
    case 8: return 0x8000_0000_0000_0000n;
  }
}

/** `value` modulo 2^(8·size): the low `size` bytes (BigInt.asUintN with a constant width, which V8
 *  computes without allocating an intermediate BigInt, where `& mask` allocates). */
export function truncate(value: bigint, size: OperandSize): bigint {
  switch (size) {
    case 1: return BigInt.asUintN(8, value);
    case 2: return BigInt.asUintN(16, value);
    case 4: return BigInt.asUintN(32, value);
    case 8: return BigInt.asUintN(64, value);
  }
}

/** Most significant bit of `value` at `size` (any bigint, read as two's complement). */
export function msb(value: bigint, size: OperandSize): boolean {
  return (value & signBit(size)) !== 0n;
}

/** The sign of a `size`-byte value (0 ≤ value < 2^(8·size)): its most significant bit. */
export function negative(value: bigint, size: OperandSize): boolean {
  return value >= signBit(size);
}

/** The low byte of a value (two's complement for a negative one), split from it without a
 *  BigInt-to-Number conversion (registers.ts `split64`). */
function lowByte(value: bigint): number {
  split64(value);
  return splitLow() & 0xff;
}

/** PF: set when the low byte of the result has an even number of 1 bits. */
export function parity(value: bigint): boolean {
  let v = lowByte(value);
  v ^= v >> 4;
  v ^= v >> 2;
  v ^= v >> 1;
  return (v & 1) === 0;
}

/** AF: bit 4 of a ^ b ^ result — the carry into (or borrow from) bit 4 of an addition (subtraction). */
function auxiliaryCarry(a: bigint, b: bigint, result: bigint): boolean {
  return ((lowByte(a) ^ lowByte(b) ^ lowByte(result)) & 0x10) !== 0;
}

export interface ArithResult {
  readonly result: bigint;
  readonly flags: StatusFlags;
}

/** ADD/ADC (carryIn = CF) of two `size`-byte values: CF = unsigned carry out, OF = signed overflow,
 *  AF = carry out of bit 3. */
export function addWithCarry(a: bigint, b: bigint, carryIn: boolean, size: OperandSize): ArithResult {
  const full = carryIn ? a + b + 1n : a + b;
  const result = truncate(full, size);
  const signA = negative(a, size), signB = negative(b, size), signR = negative(result, size);
  return {
    result,
    flags: {
      // Carry: the full sum does not fit in `size` bytes.
      cf: full !== result,
      pf: parity(result),
      af: auxiliaryCarry(a, b, result),
      zf: result === 0n,
      sf: signR,
      // Overflow: both operands have the same sign and the result's sign differs.
      of: signA === signB && signR !== signA,
    },
  };
}

/** SUB/SBB/CMP/NEG (borrowIn = CF) of two `size`-byte values: CF = unsigned borrow, OF = signed
 *  overflow, AF = borrow from bit 4. */
export function subWithBorrow(a: bigint, b: bigint, borrowIn: boolean, size: OperandSize): ArithResult {
  const full = borrowIn ? a - b - 1n : a - b;
  const result = truncate(full, size);
  const signA = negative(a, size), signB = negative(b, size), signR = negative(result, size);
  return {
    result,
    flags: {
      cf: full < 0n,
      pf: parity(result),
      af: auxiliaryCarry(a, b, result),
      zf: result === 0n,
      sf: signR,
      // Overflow: the operands' signs differ and the result's sign differs from the minuend's.
      of: signA !== signB && signR !== signA,
    },
  };
}

/** AND/OR/XOR/TEST of a `size`-byte result: OF = CF = 0; AF is undefined and cleared
 *  (undefined-flags.ts). */
export function logicFlags(result: bigint, size: OperandSize): StatusFlags {
  return { cf: false, pf: parity(result), af: false, zf: result === 0n, sf: negative(result, size), of: false };
}

/** All six flags: SF, ZF and PF from a `size`-byte result, CF, AF and OF as the instruction defines
 *  them (one record shape for every instruction that writes all six). */
export function resultFlags(result: bigint, size: OperandSize, given: { readonly cf: boolean; readonly af: boolean; readonly of: boolean }): StatusFlags {
  return { cf: given.cf, pf: parity(result), af: given.af, zf: result === 0n, sf: negative(result, size), of: given.of };
}
