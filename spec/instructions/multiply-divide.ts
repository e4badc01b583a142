// MUL, IMUL (one-, two- and three-operand forms), DIV, IDIV — SDM Vol. 2A/2B instruction pages.
// One-operand forms use AL/AX:… implicitly: 8-bit results go to AX (AL quotient, AH remainder for
// DIV); wider ones to rDX:rAX.
import type { Instruction, OperandSize } from "../decode/instruction.ts";
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { RAX, RDX, sizeMask } from "../machine/registers.ts";
import { bits, resultFlags, type StatusFlags } from "./flags.ts";
import { operand, setStatus, sizeOf } from "./operands.ts";

/** CF = OF = `overflow`; SF, ZF, PF (undefined) follow the low half of the product — the result
 *  written to the destination or rAX — and AF (undefined) is cleared (undefined-flags.ts). */
function multiplyFlags(low: bigint, size: OperandSize, overflow: boolean): StatusFlags {
  return resultFlags(low, size, { cf: overflow, af: false, of: overflow });
}

/** Writes a double-width value to AX (8-bit) or rDX:rAX. */
function writeDouble(t: Transaction, size: OperandSize, high: bigint, low: bigint): void {
  if (size === 1) {
    t.writeReg(RAX, 2, (high << 8n) | low);
  } else {
    t.writeReg(RAX, size, low);
    t.writeReg(RDX, size, high);
  }
}

/** MUL r/m: unsigned rAX × src; CF = OF = upper half ≠ 0. */
export const mul: Semantics = (t, insn) => {
  const src = operand(insn, 0);
  const b = t.read(src, t.rip);
  if (isFault(b)) return b;
  const size = sizeOf(src, insn);
  const product = t.readReg(RAX, size) * b;
  const low = product & sizeMask(size);
  const high = product >> bits(size);
  writeDouble(t, size, high, low);
  setStatus(t, "MUL-01", multiplyFlags(low, size, high !== 0n));
  return undefined;
};

const signed = (v: bigint, size: OperandSize) => BigInt.asIntN(8 * size, v);

/** IMUL: signed product; CF = OF = the product does not fit the destination (sign-extended low half
 *  differs from the full product). */
export const imul: Semantics = (t, insn: Instruction) => {
  const next = t.rip;
  if (insn.operands.length === 1) {
    const src = operand(insn, 0);
    const b = t.read(src, next);
    if (isFault(b)) return b;
    const size = sizeOf(src, insn);
    const product = signed(t.readReg(RAX, size), size) * signed(b, size);
    const low = product & sizeMask(size);
    const high = (product >> bits(size)) & sizeMask(size);
    writeDouble(t, size, high, low);
    setStatus(t, "MUL-02", multiplyFlags(low, size, signed(low, size) !== product));
    return undefined;
  }
  // Two-operand: dest ← dest × src; three-operand: dest ← src × imm.
  const dst = operand(insn, 0);
  const size = sizeOf(dst, insn);
  const three = insn.operands.length === 3;
  const a = t.read(three ? operand(insn, 1) : dst, next);
  if (isFault(a)) return a;
  const b = t.read(operand(insn, three ? 2 : 1), next);
  if (isFault(b)) return b;
  const product = signed(a, size) * signed(b, size);
  const low = product & sizeMask(size);
  const f = t.write(dst, low, next);
  if (isFault(f)) return f;
  setStatus(t, "MUL-02", multiplyFlags(low, size, signed(low, size) !== product));
  return undefined;
};

/** DIV/IDIV r/m: rDX:rAX (AX for 8-bit) ÷ src. Divisor 0 → #DE (DIV-01); a quotient that does not fit
 *  the destination → #DE (DIV-02), including IDIV of the most negative dividend by −1. Quotients
 *  truncate toward zero and the remainder takes the dividend's sign, as BigInt division does.
 *  All six status flags are undefined and left unchanged (undefined-flags.ts). */
function divide(isSigned: boolean): Semantics {
  return (t, insn) => {
    const src = operand(insn, 0);
    const raw = t.read(src, t.rip);
    if (isFault(raw)) return raw;
    const size = sizeOf(src, insn);
    const n = bits(size);
    const wide = size === 1 ? t.readReg(RAX, 2) : (t.readReg(RDX, size) << n) | t.readReg(RAX, size);
    const divisor = isSigned ? signed(raw, size) : raw;
    if (divisor === 0n) return t.fault("DIV-01", 0);
    const dividend = isSigned ? BigInt.asIntN(2 * 8 * size, wide) : wide;
    const quotient = dividend / divisor;
    const remainder = dividend % divisor;
    const fits = isSigned
      ? quotient >= -(1n << (n - 1n)) && quotient < 1n << (n - 1n)
      : quotient <= sizeMask(size);
    if (!fits) return t.fault("DIV-02", 0);
    t.hit("DIV-03");
    writeDouble(t, size, remainder & sizeMask(size), quotient & sizeMask(size));
    return undefined;
  };
}

export const div = divide(false);
export const idiv = divide(true);

