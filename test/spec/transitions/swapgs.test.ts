// SWAPGS (digest §4): SWAPGS-01..03.
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import { INTEL } from "../../../contract/profile.ts";
import { swapgs } from "../../../spec/transitions/swapgs.ts";
import { kernelMachine, userMachine, vectorMachine } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const SWAPGS = [0x0f, 0x01, 0xf8];
const kernel = () => ({ ...kernelMachine(), gs: { ...kernelMachine().gs, selector: 0x23, base: 0x1111_000n }, kernelGsBase: 0xffff_8880_0000_2222n });

describe("SWAPGS", () => {
  it("SWAPGS-01: SWAPGS outside 64-bit mode is #UD", () => {
    const m = { ...kernel(), cs: { ...kernel().cs, selector: 0x40, l: 0, db: 1 } };
    const f = swapgs(m, INTEL);
    expect(f).toMatchObject({ kind: "fault", vector: UD, errorCode: undefined, rule: "SWAPGS-01" });
    // The decoder already refuses 0F 01 F8 outside 64-bit mode.
    expect(stepBytes(m, SWAPGS).event).toMatchObject({ kind: "fault", fault: { vector: UD } });
  });
  it("SWAPGS-02: SWAPGS at CPL 3 raises #GP(0) (vector swapgs-ring3-gp)", () => {
    const m = { ...userMachine(), gs: { ...userMachine().gs, base: 0x1111000n }, kernelGsBase: 0x2222000n };
    expectFault(stepBytes(m, SWAPGS), m, GP, 0, "SWAPGS-02");
  });
  it("SWAPGS-03: exchanges GS.base and KERNEL_GS_BASE, keeping the GS selector and attributes; twice restores them (vector swapgs-twice)", () => {
    const m0 = kernel();
    const once = retired(stepBytes(m0, SWAPGS));
    expect(once.gs).toEqual({ ...m0.gs, base: 0xffff_8880_0000_2222n });
    expect(once.kernelGsBase).toBe(0x1111_000n);
    const twice = retired(stepBytes(once, SWAPGS));
    expect({ gs: twice.gs, k: twice.kernelGsBase }).toEqual({ gs: m0.gs, k: m0.kernelGsBase });
    const v = vectorMachine("swapgs-twice");
    const alone = swapgs(v, INTEL);
    if ("kind" in alone) throw new Error("fault");
    expect({ gs: alone.gs.base, k: alone.kernelGsBase, rip: alone.rip }).toEqual({ gs: 0xffff_8880_0000_2222n, k: 0x1111000n, rip: 0x10003n });
  });
});
