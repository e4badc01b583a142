// HLT: HLT-01, HLT-02 (waking up is the boundary's: boundary.test.ts).
import { describe, expect, it } from "vitest";
import { GP } from "../../../spec/fault.ts";
import { INTEL } from "../../../contract/profile.ts";
import { hlt } from "../../../spec/transitions/halt.ts";
import { kernelMachine, userMachine } from "../../helpers/fixture.ts";
import { expectFault, stepBytes } from "./build-system.ts";

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
