// LGDT / LIDT / SGDT / SIDT / LTR (digest §18): DT-01, DT-02, DT-05, DT-06.
import { describe, expect, it } from "vitest";
import { GP, NP } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { CR4 } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withBytes, withRegs } from "../../helpers/fixture.ts";
import { descriptor, expectFault, retired, SPARE, stepBytes, withGdtEntry } from "./build-system.ts";

const LGDT_RAX = [0x0f, 0x01, 0x10];
const LIDT_RAX = [0x0f, 0x01, 0x18];
const SGDT_RAX = [0x0f, 0x01, 0x00];
const SIDT_RAX = [0x0f, 0x01, 0x08];
const LTR_AX = [0x0f, 0x00, 0xd8];
const DATA = 0x30000n;
const USER_DATA = 0x220000n;

/** A pseudo-descriptor in memory: 2-byte limit, 8-byte base. */
function withPseudo(m: Machine, at: bigint, limit: number, base: bigint): Machine {
  return { ...withBytes(m, at, [limit & 0xff, limit >> 8]), memory: withBytes(m, at, [limit & 0xff, limit >> 8]).memory.write(at + 2n, 8, base) };
}

describe("LGDT / LIDT", () => {
  it("DT-01: LGDT and LIDT at CPL 3 raise #GP(0) (vector ring3-lgdt-gp)", () => {
    const m = withRegs(userMachine(), { rax: USER_DATA });
    expectFault(stepBytes(m, LGDT_RAX), m, GP, 0, "DT-01");
    expectFault(stepBytes(m, LIDT_RAX), m, GP, 0, "DT-01");
  });
  it("DT-01: LGDT / LIDT load the 2-byte limit and 8-byte base; the base is not checked for canonicality", () => {
    const m0 = withPseudo(withRegs(kernelMachine(), { rax: DATA }), DATA, 0x7f, 0x0000_8000_0000_9000n);
    expect(retired(stepBytes(m0, LGDT_RAX)).gdtr).toEqual({ base: 0x0000_8000_0000_9000n, limit: 0x7f });
    expect(retired(stepBytes(m0, LIDT_RAX)).idtr).toEqual({ base: 0x0000_8000_0000_9000n, limit: 0x7f });
  });
  it("DT-01: a non-canonical operand address raises #GP(0) before anything is loaded", () => {
    const m = withRegs(kernelMachine(), { rax: 0x0000_8000_0000_0000n });
    expectFault(stepBytes(m, LGDT_RAX), m, GP, 0);
  });
});

describe("SGDT / SIDT", () => {
  it("DT-05: with CR4.UMIP = 0, SGDT and SIDT at CPL 3 store 10 bytes (vector ring3-sgdt-no-umip)", () => {
    const m = retired(stepBytes(withRegs(userMachine(), { rax: USER_DATA }), SGDT_RAX));
    expect(m.memory.readBytes(USER_DATA, 10)).toEqual(Uint8Array.of(0x5f, 0, 0x00, 0x80, 0, 0, 0, 0, 0, 0));
    const i = retired(stepBytes(withRegs(userMachine(), { rax: USER_DATA + 0x10n }), SIDT_RAX));
    expect(i.memory.readBytes(USER_DATA + 0x10n, 10)).toEqual(Uint8Array.of(0xff, 0x0f, 0x00, 0x90, 0, 0, 0, 0, 0, 0));
  });
  it("DT-05: with CR4.UMIP = 1, SGDT / SIDT at CPL 3 raise #GP(0); at CPL 0 they still store", () => {
    const m = { ...withRegs(userMachine(), { rax: USER_DATA }), cr4: userMachine().cr4 | CR4.UMIP };
    expectFault(stepBytes(m, SGDT_RAX), m, GP, 0, "DT-05");
    expectFault(stepBytes(m, SIDT_RAX), m, GP, 0, "DT-05");
    const k = retired(stepBytes({ ...withRegs(kernelMachine(), { rax: DATA }), cr4: kernelMachine().cr4 | CR4.UMIP }, SGDT_RAX));
    expect(k.memory.read(DATA, 2)).toBe(0x5fn);
  });
});

/** A 16-byte 64-bit TSS descriptor at SPARE with the given type / present bit / upper qword. */
function withTss(m: Machine, type: number, present = 1, high = 0xffff_ffffn): Machine {
  return withGdtEntry(m, SPARE, descriptor({ base: 0xa000n, limit: 0x67, type, s: 0, g: 0, present }), high);
}
const ltr = (selector: number, m: Machine = kernelMachine()) => withRegs(m, { rax: BigInt(selector) });

describe("LTR", () => {
  it("DT-02: LTR at CPL 3 raises #GP(0)", () => {
    const m = withRegs(userMachine(), { rax: 0x30n });
    expectFault(stepBytes(m, LTR_AX), m, GP, 0, "DT-02");
  });
  it("DT-02: a NULL selector raises #GP(0); TI = 1 or beyond the GDT limit #GP(sel)", () => {
    for (const [sel, code] of [[0, 0], [3, 0], [0x34, 0x34], [0x100, 0x100], [0x5b, 0x58]] as const) {
      const m = ltr(sel);
      expectFault(stepBytes(m, LTR_AX), m, GP, code, "DT-02");
    }
  });
  it("DT-02: a busy TSS, a data segment or a non-zero upper type raise #GP(sel); not present #NP(sel)", () => {
    let m = ltr(0x30);
    expectFault(stepBytes(m, LTR_AX), m, GP, 0x30, "DT-02");
    m = ltr(0x10);
    expectFault(stepBytes(m, LTR_AX), m, GP, 0x10, "DT-02");
    m = ltr(SPARE, withTss(kernelMachine(), 9, 1, 0xffff_ffffn | (0x9n << 40n)));
    expectFault(stepBytes(m, LTR_AX), m, GP, SPARE, "DT-02");
    m = ltr(SPARE, withTss(kernelMachine(), 9, 0));
    expectFault(stepBytes(m, LTR_AX), m, NP, SPARE, "DT-02");
  });
  it("DT-06: LTR marks the TSS descriptor busy in the GDT and loads TR with the 64-bit base", () => {
    const m = retired(stepBytes(ltr(SPARE + 3, withTss(kernelMachine(), 9)), LTR_AX));
    expect(m.tr).toEqual({ selector: SPARE + 3, base: 0xffff_ffff_0000_a000n, limit: 0x67, type: 11, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 });
    expect(Number((m.memory.read(0x8000n + BigInt(SPARE), 8) >> 40n) & 0xfn)).toBe(11);
  });
});
