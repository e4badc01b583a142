// System instructions and transitions (impl/system.ts): IRET's NMI unblocking, the I/O permission
// bitmap, MSRs outside the model, and the far-return divergences the transition lockstep search
// (test/conformance/lockstep-transitions.test.ts) found in impl/ (spec/ gives the same answers).
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { baseMemory, kernel, layoutState, read64, runAll, type Memory } from "./helpers.ts";
import { firstStep, withQwords } from "./lockstep.ts";
import { runAllWithSpec } from "./against-spec.ts";
import { kernelMachine, withBytes, withRegs } from "../helpers/fixture.ts";
import { stateFromMachine, type Machine } from "../../spec/machine/machine.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("system instructions", () => {
  it("IRETQ-00: an IRET that faults still unblocks NMI", () => {
    // iretq with NT = 1 → #GP(0); NMI blocked before, unblocked after.
    const s = k([0x48, 0xcf], undefined, { rflags: 0x4002n, cpu: { ...layoutState(baseMemory()).cpu, nmiBlocked: true } });
    const out = runAll(s, 3);
    expect(out.state.rip).toBe(0xb0d1n);
    expect(out.state.cpu.nmiBlocked).toBe(false);
  });

  it("I/O bitmap: OUT allowed by a clear bit, #GP(0) for a set bit (two-byte read)", () => {
    // TSS limit 0x1000, map base 0x68: port 0x80 clear, port 0x81 set.
    const setup = (m: Memory) => {
      m.write(0xa066n, [0x68, 0x00]);
      m.write(0xa068n + 0x10n, [0x02]);
      m.write(0x200000n, [0xe6, 0x80, 0xe6, 0x81, 0xeb, 0xfe]);
    };
    const m = baseMemory();
    setup(m);
    const s = layoutState(m, { user: true });
    const out = runAll({ ...s, tr: { ...s.tr, limit: 0x1000 } }, 10);
    expect(out.state.rip).toBe(0xb0d1n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(0n);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x200002n);
  });

  it("MSRs: PAT stops as unsupported; the TSC reads 0; APIC_BASE reads its power-up value; unknown ones are #GP(0)", () => {
    const pat = runAll(k([0xb9, 0x77, 0x02, 0, 0, 0x0f, 0x32, 0xf4]), 5);
    expect(pat.stop.reason).toBe("unsupported");
    expect(pat.state.rip).toBe(0x10005n);
    const tsc = runAll(k([0xb9, 0x10, 0, 0, 0, 0x0f, 0x32, 0xf4], undefined, {}, { 0: -1n & 0xffff_ffff_ffff_ffffn, 2: 5n }), 5);
    expect(tsc.state.gpr[0]).toBe(0n);
    expect(tsc.state.gpr[2]).toBe(0n);
    const apic = runAll(k([0xb9, 0x1b, 0, 0, 0, 0x0f, 0x32, 0xf4]), 5);
    expect(apic.state.gpr[0]).toBe(0xfee00900n);
    expect(apic.state.gpr[2]).toBe(0n);
    const unknown = runAll(k([0xb9, 0x11, 0, 0, 0, 0x0f, 0x32, 0xf4]), 5);
    expect(unknown.state.rip).toBe(0xb0d1n);
  });
});

/** A segment register's hidden part as a NULL selector load leaves it (model-choices "NULL segment
 *  hidden parts"): unusable, limit and attributes 0. */
function unusableHidden(seg: ArchState["es"]): ArchState["es"] {
  return { ...seg, limit: 0, type: 0, s: 0, dpl: 0, present: 0, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}

describe("far returns: lockstep regressions", () => {
  it("IRETQ-03/IRETQ-10: a NULL return CS gives #GP(0) before the SS:RSP slots are read (they lie on an unmapped page)", () => {
    // IRETW at RSP 0x5ffff8: RIP, CS, FLAGS at 0x5ffff8..0x5ffffd, RSP and SS from 0x5ffffe into the
    // unmapped page at 0x600000. CS = 0 must fault first; impl read all five slots up front (#PF).
    const m = withRegs(withBytes(kernelMachine(), 0x10000n, [0x66, 0xcf]), { rsp: 0x5ffff8n });
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(engine.state().cr2).toBe(0n);
    }
  });

  it("IRETQ-10: with a valid CS, the SS:RSP slots on an unmapped page still fault (#PF on the SS slot)", () => {
    const at = 0x5ffff0n; // RIP, CS in the mapped page; RFLAGS at 0x600000
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcf]), { rsp: at }), at, [0x10800n, 0x08n]);
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 14 });
      expect(engine.state().cr2).toBe(0x600000n);
    }
  });

  it("RETF-08: LRETQ to a compatibility-mode CS checks the whole popped RIP against the limit: above 4 GiB is #GP(0)", () => {
    // docs/model-choices.md "Transfers into compatibility mode" (SDM RET: "the return instruction
    // pointer is not within the return code segment limit"): 0x7fff_ffff_fff0 is beyond the 4 GiB
    // limit of kernel CS32 (0x40), so #GP(0) at the LRETQ — its bits 31:0 (0xfffffff0) would fit.
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcb]), { rsp: 0x1ff00n }), 0x1ff00n, [0x7fff_ffff_fff0n, 0x40n]);
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(engine.state().cs.selector).toBe(0x08);
    }
    // The same return with the value below 4 GiB loads it.
    const fits = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcb]), { rsp: 0x1ff00n }), 0x1ff00n, [0xffff_fff0n, 0x40n]);
    const { state } = runAllWithSpec(stateFromMachine(fits), 1);
    expect(state.cs.selector).toBe(0x40);
    expect(state.rip).toBe(0xfffffff0n);
    expect(state.gpr[4]).toBe(0x1ff10n);
  });

  it("JMPF-08: JMP FAR m16:64 to a compatibility-mode CS checks the whole offset: 0xffffffff00200000 is #GP(0) (QEMU deviation table, JMPF-09)", () => {
    const far = (offset: bigint): Machine => withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xff, 0x2b]), { rbx: 0x30000n }), 0x30000n, [offset, 0x40n]);
    for (const { event, engine } of firstStep(far(0xffff_ffff_0020_0000n))) {
      expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(engine.state().cs.selector).toBe(0x08);
    }
    const { state } = runAllWithSpec(stateFromMachine(far(0x20_0000n)), 1);
    expect(state.cs.selector).toBe(0x40);
    expect(state.rip).toBe(0x20_0000n);
  });

  it("IRETQ-12: IRETQ to a compatibility-mode CS checks EIP and loads it zero-extended (and RSP's bits 31:0)", () => {
    const frame = [0x1_0000_0800n, 0x40n, 0x2n, 0x1_0001_ff00n, 0x10n];
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcf]), { rsp: 0x1fe00n }), 0x1fe00n, frame);
    const { state } = runAllWithSpec(stateFromMachine(m), 1);
    expect(state.cs.selector).toBe(0x40);
    expect(state.rip).toBe(0x800n);
    expect(state.gpr[4]).toBe(0x1ff00n);
  });

  it("issue 8, divergence B: LRETQ to 32-bit ring 3 with a popped RSP of 0x100000000 loads ESP: RSP = 0", () => {
    // RIP, CS = user CS32 (0x1b), RSP = 2^32, SS = user data (0x23).
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcb]), { rsp: 0x1fe00n }), 0x1fe00n,
      [0x200000n, 0x1bn, 0x1_0000_0000n, 0x23n]);
    const { state } = runAllWithSpec(stateFromMachine(m), 1);
    expect(state.cs.selector).toBe(0x1b);
    expect(state.gpr[4]).toBe(0n);
    // LRETQ imm16 (0x10): SS:RSP are read after the imm16 bytes; bits 31:0 of the popped RSP, then
    // + imm16 at the new SS.B width (32 bits: wraps).
    const imm = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xca, 0x10, 0x00]), { rsp: 0x1fe00n }), 0x1fe00n,
      [0x200000n, 0x1bn, 0n, 0n, 0x1_ffff_fff8n, 0x23n]);
    const out = runAllWithSpec(stateFromMachine(imm), 1).state;
    expect(out.cs.selector).toBe(0x1b);
    expect(out.gpr[4]).toBe(0x8n);
  });

  it("SEG-CHECK-STACK decision: IRET to a compatibility-mode target with a 16-bit SS (B = 0) loads SP only (RSP bits 63:16 kept); far RET loads ESP", () => {
    // docs/model-choices.md "Return to a 16-bit stack (SS.B = 0)": IRET writes the stack pointer at
    // the new stack's size (SDM Vol. 3A §6.14.3, silicon's espfix leak); the RET page says
    // "ESP ← tempESP". GDT 0x48 becomes a 16-bit DPL-3 data segment (limit 0xfffff, G = 1, B = 0).
    const sixteen = (m: Machine) => withQwords(m, 0x8048n, [0x008f_f300_0000_ffffn]);
    const at = (code: number[], slots: bigint[]) => sixteen(withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, code), { rsp: 0x1fe00n }), 0x1fe00n, slots));
    // IRETQ from RSP 0x1fe00 (bits 63:16 = 0x1), popped RSP 0xabcd1234: SP = 0x1234.
    const iretq = runAllWithSpec(stateFromMachine(at([0x48, 0xcf], [0x200000n, 0x1bn, 0x2n, 0xabcd_1234n, 0x4bn])), 1).state;
    expect({ cs: iretq.cs.selector, ss: iretq.ss.selector, db: iretq.ss.db, rsp: iretq.gpr[4] }).toEqual({ cs: 0x1b, ss: 0x4b, db: 0, rsp: 0x1_1234n });
    // LRETQ to the same CS:SS: all of ESP; LRETQ imm16 0x10 then releases at SP's width.
    const lretq = runAllWithSpec(stateFromMachine(at([0x48, 0xcb], [0x200000n, 0x1bn, 0xabcd_1234n, 0x4bn])), 1).state;
    expect({ ss: lretq.ss.selector, rsp: lretq.gpr[4] }).toEqual({ ss: 0x4b, rsp: 0xabcd_1234n });
    const released = runAllWithSpec(stateFromMachine(at([0x48, 0xca, 0x10, 0x00], [0x200000n, 0x1bn, 0n, 0n, 0xabcd_fff8n, 0x4bn])), 1).state;
    expect(released.gpr[4]).toBe(0xabcd_0008n);
  });

  it("far RET to an outer level nulls DS/ES/FS/GS by their hidden part (DPL < new CPL), whatever the selector", () => {
    // DS holds NULL selector 3 over a DPL 0 data hidden part: nulled (selector 0, unusable, base
    // kept); ES a NULL selector with RPL 3 and an unusable hidden part: left alone by far RET.
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcb]), { rsp: 0x1fe00n }), 0x1fe00n,
      [0x200000n, 0x2bn, 0x210000n, 0x23n]);
    const s = stateFromMachine(m);
    const dpl0 = { ...s.ss, selector: 3, base: 0x1234n };
    const es = { ...unusableHidden(s.es), selector: 3 };
    const { state } = runAllWithSpec({ ...s, ds: dpl0, es }, 1);
    expect(state.ds).toMatchObject({ selector: 0, unusable: 1, base: 0x1234n });
    expect(state.es.selector).toBe(3);
  });

  it("IRETQ to an outer level also turns a NULL selector with RPL ≠ 0 into 0 (hidden part kept)", () => {
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcf]), { rsp: 0x1fe00n }), 0x1fe00n,
      [0x200000n, 0x2bn, 0x202n, 0x210000n, 0x23n]);
    const s = stateFromMachine(m);
    const es = { ...unusableHidden(s.es), selector: 3, base: 0x5678n };
    const { state } = runAllWithSpec({ ...s, es }, 1);
    expect(state.es).toEqual({ ...es, selector: 0 });
    // The same NULL selector over a usable DPL 0 hidden part: nulled by the DPL rule instead.
    const dpl0 = { ...s.ss, selector: 3, base: 0x5678n };
    expect(runAllWithSpec({ ...s, es: dpl0 }, 1).state.es).toMatchObject({ selector: 0, unusable: 1, base: 0x5678n });
  });
});

describe("far JMP: check order", () => {
  it("JMPF-05 before #NP: a not-present code descriptor with L = D = 1 is #GP(sel) (SDM JMP: L/D, privilege, then present)", () => {
    // rex.w ljmp *(%rbx) with RBX → m16:64 {0x12345, selector 0x20}; GDT entry 4 rewritten.
    const run = (descriptor: bigint) => {
      const s = k([0x48, 0xff, 0x2b, 0xf4], (m) => {
        m.write64(0x30000n, 0x12345n);
        m.write(0x30008n, [0x20, 0x00]);
        m.write64(0x8020n, descriptor);
      }, {}, { 3: 0x30000n });
      const out = runAllWithSpec(s, 2).state;
      return { rip: out.rip, errorCode: read64(out, 0x20000n - 48n) };
    };
    const handled = (v: number) => 0xb000n + 16n * BigInt(v) + 1n;
    // DPL 0 code, P = 0, L = 1, D = 1 (conforming and non-conforming): #GP(0x20).
    expect(run(0x006f_1800_0000_0000n)).toEqual({ rip: handled(13), errorCode: 0x20n });
    expect(run(0x006f_1c00_0000_0000n)).toEqual({ rip: handled(13), errorCode: 0x20n });
    // P = 0 with L = 1, D = 0: #NP(0x20).
    expect(run(0x002f_1800_0000_0000n)).toEqual({ rip: handled(11), errorCode: 0x20n });
  });
});
