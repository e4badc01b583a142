// ADD, ADC, SUB, SBB, AND, OR, XOR, CMP, TEST, INC, DEC, NEG, NOT — SDM Vol. 2A/2B instruction pages.
// Each reads its operands (a memory destination as a write: readDestination), computes the result
// and flags, then writes; a fault anywhere leaves nothing written (the step's transaction).
import type { Instruction } from "../decode/instruction.ts";
import type { Executor, ExecutorTable } from "../step/executor.ts";
import { sizeMask, type Transaction } from "../step/transaction.ts";
import { RFLAGS } from "../machine/registers.ts";
import type { Fault } from "../fault.ts";
import { addWithCarry, flag, logicFlags, subWithBorrow, type ArithResult } from "./flags.ts";
import { operand, readDestination, setStatus, sizeOf } from "./operands.ts";

type Binary = (a: bigint, b: bigint, cf: boolean, insn: Instruction) => ArithResult;

/** dest ← dest op src, with all six status flags; `writeBack` false for CMP and TEST. */
function binary(rule: string, compute: Binary, writeBack: boolean): Executor {
  return (t: Transaction, insn: Instruction): Fault | undefined => {
    const next = t.m.rip;
    const dst = operand(insn, 0);
    const a = writeBack ? readDestination(t, dst, next) : t.read(dst, next);
    if (typeof a !== "bigint") return a;
    const b = t.read(operand(insn, 1), next);
    if (typeof b !== "bigint") return b;
    const { result, flags } = compute(a, b, flag(t.m.rflags, RFLAGS.CF), insn);
    if (writeBack) {
      const f = t.write(dst, result, next);
      if (f !== undefined) return f;
    }
    setStatus(t, rule, flags);
    return undefined;
  };
}

const size = (insn: Instruction) => sizeOf(operand(insn, 0), insn);

const logic = (op: (a: bigint, b: bigint) => bigint): Binary => (a, b, _cf, insn) => {
  const s = size(insn);
  const result = op(a, b) & sizeMask(s);
  return { result, flags: logicFlags(result, s) };
};

/** INC/DEC: as ADD/SUB of 1 but CF is not affected (SDM INC, DEC "Flags Affected"). */
function incDec(rule: string, decrement: boolean): Executor {
  return (t, insn) => {
    const next = t.m.rip;
    const dst = operand(insn, 0);
    const a = readDestination(t, dst, next);
    if (typeof a !== "bigint") return a;
    const s = sizeOf(dst, insn);
    const { result, flags } = decrement ? subWithBorrow(a, 1n, false, s) : addWithCarry(a, 1n, false, s);
    const f = t.write(dst, result, next);
    if (f !== undefined) return f;
    const { cf: _unaffected, ...rest } = flags;
    setStatus(t, rule, rest);
    return undefined;
  };
}

/** NEG: 0 − dest; CF = (dest ≠ 0), which the subtraction's borrow already is. */
const neg: Executor = (t, insn) => {
  const next = t.m.rip;
  const dst = operand(insn, 0);
  const a = readDestination(t, dst, next);
  if (typeof a !== "bigint") return a;
  const { result, flags } = subWithBorrow(0n, a, false, sizeOf(dst, insn));
  const f = t.write(dst, result, next);
  if (f !== undefined) return f;
  setStatus(t, "ALU-06", flags);
  return undefined;
};

/** NOT: one's complement; no flags affected. */
const not: Executor = (t, insn) => {
  const next = t.m.rip;
  const dst = operand(insn, 0);
  const a = readDestination(t, dst, next);
  if (typeof a !== "bigint") return a;
  t.hit("ALU-07");
  return t.write(dst, ~a, next);
};

export const aluExecutors: ExecutorTable = {
  add: binary("ALU-01", (a, b, _cf, insn) => addWithCarry(a, b, false, size(insn)), true),
  adc: binary("ALU-01", (a, b, cf, insn) => addWithCarry(a, b, cf, size(insn)), true),
  sub: binary("ALU-02", (a, b, _cf, insn) => subWithBorrow(a, b, false, size(insn)), true),
  sbb: binary("ALU-02", (a, b, cf, insn) => subWithBorrow(a, b, cf, size(insn)), true),
  cmp: binary("ALU-03", (a, b, _cf, insn) => subWithBorrow(a, b, false, size(insn)), false),
  and: binary("ALU-04", logic((a, b) => a & b), true),
  or: binary("ALU-04", logic((a, b) => a | b), true),
  xor: binary("ALU-04", logic((a, b) => a ^ b), true),
  test: binary("ALU-04", logic((a, b) => a & b), false),
  inc: incDec("ALU-05", false),
  dec: incDec("ALU-05", true),
  neg,
  not,
};
