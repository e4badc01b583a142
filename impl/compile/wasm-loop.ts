// Register-only loops as WebAssembly: a block that loops on itself (its last instruction, JCC or
// JMP, goes back to its first) and touches nothing but general registers and the arithmetic flags
// runs its iterations in a WebAssembly function, each 64-bit register in an i64 local — one host
// instruction where the JavaScript body (compile/writer.ts: int32 halves) needs three to six for a
// 64-bit ADD, SUB or INC/DEC — and only the flags the loop's branch reads are computed (from the
// last flag-setting instruction's operands, as compile/flags.ts does in JavaScript).
//
// Why it stays invisible: such a loop cannot fault, write memory (so neither its own code nor
// paging structures), change TF, IF, the interrupt shadow or any cache, and it exits only after a
// whole iteration, at its branch — exactly where the JavaScript body exits. The step budget
// decides the iteration count exactly as there (writer.ts loopCounter: the budget already holds the
// timer's countdown, engine/run-block.ts): a budget under WASM_MIN_ITERATIONS whole iterations
// runs the JavaScript body; otherwise WebAssembly runs the budget's whole iterations and the rest
// of the budget (fewer steps than one iteration) is left to the engine, as the JavaScript body
// leaves it. On exit the registers the loop
// writes, RIP and the lazy flag record are stored as the JavaScript body's exit stores them
// (flagStore, the same text). Blocks run only while TF = 0 and no shadow is active (the run loop).
// test/impl/compile/wasm-loop.test.ts runs random register-only loops compiled here, compiled to
// JavaScript only, interpreted and uncached, against spec/.
//
// What is declined (the JavaScript body runs it): any memory operand, operand sizes 1 and 2, ADC,
// SBB, the flag readers SETcc/CMOVcc, any instruction without a translation below, and a loop with
// no flag-setting instruction (its JCC's flags, and the flags it leaves, come from outside it). An
// INC/DEC before the iteration's first other flag-setting instruction keeps CF as the iteration
// started: the Machine's on entry (passed in), then the previous iteration's last producer's.
//
// Caches: the compiled WebAssembly functions and the JavaScript wrappers, by their bytes / source
// text (pure functions of the decoded instructions, so an entry is never stale; bounded, emptied
// when full). All instances share one memory: the registers are passed in and out through it
// around each call (a call runs to completion; nothing else uses the memory meanwhile).
import type { Block, BlockFn } from "../blocks/block-cache.ts";
import * as I from "../insn.ts";
import type { Insn } from "../insn.ts";
import * as constsModule from "../consts.ts";
import { LAZY_ADD, LAZY_DEC, LAZY_INC, LAZY_LOGIC, LAZY_NONE, LAZY_SUB, carry } from "../flags.ts";
import { type FlagProducer, lit, loopCounterOf, producerStore } from "./writer.ts";
import { I32, I64, W, moduleBytes, sleb, uleb } from "./wasm-encode.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { RIP_HI, RIP_LO, ST_OK } = constsModule;

/** Fewest whole iterations a budget must allow for the WebAssembly body to run (below, the call's
 *  fixed cost — registers in and out — outweighs what it saves). */
export const WASM_MIN_ITERATIONS = 16;

let enabled = true;
/** Turns the WebAssembly tier on or off (tests compare both); returns the previous setting. */
export function setWasmLoops(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

/** The part of the platform's WebAssembly API used here (the project's TypeScript library setting,
 *  ES2022, does not declare it; Node and browsers provide it). */
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
}
const Wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

// The shared memory, as int32s: register n at [2n, 2n + 1] (the Machine's layout), then the flag
// producer's operands (i64 each), its carry and whether the branch was taken. Made at the first
// loop translated: a host without WebAssembly (node --jitless) runs every block as JavaScript.
let shared: { readonly memory: { readonly buffer: ArrayBuffer }; readonly X: Int32Array } | undefined;
function sharedMemory(api: WasmApi): { readonly memory: { readonly buffer: ArrayBuffer }; readonly X: Int32Array } {
  if (shared === undefined) {
    const memory = new api.Memory({ initial: 1 });
    shared = { memory, X: new Int32Array(memory.buffer) };
  }
  return shared;
}
const PA = 32, PB = 34, PR = 36, PC = 38, TAKEN = 39;

// Locals of the generated function.
const L_COUNT = 0, L_CIN = 1, L_LEFT = 2, L_TAKEN = 3, L_PC = 4, L_PA = 5, L_PB = 6, L_PR = 7, L_T = 8, L_REG0 = 9;

const SIGN = { 4: 0x80000000n, 8: -(1n << 63n) } as const;
/** JNE's condition code (tttn). */
const JNE = 5;
const MASK32 = 0xffffffffn;

class WasmWriter {
  readonly code: number[] = [];
  /** Register → local index. */
  readonly regLocals = new Map<number, number>();
  readonly written = new Set<number>();
  /** The flag-setting instruction whose operands pa/pb/pr hold; null before the first one of the
   *  iteration. */
  flag: FlagProducer | null = null;
  /** An INC/DEC before any other flag-setting instruction of the iteration keeps CF as the loop
   *  started (L_CIN, the Machine's; see translateLoop). */
  carryIn = false;

  op(...bytes: number[]): void {
    for (const b of bytes) this.code.push(b);
  }
  get(l: number): void {
    this.op(W.localGet, ...uleb(l));
  }
  set(l: number): void {
    this.op(W.localSet, ...uleb(l));
  }
  i64(v: bigint): void {
    this.op(W.i64Const, ...sleb(v));
  }
  reg(n: number): number {
    let l = this.regLocals.get(n);
    if (l === undefined) {
      l = L_REG0 + this.regLocals.size;
      this.regLocals.set(n, l);
    }
    return l;
  }
  /** Pushes register n at `size` (4: zero-extended low half). */
  read(n: number, size: number): void {
    this.get(this.reg(n));
    if (size === 4) this.mask(size);
  }
  /** Pops a value (already reduced to `size`) into register n. */
  write(n: number): void {
    this.written.add(n);
    this.set(this.reg(n));
  }
  mask(size: number): void {
    if (size === 4) {
      this.i64(MASK32);
      this.op(W.i64And);
    }
  }
  /** Pushes an immediate at `size` (8: sign-extended to 64 bits by the decoder's immHi). */
  imm(i: Insn, size: number): void {
    this.i64(size === 8 ? BigInt.asIntN(64, (BigInt(i.immHi) << 32n) | BigInt(i.immLo >>> 0)) : BigInt(i.immLo >>> 0));
  }
  /** Pushes CF of the current producer (i32 0/1); before the iteration's first, CF as the loop
   *  started. */
  carry(): void {
    const f = this.flag;
    if (f === null) {
      this.carryIn = true;
      this.get(L_CIN);
      return;
    }
    switch (f.op) {
      case LAZY_LOGIC: this.op(W.i32Const, 0); break;
      case LAZY_ADD: this.get(L_PR); this.get(L_PA); this.op(W.i64LtU); break;
      case LAZY_SUB: this.get(L_PA); this.get(L_PB); this.op(W.i64LtU); break;
      default: this.get(L_PC);
    }
  }
  /** Pushes (x & sign) !== 0 for the i64 on the stack. */
  signOf(size: 4 | 8): void {
    this.i64(SIGN[size]);
    this.op(W.i64And, W.i64Eqz, W.i32Eqz);
  }
  /** Pushes OF of the current producer. */
  overflow(f: FlagProducer): void {
    const size = f.size as 4 | 8;
    switch (f.op) {
      case LAZY_LOGIC: this.op(W.i32Const, 0); return;
      case LAZY_ADD: this.get(L_PA); this.get(L_PR); this.op(W.i64Xor); this.get(L_PB); this.get(L_PR); this.op(W.i64Xor, W.i64And); this.signOf(size); return;
      case LAZY_SUB: this.get(L_PA); this.get(L_PB); this.op(W.i64Xor); this.get(L_PA); this.get(L_PR); this.op(W.i64Xor, W.i64And); this.signOf(size); return;
      case LAZY_INC: this.get(L_PR); this.i64(SIGN[size]); this.op(W.i64Eq); return;
      default: this.get(L_PR); this.i64(size === 8 ? (1n << 63n) - 1n : 0x7fffffffn); this.op(W.i64Eq); return;
    }
  }
  /** Pushes condition code `cc` (tttn) of producer `f` (the current one). */
  condition(f: FlagProducer, cc: number): void {
    const size = f.size as 4 | 8;
    const zf = () => { this.get(L_PR); this.op(W.i64Eqz); };
    const sf = () => { this.get(L_PR); this.signOf(size); };
    switch (cc >> 1) {
      case 0: this.overflow(f); break;
      case 1: this.carry(); break;
      case 2: zf(); break;
      case 3: this.carry(); zf(); this.op(W.i32Or); break;
      case 4: sf(); break;
      case 5: this.get(L_PR); this.i64(255n); this.op(W.i64And, W.i64Popcnt); this.i64(1n); this.op(W.i64And, W.i64Eqz); break;
      case 6: sf(); this.overflow(f); this.op(W.i32Xor); break;
      default: zf(); sf(); this.overflow(f); this.op(W.i32Xor, W.i32Or); break;
    }
    if ((cc & 1) !== 0) this.op(W.i32Eqz);
  }
}

/** Emits instruction i (not the block's last); false when it has no translation here. */
function emit(w: WasmWriter, i: Insn): boolean {
  const size = i.operandSize;
  if (i.op === I.OP_NOP || i.op === I.OP_JMP) return true;
  if (i.mod !== 3 && i.mod !== -1) return false;
  if (size !== 4 && size !== 8) return false;
  switch (i.op) {
    case I.OP_MOV_R_I:
      w.imm(i, size);
      w.write(i.reg);
      return true;
    case I.OP_MOV_RM_I:
      w.imm(i, size);
      w.write(i.rm);
      return true;
    case I.OP_MOV_R_RM:
      w.read(i.rm, size);
      w.write(i.reg);
      return true;
    case I.OP_MOV_RM_R:
      w.read(i.reg, size);
      w.write(i.rm);
      return true;
    case I.OP_XCHG:
      w.read(i.rm, size);
      w.set(L_T);
      w.read(i.reg, size);
      w.write(i.rm);
      w.get(L_T);
      w.write(i.reg);
      return true;
    case I.OP_NOT:
      w.read(i.rm, size);
      w.i64(size === 8 ? -1n : MASK32);
      w.op(W.i64Xor);
      w.write(i.rm);
      return true;
    case I.OP_ALU_RM_R: case I.OP_ALU_RM_I: case I.OP_ALU_R_RM: case I.OP_TEST_RM_R: case I.OP_TEST_RM_I: {
      const test = i.op === I.OP_TEST_RM_R || i.op === I.OP_TEST_RM_I;
      const sub = test ? I.ALU_AND : i.sub;
      if (sub === I.ALU_ADC || sub === I.ALU_SBB) return false;
      const dst = i.op === I.OP_ALU_R_RM ? i.reg : i.rm;
      w.read(dst, size);
      w.set(L_PA);
      if (i.op === I.OP_ALU_RM_I || i.op === I.OP_TEST_RM_I) w.imm(i, size);
      else w.read(i.op === I.OP_ALU_R_RM ? i.rm : i.reg, size);
      w.set(L_PB);
      w.get(L_PA);
      w.get(L_PB);
      switch (sub) {
        case I.ALU_ADD: w.op(W.i64Add); w.mask(size); break;
        case I.ALU_SUB: case I.ALU_CMP: w.op(W.i64Sub); w.mask(size); break;
        case I.ALU_AND: w.op(W.i64And); break;
        case I.ALU_OR: w.op(W.i64Or); break;
        default: w.op(W.i64Xor);
      }
      w.set(L_PR);
      if (!test && sub !== I.ALU_CMP) {
        w.get(L_PR);
        w.write(dst);
      }
      w.flag = { op: sub === I.ALU_ADD ? LAZY_ADD : sub === I.ALU_SUB || sub === I.ALU_CMP ? LAZY_SUB : LAZY_LOGIC, size };
      return true;
    }
    case I.OP_NEG:
      w.i64(0n);
      w.set(L_PA);
      w.read(i.rm, size);
      w.set(L_PB);
      w.get(L_PA);
      w.get(L_PB);
      w.op(W.i64Sub);
      w.mask(size);
      w.set(L_PR);
      w.get(L_PR);
      w.write(i.rm);
      w.flag = { op: LAZY_SUB, size };
      return true;
    case I.OP_INC: case I.OP_DEC: {
      // CF is unchanged: the producer before's (its record keeps it).
      w.carry();
      w.set(L_PC);
      w.read(i.rm, size);
      w.i64(1n);
      w.op(i.op === I.OP_INC ? W.i64Add : W.i64Sub);
      w.mask(size);
      w.set(L_PR);
      w.get(L_PR);
      w.write(i.rm);
      w.flag = { op: i.op === I.OP_INC ? LAZY_INC : LAZY_DEC, size };
      return true;
    }
    default:
      return false;
  }
}

/** What a block compiles to here: the function's bytes, and what the JavaScript wrapper needs. */
interface WasmLoop {
  readonly bytes: Uint8Array;
  readonly loads: readonly number[];
  readonly stores: readonly number[];
  readonly flag: FlagProducer;
  /** The function takes CF as the loop starts (its second parameter). */
  readonly carryIn: boolean;
  /** A counted loop: the DEC of this register (32/64-bit, touched by nothing else in the loop)
   *  is the last flag-setting instruction and JNE closes the loop, so the iterations to its exit
   *  are the register's value: the wrapper computes them, the function runs exactly that many
   *  without the DEC or the test, and the wrapper writes the register and the DEC's record
   *  (its CF, from the producer before it, is computed after the loop); the DEC's size is then
   *  `flag.size`. -1: not counted. */
  readonly counter: number;
}

/** The WebAssembly translation of a self-looping block, or null when it has something declined. */
export function translateLoop(b: Block): WasmLoop | null {
  const insns = b.insns;
  const n = insns.length;
  const last = insns[n - 1]!;
  if (!(last.op === I.OP_JMP || last.op === I.OP_JCC) || last.targetLo !== b.ripLo || last.targetHi !== b.ripHi) return null;
  // The counted form's candidate: JNE after a register DEC.
  let dec = -1;
  if (last.op === I.OP_JCC && last.sub === JNE) {
    for (let k = n - 2; k >= 0; k--) {
      const i = insns[k]!;
      if (i.op === I.OP_DEC && i.mod === 3 && (i.operandSize === 8 || i.operandSize === 4)) {
        dec = k;
        break;
      }
    }
  }
  return (dec >= 0 ? translate(b, dec) : null) ?? translate(b, -1);
}

/** translateLoop with instruction `dec` (≥ 0) as the counted form's DEC, or the general form. */
function translate(b: Block, dec: number): WasmLoop | null {
  const insns = b.insns;
  const n = insns.length;
  const last = insns[n - 1]!;
  const w = new WasmWriter();
  const body = w.code;
  // left = count
  w.get(L_COUNT);
  w.set(L_LEFT);
  w.op(W.loop, 0x40);
  let beforeDec: FlagProducer | null = null;
  for (let k = 0; k < n - 1; k++) {
    if (k === dec) {
      beforeDec = w.flag;
      continue;
    }
    if (!emit(w, insns[k]!)) return null;
  }
  const counter = dec >= 0 ? insns[dec]!.rm : -1;
  if (dec >= 0) {
    // Nothing else touches the counter; no flag-setting instruction follows the DEC.
    if (w.regLocals.has(counter) || w.flag !== beforeDec) return null;
    w.get(L_LEFT);
    w.op(W.i32Const, 1, W.i32Sub);
    w.op(W.localTee, ...uleb(L_LEFT));
    w.op(W.brIf, 0, W.end);
    // The DEC's record: CF as the DEC found it (from the producer before it, in the last iteration).
    w.carry();
    w.set(L_PC);
  } else {
    // A loop that sets no flags: its JCC reads, and its exits leave, the flags from before it.
    const flag = w.flag;
    if (flag === null) return null;
    if (last.op === I.OP_JCC) w.condition(flag, last.sub);
    else w.op(W.i32Const, 1);
    w.set(L_TAKEN);
    // L_CIN stays CF as the loop started: CF as a later iteration starts (the last producer's) would
    // differ only for an INC/DEC whose record no exit can see — another flag-setting instruction
    // follows it in the iteration, or every producer is an INC/DEC, which keep CF as it was.
    // left -= 1; again while taken && left !== 0
    w.get(L_LEFT);
    w.op(W.i32Const, 1, W.i32Sub);
    w.op(W.localTee, ...uleb(L_LEFT));
    w.op(W.i32Const, 0, W.i32Ne);
    w.get(L_TAKEN);
    w.op(W.i32And, W.brIf, 0, W.end);
  }
  // Registers, the producer's operands and the branch out to the shared memory.
  const store64 = (local: number, index: number) => {
    w.op(W.i32Const, 0);
    w.get(local);
    w.op(W.i64Store, 3, ...uleb(index * 4));
  };
  const store32 = (local: number, index: number) => {
    w.op(W.i32Const, 0);
    w.get(local);
    w.op(W.i32Store, 2, ...uleb(index * 4));
  };
  const stores = [...w.written].sort((a, c) => a - c);
  for (const r of stores) store64(w.reg(r), 2 * r);
  store64(L_PA, PA);
  store64(L_PB, PB);
  store64(L_PR, PR);
  store32(L_PC, PC);
  store32(L_TAKEN, TAKEN);
  // Iterations run: count − left.
  w.get(L_COUNT);
  w.get(L_LEFT);
  w.op(W.i32Sub);
  // Registers in: loaded before the loop.
  const loads = [...w.regLocals.keys()].sort((a, c) => a - c);
  const prologue: number[] = [];
  for (const r of loads) prologue.push(W.i32Const, 0, W.i64Load, 3, ...uleb(8 * r), W.localSet, ...uleb(w.regLocals.get(r)!));
  const locals = [I32, I32, I32, I64, I64, I64, I64, ...loads.map(() => I64)];
  // (The general form returned above when the loop sets no flags.)
  const flag: FlagProducer = dec >= 0 ? { op: LAZY_DEC, size: insns[dec]!.operandSize } : w.flag!;
  return {
    bytes: moduleBytes([I32, I32], [I32], locals, [...prologue, ...body]), loads, stores, flag, carryIn: w.carryIn,
    counter,
  };
}

/** The JavaScript around the WebAssembly function `F`: registers in, the call, registers, flags
 *  and RIP out as the JavaScript body `J` would leave them; `J` itself for small budgets. */
export function wrapperSource(b: Block, t: WasmLoop): string {
  const n = b.insns.length;
  const last = b.insns[n - 1]!;
  const ins = t.loads.map((r) => `X[${2 * r}] = r[${2 * r}]; X[${2 * r + 1}] = r[${2 * r + 1}];`).join(" ");
  const outs = t.stores.map((r) => `r[${2 * r}] = X[${2 * r}]; r[${2 * r + 1}] = X[${2 * r + 1}];`).join(" ");
  const counter = loopCounterOf(n);
  const carryIn = t.carryIn ? `(m.lazyOp === ${LAZY_NONE} ? m.flags & 1 : CF(m))` : "0";
  let run: string, result: string, taken: string;
  if (t.counter >= 0) {
    // Iterations to the DEC's zero: the counter's value (unsigned at its size; 0 wraps, 2^size).
    const c = t.counter;
    const wide = t.flag.size === 8;
    run = `const cl = r[${2 * c}]${wide ? `, ch = r[${2 * c + 1}]` : ""}; let cnt = L0 + 1;` +
      ` if (${wide ? "ch === 0 && " : ""}cl !== 0 && (cl >>> 0) < cnt) cnt = cl >>> 0;` +
      ` const it = F(cnt, ${carryIn});`;
    result = `const pr_l = (cl - it) | 0, pr_h = ${wide ? "(ch - (((cl >>> 0) < it) | 0)) | 0" : "0"}; r[${2 * c}] = pr_l; r[${2 * c + 1}] = pr_h;` +
      ` const pc = X[${PC}];`;
    taken = "(pr_l | pr_h) !== 0";
  } else {
    run = `const it = F(L0 + 1, ${carryIn});`;
    result = `const pa_l = X[${PA}], pa_h = X[${PA + 1}], pb_l = X[${PB}], pb_h = X[${PB + 1}], pr_l = X[${PR}], pr_h = X[${PR + 1}], pc = X[${PC}];`;
    taken = `X[${TAKEN}] !== 0`;
  }
  return `"use strict";
return function wasmLoop(m, budget) {
if (budget < ${n * WASM_MIN_ITERATIONS}) return J(m, budget);
const r = m.regs;
${ins}
${counter}
${run}
${outs}
${result}
${producerStore(t.flag)}
if (${taken}) { r[${RIP_LO}] = ${lit(last.targetLo)}; r[${RIP_HI}] = ${lit(last.targetHi)}; } else { r[${RIP_LO}] = ${lit(last.nextLo)}; r[${RIP_HI}] = ${lit(last.nextHi)}; }
m.blockExit = ${ST_OK};
return it * ${n};
};`;
}

type LoopFn = (count: number, carryIn: number) => number;
type Wrapper = (F: LoopFn, X: Int32Array, J: BlockFn, CF: typeof carry) => BlockFn;
const functions = new Map<string, LoopFn>();
const wrappers = new Map<string, Wrapper>();
const MAX_ENTRIES = 1024;

/**
 * The block as a WebAssembly loop behind `js` (its JavaScript body, run for small budgets), or
 * null when the block has something declined or the tier is off. Throws if the generated module or
 * wrapper fails to compile (a bug here: compile/compile.ts reports it as a compile failure).
 */
export function wasmLoop(b: Block, js: BlockFn): BlockFn | null {
  if (!enabled || Wasm === undefined) return null;
  const t = translateLoop(b);
  if (t === null) return null;
  const { memory, X } = sharedMemory(Wasm);
  const key = String.fromCharCode(...t.bytes);
  let f = functions.get(key);
  if (f === undefined) {
    const instance = new Wasm.Instance(new Wasm.Module(t.bytes), { e: { m: memory } });
    f = instance.exports.f as LoopFn;
    if (functions.size >= MAX_ENTRIES) functions.clear();
    functions.set(key, f);
  }
  const src = wrapperSource(b, t);
  let make = wrappers.get(src);
  if (make === undefined) {
    make = new Function("F", "X", "J", "CF", src) as Wrapper;
    if (wrappers.size >= MAX_ENTRIES) wrappers.clear();
    wrappers.set(src, make);
  }
  return make(f, X, js, carry);
}
