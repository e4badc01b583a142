// MOV to/from CR0, CR2, CR3, CR4, CR8 (digest §17) and CLTS.
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { CR0, CR4, RAX } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { clts, movToCr } from "../../../spec/transitions/control-registers.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const TO_CR0 = [0x0f, 0x22, 0xc0];
const TO_CR2 = [0x0f, 0x22, 0xd0];
const TO_CR3 = [0x0f, 0x22, 0xd8];
const TO_CR4 = [0x0f, 0x22, 0xe0];
const TO_CR8 = [0x44, 0x0f, 0x22, 0xc0];
const FROM = { cr0: [0x0f, 0x20, 0xc0], cr2: [0x0f, 0x20, 0xd0], cr3: [0x0f, 0x20, 0xd8], cr4: [0x0f, 0x20, 0xe0], cr8: [0x44, 0x0f, 0x20, 0xc0] };
const CR0_NOW = 0x8005_0033n;
const kernel = (rax: bigint): Machine => withRegs(kernelMachine(), { rax });
const gpOn = (bytes: number[], rax: bigint, rule: string) => {
  const m = kernel(rax);
  expectFault(stepBytes(m, bytes), m, GP, 0, rule);
};

describe("MOV CR checks", () => {
  it("MOVCR-01: MOV to or from a control register at CPL 3 raises #GP(0) (vector ring3-mov-cr3-gp)", () => {
    const m = withRegs(userMachine(), { rax: 0x1000n });
    expectFault(stepBytes(m, TO_CR3), m, GP, 0, "MOVCR-01");
    expectFault(stepBytes(m, FROM.cr0), m, GP, 0, "MOVCR-01");
  });
  it("MOVCR-02: CR1 and CR5-CR7 are #UD", () => {
    const m = kernel(0n);
    for (const bytes of [[0x0f, 0x20, 0xc8], [0x0f, 0x22, 0xe8], [0x0f, 0x22, 0xf8]]) expectFault(stepBytes(m, bytes), m, UD, undefined);
  });
});

describe("MOV to CR0", () => {
  it("MOVCR-03: bits 63:32 set, PG without PE, NW without CD, or clearing PG in 64-bit mode raise #GP(0)", () => {
    gpOn(TO_CR0, CR0_NOW | (1n << 32n), "MOVCR-03");
    gpOn(TO_CR0, CR0_NOW & ~CR0.PE, "MOVCR-03");
    gpOn(TO_CR0, CR0_NOW | CR0.NW, "MOVCR-03");
    gpOn(TO_CR0, CR0_NOW & ~CR0.PG, "MOVCR-03");
  });
  it("MOVCR-03: reserved bits 31:0 are ignored, ET reads as 1, TS/CD+NW/MP may change", () => {
    expect(retired(stepBytes(kernel((CR0_NOW | (1n << 6n) | (1n << 20n)) & ~CR0.ET), TO_CR0)).cr0).toBe(CR0_NOW);
    expect(retired(stepBytes(kernel(CR0_NOW | CR0.TS | CR0.CD | CR0.NW), TO_CR0)).cr0).toBe(CR0_NOW | CR0.TS | CR0.CD | CR0.NW);
  });
  it("MOVCR-10: clearing PG in compatibility mode (leaving IA-32e mode) stops as unsupported", () => {
    const m = { ...kernel(0x11n), cs: { ...kernelMachine().cs, selector: 0x40, l: 0, db: 1 } };
    const r = stepBytes(m, TO_CR0);
    expect(r.event).toMatchObject({ kind: "unsupported" });
    expect(r.state.cr0).toBe(CR0_NOW);
  });
});

describe("MOV to CR2, CR3, CR4, CR8", () => {
  it("MOVCR-07: CR2 is written and read as a full 64-bit value", () => {
    const m = retired(stepBytes(kernel(0xffff_8000_dead_b000n), TO_CR2));
    expect(m.cr2).toBe(0xffff_8000_dead_b000n);
    expect(retired(stepBytes(withRegs(m, { rax: 0n }), FROM.cr2)).gpr[RAX]).toBe(0xffff_8000_dead_b000n);
  });
  it("MOVCR-04: CR3 bits at or above MAXPHYADDR (46) raise #GP(0); PWT/PCD and ignored low bits are stored", () => {
    gpOn(TO_CR3, 0x1000n | (1n << 46n), "MOVCR-04");
    gpOn(TO_CR3, 0x1000n | (1n << 63n), "MOVCR-04");
    expect(retired(stepBytes(kernel(0x3fff_ffff_f000n | 0x1fn), TO_CR3)).cr3).toBe(0x3fff_ffff_f01fn);
  });
  it("MOVCR-05: CR4 bits outside the model (VME, PVI, LA57, VMXE, PKE, bit 32) or clearing PAE raise #GP(0)", () => {
    for (const bit of [0n, 1n, 12n, 13n, 22n, 32n]) gpOn(TO_CR4, 0x620n | (1n << bit), "MOVCR-05");
    gpOn(TO_CR4, 0x620n & ~CR4.PAE, "MOVCR-05");
  });
  it("MOVCR-05: modelled CR4 bits (SMEP, SMAP, UMIP, FSGSBASE, PGE, TSD, DE) may be set", () => {
    const value = 0x620n | CR4.SMEP | CR4.SMAP | CR4.UMIP | CR4.FSGSBASE | CR4.PGE | CR4.TSD | (1n << 3n);
    expect(retired(stepBytes(kernel(value), TO_CR4)).cr4).toBe(value);
  });
  it("MOVCR-06: CR8 takes bits 3:0; any higher bit raises #GP(0)", () => {
    expect(retired(stepBytes(kernel(0xfn), TO_CR8)).cr8).toBe(0xfn);
    gpOn(TO_CR8, 0x10n, "MOVCR-06");
  });
  it("MOVCR-08: MOV CR leaves the arithmetic flags as they were", () => {
    const m0 = { ...kernel(0x1000n), rflags: 0x8d7n };
    expect(retired(stepBytes(m0, TO_CR3)).rflags).toBe(0x8d7n);
    expect(retired(stepBytes(m0, FROM.cr4)).rflags).toBe(0x8d7n);
  });
  it("MOVCR-09: MOV from CR0, CR3, CR4 and CR8 copies the register (64 bits in 64-bit mode)", () => {
    const m0 = { ...kernel(0xffn), cr8: 0x5n };
    expect(retired(stepBytes(m0, FROM.cr0)).gpr[RAX]).toBe(CR0_NOW);
    expect(retired(stepBytes(m0, FROM.cr3)).gpr[RAX]).toBe(0x1000n);
    expect(retired(stepBytes(m0, FROM.cr4)).gpr[RAX]).toBe(0x620n);
    expect(retired(stepBytes(m0, FROM.cr8)).gpr[RAX]).toBe(0x5n);
  });
  it("MOVCR-05: movToCr(state, cr, value, profile) applies the same checks alone", () => {
    expect(movToCr(kernelMachine(), 4, 0x620n | (1n << 12n), INTEL)).toMatchObject({ kind: "fault", vector: GP, errorCode: 0, rule: "MOVCR-05" });
    expect(movToCr(userMachine(), 3, 0x1000n, INTEL)).toMatchObject({ kind: "fault", vector: GP, errorCode: 0, rule: "MOVCR-01" });
    const m = movToCr(kernelMachine(), 8, 3n, INTEL);
    expect("cr8" in m && m.cr8).toBe(3n);
  });
});

describe("CLTS", () => {
  it("CLTS-01: CLTS at CPL 3 raises #GP(0) (vector ring3-clts-gp)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x0f, 0x06]), m, GP, 0, "CLTS-01");
  });
  it("CLTS-02: CLTS at CPL 0 clears CR0.TS and nothing else", () => {
    const m = retired(stepBytes({ ...kernelMachine(), cr0: CR0_NOW | CR0.TS }, [0x0f, 0x06]));
    expect(m.cr0).toBe(CR0_NOW);
    const alone = clts({ ...kernelMachine(), cr0: CR0_NOW | CR0.TS }, INTEL);
    expect("cr0" in alone && alone.cr0).toBe(CR0_NOW);
  });
});

// ---- issue 9: PCID, SMSW, LMSW --------------------------------------------------------------------

describe("PCID: CR4.PCIDE and CR3", () => {
  const pcide = (m: Machine): Machine => ({ ...m, cr4: m.cr4 | CR4.PCIDE });
  it("MOVCR-11: with CR4.PCIDE = 1, MOV CR3 does not store bit 63 (no flush) and keeps the PCID in bits 11:0", () => {
    const m = retired(stepBytes(withRegs(pcide(kernelMachine()), { rax: (1n << 63n) | 0x3000n | 0x5an }), TO_CR3));
    expect(m.cr3).toBe(0x305an);
  });
  it("MOVCR-11: with CR4.PCIDE = 1, bits 62:46 still raise #GP(0); with PCIDE = 0 bit 63 is reserved (MOVCR-04)", () => {
    const m = withRegs(pcide(kernelMachine()), { rax: (1n << 62n) | 0x3000n });
    expectFault(stepBytes(m, TO_CR3), m, GP, 0, "MOVCR-11");
    const plain = withRegs(kernelMachine(), { rax: (1n << 63n) | 0x3000n });
    expectFault(stepBytes(plain, TO_CR3), plain, GP, 0, "MOVCR-04");
  });
  it("MOVCR-12: setting CR4.PCIDE while CR3[11:0] != 0 raises #GP(0); with CR3[11:0] = 0 it is set; clearing is allowed", () => {
    const dirty = withRegs({ ...kernelMachine(), cr3: kernelMachine().cr3 | 0x8n }, { rax: kernelMachine().cr4 | CR4.PCIDE });
    expectFault(stepBytes(dirty, TO_CR4), dirty, GP, 0, "MOVCR-12");
    const clean = withRegs(kernelMachine(), { rax: kernelMachine().cr4 | CR4.PCIDE });
    expect(retired(stepBytes(clean, TO_CR4)).cr4 & CR4.PCIDE).toBe(CR4.PCIDE);
    // Already set: CR3[11:0] may be a PCID, and a write keeping PCIDE is allowed; clearing too.
    const withPcid = withRegs({ ...pcide(kernelMachine()), cr3: kernelMachine().cr3 | 0x7n }, { rax: kernelMachine().cr4 | CR4.PCIDE | CR4.SMEP });
    expect(retired(stepBytes(withPcid, TO_CR4)).cr4).toBe(kernelMachine().cr4 | CR4.PCIDE | CR4.SMEP);
    expect(retired(stepBytes(withRegs(withPcid, { rax: kernelMachine().cr4 }), TO_CR4)).cr4).toBe(kernelMachine().cr4);
  });
  it("MOVCR-13: clearing CR0.PG in compatibility mode with CR4.PCIDE = 1 raises #GP(0) (without PCIDE it stops unsupported, MOVCR-10)", () => {
    const compat = { ...kernelMachine(), cs: { ...kernelMachine().cs, l: 0, db: 1 } };
    const m = withRegs(pcide(compat), { rax: kernelMachine().cr0 & ~CR0.PG });
    expectFault(stepBytes(m, TO_CR0), m, GP, 0, "MOVCR-13");
    expect(stepBytes(withRegs(compat, { rax: kernelMachine().cr0 & ~CR0.PG }), TO_CR0).event).toMatchObject({ kind: "unsupported" });
  });
});

describe("SMSW / LMSW", () => {
  const SMSW_EAX = [0x0f, 0x01, 0xe0];
  it("MSW-01: with CR4.UMIP = 1, SMSW at CPL 3 raises #GP(0) before storing", () => {
    const m = withRegs({ ...userMachine(), cr4: userMachine().cr4 | CR4.UMIP }, { rax: 0x220000n });
    expectFault(stepBytes(m, SMSW_EAX), m, GP, 0, "MSW-01");
    expectFault(stepBytes(m, [0x0f, 0x01, 0x20]), m, GP, 0, "MSW-01");
  });
  it("MSW-02: without UMIP at CPL 3: r32 gets CR0[31:0] zero-extended, r64 CR0, r16 CR0[15:0] merged, memory CR0[15:0] (16 bits)", () => {
    const u = withRegs(userMachine(), { rax: 0xffff_ffff_ffff_ffffn, rbx: 0x220000n });
    const cr0 = u.cr0;
    expect(retired(stepBytes(u, SMSW_EAX)).gpr[RAX]).toBe(cr0 & 0xffff_ffffn);
    expect(retired(stepBytes(u, [0x48, 0x0f, 0x01, 0xe0])).gpr[RAX]).toBe(cr0);
    expect(retired(stepBytes(u, [0x66, 0x0f, 0x01, 0xe0])).gpr[RAX]).toBe(0xffff_ffff_ffff_0000n | (cr0 & 0xffffn));
    const mem = retired(stepBytes({ ...u, memory: u.memory.write(0x220000n, 4, 0xaabbccddn) }, [0x0f, 0x01, 0x23]));
    expect(mem.memory.read(0x220000n, 4)).toBe(0xaabb0000n | (cr0 & 0xffffn));
  });
  it("MSW-02: in compatibility mode a 32-bit register gets CR0[31:0] too", () => {
    const compat = withRegs({ ...userMachine(), cs: { ...userMachine().cs, l: 0, db: 1 } }, { rax: 0n });
    expect(retired(stepBytes(compat, SMSW_EAX)).gpr[RAX]).toBe(compat.cr0 & 0xffff_ffffn);
  });
  it("MSW-03: LMSW at CPL 3 raises #GP(0)", () => {
    const m = withRegs(userMachine(), { rax: 0xfn });
    expectFault(stepBytes(m, [0x0f, 0x01, 0xf0]), m, GP, 0, "MSW-03");
  });
  it("MSW-04: LMSW loads MP, EM, TS from bits 3:1 and cannot clear PE; other CR0 bits unchanged", () => {
    const k = kernelMachine();
    const set = retired(stepBytes(withRegs(k, { rax: 0xffeen }), [0x0f, 0x01, 0xf0]));
    expect(set.cr0).toBe((k.cr0 & ~0xen) | 0xen);
    const cleared = retired(stepBytes(withRegs({ ...k, cr0: k.cr0 | 0xen }, { rax: 0n }), [0x0f, 0x01, 0xf0]));
    expect(cleared.cr0).toBe(k.cr0 & ~0xen);
    expect(cleared.cr0 & CR0.PE).toBe(CR0.PE);
  });
});
