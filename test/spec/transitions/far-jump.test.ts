// Far JMP through memory (JMPF-01..09) in IA-32e mode.
import { describe, expect, it } from "vitest";
import { GP, NP } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { descriptor, expectFault, retired, SPARE, stepBytes, withGdtEntry } from "./build-system.ts";

const NON_CANONICAL = 0x0000_8000_0000_0000n;
const fails = (m: Machine, bytes: number[], vector: number, code: number, rule: string) => expectFault(stepBytes(m, bytes), m, vector, code, rule);

describe("far JMP through memory", () => {
  const PTR = 0x30000n;
  /** JMP FAR [RAX] with m16:64 (REX.W) at CPL `cpl`. */
  const jmp = (offset: bigint, selector: number, m: Machine = kernelMachine()) => {
    const at = m.cs.selector & 3 ? 0x220000n : PTR;
    return { ...withRegs(m, { rax: at }), memory: m.memory.write(at, 8, offset).write(at + 8n, 2, BigInt(selector)) };
  };
  const JMPF = [0x48, 0xff, 0x28];
  it("JMPF-01, JMPF-09: loads CS (RPL <- CPL) and RIP from an m16:64 operand; CPL unchanged", () => {
    const m = retired(stepBytes(jmp(0x10100n, 0x08), JMPF));
    expect({ rip: m.rip, cs: m.cs }).toEqual({ rip: 0x10100n, cs: kernelMachine().cs });
    const u = retired(stepBytes(jmp(0x200100n, 0x58, userMachine()), JMPF));
    expect({ rip: u.rip, sel: u.cs.selector, dpl: u.cs.dpl }).toEqual({ rip: 0x200100n, sel: 0x5b, dpl: 3 });
  });
  it("JMPF-01: the m16:32 form (no REX.W) takes a 4-byte offset", () => {
    const m0 = jmp(0x10100n, 0x08);
    const m = retired(stepBytes({ ...m0, memory: m0.memory.write(PTR, 8, 0x0008_0001_0200n) }, [0xff, 0x28]));
    expect({ rip: m.rip, cs: m.cs.selector }).toEqual({ rip: 0x10200n, cs: 0x08 });
  });
  it("JMPF-02, JMPF-03: a NULL selector raises #GP(0); beyond the limit #GP(sel)", () => {
    fails(jmp(0x10000n, 0), JMPF, GP, 0, "JMPF-02");
    fails(jmp(0x10000n, 0x200), JMPF, GP, 0x200, "JMPF-03");
  });
  it("JMPF-04: a data segment raises #GP(sel); a call gate stops as unsupported", () => {
    fails(jmp(0x10000n, 0x10), JMPF, GP, 0x10, "JMPF-04");
    const gate = withGdtEntry(jmp(0x10000n, SPARE), SPARE, descriptor({ type: 12, s: 0, limit: 0, g: 0 }), 0n);
    expect(stepBytes(gate, JMPF).event).toMatchObject({ kind: "unsupported" });
  });
  it("JMPF-05: code with L = 1 and D = 1 raises #GP(sel)", () => {
    fails(withGdtEntry(jmp(0x10000n, SPARE), SPARE, descriptor({ type: 11, l: 1, db: 1 })), JMPF, GP, SPARE, "JMPF-05");
  });
  it("JMPF-06: conforming DPL > CPL, non-conforming DPL != CPL or RPL > CPL raise #GP(sel)", () => {
    fails(jmp(0x10000n, 0x58), JMPF, GP, 0x58, "JMPF-06");
    fails(jmp(0x10000n, 0x28), JMPF, GP, 0x28, "JMPF-06");
    fails(jmp(0x10000n, 0x0b), JMPF, GP, 0x08, "JMPF-06");
  });
  it("JMPF-07: a code segment not present raises #NP(sel)", () => {
    fails(withGdtEntry(jmp(0x10000n, SPARE), SPARE, descriptor({ type: 11, l: 1, present: 0 })), JMPF, NP, SPARE, "JMPF-07");
  });
  it("JMPF-08: a non-canonical 64-bit target, or a compatibility target beyond the limit, raises #GP(0)", () => {
    fails(jmp(NON_CANONICAL, 0x08), JMPF, GP, 0, "JMPF-08");
    fails(withGdtEntry(jmp(0x2000n, SPARE), SPARE, descriptor({ type: 11, limit: 0xfff, g: 0, db: 1 })), JMPF, GP, 0, "JMPF-08");
    const c = retired(stepBytes(jmp(0x10000n, 0x40), JMPF));
    expect({ l: c.cs.l, db: c.cs.db, rip: c.rip }).toEqual({ l: 0, db: 1, rip: 0x10000n });
  });
});
