// The privileged instructions whose effect lies outside the model: CACHE-01/02 (WBINVD, INVD),
// INVLPG-01/02, RDTSC-01/02, SYSEXIT-01/02.
import { describe, expect, it } from "vitest";
import { GP } from "../../../spec/fault.ts";
import { CR4 } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

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
