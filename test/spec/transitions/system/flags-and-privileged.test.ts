// CLI / STI (CLI-02, STI-02, STI-03, SHADOW-01), HLT (HLT-01/02), STAC / CLAC (SMAP-04) and the
// privileged instructions whose effect lies outside the model (CACHE, INVLPG, RDTSC, SYSEXIT).
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../../spec/fault.ts";
import type { Machine } from "../../../../spec/machine/machine.ts";
import { CR4, RFLAGS } from "../../../../spec/machine/registers.ts";
import { INTEL } from "../../../../contract/profile.ts";
import { hlt } from "../../../../spec/transitions/halt.ts";
import { cli, sti } from "../../../../spec/transitions/interrupt-flag.ts";
import { clac, stac } from "../../../../spec/transitions/smap-flags.ts";
import { kernelMachine, userMachine, withRegs } from "../../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build.ts";

const CLI = [0xfa];
const STI = [0xfb];
const IOPL3 = 3n << 12n;
const at = (m: Machine, rflags: bigint): Machine => ({ ...m, rflags });

describe("CLI / STI", () => {
  it("STI-03: with IOPL = 0, CLI and STI at CPL 3 raise #GP(0) (vector ring3-cli-iopl0-gp)", () => {
    const m = at(userMachine(), 0x202n);
    expectFault(stepBytes(m, CLI), m, GP, 0, "CLI-02");
    expectFault(stepBytes(m, STI), m, GP, 0, "STI-02");
  });
  it("CLI-02: CPL <= IOPL clears IF (CPL 0, or CPL 3 with IOPL 3); CPL > IOPL raises #GP(0)", () => {
    expect(retired(stepBytes(at(kernelMachine(), 0x202n), CLI)).rflags).toBe(0x2n);
    expect(retired(stepBytes(at(userMachine(), 0x202n | IOPL3), CLI)).rflags).toBe(0x2n | IOPL3);
    const m = at(userMachine(), 0x202n | (2n << 12n));
    expectFault(stepBytes(m, CLI), m, GP, 0, "CLI-02");
    expect(cli(at(kernelMachine(), 0x202n), INTEL)).toMatchObject({ rflags: 0x2n });
  });
  it("STI-02: CPL <= IOPL sets IF; CPL > IOPL raises #GP(0)", () => {
    expect(retired(stepBytes(at(userMachine(), 0x2n | IOPL3), STI)).rflags).toBe(0x202n | IOPL3);
    const m = at(userMachine(), 0x2n | (1n << 12n));
    expectFault(stepBytes(m, STI), m, GP, 0, "STI-02");
  });
  it("SHADOW-01: STI arms the interrupt shadow only when IF goes from 0 to 1", () => {
    expect(retired(stepBytes(at(kernelMachine(), 0x2n), STI)).cpu.shadow).toBe("sti");
    expect(retired(stepBytes(at(kernelMachine(), 0x202n), STI)).cpu.shadow).toBe("none");
    // sti; sti: the second STI (IF already 1) ends the first shadow and opens none.
    const once = retired(stepBytes(at(kernelMachine(), 0x2n), STI));
    expect(retired(stepBytes({ ...once, rip: 0x10000n }, STI)).cpu.shadow).toBe("none");
    const alone = sti(at(kernelMachine(), 0x2n), INTEL);
    expect("cpu" in alone && alone.cpu.shadow).toBe("sti");
  });
});

describe("HLT", () => {
  it("HLT-01: HLT at CPL 3 raises #GP(0)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0xf4]), m, GP, 0, "HLT-01");
  });
  it("HLT-02: HLT at CPL 0 halts with RIP past the HLT", () => {
    const r = stepBytes(kernelMachine(), [0xf4]);
    expect(r.event.kind).toBe("halted");
    expect({ halted: r.state.cpu.halted, rip: r.state.rip }).toEqual({ halted: true, rip: 0x10001n });
    expect(hlt(kernelMachine(), INTEL)).toMatchObject({ rip: 0x10001n, cpu: { halted: true } });
  });
});

describe("STAC / CLAC", () => {
  it("SMAP-04: STAC sets and CLAC clears RFLAGS.AC at CPL 0, with CR4.SMAP clear too", () => {
    expect(retired(stepBytes(at(kernelMachine(), 0x2n), [0x0f, 0x01, 0xcb])).rflags).toBe(0x2n | RFLAGS.AC);
    expect(retired(stepBytes(at(kernelMachine(), 0x2n | RFLAGS.AC), [0x0f, 0x01, 0xca])).rflags).toBe(0x2n);
    expect(stac(kernelMachine(), INTEL)).toMatchObject({ rflags: 0x2n | RFLAGS.AC });
  });
  it("SMAP-04: STAC and CLAC at CPL 3 are #UD", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x0f, 0x01, 0xcb]), m, UD, undefined, "SMAP-04");
    expectFault(stepBytes(m, [0x0f, 0x01, 0xca]), m, UD, undefined, "SMAP-04");
    expect(clac(m, INTEL)).toMatchObject({ kind: "fault", vector: UD });
  });
});

describe("privileged instructions outside the modelled state", () => {
  it("CACHE-01: WBINVD and INVD at CPL 3 raise #GP(0) (vector ring3-wbinvd-gp)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x0f, 0x09]), m, GP, 0, "CACHE-01");
    expectFault(stepBytes(m, [0x0f, 0x08]), m, GP, 0, "CACHE-01");
  });
  it("CACHE-02: WBINVD and INVD at CPL 0 complete with no other effect", () => {
    const m = retired(stepBytes(kernelMachine(), [0x0f, 0x09]));
    expect(m.rip).toBe(0x10002n);
    expect(retired(stepBytes(kernelMachine(), [0x0f, 0x08])).rip).toBe(0x10002n);
  });
  it("INVLPG-01: INVLPG at CPL 3 raises #GP(0)", () => {
    const m = withRegs(userMachine(), { rax: 0x200000n });
    expectFault(stepBytes(m, [0x0f, 0x01, 0x38]), m, GP, 0, "INVLPG-01");
  });
  it("INVLPG-02: INVLPG at CPL 0 never faults, even for a non-canonical or unmapped address", () => {
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0x0000_8000_0000_0000n }), [0x0f, 0x01, 0x38])).rip).toBe(0x10003n);
    expect(retired(stepBytes(withRegs(kernelMachine(), { rax: 0x7000_0000n }), [0x0f, 0x01, 0x38])).rip).toBe(0x10003n);
  });
  it("RDTSC-01: with CR4.TSD = 1, RDTSC at CPL 3 raises #GP(0)", () => {
    const m = { ...userMachine(), cr4: userMachine().cr4 | CR4.TSD };
    expectFault(stepBytes(m, [0x0f, 0x31]), m, GP, 0, "RDTSC-01");
  });
  it("RDTSC-02: otherwise RDTSC stops as unsupported (no TSC is modelled), machine unchanged", () => {
    for (const m of [userMachine(), { ...kernelMachine(), cr4: kernelMachine().cr4 | CR4.TSD }]) {
      const r = stepBytes(m, [0x0f, 0x31]);
      expect(r.event).toMatchObject({ kind: "unsupported" });
      expect(r.state.rip).toBe(m.rip);
    }
  });
  it("SYSEXIT-01: SYSEXIT at CPL 3 raises #GP(0)", () => {
    const m = userMachine();
    expectFault(stepBytes(m, [0x48, 0x0f, 0x35]), m, GP, 0, "SYSEXIT-01");
  });
  it("SYSEXIT-02: SYSEXIT at CPL 0 stops as unsupported (SYSENTER MSRs not modelled)", () => {
    expect(stepBytes(kernelMachine(), [0x48, 0x0f, 0x35]).event).toMatchObject({ kind: "unsupported" });
  });
});
