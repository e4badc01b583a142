// Register-only loops run as WebAssembly (impl/compile/wasm-loop.ts) must be invisible: random
// loops of 32- and 64-bit register ALU, TEST, INC/DEC, NEG/NOT, MOV and XCHG instructions closed by
// every condition code (or DEC RSI / JNE), with register values at the carry, sign and overflow
// edges, end in spec's state at every step limit; and so do the loops the tier must decline
// (memory operands, 8- and 16-bit operands, ADC/SBB, SETcc/CMOVcc, a loop that sets no flags, a
// block whose branch does not go back to its start) — each of
// which it would get wrong if it took them. Each program also runs chunked, with budgets on both
// sides of the tier's minimum, against impl interpreted.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { compareStates, unionRanges } from "../../../contract/compare.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import { WASM_MIN_ITERATIONS, setWasmLoops, translateLoop } from "../../../impl/compile/wasm-loop.ts";
import { Assembler, Code, Register as R, buildGuest, defineLayout, mem, sym } from "../../../guest/index.ts";
import type { Block } from "../../../impl/blocks/block-cache.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { parseDocument } from "../../../contract/load.ts";

type CodeValue = (typeof Code)[keyof typeof Code];

/** Registers the random instructions use (RSI counts, R15 points at data, RSP is left alone). */
const REGS64 = [R.RAX, R.RCX, R.RDX, R.RBX, R.RBP, R.RDI, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14];
const REGS32 = [R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.EDI, R.R8D, R.R9D, R.R10D, R.R11D, R.R12D, R.R13D, R.R14D];
const REGS16 = [R.AX, R.CX, R.DX, R.BX];
const REGS8 = [R.AL, R.CL, R.DL, R.BL];
const DATA = 0x30000n;

const JCC: readonly CodeValue[] = [
  Code.Jo_rel8_64, Code.Jno_rel8_64, Code.Jb_rel8_64, Code.Jae_rel8_64, Code.Je_rel8_64, Code.Jne_rel8_64,
  Code.Jbe_rel8_64, Code.Ja_rel8_64, Code.Js_rel8_64, Code.Jns_rel8_64, Code.Jp_rel8_64, Code.Jnp_rel8_64,
  Code.Jl_rel8_64, Code.Jge_rel8_64, Code.Jle_rel8_64, Code.Jg_rel8_64,
];

/** The values registers start from: the edges of the halves, the sign bits, small numbers. */
const EDGES = [0n, 1n, 2n, 3n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x1_00000000n, 0x7fffffff_ffffffffn,
  0x80000000_00000000n, 0xffffffff_ffffffffn, 0xffffffff_fffffffdn, 0x12345678_9abcdef0n, 0xfffffffe_80000001n];
const valueArb = fc.oneof(fc.constantFrom(...EDGES), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));

/** One instruction as (code, operands); `declined` marks forms the tier must not take. */
interface Op {
  readonly code: CodeValue;
  readonly operands: (number | bigint | ReturnType<typeof mem>)[];
  readonly declined: boolean;
}

const ALU64: readonly [CodeValue, CodeValue, CodeValue, CodeValue][] = [
  // rm,r  r,rm  rm,imm8  rm,imm32
  [Code.Add_rm64_r64, Code.Add_r64_rm64, Code.Add_rm64_imm8, Code.Add_rm64_imm32],
  [Code.Or_rm64_r64, Code.Or_r64_rm64, Code.Or_rm64_imm8, Code.Or_rm64_imm32],
  [Code.And_rm64_r64, Code.And_r64_rm64, Code.And_rm64_imm8, Code.And_rm64_imm32],
  [Code.Sub_rm64_r64, Code.Sub_r64_rm64, Code.Sub_rm64_imm8, Code.Sub_rm64_imm32],
  [Code.Xor_rm64_r64, Code.Xor_r64_rm64, Code.Xor_rm64_imm8, Code.Xor_rm64_imm32],
  [Code.Cmp_rm64_r64, Code.Cmp_r64_rm64, Code.Cmp_rm64_imm8, Code.Cmp_rm64_imm32],
];
const ALU32: readonly [CodeValue, CodeValue, CodeValue, CodeValue][] = [
  [Code.Add_rm32_r32, Code.Add_r32_rm32, Code.Add_rm32_imm8, Code.Add_rm32_imm32],
  [Code.Or_rm32_r32, Code.Or_r32_rm32, Code.Or_rm32_imm8, Code.Or_rm32_imm32],
  [Code.And_rm32_r32, Code.And_r32_rm32, Code.And_rm32_imm8, Code.And_rm32_imm32],
  [Code.Sub_rm32_r32, Code.Sub_r32_rm32, Code.Sub_rm32_imm8, Code.Sub_rm32_imm32],
  [Code.Xor_rm32_r32, Code.Xor_r32_rm32, Code.Xor_rm32_imm8, Code.Xor_rm32_imm32],
  [Code.Cmp_rm32_r32, Code.Cmp_r32_rm32, Code.Cmp_rm32_imm8, Code.Cmp_rm32_imm32],
];

const regIndex = fc.integer({ min: 0, max: REGS64.length - 1 });
const imm8 = fc.integer({ min: -128, max: 127 });
const imm32 = fc.oneof(fc.constantFrom(0, 1, -1, 0x7fffffff, -0x80000000, 3, -3), fc.integer({ min: -0x80000000, max: 0x7fffffff }));

/** Instructions the tier translates. */
const takenOp: fc.Arbitrary<Op> = fc.oneof(
  fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 3 }), regIndex, regIndex, imm8, imm32)
    .map(([wide, row, form, a, b, i8, i32]): Op => {
      const regs = wide ? REGS64 : REGS32;
      const code = (wide ? ALU64 : ALU32)[row]![form]!;
      const src = form === 2 ? i8 : form === 3 ? i32 : regs[b]!;
      return { code, operands: [regs[a]!, src], declined: false };
    }),
  fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3 }), regIndex).map(([wide, k, a]): Op => ({
    code: (wide ? [Code.Inc_rm64, Code.Dec_rm64, Code.Neg_rm64, Code.Not_rm64] : [Code.Inc_rm32, Code.Dec_rm32, Code.Neg_rm32, Code.Not_rm32])[k]!,
    operands: [(wide ? REGS64 : REGS32)[a]!],
    declined: false,
  })),
  fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 }), regIndex, regIndex, valueArb, imm32).map(([wide, k, a, b, v, i32]): Op => {
    const regs = wide ? REGS64 : REGS32;
    switch (k) {
      case 0: return { code: wide ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, operands: [regs[a]!, regs[b]!], declined: false };
      case 1: return { code: wide ? Code.Mov_r64_rm64 : Code.Mov_r32_rm32, operands: [regs[a]!, regs[b]!], declined: false };
      case 2: return wide ? { code: Code.Mov_r64_imm64, operands: [regs[a]!, v], declined: false }
        : { code: Code.Mov_r32_imm32, operands: [regs[a]!, Number(v & 0xffffffffn)], declined: false };
      case 3: return { code: wide ? Code.Test_rm64_r64 : Code.Test_rm32_r32, operands: [regs[a]!, regs[b]!], declined: false };
      case 4: return { code: wide ? Code.Xchg_rm64_r64 : Code.Xchg_rm32_r32, operands: [regs[a]!, regs[b]!], declined: false };
      case 5: return { code: wide ? Code.Test_rm64_imm32 : Code.Test_rm32_imm32, operands: [regs[a]!, i32], declined: false };
      // The forms where the tier clears a 32-bit destination's upper half itself: XCHG with
      // EAX/RAX (90+r) and MOV r/m, imm32 (C7).
      case 6: return { code: wide ? Code.Xchg_r64_RAX : Code.Xchg_r32_EAX, operands: [regs[a]!, wide ? R.RAX : R.EAX], declined: false };
      default: return { code: wide ? Code.Mov_rm64_imm32 : Code.Mov_rm32_imm32, operands: [regs[a]!, i32], declined: false };
    }
  }),
  fc.constant<Op>({ code: Code.Mov_rm64_imm32, operands: [R.R14, -5], declined: false }),
);

/** Instructions the tier must decline. */
const declinedOp: fc.Arbitrary<Op> = fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 3 }), regIndex, fc.integer({ min: 0, max: 7 }))
  .map(([k, r, a, slot]): Op => {
    const disp = BigInt(slot * 8);
    switch (k) {
      case 0: return { code: Code.Add_r64_rm64, operands: [REGS64[a]!, mem(R.R15, disp)], declined: true };
      case 1: return { code: Code.Mov_rm64_r64, operands: [mem(R.R15, disp), REGS64[a]!], declined: true };
      case 2: return { code: Code.Add_rm16_r16, operands: [REGS16[r]!, REGS16[(r + 1) & 3]!], declined: true };
      case 3: return { code: Code.Sub_rm8_r8, operands: [REGS8[r]!, REGS8[(r + 2) & 3]!], declined: true };
      case 4: return { code: Code.Adc_rm64_r64, operands: [REGS64[a]!, REGS64[(a + 1) % REGS64.length]!], declined: true };
      case 5: return { code: Code.Sbb_rm32_imm8, operands: [REGS32[a]!, 1], declined: true };
      case 6: return { code: Code.Setb_rm8, operands: [REGS8[r]!], declined: true };
      case 7: return { code: Code.Cmovl_r64_rm64, operands: [REGS64[a]!, REGS64[(a + 3) % REGS64.length]!], declined: true };
      default: return { code: Code.Inc_rm16, operands: [REGS16[r]!], declined: true };
    }
  });

interface LoopCase {
  readonly body: readonly Op[];
  /** The branch closing the loop: a condition code index, or -1 for DEC RSI / JNE. */
  readonly jcc: number;
  readonly regs: readonly bigint[];
  readonly count: bigint;
}

const loopArb = (op: fc.Arbitrary<Op>): fc.Arbitrary<LoopCase> =>
  fc.record({
    body: fc.array(op, { minLength: 1, maxLength: 9 }),
    jcc: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 15 })),
    regs: fc.array(valueArb, { minLength: REGS64.length, maxLength: REGS64.length }),
    count: fc.oneof(fc.constantFrom(300n, 1n << 32n, 0n), fc.constantFrom(1n, 17n, 40n)),
  });

function loopState(c: LoopCase): ArchState {
  const l = defineLayout();
  const a = new Assembler();
  const s = a.section(l.code.kernel).label("loop");
  for (const op of c.body) s.emit(op.code, ...op.operands);
  if (c.jcc < 0) s.emit(Code.Dec_rm64, R.RSI).emit(Code.Jne_rel8_64, "loop");
  else s.emit(JCC[c.jcc]!, "loop");
  s.emit(Code.Hlt);
  const names = ["rax", "rcx", "rdx", "rbx", "rbp", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14"] as const;
  const regs: Record<string, bigint> = { rsi: c.count, r15: DATA };
  names.forEach((n, k) => (regs[n] = c.regs[k]!));
  return buildGuest(l, { code: a.assemble(), start: { regs } }).state;
}

/** `state` (built from `image`) with the Jcc rel8 at its label "branch" testing condition `cc`
 *  (opcode 70+cc): one build for sixteen programs. */
function withCondition(state: ArchState, image: ReturnType<Assembler["assemble"]>, cc: number): ArchState {
  const at = image.symbol("branch");
  const section = image.sections.find((x) => at >= x.origin && at < x.origin + BigInt(x.bytes.length))!;
  const code = section.bytes;
  const offset = Number(section.origin & 0xfffn);
  const memory = new Map(state.memory);
  let patched = 0;
  for (const [page, bytes] of state.memory) {
    if (offset + code.length > bytes.length || !code.every((b, k) => bytes[offset + k] === b)) continue;
    const copy = bytes.slice();
    copy[offset + Number(at - section.origin)] = 0x70 + cc;
    memory.set(page, copy);
    patched++;
  }
  expect(patched).toBe(1);
  return { ...state, memory };
}

function blocks(e: ImplEngine): Block[] {
  return [...e.machine.blocksBySlot].flatMap((map) => (map === undefined ? [] : [...map.values()]));
}

/** Whether the engine ran a block as a WebAssembly loop. */
function usedWasm(e: ImplEngine): boolean {
  return blocks(e).some((b) => b.compiled !== null && b.compiled.name === "wasmLoop");
}

/** impl (compiled, the tier on) in chunks against impl interpreted (no compiled code at all),
 *  whole states each time. */
function expectChunksAgree(state: ArchState, chunks: readonly number[]): ImplEngine {
  const ref = new ImplEngine({ compile: false });
  const impl = new ImplEngine();
  ref.load(state, "intel");
  impl.load(state, "intel");
  chunks.forEach((n, k) => {
    const a = ref.run(n);
    const b = impl.run(n);
    expect({ chunk: k, reason: b.reason, steps: b.steps }).toEqual({ chunk: k, reason: a.reason, steps: a.steps });
    const diff = compareStates(ref.state(), impl.state(), { rule: "exact", memory: unionRanges(ref.touched(), impl.touched()) }).differences;
    expect(diff.map((x) => `chunk ${k}: ${x.field}: interpreted ${x.a}, compiled ${x.b}`)).toEqual([]);
  });
  return impl;
}

afterEach(() => {
  setWasmLoops(true);
});

describe("register-only loops as WebAssembly", () => {
  it("random loops it translates end in spec's state, at every budget around its minimum", () => {
    let translated = 0;
    fc.assert(
      fc.property(loopArb(takenOp), (c) => {
        const state = loopState(c);
        const n = c.body.length + (c.jcc < 0 ? 2 : 1);
        expectAgreesWithSpec(state, 1500, "intel", { lockstep: false });
        const m = WASM_MIN_ITERATIONS * n;
        const impl = expectChunksAgree(state, [3 * n, m - 1, m, m + 1, 1, n - 1, 5 * m + 2, 2, 5000]);
        if (usedWasm(impl)) translated++;
      }),
      { seed: 1407, numRuns: 32 },
    );
    // The loops that ran long enough went through the tier (not a test of the JavaScript body).
    expect(translated).toBeGreaterThan(16);
  });

  it("loops with one instruction it must decline end in spec's state (and do not run as WebAssembly)", () => {
    fc.assert(
      fc.property(loopArb(takenOp), declinedOp, fc.nat(), (c, bad, at) => {
        const body = [...c.body];
        body.splice(at % (body.length + 1), 0, bad);
        const state = loopState({ ...c, body, jcc: -1, count: 300n });
        expectAgreesWithSpec(state, 1500, "intel", { lockstep: false });
        const impl = expectChunksAgree(state, [1500, 1, 5000]);
        expect(usedWasm(impl)).toBe(false);
      }),
      { seed: 1408, numRuns: 20 },
    );
  });

  it("every condition code after every kind of flag-setting instruction, at both sizes, over values of every sign", () => {
    // An inner loop (ADD walks RAX by an odd 64-bit step; the producer compares it with RCX, which
    // the outer loop moves by one) closed by the condition: it runs until the condition fails, so how
    // many iterations each inner run takes shows every decision the condition made.
    type Producer = (s: ReturnType<Assembler["section"]>, wide: boolean) => void;
    const r = (wide: boolean, k: 0 | 1 | 2) => (wide ? [R.RAX, R.RCX, R.RDX] : [R.EAX, R.ECX, R.EDX])[k]!;
    const producers: Record<string, Producer> = {
      cmp: (s, w) => s.emit(w ? Code.Cmp_rm64_r64 : Code.Cmp_rm32_r32, r(w, 0), r(w, 1)),
      sub: (s, w) => s.emit(w ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, r(w, 2), r(w, 0)).emit(w ? Code.Sub_rm64_r64 : Code.Sub_rm32_r32, r(w, 2), r(w, 1)),
      add: (s, w) => s.emit(w ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, r(w, 2), r(w, 0)).emit(w ? Code.Add_rm64_r64 : Code.Add_rm32_r32, r(w, 2), r(w, 1)),
      test: (s, w) => s.emit(w ? Code.Test_rm64_r64 : Code.Test_rm32_r32, r(w, 0), r(w, 1)),
      inc: (s, w) => s.emit(w ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, r(w, 2), r(w, 1)).emit(w ? Code.Inc_rm64 : Code.Inc_rm32, r(w, 2)),
      dec: (s, w) => s.emit(w ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, r(w, 2), r(w, 1)).emit(w ? Code.Dec_rm64 : Code.Dec_rm32, r(w, 2)),
      neg: (s, w) => s.emit(w ? Code.Mov_rm64_r64 : Code.Mov_rm32_r32, r(w, 2), r(w, 0)).emit(w ? Code.Neg_rm64 : Code.Neg_rm32, r(w, 2)),
    };
    let translated = 0;
    for (const produce of Object.values(producers)) {
      for (const wide of [true, false]) {
        const l = defineLayout();
        const a = new Assembler();
        const s = a.section(l.code.kernel).label("loop").emit(Code.Add_rm64_r64, R.RAX, R.RBX);
        produce(s, wide);
        s.label("branch")
          .emit(Code.Jo_rel8_64, "loop")
          .emit(Code.Add_rm64_r64, R.RCX, R.RBP)
          .emit(Code.Inc_rm64, R.R8)
          .emit(Code.Jmp_rel8_64, "loop");
        const image = a.assemble();
        const base = buildGuest(l, {
          code: image,
          // RCX crosses the operation size's signed edge one step at a time (INC/DEC overflow).
          start: { regs: { rax: 0x7ffffffe_fffffff0n, rbx: 0x9e3779b9_7f4a7c15n, rcx: wide ? 0x7fffffff_fffffff8n : 0x80000000_7ffffff8n, rbp: 1n } },
        }).state;
        for (let cc = 0; cc < 16; cc++) {
          const impl = expectChunksAgree(withCondition(base, image, cc), [3000, 17]);
          if (usedWasm(impl)) translated++;
        }
      }
    }
    // A condition that seldom holds seldom enters the inner loop's own block (its first iteration
    // runs in the block the outer loop jumps into), which then may never be compiled.
    expect(translated).toBeGreaterThan(190);
  });

  it("the int loop of the benchmarks runs as WebAssembly, in spec's state wherever it stops", () => {
    const l = defineLayout();
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("loop")
      .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
      .emit(Code.Xor_rm64_r64, R.RCX, R.RAX)
      .emit(Code.Add_rm64_r64, R.RDX, R.RCX)
      .emit(Code.Sub_rm64_imm8, R.RBX, 3)
      .emit(Code.Xor_rm64_r64, R.RDX, R.RBX)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    const state = buildGuest(l, { code: a.assemble(), start: { regs: { rsi: 2000n, rbx: 0x1_00000001n, rax: 0xffffffff_fffffff0n } } }).state;
    for (const steps of [7 * 16 + 3, 7 * 100, 7 * 2000 - 1, 7 * 2000, 7 * 2000 + 1, 20_000]) expectAgreesWithSpec(state, steps, "intel", { lockstep: false });
    const impl = expectChunksAgree(state, [50, 7 * 16, 7 * 16 - 1, 1000, 7 * 1500, 3, 10_000]);
    expect(usedWasm(impl)).toBe(true);
  });

  it("counted loops (DEC of a register nothing else touches, then JNE): every count, every budget, and the forms that are not", () => {
    // The counted form runs as many iterations as the counter holds (0: 2^size) without the DEC;
    // each variant below either is one (plain; a non-flag instruction after the DEC; 32-bit with
    // a high half to clear; a DEC and an INC before the counter's DEC whose CF its record keeps)
    // or must not be taken for one (the counter read or written elsewhere; a flag-setting
    // instruction after the DEC; JNS instead of JNE; SUB 1 instead of DEC).
    type Insn = [CodeValue, ...(number | string)[]];
    const counted = ["plain", "movAfter", "dec32", "carries", "incFirst"];
    const variants: Record<string, Insn[]> = {
      plain: [[Code.Add_rm64_r64, R.RAX, R.RBX], [Code.Dec_rm64, R.RSI], [Code.Jne_rel8_64, "loop"]],
      movAfter: [[Code.Add_rm64_r64, R.RAX, R.RBX], [Code.Dec_rm64, R.RSI], [Code.Mov_r64_rm64, R.RDI, R.RAX], [Code.Jne_rel8_64, "loop"]],
      dec32: [[Code.Xor_rm64_r64, R.RAX, R.RBX], [Code.Dec_rm32, R.ESI], [Code.Jne_rel8_64, "loop"]],
      carries: [[Code.Sub_rm64_r64, R.RAX, R.RBX], [Code.Dec_rm64, R.RDI], [Code.Inc_rm32, R.ECX], [Code.Dec_rm64, R.RSI], [Code.Jne_rel8_64, "loop"]],
      incFirst: [[Code.Inc_rm64, R.RCX], [Code.Dec_rm64, R.RSI], [Code.Jne_rel8_64, "loop"]],
      counterRead: [[Code.Add_rm64_r64, R.RAX, R.RSI], [Code.Dec_rm64, R.RSI], [Code.Jne_rel8_64, "loop"]],
      counterWritten: [[Code.Dec_rm64, R.RSI], [Code.Xor_rm32_r32, R.ESI, R.EBX], [Code.Dec_rm64, R.RSI], [Code.Jne_rel8_64, "loop"]],
      flagsAfter: [[Code.Dec_rm64, R.RSI], [Code.Add_rm64_r64, R.RAX, R.RBX], [Code.Jne_rel8_64, "loop"]],
      jns: [[Code.Add_rm64_r64, R.RAX, R.RBX], [Code.Dec_rm64, R.RSI], [Code.Jns_rel8_64, "loop"]],
      sub1: [[Code.Add_rm64_r64, R.RAX, R.RBX], [Code.Sub_rm64_imm8, R.RSI, 1], [Code.Jne_rel8_64, "loop"]],
    };
    const counts = [1n, 100n, (1n << 32n) + 3n, 0n, (1n << 64n) - 1n, 0xdead_0000_0013n];
    // The loop is entered through an indirect jump (so that its own block starts each pass, with
    // RSI = RDX: any count), again and again by an outer loop that halves RDX each pass — so the
    // compiled loop is also entered with RSI = 0 (2^64 iterations to the DEC's zero).
    for (const [name, body] of Object.entries(variants)) {
      const l = defineLayout();
      const a = new Assembler();
      const s = a.section(l.code.kernel)
        .emit(Code.Stc)
        .emit(Code.Mov_r64_imm64, R.R9, sym("loop"))
        .label("outer")
        .emit(Code.Mov_r64_rm64, R.RSI, R.RDX)
        .emit(Code.Shr_rm64_1, R.RDX, 1)
        .emit(Code.Jmp_rm64, R.R9)
        .label("loop");
      for (const [code, ...operands] of body) s.emit(code, ...operands);
      s.emit(Code.Inc_rm64, R.R10).emit(Code.Jmp_rel8_64, "outer");
      const base = buildGuest(l, { code: a.assemble(), start: { regs: { rax: 0xffffffff_00000005n, rbx: 0x80000000_00000001n, rcx: 0xfffffffen, rdi: 3n } } }).state;
      const n = body.length;
      for (const count of counts) {
        const state: ArchState = { ...base, gpr: base.gpr.map((v, k) => (k === 2 ? count : v)) };
        const m = WASM_MIN_ITERATIONS * n;
        const impl = expectChunksAgree(state, [3 * n, m - 1, m + 1, 2, n * 90, 7, 3000]);
        const loop = blocks(impl).find((x) => x.insns.length === n && x.compiled !== null);
        const isCounted = loop !== undefined && translateLoop(loop)?.counter === 6;
        if (count === 100n) expect({ name, counted: isCounted }).toEqual({ name, counted: counted.includes(name) });
      }
      for (const count of [17n, 0n]) {
        expectAgreesWithSpec({ ...base, gpr: base.gpr.map((v, k) => (k === 2 ? count : v)) }, 1500, "intel", { lockstep: false });
      }
    }
  });

  it("INC/DEC first in the iteration: the CF its record keeps, from the machine on entry", () => {
    // The first loop's INC record takes CF from the previous iteration's SUB (a borrow every other
    // time), the DEC's from the SUB; the second loop's INC/DEC records keep the CF set before the
    // loop (its exits store a DEC record with that CF): by STC (in RFLAGS) or by a CMP (in a lazy
    // record), 1 and 0.
    const setters: [CodeValue, ...number[]][] = [[Code.Stc], [Code.Cmp_rm64_r64, R.RAX, R.RBX], [Code.Cmp_rm64_r64, R.RBX, R.RAX]];
    for (const [setCarry, ...operands] of setters) {
      for (const withSub of [true, false]) {
        const l = defineLayout();
        const a = new Assembler();
        const s = a.section(l.code.kernel).emit(setCarry, ...operands).label("loop").emit(Code.Inc_rm64, R.RCX);
        if (withSub) s.emit(Code.Sub_rm64_r64, R.RAX, R.RBX);
        s.emit(Code.Dec_rm32, R.EDX).emit(Code.Jne_rel8_64, "loop").emit(Code.Hlt);
        const state = buildGuest(l, { code: a.assemble(), start: { regs: { rax: 1000n, rbx: 0x1_00000007n, rdx: 500n } } }).state;
        const n = withSub ? 4 : 3;
        for (const steps of [n * 40 + 1, n * 41 + 2, 2003]) expectAgreesWithSpec(state, steps, "intel", { lockstep: false });
        const impl = expectChunksAgree(state, [1, n * 20, 2, n * 16, n * 17 - 1, 1000, 5000]);
        expect(usedWasm(impl)).toBe(true);
      }
    }
  });

  it("a loop that sets no flags (its JCC reads flags from before it, its exits leave them) is declined", () => {
    for (const close of [Code.Jb_rel8_64, Code.Jmp_rel8_64]) {
      const l = defineLayout();
      const a = new Assembler();
      a.section(l.code.kernel)
        .emit(Code.Stc)
        .label("loop")
        .emit(Code.Mov_r64_rm64, R.RDI, R.RDX)
        .emit(Code.Xchg_rm64_r64, R.RDX, R.RCX)
        .emit(close, "loop")
        .emit(Code.Hlt);
      const state = buildGuest(l, { code: a.assemble(), start: { rflags: 0x8c7n, regs: { rcx: 7n, rdx: 9n } } }).state;
      expectAgreesWithSpec(state, 1200, "intel", { lockstep: false });
      const impl = expectChunksAgree(state, [600, 1, 2000]);
      expect(usedWasm(impl)).toBe(false);
    }
  });

  it("a register-only block whose JCC leaves forward is not a loop", () => {
    const l = defineLayout();
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("top")
      .emit(Code.Add_rm64_imm8, R.RAX, 1)
      .emit(Code.Sub_rm64_r64, R.RBX, R.RAX)
      .emit(Code.Jne_rel8_64, "other")
      .emit(Code.Hlt)
      .label("other")
      .emit(Code.Xor_rm64_r64, R.RCX, R.RBX)
      .emit(Code.Jmp_rel8_64, "top");
    const state = buildGuest(l, { code: a.assemble(), start: { regs: { rbx: 5000n } } }).state;
    expectAgreesWithSpec(state, 3000, "intel", { lockstep: false });
    expectChunksAgree(state, [1000, 7, 20_000]);
  });

  it("the same states with the tier off (the JavaScript body alone)", () => {
    fc.assert(
      fc.property(loopArb(takenOp), (c) => {
        const state = loopState(c);
        setWasmLoops(false);
        const impl = expectChunksAgree(state, [5000, 1, 7]);
        expect(usedWasm(impl)).toBe(false);
      }),
      { seed: 1409, numRuns: 20 },
    );
  });
});

describe("a host without WebAssembly", () => {
  it("loads impl and runs it as JavaScript (node --jitless has no WebAssembly): the same stop and state as here", () => {
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    const vector = "conformance/vectors/syscall-sysret-roundtrip.json";
    // The sources through cli/launch.js (a compiled copy, cached between runs), not tsx's hooks:
    // the same code, without ~0.5 CPU s of loading each module through the hooks without a JIT.
    const script = [
      `import { readFileSync } from "node:fs";`,
      `import { pathToFileURL } from "node:url";`,
      `import { launch } from "./cli/launch.js";`,
      `const source = (path) => launch(new URL(path, pathToFileURL(${JSON.stringify(root)})));`,
      `const { parseDocument } = await source("contract/load.ts");`,
      `const { ImplEngine } = await source("impl/engine.ts");`,
      `const e = new ImplEngine();`,
      `e.load(parseDocument(readFileSync(${JSON.stringify(vector)})).state, "intel");`,
      `const stop = e.run(1000);`,
      `console.log(JSON.stringify({ wasm: typeof WebAssembly, reason: stop.reason, steps: stop.steps, rip: e.state().rip.toString(16) }));`,
    ].join("\n");
    const child = spawnSync(process.execPath, ["--jitless", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(child.stderr.replace(/.*expose_wasm.*\n?/g, "")).toBe("");
    const here = new ImplEngine();
    here.load(parseDocument(readFileSync(root + vector)).state, "intel");
    const stop = here.run(1000);
    expect(JSON.parse(child.stdout)).toEqual({ wasm: "undefined", reason: stop.reason, steps: stop.steps, rip: here.state().rip.toString(16) });
  });
});
