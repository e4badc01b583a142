// CLI / STI: CLI-02, STI-02, STI-03, SHADOW-01.
import { describe, expect, it } from "vitest";
import { GP } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { INTEL } from "../../../contract/profile.ts";
import { cli, sti } from "../../../spec/transitions/interrupt-flag.ts";
import { kernelMachine, userMachine } from "../../helpers/fixture.ts";
import { expectFault, retired, stepBytes } from "./build-system.ts";

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
