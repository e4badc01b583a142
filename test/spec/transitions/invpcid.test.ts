// INVPCID (SDM Vol. 2B): INVPCID-01..06 and DECODE-MEMORY-ONLY.
import { describe, expect, it } from "vitest";
import { GP, PF, UD } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { CR4 } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, faultOf, retired, stepBytes } from "./build-system.ts";

/** INVPCID RCX, [RAX]. */
const INVPCID = [0x66, 0x0f, 0x38, 0x82, 0x08];
const DESCRIPTOR = 0x30000n;
function at(type: bigint, pcid: bigint, address: bigint, m: Machine = kernelMachine(), low?: bigint): Machine {
  const memory = m.memory.write(DESCRIPTOR, 8, low ?? pcid).write(DESCRIPTOR + 8n, 8, address);
  return withRegs({ ...m, memory }, { rax: DESCRIPTOR, rcx: type });
}

describe("INVPCID", () => {
  it("INVPCID-01: at CPL 3 #GP(0), before the descriptor is read (even an unmapped one)", () => {
    const m = withRegs(userMachine(), { rax: 0x800000n, rcx: 0n });
    expectFault(stepBytes(m, INVPCID), m, GP, 0, "INVPCID-01");
  });
  it("DECODE-MEMORY-ONLY: the register form is #UD", () => {
    const m = kernelMachine();
    expectFault(stepBytes(m, [0x66, 0x0f, 0x38, 0x82, 0xc8]), m, UD, undefined, "DECODE-MEMORY-ONLY");
  });
  it("INVPCID-02: the descriptor read faults first (#PF); then a type above 3 is #GP(0)", () => {
    expect(faultOf(stepBytes(withRegs(kernelMachine(), { rax: 0x800000n, rcx: 9n }), INVPCID)).vector).toBe(PF);
    const m = at(4n, 0n, 0n);
    expectFault(stepBytes(m, INVPCID), m, GP, 0, "INVPCID-02");
  });
  it("INVPCID-03: descriptor bits 63:12 set raise #GP(0)", () => {
    const m = at(2n, 0n, 0n, kernelMachine(), 0x1000n);
    expectFault(stepBytes(m, INVPCID), m, GP, 0, "INVPCID-03");
  });
  it("INVPCID-04: types 0 and 1 with PCID != 0 raise #GP(0) while CR4.PCIDE = 0; with PCIDE = 1 they complete", () => {
    for (const type of [0n, 1n]) {
      const m = at(type, 5n, 0x1000n);
      expectFault(stepBytes(m, INVPCID), m, GP, 0, "INVPCID-04");
      const pcide = at(type, 5n, 0x1000n, { ...kernelMachine(), cr4: kernelMachine().cr4 | CR4.PCIDE });
      expect(retired(stepBytes(pcide, INVPCID)).rip).toBe(kernelMachine().rip + 5n);
    }
    // Types 2 and 3 ignore the PCID field.
    expect(retired(stepBytes(at(3n, 5n, 0x8000_0000_0000n), INVPCID)).rip).toBe(kernelMachine().rip + 5n);
  });
  it("INVPCID-05: type 0 with a non-canonical address raises #GP(0); type 1 does not look at it", () => {
    const m = at(0n, 0n, 0x8000_0000_0000n);
    expectFault(stepBytes(m, INVPCID), m, GP, 0, "INVPCID-05");
    expect(retired(stepBytes(at(1n, 0n, 0x8000_0000_0000n), INVPCID)).rip).toBe(kernelMachine().rip + 5n);
  });
  it("INVPCID-06: an INVPCID that passes changes nothing but RIP", () => {
    const m = at(0n, 0n, 0xffff_8000_0000_0000n);
    const after = retired(stepBytes(m, INVPCID));
    expect({ ...after, rip: 0n, memory: null }).toEqual({ ...m, rip: 0n, memory: null });
  });
});
