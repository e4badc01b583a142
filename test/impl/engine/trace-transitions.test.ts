// INT n, a fault's delivery and IRETQ written out in a trace (impl/engine/trace-transitions.ts
// gateDelivery, iretqFast) are invisible: each runs only where the gate cache or the IRET return
// cache answers and every remaining check passes on the live machine; anything else takes the
// general path. Each test below changes, between two round trips of a hot trace, one thing a
// written-out check looks at — so that a trace that skipped the check would end elsewhere than
// spec/ (and the uncached reference), which the test compares step by step.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import {
  Assembler, Code, Register as R, abs, mem, buildGuest, defineLayout, identity, DEFAULT_GDT, FLAT_DESCRIPTORS, type LayoutOptions,
} from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { stateText } from "../helpers.ts";

/** Round trips before the hook runs (a trace forms after 8 runs of a compiled block). */
const HOOK_AT = 12;
const ROUNDS = 20;
const STEPS = 1500;

type Section = ReturnType<Assembler["section"]>;

/** Whether impl formed a trace on `state` within `steps` steps. */
function traceFormed(state: ArchState, steps: number): boolean {
  const e = new ImplEngine();
  e.load(state, "intel");
  for (let done = 0; done < steps; done += 10) {
    e.run(10);
    if (e.machine.blocksBySlot.some((map) => map !== undefined && [...map.values()].some((b) => b.trace !== null))) return true;
  }
  return false;
}

/** The hooked run agrees with spec/ step by step (and in every impl configuration), its trace
 *  was formed before the hook, and it ends elsewhere than the run without the hook. */
function expectSeen(hooked: ArchState, base: ArchState, check: (s: ArchState) => void): void {
  expect(traceFormed(hooked, 20 * HOOK_AT)).toBe(true);
  const out = expectAgreesWithSpec(hooked, STEPS);
  check(out.state);
  expect(stateText(out.state)).not.toBe(stateText(expectAgreesWithSpec(base, STEPS, "intel", { lockstep: false }).state));
}

const KERNEL_HANDLER = 0x13000n;
/** The #GP and #SS stubs of the shared layout (0xb000 + 16 · vector, one byte in). */
const stub = (vector: number) => 0xb000n + 16n * BigInt(vector) + 1n;

/**
 * A kernel-mode INT 0x81 loop (a delivery without a stack switch, and IRETQ to CPL 0):
 * `int 0x81; inc r12; dec r15; jnz; hlt`; the handler pushes RAX, counts in R14, runs `hook` on
 * round trip HOOK_AT (the frame at [rsp + 8]) — and `early` on round trip HOOK_AT − 2 — and returns
 * with `pop rax; iretq`. `inTrace` runs on every round trip, before the hooks: it is part of the
 * trace, so what it changes is found by the IRETQ the trace runs (a hook's changes by the next
 * round trip's deliveries).
 */
function kernelGuest(hook: (s: Section) => void, options: LayoutOptions = {}, early?: (s: Section) => void,
  inTrace: (s: Section) => void = () => {}): ArchState {
  const l = defineLayout({ idt: { gates: { 0x81: { offset: KERNEL_HANDLER } } }, ...options });
  const a = new Assembler();
  a.section(l.code.kernel, { name: "kernel" })
    .label("loop")
    .emit(Code.Int_imm8, 0x81)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  const s = a.section(KERNEL_HANDLER, { name: "handler" })
    .emit(Code.Push_r64, R.RAX)
    .emit(Code.Inc_rm64, R.R14);
  inTrace(s);
  s.emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT)
    .emit(Code.Jne_rel8_64, "early");
  hook(s);
  s.label("early");
  if (early !== undefined) {
    s.emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT - 2).emit(Code.Jne_rel8_64, "skip");
    early(s);
  }
  s.label("skip").emit(Code.Pop_r64, R.RAX).emit(Code.Iretq);
  // Another handler on the same page (a gate may be pointed at it), adding 0x1000 to RBX.
  a.section(KERNEL_HANDLER + 0x800n, { name: "other" })
    .emit(Code.Add_rm64_imm32, R.RBX, 0x1000).emit(Code.Inc_rm64, R.R14).emit(Code.Iretq);
  return buildGuest(l, { code: a.assemble(), start: { ring: 0, regs: { r15: BigInt(ROUNDS) } } }).state;
}

/** RAX ← `multiplier` (shifted left by `shift`) from round trip 16 on (R14 bit 4), 0 before —
 *  without a branch, so the trace's path stays the same. */
function from16(s: Section, multiplier: number, shift = 0): Section {
  s.emit(Code.Mov_r64_rm64, R.RAX, R.R14).emit(Code.Shr_rm64_imm8, R.RAX, 4).emit(Code.And_rm64_imm8, R.RAX, 1)
    .emit(Code.Imul_r64_rm64_imm32, R.RAX, R.RAX, multiplier);
  if (shift !== 0) s.emit(Code.Shl_rm64_imm8, R.RAX, shift);
  return s;
}

/** Copies the six stack qwords at RSP to RCX (lowest first when RCX is below, else highest
 *  first) and moves RSP there (clobbers RDX). */
function copyFrameTo(s: Section, down: boolean): Section {
  const order = down ? [0, 1, 2, 3, 4, 5] : [5, 4, 3, 2, 1, 0];
  for (const k of order) s.emit(Code.Mov_r64_rm64, R.RDX, mem(R.RSP, BigInt(8 * k))).emit(Code.Mov_rm64_r64, mem(R.RCX, BigInt(8 * k)), R.RDX);
  return s.emit(Code.Mov_r64_rm64, R.RSP, R.RCX);
}

describe("IRETQ written out in a trace", () => {
  const base = kernelGuest(() => {});

  it("runs the kernel-mode round trip as spec/ does", () => {
    expect(traceFormed(base, 20 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(base, STEPS);
    expect(out.reason).toBe("hlt");
    expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
  });

  const inTrace = (code: (s: Section) => void) => kernelGuest(() => {}, {}, undefined, code);

  it("sees NT set before IRETQ (#GP(0))", () => {
    const nt = inTrace((s) => from16(s, 0x4000).emit(Code.Pushfq).emit(Code.Or_rm64_r64, mem(R.RSP), R.RAX).emit(Code.Popfq));
    expectSeen(nt, base, (s) => expect(s.rip).toBe(stub(13)));
  });

  it("sees a non-canonical return RIP (#GP(0) at IRETQ)", () => {
    const rip = inTrace((s) => from16(s, 1, 47).emit(Code.Or_rm64_r64, mem(R.RSP, 8n), R.RAX));
    expectSeen(rip, base, (s) => expect(s.rip).toBe(stub(13)));
  });

  it("sees TF set in the popped RFLAGS (a #DB trap after the next instruction)", () => {
    const tf = inTrace((s) => from16(s, 0x100).emit(Code.Or_rm64_r64, mem(R.RSP, 24n), R.RAX));
    expectSeen(tf, base, (s) => expect(s.rip).toBe(stub(1)));
  });

  it("reads the frame at an RSP that is not 8-byte aligned", () => {
    // From round trip 16 on, the frame is copied 3 bytes lower: IRETQ reads its slots across
    // dword boundaries.
    const odd = inTrace((s) => copyFrameTo(from16(s, 3).emit(Code.Mov_r64_rm64, R.RCX, R.RSP).emit(Code.Sub_rm64_r64, R.RCX, R.RAX), true));
    expect(traceFormed(odd, 20 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(odd, STEPS);
    expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
  });

  it("reads a frame whose slots cross a page end", () => {
    // The frame's SS is made NULL on every round trip (IRETQ to CPL 0 accepts it). From round trip
    // 16 on, the frame is copied to 0x51fe8 (highest slot first): its slots at 0x51ff0–0x52017
    // lie in two frames, the upper one allocated first — so the lower one's pool slot is not
    // followed by the upper one's.
    const crossing = inTrace((s) => copyFrameTo(from16(s.emit(Code.Mov_rm64_imm32, mem(R.RSP, 40n), 0), 1)
      .emit(Code.Mov_r64_imm64, R.RCX, 0x51fe8n).emit(Code.Sub_rm64_r64, R.RCX, R.RSP)
      .emit(Code.Imul_r64_rm64, R.RCX, R.RAX).emit(Code.Add_rm64_r64, R.RCX, R.RSP), false));
    expect(traceFormed(crossing, 40 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(crossing, STEPS);
    expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
    expect(out.state.ss.selector).toBe(0);
  });
});

const USER_HANDLER = 0x13000n;

/** The INT 0x80 round trip from user mode (IRETQ to CPL 3): user `int 0x80; inc r12; dec r15;
 *  jnz; hlt`; the handler pushes RAX, counts in R14, runs `inTrace` and returns with
 *  `pop rax; iretq` (the frame at [rsp + 8] while inTrace runs). */
function userGuest(inTrace: (s: Section) => void, options: LayoutOptions = {}): ArchState {
  const l = defineLayout({ idt: { userVectors: [0x80], gates: { 0x80: { offset: USER_HANDLER } } }, ...options });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Int_imm8, 0x80)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  const s = a.section(USER_HANDLER, { name: "handler" }).emit(Code.Push_r64, R.RAX).emit(Code.Inc_rm64, R.R14);
  inTrace(s);
  s.emit(Code.Pop_r64, R.RAX).emit(Code.Iretq);
  return buildGuest(l, { code: a.assemble(), start: { ring: 3, regs: { r15: BigInt(ROUNDS) } } }).state;
}

describe("IRETQ written out in a trace, returning to user mode", () => {
  const base = userGuest(() => {});

  it("runs the round trip as spec/ does", () => {
    expect(traceFormed(base, 20 * HOOK_AT)).toBe(true);
    expect(expectAgreesWithSpec(base, STEPS).state.gpr[12]).toBe(BigInt(ROUNDS));
  });

  it("sees the user CS descriptor given DPL 0 inside the trace (#GP(0x28) at IRETQ)", () => {
    // Every round trip writes the descriptor's access byte (a new system-table generation each
    // time), from round trip 16 on with DPL 0.
    const dpl0 = userGuest((s) => from16(s, 0x60).emit(Code.Mov_r32_imm32, R.EDX, 0xfb).emit(Code.Sub_rm32_r32, R.EDX, R.EAX)
      .emit(Code.Mov_rm8_r8, abs(0x8000n + 0x28n + 5n), R.DL));
    expectSeen(dpl0, base, (s) => expect(s.rip).toBe(stub(13)));
  });

  it("returns to another CS of the same IRET-cache entry (a 32-bit code segment) as the general path does", () => {
    // From round trip 16 on the frame's CS is 0x6b (GDT 0x68: 32-bit code, DPL 3), whose entry in
    // the cache is 0x2b's.
    const options = { gdt: { entries: [...DEFAULT_GDT, { name: "userCode32b", selector: 0x68, descriptor: FLAT_DESCRIPTORS.code32(3) }] } };
    const other = userGuest((s) => from16(s, 0x40).emit(Code.Or_rm64_r64, mem(R.RSP, 16n), R.RAX), options);
    expectSeen(other, userGuest(() => {}, options), (s) => expect(s.cs.selector).not.toBe(0x2b));
  });

  it("sees another SS in the frame (0x1b, a code segment: #GP(0x18) at IRETQ)", () => {
    const ss = userGuest((s) => from16(s, 0x38).emit(Code.Xor_rm64_r64, mem(R.RSP, 40n), R.RAX));
    expectSeen(ss, base, (s) => expect(s.rip).toBe(stub(13)));
  });
});

describe("INT n delivered in a trace without a stack switch", () => {
  const base = kernelGuest(() => {});

  it("goes to a new gate target on the same page (the guard after the delivery)", () => {
    // The gate's offset becomes 0x13800 (byte 1 of the IDT entry): the next deliveries, through
    // the refilled gate cache, leave the trace for that handler.
    const moved = kernelGuest((s) => s.emit(Code.Mov_rm8_imm8, abs(0x9000n + 16n * 0x81n + 1n), 0x38));
    expectSeen(moved, base, (s) => expect(s.gpr[3]! >> 12n).toBe(BigInt(ROUNDS - HOOK_AT)));
  });

  it("pushes onto a page only read before (its TLB entry grants no write)", () => {
    // The saved RSP becomes 0x52810 after a read of 0x52808 (a frame never written: the zero
    // page, read-only in the TLB).
    const read = kernelGuest((s) => s.emit(Code.Mov_r64_rm64, R.RDX, abs(0x52808n)).emit(Code.Mov_rm64_imm32, mem(R.RSP, 32n), 0x52810));
    expectSeen(read, base, (s) => expect(s.gpr[12]).toBe(BigInt(ROUNDS)));
  });

  it("pushes a frame that crosses a page end (the frame's first slot on a page already written)", () => {
    // The saved RSP becomes 0x51010: the next delivery's first slot (0x51008) is on a page the
    // hook wrote (so the TLB grants the push), the others on the page below.
    const crossing = kernelGuest((s) => s.emit(Code.Mov_rm64_imm32, abs(0x51008n), 7).emit(Code.Mov_rm64_imm32, mem(R.RSP, 32n), 0x51010));
    expectSeen(crossing, base, (s) => expect(s.gpr[12]).toBe(BigInt(ROUNDS)));
  });

  it("sees a non-canonical RSP (#SS, then #DF on the same stack: shutdown)", () => {
    // The saved RSP becomes 2^47 (IRETQ loads it as it is). The page just below it, where the
    // frame would go, is mapped and written first, so only the canonical check stands between.
    // (Written two round trips before: a frame's first write flushes the TLB, and with it the gate
    // cache's generation; the next delivery fills the cache again.)
    const top = 0x7ffffffff000n;
    const options = { extraMappings: [identity(top, 0x1000n, "4K", false, { physical: 0x70000n })] };
    const touch = (s: Section) => s.emit(Code.Mov_r64_imm64, R.RDX, top + 0xff8n).emit(Code.Mov_rm64_r64, mem(R.RDX), R.RDX);
    const hook = (s: Section) => s.emit(Code.Mov_r64_imm64, R.RDX, 0x0000800000000000n).emit(Code.Mov_rm64_r64, mem(R.RSP, 32n), R.RDX);
    expectSeen(kernelGuest(hook, options, touch), kernelGuest(() => {}, options, touch), (s) => expect(s.cpu.shutdown).toBe(true));
  });
});

const PF_HANDLER = 0x14000n, GP_HANDLER = 0x15000n;

describe("a delivery written out in a trace keeps the event's class", () => {
  // User: a load from a not-present page (#PF, through a DPL 0 gate), INC, then INT 0x0e (the same
  // vector: #GP(0x72) from CPL 3, the gate's DPL check), then the counter. The #PF handler skips
  // the load; the #GP handler skips the INT. The gate cache's entry for vector 14 at CPL 3 filled
  // by the #PF must not serve the INT.
  function guest(): ArchState {
    const l = defineLayout({ idt: { gates: { 14: { offset: PF_HANDLER }, 13: { offset: GP_HANDLER } } } });
    const a = new Assembler();
    a.section(l.code.user, { name: "user" })
      .label("loop")
      .emit(Code.Mov_r64_rm64, R.RAX, abs(0x600000n))
      // (An instruction that surely completes first: the trace enters it with RF = 1, IRETQ's
      // from the #PF frame.)
      .emit(Code.Inc_rm64, R.R12)
      .emit(Code.Int_imm8, 0x0e)
      .emit(Code.Dec_rm64, R.R15)
      .emit(Code.Jne_rel8_64, "loop")
      .label("end")
      .emit(Code.Jmp_rel8_64, "end");
    // #PF: skip the 8-byte load.
    a.section(PF_HANDLER, { name: "pf" })
      .emit(Code.Add_rm64_imm8, mem(R.RSP, 8n), 8)
      .emit(Code.Add_rm64_imm8, R.RSP, 8)
      .emit(Code.Inc_rm64, R.R13)
      .emit(Code.Iretq);
    // #GP: skip the 2-byte INT.
    a.section(GP_HANDLER, { name: "gp" })
      .emit(Code.Add_rm64_imm8, mem(R.RSP, 8n), 2)
      .emit(Code.Add_rm64_imm8, R.RSP, 8)
      .emit(Code.Inc_rm64, R.R14)
      .emit(Code.Iretq);
    return buildGuest(l, { code: a.assemble(), start: { ring: 3, kernelGsBase: 0n, regs: { r15: BigInt(ROUNDS) } } }).state;
  }

  it("INT 0x0e after a #PF through the same gate raises #GP every round trip", () => {
    const state = guest();
    expect(traceFormed(state, 20 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.gpr[13]).toBe(BigInt(ROUNDS));
    expect(out.state.gpr[14]).toBe(BigInt(ROUNDS));
  });
});
