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
  Assembler, Code, Register as R, abs, mem, buildGuest, defineLayout, identity, DEFAULT_GDT, DEFAULT_MAPPINGS, FLAT_DESCRIPTORS, type LayoutOptions,
} from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { expectHookSeen, traceFormed } from "./trace-hooks.ts";

/** Round trips before the hook runs (a trace forms after 8 runs of a compiled block). */
const HOOK_AT = 12;
const ROUNDS = 20;
const STEPS = 1500;

type Section = ReturnType<Assembler["section"]>;

/** expectHookSeen (trace-hooks.ts) over this file's STEPS, the trace formed within 20 hooks' worth. */
function expectSeen(hooked: ArchState, base: ArchState, check: (s: ArchState) => void, formedWithin = 20 * HOOK_AT): void {
  expectHookSeen(hooked, base, formedWithin, STEPS, check);
}

const KERNEL_HANDLER = 0x13000n;
/** The #GP and #SS stubs of the shared layout (0xb000 + 16 · vector, one byte in). */
const stub = (vector: number) => 0xb000n + 16n * BigInt(vector) + 1n;

/**
 * A kernel-mode INT 0x81 loop (a delivery without a stack switch, and IRETQ to CPL 0):
 * `int 0x81; inc r12; dec r15; jnz; hlt`; the handler pushes RAX, counts in R14, runs `hook` on
 * round trip HOOK_AT (the frame at [rsp + 8]) — and `early` on round trip HOOK_AT − 2 — and returns
 * with `pop rax; iretq` (`beforeIret` in between). `inTrace` runs on every round trip, before the hooks: it is part of the
 * trace, so what it changes is found by the IRETQ the trace runs (a hook's changes by the next
 * round trip's deliveries).
 */
function kernelGuest(hook: (s: Section) => void, options: LayoutOptions = {}, early?: (s: Section) => void,
  inTrace: (s: Section) => void = () => {}, beforeIret: (s: Section) => void = () => {}): ArchState {
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
  s.label("skip").emit(Code.Pop_r64, R.RAX);
  beforeIret(s);
  s.emit(Code.Iretq);
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

/** The kernel-mode loop without a hook: the base of two groups below (its run without a hook is
 *  made once per base state: trace-hooks.ts). */
const KERNEL_BASE = kernelGuest(() => {});

describe("IRETQ written out in a trace", () => {
  const base = KERNEL_BASE;

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

  it("reads a frame at an RSP that is not 8-byte aligned byte by byte (#GP(0) for its NULL CS)", () => {
    // A frame at 0x1f807 (RSP ≡ 7 mod 8) whose bytes, read as whole dwords from 0x1f804, would
    // look like a return to CS 0x08 / SS 0x10 (the entry the loop's own IRETQs fill): RIP
    // 0x0000080000010002 (byte 5: 0x08), CS 0, RSP 0x0000100000020000 (byte 5: 0x10), SS 0x10.
    // Written on every round trip; from round trip 16 on, RSP moves to it (the saved RAX at 0x1f7ff).
    const X = 0x1f800n;
    const slots = [0n, 0x0000080000010002n, 0n, 2n, 0x0000100000020000n, 0x10n];
    const odd = inTrace((s) => {
      slots.forEach((v, k) => s.emit(Code.Mov_r64_imm64, R.RDX, v).emit(Code.Mov_rm64_r64, abs(X - 1n + BigInt(8 * k)), R.RDX));
      from16(s, 1).emit(Code.Mov_r64_imm64, R.RCX, X - 1n).emit(Code.Sub_rm64_r64, R.RCX, R.RSP).emit(Code.Imul_r64_rm64, R.RCX, R.RAX)
        .emit(Code.Add_rm64_r64, R.RCX, R.RSP).emit(Code.Mov_r64_rm64, R.RSP, R.RCX);
    });
    expectSeen(odd, base, (s) => expect(s.rip).toBe(stub(13)), 40 * HOOK_AT);
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

/** The INT 0x80 round trip from user mode (IRETQ to CPL 3): user `(beforeInt) int 0x80; inc r12;
 *  dec r15; jnz; hlt`; the handler pushes RAX, counts in R14, runs `inTrace` and returns with
 *  `pop rax; (beforeIret) iretq` (the frame at [rsp + 8] while inTrace runs, at [rsp] in
 *  beforeIret). */
function userGuest(inTrace: (s: Section) => void, options: LayoutOptions = {}, beforeInt: (s: Section) => void = () => {},
  beforeIret: (s: Section) => void = () => {}): ArchState {
  const l = defineLayout({ idt: { userVectors: [0x80], gates: { 0x80: { offset: USER_HANDLER } } }, ...options });
  const a = new Assembler();
  const u = a.section(l.code.user, { name: "user" }).label("loop");
  beforeInt(u);
  u.emit(Code.Int_imm8, 0x80)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  const s = a.section(USER_HANDLER, { name: "handler" }).emit(Code.Push_r64, R.RAX).emit(Code.Inc_rm64, R.R14);
  inTrace(s);
  s.emit(Code.Pop_r64, R.RAX);
  beforeIret(s);
  s.emit(Code.Iretq);
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

  it("reads the frame from a user page under SMAP as the general path does (#PF; its frame faults too: shutdown)", () => {
    // CR4.SMAP = 1; the user writes its data page (0x220000) on every round trip, so the TLB holds
    // it with the classes SMAP leaves a supervisor access: with AC = 1 only. From round trip 16 on,
    // the handler copies the frame through a supervisor alias of that page (0x800000) and IRETQ
    // reads it through the user page.
    const options = { control: { cr4: 0x620n | (1n << 21n) }, extraMappings: [identity(0x800000n, 0x1000n, "4K", false, { physical: 0x220000n })] };
    const read = (s: Section) => s.emit(Code.Mov_rm64_r64, abs(0x220100n), R.RDX);
    const toUser = (s: Section) => {
      const to = (address: bigint, reg: typeof R.RCX | typeof R.RSI) => s.emit(Code.Mov_r64_imm64, reg, address).emit(Code.Sub_rm64_r64, reg, R.RSP)
        .emit(Code.Imul_r64_rm64, reg, R.RAX).emit(Code.Add_rm64_r64, reg, R.RSP);
      // (A write through the alias on every round trip: its first walk, which marks its page
      // tables and flushes the TLB, is long past by round trip 16.)
      from16(s.emit(Code.Mov_rm64_r64, abs(0x800ff8n), R.RDX), 1);
      to(0x800100n, R.RCX);
      to(0x220100n, R.RSI);
      for (const k of [4, 3, 2, 1, 0]) s.emit(Code.Mov_r64_rm64, R.RDX, mem(R.RSP, BigInt(8 * k))).emit(Code.Mov_rm64_r64, mem(R.RCX, BigInt(8 * k)), R.RDX);
      s.emit(Code.Mov_r64_rm64, R.RSP, R.RSI);
    };
    expectSeen(userGuest(() => {}, options, read, toUser), userGuest(() => {}, options, read), (s) => expect(s.cpu.shutdown).toBe(true), 40 * HOOK_AT);
  });

  it("sees another SS in the frame (0x1b, a code segment: #GP(0x18) at IRETQ)", () => {
    const ss = userGuest((s) => from16(s, 0x38).emit(Code.Xor_rm64_r64, mem(R.RSP, 40n), R.RAX));
    expectSeen(ss, base, (s) => expect(s.rip).toBe(stub(13)));
  });
});

describe("INT n delivered in a trace without a stack switch", () => {
  const base = KERNEL_BASE;

  it("goes to a new gate target on the same page (the guard after the delivery)", () => {
    // The gate's offset becomes 0x13800 (byte 1 of the IDT entry): the next deliveries, through
    // the refilled gate cache, leave the trace for that handler.
    const moved = kernelGuest((s) => s.emit(Code.Mov_rm8_imm8, abs(0x9000n + 16n * 0x81n + 1n), 0x38));
    expectSeen(moved, base, (s) => expect(s.gpr[3]! >> 12n).toBe(BigInt(ROUNDS - HOOK_AT)));
  });

  it("marks the frame it pushes onto written (Engine.touched), as the general path does", () => {
    // The per-CPU page (0x30000) is in the loaded state and never written; a read of it fills
    // the TLB with no write class though the 2 MiB page is dirty (memory/tlb.ts: only frames
    // already marked written get one). The saved RSP becomes 0x30810.
    const percpu = kernelGuest((s) => s.emit(Code.Mov_r64_rm64, R.RDX, abs(0x30808n)).emit(Code.Mov_rm64_imm32, mem(R.RSP, 32n), 0x30810));
    expect(traceFormed(percpu, 20 * HOOK_AT)).toBe(true);
    expectAgreesWithSpec(percpu, STEPS);
    const touched = [new ImplEngine(), new ImplEngine({ uncached: true })].map((e) => {
      e.load(percpu, "intel");
      e.run(STEPS);
      return e.touched();
    });
    expect(touched[0]).toEqual(touched[1]);
    expect(touched[0]!.some((r) => r.start <= 0x30000n && r.end > 0x30000n)).toBe(true);
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

describe("IRETQ written out in a trace keeps the CPL it was cached for", () => {
  // User: builds an IRETQ frame to the next instruction (CS 0x2b, SS 0x23; from round trip 16 on
  // CS 0x08 and a NULL SS: #GP(0x08) at CPL 3) and returns through it, then INT 0x80; the handler
  // runs INT 0x81 at CPL 0, whose handler returns with IRETQ to CS 0x08 / NULL SS — the same
  // IRET-cache entry, filled at CPL 0.
  function guest(): ArchState {
    const l = defineLayout({ idt: { userVectors: [0x80], gates: { 0x80: { offset: USER_HANDLER }, 0x81: { offset: USER_HANDLER + 0x800n } } } });
    const a = new Assembler();
    a.section(l.code.user, { name: "user" })
      .label("loop")
      .emit(Code.Inc_rm64, R.R12)
      .emit(Code.Mov_r64_rm64, R.RAX, R.R14).emit(Code.Shr_rm64_imm8, R.RAX, 4).emit(Code.And_rm64_imm8, R.RAX, 1)
      .emit(Code.Imul_r64_rm64_imm32, R.RCX, R.RAX, 0x23).emit(Code.Mov_r32_imm32, R.ESI, 0x23).emit(Code.Sub_rm64_r64, R.RSI, R.RCX)
      .emit(Code.Mov_r32_imm32, R.EDI, 0x2b).emit(Code.Sub_rm64_r64, R.RDI, R.RCX)
      .emit(Code.Mov_r64_rm64, R.RDX, R.RSP)
      .emit(Code.Push_r64, R.RSI).emit(Code.Push_r64, R.RDX).emit(Code.Pushfq).emit(Code.Push_r64, R.RDI)
      .emit(Code.Call_rel32_64, "return")
      .emit(Code.Int_imm8, 0x80)
      .emit(Code.Jmp_rel32_64, "loop")
      .label("return")
      .emit(Code.Iretq);
    a.section(USER_HANDLER, { name: "handler" }).emit(Code.Push_r64, R.RAX).emit(Code.Inc_rm64, R.R14).emit(Code.Int_imm8, 0x81)
      .emit(Code.Pop_r64, R.RAX).emit(Code.Iretq);
    a.section(USER_HANDLER + 0x800n, { name: "nested" }).emit(Code.Iretq);
    return buildGuest(l, { code: a.assemble(), start: { ring: 3 } }).state;
  }

  it("a user IRETQ to CS 0x08 raises #GP(0x08) while the entry for (0x08, NULL, CPL 0) is live", () => {
    const state = guest();
    expect(traceFormed(state, 20 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.rip).toBe(stub(13));
    expect(out.state.gpr[14]).toBe(16n);
  });
});

const ALT_CR3 = 0x44000n;

/**
 * A kernel-mode loop whose INT 0x81 is the last instruction of page 0x10000 (the round trip
 * returns to page 0x11000); the handler adds 1 to RBX and, on round trip HOOK_AT, loads CR3 with a
 * second address space that maps `remapped` (the handler's page 0x13000 or the continuation's page
 * 0x11000) to other code of the same layout: a handler adding 0x1000, a continuation adding 3 to
 * R12.
 */
function remapGuest(remapped: "handler" | "continuation", hook = true): ArchState {
  const page = remapped === "handler" ? KERNEL_HANDLER : 0x11000n;
  const other = remapped === "handler" ? 0x16000n : 0x17000n;
  const MiB = 0x100000n;
  const alt = {
    tables: [ALT_CR3, 0x45000n, 0x46000n, 0x47000n, 0x48000n],
    mappings: [
      identity(0n, page, "4K", false), identity(page, 0x1000n, "4K", false, { physical: other }),
      identity(page + 0x1000n, 2n * MiB - page - 0x1000n, "4K", false), ...DEFAULT_MAPPINGS.slice(1),
    ],
  };
  const l = defineLayout({ idt: { gates: { 0x81: { offset: KERNEL_HANDLER } } }, addressSpaces: [alt] });
  const a = new Assembler();
  const loop = a.section(0x10ff0n, { name: "loop" }).label("loop");
  for (let k = 0; k < 14; k++) loop.emit(Code.Nopd);
  loop.emit(Code.Int_imm8, 0x81);
  const continuation = (at: bigint, add: number) => a.section(at, { name: `continue_${at}` })
    .emit(Code.Add_rm64_imm8, R.R12, add).emit(Code.Mov_r64_imm64, R.RAX, 0x10ff0n).emit(Code.Jmp_rm64, R.RAX);
  continuation(0x11000n, 1);
  if (remapped === "continuation") continuation(other, 3);
  const handler = (at: bigint, add: number) => {
    const s = a.section(at, { name: `handler_${at}` })
      .emit(Code.Push_r64, R.RAX).emit(Code.Add_rm64_imm32, R.RBX, add).emit(Code.Inc_rm64, R.R14)
      .emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT).emit(Code.Jne_rel8_64, `skip_${at}`);
    if (hook) s.emit(Code.Mov_r64_imm64, R.RAX, ALT_CR3).emit(Code.Mov_cr_r64, R.CR3, R.RAX);
    s.label(`skip_${at}`).emit(Code.Pop_r64, R.RAX).emit(Code.Iretq);
  };
  handler(KERNEL_HANDLER, 1);
  if (remapped === "handler") handler(other, 0x1000);
  return buildGuest(l, { code: a.assemble(), start: { ring: 0, rip: 0x10ff0n } }).state;
}

describe("the fetch guards after a delivery or IRETQ written out in a trace", () => {
  it("see the handler's page mapped to other code (CR3 written between round trips)", () => {
    expectSeen(remapGuest("handler"), remapGuest("handler", false), (s) => expect(s.gpr[3]! >= 0x1000n).toBe(true));
  });

  it("see the page IRETQ returns to mapped to other code (CR3 written between round trips)", () => {
    expectSeen(remapGuest("continuation"), remapGuest("continuation", false), (s) => expect(s.gpr[12]! > BigInt(2 * HOOK_AT)).toBe(true));
  });
});
