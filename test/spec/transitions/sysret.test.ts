// SYSRET (digest §3): SYSRET-01..08, SYSRET-V1..V5, and the SYSCALL/SYSRETQ round trip property.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { EFER, R11, RCX, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { AMD, INTEL } from "../../../contract/profile.ts";
import { syscall } from "../../../spec/transitions/syscall.ts";
import { sysret } from "../../../spec/transitions/sysret.ts";
import { kernelMachine, userMachine, vectorMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { expectFault, faultOf, retired, stepBytes } from "./build-system.ts";
import { step } from "../../../spec/step/step.ts";

const SYSRETQ = [0x48, 0x0f, 0x07];
const SYSRET32 = [0x0f, 0x07];
const NON_CANONICAL = 0x0000_8000_0000_0000n;
const KERNEL_CS32 = { ...kernelMachine().cs, selector: 0x40, l: 0, db: 1 };
const kernel = (rcx = 0x200000n, r11 = 0x202n): Machine => withRegs(kernelMachine(), { rcx, r11 });

describe("SYSRET checks", () => {
  it("SYSRET-01: EFER.SCE = 0 raises #UD (vector sysret-sce0-ud)", () => {
    const m = { ...kernel(), efer: kernel().efer & ~EFER.SCE };
    expectFault(stepBytes(m, SYSRETQ), m, UD, undefined, "SYSRET-01");
    expectFault(stepBytes(m, SYSRETQ, AMD), m, UD, undefined, "SYSRET-01");
  });
  it("SYSRET-01: SYSRET in compatibility mode is #UD under the intel profile", () => {
    const m = { ...kernel(), cs: KERNEL_CS32 };
    expectFault(stepBytes(m, SYSRET32), m, UD, undefined, "SYSRET-01");
  });
  it("SYSRET-02: SYSRETQ at CPL 3 raises #GP(0) (vector sysret-at-cpl3-gp)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, SYSRETQ), m, GP, 0, "SYSRET-02");
    expectFault(stepBytes(m, SYSRETQ, AMD), m, GP, 0, "SYSRET-02");
  });
  it("SYSRET-03: non-canonical RCX faults in ring 0 under the intel profile, on the user RSP (vectors sysret-noncanonical-rcx*)", () => {
    const m = withRegs(kernel(NON_CANONICAL), { rsp: 0x210000n });
    const r = stepBytes(m, SYSRETQ);
    expectFault(r, m, GP, 0, "SYSRET-03");
    expect(r.state.cs.selector).toBe(0x08);
    expect(r.state.gpr[RSP]).toBe(0x210000n);
  });
  it("SYSRET-03: the 32-bit form uses ECX only, so a non-canonical RCX is no fault (vector sysret32-noncanonical-rcx-ignored)", () => {
    const m = retired(stepBytes(kernel(0x8000_0000_0020_0000n), SYSRET32));
    expect(m.rip).toBe(0x200000n);
  });
  it("SYSRET-V1: under amd a non-canonical RCX is loaded and the fetch faults #GP(0) at CPL 3", () => {
    const m = retired(stepBytes(kernel(NON_CANONICAL), SYSRETQ, AMD));
    expect(m.rip).toBe(NON_CANONICAL);
    expect(m.cs.selector & 3).toBe(3);
    const f = faultOf(step(m, { profile: AMD, delivery: "stop" }));
    expect({ vector: f.vector, errorCode: f.errorCode, rule: f.rule }).toEqual({ vector: GP, errorCode: 0, rule: "CANON-FETCH" });
  });
});

describe("SYSRET updates", () => {
  it("SYSRET-04: SYSRETQ loads RIP from RCX; the 32-bit form from ECX (vectors sysret64-basic, sysret32-basic)", () => {
    expect(retired(stepBytes(kernel(0x7fff_ffff_f000n), SYSRETQ)).rip).toBe(0x7fff_ffff_f000n);
    expect(retired(stepBytes(kernel(0xffff_ffff_0020_0000n), SYSRET32)).rip).toBe(0x200000n);
  });
  it("SYSRET-05: RFLAGS <- (R11 AND 3C7FD7h) OR 2: RF, VM and reserved bits cleared, IOPL/AC/ID/VIF/VIP kept", () => {
    expect(retired(stepBytes(kernel(0x200000n, (1n << 64n) - 1n), SYSRETQ)).rflags).toBe(0x3c_7fd7n);
    expect(retired(stepBytes(kernel(0x200000n, 0x0n), SYSRETQ)).rflags).toBe(0x2n);
    expect(retired(stepBytes(kernel(0x200000n, 0x3_0202n), SYSRETQ)).rflags).toBe(0x202n);
  });
  it("SYSRET-06: CS = (STAR[63:48] + 16) | 3 for SYSRETQ and STAR[63:48] | 3 for SYSRET, fixed DPL-3 caches (vector sysret-star-rpl-bits)", () => {
    const star = (0x001bn << 48n) | (0x0008n << 32n);
    const q = retired(stepBytes({ ...kernel(), star }, SYSRETQ));
    expect(q.cs).toEqual({ selector: 0x2b, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 3, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 });
    const d = retired(stepBytes({ ...kernel(), star: 0x0018_0008n << 32n }, SYSRET32));
    expect(d.cs).toEqual({ selector: 0x1b, base: 0n, limit: 0xffff_ffff, type: 11, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  });
  it("SYSRET-07: SS = (STAR[63:48] + 8) | 3 with a fresh flat DPL-3 cache, even after a NULL SS (intel)", () => {
    const nullSs = { selector: 0, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    const m = retired(stepBytes({ ...kernel(), ss: nullSs, star: (0x001bn << 48n) | (0x8n << 32n) }, SYSRETQ));
    expect(m.ss).toEqual({ selector: 0x23, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
  });
  it("SYSRET-08: RSP, FS and GS are left unchanged", () => {
    const m0 = { ...withRegs(kernel(), { rsp: 0x1234_5678n }), gs: { ...kernel().gs, base: 0xabc000n } };
    const m = retired(stepBytes(m0, SYSRETQ));
    expect(m.gpr[RSP]).toBe(0x1234_5678n);
    expect(m.gs).toEqual(m0.gs);
    expect(m.fs).toEqual(m0.fs);
  });
  it("SYSRET-V2: under amd only the SS selector changes; a NULL SS stays unusable", () => {
    const nullSs = { selector: 0, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    const m = retired(stepBytes({ ...kernel(), ss: nullSs }, SYSRETQ, AMD));
    expect(m.ss).toEqual({ ...nullSs, selector: 0x23 });
  });
  it("SYSRET-V3: under amd SYSRET in compatibility mode returns to 32-bit code with IF <- 1 and other flags kept (R11 unused)", () => {
    const m0 = { ...kernel(0xffff_ffff_0020_0000n, 0xcd7n), cs: KERNEL_CS32, rflags: 0x0c3n };
    const m = retired(stepBytes(m0, SYSRET32, AMD));
    expect(m.rip).toBe(0x200000n);
    expect(m.rflags).toBe(0x2c3n);
    expect({ selector: m.cs.selector, l: m.cs.l, db: m.cs.db, dpl: m.cs.dpl }).toEqual({ selector: 0x1b, l: 0, db: 1, dpl: 3 });
    expect(m.ss.selector).toBe(0x23);
  });
  it("SYSRET-V4: under amd RFLAGS come from R11 with RF and VM cleared (the intel value)", () => {
    const r11 = (1n << 64n) - 1n;
    expect(retired(stepBytes(kernel(0x200000n, r11), SYSRETQ, AMD)).rflags).toBe(retired(stepBytes(kernel(0x200000n, r11), SYSRETQ)).rflags);
  });
  it("SYSRET-V5: the SS RPL is forced to 3 under both profiles when STAR[49:48] = 0", () => {
    const star = (0x0010n << 48n) | (0x8n << 32n);
    expect(retired(stepBytes({ ...kernel(), star }, SYSRETQ, AMD)).ss.selector).toBe(0x1b);
    expect(retired(stepBytes({ ...kernel(), star }, SYSRETQ)).ss.selector).toBe(0x1b);
  });
  it("SYSRET-04: sysret(state, form, profile) gives the step's machine and returns faults as data", () => {
    const start = vectorMachine("sysret64-basic");
    const alone = sysret(start, "64", INTEL);
    expect(alone).toEqual({ ...retired(stepBytes(start, SYSRETQ)), memory: expect.anything() });
    expect(sysret(kernel(NON_CANONICAL), "64", INTEL)).toMatchObject({ kind: "fault", vector: GP, errorCode: 0, rule: "SYSRET-03" });
  });
});

/** Canonical user RIPs inside the identity-mapped user pages (2–4 MiB), room for SYSCALL. */
const userRip = fc.bigInt({ min: 0x200000n, max: 0x3f_fff0n });
/** RFLAGS bits user code can hold: CF PF AF ZF SF TF IF DF OF NT AC ID (IOPL 0, RF/VM 0). */
const userRflags = fc.bigInt({ min: 0n, max: (1n << 22n) - 1n }).map((v) => (v & 0x24_4fd5n) | 2n);
const gprs = fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 });

describe("SYSCALL then SYSRETQ", () => {
  it("SYSRET-04/05: from any user state, SYSCALL then SYSRETQ returns to RCX (the next RIP) with RSP kept and RFLAGS per the R11 mask", () => {
    const handler = 0x11000n;
    fc.assert(
      fc.property(userRip, userRflags, gprs, (rip, rflags, regs) => {
        let m: Machine = { ...userMachine(), rip, rflags, gpr: regs, fmask: 0x4_7700n, lstar: handler };
        m = withBytes(withBytes(m, rip, [0x0f, 0x05]), handler, [0x48, 0x0f, 0x07]);
        const entered = retired(step(m, { delivery: "stop" }));
        expect(entered.cs.selector & 3).toBe(0);
        const back = retired(step(entered, { delivery: "stop" }));
        expect(back.rip).toBe(rip + 2n);
        expect(back.gpr[RCX]).toBe(rip + 2n);
        expect(back.gpr[R11]).toBe(rflags);
        expect(back.gpr[RSP]).toBe(regs[RSP]);
        expect(back.rflags).toBe((rflags & 0x3c_7fd7n) | 2n);
        expect(back.rflags & RFLAGS.RF).toBe(0n);
        expect({ cs: back.cs.selector, ss: back.ss.selector, l: back.cs.l }).toEqual({ cs: 0x2b, ss: 0x23, l: 1 });
        back.gpr.forEach((v, i) => { if (i !== RCX && i !== R11) expect(v).toBe(regs[i]); });
        // The callable-alone functions agree with the step loop.
        const a = syscall(m, INTEL);
        if ("kind" in a) throw new Error("syscall faulted");
        const b = sysret(a, "64", INTEL);
        if ("kind" in b) throw new Error("sysret faulted");
        expect({ ...b, memory: null, cpu: null }).toEqual({ ...back, memory: null, cpu: null });
      }),
      { seed: 20260, numRuns: 200 },
    );
  });
});
