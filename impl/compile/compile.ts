// The block compiler: turns a hot decoded block (64-bit mode) into a JavaScript function.
//
// What the generated code does that the interpreter does not:
//   * guest registers live in JS locals for the whole block (loaded at entry, written back at
//     every exit and around interpreter calls: writer.ts);
//   * flags stay in locals: each flag-setting instruction assigns the lazy record's operands to
//     locals and only exits store them into the Machine; conditional branches test the operands
//     directly (flags.ts);
//   * memory operands go through the block page cache, a copy of one TLB entry (memory-operands.ts);
//   * a block whose last instruction jumps back to its first loops inside the function while the
//     step budget allows a whole further iteration (block-end.ts).
// Instructions it does not translate (instructions.ts) run their interpreter handler; a
// block-ending SYSCALL/SYSRET/IRET/... runs its handler at the block's end, INT n / INT3 are
// delivered by the block, other block-ending instructions that raise events are left to the
// engine (exit status ST_STOP with Machine.blockStopInsn set): block-end.ts.
//
// Untrusted guests: the generated source contains only numbers produced by the decoder
// (register numbers, sizes, immediates, displacements, RIPs) and fixed templates — never guest
// bytes or strings.
//
// Invalidation: a compiled function is the cache entry of its Block (blocks/block-cache.ts) and
// dies with it; the block page cache inside it is emptied after every Machine call.
import type { Block, BlockFn } from "../blocks/block-cache.ts";
import { endsBlock } from "../blocks/block-cache.ts";
import * as I from "../insn.ts";
import type { Insn } from "../insn.ts";
import { HANDLERS } from "../handlers.ts";
import { PARITY, carry, condition } from "../flags.ts";
import { deliverSoft } from "../deliver.ts";
import { compiledLoad, compiledRmwCommit, compiledRmwRead, compiledStore } from "../memory/compiled-access.ts";
import { BlockWriter, exitAfter, lit, loopCounter, stopBefore } from "./writer.ts";
import { emitInstruction } from "./instructions.ts";
import { emitBranch, fallback, softInt, terminalCall } from "./block-end.ts";
import { wasmLoop } from "./wasm-loop.ts";

export { ST_STOP } from "./writer.ts";

/**
 * Executions of a block before it is compiled. Compiling costs about what a thousand interpreted
 * runs of a block do (building the source, 30-50 µs; V8 parsing it and running the new function
 * unoptimised until it is hot), so a block is compiled only once it has shown it will run often:
 * a kernel run from a fresh load (bench/kernels.ts) compiled hundreds of blocks that then ran a
 * few dozen times each, and ran several times slower than interpreted. Hot loops pass this in
 * microseconds. Tests lower it (test/setup.ts: setCompileAfter) so that short test programs
 * exercise compiled code; any value gives the same results, only sooner or later compiled.
 */
export const DEFAULT_COMPILE_AFTER = 1024;
export let COMPILE_AFTER = DEFAULT_COMPILE_AFTER;

/** Sets COMPILE_AFTER (≥ 1); returns the previous value. */
export function setCompileAfter(runs: number): number {
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`compileAfter: expected a whole number >= 1, got ${runs}`);
  const previous = COMPILE_AFTER;
  COMPILE_AFTER = runs;
  return previous;
}

/** Block enders translated natively (near branches). */
const NATIVE_ENDERS = new Set([I.OP_JMP, I.OP_JCC, I.OP_CALL, I.OP_RET, I.OP_JMP_RM, I.OP_CALL_RM]);
/** Block enders that raise events or stop the run, string instructions (which may run several
 *  iterations, each a step) and port I/O (the devices act after the step is counted): the engine
 *  executes them (ST_STOP). */
const ENGINE_ENDERS = new Set([I.OP_INT, I.OP_INT3, I.OP_INT1, I.OP_INTO, I.OP_UD, I.OP_GP0, I.OP_UNSUP,
  I.OP_MOVS, I.OP_STOS, I.OP_LODS, I.OP_CMPS, I.OP_SCAS, I.OP_IN, I.OP_OUT]);

/** What the generated code may call, as the factory's parameters (in this order). */
const FACTORY_PARAMS = ["H", "I", "P", "C", "CF", "DS", "LD", "ST", "RMW", "COMMIT"] as const;
type Factory = (
  handlers: typeof HANDLERS, insns: readonly Insn[], parity: Uint8Array, cond: typeof condition, cf: typeof carry,
  deliverSoftInt: typeof deliverSoft, load: typeof compiledLoad, store: typeof compiledStore,
  rmwRead: typeof compiledRmwRead, rmwCommit: typeof compiledRmwCommit,
) => BlockFn;

/** What happens when generated source fails to compile (a template bug, never the guest's doing:
 *  the source holds only decoder-produced numbers). The block then runs interpreted, which is
 *  correct but slow, so the failure must not pass unseen: production counts it and warns once
 *  (process warning); the test suite installs a handler that throws (test/setup.ts), so any
 *  compile failure fails the test that caused it. */
export type CompileFailureHandler = (error: Error, source: string) => void;

/** Compile failures since the process started, and the first one's message. */
export const compileFailures = { count: 0, first: "" };

const warnOnce: CompileFailureHandler = (error) => {
  if (compileFailures.count > 1) return;
  const warn = (globalThis as { process?: { emitWarning?: (message: string) => void } }).process?.emitWarning;
  warn?.(`ringspec impl: a block failed to compile and runs interpreted (${error.name}: ${error.message}); please report it`);
};
let onCompileFailure: CompileFailureHandler = warnOnce;

/** Replaces the compile-failure handler (returns the previous one). */
export function setCompileFailureHandler(handler: CompileFailureHandler): CompileFailureHandler {
  const previous = onCompileFailure;
  onCompileFailure = handler;
  return previous;
}

/**
 * Factories by their source text, shared by every Machine of the process: the source is a pure
 * function of the block's decoded instructions, and a factory's code depends on nothing else (the
 * instructions themselves are its argument), so an entry can never be stale. Reusing the factory
 * reuses V8's parsed and optimized code when the same guest code is compiled again (another
 * load() of the same kernel, the same user program mapped in several frames). Bounded: emptied
 * when full.
 */
const factories = new Map<string, Factory>();
const MAX_FACTORIES = 4096;

/** Compiles a block, or returns null when it is not worth it / not supported (then interpreted). */
export function compileBlock(b: Block): BlockFn | null {
  const first = b.insns[0]!;
  if (first.mode !== I.MODE_64) return null;
  // A block of one event-raising or string/I-O instruction is left to the engine; a lone
  // SYSCALL/SYSRET/IRET/... or INT n compiles to its handler call (the benchmarks' loops and
  // kernels' entry paths run such blocks on every round trip).
  if (endsBlock(first.op) && !NATIVE_ENDERS.has(first.op) && ENGINE_ENDERS.has(first.op) && first.op !== I.OP_INT && first.op !== I.OP_INT3) return null;
  const src = blockSource(b);
  let factory: Factory;
  try {
    let cached = factories.get(src);
    if (cached === undefined) {
      cached = new Function(...FACTORY_PARAMS, src) as Factory;
      if (factories.size >= MAX_FACTORIES) factories.clear();
      factories.set(src, cached);
    }
    factory = cached;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    if (compileFailures.count++ === 0) compileFailures.first = `${error.name}: ${error.message}`;
    onCompileFailure(error, src);
    return null;
  }
  const js = factory(HANDLERS, b.insns, PARITY, condition, carry, deliverSoft, compiledLoad, compiledStore,
    compiledRmwRead, compiledRmwCommit);
  // A register-only loop runs its iterations as WebAssembly (compile/wasm-loop.ts), `js` below
  // WASM_MIN_ITERATIONS whole iterations.
  try {
    return wasmLoop(b, js) ?? js;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    if (compileFailures.count++ === 0) compileFailures.first = `${error.name}: ${error.message}`;
    onCompileFailure(error, `WebAssembly loop of the block at ${b.ripHi.toString(16)}:${(b.ripLo >>> 0).toString(16)}`);
    return js;
  }
}

/** The JavaScript source compileBlock builds (also for diagnostics and tests). */
export function blockSource(b: Block): string {
  const w = new BlockWriter(b);
  emitInstructions(w, 0, w.n);
  return assembleSource(w);
}

/**
 * Emits instructions [from, to) of the writer's block: a block-ending last instruction as its
 * kind of end (unless `terminal` emits it: engine/trace.ts chains transitions), a block cut at the
 * page end or MAX_BLOCK as an exit after its last instruction.
 */
export function emitInstructions(w: BlockWriter, from: number, to: number,
  terminal: ((w: BlockWriter, k: number) => boolean) | null = null): void {
  const insns = w.b.insns;
  for (let k = from; k < to; k++) {
    const i = insns[k]!;
    if (k === to - 1 && endsBlock(i.op)) {
      if (terminal !== null && terminal(w, k)) break;
      if (NATIVE_ENDERS.has(i.op)) emitBranch(w, k);
      else if (i.op === I.OP_INT || i.op === I.OP_INT3) softInt(w, k);
      else if (ENGINE_ENDERS.has(i.op)) w.out.push(stopBefore(w, k));
      else terminalCall(w, k);
      break;
    }
    if (i.op === I.OP_JMP) {
      // A jump the block followed (blocks/block-cache.ts): the next instruction is its target.
      continue;
    }
    if (!emitInstruction(w, k)) fallback(w, k);
    if (k === to - 1) {
      // Block cut at the page end or MAX_BLOCK.
      w.out.push(exitAfter(w, k, lit(i.nextLo), lit(i.nextHi)));
    }
  }
}

/** The whole function source around the writer's statements: register locals loaded at entry,
 *  written back and reloaded where the placeholders stand. `prologue` goes before the loop. */
export function assembleSource(w: BlockWriter, prologue = ""): string {
  const used = [...w.used].sort((a, b) => a - b);
  const written = [...w.written].sort((a, b) => a - b);
  const load = used.map((n) => `let r${n}l = r[${2 * n}], r${n}h = r[${2 * n + 1}];`).join(" ");
  const reload = used.map((n) => `r${n}l = r[${2 * n}]; r${n}h = r[${2 * n + 1}];`).join(" ") + w.afterReload;
  const writeBack = w.beforeWriteBack + written.map((n) => `r[${2 * n}] = r${n}l; r[${2 * n + 1}] = r${n}h;`).join(" ");
  const body = w.out.join("\n").split("@WB@").join(writeBack).split("@RL@").join(reload);
  // With shared exits (a trace), the loop is left by `break out` and the registers written back once.
  const shared = w.sharedExit;
  return `"use strict";
return function block(m, budget) {
const r = m.regs, T = m.tlb;
let M = m.pool32, M8 = m.pool8;
let pageTag = -1, pageTagHi = 0, pageClasses = 0, pageBase = 0, blockEnd = false;
let stackTag = -1, stackTagHi = 0, stackClasses = 0, stackBase = 0;
let pa_l = 0, pa_h = 0, pb_l = 0, pb_h = 0, pr_l = 0, pr_h = 0, pc = 0;
${load}
${prologue}
${w.loop ? loopCounter(w) : "let n = 0;"}${shared ? " let ret = 0;" : ""}
${shared ? "out: " : ""}for (;;) {
${body}
}${shared ? `\n${writeBack}\nreturn ret;` : ""}
};`;
}

/**
 * Instantiates generated source with the standard factory arguments for `insns` plus the caller's
 * own (`extra`: name → value, engine/trace.ts). Not cached (the extra values belong to one
 * Machine). Null when the source fails to compile (counted and reported as compileBlock does).
 */
export function instantiate(src: string, insns: readonly Insn[], extra: ReadonlyMap<string, unknown>): BlockFn | null {
  try {
    const make = new Function(...FACTORY_PARAMS, ...extra.keys(), src) as (...args: unknown[]) => BlockFn;
    return make(HANDLERS, insns, PARITY, condition, carry, deliverSoft, compiledLoad, compiledStore, compiledRmwRead,
      compiledRmwCommit, ...extra.values());
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    if (compileFailures.count++ === 0) compileFailures.first = `${error.name}: ${error.message}`;
    onCompileFailure(error, src);
    return null;
  }
}
