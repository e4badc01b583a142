// ROL, ROR, RCL, RCR, SHL/SAL, SHR, SAR — SDM Vol. 2B "RCL/RCR/ROL/ROR" and "SAL/SAR/SHL/SHR".
// The count is masked to 5 bits (6 with a 64-bit operand); a masked count of 0 changes no flag.
// OF is defined only for a count of 1: for other counts the model evaluates a count-1 formula on
// the final values (undefined-flags.ts); AF is undefined for shifts and cleared.
import type { Instruction, OperandSize } from "../decode/instruction.ts";
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { RFLAGS, sizeMask } from "../machine/registers.ts";
import { bits, flag, msb, resultFlags, type StatusFlags } from "./flags.ts";
import { operand, readDestination, setStatus, sizeOf } from "./operands.ts";

export type ShiftMnemonic = "rol" | "ror" | "rcl" | "rcr" | "shl" | "shr" | "sar";

interface Shifted {
  readonly result: bigint;
  readonly flags: Partial<StatusFlags>;
}

/** The masked count, as the SDM's `COUNT & COUNTMASK`. */
export function maskedCount(count: bigint, size: OperandSize): bigint {
  return count & (size === 8 ? 0x3fn : 0x1fn);
}

/** The shift/rotate of `dest` by a non-zero masked `count` with carry-in `cf`. */
export function shift(mnemonic: ShiftMnemonic, dest: bigint, count: bigint, cf: boolean, size: OperandSize): Shifted {
  const n = bits(size);
  const mask = sizeMask(size);
  const bit = (v: bigint, i: bigint) => i >= 0n && ((v >> i) & 1n) === 1n;
  switch (mnemonic) {
    case "shl": {
      const full = dest << count;
      const result = full & mask;
      // CF = last bit shifted out (0 once the count reaches past the operand).
      const carry = bit(full, n);
      return { result, flags: resultFlags(result, size, { cf: carry, af: false, of: msb(result, size) !== carry }) };
    }
    case "shr": {
      const result = dest >> count;
      // OF = MSB(result) XOR bit width−2 of result: the original MSB for a count of 1, 0 beyond.
      const of = msb(result, size) !== bit(result, n - 2n);
      return { result, flags: resultFlags(result, size, { cf: bit(dest, count - 1n), af: false, of }) };
    }
    case "sar": {
      const signed = BigInt.asIntN(Number(n), dest);
      const result = (signed >> count) & mask;
      return { result, flags: resultFlags(result, size, { cf: ((signed >> (count - 1n)) & 1n) === 1n, af: false, of: false }) };
    }
    case "rol": {
      const r = count % n;
      const result = ((dest << r) | (dest >> (n - r))) & mask;
      const carry = (result & 1n) === 1n;
      return { result, flags: { cf: carry, of: msb(result, size) !== carry } };
    }
    case "ror": {
      const r = count % n;
      const result = ((dest >> r) | (dest << (n - r))) & mask;
      return { result, flags: { cf: msb(result, size), of: msb(result, size) !== bit(result, n - 2n) } };
    }
    case "rcl":
    case "rcr": {
      // Rotate the (size + 1)-bit quantity CF:dest; 8- and 16-bit counts are taken modulo 9 / 17.
      const width = n + 1n;
      const r = count % width;
      const wide = (cf ? 1n << n : 0n) | dest;
      const wmask = (1n << width) - 1n;
      const rotated = mnemonic === "rcl"
        ? ((wide << r) | (wide >> (width - r))) & wmask
        : ((wide >> r) | (wide << (width - r))) & wmask;
      const result = rotated & mask;
      const carry = bit(rotated, n);
      // RCL: OF = MSB(result) XOR CF; RCR: OF = MSB XOR MSB−1 of the result (for a count of 1
      // this equals the SDM's pre-rotation MSB(DEST) XOR CF).
      const of = mnemonic === "rcl" ? msb(result, size) !== carry : msb(result, size) !== bit(result, n - 2n);
      return { result, flags: { cf: carry, of } };
    }
  }
}

function semantics(mnemonic: ShiftMnemonic): Semantics {
  return (t, insn: Instruction) => {
    const next = t.rip;
    const dst = operand(insn, 0);
    const a = readDestination(t, dst, next);
    if (isFault(a)) return a;
    // D0/D1 (by 1) have no count operand; C0/C1 an imm8; D2/D3 CL.
    const countOp = insn.operands[1];
    const rawCount = countOp === undefined ? 1n : t.read(countOp, next);
    if (isFault(rawCount)) return rawCount;
    const size = sizeOf(dst, insn);
    const count = maskedCount(rawCount, size);
    if (count === 0n) {
      // SHIFT-02: no flag changes; the destination is still written (a 32-bit register
      // destination is zero-extended, as every 32-bit operation is).
      return t.write(dst, a, next, "SHIFT-02");
    }
    const { result, flags } = shift(mnemonic, a, count, flag(t.rflags, RFLAGS.CF), size);
    const f = t.write(dst, result, next);
    if (isFault(f)) return f;
    setStatus(t, mnemonic.startsWith("r") ? "SHIFT-03" : "SHIFT-01", flags);
    return undefined;
  };
}

export const rol = semantics("rol");
export const ror = semantics("ror");
export const rcl = semantics("rcl");
export const rcr = semantics("rcr");
export const shl = semantics("shl");
export const shr = semantics("shr");
export const sar = semantics("sar");
