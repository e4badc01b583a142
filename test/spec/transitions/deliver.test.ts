// DELIVER-01..22, EXC-02/04/05, RF-03/04, NMI-01/02, PF-01, DT-03/04, SMAP-03, SEG-06: `deliver`
// called alone, and in the step loop where the rule needs instructions around it.
import { describe, expect, it } from "vitest";
import { fault, type Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { CR4, RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { deliver } from "../../../spec/transitions/double-fault.ts";
import { parseGate } from "../../../spec/transitions/deliver.ts";
import {
  exceptionEvent, externalEvent, NMI_EVENT, SINGLE_STEP_EVENT, softwareEvent, type InterruptEvent,
} from "../../../spec/transitions/exception-classes.ts";
import { kernelMachine, userMachine, withBytes, withCode, withRegs, KERNEL_CS, USER_SS } from "../../helpers/fixture.ts";
import { asFault, asMachine, descriptor, frameAt, HANDLER, stepOnce, steps, withDescriptor, withGate, withReadOnlyGdt, withTss } from "./build-delivery.ts";

const GP0 = exceptionEvent(fault("TEST", 13, 0));
const UD = exceptionEvent(fault("TEST", 6));
const INT = (v: number): InterruptEvent => softwareEvent(v, "software");

const fails = (m: Machine, e: InterruptEvent): Fault => asFault(deliver(m, e, INTEL, { nesting: "none" }));
const enters = (m: Machine, e: InterruptEvent): Machine => asMachine(deliver(m, e, INTEL, { nesting: "none" }));

describe("DELIVER-01: IDT limit", () => {
  it("a gate beyond IDTR.limit gives #GP(v·8 + 2 + EXT) for an exception", () => {
    const m = { ...kernelMachine(), idtr: { base: 0x9000n, limit: 0x5f } };
    expect(fails(m, UD)).toMatchObject({ vector: 13, errorCode: 0x33, rule: "DELIVER-01" });
  });
  it("and #GP(v·8 + 2) with EXT = 0 for INT n (index = vector, not 16·v)", () => {
    const m = { ...kernelMachine(), idtr: { base: 0x9000n, limit: 0x5f } };
    expect(fails(m, INT(0x40))).toMatchObject({ vector: 13, errorCode: 0x202 });
  });
  it("the last byte of the gate counts: limit 16·v + 14 is too short, 16·v + 15 is enough", () => {
    expect(fails({ ...kernelMachine(), idtr: { base: 0x9000n, limit: 6 * 16 + 14 } }, UD).rule).toBe("DELIVER-01");
    expect(enters({ ...kernelMachine(), idtr: { base: 0x9000n, limit: 6 * 16 + 15 } }, UD).rip).toBe(HANDLER(6));
  });
});

describe("DELIVER-02: reading the gate", () => {
  it("every field of the 16-byte gate comes from its place in Figure 6-8 (offset in three pieces)", () => {
    // offset 0xfedc_ba98_7654_3210, selector 0x1234, IST 5, type 0xE, S 0, DPL 3, P 1; reserved dword all ones.
    const low = 0x7654_ee05_1234_3210n;
    const high = 0xffff_ffff_fedc_ba98n;
    expect(parseGate(low, high)).toEqual({ offset: 0xfedc_ba98_7654_3210n, selector: 0x1234, ist: 5, type: 0xe, s: 0, dpl: 3, present: 1 });
    // S = 1, DPL 0, P 0, IST 0, type 0xF; offset bit 31 set (a number above 2^31 before it becomes a bigint).
    expect(parseGate(0x8000_1f00_0008_0001n, 0n)).toEqual({ offset: 0x8000_0001n, selector: 8, ist: 0, type: 0xf, s: 1, dpl: 0, present: 0 });
  });
  it("a gate in non-canonical space gives #GP(v·8 + 2 + EXT)", () => {
    const m = { ...kernelMachine(), idtr: { base: 0x0000_7fff_ffff_ffc0n, limit: 0xfff } };
    expect(fails(m, UD)).toMatchObject({ vector: 13, errorCode: 0x33, rule: "DELIVER-02" });
  });
  it("an IDT on a not-present page raises #PF for an implicit supervisor read (U/S = 0) even from CPL 3", () => {
    const m = { ...userMachine(), idtr: { base: 0x600000n, limit: 0xfff } };
    expect(fails(m, UD)).toMatchObject({ vector: 14, errorCode: 0, address: 0x600060n });
  });
});

describe("DELIVER-03: gate type", () => {
  for (const [type, name] of [[0x5, "task gate"], [0xc, "call gate"], [0x6, "16-bit interrupt gate"], [0x7, "16-bit trap gate"]] as const)
    it(`a ${name} (type ${type}) gives #GP(v·8 + 2 + EXT)`, () => {
      expect(fails(withGate(kernelMachine(), 6, { type }), UD)).toMatchObject({ vector: 13, errorCode: 0x33, rule: "DELIVER-03" });
    });
  it("a gate with S = 1 gives #GP(v·8 + 2 + EXT)", () => {
    expect(fails(withGate(kernelMachine(), 6, { s: 1 }), UD)).toMatchObject({ vector: 13, errorCode: 0x33 });
  });
});

describe("DELIVER-04 / SWINT-02: gate DPL, software interrupts only", () => {
  it("INT 14 at CPL 3 through a DPL-0 gate gives #GP(0x72)", () => {
    expect(fails(userMachine(), INT(14))).toMatchObject({ vector: 13, errorCode: 0x72, rule: "DELIVER-04" });
  });
  it("INT3 at CPL 3 through a DPL-0 gate gives #GP(0x1a)", () => {
    expect(fails(userMachine(), INT(3))).toMatchObject({ vector: 13, errorCode: 0x1a });
  });
  it("a DPL-3 gate lets INT n in from CPL 3", () => {
    expect(enters(withGate(userMachine(), 0x80, { dpl: 3 }), INT(0x80)).rip).toBe(HANDLER(0x80));
  });
  it("exceptions, INT1, NMI and external interrupts ignore the gate DPL", () => {
    for (const e of [UD, softwareEvent(1, "int1"), NMI_EVENT, externalEvent(0x20)]) expect(enters(userMachine(), e).rip).toBe(HANDLER(e.vector));
  });
  it("the DPL check comes before the present check", () => {
    expect(fails(withGate(userMachine(), 0x40, { present: 0 }), INT(0x40))).toMatchObject({ vector: 13, errorCode: 0x202 });
  });
});

describe("DELIVER-05: gate not present", () => {
  it("#NP(v·8 + 2 + EXT) for an exception", () => {
    expect(fails(withGate(kernelMachine(), 6, { present: 0 }), UD)).toMatchObject({ vector: 11, errorCode: 0x33, rule: "DELIVER-05" });
  });
  it("#NP(v·8 + 2) for INT n", () => {
    expect(fails(withGate(kernelMachine(), 0x40, { present: 0 }), INT(0x40))).toMatchObject({ vector: 11, errorCode: 0x202 });
  });
  it("NMI-01: #NP(0x13) for an NMI (EXT = 1)", () => {
    expect(fails(withGate(kernelMachine(), 2, { present: 0 }), NMI_EVENT)).toMatchObject({ vector: 11, errorCode: 0x13 });
  });
});

describe("DELIVER-06..10: the target code segment", () => {
  it("DELIVER-06: a NULL gate selector gives #GP(EXT)", () => {
    expect(fails(withGate(kernelMachine(), 6, { selector: 0 }), UD)).toMatchObject({ vector: 13, errorCode: 1, rule: "DELIVER-06" });
    expect(fails(withGate(kernelMachine(), 0x40, { selector: 3 }), INT(0x40))).toMatchObject({ vector: 13, errorCode: 0, rule: "DELIVER-06" });
  });
  it("DELIVER-07: a selector beyond the GDT limit gives #GP(sel | EXT)", () => {
    expect(fails(withGate(kernelMachine(), 6, { selector: 0x60 }), UD)).toMatchObject({ vector: 13, errorCode: 0x61, rule: "DELIVER-07" });
    expect(fails(withGate(kernelMachine(), 0x40, { selector: 0x63 }), INT(0x40))).toMatchObject({ errorCode: 0x60 });
  });
  it("DELIVER-07 / EXC-04: an LDT selector with no usable LDT gives #GP(sel | EXT), TI kept", () => {
    const m = { ...kernelMachine(), ldtr: { ...kernelMachine().ldtr, selector: 0, unusable: 1 } };
    expect(fails(withGate(m, 6, { selector: 0x0c }), UD)).toMatchObject({ vector: 13, errorCode: 0x0d });
  });
  it("DELIVER-08: a data segment, or code with DPL > CPL, gives #GP(sel | EXT)", () => {
    expect(fails(withGate(kernelMachine(), 6, { selector: 0x10 }), UD)).toMatchObject({ vector: 13, errorCode: 0x11, rule: "DELIVER-08" });
    expect(fails(withGate(kernelMachine(), 6, { selector: 0x28 }), UD)).toMatchObject({ vector: 13, errorCode: 0x29, rule: "DELIVER-08" });
  });
  it("DELIVER-09: a not-present code segment gives #NP(sel | EXT)", () => {
    const m = withDescriptor(withGate(kernelMachine(), 6, { selector: 0x50 }), 0x50, descriptor({ type: 0xb, dpl: 0, l: 1, present: 0 }));
    expect(fails(m, UD)).toMatchObject({ vector: 11, errorCode: 0x51, rule: "DELIVER-09" });
  });
  it("DELIVER-10: 32-bit code (L = 0) gives #GP(sel | EXT) (model choice: the selector, as SDM INT n 64-bit exceptions)", () => {
    expect(fails(withGate(kernelMachine(), 6, { selector: 0x40 }), UD)).toMatchObject({ vector: 13, errorCode: 0x41, rule: "DELIVER-10" });
  });
  it("DELIVER-10: L = 1 with D = 1 gives #GP(sel | EXT)", () => {
    const m = withDescriptor(withGate(kernelMachine(), 0x40, { selector: 0x50 }), 0x50, descriptor({ type: 0xb, dpl: 0, l: 1, db: 1 }));
    expect(fails(m, INT(0x40))).toMatchObject({ vector: 13, errorCode: 0x50, rule: "DELIVER-10" });
  });
});

describe("DELIVER-11: new privilege level", () => {
  it("CPL 3 through a DPL-0 non-conforming segment: CPL 0", () => {
    const m = enters(userMachine(), UD);
    expect(m.cs.selector).toBe(0x08);
  });
  it("CPL 3 through a conforming DPL-3 segment... a DPL-0 conforming segment keeps CPL 3 and the user stack", () => {
    const conforming = withDescriptor(userMachine(), 0x50, descriptor({ type: 0xf, dpl: 0, l: 1 }));
    const m = enters(withGate(conforming, 6, { selector: 0x50 }), UD);
    expect(m.cs.selector).toBe(0x53);
    expect(m.ss).toEqual(USER_SS);
    expect(m.gpr[RSP]).toBe(0x210000n - 40n);
  });
});

describe("DELIVER-12: the new stack", () => {
  it("a privilege change loads RSP0 from TSS offset 04h", () => {
    const m = enters(withTss(userMachine(), 4, 0x1f000n), UD);
    expect(m.gpr[RSP]).toBe(0x1f000n - 40n);
  });
  it("IST n comes from TSS offset 24h + 8(n − 1), even without a privilege change", () => {
    const m = enters(withGate(kernelMachine(), 6, { ist: 3 }), UD);
    expect(m.gpr[RSP]).toBe(0x23000n - 40n);
    expect(m.ss).toEqual(kernelMachine().ss);
  });
  it("an IST field beyond TR.limit gives #TS(TR.sel | EXT)", () => {
    const m = { ...withGate(kernelMachine(), 6, { ist: 1 }), tr: { ...kernelMachine().tr, limit: 0x2a } };
    expect(fails(m, UD)).toMatchObject({ vector: 10, errorCode: 0x31, rule: "DELIVER-12" });
    const ok = { ...m, tr: { ...m.tr, limit: 0x2b } };
    expect(enters(ok, UD).gpr[RSP]).toBe(0x21000n - 40n);
  });
  it("an RSP0 beyond TR.limit gives #TS(TR.sel) for INT n (EXT = 0)", () => {
    const m = { ...withGate(userMachine(), 0x80, { dpl: 3 }), tr: { ...kernelMachine().tr, limit: 0x0a } };
    expect(fails(m, INT(0x80))).toMatchObject({ vector: 10, errorCode: 0x30 });
  });
});

describe("DELIVER-13 / DELIVER-14: canonical checks", () => {
  it("a non-canonical RSP0 gives #SS(EXT)", () => {
    expect(fails(withTss(userMachine(), 4, 0x0000_8000_0000_0000n), UD)).toMatchObject({ vector: 12, errorCode: 1, rule: "DELIVER-13" });
    const int = withGate(withTss(userMachine(), 4, 0x0000_8000_0000_0000n), 0x80, { dpl: 3 });
    expect(fails(int, INT(0x80))).toMatchObject({ vector: 12, errorCode: 0 });
  });
  it("a non-canonical current RSP (no stack switch) gives #SS(EXT)", () => {
    expect(fails(withRegs(kernelMachine(), { rsp: 0x0000_8000_0000_0010n }), UD)).toMatchObject({ vector: 12, errorCode: 1 });
  });
  it("a non-canonical gate offset gives #GP(EXT), after the stack checks", () => {
    expect(fails(withGate(kernelMachine(), 6, { offset: 0x0000_8000_0000_0000n }), UD)).toMatchObject({ vector: 13, errorCode: 1, rule: "DELIVER-14" });
    const both = withRegs(withGate(kernelMachine(), 6, { offset: 0x0000_8000_0000_0000n }), { rsp: 0x0000_8000_0000_0010n });
    expect(fails(both, UD).rule).toBe("DELIVER-13");
  });
});

describe("DELIVER-15 / DELIVER-16 / DELIVER-18: the frame", () => {
  it("RSP is aligned down to 16 first; the pushed RSP is the unaligned old one", () => {
    const m = enters(withRegs({ ...kernelMachine(), rflags: 0x246n }, { rsp: 0x1f008n }), INT(0x80));
    expect(m.gpr[RSP]).toBe(0x1f000n - 40n);
    expect(frameAt(m, m.gpr[RSP]!, 5)).toEqual([0x10000n, 0x08n, 0x246n, 0x1f008n, 0x10n]);
  });
  it("an exception with an error code pushes it zero-extended below RIP (48 bytes)", () => {
    const m = enters(withRegs(userMachine(), { rsp: 0x210008n }), GP0);
    expect(m.gpr[RSP]).toBe(0x20000n - 48n);
    expect(frameAt(m, m.gpr[RSP]!, 6)).toEqual([0n, 0x200000n, 0x2bn, 0x202n | RFLAGS.RF, 0x210008n, 0x23n]);
  });
  it("the pushes are supervisor writes at CPL 0: a not-present RSP0 page gives #PF with W = 1, U/S = 0", () => {
    expect(fails(withTss(userMachine(), 4, 0x700000n), UD)).toMatchObject({ vector: 14, errorCode: 2, address: 0x6ffff8n });
  });
  it("a frame that runs into non-canonical space gives #SS(EXT)", () => {
    expect(fails(withTss(userMachine(), 4, 0xffff_8000_0000_0010n), UD)).toMatchObject({ vector: 12, errorCode: 1, rule: "DELIVER-16" });
  });
});

describe("DELIVER-17 / DELIVER-19: segment registers", () => {
  it("a privilege change loads SS with a NULL selector (RPL = new CPL) and CS with RPL = new CPL", () => {
    const m = enters(userMachine(), UD);
    expect(m.ss.selector).toBe(0);
    expect(m.ss.unusable).toBe(1);
    expect(m.cs).toEqual(KERNEL_CS);
    expect(m.rip).toBe(HANDLER(6));
  });
  it("a gate selector with RPL bits set still loads CS with RPL = new CPL", () => {
    expect(enters(withGate(kernelMachine(), 6, { selector: 0x0b }), UD).cs.selector).toBe(0x08);
  });
  it("IST without a privilege change leaves SS as it was", () => {
    const m = enters(withGate(kernelMachine(), 2, { ist: 1 }), NMI_EVENT);
    expect(m.ss).toEqual(kernelMachine().ss);
  });
  it("the gate's 64-bit offset is the new RIP", () => {
    const m = enters(withGate(kernelMachine(), 6, { offset: 0xffff_ffff_8000_1234n }), UD);
    expect(m.rip).toBe(0xffff_ffff_8000_1234n);
  });
});

describe("DELIVER-20 / RF-04: RFLAGS", () => {
  const busy = RFLAGS.TF | RFLAGS.NT | RFLAGS.RF | RFLAGS.IF | RFLAGS.AC | RFLAGS.DF | RFLAGS.IOPL | RFLAGS.ID | 2n;
  it("an interrupt gate clears IF, TF, NT, RF, VM and keeps AC, DF, IOPL, ID", () => {
    const m = enters({ ...kernelMachine(), rflags: busy }, UD);
    expect(m.rflags).toBe(RFLAGS.AC | RFLAGS.DF | RFLAGS.IOPL | RFLAGS.ID | 2n);
  });
  it("a trap gate keeps IF", () => {
    const m = enters(withGate({ ...kernelMachine(), rflags: busy }, 6, { type: 0xf }), UD);
    expect(m.rflags).toBe(RFLAGS.IF | RFLAGS.AC | RFLAGS.DF | RFLAGS.IOPL | RFLAGS.ID | 2n);
  });
});

describe("DELIVER-21 / DELIVER-22 / NMI-02: side effects", () => {
  it("delivery ends HLT and any shadow", () => {
    const m = enters({ ...kernelMachine(), cpu: { ...kernelMachine().cpu, halted: true, shadow: "sti" } }, externalEvent(0x20));
    expect(m.cpu.halted).toBe(false);
    expect(m.cpu.shadow).toBe("none");
  });
  it("NMI delivery blocks NMIs; other events do not", () => {
    expect(enters(kernelMachine(), NMI_EVENT).cpu.nmiBlocked).toBe(true);
    expect(enters(kernelMachine(), externalEvent(0x20)).cpu.nmiBlocked).toBe(false);
  });
  it("GS selector, GS base and KERNEL_GS_BASE are untouched", () => {
    const u = { ...userMachine(), gs: { ...userMachine().gs, base: 0x1234n }, kernelGsBase: 0xffff_8000_0000_0000n };
    const m = enters(u, UD);
    expect(m.gs).toEqual(u.gs);
    expect(m.kernelGsBase).toBe(u.kernelGsBase);
  });
});

describe("EXC-02: which events push an error code", () => {
  for (const v of [8, 10, 11, 12, 13, 14, 17])
    it(`exception ${v} pushes one`, () => {
      const m = enters(kernelMachine(), exceptionEvent(fault("TEST", v, 0x18, v === 14 ? 0x1000n : undefined)));
      expect(m.gpr[RSP]).toBe(0x20000n - 48n);
      expect(m.memory.read(m.gpr[RSP]!, 8)).toBe(0x18n);
    });
  for (const v of [0, 6, 7, 16, 18]) it(`exception ${v} does not`, () => expect(enters(kernelMachine(), exceptionEvent(fault("TEST", v))).gpr[RSP]).toBe(0x20000n - 40n));
  it("INT 14, INT 8 and an external interrupt on vector 13 push none", () => {
    for (const e of [INT(14), INT(8), externalEvent(13)]) expect(enters(kernelMachine(), e).gpr[RSP]).toBe(0x20000n - 40n);
  });
});

describe("RF-03: RF in the pushed image", () => {
  it("fault-class exceptions push RF = 1", () => {
    const m = enters(kernelMachine(), UD);
    expect(m.memory.read(m.gpr[RSP]! + 16n, 8) & RFLAGS.RF).toBe(RFLAGS.RF);
  });
  it("the single-step trap, INT n and external interrupts push the current RF", () => {
    for (const rf of [0n, RFLAGS.RF])
      for (const e of [SINGLE_STEP_EVENT, INT(0x80), externalEvent(0x20)]) {
        const m = enters({ ...kernelMachine(), rflags: 2n | rf }, e);
        expect(m.memory.read(m.gpr[RSP]! + 16n, 8)).toBe(2n | rf);
      }
  });
});

describe("PF-01: CR2", () => {
  const pageFault = exceptionEvent(fault("TEST", 14, 2, 0xdead_b000n));
  it("delivering a #PF writes its address to CR2", () => {
    const m = asMachine(deliver(kernelMachine(), pageFault, INTEL));
    expect(m.cr2).toBe(0xdead_b000n);
    expect(m.rip).toBe(HANDLER(14));
  });
  it("PF-01: one delivery attempt alone (nesting \"none\") writes CR2 too: the write belongs to #PF delivery itself", () => {
    expect(enters(kernelMachine(), pageFault).cr2).toBe(0xdead_b000n);
  });
  it("PF-01: the CR2 write stays when the #PF delivery faults (gate 14 not present: #NP, then #DF)", () => {
    const m = asMachine(deliver(withGate(kernelMachine(), 14, { present: 0 }), pageFault, INTEL));
    expect(m.rip).toBe(HANDLER(8));
    expect(m.cr2).toBe(0xdead_b000n);
  });
  it("PF-01: an INT 14 is no #PF and leaves CR2 alone", () => {
    expect(enters(kernelMachine(), INT(14)).cr2).toBe(kernelMachine().cr2);
  });
});

describe("DT-03: 64-bit TSS layout", () => {
  it("DT-03: RSP0, RSP1 and RSP2 at 04h, 0Ch and 14h (new CPL n reads RSPn)", () => {
    for (const [n, offset] of [[0, 0x04], [1, 0x0c], [2, 0x14]] as const) {
      let m = withTss(withTss(withTss(userMachine(), 0x04, 0x1c000n), 0x0c, 0x1d000n), 0x14, 0x1e000n);
      // A DPL-n 64-bit code segment in the spare slot 0x40 for the gate to lead to.
      m = withGate(withDescriptor(m, 0x40, descriptor({ type: 0xb, dpl: n, l: 1 })), 6, { selector: 0x40 });
      const entered = enters(m, UD);
      expect(entered.cs.selector, `RSP${n}`).toBe(0x40 | n);
      expect(entered.ss.selector, `RSP${n}`).toBe(n);
      expect(entered.gpr[RSP], `RSP${n} at ${offset}`).toBe(m.memory.read(0xa000n + BigInt(offset), 8) - 40n);
    }
  });
  it("DT-03: IST1..IST7 at 24h, 2Ch, 34h, 3Ch, 44h, 4Ch, 54h — 8-byte fields at 4-mod-8 offsets", () => {
    const offsets = [0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54];
    let m = kernelMachine();
    offsets.forEach((offset, i) => (m = withTss(m, offset, 0x30000n + 0x100n * BigInt(i + 1))));
    for (let n = 1; n <= 7; n++) expect(enters(withGate(m, 6, { ist: n }), UD).gpr[RSP], `IST${n}`).toBe(0x30000n + 0x100n * BigInt(n) - 40n);
  });
});

describe("DT-04: the TSS through TR's cache, read as it is now", () => {
  it("DT-04: the cached TR base is used, not the TSS descriptor in the GDT", () => {
    const moved = withTss({ ...userMachine(), tr: { ...userMachine().tr, base: 0xa100n } }, 0x104, 0x1c000n);
    expect(moved.memory.read(0x8030n, 8)).toBe(kernelMachine().memory.read(0x8030n, 8)); // GDT still says 0xa000
    expect(enters(moved, UD).gpr[RSP]).toBe(0x1c000n - 40n);
  });
  it("DT-04: RSP0 rewritten by a MOV takes effect at the next delivery without reloading TR", () => {
    // mov [0xa004], rax; sysretq — then ud2 at the user RIP.
    const kernel = withRegs(withCode(kernelMachine(), [0x48, 0x89, 0x04, 0x25, 0x04, 0xa0, 0x00, 0x00, 0x48, 0x0f, 0x07]), {
      rax: 0x1c000n, rcx: 0x200000n, r11: 0x2n, rsp: 0x210000n,
    });
    const m0 = withBytes(kernel, 0x200000n, [0x0f, 0x0b]);
    const { results, state } = steps(m0, 3);
    expect(results[2]!.event).toMatchObject({ kind: "delivered", vector: 6 });
    expect(state.gpr[RSP]).toBe(0x1c000n - 40n);
    expect(frameAt(state, state.gpr[RSP]!, 5)).toEqual([0x200000n, 0x2bn, 0x2n | RFLAGS.RF, 0x210000n, 0x23n]);
  });
});

describe("SMAP-03: frame pushes are explicit accesses at the new CPL", () => {
  // INT 0x80 from CPL 3 through a DPL-3 gate, RSP0 on a user page (the user stack's 2 MiB page),
  // CR4.SMAP = 1; #DF on IST1 (a kernel page).
  const smap = (rflags: bigint): Machine => {
    const m = withTss(withGate(withGate(userMachine(), 0x80, { dpl: 3 }), 8, { ist: 1 }), 4, 0x20f000n);
    return withCode({ ...m, cr4: m.cr4 | CR4.SMAP, rflags }, [0xcd, 0x80]);
  };
  it("SMAP-03: with AC = 0 the pushes to a user page fault (#PF W = 1, U/S = 0), the #PF delivery faults again, #DF follows", () => {
    const r = stepOnce(smap(0x202n));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 8, errorCode: 0 });
    expect(r.state.cr2).toBe(0x20eff8n);
    expect(r.state.gpr[RSP]).toBe(0x21000n - 48n);
    // Saved RIP = the INT instruction (the #PF of its delivery counts as its fault).
    expect(frameAt(r.state, r.state.gpr[RSP]!, 6).slice(0, 3)).toEqual([0n, 0x200000n, 0x2bn]);
    expect(fails(smap(0x202n), INT(0x80))).toMatchObject({ vector: 14, errorCode: 3, address: 0x20eff8n });
  });
  it("SMAP-03: with AC = 1 (set by user code, kept by delivery) the frame lands on the user page", () => {
    const r = stepOnce(smap(0x202n | RFLAGS.AC));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 0x80 });
    expect(r.state.rip).toBe(HANDLER(0x80));
    expect(r.state.gpr[RSP]).toBe(0x20f000n - 40n);
    expect(frameAt(r.state, r.state.gpr[RSP]!, 5)).toEqual([0x200002n, 0x2bn, 0x202n | RFLAGS.AC, 0x210000n, 0x23n]);
  });
  it("SMAP-03 / SMAP-02: the TSS read is implicit — on a user page it faults even with AC = 1", () => {
    const m = smap(0x202n | RFLAGS.AC);
    const userTss = withBytes({ ...m, tr: { ...m.tr, base: 0x220000n } }, 0x220004n, [0x00, 0xf0, 0x20]);
    expect(fails(userTss, INT(0x80))).toMatchObject({ vector: 14, errorCode: 1, address: 0x220004n });
  });
});

describe("SEG-06: delivery sets the accessed bit of the CS descriptor it loads", () => {
  it("SEG-06: a CS descriptor with A = 0 gets A = 1 in the GDT and in the CS cache", () => {
    const m = withGate(withDescriptor(kernelMachine(), 0x50, descriptor({ type: 0xa, dpl: 0, l: 1 })), 6, { selector: 0x50 });
    const entered = enters(m, UD);
    expect(entered.cs.type).toBe(0xb);
    expect((entered.memory.read(0x8050n, 8) >> 40n) & 0xffn).toBe(0x9bn);
  });
  it("SEG-06: an accessed descriptor is not written (a read-only GDT is fine)", () => {
    const m = withReadOnlyGdt(kernelMachine());
    expect(enters(m, UD).cs).toEqual(KERNEL_CS);
  });
  it("SEG-06: the write is an implicit supervisor write: a read-only GDT page faults the delivery (#PF W = 1), nothing committed", () => {
    const m = withReadOnlyGdt(withGate(withDescriptor(userMachine(), 0x50, descriptor({ type: 0xa, dpl: 0, l: 1 })), 6, { selector: 0x50 }));
    expect(fails(m, UD)).toMatchObject({ vector: 14, errorCode: 3, address: 0x600055n });
  });
  it("SEG-06: a delivery that faults after reading the descriptor leaves A clear", () => {
    // RSP0 unmapped: the #UD and #PF deliveries fault on their pushes; #DF runs on IST1.
    const m = withGate(withTss(withGate(withDescriptor(userMachine(), 0x50, descriptor({ type: 0xa, dpl: 0, l: 1 })), 6, { selector: 0x50 }), 4, 0x700000n), 8, { ist: 1 });
    const r = stepOnce(withCode(m, [0x0f, 0x0b]));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 8 });
    expect((r.state.memory.read(0x8050n, 8) >> 40n) & 0xffn).toBe(0x9an);
  });
});
