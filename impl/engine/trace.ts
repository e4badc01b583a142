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
// the next instruction, registers and flags stored), and the run loop carries on. The guards:
//   * the next block is still valid (its frame not written) and starts at RIP;
//   * the step budget covers the whole next block (a step limit never lands inside a block);
//   * after a Machine call (SYSCALL/SYSRET/IRETQ handlers, INT delivery): 64-bit mode, no write
//     reached a code or paging frame (Machine.blockEnd), no single-step trap, NMI, IRQ, HLT,
//     shutdown or exit pending, the timer not counting, TF = RF = 0, no interrupt shadow, and the
//     TLB maps RIP's page for a fetch at the current CPL to the next block's frame (so CR3, CR0,
//     CR4, paging, SMEP and the CPL are all covered);
//   * across a plain branch into another page: the same TLB fetch check.
// Everything a transition depends on (STAR, LSTAR, FMASK, EFER, the IDT, GDT, TSS, ...) is read by
// the transition's own code each time, and its outcome is checked against the next block's start,
// so no register or table write can leave a trace stale. Invalidation: a trace dies with its head
// (Block.valid); the other blocks are checked at each entry.
import type { Machine } from "../machine.ts";
import * as constsModule from "../consts.ts";
import * as I from "../insn.ts";
import type { Insn } from "../insn.ts";
import * as tlbModule from "../memory/tlb.ts";
import { Block, type BlockFn, endsBlock, mayCompile } from "../blocks/block-cache.ts";
import { assembleSource, emitInstructions, instantiate } from "../compile/compile.ts";
import { BlockWriter, ST_SOFT_DELIVERED, ST_STOP, flagStore, lit } from "../compile/writer.ts";
import { flagsLiveAtHead } from "../compile/flags.ts";
import { RELOAD } from "../compile/memory-operands.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BP, PAGE_SHIFT, RF, RIP_HI, RIP_LO, SHADOW_NONE, ST_END, ST_FAULT, ST_HALT, ST_UNSUP, TF } = constsModule;
const { TLB_CLASSES, TLB_INDEX_MASK, TLB_POOL_OFFSET, TLB_STRIDE_SHIFT, TLB_TAG, TLB_TAG_HI } = tlbModule;

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
  readonly blocks: readonly Block[];
  readonly starts: readonly number[];
}

/** Transitions a trace continues across when they end a block (handler or delivery in the trace). */
function transition(i: Insn): boolean {
  return i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET || (i.op === I.OP_IRET && i.operandSize === 8) ||
    i.op === I.OP_INT || i.op === I.OP_INT3;
}

/** Whether control may pass from block `b`'s end to the next block inside a trace. */
function chainable(b: Block): boolean {
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
  let count = head.insns.length;
  let b = head;
  while (blocks.length < MAX_TRACE_BLOCKS && chainable(b)) {
    const s = b.successor;
    if (s === null || s === head || !s.valid || s.compiled === null || s.mode !== I.MODE_64 || blocks.includes(s)) break;
    if (count + s.insns.length > MAX_TRACE_INSNS) break;
    blocks.push(s);
    count += s.insns.length;
    b = s;
  }
  return blocks.length >= 2 ? blocks : null;
}

/** Forms the trace headed by `head` (compiled, hot) if its successor links make one; at most once
 *  per block. Counted as a compiled block (the cache's cap bounds traces too). */
export function formTrace(m: Machine, head: Block): void {
  head.traceTried = true;
  const blocks = traceBlocks(head);
  if (blocks === null || !mayCompile(m)) return;
  const starts: number[] = [];
  const insns: Insn[] = [];
  for (const b of blocks) {
    starts.push(insns.length);
    insns.push(...b.insns);
  }
  starts.push(insns.length);
  const src = traceSource(blocks, starts, insns);
  const fn = instantiate(src, insns, new Map<string, unknown>([["BL", blocks]]));
  if (fn === null) return;
  head.trace = { fn, blocks, starts };
  m.blockBudget.compiled++;
}

/** The block of trace `t` that an exit with status `st` returning `count` steps ended in. */
export function traceExitBlock(t: Trace, count: number, st: number): Block {
  const total = t.starts[t.blocks.length]!;
  // Exits after instruction k return k + 1 (plus whole iterations); exits before it return k.
  const before = st === ST_FAULT || st === ST_STOP;
  const k = before ? count % total : (count - 1) % total;
  let j = t.blocks.length - 1;
  while (j > 0 && t.starts[j]! > k) j--;
  return t.blocks[j]!;
}

/** The JavaScript source of the trace over `blocks` (instructions `insns`, block j from starts[j]). */
export function traceSource(blocks: readonly Block[], starts: readonly number[], insns: readonly Insn[]): string {
  const head = blocks[0]!;
  const total = insns.length;
  const virtual = new Block(-1, head.ripLo, head.ripHi, insns, 0, head.poolOffset, I.MODE_64);
  const w = new BlockWriter(virtual);
  // Plain branches back to the head go through the guards below, not the block's own loop.
  w.loop = false;
  const last = blocks.length - 1;
  const closes = blocks[last]!.successor === head;
  /** The block after block j in the trace (j + 1, or the head when the trace loops), or -1. */
  const nextOf = (j: number) => (j < last ? j + 1 : closes ? 0 : -1);
  /** Statements entering block `to` from block `from`'s end (the guards have passed). */
  const enter = (from: number, to: number) => {
    if (to !== 0) return `break b${from};`;
    const store = flagsLiveAtHead(w) ? flagStore(w) : "";
    return `${store} n += ${total}; continue;`;
  };
  const budgetOk = (to: number) => `n + ${(to === 0 ? total : starts[to]!) + blocks[to]!.insns.length} <= budget`;
  const fetchOk = (to: number) => {
    const b = blocks[to]!;
    const tag = b.ripLo >>> PAGE_SHIFT;
    const e = (tag & TLB_INDEX_MASK) << TLB_STRIDE_SHIFT;
    return `T[${e + TLB_TAG}] === ${lit(tag)} && T[${e + TLB_TAG_HI}] === ${lit(b.ripHi)} && ` +
      `(T[${e + TLB_CLASSES}] & m.fetchClass) !== 0 && T[${e + TLB_POOL_OFFSET}] === ${lit(b.poolOffset)}`;
  };
  /** The full guard after a Machine call (header comment). */
  const afterCall = (to: number) => {
    const b = blocks[to]!;
    return `!m.blockEnd && BL[${to}].valid && m.mode64 && r[${RIP_LO}] === ${lit(b.ripLo)} && r[${RIP_HI}] === ${lit(b.ripHi)} && ` +
      `!m.pendingDebugTrap && !m.pendingNmi && m.pendingIrq < 0 && !m.halted && !m.shutdown && m.exitValue < 0 && ` +
      `!m.timerCounting && (m.flags & ${TF | RF}) === 0 && m.shadow === ${SHADOW_NONE} && ${budgetOk(to)} && ${fetchOk(to)}`;
  };
  let current = 0;
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
    return `if (${rip}!blockEnd && BL[${to}].valid && ${budgetOk(to)}${samePage ? "" : ` && ${fetchOk(to)}`}) { ${enter(current, to)} }`;
  };
  // Transitions: the handler or the delivery, then into the next block when the guards pass.
  const terminal = (tw: BlockWriter, k: number): boolean => {
    const i = insns[k]!;
    if (!transition(i)) return false;
    const to = nextOf(current);
    if (to < 0) return false;
    const pre = `@WB@ ${flagStore(tw)}`;
    tw.flag = null;
    const go = `if (${afterCall(to)}) { @RL@ ${RELOAD} ${enter(current, to)} }`;
    if (i.op === I.OP_INT || i.op === I.OP_INT3) {
      const vector = i.op === I.OP_INT3 ? BP : i.immLo & 0xff;
      tw.out.push(`{ ${pre} r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)};` +
        ` if (DS(m, ${vector}, ${lit(i.nextLo)}, ${lit(i.nextHi)})) { ${go} m.blockExit = ${ST_SOFT_DELIVERED}; return n + ${k + 1}; }` +
        ` m.blockStopInsn = I[${k}]; m.blockExit = ${ST_STOP}; return n + ${k}; }`);
      return true;
    }
    const trap = i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET ? `if ((m.flags & ${TF}) !== 0) m.pendingDebugTrap = true;` : "";
    tw.out.push(`{ ${pre} r[${RIP_LO}] = ${lit(i.nextLo)}; r[${RIP_HI}] = ${lit(i.nextHi)}; m.nextShadow = ${SHADOW_NONE};` +
      ` const s = H[${i.op}](m, I[${k}]);` +
      ` if (s === ${ST_FAULT} || s === ${ST_UNSUP}) { r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; if (s === ${ST_UNSUP}) m.blockStopInsn = I[${k}]; m.blockExit = s === ${ST_FAULT} ? ${ST_FAULT} : ${ST_STOP}; return n + ${k}; }` +
      ` m.shadow = m.nextShadow; ${trap} if (s === ${ST_HALT}) m.halted = true; ${go} m.blockExit = ${ST_END}; return n + ${k + 1}; }`);
    return true;
  };
  for (let j = 0; j <= last; j++) {
    current = j;
    w.out.push(`b${j}: {`);
    emitInstructions(w, starts[j]!, starts[j + 1]!, terminal);
    w.out.push("}");
  }
  // Falling out of the last block cannot happen (every path through it exits or continues).
  return assembleSource(w);
}
