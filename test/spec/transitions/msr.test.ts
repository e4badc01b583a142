// RDMSR / WRMSR (digest §16): MSR-01..08, MSR-10, and the MSRs of issue 9 (MSR-11..13).
import { describe, expect, it } from "vitest";
import { GP } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { EFER, MSR, RAX, RDX } from "../../../spec/machine/registers.ts";
import { AMD, INTEL, type Profile } from "../../../contract/profile.ts";
import { rdmsr, wrmsr } from "../../../spec/transitions/msr.ts";
import { kernelMachine, userMachine, vectorMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const RDMSR = [0x0f, 0x32];
const WRMSR = [0x0f, 0x30];
const NON_CANONICAL = 0x0000_8000_0000_0000n;

/** WRMSR of `value` to `index` at CPL 0, with junk in the upper halves of RAX/RDX/RCX. */
function write(index: number, value: bigint, m: Machine = kernelMachine()) {
  return withRegs(m, { rcx: 0xdead_0000_0000_0000n | BigInt(index), rax: 0xffff_ffff_0000_0000n | (value & 0xffff_ffffn), rdx: 0xeeee_eeee_0000_0000n | (value >> 32n) });
}
const wr = (index: number, value: bigint, profile: Profile = INTEL, m?: Machine) => {
  const start = write(index, value, m);
  return { start, r: stepBytes(start, WRMSR, profile) };
};

describe("RDMSR / WRMSR checks", () => {
  it("MSR-01: RDMSR and WRMSR at CPL 3 raise #GP(0)", () => {
    const m = withRegs(userMachine(), { rcx: BigInt(MSR.EFER) });
    expectFault(stepBytes(m, RDMSR), m, GP, 0, "MSR-01");
    expectFault(stepBytes(m, WRMSR), m, GP, 0, "MSR-01");
  });
  it("MSR-02: an MSR the CPU does not implement raises #GP(0) (vector gp-rdmsr-unknown-msr)", () => {
    const m = withRegs(vectorMachine("gp-rdmsr-unknown-msr"), { rcx: 0x1234_5678n });
    expectFault(stepBytes(m, RDMSR), m, GP, 0, "MSR-02");
    const { start, r } = wr(0x1234_5678, 0n);
    expectFault(r, start, GP, 0, "MSR-02");
  });
  it("MSR-10: PAT, and WRMSR to TSC, TSC_AUX or APIC_BASE, stop as unsupported, machine unchanged", () => {
    const m = withRegs(kernelMachine(), { rcx: BigInt(MSR.PAT) });
    const r = stepBytes(m, RDMSR);
    expect(r.event).toMatchObject({ kind: "unsupported" });
    expect(r.state.rip).toBe(m.rip);
    for (const index of [MSR.TSC, MSR.TSC_AUX, MSR.APIC_BASE, MSR.PAT]) expect(wrmsr(write(index, 0x1000n), INTEL)).toMatchObject({ kind: "unsupported" });
  });
});

describe("SYSENTER MSRs, APIC_BASE, TSC (issue 9)", () => {
  it("MSR-11: SYSENTER_CS keeps bits 31:0 (EDX ignored) and reads back with EDX = 0; SYSENTER_ESP/EIP take 64 bits", () => {
    const cs = wr(MSR.SYSENTER_CS, 0x1234_0000_0010n);
    const m = retired(cs.r);
    expect(m.sysenterCs).toBe(0x10n);
    const back = retired(stepBytes(withRegs(m, { rcx: BigInt(MSR.SYSENTER_CS), rax: 0n, rdx: 7n }), RDMSR));
    expect([back.gpr[RAX], back.gpr[RDX]]).toEqual([0x10n, 0n]);
    expect(retired(wr(MSR.SYSENTER_ESP, 0xffff_8000_0000_2000n).r).sysenterEsp).toBe(0xffff_8000_0000_2000n);
    const eip = retired(wr(MSR.SYSENTER_EIP, 0x7fff_ffff_f000n).r);
    expect(eip.sysenterEip).toBe(0x7fff_ffff_f000n);
    const read = retired(stepBytes(withRegs(eip, { rcx: BigInt(MSR.SYSENTER_EIP) }), RDMSR));
    expect([read.gpr[RAX], read.gpr[RDX]]).toEqual([0xffff_f000n, 0x7fffn]);
  });
  it("MSR-05: WRMSR of a non-canonical SYSENTER_ESP or SYSENTER_EIP raises #GP(0)", () => {
    for (const index of [MSR.SYSENTER_ESP, MSR.SYSENTER_EIP]) {
      const { start, r } = wr(index, NON_CANONICAL);
      expectFault(r, start, GP, 0, "MSR-05");
    }
  });
  it("MSR-12: RDMSR APIC_BASE reads the state's value (power-up 0xFEE00900)", () => {
    const m = retired(stepBytes(withRegs(kernelMachine(), { rcx: BigInt(MSR.APIC_BASE) }), RDMSR));
    expect([m.gpr[RAX], m.gpr[RDX]]).toEqual([0xfee0_0900n, 0n]);
    const other = retired(stepBytes({ ...withRegs(kernelMachine(), { rcx: BigInt(MSR.APIC_BASE) }), apicBase: 0x1_fee0_0800n }, RDMSR));
    expect([other.gpr[RAX], other.gpr[RDX]]).toEqual([0xfee0_0800n, 1n]);
  });
  it("MSR-13: RDMSR of the TSC and of TSC_AUX read 0", () => {
    for (const index of [MSR.TSC, MSR.TSC_AUX]) {
      const m = retired(stepBytes(withRegs(kernelMachine(), { rcx: BigInt(index), rax: 5n, rdx: 6n }), RDMSR));
      expect([m.gpr[RAX], m.gpr[RDX]]).toEqual([0n, 0n]);
    }
  });
});

describe("RDMSR", () => {
  it("MSR-03: EDX:EAX <- MSR[ECX] with the upper halves of RAX and RDX cleared; RCX bits 63:32 ignored", () => {
    const m0 = { ...withRegs(kernelMachine(), { rcx: 0xffff_ffff_0000_0000n | BigInt(MSR.LSTAR), rax: -1n & ((1n << 64n) - 1n), rdx: (1n << 64n) - 1n }), lstar: 0xffff_8000_0000_1000n };
    const m = retired(stepBytes(m0, RDMSR));
    expect({ rax: m.gpr[RAX], rdx: m.gpr[RDX] }).toEqual({ rax: 0x1000n, rdx: 0xffff_8000n });
    const e = retired(stepBytes(withRegs(kernelMachine(), { rcx: BigInt(MSR.EFER) }), RDMSR));
    expect(e.gpr[RAX]).toBe(0xd01n);
    const alone = rdmsr({ ...withRegs(kernelMachine(), { rcx: BigInt(MSR.KERNEL_GS_BASE) }), kernelGsBase: 0x1_2345_6789n }, INTEL);
    if ("kind" in alone) throw new Error("no value");
    expect({ rax: alone.gpr[RAX], rdx: alone.gpr[RDX] }).toEqual({ rax: 0x2345_6789n, rdx: 1n });
  });
});

describe("WRMSR", () => {
  it("MSR-04: the value is EDX:EAX; bits 63:32 of RAX and RDX are ignored", () => {
    expect(retired(wr(MSR.STAR, 0x0023_0010_dead_beefn).r).star).toBe(0x0023_0010_dead_beefn);
  });
  it("MSR-05: a non-canonical LSTAR, FS_BASE, GS_BASE or KERNEL_GS_BASE raises #GP(0); canonical high-half values are taken", () => {
    for (const index of [MSR.LSTAR, MSR.FS_BASE, MSR.GS_BASE, MSR.KERNEL_GS_BASE]) {
      const { start, r } = wr(index, NON_CANONICAL);
      expectFault(r, start, GP, 0, "MSR-05");
    }
    expect(retired(wr(MSR.LSTAR, 0xffff_8000_0000_0000n).r).lstar).toBe(0xffff_8000_0000_0000n);
    expect(retired(wr(MSR.KERNEL_GS_BASE, 0x7fff_ffff_ffffn).r).kernelGsBase).toBe(0x7fff_ffff_ffffn);
  });
  it("MSR-06: EFER: reserved bits raise #GP(0), clearing LME with CR0.PG = 1 raises #GP(0), LMA is read-only", () => {
    let w = wr(MSR.EFER, 0xd01n | (1n << 12n));
    expectFault(w.r, w.start, GP, 0, "MSR-06");
    w = wr(MSR.EFER, 0xd01n | (1n << 9n));
    expectFault(w.r, w.start, GP, 0, "MSR-06");
    w = wr(MSR.EFER, 0xd01n & ~EFER.LME);
    expectFault(w.r, w.start, GP, 0, "MSR-06");
    // Writing LMA = 0 is ignored; SCE and NXE may change.
    expect(retired(wr(MSR.EFER, EFER.LME).r).efer).toBe(EFER.LME | EFER.LMA);
    expect(retired(wr(MSR.EFER, EFER.LME | EFER.LMA | EFER.SCE | EFER.NXE).r).efer).toBe(0xd01n);
  });
  it("MSR-07: STAR takes any value; FMASK bits 63:32 raise #GP(0)", () => {
    expect(retired(wr(MSR.STAR, (1n << 64n) - 1n).r).star).toBe((1n << 64n) - 1n);
    expect(retired(wr(MSR.FMASK, 0xffff_ffffn).r).fmask).toBe(0xffff_ffffn);
    const w = wr(MSR.FMASK, 1n << 32n);
    expectFault(w.r, w.start, GP, 0, "MSR-07");
  });
  it("MSR-07: a non-canonical CSTAR is stored under the intel profile and raises #GP(0) under amd", () => {
    expect(retired(wr(MSR.CSTAR, NON_CANONICAL).r).cstar).toBe(NON_CANONICAL);
    const w = wr(MSR.CSTAR, NON_CANONICAL, AMD);
    expectFault(w.r, w.start, GP, 0, "MSR-07");
    expect(retired(wr(MSR.CSTAR, 0x12000n, AMD).r).cstar).toBe(0x12000n);
  });
  it("MSR-08: FS_BASE / GS_BASE change the live bases; KERNEL_GS_BASE only the value SWAPGS will take", () => {
    const m = retired(wr(MSR.GS_BASE, 0xffff_8000_0000_4000n).r);
    expect(m.gs).toEqual({ ...kernelMachine().gs, base: 0xffff_8000_0000_4000n });
    expect(retired(wr(MSR.FS_BASE, 0x7000n).r).fs.base).toBe(0x7000n);
    const k = retired(wr(MSR.KERNEL_GS_BASE, 0x5000n).r);
    expect({ gs: k.gs.base, k: k.kernelGsBase }).toEqual({ gs: kernelMachine().gs.base, k: 0x5000n });
    const swapped = retired(stepBytes(k, [0x0f, 0x01, 0xf8]));
    expect(swapped.gs.base).toBe(0x5000n);
  });
});
