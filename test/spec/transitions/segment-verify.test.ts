// VERR / VERW (SDM Vol. 2B): VERIFY-01..03 — only ZF changes, at any CPL.
import { describe, expect, it } from "vitest";
import { PF } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withRegs } from "../../helpers/fixture.ts";
import { descriptor, faultOf, retired, SPARE, stepBytes, withGdtEntry } from "./build-system.ts";

const VERR_AX = [0x0f, 0x00, 0xe0];
const VERW_AX = [0x0f, 0x00, 0xe8];
/** ZF after `bytes` with AX = `selector`; the rest of RFLAGS must be unchanged. */
function zf(m: Machine, bytes: number[], selector: number): boolean {
  const start = withRegs({ ...m, rflags: m.rflags | RFLAGS.CF | RFLAGS.ZF }, { rax: BigInt(selector) });
  const after = retired(stepBytes(start, bytes));
  expect(after.rflags & ~RFLAGS.ZF).toBe(start.rflags & ~RFLAGS.ZF);
  expect({ ...after, rflags: 0n, rip: 0n, memory: null }).toEqual({ ...start, rflags: 0n, rip: 0n, memory: null });
  return (after.rflags & RFLAGS.ZF) !== 0n;
}

describe("VERR / VERW", () => {
  const m = userMachine();
  it("VERIFY-01: a NULL selector, one beyond the GDT limit, or TI = 1 with no LDT: ZF = 0", () => {
    for (const sel of [0, 3, 0xfff8, 0x4 | 3]) {
      expect(zf(m, VERR_AX, sel)).toBe(false);
      expect(zf(m, VERW_AX, sel)).toBe(false);
    }
  });
  it("VERIFY-02: a system descriptor, or data / non-conforming code with DPL < CPL or DPL < RPL: ZF = 0", () => {
    expect(zf(m, VERR_AX, 0x30 | 3)).toBe(false); // the TSS
    expect(zf(m, VERR_AX, 0x10 | 3)).toBe(false); // kernel data, DPL 0, at CPL 3
    expect(zf(kernelMachine(), VERW_AX, 0x10 | 3)).toBe(false); // RPL 3 > DPL 0 at CPL 0
    expect(zf(kernelMachine(), VERW_AX, 0x10)).toBe(true);
  });
  it("VERIFY-03: VERR sets ZF for data and readable code (conforming code whatever its DPL); VERW only for writable data", () => {
    expect(zf(m, VERR_AX, 0x20 | 3)).toBe(true); // user data
    expect(zf(m, VERW_AX, 0x20 | 3)).toBe(true);
    expect(zf(m, VERR_AX, 0x28 | 3)).toBe(true); // user code, readable
    expect(zf(m, VERW_AX, 0x28 | 3)).toBe(false);
    const conforming = withGdtEntry(m, SPARE, descriptor({ type: 0xe, dpl: 0, l: 1 }));
    expect(zf(conforming, VERR_AX, SPARE | 3)).toBe(true);
    const readOnly = withGdtEntry(m, SPARE, descriptor({ type: 0x0, dpl: 3 }));
    expect(zf(readOnly, VERR_AX, SPARE | 3)).toBe(true);
    expect(zf(readOnly, VERW_AX, SPARE | 3)).toBe(false);
    const execOnly = withGdtEntry(m, SPARE, descriptor({ type: 0x8, dpl: 3, l: 1 }));
    expect(zf(execOnly, VERR_AX, SPARE | 3)).toBe(false);
  });
  it("VERIFY-01: the descriptor read is an implicit access: an unmapped GDT page is a #PF of VERR", () => {
    const unmapped = withRegs({ ...m, gdtr: { base: 0x800000n, limit: 0xfff } }, { rax: 0x23n });
    expect(faultOf(stepBytes(unmapped, VERR_AX)).vector).toBe(PF);
  });
});
