// Arithmetic status flags (SDM Vol. 1 §3.4.3.1 and Appendix A "EFLAGS Cross-Reference"): how CF, PF,
// AF, ZF, SF and OF follow from an operation's operands and result, at each operand size.
import type { OperandSize } from "../decode/instruction.ts";
import { RFLAGS, sizeMask } from "../machine/registers.ts";

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

const BIT: Readonly<Record<keyof StatusFlags, bigint>> = {
  cf: RFLAGS.CF, pf: RFLAGS.PF, af: RFLAGS.AF, zf: RFLAGS.ZF, sf: RFLAGS.SF, of: RFLAGS.OF,
};

/** RFLAGS with the given status flags written and every other bit kept. */
export function withStatus(rflags: bigint, flags: Partial<StatusFlags>): bigint {
  let r = rflags;
  for (const [name, value] of Object.entries(flags) as [keyof StatusFlags, boolean | undefined][]) {
    if (value === undefined) continue;
    r = value ? r | BIT[name] : r & ~BIT[name];
  }
  return r;
}

export function flag(rflags: bigint, bit: bigint): boolean {
  return (rflags & bit) !== 0n;
}

export function bits(size: OperandSize): bigint {
  return BigInt(8 * size);
}

/** Most significant bit of `value` at `size`. */
export function msb(value: bigint, size: OperandSize): boolean {
  return ((value >> (bits(size) - 1n)) & 1n) === 1n;
}

/** PF: set when the low byte of the result has an even number of 1 bits. */
export function parity(value: bigint): boolean {
  let v = Number(value & 0xffn);
  v ^= v >> 4;
  v ^= v >> 2;
  v ^= v >> 1;
  return (v & 1) === 0;
}

/** SF, ZF, PF of a result (already masked to `size`). */
export function resultFlags(result: bigint, size: OperandSize): Pick<StatusFlags, "sf" | "zf" | "pf"> {
  return { sf: msb(result, size), zf: result === 0n, pf: parity(result) };
}

export interface ArithResult {
  readonly result: bigint;
  readonly flags: StatusFlags;
}

/** ADD/ADC (carryIn = CF): CF = unsigned carry out, OF = signed overflow, AF = carry out of bit 3. */
export function addWithCarry(a: bigint, b: bigint, carryIn: boolean, size: OperandSize): ArithResult {
  const mask = sizeMask(size);
  const full = (a & mask) + (b & mask) + (carryIn ? 1n : 0n);
  const result = full & mask;
  return {
    result,
    flags: {
      cf: full > mask,
      af: ((a ^ b ^ result) & 0x10n) !== 0n,
      // Overflow: both operands have the same sign and the result's sign differs.
      of: msb(~(a ^ b) & (a ^ result), size),
      ...resultFlags(result, size),
    },
  };
}

/** SUB/SBB/CMP/NEG (borrowIn = CF): CF = unsigned borrow, OF = signed overflow, AF = borrow from bit 4. */
export function subWithBorrow(a: bigint, b: bigint, borrowIn: boolean, size: OperandSize): ArithResult {
  const mask = sizeMask(size);
  const full = (a & mask) - (b & mask) - (borrowIn ? 1n : 0n);
  const result = full & mask;
  return {
    result,
    flags: {
      cf: full < 0n,
      af: ((a ^ b ^ result) & 0x10n) !== 0n,
      // Overflow: the operands' signs differ and the result's sign differs from the minuend's.
      of: msb((a ^ b) & (a ^ result), size),
      ...resultFlags(result, size),
    },
  };
}

/** AND/OR/XOR/TEST: OF = CF = 0; AF is undefined and cleared (undefined-flags.ts). */
export function logicFlags(result: bigint, size: OperandSize): StatusFlags {
  return { cf: false, of: false, af: false, ...resultFlags(result, size) };
}
