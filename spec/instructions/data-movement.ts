// MOV (all general forms, incl. moffs and imm64), MOVZX, MOVSX, MOVSXD, LEA, XCHG, CBW/CWDE/CDQE,
// CWD/CDQ/CQO — SDM Vol. 2A/2B instruction pages. None of them affects a flag.
import type { Instruction } from "../decode/instruction.ts";
import { isFault } from "../fault.ts";
import type { Semantics } from "../transaction/semantics.ts";
import { RAX, RDX, sizeMask } from "../machine/registers.ts";
import { operand, readDestination, sizeOf } from "./operands.ts";

/** MOV: dest ← src. Immediates arrive already extended (C7 sign-extends imm32; B8+r REX.W imm64). */
export const mov: Semantics = (t, insn) => {
  const next = t.rip;
  const value = t.read(operand(insn, 1), next);
  if (isFault(value)) return value;
  return t.write(operand(insn, 0), value, next, "MOV-01");
};

/** MOVZX / MOVSX / MOVSXD: the source, zero- or sign-extended from its own size to the destination's. */
function extend(signed: boolean): Semantics {
  return (t, insn: Instruction) => {
    const next = t.rip;
    const dst = operand(insn, 0);
    const src = operand(insn, 1);
    const value = t.read(src, next);
    if (isFault(value)) return value;
    const from = 8 * sizeOf(src, insn);
    const extended = signed ? BigInt.asUintN(64, BigInt.asIntN(from, value)) : value;
    return t.write(dst, extended & sizeMask(sizeOf(dst, insn)), next, "MOV-02");
  };
}

/** LEA: the effective address alone, truncated to the operand size; no memory is accessed. */
export const lea: Semantics = (t, insn) => {
  const dst = operand(insn, 0);
  const src = operand(insn, 1);
  if (src.kind !== "mem") throw new Error("lea: source must be a memory operand");
  return t.write(dst, t.effectiveAddress(src, t.rip) & sizeMask(sizeOf(dst, insn)), t.rip, "MOV-03");
};

/** XCHG: swaps the operands. With memory it is implicitly locked; the model has one CPU, so the
 *  lock changes nothing here, but the memory operand is translated as a write from the start. */
export const xchg: Semantics = (t, insn) => {
  const next = t.rip;
  const a = operand(insn, 0);
  const b = operand(insn, 1);
  const va = readDestination(t, a, next);
  if (isFault(va)) return va;
  const vb = readDestination(t, b, next);
  if (isFault(vb)) return vb;
  // Memory first: if it faults, no register has changed (and nothing survives anyway).
  const [first, second, v1, v2] = a.kind === "mem" ? [a, b, vb, va] : [b, a, va, vb];
  const f = t.write(first, v1, next);
  if (isFault(f)) return f;
  return t.write(second, v2, next, "MOV-04");
};

/** CBW / CWDE / CDQE: rAX ← sign-extension of its lower half, by operand size. */
export const cbw: Semantics = (t, insn) => {
  const size = insn.operandSize;
  const half = 4 * size;
  t.hit("MOV-05");
  t.writeReg(RAX, size, BigInt.asUintN(64, BigInt.asIntN(half, t.readReg(RAX, size))));
  return undefined;
};

/** CWD / CDQ / CQO: rDX ← all copies of rAX's sign bit, by operand size. */
export const cwd: Semantics = (t, insn) => {
  const size = insn.operandSize;
  const negative = BigInt.asIntN(8 * size, t.readReg(RAX, size)) < 0n;
  t.hit("MOV-05");
  t.writeReg(RDX, size, negative ? sizeMask(size) : 0n);
  return undefined;
};

export const movzx = extend(false);
export const movsx = extend(true);
export const movsxd = extend(true);
