// IRETQ-00..17, SEG-06 (accessed bits): `iret` called alone, and IRET in the step loop.
import { describe, expect, it } from "vitest";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { iret, iretRflags, type IretSize } from "../../../spec/transitions/iret.ts";
import { nullSegment } from "../../../spec/segmentation/descriptor.ts";
import { kernelMachine, userMachine, withCode, withRegs, KERNEL_CS, KERNEL_SS, USER_CS32, USER_CS64, USER_SS } from "../../helpers/fixture.ts";
import { asFault, asMachine, descriptor, HANDLER, stepOnce, withDescriptor, withReadOnlyGdt, withStack } from "./build-delivery.ts";

const FRAME = 0x1f000n;

/** A kernel machine with RSP at FRAME holding [rip, cs, rflags, rsp, ss] at `size` bytes each. */
function framed(words: readonly bigint[], size: IretSize = 8, base: Machine = kernelMachine()): Machine {
  let memory = base.memory;
  words.forEach((w, i) => (memory = memory.write(FRAME + BigInt(size * i), size, w)));
  return withRegs({ ...base, memory }, { rsp: FRAME });
}

const toUser = (over: { rip?: bigint; cs?: bigint; rflags?: bigint; rsp?: bigint; ss?: bigint } = {}) =>
  framed([over.rip ?? 0x200000n, over.cs ?? 0x2bn, over.rflags ?? 0x202n, over.rsp ?? 0x210000n, over.ss ?? 0x23n]);
const run = (m: Machine, size: IretSize = 8) => asMachine(iret(m, size, INTEL));
const fails = (m: Machine, size: IretSize = 8) => asFault(iret(m, size, INTEL));

describe("IRETQ-00 / NMI-03: NMI unblocking", () => {
  it("a successful IRET ends NMI blocking", () => {
    const m = run({ ...toUser(), cpu: { ...kernelMachine().cpu, nmiBlocked: true } });
    expect(m.cpu.nmiBlocked).toBe(false);
  });
  it("an IRET that faults still ends NMI blocking (the step delivers the #GP with NMIs open)", () => {
    const m0 = withCode({ ...toUser(), rflags: 2n | RFLAGS.NT, cpu: { ...kernelMachine().cpu, nmiBlocked: true } }, [0x48, 0xcf]);
    const r = stepOnce(m0);
    expect(r.event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
    expect(r.state.cpu.nmiBlocked).toBe(false);
  });
});

describe("IRETQ-01..09: checks on the return CS", () => {
  it("IRETQ-01: NT = 1 → #GP(0)", () => expect(fails({ ...toUser(), rflags: 2n | RFLAGS.NT })).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-01" }));
  it("IRETQ-02: a non-canonical RSP → #SS(0); an unmapped stack → #PF", () => {
    expect(fails(withRegs(toUser(), { rsp: 0x0000_8000_0000_0000n }))).toMatchObject({ vector: 12, errorCode: 0 });
    expect(fails(withRegs(toUser(), { rsp: 0x700000n }))).toMatchObject({ vector: 14, errorCode: 0, address: 0x700000n });
  });
  it("IRETQ-03: NULL CS → #GP(0)", () => expect(fails(toUser({ cs: 3n }))).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-03" }));
  it("IRETQ-04: CS beyond the GDT limit → #GP(CS & FFFCh)", () => expect(fails(toUser({ cs: 0x63n }))).toMatchObject({ vector: 13, errorCode: 0x60, rule: "IRETQ-04" }));
  it("IRETQ-05: a data segment → #GP(CS)", () => expect(fails(toUser({ cs: 0x10n, ss: 0x10n }))).toMatchObject({ vector: 13, errorCode: 0x10, rule: "IRETQ-05" }));
  it("IRETQ-06: CS.RPL < CPL → #GP(CS) (vector iretq-ring3-to-ring0-gp)", () => {
    const m = withRegs(withStack(userMachine(), 0x20ffd8n, [0x10000n, 0x08n, 2n, 0x210000n, 0x10n]), { rsp: 0x20ffd8n });
    expect(fails(m)).toMatchObject({ vector: 13, errorCode: 0x08, rule: "IRETQ-06" });
  });
  it("IRETQ-07: L = 1 and D = 1 → #GP(CS)", () => {
    const m = withDescriptor(toUser({ cs: 0x53n }), 0x50, descriptor({ type: 0xb, dpl: 3, l: 1, db: 1 }));
    expect(fails(m)).toMatchObject({ vector: 13, errorCode: 0x50, rule: "IRETQ-07" });
  });
  it("IRETQ-08: non-conforming DPL ≠ RPL, or conforming DPL > RPL → #GP(CS)", () => {
    expect(fails(toUser({ cs: 0x0bn }))).toMatchObject({ vector: 13, errorCode: 0x08, rule: "IRETQ-08" });
    expect(fails(framed([0x10000n, 0x58n, 2n, 0x20000n, 0x10n]))).toMatchObject({ vector: 13, errorCode: 0x58, rule: "IRETQ-08" });
  });
  it("IRETQ-09: not present → #NP(CS)", () => {
    const m = withDescriptor(toUser({ cs: 0x53n }), 0x50, descriptor({ type: 0xb, dpl: 3, l: 1, present: 0 }));
    expect(fails(m)).toMatchObject({ vector: 11, errorCode: 0x50, rule: "IRETQ-09" });
  });
  it("a conforming CS with DPL ≤ RPL is accepted (vector iretq-to-conforming-cs)", () => {
    const m = run(toUser({ cs: 0x5bn }));
    expect(m.cs.selector).toBe(0x5b);
    expect(m.cs.type).toBe(0xf);
  });
});

describe("IRETQ-10 / IRETQ-15: SS:RSP", () => {
  it("IRETQ in 64-bit mode pops SS:RSP even for a same-level return", () => {
    const m = run(framed([0x10100n, 0x08n, 2n, 0x1f800n, 0x10n]));
    expect(m.gpr[RSP]).toBe(0x1f800n);
    expect(m.ss).toEqual(KERNEL_SS);
  });
  it("IRETD in 64-bit mode pops five 4-byte slots, SS:ESP included (vector iretd-no-rexw)", () => {
    const m = run(framed([0x10100n, 0x08n, 2n, 0x1f800n, 0x10n], 4), 4);
    expect(m.rip).toBe(0x10100n);
    expect(m.gpr[RSP]).toBe(0x1f800n);
  });
  it("IRETW in 64-bit mode pops five 2-byte slots", () => {
    const m = run(framed([0x1010n, 0x08n, 2n, 0xf800n, 0x10n], 2), 2);
    expect(m.rip).toBe(0x1010n);
    expect(m.gpr[RSP]).toBe(0xf800n);
  });
  it("IRETD from compatibility mode at the same level pops three slots and keeps SS", () => {
    const compat = withRegs({ ...userMachine(), cs: USER_CS32, rip: 0x200000n }, { rsp: 0x20f000n });
    const m0 = withStack(compat, 0x20f000n, [0x0000_002b_0020_0010n, 0x202n]);
    const m = run(m0, 4);
    expect(m.rip).toBe(0x200010n);
    expect(m.cs).toEqual(USER_CS64);
    expect(m.gpr[RSP]).toBe(0x20f00cn);
    expect(m.ss).toEqual(USER_SS);
  });
  it("IRETQ-15: the popped RSP is not canonical-checked", () => {
    expect(run(toUser({ rsp: 0x0000_8000_0000_0000n })).gpr[RSP]).toBe(0x0000_8000_0000_0000n);
  });
  it("IRETD to compatibility mode at CPL 3 (vector iretd-to-ring3-compat)", () => {
    const m = run(framed([0x200000n, 0x1bn, 0x202n, 0x20fff0n, 0x23n], 4), 4);
    expect(m.cs).toEqual(USER_CS32);
    expect(m.ss).toEqual(USER_SS);
    expect(m.gpr[RSP]).toBe(0x20fff0n);
  });
  it("IRETQ-15: a compatibility-mode target with a 16-bit SS (B = 0) loads SP only, RSP bits 63:16 keep what they held when IRET began (SDM Vol. 3A §6.14.3; silicon's espfix leak)", () => {
    // docs/model-choices.md row "Return to a 16-bit stack (SS.B = 0)". The frame sits at 0x1f000, so
    // the kept bits 63:16 are 0x1: popped 0xabcd1234 gives RSP 0x11234 (not ESP's 0xabcd1234).
    const sixteen = (m: Machine) => withDescriptor(m, 0x48, descriptor({ type: 3, dpl: 3, db: 0 }));
    const q = run(sixteen(toUser({ cs: 0x1bn, rsp: 0xabcd_1234n, ss: 0x4bn })));
    expect({ rsp: q.gpr[RSP], ss: q.ss.selector, b: q.ss.db, cs: q.cs.selector }).toEqual({ rsp: 0x1_1234n, ss: 0x4b, b: 0, cs: 0x1b });
    const d = run(sixteen(framed([0x200000n, 0x1bn, 0x202n, 0xabcd_1234n, 0x4bn], 4)), 4);
    expect(d.gpr[RSP]).toBe(0x1_1234n);
    // In the step loop too.
    const stepped = stepOnce(withCode(sixteen(toUser({ cs: 0x1bn, rsp: 0xabcd_1234n, ss: 0x4bn })), [0x48, 0xcf]));
    expect(stepped.state.gpr[RSP]).toBe(0x1_1234n);
    // SS.B = 1: ESP, zero-extended; a 64-bit target: all 64 bits, whatever B says.
    expect(run(toUser({ cs: 0x1bn, rsp: 0xffff_ffff_abcd_1234n })).gpr[RSP]).toBe(0xabcd_1234n);
    expect(run(sixteen(toUser({ rsp: 0x1_abcd_1234n, ss: 0x4bn }))).gpr[RSP]).toBe(0x1_abcd_1234n);
  });
});

describe("IRETQ-11: the popped SS", () => {
  it("a NULL SS is accepted for a 64-bit target at CPL < 3 with SS.RPL = CS.RPL", () => {
    const m = run(framed([0x10100n, 0x08n, 2n, 0x1f800n, 0n]));
    expect(m.ss).toEqual(nullSegment(0));
  });
  it("a NULL SS returning to CPL 3 → #GP(0)", () => expect(fails(toUser({ ss: 3n }))).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-11" }));
  it("a NULL SS whose RPL differs from CS.RPL → #GP(0)", () => expect(fails(framed([0x10100n, 0x08n, 2n, 0x1f800n, 1n]))).toMatchObject({ vector: 13, errorCode: 0 }));
  it("a NULL SS for a compatibility-mode target → #GP(0)", () => {
    const m = framed([0x10100n, 0x40n, 2n, 0x1f800n, 0n]);
    expect(fails(m)).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-11" });
  });
  it("SS beyond the GDT limit → #GP(SS)", () => expect(fails(toUser({ ss: 0x63n }))).toMatchObject({ vector: 13, errorCode: 0x60 }));
  it("SS.RPL ≠ CS.RPL → #GP(SS)", () => expect(fails(toUser({ ss: 0x4an }))).toMatchObject({ vector: 13, errorCode: 0x48 }));
  it("SS not a writable data segment → #GP(SS)", () => expect(fails(toUser({ ss: 0x2bn }))).toMatchObject({ vector: 13, errorCode: 0x28 }));
  it("SS.DPL ≠ CS.RPL → #GP(SS)", () => expect(fails(toUser({ ss: 0x13n }))).toMatchObject({ vector: 13, errorCode: 0x10 }));
  it("SS not present → #SS(SS)", () => {
    const m = withDescriptor(toUser({ ss: 0x53n }), 0x50, descriptor({ type: 3, dpl: 3, db: 1, present: 0 }));
    expect(fails(m)).toMatchObject({ vector: 12, errorCode: 0x50, rule: "IRETQ-11" });
  });
});

describe("IRETQ-12: the return RIP", () => {
  it("non-canonical for a 64-bit target → #GP(0) at the old CPL, nothing committed", () => {
    const f = fails(toUser({ rip: 0x0000_8000_0000_0000n }));
    expect(f).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-12" });
  });
  it("in the step, the #GP frame lands on the kernel stack with the IRET's RIP (vector iretq-noncanonical-rip-to-ring3)", () => {
    const r = stepOnce(withCode(toUser({ rip: 0x0000_8000_0000_0000n }), [0x48, 0xcf]));
    expect(r.state.rip).toBe(HANDLER(13));
    expect(r.state.memory.read(r.state.gpr[RSP]! + 8n, 8)).toBe(0x10000n);
    expect(r.state.memory.read(r.state.gpr[RSP]! + 32n, 8)).toBe(FRAME);
  });
  it("beyond the CS limit for a compatibility-mode target → #GP(0)", () => {
    const small = withDescriptor(toUser({ cs: 0x53n, rip: 0x10000n }), 0x50, descriptor({ type: 0xb, dpl: 3, db: 1 }) & ~(0xfn << 48n) & ~(1n << 55n));
    expect(fails(small)).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-12" });
  });
  it("a 32-bit IRET zero-extends EIP and is never non-canonical", () => {
    expect(run(framed([0xffff_fff0n, 0x08n, 2n, 0x1f800n, 0x10n], 4), 4).rip).toBe(0xffff_fff0n);
  });
});

describe("IRETQ-13: RFLAGS", () => {
  it("at CPL 3 with IOPL 0, IF and IOPL stay (vector iretq-cpl3-if-iopl-unchanged)", () => {
    expect(iretRflags(2n, 0x3202n, 8, 3, 0)).toBe(2n);
  });
  it("at CPL 3 with IOPL 3, IF may change, IOPL may not (vector iretq-cpl3-iopl3-if-changes)", () => {
    expect(iretRflags(0x3002n, 0x0202n, 8, 3, 3)).toBe(0x3202n);
  });
  it("at CPL 0: IOPL, IF, VIF, VIP, AC, ID, RF load; VM never (vector iretq-rflags-vm-rf-popped)", () => {
    const image = RFLAGS.VM | RFLAGS.RF | RFLAGS.AC | RFLAGS.ID | RFLAGS.VIF | RFLAGS.VIP | RFLAGS.IOPL | RFLAGS.IF | 2n;
    expect(iretRflags(2n, image, 8, 0, 0)).toBe(image & ~RFLAGS.VM);
  });
  it("at CPL 3 VIF/VIP do not load", () => {
    expect(iretRflags(2n, RFLAGS.VIF | RFLAGS.VIP | RFLAGS.AC | 2n, 8, 3, 0)).toBe(RFLAGS.AC | 2n);
  });
  it("a 16-bit IRET loads no RF, AC, ID (bits above 15 kept)", () => {
    expect(iretRflags(RFLAGS.AC | 2n, 0xffffn, 2, 0, 0)).toBe(RFLAGS.AC | (0xffffn & ~0x8028n) | 2n);
  });
  it("reserved bits keep their fixed values", () => {
    expect(iretRflags(2n, 0xffff_ffff_ffff_ffffn, 8, 0, 0)).toBe(0x3f7fd5n & ~RFLAGS.VM | 2n);
  });
});

describe("IRETQ-14 / IRETQ-16: segments on the way out", () => {
  it("CS from the descriptor, CPL = CS.RPL", () => {
    const m = run(toUser());
    expect(m.cs).toEqual(USER_CS64);
    expect(m.ss).toEqual(USER_SS);
    expect(m.rip).toBe(0x200000n);
  });
  it("DS/ES holding DPL-0 data are nulled on a return to CPL 3; DPL-3 data and NULL FS (with its base) stay", () => {
    const dpl0 = { ...KERNEL_SS, selector: 0x10 };
    const user = { ...USER_SS, selector: 0x23 };
    const base = { ...toUser(), ds: dpl0, es: user, fs: nullSegment(0, 0x7f00_0000_0000n), gs: { ...dpl0, base: 0x1234n } };
    const m = run(base);
    expect(m.ds.selector).toBe(0);
    expect(m.es).toEqual(user);
    expect(m.fs).toEqual(base.fs);
    expect(m.gs.selector).toBe(0);
    expect(m.gs.base).toBe(0x1234n);
  });
  it("IRETQ-16: the hidden part decides, whatever the selector; a NULL selector with RPL != 0 becomes 0, its hidden part as it was (the IRET page's NULL clause)", () => {
    const nullRpl3 = { ...nullSegment(3, 0x5000n) };
    const nullOverDpl0Data = { ...KERNEL_SS, selector: 0, base: 0x6000n };
    const nullRpl2OverDpl3Data = { ...USER_SS, selector: 2 };
    const base = { ...toUser(), ds: nullRpl3, es: nullOverDpl0Data, fs: nullRpl2OverDpl3Data };
    const m = run(base);
    expect(m.ds).toEqual({ ...nullRpl3, selector: 0 });
    expect(m.es).toEqual(nullSegment(0, 0x6000n));
    expect(m.fs).toEqual({ ...nullRpl2OverDpl3Data, selector: 0 });
  });
  it("a same-level return leaves data segments alone", () => {
    const dpl0 = { ...KERNEL_SS, selector: 0x10 };
    expect(run({ ...framed([0x10100n, 0x08n, 2n, 0x1f800n, 0x10n]), ds: dpl0 }).ds).toEqual(dpl0);
  });
  it("CS keeps the popped selector", () => expect(run(framed([0x10100n, 0x08n, 2n, 0x1f800n, 0x10n])).cs).toEqual(KERNEL_CS));
});

describe("SEG-06: IRET sets the accessed bits of the descriptors it loads", () => {
  // Spare slots: 0x50 a user CS64 and 0x48 user data, both with A = 0.
  const unaccessed = (m: Machine): Machine =>
    withDescriptor(withDescriptor(m, 0x50, descriptor({ type: 0xa, dpl: 3, l: 1 })), 0x48, descriptor({ type: 0x2, dpl: 3, db: 1 }));
  const accessedByte = (m: Machine, selector: number): bigint => (m.memory.read(m.gdtr.base + BigInt(selector) + 5n, 1));
  it("SEG-06: CS and SS descriptors with A = 0 get A = 1 in the GDT and in the caches", () => {
    const m = run(unaccessed(toUser({ cs: 0x53n, ss: 0x4bn })));
    expect(m.cs).toMatchObject({ selector: 0x53, type: 0xb });
    expect(m.ss).toMatchObject({ selector: 0x4b, type: 0x3 });
    expect(accessedByte(m, 0x50)).toBe(0xfbn);
    expect(accessedByte(m, 0x48)).toBe(0xf3n);
  });
  it("SEG-06: accessed descriptors are not written (a read-only GDT is fine); a NULL SS loads none", () => {
    expect(run(withReadOnlyGdt(toUser())).cs).toEqual(USER_CS64);
    expect(run(withReadOnlyGdt(framed([0x10100n, 0x08n, 2n, 0x1f800n, 0n]))).ss.selector).toBe(0);
  });
  it("SEG-06: the writes are implicit supervisor writes: on a read-only GDT they fault the IRET (#PF W = 1), CS first", () => {
    const both = withReadOnlyGdt(unaccessed(toUser({ cs: 0x53n, ss: 0x4bn })));
    expect(fails(both)).toMatchObject({ vector: 14, errorCode: 3, address: 0x600055n });
    const ssOnly = withReadOnlyGdt(unaccessed(toUser({ ss: 0x4bn })));
    expect(fails(ssOnly)).toMatchObject({ vector: 14, errorCode: 3, address: 0x60004dn });
  });
  it("SEG-06: they come after every IRET check (IRETQ-12 wins) and the step drops them when the IRET faults", () => {
    const m = unaccessed(toUser({ cs: 0x53n, ss: 0x4bn, rip: 0x0000_8000_0000_0000n }));
    expect(fails(withReadOnlyGdt(m))).toMatchObject({ vector: 13, errorCode: 0, rule: "IRETQ-12" });
    const r = stepOnce(withCode(m, [0x48, 0xcf]), { delivery: "stop" });
    expect(r.event).toMatchObject({ kind: "fault", fault: { vector: 13 } });
    expect(accessedByte(r.state, 0x50)).toBe(0xfan);
  });
});

describe("IRETQ-17: IRET and single-step", () => {
  it("a TF loaded by IRET traps after the first instruction at the return address, not after IRET", () => {
    // IRETQ to 0x10100 with TF = 1; there: INC RBX (48 FF C3).
    let m = withCode(framed([0x10100n, 0x08n, 0x102n, 0x1f800n, 0x10n]), [0x48, 0xcf]);
    m = { ...m, memory: m.memory.writeBytes(0x10100n, Uint8Array.of(0x48, 0xff, 0xc3)) };
    const a = stepOnce(m);
    expect(a.event.kind).toBe("retired");
    expect(a.state.cpu.pendingDebugTrap).toBe(false);
    expect(a.state.cpu.shadow).toBe("none");
    const b = stepOnce(a.state);
    expect(b.state.cpu.pendingDebugTrap).toBe(true);
    const c = stepOnce(b.state);
    expect(c.event).toMatchObject({ kind: "delivered", vector: 1, source: "exception" });
    expect(c.state.memory.read(c.state.gpr[RSP]!, 8)).toBe(0x10103n);
  });
});
