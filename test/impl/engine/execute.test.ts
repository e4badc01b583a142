// The per-instruction bookkeeping (impl/engine/execute.ts): the interrupt shadow an instruction
// creates, the single-step trap after SYSRET (the TF it leaves), and RFLAGS after a triple fault at
// an instruction fetch (a lockstep regression; spec/ gives the same answer).
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { RAX, RBX, kernel, read64, runAll, type Memory } from "../helpers.ts";
import { firstStep } from "../lockstep.ts";
import { kernelMachine, withBytes } from "../../helpers/fixture.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("instruction bookkeeping", () => {
  it("SHADOW-07: a second MOV SS does not extend the shadow", () => {
    // TF = 1: mov ss, ax; mov ss, ax; inc rbx → one #DB after the second MOV SS's successor? No:
    // the first shadow holds the first trap; the second MOV SS opens none, so #DB comes after it.
    const s = k([0xb8, 0x10, 0, 0, 0, 0x8e, 0xd0, 0x8e, 0xd0, 0x48, 0xff, 0xc3], undefined, {});
    const st = { ...s, rflags: 0x2n };
    const traced = runAll({ ...st, rip: 0x10000n }, 1); // mov eax (no TF yet)
    expect(traced.state.rip).toBe(0x10005n);
    const withTf = runAll({ ...s, rip: 0x10005n, rflags: 0x102n, gpr: s.gpr.map((v, i) => (i === RAX ? 0x10n : v)) }, 10);
    expect(read64(withTf.state, 0x20000n - 40n)).toBe(0x10009n);
    expect(withTf.state.gpr[RBX]).toBe(0n);
  });

  it("SYSRET-09: R11.TF = 1 traps at CPL 3 before the first user instruction", () => {
    // mov ecx, 0x200000; mov r11d, 0x302; sysretq
    const s = k([0xb9, 0, 0, 0x20, 0, 0x41, 0xbb, 0x02, 0x03, 0, 0, 0x48, 0x0f, 0x07], (m) => m.write(0x200000n, [0x48, 0xff, 0xc3]));
    const out = runAll(s, 10);
    expect(out.state.gpr[RBX]).toBe(0n);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x200000n); // #DB frame: RIP = RCX
    expect(read64(out.state, 0x20000n - 32n)).toBe(0x2bn); // from CPL 3
  });

  it("DF-05 (model choice 'Nested faults'): a triple fault on an instruction fetch leaves RFLAGS as before the instruction, RF included", () => {
    // PML4[0] not present: the fetch, the #PF frame and the #DF frame all fault. impl cleared RF.
    const m = { ...withBytes(kernelMachine(), 0x1000n, [0, 0, 0, 0, 0, 0, 0, 0]), rflags: 0x10002n };
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "shutdown", rip: 0x10000n });
      expect(engine.state().rflags).toBe(0x10002n);
    }
  });
});
