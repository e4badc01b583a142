// STAC / CLAC: SMAP-04.
import { describe, expect, it } from "vitest";
import { UD } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { clac, stac } from "../../../spec/transitions/smap-flags.ts";
import { kernelMachine, userMachine } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const at = (m: Machine, rflags: bigint): Machine => ({ ...m, rflags });

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
