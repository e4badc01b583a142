// The state of one block's translation (BlockWriter) and the pieces of generated code every
// instruction needs: guest registers as JS locals, and the block's exits.
//
// Generated-code names (fixed; the source holds only these and decoder-produced numbers):
//   m, budget        the Machine and the step budget (the block function's parameters)
//   r                m.regs; rNl / rNh the locals holding register N's halves
//   n                instructions retired by earlier loop iterations
//   pa_l pa_h, pb_l pb_h, pr_l pr_h, pc
//                    the last flag-setting operation's DEST, SRC, result and carry (compile/flags.ts)
//   M, M8, T         m.pool32, m.pool8, m.tlb; pageTag pageTagHi pageClasses pageBase: the block page
//                    cache (compile/memory-operands.ts); blockEnd: the local copy of m.blockEnd
//   H, I, P, C, CF, DS, LD, ST, RMW, COMMIT: the factory's parameters (compile/compile.ts)
//   @WB@ / @RL@      placeholders for writing back / reloading the register locals, filled in once
//                    the block's registers are known
import type { Block } from "../blocks/block-cache.ts";
import * as I from "../insn.ts";
import * as constsModule from "../consts.ts";
import { LAZY_DEC, LAZY_INC, LAZY_LOGIC } from "../flags.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { GP, RIP_HI, RIP_LO, ST_FAULT, ST_OK } = constsModule;

/** Exit status: stopped before Machine.blockStopInsn, which the engine executes next. */
export const ST_STOP = 7;
/** Exit status: the block's last instruction, INT n / INT3, was delivered by the block (a step,
 *  but not a completed instruction for the timer). */
export const ST_SOFT_DELIVERED = 8;

/** The operation whose flags the producer locals (pa_*, pb_*, pr_*, pc) describe. */
export interface FlagProducer {
  /** flags.ts LAZY_* */
  readonly op: number;
  readonly size: number;
}

/** Literal of an int32. */
export function lit(v: number): string {
  return String(v | 0);
}

export class BlockWriter {
  /** Registers the block reads or writes (loaded into locals at entry). */
  readonly used = new Set<number>();
  /** Registers the block writes (written back at every exit). */
  readonly written = new Set<number>();
  /** Whose flags the producer locals hold; null when the flags are in the Machine. */
  flag: FlagProducer | null = null;
  /** Generated statements, in order. */
  readonly out: string[] = [];
  /** Instructions in the block. */
  readonly n: number;
  /** The block's last instruction jumps back to its first: the body may loop in place (a trace
   *  turns this off: engine/trace.ts). */
  loop: boolean;
  /** Set by a trace (engine/trace.ts): statements to put before the exit after instruction k to
   *  (lo, hi) — the trace continues into its next block from there when its guards pass. */
  chainExit: ((k: number, lo: string, hi: string) => string) | null = null;
  /** Set by a trace: statements to put in the exit on a fault at instruction k (registers and
   *  flags stored, the fault raised) — the trace delivers it and continues into its handler. */
  chainFault: ((k: number) => string) | null = null;
  /** Set by a trace: the exits below leave through one epilogue that writes the registers back
   *  (`ret`, `break out`), instead of each writing them back itself (a trace has many exits). */
  sharedExit = false;
  /** Set by a trace (engine/trace.ts), which keeps the mode in locals across its blocks: the
   *  expressions the generated code reads the CPL and the fast access classes from, and statements
   *  run before every slow-path access call (LD/ST/RMW read the mode in the Machine), before every
   *  register write-back (@WB@: at exits and before handler calls) and after every register reload
   *  (@RL@: after handler calls). A block alone reads the Machine and needs none. */
  cpl = "m.cpl";
  readFast = "m.readFastClass";
  writeFast = "m.writeFastClass";
  beforeAccessCall = "";
  beforeWriteBack = "";
  afterReload = "";
  /** Set by a trace that keeps GS's base and KERNEL_GS_BASE in locals: the expressions of GS's
   *  base (lo, hi) the generated code reads, and the statements SWAPGS runs (after its CPL check). */
  gsBase: readonly [string, string] | null = null;
  swapgs: string | null = null;

  constructor(readonly b: Block) {
    const insns = b.insns;
    this.n = insns.length;
    const last = insns[this.n - 1]!;
    this.loop = (last.op === I.OP_JMP || last.op === I.OP_JCC) && last.targetLo === b.ripLo && last.targetHi === b.ripHi;
  }
}

// ---------------------------------------------------------------------------------------------
// registers
// ---------------------------------------------------------------------------------------------

/** The local holding register n's low half. */
export function regLo(w: BlockWriter, n: number): string {
  w.used.add(n);
  return `r${n}l`;
}

/** The local holding register n's high half. */
export function regHi(w: BlockWriter, n: number): string {
  w.used.add(n);
  return `r${n}h`;
}

/** [lo, hi] expressions of register n at `size` (values of sizes 1/2 are masked). */
export function readReg(w: BlockWriter, n: number, size: number): [string, string] {
  if (size === 8) return [regLo(w, n), regHi(w, n)];
  if (size === 4) return [regLo(w, n), "0"];
  if (size === 2) return [`(${regLo(w, n)} & 65535)`, "0"];
  if (n >= I.REG_AH) return [`((${regLo(w, n - I.REG_AH)} >> 8) & 255)`, "0"];
  return [`(${regLo(w, n)} & 255)`, "0"];
}

/** Statements writing (lo, hi) to register n at `size` (32-bit writes zero the high half; 8/16-bit
 *  writes merge). */
export function writeReg(w: BlockWriter, n: number, size: number, lo: string, hi: string): string {
  const base = n >= I.REG_AH && size === 1 ? n - I.REG_AH : n;
  w.written.add(base);
  const l = regLo(w, base), h = regHi(w, base);
  if (size === 8) return `${l} = ${lo}; ${h} = ${hi};`;
  if (size === 4) return `${l} = ${lo}; ${h} = 0;`;
  if (size === 2) return `${l} = (${l} & -65536) | ((${lo}) & 65535);`;
  if (n >= I.REG_AH) return `${l} = (${l} & -65281) | (((${lo}) & 255) << 8);`;
  return `${l} = (${l} & -256) | ((${lo}) & 255);`;
}

// ---------------------------------------------------------------------------------------------
// the step count
// ---------------------------------------------------------------------------------------------

/** Further whole iterations a looping block may run after its first (`L0`), counted down in
 *  `left`: an int32 counter, so the back edge costs one decrement and test (the budget itself may
 *  exceed 2^31). At most 2^30 − 1: a longer run leaves the block and is re-entered by the engine. */
export function loopCounter(w: BlockWriter): string {
  return loopCounterOf(w.n);
}

/** loopCounter for a block of N instructions (compile/wasm-loop.ts counts the same way). */
export function loopCounterOf(N: number): string {
  return `const L0 = budget >= ${N * 0x40000000} ? ${0x3fffffff} : ((budget / ${N}) | 0) - 1; let left = L0;`;
}

/** Steps retired when the block leaves with instruction k as the next: k instructions of this
 *  pass, plus the earlier iterations of a looping block (from its counter) or, in a trace
 *  (engine/trace.ts), the steps of its earlier passes (`n`). */
export function retired(w: BlockWriter, k: number): string {
  return w.loop ? `(L0 - left) * ${w.n} + ${k}` : `n + ${k}`;
}

// ---------------------------------------------------------------------------------------------
// exits: registers written back, flags stored, RIP and Machine.blockExit set, steps returned
// ---------------------------------------------------------------------------------------------

type ProducerFields = [string, string, string, string, string, string, string, string, string];

/** The lazy record (impl/flags.ts) of the current flag producer as expressions over the producer
 *  locals: [op, size, result lo, result hi, DEST lo, DEST hi, SRC lo, SRC hi, carry]. */
export function producerFields(f: FlagProducer): ProducerFields {
  const wide = f.size === 8;
  const rh = wide ? "pr_h" : "0";
  if (f.op === LAZY_INC || f.op === LAZY_DEC) {
    // INC/DEC leave DEST out of the producer locals (compile/instructions.ts): it is the result
    // ∓ 1, at the operation's size.
    const back = f.op === LAZY_INC ? "-" : "+";
    let lo: string, hi = "0";
    if (wide) {
      lo = `(pr_l ${back} 1) | 0`;
      hi = f.op === LAZY_INC ? "(pr_l === 0 ? (pr_h - 1) | 0 : pr_h)" : "(pr_l === -1 ? (pr_h + 1) | 0 : pr_h)";
    } else lo = `(pr_l ${back} 1) ${f.size === 4 ? "| 0" : f.size === 2 ? "& 65535" : "& 255"}`;
    return [String(f.op), String(f.size), "pr_l", rh, lo, hi, "1", "0", "pc"];
  }
  if (f.op === LAZY_LOGIC) return [String(f.op), String(f.size), "pr_l", rh, "0", "0", "0", "0", "0"];
  return [String(f.op), String(f.size), "pr_l", rh, "pa_l", wide ? "pa_h" : "0", "pb_l", wide ? "pb_h" : "0", "pc"];
}

/** Stores the current flag producer into the Machine (the lazy record); afterwards flags live there. */
export function flagStore(w: BlockWriter): string {
  const f = w.flag;
  return f === null ? "" : producerStore(f);
}

/** Stores producer `f`'s lazy record from the producer locals (flagStore; compile/wasm-loop.ts). */
export function producerStore(f: FlagProducer): string {
  const [op, size, rl, rh, al, ah, bl, bh, c] = producerFields(f);
  // A logic operation's carry is not part of its record (never read).
  const carry = f.op === LAZY_LOGIC ? "" : ` m.lazyCarry = ${c};`;
  return `m.lazyOp = ${op}; m.lazySize = ${size}; m.lazyResultLo = ${rl}; m.lazyResultHi = ${rh}; m.lazyDestLo = ${al}; ` +
    `m.lazyDestHi = ${ah}; m.lazySrcLo = ${bl}; m.lazySrcHi = ${bh};${carry}`;
}

/** Returns `count` steps: directly, or through the shared epilogue (BlockWriter.sharedExit). */
function leave(w: BlockWriter, count: string, shared: boolean): string {
  return shared ? `ret = ${count}; break out;` : `return ${count};`;
}

/** Exit before instruction k with status `st` (RIP = instruction k). */
export function exitAt(w: BlockWriter, k: number, st: number, extra = ""): string {
  const i = w.b.insns[k]!;
  const chain = st === ST_FAULT && w.chainFault !== null ? w.chainFault(k) : "";
  // A chained fault's delivery needs the registers in the Machine: written back here.
  const shared = w.sharedExit && chain === "";
  return `{ ${shared ? "" : "@WB@"} ${flagStore(w)} ${extra} ${chain} r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; m.blockExit = ${st}; ${leave(w, retired(w, k), shared)} }`;
}

/** Exit on the fault a Machine call raised in instruction k. */
export function faultExit(w: BlockWriter, k: number): string {
  return exitAt(w, k, ST_FAULT);
}

/** Exit raising #GP(0) at instruction k. */
export function gpFaultExit(w: BlockWriter, k: number): string {
  return exitAt(w, k, ST_FAULT, `m.raise(${GP}, 0);`);
}

/** Exit after instruction k completed, continuing at (lo, hi) (expressions). */
export function exitAfter(w: BlockWriter, k: number, lo: string, hi: string, st = ST_OK): string {
  const chain = st === ST_OK && w.chainExit !== null ? w.chainExit(k, lo, hi) : "";
  return `{ ${chain} ${w.sharedExit ? "" : "@WB@"} ${flagStore(w)} r[${RIP_LO}] = ${lo}; r[${RIP_HI}] = ${hi}; m.blockExit = ${st}; ${leave(w, retired(w, k + 1), w.sharedExit)} }`;
}

/** Exit leaving instruction k to the engine (ST_STOP). */
export function stopBefore(w: BlockWriter, k: number): string {
  const i = w.b.insns[k]!;
  return `{ ${w.sharedExit ? "" : "@WB@"} ${flagStore(w)} r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; m.blockStopInsn = I[${k}]; m.blockExit = ${ST_STOP}; ${leave(w, retired(w, k), w.sharedExit)} }`;
}
