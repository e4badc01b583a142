// A block whose last branch jumps back to its own start runs as a loop inside one compiled
// function, its registers in JS locals, its flags materialised only at exits, its 64-bit
// arithmetic on int32 halves with the carry between them computed without a branch
// (impl/compile/). All of that must stay invisible: wherever the step limit lands (mid-iteration,
// on re-entry with budgets that end mid-iteration, with a limit beyond the loop counter's int32
// range), whatever carries and borrows the halves see, when the loop rewrites its own code, when
// TF becomes 1 inside it, when the timer's interrupt or a raised one becomes pending, and when an
// access in the middle of an iteration faults — every case ends in the state spec/ reaches.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { compareStates, unionRanges } from "../../../contract/compare.ts";
import { SpecEngine } from "../../../spec/engine.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import { DEFAULT_COMPILE_AFTER, setCompileAfter } from "../../../impl/compile/compile.ts";
import { Assembler, Code, Register as R, buildGuest, defineLayout, mem, sym } from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";

const MASK64 = (1n << 64n) - 1n;

/** 15 instructions: 64-bit ADD/SUB register-register (carries and borrows between the halves
 *  about every other time; a SUB of equal low halves, which borrows nothing), with immediates
 *  (positive, negative, zero), INC and DEC crossing 2^32
 *  on the third iteration (the first compiled ones), XOR, CMP; the loop closes with JNE on RSI's
 *  DEC. */
function carryLoop(count: bigint): ArchState {
  const l = defineLayout();
  const a = new Assembler();
  a.section(l.code.kernel)
    .label("loop")
    .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
    .emit(Code.Xor_rm64_r64, R.RCX, R.RAX)
    .emit(Code.Add_rm64_r64, R.RDX, R.RCX)
    .emit(Code.Sub_rm64_imm8, R.RBX, 3)
    .emit(Code.Sub_rm64_r64, R.RDI, R.RCX)
    .emit(Code.Add_rm64_imm32, R.R8, 0x7fffffff)
    .emit(Code.Add_rm64_imm8, R.R9, -7)
    .emit(Code.Sub_rm64_imm8, R.R10, -9)
    .emit(Code.Inc_rm64, R.R11)
    .emit(Code.Add_rm64_imm8, R.R13, 0)
    .emit(Code.Sub_rm64_r64, R.R14, R.R15)
    .emit(Code.Cmp_rm64_r64, R.R12, R.RAX)
    .emit(Code.Xor_rm64_r64, R.RDX, R.RBX)
    .emit(Code.Dec_rm64, R.RSI)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  return buildGuest(l, {
    code: a.assemble(),
    start: {
      regs: {
        rax: 0x7fffffff_f0000000n, rbx: 0x00000001_0000000cn, rcx: 0x12345678_9abcdef0n, rdx: 0xffffffff_ffffff00n,
        rdi: 3n, r8: 0xffffffff_00000000n, r9: 5n, r10: MASK64 - 20n, r11: 0xffff_fffdn, r12: 0x80000000_00000000n, r13: MASK64, r14: 0x10_00000000n, r15: 0x1_00000000n,
        rsi: count,
      },
    },
  }).state;
}
const CARRY_LOOP_LENGTH = 15;

/** Runs spec/ and impl/ (compiled blocks) side by side, impl in chunks of the given sizes (spec
 *  the same chunks), comparing stops and whole states after every chunk. */
function expectChunksAgree(state: ArchState, chunks: readonly number[], between?: (spec: SpecEngine, impl: ImplEngine, k: number) => void): void {
  const spec = new SpecEngine();
  const impl = new ImplEngine();
  spec.load(state, "intel");
  impl.load(state, "intel");
  let total = 0;
  chunks.forEach((n, k) => {
    between?.(spec, impl, k);
    const a = spec.run(n);
    const b = impl.run(n);
    total += n;
    expect({ chunk: k, reason: b.reason, steps: b.steps }).toEqual({ chunk: k, reason: a.reason, steps: a.steps });
    const diff = compareStates(spec.state(), impl.state(), { rule: "exact", memory: unionRanges(spec.touched(), impl.touched()) }).differences;
    expect(diff.map((x) => `after ${total} steps (chunk ${k}): ${x.field}: spec ${x.a}, impl ${x.b}`)).toEqual([]);
  });
}

describe("a loop inside one compiled block", () => {
  it("stops at the step limit wherever it lands in an iteration, in spec's state", () => {
    // RSI (the DEC that closes the loop) crosses 2^32 on the third iteration; in the second state
    // its fourth DEC starts from 2^63 (OF = 1: the exit rebuilds DEC's DEST from its result).
    const N = CARRY_LOOP_LENGTH;
    const limits = [
      ...Array.from({ length: 4 * N + 2 }, (_, k) => k + 1),
      ...Array.from({ length: N }, (_, k) => 37 * N + k),
    ];
    for (const state of [carryLoop((1n << 40n) + 2n), carryLoop((1n << 63n) + 3n)]) {
      for (const steps of limits) expectAgreesWithSpec(state, steps, "intel", { lockstep: steps < 3 * N });
    }
  });

  it("re-entered with budgets that end mid-iteration (and at its last iteration), every chunk in spec's state", () => {
    // Chunks below, at and above the block's length, and ones ending on the iteration where the
    // counter reaches zero and JNE falls through to HLT.
    const N = CARRY_LOOP_LENGTH;
    expectChunksAgree(carryLoop((1n << 40n) + 2n), [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 12, 14, N, 2 * N - 1, 2 * N + 1, 7777]);
    expectChunksAgree(carryLoop(300n), [N * 50 + 4, N * 100, N * 149 + 12, 1, 1, 5]);
    expectChunksAgree(carryLoop(300n), [N * 300 - 1, 1, 1, 1]);
  });

  it("with a limit far beyond what the int32 iteration counter holds, stops where the loop ends", () => {
    // run(2^40): the compiled loop caps its iteration counter; the loop ends by itself (HLT)
    // after 1,000 iterations, and the steps reported are exact.
    const out = expectAgreesWithSpec(carryLoop(1000n), 2 ** 40, "intel", { lockstep: false });
    expect(out.stop).toMatchObject({ reason: "hlt", steps: 1000 * CARRY_LOOP_LENGTH + 1 });
  });

  it("a store into its own code on one iteration changes what the following iterations run", () => {
    // Every iteration stores DL through RDI: to a data page, except on the iteration where RCX
    // reaches 5 (CMOVE picks the code address), which rewrites the ADD's immediate 1 to 0x10.
    const l = defineLayout();
    const a = new Assembler();
    a.section(l.code.kernel)
      .emit(Code.Mov_r64_imm64, R.R14, sym("add", 3n))
      .label("loop")
      .emit(Code.Mov_r64_rm64, R.RDI, R.R15)
      .emit(Code.Inc_rm64, R.RCX)
      .emit(Code.Cmp_rm64_imm8, R.RCX, 5)
      .emit(Code.Cmove_r64_rm64, R.RDI, R.R14)
      .emit(Code.Mov_rm8_r8, mem(R.RDI), R.DL)
      .label("add")
      .emit(Code.Add_rm64_imm8, R.RAX, 1)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    const state = buildGuest(l, { code: a.assemble(), start: { regs: { rsi: 40n, rdx: 0x10n, r15: 0x30000n } } }).state;
    const out = expectAgreesWithSpec(state, 2000, "intel", { lockstep: false });
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[0]).toBe(4n + 36n * 0x10n); // iterations 1-4 add 1, 5-40 add 0x10
    expectChunksAgree(state, [30, 7, 9, 11, 100, 3]);
  });

  it("TF set by POPFQ inside the loop: the following instructions trap one by one (#DB handler counts them)", () => {
    // On the iteration where RCX reaches 3, CMOVE picks RFLAGS with TF for POPFQ.
    const l = defineLayout({ idt: { gates: { 1: { offset: 0x13000n } } } });
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("loop")
      .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
      .emit(Code.Inc_rm64, R.RCX)
      .emit(Code.Pushfq)
      .emit(Code.Pop_r64, R.RDX)
      .emit(Code.Cmp_rm64_imm8, R.RCX, 3)
      .emit(Code.Cmove_r64_rm64, R.RDX, R.R9)
      .emit(Code.Push_r64, R.RDX)
      .emit(Code.Popfq)
      .emit(Code.Sub_rm64_r64, R.RDI, R.RAX)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    a.section(0x13000n, { name: "db" }).emit(Code.Inc_rm64, R.R13).emit(Code.Iretq);
    const state = buildGuest(l, { code: a.assemble(), start: { regs: { rsi: 1000n, rbx: 0xffffffff_80000001n, r9: 0x102n } } }).state;
    for (const steps of [15, 29, 30, 31, 32, 33, 60, 200]) expectAgreesWithSpec(state, steps);
    const out = expectAgreesWithSpec(state, 500, "intel", { lockstep: false });
    expect(out.state.gpr[13]).toBeGreaterThan(100n);
  });

  it("the timer's interrupt becomes pending mid-iteration: taken at the exact boundary (handler counts ticks)", () => {
    // Period 37 against a 13-instruction loop: the ticks land at every offset of an iteration.
    const l = defineLayout({ idt: { gates: { 0x20: { offset: 0x13000n } } } });
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("loop")
      .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
      .emit(Code.Xor_rm64_r64, R.RCX, R.RAX)
      .emit(Code.Add_rm64_r64, R.RDX, R.RCX)
      .emit(Code.Sub_rm64_imm8, R.RBX, 3)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    a.section(0x13000n, { name: "tick" })
      .emit(Code.Push_r64, R.RAX)
      .emit(Code.Out_imm8_AL, 0xec, R.AL)
      .emit(Code.Pop_r64, R.RAX)
      .emit(Code.Inc_rm64, R.R13)
      .emit(Code.Iretq);
    const base = buildGuest(l, { code: a.assemble(), start: { rflags: 0x202n, regs: { rsi: 1n << 40n, rax: 0xfffffff0n, rbx: 0xf0000001n } } }).state;
    const state: ArchState = { ...base, devices: { ...base.devices, timer: { period: 37, vector: 0x20, countdown: 11, waitingEoi: false } } };
    for (const steps of [10, 11, 12, 13, 80, 81]) expectAgreesWithSpec(state, steps);
    const out = expectAgreesWithSpec(state, 5000, "intel", { lockstep: false });
    expect(out.state.gpr[13]).toBeGreaterThan(100n);
    expectChunksAgree(state, [7, 100, 3, 250, 1, 1, 999]);
  });

  it("an interrupt raised between runs is taken at the next boundary, wherever the loop stopped", () => {
    const l = defineLayout({ idt: { gates: { 0x30: { offset: 0x13000n } } } });
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("loop")
      .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
      .emit(Code.Sub_rm64_imm8, R.RBX, 7)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    a.section(0x13000n, { name: "irq" }).emit(Code.Inc_rm64, R.R13).emit(Code.Iretq);
    const state = buildGuest(l, { code: a.assemble(), start: { rflags: 0x202n, regs: { rsi: 1n << 40n, rbx: 5n } } }).state;
    expectChunksAgree(state, [100, 7, 9, 101, 1, 2, 3, 4, 50], (spec, impl, k) => {
      if (k % 2 === 1) {
        spec.raise({ irq: 0x30 });
        impl.raise({ irq: 0x30 });
      }
    });
  });

  it("a fault in the middle of an iteration: the registers the iteration changed before it are in the state", () => {
    // RDI walks 4 KiB pages from 0x5f8000 up; 0x600000 is not present (#PF to the layout's stub).
    const l = defineLayout();
    const a = new Assembler();
    a.section(l.code.kernel)
      .label("loop")
      .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
      .emit(Code.Inc_rm64, R.RCX)
      .emit(Code.Sub_rm64_imm32, R.RDX, 0x1000)
      .emit(Code.Mov_r64_rm64, R.R8, mem(R.RDI))
      .emit(Code.Add_rm64_imm32, R.RDI, 0x1000)
      .emit(Code.Xor_rm64_r64, R.R9, R.RAX)
      .emit(Code.Dec_rm64, R.RSI)
      .emit(Code.Jne_rel8_64, "loop")
      .emit(Code.Hlt);
    const state = buildGuest(l, { code: a.assemble(), start: { regs: { rsi: 1000n, rdi: 0x5f8000n, rbx: 0xffffffffn, rax: 1n } } }).state;
    const out = expectAgreesWithSpec(state, 200, "intel", { lockstep: false });
    expect(out.state.gpr[1]).toBe(9n); // the faulting (9th) iteration's INC is in
    for (const steps of [60, 64, 65, 66, 67]) expectAgreesWithSpec(state, steps);
  });

  it("at the production compile threshold: interpreted until then, compiled after, the same states throughout", () => {
    // The tests compile from a block's second run (test/setup.ts); production waits for
    // DEFAULT_COMPILE_AFTER runs. Chunks end before, across and after the switch.
    const previous = setCompileAfter(DEFAULT_COMPILE_AFTER);
    try {
      const N = CARRY_LOOP_LENGTH;
      const state = carryLoop(5000n);
      const loopBlock = (e: ImplEngine) => [...e.machine.blocksBySlot].flatMap((map) => (map === undefined ? [] : [...map.values()]))
        .find((b) => b.insns.length === N)!;
      const impl = new ImplEngine();
      impl.load(state, "intel");
      impl.run(N * (DEFAULT_COMPILE_AFTER - 2));
      expect(loopBlock(impl).compiled).toBeNull();
      impl.run(N * 3);
      expect(loopBlock(impl).compiled).not.toBeNull();
      expectChunksAgree(state, [N * (DEFAULT_COMPILE_AFTER - 1) + 7, N, 3, N * 2 + 5, N * 500, N * 3000, 1]);
    } finally {
      setCompileAfter(previous);
    }
  });
});
