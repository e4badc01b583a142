// String instructions: MOVS, STOS, LODS, CMPS, SCAS, with REP / REPE / REPNE (SDM Vol. 2B; the rows
// "String instructions" and "REP string instructions: step granularity" of docs/model-choices.md).
//
// One iteration is one step: a repeated instruction that has not finished leaves RIP at itself and
// sets RF, so that events are taken between iterations, TF traps after each, and the timer counts
// each (docs/devices.md). A count of 0 completes the instruction without an iteration.
//
// Batching (the one speed trick here): the engine's run loop may allow several iterations in one
// call (Machine.repBudget, only where no event can become deliverable between them: no TF, no
// shadow, within the step budget and the timer's countdown). The handler then reports the extra
// iterations (Machine.repExtra), each a retired step. It stops early when a write reaches a code
// or page-table frame (Machine.blockEnd: the next iteration must be fetched and translated anew),
// and it never reports a fault after a completed iteration: it stops before the faulting one
// (which changed nothing but A/D bits a walk sets again), and the next step repeats it and
// delivers the fault exactly as a one-iteration step would. Not a cache.
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import * as insnModule from "./insn.ts";
import { alu, getReg, setReg } from "./exec.ts";
import { readSegmented, writeSegmented } from "./memory/segmented.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { DF, ES, RAX, RCX, RDI, RF, RIP_HI, RIP_LO, RSI, ST_FAULT, ST_OK } = constsModule;
const { ALU_CMP, OP_CMPS, OP_LODS, OP_MOVS, OP_SCAS } = insnModule;

/** Runs one iteration (or, with REP, up to Machine.repBudget iterations) of a string instruction. */
export function execString(m: Machine, i: Insn): number {
  const op = i.op;
  const size = i.operandSize;
  const asz = i.addressSize;
  const rep = i.rep !== 0;
  const r = m.regs;
  const budget = rep ? m.repBudget : 1;
  const delta = (m.flags & DF) !== 0 ? -size : size;
  let done = 0;
  for (;;) {
    if (rep && countIsZero(r, asz)) break;
    if (!iterate(m, i, op, size, asz)) {
      if (done === 0) return ST_FAULT;
      // Stop before the faulting iteration; the next step repeats it (see the header).
      m.faultVector = -1;
      return suspend(m, i, done);
    }
    done++;
    // RSI / RDI advance at the address size.
    if (op !== insnModule.OP_STOS && op !== OP_SCAS) advance(r, RSI, asz, delta);
    if (op !== OP_LODS) advance(r, RDI, asz, delta);
    if (!rep) break;
    advance(r, RCX, asz, -1);
    if (countIsZero(r, asz)) break;
    if ((op === OP_CMPS || op === OP_SCAS) && zeroResult(m, size) !== (i.rep === 0xf3)) break;
    if (done >= budget || m.blockEnd) return suspend(m, i, done);
  }
  m.repExtra = done > 1 ? done - 1 : 0;
  return ST_OK;
}

/** The repetition goes on at the next step: RIP stays at the instruction, RF = 1. */
function suspend(m: Machine, i: Insn, done: number): number {
  m.regs[RIP_LO] = i.ripLo;
  m.regs[RIP_HI] = i.ripHi;
  m.flags |= RF;
  m.repExtra = done - 1;
  return ST_OK;
}

/** The element accesses of one iteration; false on a fault (nothing changed but A/D bits). */
function iterate(m: Machine, i: Insn, op: number, size: number, asz: number): boolean {
  const r = m.regs;
  const siLo = r[2 * RSI]!, siHi = asz === 8 ? r[2 * RSI + 1]! : 0;
  const diLo = r[2 * RDI]!, diHi = asz === 8 ? r[2 * RDI + 1]! : 0;
  if (op === OP_MOVS) {
    const lo = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    return writeSegmented(m, ES, diLo, diHi, size, lo, m.valueHi, m.writeClass);
  }
  if (op === OP_LODS) {
    const lo = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    setReg(m, RAX, size, lo, size === 8 ? m.valueHi : 0);
    return true;
  }
  if (op === OP_CMPS) {
    const al = readSegmented(m, i.seg, siLo, siHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    const ah = size === 8 ? m.valueHi : 0;
    const bl = readSegmented(m, ES, diLo, diHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    alu(m, ALU_CMP, size, al, ah, bl, size === 8 ? m.valueHi : 0);
    return true;
  }
  if (op === OP_SCAS) {
    const bl = readSegmented(m, ES, diLo, diHi, size, m.readClass);
    if (m.faultVector >= 0) return false;
    const bh = size === 8 ? m.valueHi : 0;
    const al = getReg(m, RAX, size);
    alu(m, ALU_CMP, size, al, size === 8 ? m.valueHi : 0, bl, bh);
    return true;
  }
  // STOS
  const lo = getReg(m, RAX, size);
  return writeSegmented(m, ES, diLo, diHi, size, lo, size === 8 ? m.valueHi : 0, m.writeClass);
}

/** Adds `delta` to register n at the address size (a 32-bit write zero-extends). */
function advance(r: Int32Array, n: number, asz: number, delta: number): void {
  const lo = r[2 * n]!;
  const nl = (lo + delta) | 0;
  if (asz === 8) {
    const hi = r[2 * n + 1]!;
    r[2 * n + 1] = delta >= 0 ? ((nl >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi) : ((nl >>> 0) > (lo >>> 0) ? (hi - 1) | 0 : hi);
  } else r[2 * n + 1] = 0;
  r[2 * n] = nl;
}

function countIsZero(r: Int32Array, asz: number): boolean {
  return asz === 8 ? (r[2 * RCX]! | r[2 * RCX + 1]!) === 0 : r[2 * RCX] === 0;
}

/** ZF of the CMP the iteration just recorded (the lazy result is kept masked to the size). */
function zeroResult(m: Machine, size: number): boolean {
  return size === 8 ? (m.lazyResultLo | m.lazyResultHi) === 0 : m.lazyResultLo === 0;
}
