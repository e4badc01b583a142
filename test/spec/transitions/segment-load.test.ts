// Segment-register loads and stores (digest §22): SEG-01..08, SHADOW-07 and the accessed bit.
import { describe, expect, it } from "vitest";
import { GP, NP, SS, UD } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RAX, RSP } from "../../../spec/machine/registers.ts";
import { AMD, INTEL } from "../../../contract/profile.ts";
import { movToSreg } from "../../../spec/transitions/segment-load.ts";
import { kernelMachine, userMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { descriptor, expectFault, retired, SPARE, stepBytes, withGdtEntry } from "./build-system.ts";

const MOV = { ss: [0x8e, 0xd0], ds: [0x8e, 0xd8], es: [0x8e, 0xc0], fs: [0x8e, 0xe0], gs: [0x8e, 0xe8] };
const kernel = (ax: number): Machine => withRegs(kernelMachine(), { rax: BigInt(ax) });
const user = (ax: number): Machine => withRegs(userMachine(), { rax: BigInt(ax) });
const KERNEL_CS32 = { ...kernelMachine().cs, selector: 0x40, l: 0, db: 1 };
const fails = (m: Machine, bytes: number[], vector: number, code: number | undefined, rule?: string) => expectFault(stepBytes(m, bytes), m, vector, code, rule);

describe("SEG-01: MOV SS / POP SS", () => {
  it("SEG-01: loads a writable DPL-0 data segment at CPL 0 and arms the MOV-SS shadow (SEG-05)", () => {
    const m = retired(stepBytes(kernel(0x50), MOV.ss));
    expect(m.ss).toEqual({ selector: 0x50, base: 0n, limit: 0xffff_ffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 });
    expect(m.cpu.shadow).toBe("movss");
  });
  it("SEG-01: NULL SS is allowed in 64-bit mode at CPL < 3 with RPL = CPL; otherwise #GP(0)", () => {
    const m = retired(stepBytes(kernel(0), MOV.ss));
    expect({ selector: m.ss.selector, unusable: m.ss.unusable }).toEqual({ selector: 0, unusable: 1 });
    fails(kernel(1), MOV.ss, GP, 0, "SEG-01");
    fails(user(3), MOV.ss, GP, 0, "SEG-01");
    fails({ ...kernel(0), cs: KERNEL_CS32 }, MOV.ss, GP, 0, "SEG-01");
  });
  it("SEG-01: RPL != CPL, DPL != CPL, not writable data or beyond the limit raise #GP(sel); not present #SS(sel)", () => {
    fails(kernel(0x13), MOV.ss, GP, 0x10, "SEG-01");
    fails(kernel(0x20), MOV.ss, GP, 0x20, "SEG-01");
    fails(kernel(0x08), MOV.ss, GP, 0x08, "SEG-01");
    fails(kernel(0x68), MOV.ss, GP, 0x68, "SEG-01");
    fails(user(0x13), MOV.ss, GP, 0x10, "SEG-01");
    const np = withGdtEntry(kernel(SPARE), SPARE, descriptor({ type: 3, db: 1, present: 0 }));
    fails(np, MOV.ss, SS, SPARE, "SEG-01");
  });
  it("SHADOW-07: an SS load while a MOV-SS shadow is in force does not re-arm it", () => {
    const m0 = { ...kernel(0x10), cpu: { ...kernelMachine().cpu, shadow: "movss" as const } };
    expect(retired(stepBytes(m0, MOV.ss)).cpu.shadow).toBe("none");
    const sti = { ...kernel(0x10), cpu: { ...kernelMachine().cpu, shadow: "sti" as const } };
    expect(retired(stepBytes(sti, MOV.ss)).cpu.shadow).toBe("movss");
  });
  it("SEG-05: movToSreg(state, \"ss\", selector, profile) loads SS and arms the shadow alone", () => {
    const m = movToSreg(kernelMachine(), "ss", 0x50, INTEL);
    expect("ss" in m && { sel: m.ss.selector, shadow: m.cpu.shadow }).toEqual({ sel: 0x50, shadow: "movss" });
  });
});

describe("SEG-02: DS, ES, FS, GS", () => {
  it("SEG-02: a DPL-0 data selector at CPL 3 raises #GP(sel) (vector ring3-mov-ds-dpl0-gp)", () => {
    fails(user(0x10), MOV.ds, GP, 0x10, "SEG-02");
  });
  it("SEG-02: NULL is always allowed and marks the hidden part unusable", () => {
    const m = retired(stepBytes(user(3), MOV.ds));
    expect({ selector: m.ds.selector, unusable: m.ds.unusable }).toEqual({ selector: 3, unusable: 1 });
  });
  it("SEG-02: user data at CPL 3, readable code and conforming code are loadable", () => {
    expect(retired(stepBytes(user(0x23), MOV.es)).es).toMatchObject({ selector: 0x23, dpl: 3, type: 3, unusable: 0 });
    expect(retired(stepBytes(kernel(0x08), MOV.ds)).ds).toMatchObject({ selector: 0x08, type: 11, l: 1 });
    // Conforming code (0x58, DPL 3) is exempt from the DPL check, even with RPL 0 at CPL 0.
    expect(retired(stepBytes(kernel(0x58), MOV.ds)).ds.selector).toBe(0x58);
  });
  it("SEG-02: execute-only code, a system descriptor, RPL > DPL or beyond the limit raise #GP(sel); not present #NP(sel)", () => {
    fails(withGdtEntry(kernel(SPARE), SPARE, descriptor({ type: 9, l: 1 })), MOV.ds, GP, SPARE, "SEG-02");
    fails(kernel(0x30), MOV.ds, GP, 0x30, "SEG-02");
    fails(kernel(0x13), MOV.ds, GP, 0x10, "SEG-02");
    fails(kernel(0x1000), MOV.gs, GP, 0x1000, "SEG-02");
    fails(withGdtEntry(kernel(SPARE), SPARE, descriptor({ type: 3, db: 1, present: 0 })), MOV.ds, NP, SPARE, "SEG-02");
  });
  it("SEG-02: a selector with TI = 1 and an empty LDT raises #GP(sel)", () => {
    fails(kernel(0x0c), MOV.ds, GP, 0x0c, "SEG-02");
  });
});

describe("SEG-03: FS and GS bases", () => {
  const withFsDescriptor = (m: Machine) => withGdtEntry(m, SPARE, descriptor({ base: 0x1234_5678n, type: 3, db: 1 }));
  it("SEG-03: a non-NULL FS/GS selector loads the 32-bit descriptor base, overwriting the WRMSR base", () => {
    const m0 = withFsDescriptor({ ...kernel(SPARE), fs: { ...kernelMachine().fs, base: 0xffff_8000_0000_0000n } });
    expect(retired(stepBytes(m0, MOV.fs)).fs.base).toBe(0x1234_5678n);
    expect(retired(stepBytes(m0, MOV.gs)).gs.base).toBe(0x1234_5678n);
  });
  it("SEG-03: a NULL FS/GS selector clears the base under intel and keeps it under amd", () => {
    const m0 = { ...kernel(0), fs: { ...kernelMachine().fs, base: 0x7000n }, gs: { ...kernelMachine().gs, base: 0x8000n } };
    expect(retired(stepBytes(m0, MOV.fs, INTEL)).fs.base).toBe(0n);
    expect(retired(stepBytes(m0, MOV.fs, AMD)).fs.base).toBe(0x7000n);
    expect(retired(stepBytes(m0, MOV.gs, AMD)).gs).toMatchObject({ selector: 0, base: 0x8000n, unusable: 1 });
  });
});

describe("SEG-04: PUSH / POP FS and GS", () => {
  const STACK = 0x1f000n;
  const k = () => withRegs(kernelMachine(), { rsp: STACK });
  it("SEG-04: PUSH FS pushes the selector zero-extended to 8 bytes (2 with 66h)", () => {
    const m0 = { ...withBytes(k(), STACK - 8n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), fs: { ...kernelMachine().fs, selector: 0x23 } };
    const m = retired(stepBytes(m0, [0x0f, 0xa0]));
    expect({ rsp: m.gpr[RSP], top: m.memory.read(STACK - 8n, 8) }).toEqual({ rsp: STACK - 8n, top: 0x23n });
    const w = retired(stepBytes(m0, [0x66, 0x0f, 0xa0]));
    expect({ rsp: w.gpr[RSP], top: w.memory.read(STACK - 8n, 8) }).toEqual({ rsp: STACK - 2n, top: 0x0023_ffff_ffff_ffffn });
  });
  it("SEG-04: POP GS pops 8 bytes and loads the low 16 bits; a bad selector faults with RSP unchanged", () => {
    const m = retired(stepBytes(withBytes(k(), STACK, [0x23, 0, 0xaa, 0xbb, 0, 0, 0, 0]), [0x0f, 0xa9]));
    expect({ rsp: m.gpr[RSP], gs: m.gs.selector }).toEqual({ rsp: STACK + 8n, gs: 0x23 });
    const bad = withBytes(k(), STACK, [0x30, 0, 0, 0, 0, 0, 0, 0]);
    fails(bad, [0x0f, 0xa1], GP, 0x30, "SEG-02");
  });
});

describe("SEG-06..08", () => {
  it("SEG-06: loading a descriptor whose accessed bit is clear sets it in the GDT and in the hidden part", () => {
    const m = retired(stepBytes(withGdtEntry(kernel(SPARE), SPARE, descriptor({ type: 2, db: 1 })), MOV.ds));
    expect(m.ds.type).toBe(3);
    expect(m.memory.read(0x8000n + BigInt(SPARE), 8) >> 40n & 0xffn).toBe(0x93n);
  });
  it("SEG-06: a faulting load leaves the accessed bit clear", () => {
    const m0 = withGdtEntry(withRegs(kernelMachine(), { rax: BigInt(SPARE) }), SPARE, descriptor({ type: 2, db: 1, present: 0 }));
    const r = stepBytes(m0, MOV.ds);
    expect(r.event.kind).toBe("fault");
    expect(r.state.memory.read(0x8000n + BigInt(SPARE), 8) >> 40n & 0xffn).toBe(0x12n);
  });
  it("SEG-07: MOV r32, Sreg zero-extends; MOV r16, Sreg keeps the upper bits; a memory store is 16 bits", () => {
    const m0 = withRegs(kernelMachine(), { rax: (1n << 64n) - 1n, rbx: 0x30000n });
    expect(retired(stepBytes(m0, [0x8c, 0xd0])).gpr[RAX]).toBe(0x10n);
    expect(retired(stepBytes(m0, [0x66, 0x8c, 0xd0])).gpr[RAX]).toBe(0xffff_ffff_ffff_0010n);
    const s = retired(stepBytes(withBytes({ ...m0, fs: { ...m0.fs, selector: 0x2b } }, 0x30000n, [0xff, 0xff, 0xff, 0xff]), [0x8c, 0x23]));
    expect(s.memory.read(0x30000n, 4)).toBe(0xffff_002bn);
  });
  it("SEG-08: MOV CS, r/m is #UD", () => {
    const m = kernel(0x08);
    expectFault(stepBytes(m, [0x8e, 0xc8]), m, UD, undefined, "SEG-08");
  });
});
