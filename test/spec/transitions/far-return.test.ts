// Far RET (RETF-01..11) in IA-32e mode.
import { describe, expect, it } from "vitest";
import { GP, NP, SS } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { farReturn } from "../../../spec/transitions/far-return.ts";
import { KERNEL_SS, kernelMachine, USER_CS64, USER_SS, userMachine, vectorMachine, withRegs } from "../../helpers/fixture.ts";
import { descriptor, expectFault, retired, SPARE, stepBytes, withGdtEntry } from "./build-system.ts";

const LRETQ = [0x48, 0xcb];
const LRETQ_16 = [0x48, 0xca, 0x10, 0x00];
const STACK = 0x1f000n;
const NON_CANONICAL = 0x0000_8000_0000_0000n;

/** CPL-0 machine with the given quadwords at the top of its stack. */
function withStack(m: Machine, slots: readonly bigint[], at = STACK): Machine {
  let memory = m.memory;
  slots.forEach((v, i) => { memory = memory.write(at + 8n * BigInt(i), 8, v); });
  return { ...withRegs(m, { rsp: at }), memory };
}
const kernel = (slots: readonly bigint[]) => withStack(kernelMachine(), slots);
const fails = (m: Machine, bytes: number[], vector: number, code: number, rule: string) => expectFault(stepBytes(m, bytes), m, vector, code, rule);

describe("far RET checks", () => {
  it("RETF-01: a non-canonical stack address raises #SS(0)", () => {
    const m = withRegs(kernelMachine(), { rsp: NON_CANONICAL });
    expectFault(stepBytes(m, LRETQ), m, SS, 0, "CANON-SS");
  });
  it("RETF-02: a NULL return CS raises #GP(0)", () => fails(kernel([0x10000n, 0n]), LRETQ, GP, 0, "RETF-02"));
  it("RETF-03: a return CS beyond the GDT limit raises #GP(sel)", () => fails(kernel([0x10000n, 0x100n]), LRETQ, GP, 0x100, "RETF-03"));
  it("RETF-04: a data segment, or code with L = 1 and D = 1, raises #GP(sel)", () => {
    fails(kernel([0x10000n, 0x10n]), LRETQ, GP, 0x10, "RETF-04");
    fails(withGdtEntry(kernel([0x10000n, BigInt(SPARE)]), SPARE, descriptor({ type: 11, l: 1, db: 1 })), LRETQ, GP, SPARE, "RETF-04");
  });
  it("RETF-05: a return CS with RPL < CPL raises #GP(sel)", () => {
    const m = withStack(userMachine(), [0x10000n, 0x08n], 0x20f000n);
    fails(m, LRETQ, GP, 0x08, "RETF-05");
  });
  it("RETF-06: non-conforming DPL != RPL, or conforming DPL > RPL, raises #GP(sel)", () => {
    fails(kernel([0x200000n, 0x29n]), LRETQ, GP, 0x28, "RETF-06");
    fails(kernel([0x200000n, 0x58n]), LRETQ, GP, 0x58, "RETF-06");
  });
  it("RETF-07: a return CS not present raises #NP(sel)", () => {
    fails(withGdtEntry(kernel([0x10000n, BigInt(SPARE)]), SPARE, descriptor({ type: 11, l: 1, present: 0 })), LRETQ, NP, SPARE, "RETF-07");
  });
});

describe("far RET to the same privilege", () => {
  it("RETF-08: LRETQ to CS 0x08 loads CS and RIP and moves RSP past the two slots and the imm16", () => {
    const m = retired(stepBytes(kernel([0x12345n, 0x08n]), LRETQ_16));
    expect({ rip: m.rip, cs: m.cs.selector, rsp: m.gpr[RSP], ss: m.ss }).toEqual({ rip: 0x12345n, cs: 0x08, rsp: STACK + 16n + 0x10n, ss: kernelMachine().ss });
  });
  it("RETF-08: a non-canonical return RIP raises #GP(0); a compatibility target beyond its limit raises #GP(0)", () => {
    fails(kernel([NON_CANONICAL, 0x08n]), LRETQ, GP, 0, "RETF-08");
    const small = withGdtEntry(kernel([0x2000n, BigInt(SPARE)]), SPARE, descriptor({ type: 11, limit: 0xfff, g: 0, db: 1 }));
    fails(small, LRETQ, GP, 0, "RETF-08");
    expect(retired(stepBytes({ ...small, memory: small.memory.write(STACK, 8, 0xfffn) }, LRETQ)).cs).toMatchObject({ selector: SPARE, l: 0, db: 1, limit: 0xfff });
  });
});

describe("far RET to an outer privilege", () => {
  it("RETF-10: LRETQ to ring 3 pops SS:RSP and loads both from the GDT (vector lretq-to-ring3)", () => {
    const start = vectorMachine("lretq-to-ring3");
    const m = kernel([0x200000n, 0x2bn, 0x210000n, 0x23n]);
    const after = retired(stepBytes(m, LRETQ));
    expect({ rip: after.rip, rsp: after.gpr[RSP], cs: after.cs, ss: after.ss }).toEqual({ rip: 0x200000n, rsp: 0x210000n, cs: USER_CS64, ss: USER_SS });
    const alone = farReturn(kernel([0x200000n, 0x2bn, 0x210000n, 0x23n]), 8, 0, INTEL);
    expect({ ...alone, memory: null }).toEqual({ ...after, memory: null });
    expect(start.cs.selector).toBe(0x08);
  });
  it("RETF-10: the imm16 is released on both stacks; a non-canonical return RIP raises #GP(0) at CPL 0", () => {
    const m = retired(stepBytes(kernel([0x200000n, 0x2bn, 0n, 0n, 0x210000n, 0x23n]), LRETQ_16));
    expect({ rsp: m.gpr[RSP], ss: m.ss.selector }).toEqual({ rsp: 0x210010n, ss: 0x23 });
    fails(kernel([NON_CANONICAL, 0x2bn, 0x210000n, 0x23n]), LRETQ, GP, 0, "RETF-10");
  });
  it("RETF-10: a compatibility-mode target loads popped RSP bits 31:0 zero-extended (issue 8, divergence B: 0x100000000 gives RSP = 0); a return RIP above 4 GiB is #GP(0)", () => {
    // The SDM leaves bits 63:32 of general registers undefined after a switch to a 32-bit mode
    // (Vol. 1 §3.4.1.1); docs/model-choices.md row "Transfers into compatibility mode" makes them 0.
    const m = retired(stepBytes(kernel([0x200000n, 0x1bn, 0x1_0000_0000n, 0x23n]), LRETQ));
    expect({ rip: m.rip, rsp: m.gpr[RSP], cs: m.cs.selector, l: m.cs.l, ss: m.ss.selector }).toEqual({ rip: 0x200000n, rsp: 0n, cs: 0x1b, l: 0, ss: 0x23 });
    const highRsp = retired(stepBytes(kernel([0x200000n, 0x1bn, 0xffff_ffff_0021_0000n, 0x23n]), LRETQ));
    expect({ rip: highRsp.rip, rsp: highRsp.gpr[RSP] }).toEqual({ rip: 0x200000n, rsp: 0x210000n });
    // The return RIP is checked whole against the 32-bit CS's limit (SDM RET: "the return
    // instruction pointer is not within the return code segment limit"), not cut to EIP.
    fails(kernel([0xffff_ffff_0020_0000n, 0x1bn, 0x210000n, 0x23n]), LRETQ, GP, 0, "RETF-10");
  });
  it("RETF-10: a 16-bit SS (B = 0) still gets the whole popped ESP (SDM RET: \"ESP ← tempESP\"); the imm16 is then released at SP's width (\"SP ← SP + SRC\")", () => {
    // docs/model-choices.md row "Return to a 16-bit stack (SS.B = 0)": unlike IRET (SDM Vol. 3A
    // §6.14.3), the RET page loads ESP; QEMU 7.2 and Bochs 2.7 load SP only (docs/discrepancies.md).
    const sixteen = (m: Machine) => withGdtEntry(m, SPARE, descriptor({ type: 3, dpl: 3, db: 0 }));
    const m = retired(stepBytes(sixteen(kernel([0x200000n, 0x1bn, 0xabcd_1234n, BigInt(SPARE | 3)])), LRETQ));
    expect({ rsp: m.gpr[RSP], ss: m.ss.selector, b: m.ss.db }).toEqual({ rsp: 0xabcd_1234n, ss: SPARE | 3, b: 0 });
    const imm = retired(stepBytes(sixteen(kernel([0x200000n, 0x1bn, 0n, 0n, 0xabcd_fff8n, BigInt(SPARE | 3)])), LRETQ_16));
    expect(imm.gpr[RSP]).toBe(0xabcd_0008n);
  });
  it("RETF-09: NULL SS to ring 3, SS.RPL != CS.RPL, non-writable SS or SS.DPL != RPL raise #GP; not present #SS(sel)", () => {
    fails(kernel([0x200000n, 0x2bn, 0x210000n, 0x3n]), LRETQ, GP, 0, "RETF-09");
    fails(kernel([0x200000n, 0x2bn, 0x210000n, 0x22n]), LRETQ, GP, 0x20, "RETF-09");
    fails(kernel([0x200000n, 0x2bn, 0x210000n, 0x2bn]), LRETQ, GP, 0x28, "RETF-09");
    fails(kernel([0x200000n, 0x2bn, 0x210000n, 0x13n]), LRETQ, GP, 0x10, "RETF-09");
    fails(kernel([0x200000n, 0x2bn, 0x210000n, 0x1000n]), LRETQ, GP, 0x1000, "RETF-09");
    const np = withGdtEntry(kernel([0x200000n, 0x2bn, 0x210000n, BigInt(SPARE | 3)]), SPARE, descriptor({ type: 3, dpl: 3, db: 1, present: 0 }));
    fails(np, LRETQ, SS, SPARE, "RETF-09");
  });
  it("RETF-09: a NULL SS is accepted for a 64-bit ring-1 target with SS.RPL = CS.RPL, refused with another RPL", () => {
    const ring1 = (ss: bigint) => withGdtEntry(kernel([0x200000n, BigInt(SPARE | 1), 0x210000n, ss]), SPARE, descriptor({ type: 11, dpl: 1, l: 1 }));
    const m = retired(stepBytes(ring1(1n), LRETQ));
    expect({ cpl: m.cs.selector & 3, ss: m.ss.selector, unusable: m.ss.unusable }).toEqual({ cpl: 1, ss: 1, unusable: 1 });
    fails(ring1(2n), LRETQ, GP, 0, "RETF-09");
  });
  it("RETF-11: data segments whose hidden part has DPL < the new CPL become NULL (base kept); DPL-3 ones stay", () => {
    const m0 = { ...kernel([0x200000n, 0x2bn, 0x210000n, 0x23n]), ds: KERNEL_SS, es: { ...USER_SS, selector: 0x23 }, gs: { ...KERNEL_SS, selector: 0x50, base: 0x9000n } };
    const m = retired(stepBytes(m0, LRETQ));
    expect(m.ds).toMatchObject({ selector: 0, unusable: 1 });
    expect(m.es).toEqual(m0.es);
    expect(m.gs).toMatchObject({ selector: 0, unusable: 1, base: 0x9000n });
  });
  it("RETF-11: the hidden part decides, whatever the selector: a NULL selector over a usable DPL-0 data cache is nulled; a NULL one over a DPL-3 cache, or an unusable one, is left as it is (the RET page has no NULL clause)", () => {
    const flatDpl0 = { ...kernelMachine().fs, selector: 0, base: 0x7000n };
    const nullRpl3Dpl3 = { ...USER_SS, selector: 3 };
    const unusable = { selector: 2, base: 0x1234n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    const m0 = { ...kernel([0x200000n, 0x2bn, 0x210000n, 0x23n]), fs: flatDpl0, es: nullRpl3Dpl3, ds: unusable };
    const m = retired(stepBytes(m0, LRETQ));
    expect(m.fs).toEqual({ selector: 0, base: 0x7000n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 });
    expect(m.es).toEqual(nullRpl3Dpl3);
    expect(m.ds).toEqual(unusable);
  });
  it("RETF-11: a nulled data segment gets the NULL hidden part of IRETQ-16 (limit 0, attributes 0, base kept)", () => {
    // Lockstep found spec kept the old limit and attributes here while its IRET (and impl) cleared them.
    const m0 = { ...kernel([0x200000n, 0x2bn, 0x210000n, 0x23n]), ds: { ...KERNEL_SS, base: 0x1234n } };
    const m = retired(stepBytes(m0, LRETQ));
    expect(m.ds).toEqual({ selector: 0, base: 0x1234n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 });
  });
});
