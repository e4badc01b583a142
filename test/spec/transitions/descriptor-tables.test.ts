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

// ---- issue 9: SLDT, STR, LLDT --------------------------------------------------------------------

const SLDT_EAX = [0x0f, 0x00, 0xc0];
const STR_RBX = [0x48, 0x0f, 0x00, 0xcb];
const STR_AX = [0x66, 0x0f, 0x00, 0xc8];
const SLDT_MEM_RAX = [0x0f, 0x00, 0x00];
const LLDT_AX = [0x0f, 0x00, 0xd0];
const LLDT_MEM_RBX = [0x0f, 0x00, 0x13];
/** An LDT descriptor (S = 0, type 2) at `base`, 16 bytes in IA-32e mode. */
const ldtLow = (base: bigint, present = 1) => descriptor({ type: 2, s: 0, base, limit: 0xfff, g: 0, present });

describe("SLDT / STR", () => {
  it("DT-07: with CR4.UMIP = 1, SLDT and STR at CPL 3 raise #GP(0) before storing", () => {
    const m = withRegs({ ...userMachine(), cr4: userMachine().cr4 | CR4.UMIP }, { rax: USER_DATA });
    expectFault(stepBytes(m, SLDT_MEM_RAX), m, GP, 0, "DT-07");
    expectFault(stepBytes(m, [0x0f, 0x00, 0xc8]), m, GP, 0, "DT-07");
  });
  it("DT-08: without UMIP, SLDT and STR execute at CPL 3: TR selector zero-extended into a 32/64-bit register, low word of a 16-bit one", () => {
    const u = withRegs(userMachine(), { rax: 0xffff_ffff_ffff_ffffn, rbx: 0xffff_ffff_ffff_ffffn });
    expect(retired(stepBytes(u, STR_RBX)).gpr[3]).toBe(BigInt(u.tr.selector));
    expect(retired(stepBytes(u, [0x0f, 0x00, 0xc8])).gpr[0]).toBe(BigInt(u.tr.selector));
    expect(retired(stepBytes(u, STR_AX)).gpr[0]).toBe(0xffff_ffff_ffff_0000n | BigInt(u.tr.selector));
    expect(retired(stepBytes({ ...u, ldtr: { ...u.ldtr, selector: 0x60 } }, SLDT_EAX)).gpr[0]).toBe(0x60n);
  });
  it("DT-08: to memory, a 16-bit store at the current CPL, whatever the operand size", () => {
    const m0 = withBytes(withRegs(userMachine(), { rax: USER_DATA }), USER_DATA, [0xaa, 0xbb, 0xcc, 0xdd]);
    const m = retired(stepBytes({ ...m0, ldtr: { ...m0.ldtr, selector: 0x1234 } }, [0x48, ...SLDT_MEM_RAX]));
    expect(m.memory.read(USER_DATA, 4)).toBe(0xddcc1234n);
  });
});

describe("LLDT", () => {
  it("DT-09: LLDT at CPL 3 raises #GP(0) before reading its operand", () => {
    const m = withRegs(userMachine(), { rbx: 0x8000_0000_0000n });
    expectFault(stepBytes(m, LLDT_MEM_RBX), m, GP, 0, "DT-09");
  });
  it("DT-10: a NULL selector (any RPL) marks LDTR unusable, keeping the selector; no descriptor is read", () => {
    const m = retired(stepBytes(withRegs({ ...kernelMachine(), gdtr: { base: 0x7000_0000n, limit: 0 } }, { rax: 3n }), LLDT_AX));
    expect(m.ldtr).toEqual({ selector: 3, base: 0n, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 });
  });
  it("DT-11: TI = 1, beyond the GDT limit (16 bytes), not an LDT, upper type bits, not present", () => {
    const sel = SPARE;
    const base = withGdtEntry(kernelMachine(), sel, ldtLow(0x5000n), 0xffff_ffffn);
    const cases: [Machine, number, number][] = [
      [withRegs(base, { rax: BigInt(sel | 4) }), GP, sel | 4],
      [withRegs({ ...base, gdtr: { ...base.gdtr, limit: sel + 14 } }, { rax: BigInt(sel) }), GP, sel],
      [withRegs(withGdtEntry(base, sel, descriptor({ type: 9, s: 0 }), 0n), { rax: BigInt(sel) }), GP, sel],
      [withRegs(withGdtEntry(base, sel, descriptor({ type: 2, s: 1 }), 0n), { rax: BigInt(sel) }), GP, sel],
      [withRegs(withGdtEntry(base, sel, ldtLow(0x5000n), 0x0000_0100_0000_0000n), { rax: BigInt(sel) }), GP, sel],
      [withRegs(withGdtEntry(base, sel, ldtLow(0x5000n, 0), 0n), { rax: BigInt(sel | 3) }), NP, sel],
    ];
    for (const [m, vector, code] of cases) expectFault(stepBytes(m, LLDT_AX), m, vector, code & 0xfffc, "DT-11");
  });
  it("DT-12: LDTR gets the selector (RPL kept) and the 16-byte descriptor's 64-bit base; the GDT is not written", () => {
    const sel = SPARE;
    const m0 = withRegs(withGdtEntry(kernelMachine(), sel, ldtLow(0x5000n), 0xffff_8000n), { rax: BigInt(sel | 2) });
    const m = retired(stepBytes(m0, LLDT_AX));
    expect(m.ldtr).toEqual({ selector: sel | 2, base: 0xffff_8000_0000_5000n, limit: 0xfff, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 });
    expect(m.memory.read(m0.gdtr.base + BigInt(sel), 8)).toBe(ldtLow(0x5000n));
  });
});
