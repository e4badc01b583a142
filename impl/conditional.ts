// Instructions decided by a condition: SETcc, CMOVcc (the Jcc conditions, flags.ts `condition`),
// LOOP/LOOPE/LOOPNE and JrCXZ (the count register). Written from the SDM pages of SETcc, CMOVcc,
// LOOP/LOOPcc and Jcc, with docs/model-choices.md rows "SETcc, CMOVcc" and "LEAVE, LOOPcc, JRCXZ".
// Each handler runs with RIP already at the next instruction and changes nothing when it faults.
// Not a cache.
import type { Machine } from "./machine.ts";
import type { Insn } from "./insn.ts";
import * as constsModule from "./consts.ts";
import { condition } from "./flags.ts";
import { getReg, jumpTo, readRM, setReg, writeRM } from "./exec.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { RCX, ST_FAULT, ST_OK } = constsModule;

/** SETcc r/m8 ← 1 when the condition holds, else 0 (a memory destination is a plain write). */
export function execSetcc(m: Machine, i: Insn): number {
  return writeRM(m, i, 1, condition(m, i.sub) ? 1 : 0, 0) ? ST_OK : ST_FAULT;
}

/** CMOVcc r, r/m: the source is always read (a memory source faults whatever the condition); a
 *  false condition still clears bits 63:32 of a 32-bit destination. */
export function execCmovcc(m: Machine, i: Insn): number {
  const size = i.operandSize;
  const lo = readRM(m, i, size);
  if (m.faultVector >= 0) return ST_FAULT;
  const hi = size === 8 ? m.valueHi : 0;
  if (condition(m, i.sub)) setReg(m, i.reg, size, lo, hi);
  else if (size === 4) m.regs[2 * i.reg + 1] = 0;
  return ST_OK;
}

/** LOOPNE (sub 0), LOOPE (1), LOOP (2): count − 1 at the address size (no flags), then a branch
 *  when the count is not 0 (and ZF = 0 / ZF = 1). A non-canonical target faults with the count
 *  unchanged. */
export function execLoop(m: Machine, i: Insn): number {
  const asz = i.addressSize;
  const r = m.regs;
  const oldLo = r[2 * RCX]!, oldHi = r[2 * RCX + 1]!;
  let lo: number, hi: number, zero: boolean;
  if (asz === 8) {
    lo = (oldLo - 1) | 0;
    hi = oldLo === 0 ? (oldHi - 1) | 0 : oldHi;
    zero = (lo | hi) === 0;
  } else {
    lo = (oldLo - 1) & (asz === 4 ? -1 : 0xffff);
    hi = 0;
    zero = lo === 0;
  }
  let taken = !zero;
  if (taken && i.sub !== 2) {
    const zf = condition(m, 4); // condition 4: E (ZF = 1)
    taken = i.sub === 1 ? zf : !zf;
  }
  if (taken && !jumpTo(m, i.targetLo, i.targetHi)) return ST_FAULT;
  setReg(m, RCX, asz, lo, hi);
  return ST_OK;
}

/** JrCXZ: a branch when the count register (RCX, ECX with 67; CX/ECX in compatibility mode) is 0. */
export function execJrcxz(m: Machine, i: Insn): number {
  const lo = getReg(m, RCX, i.addressSize);
  const zero = i.addressSize === 8 ? (lo | m.valueHi) === 0 : lo === 0;
  if (!zero) return ST_OK;
  return jumpTo(m, i.targetLo, i.targetHi) ? ST_OK : ST_FAULT;
}
