// Traces: one compiled function that runs a chain of hot blocks in a row — across SYSCALL, SYSRET,
// IRETQ, INT n / INT3 and near branches — instead of returning to the run loop between them.
// The benchmark round trips (user block → SYSCALL → kernel block → SYSRET → user block → back)
// become one function that loops in place, with the guest registers in JS locals across plain
// branches.
//
// Formed from the blocks' successor links (engine/chain.ts) once a compiled block has run
// TRACE_AFTER times: the head, then its successor, and so on while each link is a transfer a trace
// can continue across, up to MAX_TRACE_BLOCKS blocks; the trace loops when the last block's
// successor is the head. The trace is the head's (Block.trace); the run loop runs it where it
// would run the head's compiled function.
//
// A cache, so it must be invisible: where control passes from one block of the trace to the next,
// the generated code continues only if everything the run loop would check then holds, checked
// on the live machine at that moment — otherwise it leaves exactly as the block alone would (RIP at
// the next instruction, registers and flags stored), and the run loop carries on. The run loop
// enters a trace only when every block of it is valid, no event is pending and the timer is not
// counting (traceUsable); nothing inside a trace can change that except a write to a code frame,
// which ends it there (Machine.blockEnd, as in a block). The guards:
//   * RIP is the next block's start, and the TLB maps RIP's page for a fetch at the current CPL to
//     the next block's frame (so CR3, CR0, CR4, paging, SMEP and the CPL are all covered; skipped
//     across a plain branch within one page);
//   * after a transition: TF = 0 (the single-step trap is the run loop's) and RF = 0 — unless the
//     next block starts with an instruction that surely completes (completesSurely), which would
//     clear it: then RF is cleared on entry (IRETQ from a fault's frame sets it);
//     and, after anything that may write memory or change mode (IRETQ, a delivery, a handler),
//     no write reached a code or paging frame, 64-bit mode, no interrupt shadow;
//   * the step budget covers a whole further pass where the trace loops back to its head (it is
//     entered only with a budget for a whole pass), so a step limit never lands inside a block.
// Everything a transition depends on (STAR, LSTAR, FMASK, EFER, the IDT, GDT, TSS, ...) is read by
// the transition's own code each time — SYSCALL and SYSRETQ written out in the trace
// (trace-transitions.ts), the others through their handlers — and its outcome is checked against
// the next block's start, so no register or table write can leave a trace stale. Invalidation: a trace dies with its head
// (Block.valid); the other blocks are checked at each entry.
import * as constsModule from "../consts.ts";
import * as I from "../insn.ts";
import type { Insn } from "../insn.ts";
import * as tlbModule from "../memory/tlb.ts";
import { Block, type BlockFn, endsBlock, mayCompile } from "../blocks/block-cache.ts";
import { assembleSource, emitInstructions, instantiate } from "../compile/compile.ts";
import { BlockWriter, ST_SOFT_DELIVERED, ST_STOP, flagStore, lit, regHi, regLo } from "../compile/writer.ts";
import { getFlags } from "../flags.ts";
import {
  GS_BASE, MODE_GS_RELOAD, MODE_LOCALS, MODE_RELOAD, SWAPGS_LOCALS, gateDelivery, iretqFast, modeSync, storeGs, storeMode, syscallChecks, syscallUpdates, sysretChecks, sysretUpdates,
  trapAfter,
} from "./trace-transitions.ts";
import type { StepContext } from "./context.ts";
import type { Machine } from "../machine.ts";
import * as outcomesModule from "./outcomes.ts";
import { deliverFault } from "./execute.ts";
import { flagsLiveAtHead, flagsValue } from "../compile/flags.ts";
import { RELOAD } from "../compile/memory-operands.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BP, C_SX, C_UX, PAGE_SHIFT, VEC_MEMLIMIT, R11, RCX, RF, RIP_HI, RIP_LO, RSP, SHADOW_NONE, ST_END, ST_FAULT, ST_HALT, ST_UNSUP, TF } = constsModule;
const { R_DELIVERED, R_SHUTDOWN } = outcomesModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

/** Exit statuses (before the faulting instruction): a trace's delivery of a fault shut the machine
 *  down (a triple fault), or would exceed the page budget (the run stops) — run-block.ts then
 *  finishes the step as for a fault the block left to it. */
export const ST_TRACE_SHUTDOWN = 9, ST_TRACE_MEMLIMIT = 10;

/** Runs of a compiled block before a trace is formed from it. */
export const TRACE_AFTER = 8;
/** Most blocks in one trace. */
export const MAX_TRACE_BLOCKS = 6;
/** Most instructions in one trace. */
export const MAX_TRACE_INSNS = 256;

/** A trace: the function, its blocks, where each block starts in the trace's instruction numbering
 *  (starts[blocks.length] = all instructions). */
export interface Trace {
  readonly fn: BlockFn;
  /** Instructions in one pass: the run loop enters the trace only with at least this budget. */
  readonly total: number;
  readonly blocks: readonly Block[];
  readonly starts: readonly number[];
}

/** Transitions a trace continues across when they end a block (handler or delivery in the trace). */
function transition(i: Insn): boolean {
  return i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET || (i.op === I.OP_IRET && i.operandSize === 8) ||
    i.op === I.OP_INT || i.op === I.OP_INT3;
}

/** The instructions of block `b` a trace runs: all, or up to the one whose fault ended its last
 *  run (the trace continues through that fault's delivery). */
function partOf(b: Block): number {
  return b.exitFault >= 0 ? b.exitFault + 1 : b.insns.length;
}

/**
 * An instruction that cannot fault, stop or be left to the engine (register operands, natively
 * compiled): when it starts a block a trace enters with RF = 1 (after an IRETQ from a fault's
 * frame), RF can be cleared on entry — it is cleared when this instruction completes, and nothing
 * observes it in between (impl models no instruction breakpoints: MOV DR7 arming one is
 * unsupported).
 */
function completesSurely(i: Insn): boolean {
  if (i.op === I.OP_LEA || i.op === I.OP_NOP || i.op === I.OP_MOV_R_I) return true;
  if (i.mod !== 3) return false;
  switch (i.op) {
    case I.OP_ALU_RM_R: case I.OP_ALU_R_RM: case I.OP_ALU_RM_I: case I.OP_TEST_RM_R: case I.OP_TEST_RM_I:
    case I.OP_MOV_RM_R: case I.OP_MOV_R_RM: case I.OP_MOV_RM_I: case I.OP_MOVZX: case I.OP_MOVSX:
    case I.OP_INC: case I.OP_DEC: case I.OP_NOT: case I.OP_NEG:
      return true;
    default:
      return false;
  }
}

/** Whether control may pass from block `b`'s end to the next block inside a trace. */
function chainable(b: Block): boolean {
  if (b.exitFault >= 0) return true;
  const last = b.insns[b.insns.length - 1]!;
  if (!endsBlock(last.op)) return true;
  if (transition(last)) return true;
  switch (last.op) {
    case I.OP_JMP: case I.OP_JCC:
      return true;
    case I.OP_CALL: case I.OP_CALL_RM: case I.OP_RET: case I.OP_JMP_RM:
      return last.operandSize === 8;
    default:
      return false;
  }
}

/** The blocks a trace headed by `head` would run: the successor chain (null: fewer than two). */
function traceBlocks(head: Block): Block[] | null {
  const blocks = [head];
  let count = partOf(head);
  let b = head;
  while (blocks.length < MAX_TRACE_BLOCKS && chainable(b)) {
    const s = b.successor;
    if (s === null || s === head || !s.valid || s.compiled === null || s.mode !== I.MODE_64 || blocks.includes(s)) break;
    if (count + partOf(s) > MAX_TRACE_INSNS) break;
    blocks.push(s);
    count += partOf(s);
    b = s;
  }
  return blocks.length >= 2 ? blocks : null;
}

/** Forms the trace headed by `head` (compiled, hot) if its successor links make one; at most once
 *  per block. Counted as a compiled block (the cache's cap bounds traces too). */
export function formTrace(ctx: StepContext, head: Block): void {
  const m = ctx.m;
  head.traceTried = true;
  const blocks = traceBlocks(head);
  if (blocks === null || !mayCompile(m)) return;
  const starts: number[] = [];
  const insns: Insn[] = [];
  const faults: boolean[] = [];
  for (const b of blocks) {
    starts.push(insns.length);
    insns.push(...b.insns.slice(0, partOf(b)));
    faults.push(b.exitFault >= 0);
  }
  starts.push(insns.length);
  const src = traceSource(blocks, starts, insns, faults, m.profile.sysretSsAttributes === "keep");
  // A fault's delivery as the run loop makes it (engine/execute.ts deliverFault, with the
  // flags as they stand: run-block.ts finishCompiled): an R_* outcome.
  const deliverAt = (lo: number, hi: number) => deliverFault(ctx, lo, hi, ctx.m.flags);
  const fn = instantiate(src, insns, new Map<string, unknown>([
    ["BL", blocks], ["GF", getFlags], ["FD", deliverAt], ["MS", storeMode], ["MG", storeGs],
  ]));
  if (fn === null) return;
  head.trace = { fn, blocks, starts, total: insns.length };
  // The other blocks run inside this trace: they head none of their own.
  for (const b of blocks) b.traceTried = true;
  m.blockBudget.compiled++;
}

/**
 * Whether the run loop may run trace `t` now instead of its head's block: a budget for a whole
 * pass, no event pending (an IRQ held by IF = 0 may become deliverable inside: the trace's guards
 * do not look for events, which nothing inside a trace can raise), the timer not counting (it
 * counts completed instructions; a trace's deliveries are steps but not that), and every block of
 * the trace still valid — else the trace is dropped (a write reached one of its frames).
 */
export function traceUsable(m: Machine, t: Trace, budget: number): boolean {
  if (budget < t.total || m.pendingIrq >= 0 || m.pendingNmi || m.pendingDebugTrap || m.timerCounting) return false;
  const blocks = t.blocks;
  for (let j = 1; j < blocks.length; j++) {
    if (!blocks[j]!.valid) {
      blocks[0]!.trace = null;
      m.blockBudget.compiled--;
      return false;
    }
  }
  return true;
}

/** The block of trace `t` that an exit with status `st` returning `count` steps ended in. */
export function traceExitBlock(t: Trace, count: number, st: number): Block {
  const total = t.starts[t.blocks.length]!;
  // Exits after instruction k return k + 1 (plus whole iterations); exits before it return k.
  const before = st === ST_FAULT || st === ST_STOP || st === ST_TRACE_SHUTDOWN || st === ST_TRACE_MEMLIMIT;
  const k = before ? count % total : (count - 1) % total;
  let j = t.blocks.length - 1;
  while (j > 0 && t.starts[j]! > k) j--;
  return t.blocks[j]!;
}

/** The JavaScript source of the trace over `blocks` (instructions `insns`, block j from starts[j]). */
export function traceSource(blocks: readonly Block[], starts: readonly number[], insns: readonly Insn[],
  faults: readonly boolean[], keepSs: boolean): string {
  const head = blocks[0]!;
  const total = insns.length;
  const virtual = new Block(-1, head.ripLo, head.ripHi, insns, 0, head.poolOffset, I.MODE_64);
  const w = new BlockWriter(virtual);
  // Plain branches back to the head go through the guards below, not the block's own loop; the
  // many exits share one epilogue that writes the registers back.
  w.loop = false;
  w.sharedExit = true;
  // The mode in locals (trace-transitions.ts, "The mode in the trace's locals"): read from them,
  // stored into the Machine before every call into it and at every exit, loaded again after calls.
  const syncMode = modeSync(keepSs);
  w.cpl = "modeCpl";
  w.readFast = "modeRead";
  w.writeFast = "modeWrite";
  w.beforeAccessCall = syncMode;
  w.beforeWriteBack = `${syncMode} `;
  w.afterReload = ` ${MODE_GS_RELOAD}`;
  w.gsBase = GS_BASE;
  w.swapgs = SWAPGS_LOCALS;
  const last = blocks.length - 1;
  const closes = blocks[last]!.successor === head;
  /** The block after block j in the trace (j + 1, or the head when the trace loops), or -1. */
  const nextOf = (j: number) => (j < last ? j + 1 : closes ? 0 : -1);
  /** Statements entering block `to` from block `from`'s end (the guards have passed). */
  const enter = (from: number, to: number, flagsStored = false) => {
    if (to !== 0) return `break b${from};`;
    let store = "";
    if (!flagsStored && flagsLiveAtHead(w)) {
      // A head that starts with SYSCALL or INT n reads the whole RFLAGS at once (R11, the frame): it finds them
      // computed rather than a lazy record to evaluate.
      store = headReadsFlags && w.flag !== null ? `m.flags = ${flagsValue(w)}; m.lazyOp = 0;` : flagStore(w);
    }
    return `${store} n += ${total}; continue;`;
  };
  const headOp = head.insns[0]!.op;
  const headReadsFlags = headOp === I.OP_SYSCALL || headOp === I.OP_INT || headOp === I.OP_INT3;
  // The run loop enters a trace only with a budget for a whole pass (Trace.total), so the budget
  // is checked only where a pass begins again: one exit for every step limit, the same each time
  // (an exit that never ran has no type feedback: V8 would deoptimize the whole trace there).
  const budgetOk = (to: number) => (to === 0 ? `n + ${2 * total} <= budget` : "true");
  /** The TLB maps block `to`'s page for a fetch at the current CPL (fetch class `fetch`: the
   *  Machine's, current after a call into it, or the trace's local) to its frame. */
  const fetchOk = (to: number, fetch: number | string = "m.fetchClass") => {
    const b = blocks[to]!;
    const tag = b.ripLo >>> PAGE_SHIFT;
    const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
    return `T[${e + TLB_TAG}] === ${lit(tag)} && T[${e + TLB_TAG_HI}] === ${lit(b.ripHi)} && ` +
      `(T[${e + TLB_CLASSES}] & ${fetch}) !== 0 && T[${e + TLB_POOL_OFFSET}] === ${lit(b.poolOffset)}`;
  };
  /** The guard after a transition (header comment), the new RIP (lo, hi); `light` after IRETQ written
   *  out (trace-transitions.ts iretqFast), which writes no memory, returns only to 64-bit code and
   *  leaves no shadow. */
  const afterCall = (to: number, light = false, lo = `r[${RIP_LO}]`, hi = `r[${RIP_HI}]`) => {
    const b = blocks[to]!;
    const rip = `${lo} === ${lit(b.ripLo)} && ${hi} === ${lit(b.ripHi)}`;
    const more = light ? "" : ` && !m.blockEnd && m.mode64 && m.shadow === ${SHADOW_NONE}`;
    const flags = completesSurely(b.insns[0]!) ? TF : TF | RF;
    return `${rip} && (m.flags & ${flags}) === 0${more} && ${budgetOk(to)} && ${fetchOk(to)}`;
  };
  /** The guard after SYSCALL/SYSRETQ written out (engine/trace-transitions.ts): their own code
   *  writes no memory, stays in 64-bit mode, leaves no shadow and sets the fetch class `fetch`; the
   *  target RIP is (lo, hi), the new RFLAGS `nf` (RF = 0). */
  const afterInline = (to: number, lo: string, hi: string, fetch: number) => {
    const b = blocks[to]!;
    return `${lo} === ${lit(b.ripLo)} && ${hi} === ${lit(b.ripHi)} && (nf & ${TF}) === 0 && ${budgetOk(to)} && ${fetchOk(to, fetch)}`;
  };
  /** The guard after a delivery written out (trace-transitions.ts gateDelivery): it cleared TF and
   *  RF, left no shadow, wrote only a frame holding no code or paging entries and entered 64-bit
   *  mode (DELIVER-10 admits only a 64-bit target CS); RIP is the gate's target. */
  const afterDelivery = (to: number) => {
    const b = blocks[to]!;
    return `r[${RIP_LO}] === ${lit(b.ripLo)} && r[${RIP_HI}] === ${lit(b.ripHi)} && ${budgetOk(to)} && ${fetchOk(to)}`;
  };
  /** Entering block `to` after a transition: RF (an IRETQ may set it) is cleared, as its first
   *  instruction will clear it (the guard let RF = 1 through only then). */
  const clearRf = (to: number) => (completesSurely(blocks[to]!.insns[0]!) ? `m.flags &= ${~RF};` : "");
  let current = 0;
  // A fault that ended a block's part: delivered here, as the run loop would deliver it
  // (run-block.ts finishCompiled), unless the timer counts (a delivery is a step but not a
  // completed instruction). A shutdown or a delivery that would exceed the page budget leaves the
  // step's end to run-block.ts (ST_TRACE_SHUTDOWN, ST_TRACE_MEMLIMIT).
  w.chainFault = (k) => {
    if (!faults[current]! || k !== starts[current + 1]! - 1) return "";
    const to = nextOf(current);
    if (to < 0) return "";
    const i = insns[k]!;
    // Written out through the gate cache (trace-transitions.ts gateDelivery) when it answers; the
    // registers are in the Machine here (the exit wrote them back), RFLAGS from the producer locals.
    const rspLocals = `${regLo(w, RSP)} = r[${2 * RSP}]; ${regHi(w, RSP)} = r[${2 * RSP + 1}];`;
    const fast = gateDelivery({
      vector: "v", soft: false, errorCode: "ec", retLo: lit(i.ripLo), retHi: lit(i.ripHi), flags: flagsValue(w),
      rspLo: `r[${2 * RSP}]`, rspHi: `r[${2 * RSP + 1}]`, fail: `break f${k};`,
    });
    // (ec: deliver.ts hasErrorCode written out — the fault's error code, -1 for a vector that pushes none.)
    return `if (!m.timerCounting && m.faultVector !== ${VEC_MEMLIMIT}) {` +
      ` f${k}: { const v = m.faultVector, ec = v === 8 || (v >= 10 && v <= 14) || v === 17 || v === 21 ? m.faultErrorCode : -1;` +
      ` ${fast} ${MODE_RELOAD} if (${afterDelivery(to)}) { ${RELOAD} ${rspLocals} ${enter(current, to, true)} } m.blockExit = ${ST_END}; return n + ${k + 1}; }` +
      ` r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; const d = FD(${lit(i.ripLo)}, ${lit(i.ripHi)});` +
      ` if (d !== ${R_DELIVERED}) { m.blockExit = d === ${R_SHUTDOWN} ? ${ST_TRACE_SHUTDOWN} : ${ST_TRACE_MEMLIMIT}; return n + ${k}; }` +
      ` if (${afterCall(to)}) { @RL@ ${RELOAD} ${clearRf(to)} ${enter(current, to, true)} }` +
      ` m.blockExit = ${ST_END}; return n + ${k + 1}; }`;
  };
  // Plain branches and cuts: the writer's exits after a block's last instruction.
  w.chainExit = (k, lo, hi) => {
    if (k !== starts[current + 1]! - 1) return "";
    const to = nextOf(current);
    if (to < 0) return "";
    const b = blocks[to]!;
    const literal = /^-?\d+$/;
    let rip = "";
    if (literal.test(lo) && literal.test(hi)) {
      if (Number(lo) !== b.ripLo || Number(hi) !== b.ripHi) return "";
    } else rip = `${lo} === ${lit(b.ripLo)} && ${hi} === ${lit(b.ripHi)} && `;
    const from = blocks[current]!;
    const samePage = from.poolOffset === b.poolOffset && from.ripHi === b.ripHi &&
      from.ripLo >>> PAGE_SHIFT === b.ripLo >>> PAGE_SHIFT;
    return `if (${rip}!blockEnd && ${budgetOk(to)}${samePage ? "" : ` && ${fetchOk(to, "modeFetch")}`}) { ${enter(current, to)} }`;
  };
  // Transitions: the transition's own code (SYSCALL/SYSRETQ written out: trace-transitions.ts; the IRETQ handler,
  // deliver.ts deliverSoft) with only the registers it reads stored and those it writes reloaded,
  // then into the next block when the guards pass.
  const terminal = (tw: BlockWriter, k: number): boolean => {
    const i = insns[k]!;
    if (!transition(i)) return false;
    const to = nextOf(current);
    if (to < 0) return false;
    const flags = flagsValue(tw);
    const store = flagStore(tw);
    tw.flag = null;
    const rsp: [string, string] = [regLo(tw, RSP), regHi(tw, RSP)];
    const rcx: [string, string] = [regLo(tw, RCX), regHi(tw, RCX)];
    const r11: [string, string] = [regLo(tw, R11), regHi(tw, R11)];
    const go = (reload: string) => `if (${afterCall(to)}) { ${reload} ${clearRf(to)} ${enter(current, to)} }`;
    const done = (st: number) => `@WB@ m.blockExit = ${st}; return n + ${k + 1};`;
    // The handler, as compile/block-end.ts terminalCall runs it (flags stored; `sync` stores the
    // registers it reads, `reload` loads those it writes).
    const handler = (sync: string, reload: string) => {
      const trap = i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET ? `if ((m.flags & ${TF}) !== 0) m.pendingDebugTrap = true;` : "";
      return `${store} ${sync} ${syncMode} r[${RIP_LO}] = ${lit(i.nextLo)}; r[${RIP_HI}] = ${lit(i.nextHi)}; m.nextShadow = ${SHADOW_NONE};` +
        ` const s = H[${i.op}](m, I[${k}]);` +
        ` if (s === ${ST_FAULT} || s === ${ST_UNSUP}) { @WB@ r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; if (s === ${ST_UNSUP}) m.blockStopInsn = I[${k}]; m.blockExit = s === ${ST_FAULT} ? ${ST_FAULT} : ${ST_STOP}; return n + ${k}; }` +
        ` ${reload} ${MODE_RELOAD} m.shadow = m.nextShadow; ${trap} if (s === ${ST_HALT}) m.halted = true; ${go(RELOAD)} ${done(ST_END)}`;
    };
    const syncRsp = `r[${2 * RSP}] = ${rsp[0]}; r[${2 * RSP + 1}] = ${rsp[1]};`;
    const reloadRsp = `${rsp[0]} = r[${2 * RSP}]; ${rsp[1]} = r[${2 * RSP + 1}];`;
    tw.written.add(RSP);
    let code: string;
    switch (i.op) {
      case I.OP_SYSCALL: {
        // Written out (engine/trace-transitions.ts), RFLAGS taken from the producer locals.
        const reload = `${rcx[0]} = r[${2 * RCX}]; ${rcx[1]} = r[${2 * RCX + 1}]; ${r11[0]} = r[${2 * R11}]; ${r11[1]} = r[${2 * R11 + 1}];`;
        tw.written.add(RCX);
        tw.written.add(R11);
        const fast = syscallUpdates(rcx, r11, flags, lit(i.nextLo), lit(i.nextHi), keepSs);
        code = `if (${syscallChecks()}) { ${fast} if (${afterInline(to, "tl", "th", C_SX)}) { ${enter(current, to)} }` +
          ` r[${RIP_LO}] = tl; r[${RIP_HI}] = th; ${trapAfter()} ${done(ST_END)} }` +
          ` ${handler("", reload)}`;
        break;
      }
      case I.OP_SYSRET:
        if (i.rexW) {
          // Written out (engine/trace-transitions.ts); SYSRETQ replaces every flag: none stored.
          code = `if (${sysretChecks(rcx[1])}) { ${sysretUpdates(r11[0], keepSs)} if (${afterInline(to, rcx[0], rcx[1], C_UX)}) { ${enter(current, to)} }` +
            ` r[${RIP_LO}] = ${rcx[0]}; r[${RIP_HI}] = ${rcx[1]}; ${trapAfter()} ${done(ST_END)} }` +
            ` ${handler(`r[${2 * RCX}] = ${rcx[0]}; r[${2 * RCX + 1}] = ${rcx[1]}; r[${2 * R11}] = ${r11[0]}; r[${2 * R11 + 1}] = ${r11[1]};`, "")}`;
        } else code = handler("@WB@", "@RL@");
        break;
      case I.OP_IRET: {
        // IRETQ written out through the IRET return cache (trace-transitions.ts iretqFast), else
        // its handler.
        const fast = iretqFast({ rspLo: rsp[0], rspHi: rsp[1], fail: `break q${k};` });
        // (The IRET return cache holds only 64-bit targets: the mode is 64-bit.)
        // It stores the new mode into the Machine: the locals are loaded again after it.
        code = `q${k}: { ${fast} ${MODE_RELOAD} if (${afterCall(to, true, "rl", "rh")}) { ${clearRf(to)} ${enter(current, to)} } ${done(ST_END)} }` +
          ` ${handler(syncRsp, reloadRsp)}`;
        break;
      }
      default: {
        // INT n / INT3: written out through the gate cache (trace-transitions.ts gateDelivery);
        // else one delivery attempt; when it would raise an exception the machine is as
        // it was (but A/D bits) and the engine runs the instruction (compile/block-end.ts softInt).
        const vector = i.op === I.OP_INT3 ? BP : i.immLo & 0xff;
        const fast = gateDelivery({
          vector: String(vector), soft: true, errorCode: null, retLo: lit(i.nextLo), retHi: lit(i.nextHi), flags,
          rspLo: rsp[0], rspHi: rsp[1], fail: `break g${k};`,
        });
        // Both store the new mode into the Machine: the locals are loaded again after them.
        code = `g${k}: { ${fast} ${MODE_RELOAD} if (${afterDelivery(to)}) { ${enter(current, to)} } ${done(ST_SOFT_DELIVERED)} }` +
          ` ${store} ${syncRsp} r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)};` +
          ` if (DS(m, ${vector}, ${lit(i.nextLo)}, ${lit(i.nextHi)})) { ${reloadRsp} ${MODE_RELOAD} ${go(RELOAD)} ${done(ST_SOFT_DELIVERED)} }` +
          ` @WB@ m.blockStopInsn = I[${k}]; m.blockExit = ${ST_STOP}; return n + ${k};`;
      }
    }
    // IRETQ, INT n / INT3 and SYSRET from 32-bit code read the mode from the Machine, written out
    // or through their handlers: it is stored first. (SYSCALL and SYSRETQ written out read only the
    // locals; the handlers they fall back to store it themselves.)
    const inline = i.op === I.OP_SYSCALL || (i.op === I.OP_SYSRET && i.rexW);
    tw.out.push(`{ ${inline ? "" : syncMode} ${code} }`);
    return true;
  };
  for (let j = 0; j <= last; j++) {
    current = j;
    // A block entered only through a fault's delivery finds the flags in the Machine.
    if (j > 0 && faults[j - 1]!) w.flag = null;
    w.out.push(`b${j}: {`);
    emitInstructions(w, starts[j]!, starts[j + 1]!, terminal);
    w.out.push("}");
  }
  // Falling out of the last block cannot happen (every path through it exits or continues).
  return assembleSource(w, MODE_LOCALS);
}
