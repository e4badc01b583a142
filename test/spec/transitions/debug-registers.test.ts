// MOV DR (SDM Vol. 2B): MOVDR-01..07, DECODE-DR through the step, and DR6.BS on a single-step trap
// (TF-03).
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import { machineFromState, type Machine } from "../../../spec/machine/machine.ts";
import { CR4, RAX, RBX } from "../../../spec/machine/registers.ts";
import { step } from "../../../spec/step/step.ts";
import { guestState, kernelMachine, userMachine, withCode, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

/** MOV DRn, RAX and MOV RAX, DRn. */
const toDr = (n: number) => [0x0f, 0x23, 0xc0 | (n << 3)];
const fromDr = (n: number) => [0x0f, 0x21, 0xc0 | (n << 3)];
const withDe = (m: Machine): Machine => ({ ...m, cr4: m.cr4 | CR4.DE });

describe("MOV DR", () => {
  it("MOVDR-01: DR4/DR5 with CR4.DE = 1 raise #UD, before the privilege check", () => {
    for (const m of [withDe(kernelMachine()), withDe(userMachine())])
      for (const bytes of [toDr(4), fromDr(5)]) expectFault(stepBytes(m, bytes), m, UD, undefined, "MOVDR-01");
  });
  it("MOVDR-02: at CPL 3 every MOV DR raises #GP(0)", () => {
    const m = userMachine();
    for (const n of [0, 3, 4, 6, 7]) {
      expectFault(stepBytes(m, toDr(n)), m, GP, 0, "MOVDR-02");
      expectFault(stepBytes(m, fromDr(n)), m, GP, 0, "MOVDR-02");
    }
  });
  it("DECODE-DR: REX.R (DR8–DR15) raises #UD at any CPL", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x44, ...toDr(0)]), m, UD, undefined, "DECODE-DR");
  });
  it("MOVDR-03: with CR4.DE = 0, DR4 and DR5 are DR6 and DR7", () => {
    const m = retired(stepBytes(withRegs(kernelMachine(), { rax: 0x1n }), toDr(4)));
    expect(m.dr6).toBe(0xffff_0ff1n);
    const r = retired(stepBytes(withRegs({ ...kernelMachine(), dr7: 0x700n }, { rax: 5n }), fromDr(5)));
    expect(r.gpr[RAX]).toBe(0x700n);
  });
  it("MOVDR-04: DR0–DR3 take any 64-bit value; a 32-bit source in compatibility mode is zero-extended", () => {
    const m = retired(stepBytes(withRegs(kernelMachine(), { rax: 0xffff_ffff_ffff_fff0n }), toDr(3)));
    expect(m.dr3).toBe(0xffff_ffff_ffff_fff0n);
    const compat = withRegs(machineFromState(guestState({ ring: 0, compat: true })), { rax: 0xffff_ffff_8000_1000n });
    expect(retired(stepBytes(compat, toDr(1))).dr1).toBe(0x8000_1000n);
  });
  it("MOVDR-05: DR6 with bits 63:32 raises #GP(0); otherwise B0–B3, BD, BS, BT are written and the rest read as fixed", () => {
    const bad = withRegs(kernelMachine(), { rax: 1n << 32n });
    expectFault(stepBytes(bad, toDr(6)), bad, GP, 0, "MOVDR-05");
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0n }), toDr(6))).dr6).toBe(0xffff_0ff0n);
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0xffff_ffffn }), toDr(6))).dr6).toBe(0xffff_eff0n | 0xfn);
  });
  it("MOVDR-06: DR7 with bits 63:32 raises #GP(0); arming a breakpoint or GD stops as unsupported; the rest is stored with bit 10 set", () => {
    const bad = withRegs(kernelMachine(), { rax: 1n << 40n });
    expectFault(stepBytes(bad, toDr(7)), bad, GP, 0, "MOVDR-06");
    for (const armed of [0x1n, 0x80n, 0x2000n]) {
      const m = withRegs(kernelMachine(), { rax: armed });
      const r = stepBytes(m, toDr(7));
      expect(r.event).toMatchObject({ kind: "unsupported" });
      expect(r.state.dr7).toBe(0x400n);
    }
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0xffff_df00n }), toDr(7))).dr7).toBe(0xffff_0700n);
  });
  it("MOVDR-07: MOV from DRn copies it (the reset DR6 and DR7 by default); bits 31:0 in compatibility mode", () => {
    expect(retired(stepBytes(kernelMachine(), fromDr(6))).gpr[RAX]).toBe(0xffff_0ff0n);
    expect(retired(stepBytes(kernelMachine(), fromDr(7))).gpr[RAX]).toBe(0x400n);
    const compat = { ...machineFromState(guestState({ ring: 0, compat: true })), dr0: 0x1_2345_6789n };
    expect(retired(stepBytes(withRegs(compat, { rax: -1n & 0xffff_ffff_ffff_ffffn }), fromDr(0))).gpr[RAX]).toBe(0x2345_6789n);
    // MOV r, DR7 into RBX: ModRM.mod is ignored (0x3b has mod = 00).
    expect(retired(stepBytes(kernelMachine(), [0x0f, 0x21, 0x3b])).gpr[RBX]).toBe(0x400n);
  });
});

describe("DR6 on single-step", () => {
  it("TF-03: the single-step trap sets DR6.BS and leaves DR6's other bits and DR7 alone", () => {
    const start = withCode({ ...kernelMachine(), rflags: 0x102n, dr6: 0xffff_0ff1n }, [0x90, 0x90]);
    const afterNop = step(start).state;
    expect(afterNop.cpu.pendingDebugTrap).toBe(true);
    const delivered = step(afterNop);
    expect(delivered.event).toMatchObject({ kind: "delivered", vector: 1 });
    expect(delivered.state.dr6).toBe(0xffff_4ff1n);
    expect(delivered.state.dr7).toBe(0x400n);
  });
  it("TF-03: INT1 (ICEBP) is not a single-step trap and leaves DR6 alone", () => {
    const r = step(withCode(kernelMachine(), [0xf1]));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 1 });
    expect(r.state.dr6).toBe(0xffff_0ff0n);
  });
});
