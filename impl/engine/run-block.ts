// Running one cached block: compile it once it is hot (compile/, after COMPILE_AFTER runs), then
// run it compiled when the step budget covers the whole block, else interpreted instruction by
// instruction with the full bookkeeping (engine/execute.ts). The budget is also the timer's
// countdown when that is smaller (engine.ts), so no block runs past the instruction that ticks. A compiled block that stops on a
// fault, HLT, I/O, an event-raising or unsupported instruction (Machine.blockExit) leaves it to
// finishCompiled: the fault is delivered, the instruction it stopped before (blockStopInsn) runs
// interpreted. Blocks run only while TF = 0 and no interrupt shadow is active (the run loop's
// condition), so a block needs no per-instruction trap or shadow bookkeeping inside.
// Not a cache (the block cache and the compiled functions are: blocks/, compile/).
import * as constsModule from "../consts.ts";
import { type Block, flushBlockCache, mayCompile } from "../blocks/block-cache.ts";
import { compileBlock, COMPILE_AFTER } from "../compile/compile.ts";
import { resetAdJournal } from "../memory/ad-journal.ts";
import type { StepContext } from "./context.ts";
import * as outcomesModule from "./outcomes.ts";
import { deliverFault, executeInstruction } from "./execute.ts";
import { countCompleted } from "../devices.ts";
import { ST_SOFT_DELIVERED } from "../compile/writer.ts";
import { ST_TRACE_MEMLIMIT, ST_TRACE_SHUTDOWN, TRACE_AFTER, formTrace, traceExitBlock, traceUsable } from "./trace.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { RF, RIP_HI, RIP_LO, SHADOW_NONE, ST_END, ST_FAULT, ST_OK, TF } = constsModule;
const { R_MEMLIMIT, R_RETIRED, R_UNSUP } = outcomesModule;

/**
 * Runs a block for at most `budget` steps (≥ 1). Returns the steps taken: instructions retired,
 * plus one if the block ended in a fault or software interrupt that was delivered. The outcome
 * is left in ctx.blockOutcome (R_RETIRED unless it stopped the run: R_UNSUP, R_MEMLIMIT), and the
 * block it ended in (b, or a later block of b's trace: engine/trace.ts) in ctx.lastBlock.
 */
export function runBlock(ctx: StepContext, b: Block, budget: number): number {
  const m = ctx.m;
  ctx.blockOutcome = R_RETIRED;
  if (b.compiled === null && ctx.compileBlocks && !b.compileDeclined && ++b.runs >= COMPILE_AFTER) compileHot(m, b);
  const insns = b.insns;
  ctx.lastBlock = b;
  if (b.compiled !== null && budget >= insns.length) {
    // Compiled: RF is cleared by the first instruction; the body keeps the rest exact.
    const entryRf = m.flags & RF;
    m.flags &= ~RF;
    m.blockEnd = false;
    m.faultVector = -1;
    const t = b.trace;
    let n: number;
    if (t !== null && traceUsable(m, t, budget)) {
      n = t.fn(m, budget);
      ctx.lastBlock = traceExitBlock(t, n, m.blockExit);
    } else {
      if (!b.traceTried && ctx.traces && ++b.compiledRuns >= TRACE_AFTER) formTrace(ctx, b);
      n = b.compiled(m, budget);
      b.exitFault = m.blockExit === ST_FAULT && n < insns.length ? n : -1;
    }
    const st = m.blockExit;
    // The timer counts the completed instructions (an INT n the block delivered is not one).
    if (m.timerCounting) countCompleted(m, st === ST_SOFT_DELIVERED ? n - 1 : n);
    if (st === ST_OK || st === ST_END || st === ST_SOFT_DELIVERED) return n;
    const extra = finishCompiled(ctx, st, budget - n);
    // Nothing ran (the first instruction stopped the run): RF is as it was.
    if (n === 0 && (extra === 0 || m.shutdown)) m.flags |= entryRf;
    return n + extra;
  }
  // Interpreted.
  let n = 0;
  m.blockEnd = false;
  for (let k = 0; k < insns.length && n < budget; k++) {
    const i = insns[k]!;
    if (k > 0) resetAdJournal(m);
    const r = executeInstruction(ctx, i, budget - n);
    if (r === R_UNSUP || r === R_MEMLIMIT) {
      ctx.blockOutcome = r;
      return n;
    }
    n += 1 + m.repExtra;
    if (r !== R_RETIRED || m.blockEnd) return n;
    // A block's later instructions assume RIP flowed to them.
    const nx = insns[k + 1];
    if (nx !== undefined && (m.regs[RIP_LO] !== nx.ripLo || m.regs[RIP_HI] !== nx.ripHi)) return n;
    if ((m.flags & TF) !== 0 || m.shadow !== SHADOW_NONE) return n;
  }
  return n;
}

/** Compiles a block that became hot (kept out of runBlock, which stays small enough to inline).
 *  At the compiled cap the cache is emptied instead (this block with it: it runs interpreted this
 *  once and is decoded afresh next time). */
function compileHot(m: StepContext["m"], b: Block): void {
  if (!mayCompile(m)) {
    flushBlockCache(m);
    return;
  }
  b.compiled = compileBlock(b);
  if (b.compiled === null) b.compileDeclined = true;
  else m.blockBudget.compiled++;
}

/** A compiled block stopped on a fault, software interrupt, HLT, I/O, string or unsupported
 *  instruction (status `st`; RIP at that instruction's start). Returns the extra steps (a string
 *  instruction may run up to `budget` iterations). */
function finishCompiled(ctx: StepContext, st: number, budget: number): number {
  const m = ctx.m;
  const lo = m.regs[RIP_LO]!, hi = m.regs[RIP_HI]!;
  ctx.ripLo = lo;
  ctx.ripHi = hi;
  // A trace delivered the fault already (engine/trace.ts), with this outcome.
  if (st === ST_TRACE_SHUTDOWN) return 1;
  if (st === ST_TRACE_MEMLIMIT) {
    ctx.blockOutcome = R_MEMLIMIT;
    return 0;
  }
  if (st === ST_FAULT) {
    const r = deliverFault(ctx, lo, hi, m.flags);
    if (r === R_MEMLIMIT) {
      ctx.blockOutcome = r;
      return 0;
    }
    return 1;
  }
  // ST_STOP: the instruction the block left to the interpreter (exact bookkeeping).
  const i = m.blockStopInsn;
  m.blockStopInsn = null;
  if (i === null) return 0;
  resetAdJournal(m);
  const r = executeInstruction(ctx, i, budget);
  if (r === R_UNSUP || r === R_MEMLIMIT) {
    ctx.blockOutcome = r;
    return 0;
  }
  return 1 + m.repExtra;
}
