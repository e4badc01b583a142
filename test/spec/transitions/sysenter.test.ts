// SYSENTER and SYSEXIT in IA-32e mode (SDM Vol. 2B): SYSENTER-01..06, SYSEXIT-00..06, under both
// profiles and from 64-bit and compatibility mode.
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import { machineFromState, type Machine } from "../../../spec/machine/machine.ts";
import { RCX, RDX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { AMD, INTEL } from "../../../contract/profile.ts";
import { sysenter, sysexit } from "../../../spec/transitions/sysenter.ts";
import { guestState, kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const SYSENTER = [0x0f, 0x34];
const SYSEXIT32 = [0x0f, 0x35];
const SYSEXIT64 = [0x48, 0x0f, 0x35];
/** Linux-style: SYSENTER_CS = kernel CS 0x10. */
const msrs = { sysenterCs: 0xffff_0010n, sysenterEsp: 0xffff_8000_0002_0000n, sysenterEip: 0xffff_8000_0001_1000n };
const user = (m: Machine = userMachine()): Machine => ({ ...m, ...msrs, rflags: 0x10346n });
const compatUser = (): Machine => user(machineFromState(guestState({ ring: 3, compat: true })));
const kernel = (): Machine => withRegs({ ...kernelMachine(), ...msrs }, { rcx: 0x7fff_0000_1000n, rdx: 0x0040_1234n });

describe("SYSENTER", () => {
  it("SYSENTER-01: valid in 64-bit and compatibility mode at CPL 3 under intel; #UD under amd", () => {
    expect(retired(stepBytes(user(), SYSENTER)).cs.selector).toBe(0x10);
    expect(retired(stepBytes(compatUser(), SYSENTER)).cs.selector).toBe(0x10);
    for (const m of [user(), compatUser(), { ...kernelMachine(), ...msrs }]) expectFault(stepBytes(m, SYSENTER, AMD), m, UD, undefined, "SYSENTER-01");
  });
  it("SYSENTER-02: IA32_SYSENTER_CS[15:2] = 0 raises #GP(0) (the power-up value; RPL bits alone are not a selector)", () => {
    for (const cs of [0n, 3n, 0x10000n]) {
      const m = { ...user(), sysenterCs: cs };
      expectFault(stepBytes(m, SYSENTER), m, GP, 0, "SYSENTER-02");
    }
  });
  it("SYSENTER-03: VM and IF cleared; TF, AC, DF and the arithmetic flags kept (RF cleared as by any instruction)", () => {
    const m = retired(stepBytes({ ...user(), rflags: 0x10346n | RFLAGS.AC | RFLAGS.DF }, SYSENTER));
    expect(m.rflags).toBe((0x10346n | RFLAGS.AC | RFLAGS.DF) & ~(RFLAGS.IF | RFLAGS.RF));
    expect(m.cpu.pendingDebugTrap).toBe(true); // TF was set: the trap comes at the entry point
  });
  it("SYSENTER-04: RSP and RIP take all 64 bits of SYSENTER_ESP / SYSENTER_EIP, from compatibility mode too", () => {
    for (const m of [retired(stepBytes(user(), SYSENTER)), retired(stepBytes(compatUser(), SYSENTER))]) {
      expect(m.gpr[RSP]).toBe(msrs.sysenterEsp);
      expect(m.rip).toBe(msrs.sysenterEip);
    }
  });
  it("SYSENTER-05 / SYSENTER-06: CS = SYSENTER_CS & 0xFFFC, SS = CS + 8, fixed flat DPL-0 caches; CPL 0, 64-bit mode; no GDT read", () => {
    const m = retired(stepBytes({ ...user(), sysenterCs: 0x13n, gdtr: { base: 0x7000_0000n, limit: 0 } }, SYSENTER));
    expect(m.cs).toEqual({ selector: 0x10, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 });
    expect(m.ss).toEqual({ selector: 0x18, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
    expect(m.cs.selector & 3).toBe(0);
  });
  it("SYSENTER alone: callable outside the step", () => {
    const m = sysenter(user(), INTEL);
    expect("kind" in m).toBe(false);
    expect(sysenter(user(), AMD)).toMatchObject({ kind: "fault", vector: UD, rule: "SYSENTER-01" });
  });
});

describe("SYSEXIT", () => {
  it("SYSEXIT-00: under amd, SYSEXIT raises #UD in IA-32e mode, before the privilege check", () => {
    for (const m of [kernel(), user()]) expectFault(stepBytes(m, SYSEXIT64, AMD), m, UD, undefined, "SYSEXIT-00");
  });
  it("SYSEXIT-01: at CPL 3 (SYSENTER_CS set) SYSEXIT raises #GP(0)", () => {
    const m = user();
    expectFault(stepBytes(m, SYSEXIT64), m, GP, 0, "SYSEXIT-01");
  });
  it("SYSEXIT-02: IA32_SYSENTER_CS[15:2] = 0 raises #GP(0), at any CPL", () => {
    for (const m of [{ ...kernel(), sysenterCs: 0n }, { ...userMachine() }]) expectFault(stepBytes(m, SYSEXIT64), m, GP, 0, "SYSEXIT-02");
  });
  it("SYSEXIT-03: the 64-bit form with RCX or RDX non-canonical raises #GP(0); the 32-bit form takes ECX/EDX", () => {
    for (const regs of [{ rcx: 0x8000_0000_0000n }, { rdx: 0xffff_0000_0000_0000n }]) {
      const m = withRegs(kernel(), regs);
      expectFault(stepBytes(m, SYSEXIT64), m, GP, 0, "SYSEXIT-03");
      expect(retired(stepBytes(m, SYSEXIT32)).cs.selector).toBe(0x23);
    }
  });
  it("SYSEXIT-04 / SYSEXIT-05 / SYSEXIT-06: 64-bit form: RSP ← RCX, RIP ← RDX, CS = SYSENTER_CS + 32 | 3 (L = 1), SS = CS + 8; RFLAGS unchanged", () => {
    const start = { ...kernel(), rflags: 0x246n };
    const m = retired(stepBytes(start, SYSEXIT64));
    expect(m.gpr[RSP]).toBe(0x7fff_0000_1000n);
    expect(m.rip).toBe(0x0040_1234n);
    expect(m.rflags).toBe(0x246n);
    expect(m.cs).toEqual({ selector: 0x33, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 3, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 });
    expect(m.ss).toEqual({ selector: 0x3b, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  });
  it("SYSEXIT-04 / SYSEXIT-05: 32-bit form: RSP ← ECX, RIP ← EDX zero-extended, CS = SYSENTER_CS + 16 | 3 (compatibility mode, D = 1)", () => {
    const m = retired(stepBytes(withRegs(kernel(), { rcx: 0xffff_ffff_0000_1000n, rdx: 0xaaaa_0000_0040_2000n }), SYSEXIT32));
    expect(m.gpr[RSP]).toBe(0x1000n);
    expect(m.rip).toBe(0x40_2000n);
    expect(m.cs).toMatchObject({ selector: 0x23, l: 0, db: 1, dpl: 3 });
    expect(m.ss).toMatchObject({ selector: 0x2b, db: 1, dpl: 3 });
    expect([m.gpr[RCX], m.gpr[RDX]]).toEqual([0xffff_ffff_0000_1000n, 0xaaaa_0000_0040_2000n]);
  });
  it("SYSEXIT alone: callable outside the step", () => {
    expect(sysexit(kernel(), 8, INTEL)).toMatchObject({ rip: 0x0040_1234n });
    expect(sysexit(kernel(), 8, AMD)).toMatchObject({ kind: "fault", rule: "SYSEXIT-00" });
  });
});
