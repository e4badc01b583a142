// SYSCALL (digest §2): SYSCALL-01..09, SYSCALL-V1/V2, and the vectors of that area.
import { describe, expect, it } from "vitest";
import { UD } from "../../../spec/fault.ts";
import { EFER, R11, RCX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { AMD, INTEL } from "../../../contract/profile.ts";
import { syscall } from "../../../spec/transitions/syscall.ts";
import { USER_CS32, userMachine, vectorMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const SYSCALL = [0x0f, 0x05];
const user = () => ({ ...userMachine(), fmask: 0x47700n });
const compat = () => ({ ...userMachine(), cs: USER_CS32 });

describe("SYSCALL checks", () => {
  it("SYSCALL-01: SYSCALL in compatibility mode is #UD under the intel profile (vector syscall-compat-mode)", () => {
    const m = compat();
    expectFault(stepBytes(m, SYSCALL, INTEL), m, UD, undefined, "SYSCALL-01");
  });
  it("SYSCALL-02: EFER.SCE = 0 raises #UD (vector syscall-sce0-ud), under both profiles and in compatibility mode on amd", () => {
    const m = { ...user(), efer: user().efer & ~EFER.SCE };
    expectFault(stepBytes(m, SYSCALL, INTEL), m, UD, undefined, "SYSCALL-02");
    expectFault(stepBytes(m, SYSCALL, AMD), m, UD, undefined, "SYSCALL-02");
    const c = { ...compat(), efer: compat().efer & ~EFER.SCE };
    expectFault(stepBytes(c, SYSCALL, AMD), c, UD, undefined, "SYSCALL-02");
  });
  it("SYSCALL-02: there is no CPL check: SYSCALL from CPL 0 enters LSTAR (vector syscall-from-ring0)", () => {
    const m = retired(stepBytes(vectorMachine("syscall-from-ring0"), SYSCALL));
    expect(m.rip).toBe(0x11000n);
    expect(m.gpr[RCX]).toBe(0x10002n);
    expect(m.gpr[R11]).toBe(0x202n);
    expect(m.rflags).toBe(0x2n);
  });
});

describe("SYSCALL updates", () => {
  it("SYSCALL-03: RCX receives the RIP of the next instruction", () => {
    const m = retired(stepBytes(user(), SYSCALL));
    expect(m.gpr[RCX]).toBe(0x200002n);
  });
  it("SYSCALL-04: R11 receives RFLAGS with RF = 0 (vector syscall-basic: 0x10e83 -> 0xe83)", () => {
    const m = retired(stepBytes({ ...user(), rflags: 0x10e83n }, SYSCALL));
    expect(m.gpr[R11]).toBe(0xe83n);
  });
  it("SYSCALL-05: RFLAGS <- RFLAGS AND NOT FMASK[31:0], RF cleared, bit 1 stays set", () => {
    expect(retired(stepBytes({ ...user(), rflags: 0x10e83n }, SYSCALL)).rflags).toBe(0x883n);
    // FMASK bit 1 and bits 63:32 have no effect; TF/IF/DF/AC/NT are cleared.
    const m = retired(stepBytes({ ...user(), rflags: 0x4_4f03n, fmask: 0xffff_ffff_0004_7702n }, SYSCALL));
    expect(m.rflags).toBe(0x803n);
  });
  it("SYSCALL-06: CS <- STAR[47:32] AND FFFCh with the fixed 64-bit DPL-0 cache, CPL 0, GDT not read", () => {
    const m0 = { ...user(), star: 0x0018_000bn << 32n, gdtr: { base: 0n, limit: 0 } };
    const m = retired(stepBytes(m0, SYSCALL));
    expect(m.cs).toEqual({ selector: 0x08, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 });
  });
  it("SYSCALL-07: SS <- STAR[47:32] + 8 with its RPL bits unmasked, fixed DPL-0 cache", () => {
    const m = retired(stepBytes({ ...user(), star: 0x0018_000bn << 32n }, SYSCALL));
    expect(m.ss).toEqual({ selector: 0x13, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  });
  it("SYSCALL-08: RIP <- LSTAR, even on a user page (vector syscall-lstar-on-user-page)", () => {
    const m = retired(stepBytes({ ...user(), lstar: 0x230000n }, SYSCALL));
    expect(m.rip).toBe(0x230000n);
  });
  it("SYSCALL-09: RSP, FS, GS, KERNEL_GS_BASE and memory are left unchanged", () => {
    const m0 = { ...user(), gs: { ...user().gs, base: 0x1111_0000n }, kernelGsBase: 0x2222_0000n };
    const m = retired(stepBytes(m0, SYSCALL));
    expect(m.gpr[RSP]).toBe(0x210000n);
    expect(m.gs).toEqual(m0.gs);
    expect(m.fs).toEqual(m0.fs);
    expect(m.kernelGsBase).toBe(0x2222_0000n);
    // Nothing pushed on the user stack or on the RSP0 stack.
    expect(m.memory.readBytes(0x20f000n, 0x1000)).toEqual(m0.memory.readBytes(0x20f000n, 0x1000));
    expect(m.memory.readBytes(0x1f000n, 0x1000)).toEqual(m0.memory.readBytes(0x1f000n, 0x1000));
    expect(retired(stepBytes(withRegs(m0, { rsp: 0xdead_beefn }), SYSCALL)).gpr[RSP]).toBe(0xdead_beefn);
  });
  it("SYSCALL-V1: under amd, SYSCALL in compatibility mode enters 64-bit mode through CSTAR", () => {
    const m = retired(stepBytes({ ...compat(), rflags: 0x202n, fmask: 0x200n }, SYSCALL, AMD));
    expect(m.rip).toBe(0x12000n);
    expect(m.gpr[RCX]).toBe(0x200002n);
    expect(m.gpr[R11]).toBe(0x202n);
    expect(m.rflags).toBe(0x2n);
    expect({ l: m.cs.l, db: m.cs.db, selector: m.cs.selector }).toEqual({ l: 1, db: 0, selector: 0x08 });
  });
  it("SYSCALL-V2: under amd the SS selector is STAR[47:32] + 8 unmasked as well", () => {
    const m = retired(stepBytes({ ...user(), star: 0x0018_000bn << 32n }, SYSCALL, AMD));
    expect(m.ss.selector).toBe(0x13);
  });
});

describe("SYSCALL alone", () => {
  it("SYSCALL-03..08: syscall(state, profile) gives the same machine as the step (vector syscall-basic)", () => {
    const start = vectorMachine("syscall-basic");
    const alone = syscall(start, INTEL);
    if ("kind" in alone) throw new Error("unexpected fault");
    const stepped = retired(stepBytes(start, SYSCALL));
    expect({ ...alone, memory: null }).toEqual({ ...stepped, memory: null });
    expect({ rcx: alone.gpr[RCX], r11: alone.gpr[R11], rflags: alone.rflags, rip: alone.rip }).toEqual({ rcx: 0x200002n, r11: 0xe83n, rflags: 0x883n, rip: 0x11000n });
    expect({ cs: alone.cs.selector, ss: alone.ss.selector }).toEqual({ cs: 0x08, ss: 0x10 });
  });
  it("SYSCALL-01: syscall(state, profile) returns the #UD as data", () => {
    const f = syscall(compat(), INTEL);
    expect(f).toMatchObject({ kind: "fault", vector: UD, errorCode: undefined, rule: "SYSCALL-01" });
  });
  it("SYSCALL-05: TF in FMASK leaves no single-step trap (vector syscall-tf-masked)", () => {
    const m = retired(stepBytes(vectorMachine("syscall-tf-masked"), SYSCALL));
    expect(m.rflags & RFLAGS.TF).toBe(0n);
    expect(m.cpu.pendingDebugTrap).toBe(false);
  });
});

describe("SYSCALL coverage", () => {
  it("SYSCALL-09, SYSCALL-11, SYSCALL-V2: rules without code of their own are recorded with the updates that realise them", () => {
    const coverage = new Set<string>();
    retired(stepBytes(user(), SYSCALL, INTEL, coverage));
    expect([...coverage].filter((r) => r.startsWith("SYSCALL-")).sort()).toEqual([
      "SYSCALL-03", "SYSCALL-04", "SYSCALL-05", "SYSCALL-06", "SYSCALL-07", "SYSCALL-08", "SYSCALL-09", "SYSCALL-10", "SYSCALL-11", "SYSCALL-V2",
    ]);
  });
  it("SYSCALL-09: a SYSCALL that faults records its check and none of the updates' rules", () => {
    const coverage = new Set<string>();
    const m = { ...user(), efer: user().efer & ~EFER.SCE };
    stepBytes(m, SYSCALL, INTEL, coverage);
    expect([...coverage].filter((r) => r.startsWith("SYSCALL-"))).toEqual(["SYSCALL-02"]);
  });
});
