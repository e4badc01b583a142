// The instruction boundary (impl/engine/boundary.ts): which event is taken when — a single-step
// trap held by a MOV SS shadow, an IRQ after an STI shadow, NMI blocking, the CR8 task priority.
// Each runs on every engine configuration.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { RAX, baseMemory, kernel, layoutState, read64, runAll, type Memory } from "../helpers.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("boundary events", () => {
  it("SHADOW-05/06: a trap held by MOV SS survives the INT3 that follows and hits the handler's first instruction", () => {
    // mov ss, ax (AX = 0x10); int3 — TF = 1 from the MOV SS on; #BP gate DPL 0 at CPL 0.
    const s = k([0x8e, 0xd0, 0xcc], undefined, { rflags: 0x102n }, { [RAX]: 0x10n });
    const out = runAll(s, 10);
    expect(out.state.rip).toBe(0xb011n); // #DB handler ran its hlt
    const rsp = out.state.gpr[4]!;
    expect(read64(out.state, rsp)).toBe(0xb030n); // #DB frame: the #BP handler's first instruction
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x10003n); // #BP frame: RIP after INT3
  });

  it("STI shadow: sti; hlt with an IRQ pending takes it after the HLT", () => {
    const s = k([0xfb, 0xf4, 0xf4], undefined, { cpu: { ...layoutState(baseMemory()).cpu, pendingIrq: 0x30 } });
    const out = runAll(s, 10);
    expect(read64(out.state, 0x20000n - 40n)).toBe(0x10002n); // return RIP after the HLT
    expect(out.state.rip).toBe(0xb301n);
  });

  it("NMI: blocked from the start of its delivery even when that delivery faults", () => {
    // NMI gate not present → #NP(2·8 + 2 + EXT) = 0x13 delivered instead.
    const s = k([0xeb, 0xfe], (m) => m.write(0x9025n, [0x0e]), { cpu: { ...layoutState(baseMemory()).cpu, pendingNmi: true } });
    const out = runAll(s, 5);
    expect(out.state.rip).toBe(0xb0b1n);
    expect(read64(out.state, 0x20000n - 48n)).toBe(0x13n);
    expect(out.state.cpu.nmiBlocked).toBe(true);
    expect(out.state.cpu.pendingNmi).toBe(false);
  });

  it("TPR: CR8 holds back IRQs whose class is not above it", () => {
    const cpu = { ...layoutState(baseMemory()).cpu, pendingIrq: 0x21 };
    const blocked = runAll(k([0xfb, 0x90, 0xf4], undefined, { cr8: 2n, cpu }), 10);
    expect(blocked.stop.reason).toBe("hlt");
    expect(blocked.state.cpu.pendingIrq).toBe(0x21);
    const taken = runAll(k([0xfb, 0x90, 0xf4], undefined, { cr8: 2n, cpu: { ...cpu, pendingIrq: 0x31 } }), 10);
    expect(taken.state.rip).toBe(0xb311n);
  });
});
