// One instruction with the per-instruction bookkeeping the handlers leave to the engine:
//   RF    cleared as the instruction starts (RFLAGS.RF lasts one instruction; a fault's delivery
//         pushes RF = 1);
//   TF    set before the instruction → a single-step trap is pending after it (SYSCALL/SYSRET:
//         the TF it leaves, SYSCALL-10 / SYSRET-09);
//   shadow the interrupt shadow the instruction ran in ends; the one it creates starts (SHADOW-02);
// and what the outcome becomes: a fault delivered at the instruction (RIP back at its start), a
// software interrupt delivered after it, an unsupported instruction undone (RIP, RF, and the A/D
// bits its walks set), HLT, I/O. Not a cache.
import * as constsModule from "../consts.ts";
import * as insnModule from "../insn.ts";
import type { Insn } from "../insn.ts";
import { HANDLERS } from "../handlers.ts";
import { deliver, hasErrorCode } from "../deliver.ts";
import { rollbackAdJournal } from "../memory/ad-journal.ts";
import { type StepContext, memoryLimitReason } from "./context.ts";
import * as outcomesModule from "./outcomes.ts";
import { deliveryOutcome } from "./boundary.ts";
import { fetch } from "./fetch.ts";
import { countCompleted, deviceWrite } from "../devices.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  EV_FAULT, RF, RIP_HI, RIP_LO, SHADOW_NONE, ST_END, ST_HALT, ST_IO, ST_OK, ST_SWINT, ST_UNSUP, TF, VEC_MEMLIMIT,
} = constsModule;
const { OP_SYSCALL, OP_SYSRET } = insnModule;
const { R_HALTED, R_IO, R_MEMLIMIT, R_RETIRED, R_SHUTDOWN, R_UNSUP } = outcomesModule;

/** Executes one decoded instruction with the bookkeeping above. Returns an R_* outcome. A REP
 *  string instruction may run up to `budget` iterations (strings.ts, batching): the steps beyond
 *  the first are left in Machine.repExtra (0 for every other instruction). A completed step is
 *  counted by the timer, and an OUT then reaches its device (devices.ts). */
export function executeInstruction(ctx: StepContext, i: Insn, budget = 1): number {
  const m = ctx.m;
  m.repBudget = budget;
  m.repExtra = 0;
  const startLo = m.regs[RIP_LO]!, startHi = m.regs[RIP_HI]!;
  ctx.ripLo = startLo;
  ctx.ripHi = startHi;
  const oldFlags = m.flags;
  const tf = (oldFlags & TF) !== 0;
  m.nextShadow = SHADOW_NONE;
  m.faultVector = -1;
  m.flags = oldFlags & ~RF;
  m.regs[RIP_LO] = i.nextLo;
  m.regs[RIP_HI] = i.nextHi;
  const st = HANDLERS[i.op]!(m, i);
  switch (st) {
    case ST_OK: case ST_END: case ST_IO: case ST_HALT: {
      // SHADOW-02: the shadow this instruction ran in ends; it may have created a new one.
      m.shadow = m.nextShadow;
      const op = i.op;
      if (op === OP_SYSCALL || op === OP_SYSRET) {
        // SYSCALL-10 / SYSRET-09: the TF after the instruction decides.
        if ((m.flags & TF) !== 0) m.pendingDebugTrap = true;
      } else if (tf) m.pendingDebugTrap = true;
      if (m.timerCounting) countCompleted(m, 1 + m.repExtra);
      if (st === ST_HALT) {
        m.halted = true;
        return R_HALTED;
      }
      if (st === ST_IO) {
        if (m.ioDirection === 1) deviceWrite(m);
        return R_IO;
      }
      return R_RETIRED;
    }
    case ST_SWINT: {
      const v = m.faultVector, src = m.softIntSource;
      const r = deliveryOutcome(deliver(m, v, src, -1, m.regs[RIP_LO]!, m.regs[RIP_HI]!, startLo, startHi));
      if (r === R_SHUTDOWN) {
        // A triple fault leaves the machine at the instruction.
        m.regs[RIP_LO] = startLo;
        m.regs[RIP_HI] = startHi;
        m.flags = oldFlags;
      }
      return r;
    }
    case ST_UNSUP:
      // The machine is unchanged: RIP, RF, and the A/D bits this instruction's walks set.
      m.regs[RIP_LO] = startLo;
      m.regs[RIP_HI] = startHi;
      m.flags = oldFlags;
      rollbackAdJournal(m);
      ctx.unsupportedBytes = i.bytes;
      ctx.reason = m.unsupportedReason;
      return R_UNSUP;
    default: {
      // ST_FAULT: no change but A/D bits (and what IRET-00 allows); deliver at the instruction.
      m.regs[RIP_LO] = startLo;
      m.regs[RIP_HI] = startHi;
      const r = deliverFault(ctx, startLo, startHi, oldFlags);
      if (r === R_SHUTDOWN) m.flags = oldFlags;
      return r;
    }
  }
}

/** Delivers the fault in m.faultVector with RIP at the faulting instruction (lo, hi); `oldFlags`
 *  are restored when guest memory would exceed the page budget. */
export function deliverFault(ctx: StepContext, lo: number, hi: number, oldFlags: number): number {
  const m = ctx.m;
  if (m.faultVector === VEC_MEMLIMIT) {
    m.flags = oldFlags;
    ctx.reason = memoryLimitReason(ctx);
    return R_MEMLIMIT;
  }
  const v = m.faultVector;
  const err = hasErrorCode(v) ? m.faultErrorCode : -1;
  return deliveryOutcome(deliver(m, v, EV_FAULT, err, lo, hi, lo, hi));
}

/** Delivers a fetch fault at (lo, hi). RF is cleared for the delivery (the pushed image sets it
 *  anyway, RF-03); a triple fault leaves the machine at the instruction, RF as it was. */
export function deliverFetchFault(ctx: StepContext, lo: number, hi: number): number {
  const m = ctx.m;
  const oldFlags = m.flags;
  m.flags &= ~RF;
  const r = deliverFault(ctx, lo, hi, oldFlags);
  if (r === R_SHUTDOWN) m.flags = oldFlags;
  return r;
}

/** One instruction step (fetch + execute), uncompiled: step(), and run() while TF or a shadow
 *  needs per-instruction bookkeeping. A cached block at RIP gives its first instruction; else only
 *  this instruction is decoded (engine/fetch.ts). */
export function instructionStep(ctx: StepContext): number {
  const m = ctx.m;
  const b = fetch(ctx, false);
  const insn = b !== null ? b.insns[0]! : ctx.crossingInsn;
  ctx.stepInsn = insn;
  if (insn !== null) return executeInstruction(ctx, insn);
  // Fetch fault (#PF / #GP(0)) at RIP.
  const lo = m.regs[RIP_LO]!, hi = m.regs[RIP_HI]!;
  ctx.ripLo = lo;
  ctx.ripHi = hi;
  if (m.faultVector === VEC_MEMLIMIT) {
    ctx.reason = memoryLimitReason(ctx);
    return R_MEMLIMIT;
  }
  return deliverFetchFault(ctx, lo, hi);
}
