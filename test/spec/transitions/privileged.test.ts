// Privileged instructions whose effect is outside the model or a constant of the modelled CPU:
// CACHE-01/02 (WBINVD, WBNOINVD, INVD), INVLPG-01/02, RDTSC-01/02, RDTSCP-01/02, RDPMC-01/02,
// XGETBV-01..03, XSETBV-01..03.
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import { CR4, RAX, RCX, RDX } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const withCr4 = <M extends { cr4: bigint }>(m: M, bits: bigint): M => ({ ...m, cr4: m.cr4 | bits });
const junk = { rax: 0xffff_ffff_ffff_ffffn, rdx: 0x1234_5678_9abc_def0n, rcx: 0xdead_beef_0000_0001n };

describe("caches and TLB", () => {
  it("CACHE-01: WBINVD, WBNOINVD and INVD at CPL 3 raise #GP(0) (vector ring3-wbinvd-gp)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x0f, 0x09]), m, GP, 0, "CACHE-01");
    expectFault(stepBytes(m, [0xf3, 0x0f, 0x09]), m, GP, 0, "CACHE-01");
    expectFault(stepBytes(m, [0x0f, 0x08]), m, GP, 0, "CACHE-01");
  });
  it("CACHE-02: WBINVD, WBNOINVD and INVD at CPL 0 complete with no other effect", () => {
    expect(retired(stepBytes(kernelMachine(), [0x0f, 0x09])).rip).toBe(0x10002n);
    expect(retired(stepBytes(kernelMachine(), [0xf3, 0x0f, 0x09])).rip).toBe(0x10003n);
    expect(retired(stepBytes(kernelMachine(), [0x0f, 0x08])).rip).toBe(0x10002n);
  });
  it("INVLPG-01: INVLPG at CPL 3 raises #GP(0)", () => {
    const m = withRegs(userMachine(), { rax: 0x200000n });
    expectFault(stepBytes(m, [0x0f, 0x01, 0x38]), m, GP, 0, "INVLPG-01");
  });
  it("INVLPG-02: INVLPG at CPL 0 never faults, even for a non-canonical or unmapped address", () => {
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0x0000_8000_0000_0000n }), [0x0f, 0x01, 0x38])).rip).toBe(0x10003n);
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0x7000_0000n }), [0x0f, 0x01, 0x38])).rip).toBe(0x10003n);
  });
});

describe("time stamp and performance counters", () => {
  it("RDTSC-01: with CR4.TSD = 1, RDTSC at CPL 3 raises #GP(0)", () => {
    const m = withCr4(userMachine(), CR4.TSD);
    expectFault(stepBytes(m, [0x0f, 0x31]), m, GP, 0, "RDTSC-01");
  });
  it("RDTSC-02: otherwise RDTSC reads the TSC as 0 into EDX:EAX (upper halves cleared), at any CPL", () => {
    for (const m of [userMachine(), withCr4(kernelMachine(), CR4.TSD)]) {
      const after = retired(stepBytes(withRegs(m, junk), [0x0f, 0x31]));
      expect([after.gpr[RAX], after.gpr[RDX], after.gpr[RCX]]).toEqual([0n, 0n, junk.rcx]);
      expect(after.rip).toBe(m.rip + 2n);
    }
  });
  it("RDTSCP-01: with CR4.TSD = 1, RDTSCP at CPL 3 raises #GP(0)", () => {
    const m = withCr4(userMachine(), CR4.TSD);
    expectFault(stepBytes(m, [0x0f, 0x01, 0xf9]), m, GP, 0, "RDTSCP-01");
  });
  it("RDTSCP-02: RDTSCP reads TSC 0 into EDX:EAX and TSC_AUX 0 into ECX", () => {
    const after = retired(stepBytes(withRegs(userMachine(), junk), [0x0f, 0x01, 0xf9]));
    expect([after.gpr[RAX], after.gpr[RDX], after.gpr[RCX]]).toEqual([0n, 0n, 0n]);
  });
  it("RDPMC-01: with CR4.PCE = 0, RDPMC at CPL 3 raises #GP(0)", () => {
    const m = withRegs(userMachine(), { rcx: 0n });
    expectFault(stepBytes(m, [0x0f, 0x33]), m, GP, 0, "RDPMC-01");
  });
  it("RDPMC-02: otherwise (CPL 0, or CR4.PCE = 1) every counter index raises #GP(0): the CPU has no counters", () => {
    for (const m of [withRegs(kernelMachine(), { rcx: 0n }), withRegs(withCr4(userMachine(), CR4.PCE), { rcx: 1n }), withRegs(kernelMachine(), { rcx: 0x4000_0000n })])
      expectFault(stepBytes(m, [0x0f, 0x33]), m, GP, 0, "RDPMC-02");
  });
});

describe("XGETBV / XSETBV", () => {
  it("XGETBV-01: with CR4.OSXSAVE = 0, XGETBV raises #UD at any CPL", () => {
    for (const m of [userMachine(), kernelMachine()]) expectFault(stepBytes(m, [0x0f, 0x01, 0xd0]), m, UD, undefined, "XGETBV-01");
  });
  it("XGETBV-02: ECX = 0 reads XCR0 = 1 (x87 only) into EDX:EAX, at CPL 3 too", () => {
    const m = withRegs(withCr4(userMachine(), CR4.OSXSAVE), { ...junk, rcx: 0xffff_ffff_0000_0000n });
    const after = retired(stepBytes(m, [0x0f, 0x01, 0xd0]));
    expect([after.gpr[RAX], after.gpr[RDX]]).toEqual([1n, 0n]);
  });
  it("XGETBV-03: any other ECX raises #GP(0)", () => {
    const m = withRegs(withCr4(kernelMachine(), CR4.OSXSAVE), { rcx: 1n });
    expectFault(stepBytes(m, [0x0f, 0x01, 0xd0]), m, GP, 0, "XGETBV-03");
  });
  it("XSETBV-01: with CR4.OSXSAVE = 0, XSETBV raises #UD, before the privilege check", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x0f, 0x01, 0xd1]), m, UD, undefined, "XSETBV-01");
  });
  it("XSETBV-02: at CPL 3 XSETBV raises #GP(0)", () => {
    const m = withCr4(userMachine(), CR4.OSXSAVE);
    expectFault(stepBytes(m, [0x0f, 0x01, 0xd1]), m, GP, 0, "XSETBV-02");
  });
  it("XSETBV-03: at CPL 0 XSETBV stops as unsupported (XCR0 is not state), machine unchanged", () => {
    const m = withCr4(kernelMachine(), CR4.OSXSAVE);
    const r = stepBytes(m, [0x0f, 0x01, 0xd1]);
    expect(r.event).toMatchObject({ kind: "unsupported" });
    expect(r.state.rip).toBe(m.rip);
  });
});
