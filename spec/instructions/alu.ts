// ADD, ADC, SUB, SBB, AND, OR, XOR, CMP, TEST, INC, DEC, NEG, NOT — SDM Vol. 2A/2B instruction pages.
// Each reads its operands (a memory destination as a write: readDestination), computes the result
// and flags, then writes; a fault anywhere leaves nothing written (the step's transaction).
import type { Instruction } from "../decode/instruction.ts";
import type { Semantics } from "../transaction/semantics.ts";
import type { Transaction } from "../transaction/transaction.ts";
import { RFLAGS } from "../machine/registers.ts";
import { isFault, type Fault } from "../fault.ts";
import type { RuleId } from "../rules/rule.ts";
import { addWithCarry, flag, logicFlags, subWithBorrow, truncate, withStatus, type ArithResult } from "./flags.ts";
import { operand, readDestination, sizeOf } from "./operands.ts";

type Binary = (a: bigint, b: bigint, cf: boolean, insn: Instruction) => ArithResult;

/** dest ← dest op src, with all six status flags; `writeBack` false for CMP and TEST. */
function binary(rule: RuleId, compute: Binary, writeBack: boolean): Semantics {
  return (t: Transaction, insn: Instruction): Fault | undefined => {
    // RIP (already the next instruction's) and RFLAGS as the instruction starts: it writes neither
    // before its status flags.
    const next = t.rip, rflags = t.rflags;
    const dst = operand(insn, 0);
    const a = writeBack ? readDestination(t, dst, next) : t.read(dst, next);
    if (isFault(a)) return a;
    const b = t.read(operand(insn, 1), next);
    if (isFault(b)) return b;
    const { result, flags } = compute(a, b, flag(rflags, RFLAGS.CF), insn);
    if (writeBack) {
      const f = t.write(dst, result, next);
      if (isFault(f)) return f;
    }
    t.update(rule, { rflags: withStatus(rflags, flags) });
    return undefined;
  };
}

const size = (insn: Instruction) => sizeOf(operand(insn, 0), insn);

const logic = (op: (a: bigint, b: bigint) => bigint): Binary => (a, b, _cf, insn) => {
  const s = size(insn);
  const result = truncate(op(a, b), s);
  return { result, flags: logicFlags(result, s) };
};

/** INC/DEC: as ADD/SUB of 1 but CF is not affected (SDM INC, DEC "Flags Affected"). */
function incDec(rule: RuleId, decrement: boolean): Semantics {
  return (t, insn) => {
    const next = t.rip, rflags = t.rflags;
    const dst = operand(insn, 0);
    const a = readDestination(t, dst, next);
    if (isFault(a)) return a;
    const s = sizeOf(dst, insn);
    const { result, flags } = decrement ? subWithBorrow(a, 1n, false, s) : addWithCarry(a, 1n, false, s);
    const f = t.write(dst, result, next);
    if (isFault(f)) return f;
    const { pf, af, zf, sf, of } = flags;
    t.update(rule, { rflags: withStatus(rflags, { pf, af, zf, sf, of }) });
    return undefined;
  };
}

/** NEG: 0 − dest; CF = (dest ≠ 0), which the subtraction's borrow already is. */
export const neg: Semantics = (t, insn) => {
  const next = t.rip, rflags = t.rflags;
  const dst = operand(insn, 0);
  const a = readDestination(t, dst, next);
  if (isFault(a)) return a;
  const { result, flags } = subWithBorrow(0n, a, false, sizeOf(dst, insn));
  const f = t.write(dst, result, next);
  if (isFault(f)) return f;
  t.update("ALU-06", { rflags: withStatus(rflags, flags) });
  return undefined;
};

/** NOT: one's complement; no flags affected. */
export const not: Semantics = (t, insn) => {
  const next = t.rip;
  const dst = operand(insn, 0);
  const a = readDestination(t, dst, next);
  if (isFault(a)) return a;
  return t.write(dst, ~a, next, "ALU-07");
};

export const add = binary("ALU-01", (a, b, _cf, insn) => addWithCarry(a, b, false, size(insn)), true);
export const adc = binary("ALU-01", (a, b, cf, insn) => addWithCarry(a, b, cf, size(insn)), true);
export const sub = binary("ALU-02", (a, b, _cf, insn) => subWithBorrow(a, b, false, size(insn)), true);
export const sbb = binary("ALU-02", (a, b, cf, insn) => subWithBorrow(a, b, cf, size(insn)), true);
export const cmp = binary("ALU-03", (a, b, _cf, insn) => subWithBorrow(a, b, false, size(insn)), false);
export const and = binary("ALU-04", logic((a, b) => a & b), true);
export const or = binary("ALU-04", logic((a, b) => a | b), true);
export const xor = binary("ALU-04", logic((a, b) => a ^ b), true);
export const test = binary("ALU-04", logic((a, b) => a & b), false);
export const inc = incDec("ALU-05", false);
export const dec = incDec("ALU-05", true);
