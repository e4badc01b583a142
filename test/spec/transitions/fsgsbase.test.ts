// RDFSBASE / RDGSBASE / WRFSBASE / WRGSBASE (SDM Vol. 2B): FSGSBASE-01..04 and DECODE-MODE.
import { describe, expect, it } from "vitest";
import { GP, UD } from "../../../spec/fault.ts";
import { machineFromState, type Machine } from "../../../spec/machine/machine.ts";
import { CR4, RAX, RCX } from "../../../spec/machine/registers.ts";
import { guestState, userMachine, withRegs } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

const on = (m: Machine): Machine => ({ ...m, cr4: m.cr4 | CR4.FSGSBASE });
const RDFSBASE_RAX = [0xf3, 0x48, 0x0f, 0xae, 0xc0];
const RDGSBASE_ECX = [0xf3, 0x0f, 0xae, 0xc9];
const WRFSBASE_RAX = [0xf3, 0x48, 0x0f, 0xae, 0xd0];
const WRGSBASE_EAX = [0xf3, 0x0f, 0xae, 0xd8];

describe("FSGSBASE", () => {
  it("FSGSBASE-01: with CR4.FSGSBASE = 0 all four raise #UD", () => {
    const m = userMachine();
    for (const bytes of [RDFSBASE_RAX, RDGSBASE_ECX, WRFSBASE_RAX, WRGSBASE_EAX]) expectFault(stepBytes(m, bytes), m, UD, undefined, "FSGSBASE-01");
  });
  it("DECODE-MODE: outside 64-bit mode they are #UD even with CR4.FSGSBASE = 1", () => {
    const m = on(machineFromState(guestState({ ring: 3, compat: true })));
    expectFault(stepBytes(m, [0xf3, 0x0f, 0xae, 0xc0]), m, UD, undefined, "DECODE-MODE");
  });
  it("FSGSBASE-02: RDFSBASE r64 reads the FS base; RDGSBASE r32 reads bits 31:0 zero-extended; at CPL 3", () => {
    const m0 = on({ ...withRegs(userMachine(), { rcx: 0xffff_ffff_ffff_ffffn }), fs: { ...userMachine().fs, base: 0x7f00_1234_5678n }, gs: { ...userMachine().gs, base: 0xffff_8000_aaaa_bbbbn } });
    expect(retired(stepBytes(m0, RDFSBASE_RAX)).gpr[RAX]).toBe(0x7f00_1234_5678n);
    expect(retired(stepBytes(m0, RDGSBASE_ECX)).gpr[RCX]).toBe(0xaaaa_bbbbn);
  });
  it("FSGSBASE-03: WRFSBASE with a non-canonical 64-bit value raises #GP(0)", () => {
    const m = on(withRegs(userMachine(), { rax: 0x0000_8000_0000_0000n }));
    expectFault(stepBytes(m, WRFSBASE_RAX), m, GP, 0, "FSGSBASE-03");
  });
  it("FSGSBASE-04: WRFSBASE r64 sets the FS base (selector and attributes kept); WRGSBASE r32 zero-extends", () => {
    const m0 = on(withRegs(userMachine(), { rax: 0xffff_8000_0000_1000n }));
    const fs = retired(stepBytes(m0, WRFSBASE_RAX)).fs;
    expect(fs).toEqual({ ...m0.fs, base: 0xffff_8000_0000_1000n });
    const gs = retired(stepBytes(m0, WRGSBASE_EAX)).gs;
    expect(gs).toEqual({ ...m0.gs, base: 0x1000n });
  });
});
