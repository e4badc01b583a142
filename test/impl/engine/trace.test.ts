// Traces (impl/engine/trace.ts) are invisible: a hot SYSCALL/SYSRET or INT/IRETQ round trip runs as
// one compiled function, and every change the transitions depend on — LSTAR, STAR, FMASK, EFER,
// the IDT, a GDT descriptor, the TSS's RSP0 and IST, CR3, the code itself — made by the kernel
// between two round trips once the trace is hot, is seen by the next round trip exactly as spec/
// and the uncached reference see it. So are a step limit anywhere inside the trace, TF set by
// SYSRET, an IRQ or NMI raised while the kernel runs with IF = 0, and faults on the way.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { compareStates } from "../../../contract/compare.ts";
import { ALL_MEMORY } from "../../../contract/engine.ts";
import { ImplEngine, type ImplEngineOptions } from "../../../impl/engine.ts";
import {
  Assembler, Code, Register as R, abs, mem, buildGuest, defineLayout, DEFAULT_MAPPINGS, identity, percpuOffset,
  type GuestLayout, type LayoutOptions,
} from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { CONFIGS } from "../helpers.ts";
import { expectHookSeen as expectHookSeenWithin, traceFormed } from "./trace-hooks.ts";

/** Round trips before the kernel's hook runs (the trace is formed after 8). */
const HOOK_AT = 12;
/** Round trips in all. */
const ROUNDS = 20;

type Section = ReturnType<Assembler["section"]>;

const IA32_EFER = 0xc0000080, IA32_STAR = 0xc0000081, IA32_LSTAR = 0xc0000082, IA32_FMASK = 0xc0000084;

/** WRMSR msr ← value (clobbers RAX, RCX, RDX). */
function wrmsr(s: Section, msr: number, value: bigint): Section {
  return s.emit(Code.Mov_r32_imm32, R.ECX, msr)
    .emit(Code.Mov_r32_imm32, R.EAX, Number(value & 0xffffffffn))
    .emit(Code.Mov_r32_imm32, R.EDX, Number(value >> 32n))
    .emit(Code.Wrmsr);
}

/** A store to a low (identity-mapped) address. */
function poke(s: Section, address: bigint, value: number, size: 1 | 4 | 8 = 1): Section {
  if (size === 1) return s.emit(Code.Mov_rm8_imm8, abs(address), value);
  if (size === 4) return s.emit(Code.Mov_rm32_imm32, abs(address), value);
  return s.emit(Code.Mov_rm64_imm32, abs(address), value);
}

const ALT_LSTAR = 0x15000n;
/** A second address space: user code (2–4 MiB) maps to physical 4–6 MiB, where ALT_USER is. */
const ALT_TABLES = [0x40000n, 0x41000n, 0x42000n, 0x43000n];
const ALT_USER = 0x400000n;

/** Code added to the SYSCALL round trip: in the user loop before and after SYSCALL, in the
 *  entry (after RFLAGS is added to RBP). */
interface GuestExtras {
  readonly beforeSyscall?: (s: Section) => void;
  readonly afterSyscall?: (s: Section) => void;
  readonly inEntry?: (s: Section) => void;
  /** The hook in the second entry too (same code layout in both). */
  readonly hookInBoth?: boolean;
}

/**
 * The SYSCALL round trip: user `syscall; inc r12; add rbx, r12; dec r15; jnz loop; hlt`; the entry
 * saves the user RSP, pushes RCX/R11, adds RFLAGS to RBP (so FMASK shows), counts in R14 and runs
 * `hook` on round trip HOOK_AT. Returns the state and the layout.
 */
function syscallGuest(hook: (s: Section, l: GuestLayout) => void, options: LayoutOptions = {}, r11From16 = 0,
  rflags?: bigint, extras: GuestExtras = {}): ArchState {
  const alt = { tables: ALT_TABLES, mappings: DEFAULT_MAPPINGS.map((m) => (m.linear === 0x200000n ? identity(0x200000n, 0x200000n, "2M", true, { physical: ALT_USER }) : m)) };
  const l = defineLayout({ msrs: { fmask: 0x47700n }, addressSpaces: [alt], ...options });
  const a = new Assembler();
  const user = (at: bigint, name: string, step: number) => {
    const s = a.section(at, { name }).label(`${name}_loop`);
    extras.beforeSyscall?.(s);
    s.emit(Code.Syscall);
    extras.afterSyscall?.(s);
    s.emit(Code.Add_rm64_imm8, R.R12, step)
      .emit(Code.Add_rm64_r64, R.RBX, R.R12)
      .emit(Code.Dec_rm64, R.R15)
      .emit(Code.Jne_rel8_64, `${name}_loop`)
      .label(`${name}_end`)
      .emit(Code.Jmp_rel8_64, `${name}_end`);
  };
  user(l.code.user, "user", 1);
  // The same loop as the second address space sees it, adding 3 instead of 1.
  user(ALT_USER, "alt_user", 3);
  const entry = (at: bigint, name: string, extra: number) => {
    const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
    const s = a.section(at, { name })
      .emit(Code.Swapgs)
      .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
      .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
      .emit(Code.Push_r64, R.RCX)
      .emit(Code.Push_r64, R.R11)
      .emit(Code.Pushfq)
      .emit(Code.Pop_r64, R.RAX)
      .emit(Code.Add_rm64_r64, R.RBP, R.RAX)
      .emit(Code.Add_rm64_imm32, R.RBP, extra)
      .emit(Code.Inc_rm64, R.R14);
    extras.inEntry?.(s);
    if (r11From16 !== 0) {
      // Without a branch (the trace's path stays the same): from round trip 16 on, SYSRET loads
      // RFLAGS with these bits set.
      s.emit(Code.Mov_r64_rm64, R.RAX, R.R14)
        .emit(Code.Shr_rm64_imm8, R.RAX, 4)
        .emit(Code.And_rm64_imm8, R.RAX, 1)
        .emit(Code.Imul_r64_rm64_imm32, R.RAX, R.RAX, r11From16)
        .emit(Code.Or_rm64_r64, mem(R.RSP), R.RAX);
    }
    s.emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT)
      .emit(Code.Jne_rel8_64, `${name}_skip`);
    if (extra === 0 || extras.hookInBoth === true) hook(s, l);
    s.label(`${name}_skip`)
      .emit(Code.Pop_r64, R.R11)
      .emit(Code.Pop_r64, R.RCX)
      .emit(Code.Mov_r64_rm64, R.RSP, userRsp)
      .emit(Code.Swapgs)
      .emit(Code.Sysretq);
  };
  entry(l.msrs.lstar, "entry", 0);
  entry(ALT_LSTAR, "alt_entry", 0x1000);
  const start = { ring: 3 as const, regs: { r15: BigInt(ROUNDS) }, ...(rflags === undefined ? {} : { rflags }) };
  return buildGuest(l, { code: a.assemble(), start }).state;
}

const HANDLER = 0x13000n, ALT_HANDLER = 0x14000n;
const GDT = 0x8000n, TSS = 0xa000n, IDT = 0x9000n;

/** The INT 0x80 round trip: user `int 0x80; add r12, rsp-derived; dec r15; jnz; hlt`; the handler
 *  records its RSP in RBX (so RSP0 and IST show), counts in R14, runs `hook` on round trip HOOK_AT
 *  and returns with IRETQ. */
function interruptGuest(hook: (s: Section) => void, gate: { ist?: number } = {}): ArchState {
  const l = defineLayout({
    idt: { userVectors: [0x80], gates: { 0x80: { offset: HANDLER, ...(gate.ist === undefined ? {} : { ist: gate.ist }) } } },
  });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Int_imm8, 0x80)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  const handler = (at: bigint, name: string, extra: number) => {
    const s = a.section(at, { name })
      .emit(Code.Push_r64, R.RAX)
      .emit(Code.Mov_r64_rm64, R.RAX, R.RSP)
      .emit(Code.Add_rm64_r64, R.RBX, R.RAX)
      .emit(Code.Add_rm64_imm32, R.RBX, extra)
      .emit(Code.Inc_rm64, R.R14)
      .emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT)
      .emit(Code.Jne_rel8_64, `${name}_skip`);
    if (extra === 0) hook(s);
    s.label(`${name}_skip`)
      .emit(Code.Pop_r64, R.RAX)
      .emit(Code.Iretq);
  };
  handler(HANDLER, "handler", 0);
  handler(ALT_HANDLER, "alt_handler", 0x1000);
  return buildGuest(l, { code: a.assemble(), start: { ring: 3, regs: { r15: BigInt(ROUNDS) } } }).state;
}

const PF_HANDLER = 0x14000n, ALT_PF_HANDLER = 0x15000n;

/** The #PF round trip: user `mov rax, [0x600000]` (not present) `; inc r12; dec r15; jnz; jmp $`;
 *  the handler skips the load, adds `extra` to RBX, counts in R14 and runs `hook` on round trip
 *  HOOK_AT; it returns with RF = 1 (the fault's frame), so the next user instruction runs with RF
 *  set. */
function pageFaultGuest(hook: (s: Section) => void): ArchState {
  const l = defineLayout({ idt: { gates: { 14: { offset: PF_HANDLER } } } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Mov_r64_rm64, R.RAX, abs(0x600000n))
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .label("end")
    .emit(Code.Jmp_rel8_64, "end");
  const handler = (at: bigint, name: string, extra: number) => {
    const s = a.section(at, { name })
      .emit(Code.Push_r64, R.RAX)
      .emit(Code.Mov_r64_rm64, R.RAX, mem(R.RSP, 16n))
      .emit(Code.Add_rm64_imm8, R.RAX, 8)
      .emit(Code.Mov_rm64_r64, mem(R.RSP, 16n), R.RAX)
      .emit(Code.Pop_r64, R.RAX)
      .emit(Code.Add_rm64_imm8, R.RSP, 8)
      .emit(Code.Add_rm64_imm32, R.RBX, extra)
      .emit(Code.Inc_rm64, R.R14)
      .emit(Code.Cmp_rm64_imm8, R.R14, HOOK_AT)
      .emit(Code.Jne_rel8_64, `${name}_skip`);
    if (extra === 0) hook(s);
    s.label(`${name}_skip`).emit(Code.Iretq);
  };
  handler(PF_HANDLER, "pf", 0);
  handler(ALT_PF_HANDLER, "alt_pf", 0x1000);
  return buildGuest(l, { code: a.assemble(), start: { ring: 3, kernelGsBase: 0n, regs: { r15: BigInt(ROUNDS) } } }).state;
}

// The ends below are the engines' own pages (Engine.peekState over ALL_MEMORY: views, not copies,
// valid until the engine's next load/step/run/raise; no engine is called again), compared as the
// copies state() made were: hundreds of runs each copied every page.

/** Every configuration's end must be the first's: the same stop and the same state, every field and
 *  every byte of memory (contract/compare.ts, exact rule, all memory: what comparing the states'
 *  canonical JSON texts found, without writing the texts). */
function expectSameEnds(ends: readonly { readonly stop: unknown; readonly state: ArchState }[]): void {
  for (const o of ends.slice(1)) {
    expect(o.stop).toEqual(ends[0]!.stop);
    expect(compareStates(ends[0]!.state, o.state, { rule: "exact", memory: "all" }).differences).toEqual([]);
  }
}

/** Runs on every impl configuration and with traces off; all must agree (not against spec). */
function expectConfigsAgree(state: ArchState, steps: number): void {
  const configs: ImplEngineOptions[] = [...CONFIGS.map((c) => c.opts), { traces: false }];
  expectSameEnds(configs.map((opts) => {
    const e = new ImplEngine(opts);
    e.load(state, "intel");
    const stop = e.run(steps);
    return { stop: { reason: stop.reason, steps: stop.steps }, state: e.peekState(ALL_MEMORY) };
  }));
}

const STEPS = 2000;

/** expectHookSeen (trace-hooks.ts) over this file's STEPS. */
function expectHookSeen(hooked: ArchState, base: ArchState, formedWithin: number, check: (s: ArchState) => void): void {
  expectHookSeenWithin(hooked, base, formedWithin, STEPS, check);
}

/** With CF set from the start (kept by the loop's INC/DEC), the RFLAGS a delivery inside the trace
 *  pushes, computed at the trace's back edge, must carry it as on spec/. */
function expectBackEdgeRflagsPushed(base: ArchState, formedWithin: number): void {
  const state = { ...base, rflags: base.rflags | 1n };
  expect(traceFormed(state, formedWithin)).toBe(true);
  const out = expectAgreesWithSpec(state, STEPS);
  expect(out.state.rflags & 1n).toBe(1n);
}

describe("traces across SYSCALL/SYSRET", () => {
  const base = syscallGuest(() => {});

  it("form on the round trip and run it as spec/ does", () => {
    expect(traceFormed(base, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(base, STEPS);
    expect(out.reason).toBe("limit");
    expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
  });

  const hooks: [string, (s: Section, l: GuestLayout) => void, (s: ArchState) => void][] = [
    ["a write to LSTAR", (s) => wrmsr(s, IA32_LSTAR, ALT_LSTAR), (s) => expect(s.gpr[5]! >> 12n).toBe(BigInt(ROUNDS - HOOK_AT))],
    ["a write to STAR (SYSRET's selectors)", (s, l) => wrmsr(s, IA32_STAR, (l.msrs.star & 0xffffffffffffn) | (0x38n << 48n)),
      (s) => expect(s.ss.selector).toBe(0x43)],
    ["a write to FMASK", (s) => wrmsr(s, IA32_FMASK, 0x100n), () => {}],
    ["a write to EFER (SCE cleared: #UD)", (s, l) => wrmsr(s, IA32_EFER, l.msrs.efer & ~1n), (s) => expect(s.rip).toBe(0xb000n + 16n * 6n + 1n)],
    ["TF set in R11 (a #DB trap after SYSRET)", (s) => s.emit(Code.Or_rm64_imm32, mem(R.RSP), 0x100), (s) => expect(s.rip).toBe(0xb000n + 16n * 1n + 1n)],
    ["a non-canonical RCX (#GP at SYSRET)", (s) => s.emit(Code.Mov_r64_imm64, R.RAX, 0x0000800000000000n).emit(Code.Mov_rm64_r64, mem(R.RSP, 8n), R.RAX),
      (s) => expect(s.rip).toBe(0xb000n + 16n * 13n + 1n)],
    ["a write to CR3 (user code in other frames)", (s, l) => {
      void l;
      s.emit(Code.Mov_r64_imm64, R.RAX, ALT_TABLES[0]!).emit(Code.Mov_cr_r64, R.CR3, R.RAX);
    }, (s) => expect(s.gpr[12]).toBe(BigInt(HOOK_AT - 1 + 3 * (ROUNDS - HOOK_AT + 1)))],
    ["a write to the user code", (s) => poke(s, 0x200002n + 3n, 2), (s) => expect(s.gpr[12]).toBe(BigInt(HOOK_AT - 1 + 2 * (ROUNDS - HOOK_AT + 1)))],
    // #PF pushing RCX, whose delivery faults on the same stack: #DF, then a triple fault.
    ["the kernel stack moved to a not-present page (faults in the entry)", (s, l) => poke(s, l.percpu!.base + 8n, 0x600800, 8),
      (s) => expect(s.cpu.shutdown).toBe(true)],
  ];
  for (const [name, hook, check] of hooks) {
    it(`see ${name} made between two round trips`, () => expectHookSeen(syscallGuest(hook), base, 22 * HOOK_AT, check));
  }

  it("see TF set by SYSRET inside the trace (a #DB trap after it)", () => {
    const state = syscallGuest(() => {}, {}, 0x100);
    const out = expectAgreesWithSpec(state, STEPS);
    // The #DB stub, after 16 round trips.
    expect(out.state.rip).toBe(0xb000n + 16n * 1n + 1n);
    expect(out.state.gpr[14]).toBe(16n);
  });

  it("see IF set by SYSRET inside the trace with an IRQ pending since the start", () => {
    // The user loop runs with IF = 0 until SYSRET sets it on round trip 16.
    const state = { ...syscallGuest(() => {}, {}, 0x200, 0x2n), cpu: { ...syscallGuest(() => {}).cpu, pendingIrq: 0x30 } };
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.rip).toBe(0xb000n + 16n * 0x30n + 1n);
    expect(out.state.gpr[14]).toBe(16n);
  });

  it("stop exactly where a step limit lands inside the trace", () => {
    const state = syscallGuest((s) => wrmsr(s, IA32_LSTAR, ALT_LSTAR));
    for (let steps = 180; steps <= 420; steps++) expectConfigsAgree(state, steps);
  });

  it("leave for an IRQ or NMI raised while the kernel runs with IF = 0 (taken after SYSRET)", () => {
    const state = syscallGuest(() => {});
    for (let first = 200; first < 260; first++) {
      for (const raise of [{ irq: 0x30 }, { nmi: true as const }]) {
        const outs = [...CONFIGS.map((c) => c.opts), { traces: false }].map((opts) => {
          const e = new ImplEngine(opts);
          e.load(state, "intel");
          const a = e.run(first);
          e.raise(raise);
          const b = e.run(STEPS);
          return { stop: [a.steps, b.reason, b.steps], state: e.peekState(ALL_MEMORY) };
        });
        expectSameEnds(outs);
      }
    }
  });
});

/** The guest layout's user data page (read by the extras below). */
const USER_DATA = 0x220000n;
const AC = 0x40000n, CR4_SMAP = 1n << 21n;

describe("SYSCALL and SYSRETQ written out in a trace (engine/trace-transitions.ts)", () => {
  // SYSCALL's saved RFLAGS (R11) is computed from whichever operation set the flags last: the
  // kernel adds the masked RFLAGS to RBP on every round trip, and R11 goes back through SYSRET, so
  // a wrong flag on any round trip shows in the final state.
  const producers: [string, (s: Section) => void][] = [
    ["a 64-bit SUB with an immediate", (s) => s.emit(Code.Mov_r64_rm64, R.R8, R.R15).emit(Code.Sub_rm64_imm8, R.R8, 17)],
    ["a 64-bit CMP of registers", (s) => s.emit(Code.Mov_r64_imm64, R.R9, 0x8000000000000005n).emit(Code.Cmp_rm64_r64, R.R15, R.R9)],
    ["a 32-bit ADD that carries and overflows", (s) => s.emit(Code.Mov_r32_rm32, R.R8D, R.R15D).emit(Code.Add_rm32_imm32, R.R8D, 0x7ffffff0)],
    ["a 16-bit TEST", (s) => s.emit(Code.Test_rm16_imm16, R.R15W, 0x8005)],
    ["an 8-bit INC that overflows", (s) => s.emit(Code.Mov_r32_rm32, R.R8D, R.R15D).emit(Code.Add_rm8_imm8, R.R8L, 0x6c).emit(Code.Inc_rm8, R.R8L)],
    ["a 64-bit DEC", (s) => s.emit(Code.Mov_r64_rm64, R.R8, R.R15).emit(Code.Dec_rm64, R.R8)],
    ["ADC", (s) => s.emit(Code.Mov_r64_rm64, R.R8, R.R15).emit(Code.Cmp_rm64_imm8, R.R8, 9).emit(Code.Adc_rm64_r64, R.R8, R.R8)],
    ["SBB", (s) => s.emit(Code.Mov_r64_rm64, R.R8, R.R15).emit(Code.Cmp_rm64_imm8, R.R8, 9).emit(Code.Sbb_rm32_imm8, R.R8D, 3)],
    ["a 32-bit XOR to zero", (s) => s.emit(Code.Xor_r32_rm32, R.R8D, R.R8D)],
    ["a shift", (s) => s.emit(Code.Mov_r64_rm64, R.R8, R.R15).emit(Code.Shl_rm64_imm8, R.R8, 62)],
  ];
  for (const [name, emit] of producers) {
    it(`save RFLAGS after ${name}`, () => {
      const state = syscallGuest(() => {}, {}, 0, undefined, { beforeSyscall: emit });
      expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
      const out = expectAgreesWithSpec(state, 700);
      expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
    });
  }

  it("give the user access classes by RFLAGS.AC at SYSRET (#AC on a misaligned user load once AC is set)", () => {
    // From round trip 16 on, SYSRET sets AC (CR0.AM = 1 in the layout): the user's misaligned load
    // raises #AC(0) inside the trace.
    const state = syscallGuest(() => {}, {}, Number(AC), undefined, {
      afterSyscall: (s) => s.emit(Code.Mov_r64_rm64, R.R8, abs(USER_DATA + 1n)),
    });
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.rip).toBe(0xb000n + 16n * 17n + 1n);
    expect(out.state.gpr[14]).toBe(16n);
  });

  it("give the kernel the access classes by RFLAGS.AC at SYSCALL (SMAP: AC kept by FMASK lets it read a user page)", () => {
    const smap = { msrs: { fmask: 0x7700n }, control: { cr4: 0x620n | CR4_SMAP } };
    const read = { inEntry: (s: Section) => s.emit(Code.Add_r64_rm64, R.RBP, abs(USER_DATA)) };
    const state = syscallGuest(() => {}, smap, 0, 0x202n | AC, read);
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.gpr[12]).toBe(BigInt(ROUNDS));
    // Without AC the same read is a #PF (SMAP): the test can tell the two classes apart.
    const faulting = expectAgreesWithSpec(syscallGuest(() => {}, smap, 0, 0x202n, read), STEPS, "intel", { lockstep: false });
    expect(faulting.state.rip).toBe(0xb000n + 16n * 14n + 1n);
  });

  /** Entry code that from round trip 16 on (R14 bit 4) puts `bits` (shifted left by `shift`) into
   *  RAX, without a branch (the trace's path stays the same); 0 before. */
  const from16 = (s: Section, multiplier: number, shift = 0) => {
    s.emit(Code.Mov_r64_rm64, R.RAX, R.R14).emit(Code.Shr_rm64_imm8, R.RAX, 4).emit(Code.And_rm64_imm8, R.RAX, 1)
      .emit(Code.Imul_r64_rm64_imm32, R.RAX, R.RAX, multiplier);
    if (shift !== 0) s.emit(Code.Shl_rm64_imm8, R.RAX, shift);
    return s;
  };

  it("see EFER.SCE cleared before a SYSCALL inside the trace (#UD)", () => {
    // Round trip HOOK_AT clears SCE and returns with IRETQ; the user loop's next SYSCALL, in the
    // trace, raises #UD.
    const state = syscallGuest((s, l) => {
      const star = l.msrs.star >> 48n;
      wrmsr(s, IA32_EFER, l.msrs.efer & ~1n)
        .emit(Code.Pop_r64, R.R11).emit(Code.Pop_r64, R.RCX)
        .emit(Code.Mov_r64_rm64, R.RAX, abs(percpuOffset(l, "userRsp"), R.GS))
        .emit(Code.Swapgs)
        .emit(Code.Pushq_imm32, Number((star + 8n) | 3n)).emit(Code.Push_r64, R.RAX).emit(Code.Push_r64, R.R11)
        .emit(Code.Pushq_imm32, Number((star + 16n) | 3n)).emit(Code.Push_r64, R.RCX)
        .emit(Code.Iretq);
    });
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.rip).toBe(0xb000n + 16n * 6n + 1n);
    expect(out.state.gpr[14]).toBe(BigInt(HOOK_AT));
  });

  it("see a non-canonical RCX at a SYSRETQ inside the trace (#GP)", () => {
    // From round trip 16 on, the entry sets bit 47 of the saved RCX.
    const state = syscallGuest(() => {}, {}, 0, undefined, {
      inEntry: (s) => from16(s, 1, 47).emit(Code.Or_rm64_r64, mem(R.RSP, 8n), R.RAX),
    });
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.rip).toBe(0xb000n + 16n * 13n + 1n);
    expect(out.state.gpr[14]).toBe(16n);
  });

  it("see the user code remapped by a page-table write inside the trace (the guard after SYSRETQ)", () => {
    // From round trip 16 on, the entry points the PDE of 2–4 MiB (PD at 0x3000, entry 1) at
    // physical 4 MiB, where the loop adds 3 instead of 1; the write flushes the TLB.
    const remap = { inEntry: (s: Section) => from16(s, 0x200000).emit(Code.Add_rm64_imm32, R.RAX, 0x200087).emit(Code.Mov_rm64_r64, abs(0x3008n), R.RAX) };
    const state = syscallGuest(() => {}, {}, 0, undefined, remap);
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.gpr[12]).toBe(15n + 3n * 5n);
  });

  it("see the entry's page remapped (CR3 write) between two round trips (the guard after SYSCALL)", () => {
    // A second address space maps LSTAR's page (0x11000) to the second entry (0x15000, which adds
    // 0x1000 to RBP); the user code maps as before, so the trace is entered again, and the same
    // LSTAR now leads to other code.
    const MiB = 0x100000n;
    const kernelAlt = {
      tables: [0x44000n, 0x45000n, 0x46000n, 0x47000n, 0x48000n],
      mappings: [
        identity(0n, 0x11000n, "4K", false), identity(0x11000n, 0x1000n, "4K", false, { physical: ALT_LSTAR }),
        identity(0x12000n, 2n * MiB - 0x12000n, "4K", false), ...DEFAULT_MAPPINGS.slice(1),
      ],
    };
    const state = syscallGuest((s) => {
      s.emit(Code.Mov_r64_imm64, R.RAX, 0x44000n).emit(Code.Mov_cr_r64, R.CR3, R.RAX);
    }, { addressSpaces: [kernelAlt] }, 0, undefined, { hookInBoth: true });
    expect(traceFormed(state, 22 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(state, STEPS);
    expect(out.state.gpr[5]! >> 12n).toBe(BigInt(ROUNDS - HOOK_AT));
  });

  it("load SS at SYSRET as the vendor profile says (AMD keeps its hidden part)", () => {
    const amd = expectAgreesWithSpec(base(), STEPS, "amd");
    const intel = expectAgreesWithSpec(base(), STEPS, "intel", { lockstep: false });
    expect(amd.state.ss.selector).toBe(intel.state.ss.selector);
    expect(amd.state.ss.dpl).not.toBe(intel.state.ss.dpl);
  });

  function base(): ArchState {
    return syscallGuest(() => {});
  }
});

describe("traces across INT n/IRETQ", () => {
  const base = interruptGuest(() => {});

  it("form on the round trip and run it as spec/ does", () => {
    expect(traceFormed(base, 16 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(base, STEPS);
    expect(out.reason).toBe("hlt");
  });

  const hooks: [string, (s: Section) => void, (s: ArchState) => void][] = [
    ["a write to the IDT (the gate's offset)", (s) => poke(s, IDT + 16n * 0x80n + 1n, Number((ALT_HANDLER >> 8n) & 0xffn)),
      (s) => expect(s.gpr[3]! >> 12n > 0n).toBe(true)],
    ["a write to the TSS's RSP0", (s) => poke(s, TSS + 4n, 0x1f000, 4), () => {}],
    ["a write to a GDT descriptor (user CS becomes DPL 0: #GP at IRETQ)", (s) => poke(s, GDT + 0x28n + 5n, 0x9b), (s) => expect(s.rip).toBe(0xb000n + 16n * 13n + 1n)],
    ["LIDT (an IDT elsewhere without the gate: #GP)", (s) => {
      s.emit(Code.Mov_rm16_imm16, abs(0x30100n), 0x7f).emit(Code.Mov_rm64_imm32, abs(0x30102n), 0x9000).emit(Code.Lidt_m1664, abs(0x30100n));
    }, (s) => expect(s.idtr.limit).toBe(0x7f)],
  ];
  for (const [name, hook, check] of hooks) {
    it(`see ${name} made between two round trips`, () => expectHookSeen(interruptGuest(hook), base, 16 * HOOK_AT, check));
  }

  it("push RFLAGS as computed at the trace's back edge (CF set from the start, kept by INC/DEC)", () => expectBackEdgeRflagsPushed(base, 16 * HOOK_AT));

  it("see a write to the TSS's IST1 when the gate uses IST1", () => {
    const ist = interruptGuest((s) => poke(s, TSS + 0x24n, 0x1f000, 4), { ist: 1 });
    const plain = interruptGuest(() => {}, { ist: 1 });
    expect(traceFormed(ist, 16 * HOOK_AT)).toBe(true);
    const a = expectAgreesWithSpec(ist, STEPS);
    const b = expectAgreesWithSpec(plain, STEPS, "intel", { lockstep: false });
    expect(a.state.gpr[3]).not.toBe(b.state.gpr[3]);
  });

  it("stop exactly where a step limit lands inside the trace", () => {
    const state = interruptGuest(() => {});
    for (let steps = 120; steps <= 300; steps++) expectConfigsAgree(state, steps);
  });
});

describe("traces through a #PF's delivery", () => {
  const base = pageFaultGuest(() => {});

  it("form on the round trip and run it as spec/ does", () => {
    expect(traceFormed(base, 25 * HOOK_AT)).toBe(true);
    const out = expectAgreesWithSpec(base, STEPS);
    expect(out.state.gpr[14]).toBe(BigInt(ROUNDS));
  });

  const hooks: [string, (s: Section) => void, (s: ArchState) => void][] = [
    // The PTE of 0x600000 (the 4 KiB table at 0x4000) made present: the loads stop faulting.
    ["the faulting page made present", (s) => poke(s, 0x4000n, 0x600007, 8), (s) => expect(s.gpr[14]).toBe(BigInt(HOOK_AT))],
    ["a write to the IDT (the #PF gate's offset)", (s) => poke(s, IDT + 16n * 14n + 1n, Number((ALT_PF_HANDLER >> 8n) & 0xffn)),
      (s) => expect(s.gpr[3]! >> 12n).toBe(BigInt(ROUNDS - HOOK_AT))],
  ];
  for (const [name, hook, check] of hooks) {
    it(`see ${name} between two round trips`, () => expectHookSeen(pageFaultGuest(hook), base, 25 * HOOK_AT, check));
  }

  it("push RFLAGS as computed at the trace's back edge (CF set from the start, kept by INC/DEC)", () => expectBackEdgeRflagsPushed(base, 25 * HOOK_AT));

  it("stop exactly where a step limit lands inside the trace", () => {
    const state = pageFaultGuest(() => {});
    for (let steps = 120; steps <= 300; steps++) expectConfigsAgree(state, steps);
  });
});
