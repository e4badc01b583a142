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
